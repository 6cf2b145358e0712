"""``ros2 launch mtdepth_ros depth.launch.py`` as a user runs it, where ROS 2's launch is installed.

launch, launch_ros and ros2cli are not on PyPI, so this test runs only where
they are importable (a ROS 2 installation, or their sources on PYTHONPATH:
docs/launch_check.md) and the package is installed where ament finds it
(AMENT_PREFIX_PATH). It starts the real launch file with the model, namespace
and camera topic arguments, talks to the node over real topics and stops it
with Ctrl-C, as a person would.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import model_fixtures as mf
import numpy as np
import pytest
from node_harness import DEADLINE_S, OUTPUT_TYPES, Probe, RosHarness, unique_namespace, wait_until
from sensor_msgs.msg import Image

from mtdepth_ros.conversions.camera import PinholeCamera

REPO = Path(__file__).resolve().parents[1]
EXIT_TIMEOUT_S = 20.0
# ros2cli's own entry point, run with this interpreter (the `ros2` script of a
# ROS installation is the same call).
ROS2 = [sys.executable, '-c', 'import sys; from ros2cli.cli import main; sys.exit(main())']


def missing_requirement() -> str | None:
    for module in ('launch', 'launch_ros', 'ros2cli', 'ros2launch'):
        if importlib.util.find_spec(module) is None:
            return f'{module} is not importable (not on PyPI; needs a ROS 2 installation)'
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        share = Path(get_package_share_directory('mtdepth_ros'))
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset
        return 'mtdepth_ros is not installed where AMENT_PREFIX_PATH points'
    if not (share / 'launch' / 'depth.launch.py').is_file():
        return f'{share}/launch/depth.launch.py is not installed'
    return None


MISSING = missing_requirement()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))


@pytest.fixture
def harness() -> Iterator[RosHarness]:
    ros = RosHarness()
    yield ros
    ros.shutdown()


def launch(tmp_path: Path, *arguments: str) -> tuple[subprocess.Popen[bytes], Path]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    log = tmp_path / f'launch{len(list(tmp_path.glob("launch*.log")))}.log'
    with log.open('wb') as stream:
        process = subprocess.Popen([*ROS2, 'launch', 'mtdepth_ros', 'depth.launch.py', *arguments],
                                   env=env, stdout=stream, stderr=subprocess.STDOUT)
    return process, log


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(EXIT_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


CAMERA = PinholeCamera(width=64, height=48, fx=50.0, fy=50.0, cx=31.5, cy=23.5)
FRAME = np.zeros((48, 64, 3), np.uint8)


def test_launch_file_starts_the_lifecycle_node_active_on_the_camera_topics(
        harness: RosHarness, tmp_path: Path) -> None:
    model = mf.write_model(tmp_path / 'tiny.onnx')
    camera_ns = unique_namespace()  # the probe publishes <camera_ns>/image, .../camera_info
    node_ns = camera_ns + '_out'
    process, log = launch(tmp_path, f'model_path:={model}', f'namespace:={node_ns}',
                          f'image:={camera_ns}/image', f'camera_info:={camera_ns}/camera_info')
    probe = Probe(harness.context, camera_ns, listen=[])
    for topic in ('depth/image_rect', 'points'):
        probe.listen(f'{node_ns}/{topic}', kind=OUTPUT_TYPES[topic])
    harness.add(probe)
    try:
        probe.send_while_not(lambda: probe.messages(f'{node_ns}/points'), FRAME, CAMERA,
                             timeout=6 * DEADLINE_S)
        depth = wait_until(lambda: probe.messages(f'{node_ns}/depth/image_rect'))[0]
        assert (depth.encoding, depth.width, depth.height) == ('32FC1', mf.WIDTH, mf.HEIGHT)
        assert probe.lifecycle_state(f'{node_ns}/mtdepth_node') == 'active'
    finally:
        code = stop(process)  # Ctrl-C while the probe is still subscribed, as a person does
        harness.remove(probe)
    output = log.read_text(errors='replace')
    assert code == 0, f'ros2 launch exited with {code}:\n{output}'
    assert 'mtdepth_node' in output
    assert 'Traceback' not in output and 'frame failed' not in output, output


def test_launch_file_serves_several_cameras_from_one_process(harness: RosHarness,
                                                             tmp_path: Path) -> None:
    model = mf.write_model(tmp_path / 'tiny.onnx')
    camera_ns = unique_namespace()
    node_ns = camera_ns + '_out'
    process, log = launch(tmp_path, f'model_path:={model}', f'namespace:={node_ns}',
                          'cameras:=front,left', f'image:={camera_ns}/{{camera}}/image',
                          f'camera_info:={camera_ns}/{{camera}}/camera_info')
    probes = []
    try:
        for camera in ('front', 'left'):
            probe = Probe(harness.context, f'{camera_ns}/{camera}', listen=[])
            probe.listen(f'{node_ns}/{camera}/depth/image_rect', kind=Image)
            probes.append(harness.add(probe))
        for probe, camera in zip(probes, ('front', 'left')):
            probe.send_while_not(lambda p=probe, c=camera: p.messages(
                f'{node_ns}/{c}/depth/image_rect'), FRAME, CAMERA, timeout=6 * DEADLINE_S)
    finally:
        code = stop(process)
        for probe in probes:
            harness.remove(probe)
    output = log.read_text(errors='replace')
    assert code == 0, output
    assert 'sharing the loaded model with 1 other camera node(s)' in output, output


def test_a_bad_log_level_is_refused_with_the_allowed_values(tmp_path: Path) -> None:
    process, log = launch(tmp_path, 'log_level:=loud')
    code = process.wait(EXIT_TIMEOUT_S)
    output = log.read_text(errors='replace')
    assert code != 0
    assert "log_level 'loud' is not one of: debug, info, warn, error, fatal" in output, output
    assert 'Traceback' not in output, output
