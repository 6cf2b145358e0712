"""QoS profiles, chosen once by name: sensor data in, reliable out, latched edges."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def qos_profile(name: str, depth: int) -> QoSProfile:
    """'sensor_data' (best effort, as rclpy's qos_profile_sensor_data) or 'reliable'."""
    reliability = ReliabilityPolicy.RELIABLE if name == 'reliable' else \
        ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability,
                      durability=DurabilityPolicy.VOLATILE)


LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
