"""mtdepth_node on cameras of any shape: crop to the training aspect, true intrinsics,
bounded focal correction, REP 117 depth, and parameters as a careless user gives them.

The tiny model's input is 32x24 (4:3, test/model_fixtures.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import model_fixtures as mf
import numpy as np
import pytest
from node_harness import (
    CAMERA,
    DIAGNOSTIC_NAME,
    NodeFactory,
    Probe,
    RosHarness,
    refusal,
    unique_namespace,
    wait_until,
)
from node_harness import GREY as RGB
from rclpy.parameter import Parameter

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.clouds import cloud_to_points
from mtdepth_ros.conversions.geometry import Region
from mtdepth_ros.conversions.images import image_to_array
from mtdepth_ros.node.mtdepth_node import MtDepthNode

WIDE_W, WIDE_H = 128, 48  # 8:3: twice as wide as the network's aspect
WIDE = PinholeCamera(width=WIDE_W, height=WIDE_H, fx=2 * mf.FOCAL_PX, fy=2 * mf.FOCAL_PX,
                     cx=63.5, cy=23.5)
WIDE_RGB = np.full((WIDE_H, WIDE_W, 3), 90, np.uint8)
CROP = Region(top=0, left=32, height=48, width=64)  # the centred 4:3 window


def status(probe: Probe, wanted: str) -> Any:
    """The first node diagnostics status whose message mentions ``wanted``."""
    def find() -> Any:
        return [s for s in probe.diagnostics(DIAGNOSTIC_NAME) if wanted in s.message]
    return wait_until(find, what=f"diagnostics saying '{wanted}'")[0]


def test_a_wide_camera_is_cropped_and_its_camera_info_follows(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect', 'depth/camera_info'])
    info = probe.send_until('depth/camera_info', WIDE_RGB, WIDE)[0]
    published = PinholeCamera.from_camera_info(info)
    expected = WIDE.cropped(CROP).scaled(mf.WIDTH, mf.HEIGHT)  # cx: (63.5 - 32 + 0.5) / 2 - 0.5
    assert published == expected and published.cx == 15.5
    depth = wait_until(lambda: probe.messages('depth/image_rect'))[0]
    assert (depth.width, depth.height) == (mf.WIDTH, mf.HEIGHT)
    # the crop keeps the training scale: fx 60 over a 64-pixel window -> 30 at the network
    np.testing.assert_allclose(image_to_array(depth), mf.expected_depth(), rtol=1e-6)


def test_at_input_resolution_the_outputs_cover_the_crop_in_image_pixels(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect', 'depth/camera_info'], output_resolution='input')
    info = probe.send_until('depth/camera_info', WIDE_RGB, WIDE)[0]
    assert PinholeCamera.from_camera_info(info) == WIDE.cropped(CROP)
    depth = wait_until(lambda: probe.messages('depth/image_rect'))[0]
    assert (depth.width, depth.height) == (CROP.width, CROP.height)


def test_non_square_pixels_are_reported(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    probe.listen_diagnostics()
    squashed = PinholeCamera(width=64, height=48, fx=66.0, fy=60.0, cx=31.5, cy=23.5)
    probe.send_until('depth/image_rect', RGB, squashed, count=3)
    assert status(probe, 'x/y scale differs from training').level == b'\x01'  # WARN


@pytest.mark.parametrize('fx', [1e300, 1e-300, 4.5 * 2 * mf.FOCAL_PX])
def test_a_focal_correction_out_of_bounds_makes_the_camera_info_unusable(
        start: NodeFactory, fx: float) -> None:
    node, probe = start(listen=['depth/image_rect', 'points'])
    probe.listen_diagnostics()
    broken = PinholeCamera(width=64, height=48, fx=fx, fy=fx, cx=31.5, cy=23.5)
    depth = image_to_array(probe.send_until('depth/image_rect', RGB, broken)[0])
    # published uncorrected, as without camera_info; no cloud from a camera that lies
    np.testing.assert_allclose(depth, mf.expected_depth(), rtol=1e-6)
    assert np.isfinite(depth).all() and probe.messages('points') == []
    assert status(probe, 'unusable camera_info').level == b'\x01'  # WARN
    assert node.stats.notes_total()['unusable camera_info'] >= 1


@pytest.fixture(scope='module')
def sky_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.write_model(tmp_path_factory.mktemp('sky') / 'sky.onnx', far=('sky',),
                          valid_range=(2.0, 20.0))


def start_on(harness: RosHarness, model: Path, **parameters: Any) -> tuple[MtDepthNode, Probe]:
    namespace = unique_namespace()
    values = {'model_path': str(model), **parameters}
    node = MtDepthNode(context=harness.context, namespace=namespace,
                       parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
    harness.add(node)
    node.autostart()
    probe = Probe(harness.context, namespace, listen=['depth/image_rect', 'points'])
    harness.add(probe)
    return node, probe


def test_rep117_depth_and_a_cloud_of_finite_points(harness: RosHarness, sky_model: Path) -> None:
    node, probe = start_on(harness, sky_model, **{'points.drop_classes': ''})
    try:
        probe.send_until('points', RGB, CAMERA)
        depth = image_to_array(wait_until(lambda: probe.messages('depth/image_rect'))[0])
        expected = mf.expected_depth()
        sky = mf.expected_segmentation() == mf.CLASS_NAMES.index('sky')
        assert np.isposinf(depth[sky]).all()
        assert np.isposinf(depth[~sky & (expected >= 20.0)]).all()
        assert np.isneginf(depth[~sky & (expected <= 2.0)]).all()
        points = cloud_to_points(probe.messages('points')[0])
        xyz = np.stack([points['x'], points['y'], points['z']], axis=-1)
        finite = np.isfinite(depth)
        assert np.isnan(xyz[~finite]).all() and np.isfinite(xyz[finite]).all()
    finally:
        harness.remove(probe)
        harness.remove(node)


def test_an_unorganized_cloud_holds_finite_points_only(harness: RosHarness,
                                                         sky_model: Path) -> None:
    node, probe = start_on(harness, sky_model, **{'points.organized': False})
    try:
        cloud = probe.send_until('points', RGB, CAMERA)[0]
        points = cloud_to_points(cloud)
        assert cloud.height == 1 and cloud.width > 0
        assert all(np.isfinite(points[axis]).all() for axis in ('x', 'y', 'z'))
    finally:
        harness.remove(probe)
        harness.remove(node)


def test_integers_are_accepted_for_doubles_at_start_and_at_runtime(start: NodeFactory) -> None:
    node, _ = start(listen=[], points__max_depth=30, camera_info_wait=0)
    assert node.get_parameter('points.max_depth').value == 30.0
    assert node.config.cloud.max_depth == 30.0 and node.config.camera_info_wait == 0.0
    result = node.set_parameters([Parameter('points.max_depth', value=25)])[0]
    assert result.successful, result.reason
    assert node.config.cloud.max_depth == 25.0


def refuse(harness: RosHarness, model: Path, **parameters: Any) -> str:
    return refusal(harness, '/refused', model_path=str(model), **parameters)


def test_a_misspelt_parameter_refuses_to_start_with_the_closest_name(
        harness: RosHarness, model: Path) -> None:
    message = refuse(harness, model, model_pth='/elsewhere.onnx')
    assert message.startswith('/refused/mtdepth_node: cannot start: ')
    assert "'model_pth' (did you mean 'model_path'?)" in message
    assert "'outputs.point' (did you mean 'outputs.points'?)" in \
        refuse(harness, model, outputs__point=False)


def test_an_unrelated_unknown_parameter_is_named_without_a_guess(harness: RosHarness,
                                                                  model: Path) -> None:
    assert "unknown parameter 'zzz'; the parameters" in refuse(harness, model, zzz=1)
