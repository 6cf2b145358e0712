"""Several cameras: one process serving N cameras against N processes of one camera each.

``python -m bench cameras``. The installed ``mtdepth_node`` runs the bundled
model on N = 1, 2, 4 cameras, either as one process (``--cameras c0,c1,...``:
one loaded model, one inference worker, frames of the cameras batched when
the model takes a batch) or as N separate processes. A publisher in this
process sends KITTI-size frames with their camera_info to every camera at
PUBLISH_HZ for MEASURE_S, and listens to every depth output. Reported per
setup: CPU time of the node processes per answered frame (from /proc, user +
system), frames answered, and resident memory of the node processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from bench.rows import report
from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.cdr import image_bytes, stamp_of
from mtdepth_ros.evaluation.live_node import transport_environment
from mtdepth_ros.inference.resources import default_model_candidates

REPO = Path(__file__).resolve().parents[1]
EXECUTABLE = Path(sys.executable).parent / 'mtdepth_node'
PARAMS = REPO / 'config' / 'mtdepth.yaml'
CAMERA_COUNTS = (1, 2, 4)
PUBLISH_HZ = 2.0  # per camera: a rate the 2-core machine keeps up with at N = 4
WARM_UP_S = 60.0  # until every camera answered once (start-up, model load)
MEASURE_S = 12.0
WIDTH, HEIGHT = 1242, 375
CAMERA = PinholeCamera(width=WIDTH, height=HEIGHT, fx=721.5, fy=721.5, cx=609.6, cy=172.9)
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
PAGE_KB = os.sysconf('SC_PAGE_SIZE') // 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    return int(Path(f'/proc/{pid}/statm').read_text().split()[1]) * PAGE_KB / 1024


class Cameras:
    """Publishes frames to /bench/<camera>/image and listens to an output of each camera
    (default depth/image_rect): answers counted, latency (stamp to arrival) kept.

    Both ends use serialized bytes, as a C++ subscriber would see them: the
    latency is the node's and the transport's, not this process's
    conversions to and from Python messages.
    """

    def __init__(self, names: list[str], output: str = 'depth/image_rect',
                 kind: Any = Image) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('bench_cameras', context=self.context)
        reliable = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
        self.images = {n: self.node.create_publisher(Image, f'/bench/{n}/image', reliable)
                       for n in names}
        self.infos = {n: self.node.create_publisher(CameraInfo, f'/bench/{n}/camera_info',
                                                    reliable) for n in names}
        self.answers = dict.fromkeys(names, 0)
        self.latencies_s: list[float] = []
        for name in names:
            self.node.create_subscription(kind, f'/bench/{name}/{output}',
                                          lambda msg, n=name: self._answer(n, msg), reliable,
                                          raw=True)
        self.rgb = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _answer(self, name: str, data: bytes) -> None:
        arrived = time.time()
        self.answers[name] += 1
        sec, nanosec = stamp_of(data)  # the node stamps nothing: the input's stamp
        self.latencies_s.append(arrived - (sec + nanosec * 1e-9))

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def publish(self) -> None:
        header = Header(stamp=self.node.get_clock().now().to_msg(), frame_id='camera')  # wall
        for name, publisher in self.images.items():
            self.infos[name].publish(CAMERA.to_camera_info(header))
            publisher.publish(image_bytes(self.rgb, 'rgb8', header))

    def close(self) -> None:
        self._stop.set()
        self._spinner.join()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def start(model: Path, cameras: list[str], shared: bool, log: Path,
          parameters: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """The node executable: one process for ``cameras`` (shared), or one camera's alone;
    ``parameters`` are more ``name:=value`` settings."""
    own = ['--cameras', ','.join(cameras)] if shared else []
    namespace = '/bench' if shared else f'/bench/{cameras[0]}'
    settings = [arg for p in parameters for arg in ('-p', p)]
    args = [str(EXECUTABLE), *own, '--ros-args', '--params-file', str(PARAMS),
            '-p', f'model_path:={model}', *settings, '-r', f'__ns:={namespace}']
    return subprocess.Popen(args, stdout=log.open('wb'), stderr=subprocess.STDOUT)


def run(model: Path, count: int, one_process: bool, folder: Path) -> dict[str, float]:
    names = [f'c{i}' for i in range(count)]
    groups = [names] if one_process else [[n] for n in names]
    processes = [start(model, group, one_process, folder / f'{count}_{one_process}_{i}.log')
                 for i, group in enumerate(groups)]
    cameras = Cameras(names)
    try:
        deadline = time.monotonic() + WARM_UP_S
        while min(cameras.answers.values()) == 0 and time.monotonic() < deadline:
            cameras.publish()
            time.sleep(1.0 / PUBLISH_HZ)
        if min(cameras.answers.values()) == 0:
            raise RuntimeError(f'not every camera answered within {WARM_UP_S:g} s; see {folder}')
        cpu0 = sum(cpu_seconds(p.pid) for p in processes)
        answers0 = sum(cameras.answers.values())
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < MEASURE_S:
            cameras.publish()
            sent += count
            time.sleep(max(0.0, started + sent / count / PUBLISH_HZ - time.monotonic()))
        time.sleep(1.0)  # the last answers
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu0
        answered = sum(cameras.answers.values()) - answers0
        memory = sum(rss_mb(p.pid) for p in processes)
    finally:
        cameras.close()
        for process in processes:
            process.terminate()
            process.wait(30)
    return {'sent': sent, 'answered': answered, 'cpu_ms_per_frame': 1000 * cpu / max(answered, 1),
            'rss_mb': memory}


def main() -> None:
    model = next((m for m in default_model_candidates() if m.is_file()), None)
    if model is None or not EXECUTABLE.exists():
        print(f'skipped: needs {EXECUTABLE} and the bundled model (make venv)')
        return
    for setting in transport_environment(os.environ):  # large frames between processes
        print(f'set {setting} (unset in the environment)')
    print(f'bundled model, {WIDTH}x{HEIGHT} rgb8 frames at {PUBLISH_HZ:g} Hz per camera for '
          f'{MEASURE_S:g} s; CPU = user + system time of the node processes')
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for count in CAMERA_COUNTS:
            separate = run(model, count, False, Path(folder))
            shared = run(model, count, True, Path(folder))
            for label, result in (('N processes', separate), ('one process', shared)):
                rows.append({'cameras': count, 'setup': label,
                             'answered / sent': f"{result['answered']} / {result['sent']}",
                             'CPU ms per frame': result['cpu_ms_per_frame'],
                             'vs N processes': result['cpu_ms_per_frame']
                             / separate['cpu_ms_per_frame'],
                             'RSS MB': result['rss_mb']})
    report('cameras', rows)
