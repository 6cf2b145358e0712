"""Latency from the image stamp to the cloud in another process, against the network's time.

``python -m bench latency``. The installed ``mtdepth_node`` runs the bundled
model (NODE_PARAMETERS: ONNX Runtime on every core, as ``make demo`` runs it,
so that the network keeps up with 10 Hz); this process publishes KITTI-size
frames with their camera_info at PUBLISH_HZ and subscribes to ``points``
(organized, every field). Latency is the arrival time of each cloud minus
its stamp (the image's, set when published); this process tunes its
allocator as the node does. The network's own time per frame, and the
node's own view of the frame, are read from the node's ``/diagnostics`` in
the same run, so the table shows what the node and the transport add to it.
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
from mtdepth_ros.node.process import tune_allocator

PUBLISH_HZ = 10.0
# ONNX Runtime on every core: with the default single thread the bundled model takes about
# 130 ms on a 2-core machine, slower than a 10 Hz camera, and frames would wait in line.
NODE_PARAMETERS = ('threads:=0',)
WARM_UP_S = 60.0
MEASURE_S = 15.0
INFERENCE_KEY = 'inference mean (s)'
# the node's own figures for the same frames: its worker's time per frame, and the
# image stamp to the end of publishing on its clock
NODE_KEYS = {'processing mean (s)': 'node: worker time per frame (prepare, network, complete, '
                                    'publish)',
             'latency mean (s)': 'node: image stamp -> published'}


def main() -> None:
    model = next((m for m in default_model_candidates() if m.is_file()), None)
    if model is None or not EXECUTABLE.exists():
        print(f'skipped: needs {EXECUTABLE} and the bundled model (make venv)')
        return
    transport_environment(os.environ)
    # This process is the cloud's subscriber: without it, each 3.9 MB cloud arrives into
    # freshly mapped pages (17.7 vs 7.3 ms from publish to callback, measured between two
    # plain rclpy processes). Python subscribers of big messages want the same (README).
    tune_allocator()
    with tempfile.TemporaryDirectory() as folder:
        process = start(model, ['c0'], False, Path(folder) / 'node.log', NODE_PARAMETERS)
        cameras = Cameras(['c0'], 'points', PointCloud2)
        inference: list[dict[str, float]] = []

        def diagnostics(msg: Any) -> None:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if INFERENCE_KEY in values and float(values['frames published']) > 0:
                    inference.append({key: float(values[key])
                                      for key in (INFERENCE_KEY, *NODE_KEYS)})

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
            network_s = full[2][INFERENCE_KEY] / 1e3
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


def measure(cameras: Cameras, inference: list[dict[str, float]],
            hz: float) -> tuple[np.ndarray, int, dict[str, float]]:
    """(latencies in ms, frames sent, the node's figures in ms) of MEASURE_S seconds of
    frames at ``hz``.

    The node's figures (the network's time, ``inference mean``, and NODE_KEYS)
    are the medians of its diagnostics while they ran.
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
    node = {key: float(np.median([i[key] for i in inference])) * 1e3 if inference
            else float('nan') for key in (INFERENCE_KEY, *NODE_KEYS)}
    return np.asarray(cameras.latencies_s) * 1e3, sent, node


def latency_rows(hz: float, latencies: np.ndarray, sent: int,
                 node: dict[str, float]) -> list[dict[str, Any]]:
    median, p95 = float(np.median(latencies)), float(np.percentile(latencies, 95))
    network = node[INFERENCE_KEY]
    return [
        {'name': f'{hz:.3g} Hz: network (node diagnostics, inference mean)', 'ms': network},
        *({'name': f'{hz:.3g} Hz: {label}', 'ms': node[key], 'minus network': node[key] - network}
          for key, label in NODE_KEYS.items()),
        {'name': f'{hz:.3g} Hz: image stamp -> cloud received, median', 'ms': median,
         'minus network': median - network},
        {'name': f'{hz:.3g} Hz: image stamp -> cloud received, p95', 'ms': p95,
         'minus network': p95 - network},
        {'name': f'{hz:.3g} Hz: clouds received / frames sent', 'ms': f'{latencies.size} / {sent}'},
    ]
