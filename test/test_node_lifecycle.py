"""mtdepth_node as a ROS 2 citizen, over real DDS: lifecycle services, backend fallback,
the depth pair as depth_image_proc finds it, compressed input, several cameras in one process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import model_fixtures as mf
import pytest
from node_harness import (
    CAMERA,
    DEADLINE_S,
    DIAGNOSTIC_NAME,
    EXECUTABLE,
    NodeFactory,
    NodeProcess,
    Probe,
    RosHarness,
    refusal,
    unique_namespace,
    wait_until,
)
from node_harness import (
    GREY as RGB,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from mtdepth_ros.node import model_pool
from mtdepth_ros.node.mtdepth_node import MtDepthNode

DEPTH = 'depth/image_rect'
QUIET_S = 0.6  # how long "nothing arrives" is watched for


@pytest.fixture
def managed(harness: RosHarness, model: Path) -> Iterator[Any]:
    """managed(**parameters) -> (node, probe, full name): a node left to a lifecycle manager."""
    made: list[Node] = []

    def make(**parameters: Any) -> tuple[MtDepthNode, Probe, str]:
        namespace = unique_namespace()
        values = {'model_path': str(model), 'autostart': False, 'diagnostics.period': 0.2,
                  **parameters}
        node = MtDepthNode(context=harness.context, namespace=namespace,
                           parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        made.append(harness.add(node))
        probe = Probe(harness.context, namespace, listen=[DEPTH])
        made.append(harness.add(probe))
        return node, probe, node.get_fully_qualified_name()

    yield make
    for node in reversed(made):
        harness.remove(node)


def answered(probe: Probe) -> None:
    probe.send_until(DEPTH, RGB, CAMERA, count=len(probe.messages(DEPTH)) + 1)


def silent(probe: Probe) -> None:
    before = len(probe.messages(DEPTH))
    deadline = time.monotonic() + QUIET_S
    while time.monotonic() < deadline:
        probe.send(RGB, CAMERA)
        time.sleep(0.05)
    assert len(probe.messages(DEPTH)) == before


def test_every_transition_over_the_lifecycle_services(managed: Any) -> None:
    node, probe, name = managed()
    assert probe.lifecycle_state(name) == 'unconfigured'
    assert probe.lifecycle(name, 'configure') and probe.lifecycle_state(name) == 'inactive'
    assert len(model_pool.loaded()) == 1
    silent(probe)  # configured, not active: no subscription yet
    assert probe.lifecycle(name, 'activate') and probe.lifecycle_state(name) == 'active'
    answered(probe)
    assert probe.lifecycle(name, 'deactivate') and probe.lifecycle_state(name) == 'inactive'
    silent(probe)
    assert probe.lifecycle(name, 'activate')
    answered(probe)  # the model was kept
    assert probe.lifecycle(name, 'deactivate') and probe.lifecycle(name, 'cleanup')
    assert probe.lifecycle_state(name) == 'unconfigured' and model_pool.loaded() == []
    assert probe.lifecycle(name, 'configure') and probe.lifecycle(name, 'activate')
    answered(probe)
    assert probe.lifecycle(name, 'shutdown') and probe.lifecycle_state(name) == 'finalized'
    assert model_pool.loaded() == []


@pytest.mark.parametrize('state', ['unconfigured', 'inactive'])
def test_shutdown_from_any_state_is_clean(managed: Any, state: str) -> None:
    node, probe, name = managed()
    if state == 'inactive':
        assert probe.lifecycle(name, 'configure')
    assert probe.lifecycle(name, 'shutdown') and probe.lifecycle_state(name) == 'finalized'
    assert model_pool.loaded() == []


def test_a_failed_configure_is_recovered_by_a_parameter_change(managed: Any, model: Path,
                                                               tmp_path: Path) -> None:
    node, probe, name = managed(model_path=str(tmp_path / 'absent.onnx'))
    probe.listen_diagnostics()
    assert not probe.lifecycle(name, 'configure')
    assert probe.lifecycle_state(name) == 'unconfigured'
    status = wait_until(lambda: [s for s in probe.diagnostics(DIAGNOSTIC_NAME)
                                 if b'\x02' == s.level], what='an ERROR status')[-1]
    assert 'configure failed' in status.message and 'absent.onnx' in status.message
    assert probe.set_remote_parameter(name, 'model_path', str(model)).successful
    assert probe.lifecycle(name, 'configure') and probe.lifecycle(name, 'activate')
    answered(probe)


def test_start_parameters_change_only_while_unconfigured(managed: Any, model: Path) -> None:
    node, probe, name = managed()
    assert probe.lifecycle(name, 'configure') and probe.lifecycle(name, 'activate')
    result = probe.set_remote_parameter(name, 'model_path', str(model))
    assert not result.successful and 'only while the node is unconfigured' in result.reason
    assert probe.set_remote_parameter(name, 'points.max_depth', 12).successful  # runtime: yes


def test_a_backend_fallback_is_an_error_in_diagnostics(start: NodeFactory) -> None:
    node, probe = start(listen=[DEPTH], backend='onnxruntime:cuda,onnxruntime')
    probe.listen_diagnostics()
    answered(probe)
    status = wait_until(lambda: [s for s in probe.diagnostics(DIAGNOSTIC_NAME)
                                 if 'backend fallback' in s.message], what='fallback status')[-1]
    assert status.level == b'\x02' and 'CUDAExecutionProvider' in status.message


def test_fallback_can_be_forbidden(harness: RosHarness, model: Path) -> None:
    message = refusal(harness, unique_namespace(), model_path=str(model),
                      backend='onnxruntime:cuda,onnxruntime', backend_fallback=False)
    assert 'backend_fallback is false' in message


def test_depth_image_proc_finds_the_depth_pair_with_a_namespace_remap(
        start: NodeFactory, harness: RosHarness) -> None:
    # depth_image_proc's point_cloud_xyz subscribes to 'image_rect' and 'camera_info';
    # run under <ns>/depth, it finds the node's pair with nothing else remapped.
    node, probe = start(listen=[DEPTH])
    consumer = Probe(harness.context, node.get_namespace() + '/depth', listen=[])
    consumer.listen('image_rect', Image)
    consumer.listen('camera_info', CameraInfo)
    harness.add(consumer)
    try:
        wait_until(lambda: consumer.count_publishers(
            f'{node.get_namespace()}/depth/camera_info') > 0, what='the camera_info publisher')
        probe.send_while_not(lambda: consumer.messages('image_rect') and
                             consumer.messages('camera_info'), RGB, CAMERA, 'the pair')
        stamps = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
                  for m in consumer.messages('camera_info')}
        depth = consumer.messages('image_rect')[0]
        assert depth.encoding == '32FC1'
        assert depth.header.stamp.sec * 10**9 + depth.header.stamp.nanosec in stamps
    finally:
        harness.remove(consumer)


@pytest.mark.parametrize('kind', ['jpeg', 'png'])
def test_compressed_input_round_trip(start: NodeFactory, kind: str) -> None:
    node, probe = start(listen=[DEPTH], input_transport='compressed')
    depth = probe.send_until(DEPTH, probe_frame(probe, kind), CAMERA)[0]
    assert (depth.width, depth.height) == (mf.WIDTH, mf.HEIGHT)


def probe_frame(probe: Probe, kind: str) -> Any:
    from mtdepth_ros.conversions.compressed import rgb_to_compressed  # noqa: PLC0415

    return rgb_to_compressed(RGB, kind)


def test_corrupt_and_truncated_compressed_frames_are_dropped_and_counted(
        start: NodeFactory) -> None:
    node, probe = start(listen=[DEPTH], input_transport='compressed')
    good = probe_frame(probe, 'jpeg')
    truncated = probe_frame(probe, 'jpeg')
    truncated.data = truncated.data[:len(truncated.data) // 2]
    garbage = probe_frame(probe, 'png')
    garbage.data = bytes(len(garbage.data))
    for bad in (truncated, garbage):
        probe.send_while_not(lambda: node.stats.drops_total().get('decode', 0) >= 1, bad, CAMERA,
                             'a decode drop')
    probe.send_until(DEPTH, good, CAMERA)
    assert node.stats.drops_total()['decode'] >= 1


def test_two_cameras_share_one_model_and_get_only_their_own_outputs(
        harness: RosHarness, model: Path) -> None:
    base = unique_namespace()
    nodes, probes = [], []
    try:
        for camera in ('front', 'left'):
            node = MtDepthNode(context=harness.context, namespace=f'{base}/{camera}',
                               parameter_overrides=[Parameter('model_path', value=str(model))])
            nodes.append(harness.add(node))
            node.autostart()
            probes.append(harness.add(Probe(harness.context, f'{base}/{camera}', listen=[DEPTH])))
        shared = model_pool.loaded()
        assert len(shared) == 1 and shared[0].users == 2
        for probe in probes:
            answered(probe)
        for probe in probes:  # each heard only answers to the frames it sent
            mine = set(probe.sent)
            assert {(m.header.stamp.sec, m.header.stamp.nanosec)
                    for m in probe.messages(DEPTH)} <= mine
    finally:
        for entity in probes + nodes:
            harness.remove(entity)
    assert model_pool.loaded() == []


@pytest.mark.skipif(not EXECUTABLE.exists(), reason=f'{EXECUTABLE} not installed')
def test_the_executable_serves_several_cameras(harness: RosHarness, tmp_path: Path) -> None:
    model = mf.write_model(tmp_path / 'tiny.onnx')
    base = unique_namespace()
    node = NodeProcess(EXECUTABLE, model, base, tmp_path / 'node.log', cameras=('front', 'left'))
    probes = [harness.add(Probe(harness.context, f'{base}/{camera}', listen=[DEPTH]))
              for camera in ('front', 'left')]
    try:
        for probe in probes:
            probe.send_until(DEPTH, RGB, CAMERA, timeout=3 * DEADLINE_S)
        for probe in probes:
            mine = set(probe.sent)
            assert {(m.header.stamp.sec, m.header.stamp.nanosec)
                    for m in probe.messages(DEPTH)} <= mine
    finally:
        for probe in probes:
            harness.remove(probe)
        code = node.interrupt()
    output = node.output()
    assert code == 0, output
    assert 'sharing the loaded model with 1 other camera node(s)' in output, output
    assert f'[{base[1:]}.front.mtdepth_node]' in output and f'[{base[1:]}.left.mtdepth_node]' in output
