"""Writing rosbag2 bags with ``rosbags``: the evaluation's output bags.

:class:`OutputBag` takes the same ``sensor_msgs`` message objects the node
publishes (``images.array_to_image``, ``PinholeCamera.to_camera_info``,
``clouds.points_to_cloud``) and stores them through ``rosbags``' CDR
serialiser, or bytes already serialised.
"""

from __future__ import annotations

import array
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mtdepth_ros.evaluation.bag_source import NS_PER_S, BagError, default_typestore

STORAGES = ('mcap', 'sqlite3')


def to_rosbags(msg: Any, typestore: Any) -> Any:
    """A ``sensor_msgs``-style (rosidl) message object -> the ``rosbags`` message of its type."""
    if not hasattr(msg, 'get_fields_and_field_types'):
        return msg  # already a rosbags message (or a plain value)
    package = type(msg).__module__.split('.')[0]
    cls = typestore.types[f'{package}/msg/{type(msg).__name__}']
    values = {}
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if hasattr(value, 'get_fields_and_field_types'):
            value = to_rosbags(value, typestore)
        elif isinstance(value, (list, tuple)) and value and \
                hasattr(value[0], 'get_fields_and_field_types'):
            value = [to_rosbags(v, typestore) for v in value]
        elif isinstance(value, (array.array, np.ndarray)):
            value = np.asarray(value)  # array.array keeps its type code (buffer protocol)
        values[name] = value
    return cls(**values)


class OutputBag:
    """A rosbag2 bag being written (mcap by default); topics are added on first use."""

    def __init__(self, path: str | Path, storage: str = 'mcap') -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: PLC0415

        if storage not in STORAGES:
            raise ValueError(f'storage must be one of {STORAGES}, got {storage!r}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'{self.path}: output bag already exists; remove it or choose another')
        self.typestore = default_typestore()
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self.counts: Counter[str] = Counter()

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        """Store ``msg`` (rosidl or rosbags message) on ``topic`` at ``log_time_ns``."""
        message = to_rosbags(msg, self.typestore)
        msgtype = message.__msgtype__
        self.write_raw(topic, msgtype, self.typestore.serialize_cdr(message, msgtype), log_time_ns)

    def write_raw(self, topic: str, msgtype: str, data: bytes | memoryview,
                  log_time_ns: int) -> None:
        """Store an already CDR-serialised message of type ``msgtype`` (e.g. 'sensor_msgs/msg/Image')."""
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self.typestore)
        self._writer.write(self._connections[topic], int(log_time_ns), data)
        self.counts[topic] += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> OutputBag:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def header(stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/Header`` (rosidl message class) for ``stamp_ns`` and ``frame_id``."""
    from builtin_interfaces.msg import Time  # noqa: PLC0415  (message classes only, no rclpy)
    from std_msgs.msg import Header  # noqa: PLC0415

    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
