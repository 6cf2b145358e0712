"""Latency from the image stamp to the cloud in another process, against the network's time.

``python -m bench latency``. The installed ``mtdepth_node`` runs the bundled
model; this process publishes KITTI-size frames with their camera_info at
PUBLISH_HZ and subscribes to ``points`` (organized, every field). Latency is
the arrival time of each cloud minus its stamp (the image's, set when
published). The network's own time per frame is read from the node's
``/diagnostics`` (``inference mean``) in the same run, so the table shows
what the node and the transport add to it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import PointCloud2

from bench.bench_cameras import EXECUTABLE, Cameras, start
from bench.rows import report
from mtdepth_ros.evaluation.live_node import transport_environment
from mtdepth_ros.inference.resources import default_model_candidates

PUBLISH_HZ = 10.0
WARM_UP_S = 60.0
MEASURE_S = 15.0
INFERENCE_KEY = 'inference mean (s)'


def main() -> None:
    model = next((m for m in default_model_candidates() if m.is_file()), None)
    if model is None or not EXECUTABLE.exists():
        print(f'skipped: needs {EXECUTABLE} and the bundled model (make venv)')
        return
    transport_environment(os.environ)
    with tempfile.TemporaryDirectory() as folder:
        process = start(model, ['c0'], False, Path(folder) / 'node.log')
        cameras = Cameras(['c0'], 'points', PointCloud2)
        inference: list[float] = []

        def diagnostics(msg: Any) -> None:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if INFERENCE_KEY in values and float(values['frames published']) > 0:
                    inference.append(float(values[INFERENCE_KEY]))

        cameras.node.create_subscription(
            DiagnosticArray, '/diagnostics', diagnostics,
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        try:
            deadline = time.monotonic() + WARM_UP_S
            while not cameras.answers['c0'] and time.monotonic() < deadline:
                cameras.publish()
                time.sleep(1 / PUBLISH_HZ)
            full = measure(cameras, inference, PUBLISH_HZ)
            # The same node at a rate the network keeps up with: no frame waits
            # for the one before, so what remains over the network is the node's.
            network_s = full[2] / 1e3
            paced_hz = min(PUBLISH_HZ, 0.5 / network_s) if network_s > 0 else PUBLISH_HZ
            paced = measure(cameras, inference, paced_hz)
        finally:
            cameras.close()
            process.terminate()
            process.wait(30)
    if not full[0].size or not paced[0].size:
        print('no cloud arrived')
        return
    report('latency', [*latency_rows(PUBLISH_HZ, *full), *latency_rows(paced_hz, *paced)],
           note=f'bundled model, 1242x375 rgb8 frames and camera_info at {PUBLISH_HZ:g} Hz, then at '
            'half the rate the network allows (no frame waits for the one before); the '
            'organized cloud (every field) received in this process')


def measure(cameras: Cameras, inference: list[float],
            hz: float) -> tuple[np.ndarray, int, float]:
    """(latencies in ms, frames sent, network ms) of MEASURE_S seconds of frames at ``hz``.

    The network's time is the median of the node's ``inference mean`` while
    they ran.
    """
    time.sleep(1.0)  # the last frame of any earlier phase lands first
    cameras.latencies_s.clear()
    inference.clear()
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < MEASURE_S:
        cameras.publish()
        sent += 1
        time.sleep(max(0.0, started + sent / hz - time.monotonic()))
    time.sleep(1.0)
    network = float(np.median(inference)) * 1e3 if inference else float('nan')
    return np.asarray(cameras.latencies_s) * 1e3, sent, network


def latency_rows(hz: float, latencies: np.ndarray, sent: int,
                 network: float) -> list[dict[str, Any]]:
    median, p95 = float(np.median(latencies)), float(np.percentile(latencies, 95))
    return [
        {'name': f'{hz:.3g} Hz: network (node diagnostics, inference mean)', 'ms': network},
        {'name': f'{hz:.3g} Hz: image stamp -> cloud received, median', 'ms': median,
         'minus network': median - network},
        {'name': f'{hz:.3g} Hz: image stamp -> cloud received, p95', 'ms': p95,
         'minus network': p95 - network},
        {'name': f'{hz:.3g} Hz: clouds received / frames sent', 'ms': f'{latencies.size} / {sent}'},
    ]
