"""mtdepth_node in this process, on real topics: outputs, geometry, switches, bad input.

The tiny model (test/model_fixtures.py) has a 32x24 input and known outputs;
the probe sends 64x48 images, so outputs at network resolution are half the
image size and a camera with fx 60 at the image is the training camera's 30
at the network (focal ratio 1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import model_fixtures as mf
import numpy as np
import pytest
from node_harness import (
    FRAME_ID,
    NodeFactory,
    Probe,
    RosHarness,
    refusal,
    unique_namespace,
    wait_until,
)
from rclpy.parameter import Parameter

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.clouds import cloud_to_points
from mtdepth_ros.conversions.images import array_to_image, image_to_array
from mtdepth_ros.node.mtdepth_node import MtDepthNode

IMAGE_W, IMAGE_H = 2 * mf.WIDTH, 2 * mf.HEIGHT
CAMERA = PinholeCamera(width=IMAGE_W, height=IMAGE_H, fx=2 * mf.FOCAL_PX, fy=2 * mf.FOCAL_PX,
                       cx=31.5, cy=23.5)
RGB = np.full((IMAGE_H, IMAGE_W, 3), (200, 120, 40), np.uint8)

def first(probe: Probe, topic: str) -> Any:
    return wait_until(lambda: probe.messages(topic), what=topic)[0]


class RunRecorder:
    """Wraps a backend's run to record the outputs each call asked for."""

    def __init__(self, run: Callable[..., dict[str, np.ndarray]]) -> None:
        self.asked: list[list[str]] = []
        self._run = run

    def __call__(self, image: np.ndarray, outputs: Any) -> dict[str, np.ndarray]:
        self.asked.append(list(outputs))
        return self._run(image, outputs)


def test_every_output_arrives_with_encoding_size_stamp_and_frame(start: NodeFactory) -> None:
    node, probe = start()
    probe.send_until('points', RGB, CAMERA)
    expected = {'depth/image_rect': '32FC1', 'intervals/image_rect': 'mono8', 'intervals/image_rect_color': 'rgb8',
                'segmentation/image_rect': 'mono8', 'segmentation/image_rect_color': 'rgb8', 'confidence/image_rect': '32FC1'}
    sent = set(probe.sent)
    for topic, encoding in expected.items():
        msg = first(probe, topic)
        assert msg.encoding == encoding, topic
        assert (msg.width, msg.height) == (mf.WIDTH, mf.HEIGHT), topic
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in sent, topic
        assert msg.header.frame_id == FRAME_ID, topic
    for topic in ('points', 'depth/camera_info'):
        msg = first(probe, topic)
        assert msg.header.frame_id == FRAME_ID and (msg.width, msg.height) == (mf.WIDTH, mf.HEIGHT)


def test_depth_is_the_models_depth_in_metres(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    depth = image_to_array(probe.send_until('depth/image_rect', RGB, CAMERA)[0])
    np.testing.assert_allclose(depth, mf.expected_depth(), rtol=1e-6)


def test_maps_match_the_model(start: NodeFactory) -> None:
    node, probe = start(listen=['intervals/image_rect', 'segmentation/image_rect', 'confidence/image_rect'])
    probe.send_until('confidence/image_rect', RGB, CAMERA)
    intervals = wait_until(lambda: probe.messages('intervals/image_rect'))[0]
    segmentation = wait_until(lambda: probe.messages('segmentation/image_rect'))[0]
    np.testing.assert_array_equal(image_to_array(intervals), mf.expected_intervals())
    np.testing.assert_array_equal(image_to_array(segmentation), mf.expected_segmentation())
    np.testing.assert_array_equal(image_to_array(probe.messages('confidence/image_rect')[0]),
                                  mf.expected_confidence())


def test_depth_camera_info_is_scaled_to_the_network(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect', 'depth/camera_info'])
    info = probe.send_until('depth/camera_info', RGB, CAMERA)[0]
    camera = PinholeCamera.from_camera_info(info)
    assert (camera.width, camera.height) == (mf.WIDTH, mf.HEIGHT)
    assert camera.fx == pytest.approx(CAMERA.fx / 2)
    assert camera.cx == pytest.approx((CAMERA.cx + 0.5) / 2 - 0.5)  # as cv2.resize moves centres


def test_cloud_points_back_project_onto_the_depth_image(start: NodeFactory) -> None:
    # every point kept (the fixture's 'sky' band too), to check each one's math
    node, probe = start(listen=['points', 'depth/camera_info'], points__drop_classes='')
    cloud = cloud_to_points(probe.send_until('points', RGB, CAMERA)[0])
    camera = PinholeCamera.from_camera_info(wait_until(lambda: probe.messages('depth/camera_info'))[0])
    x, y, z = cloud['x'], cloud['y'], cloud['z']
    rows, cols = np.indices(z.shape)
    np.testing.assert_allclose(z, mf.expected_depth(), rtol=1e-6)
    # back onto the depth image: u = fx x / z + cx, v = fy y / z + cy (float32 rounding only)
    np.testing.assert_allclose(x * camera.fx / z + camera.cx, cols, atol=1e-4)
    np.testing.assert_allclose(y * camera.fy / z + camera.cy, rows, atol=1e-4)
    np.testing.assert_allclose(x, (cols - camera.cx) * z / camera.fx, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y, (rows - camera.cy) * z / camera.fy, rtol=1e-6, atol=1e-6)
    assert set(cloud) == {'x', 'y', 'z', 'rgb', 'label', 'confidence'}
    np.testing.assert_array_equal(cloud['label'], mf.expected_segmentation())
    np.testing.assert_array_equal(cloud['rgb'][0, 0], (200, 120, 40))


@pytest.mark.parametrize('resolution', ['network', 'input'])
def test_a_bgr8_frame_colours_the_cloud_in_rgb(start: NodeFactory, resolution: str) -> None:
    # bgr8 frames are resized before their channels are swapped (network resolution)
    # or swapped in the network's region (input resolution): the same colours either way
    node, probe = start(listen=['points'], output_resolution=resolution)
    bgr = array_to_image(np.ascontiguousarray(RGB[:, :, ::-1]), 'bgr8')
    cloud = cloud_to_points(probe.send_until('points', bgr, CAMERA)[0])
    assert cloud['rgb'].shape[:2] == ((mf.HEIGHT, mf.WIDTH) if resolution == 'network'
                                      else (IMAGE_H, IMAGE_W))
    np.testing.assert_array_equal(cloud['rgb'].reshape(-1, 3),
                                  np.broadcast_to((200, 120, 40), (cloud['rgb'][..., 0].size, 3)))


def test_focal_correction_scales_depth_with_the_live_camera(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    wide = PinholeCamera(width=IMAGE_W, height=IMAGE_H, fx=4 * mf.FOCAL_PX, fy=4 * mf.FOCAL_PX,
                         cx=31.5, cy=23.5)  # twice the training focal length
    # the last of two: a lost camera_info (best effort) leaves one frame uncorrected
    depth = image_to_array(probe.send_until('depth/image_rect', RGB, wide, count=2)[-1])
    np.testing.assert_allclose(depth, 2 * mf.expected_depth(), rtol=1e-6)


def test_focal_correction_can_be_switched_off(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'], focal_correction=False)
    wide = PinholeCamera(width=IMAGE_W, height=IMAGE_H, fx=4 * mf.FOCAL_PX, fy=4 * mf.FOCAL_PX,
                         cx=31.5, cy=23.5)
    depth = image_to_array(probe.send_until('depth/image_rect', RGB, wide)[0])
    np.testing.assert_allclose(depth, mf.expected_depth(), rtol=1e-6)


def test_flip_averages_confidence_and_depth_with_the_mirror_image(start: NodeFactory) -> None:
    # the fixture's confidence is 1 on the left half and LOW_CONFIDENCE on the right: the
    # mirror pass, flipped back, puts the other value on each half; depth is by row alone
    node, probe = start(listen=['confidence/image_rect', 'depth/image_rect'], flip=True)
    confidence = image_to_array(probe.send_until('confidence/image_rect', RGB, CAMERA)[0])
    np.testing.assert_allclose(confidence, (1 + mf.LOW_CONFIDENCE) / 2)
    depth = image_to_array(wait_until(lambda: probe.messages('depth/image_rect'))[0])
    np.testing.assert_allclose(depth, mf.expected_depth(), rtol=1e-6)


def test_flip_switches_on_at_runtime(start: NodeFactory) -> None:
    node, probe = start(listen=['confidence/image_rect'])
    before = image_to_array(probe.send_until('confidence/image_rect', RGB, CAMERA)[0])
    np.testing.assert_array_equal(before, mf.expected_confidence())
    assert node.set_parameters([Parameter('flip', value=True)])[0].successful
    averaged = (1 + mf.LOW_CONFIDENCE) / 2
    probe.send_while_not(lambda: np.allclose(image_to_array(
        probe.messages('confidence/image_rect')[-1]), averaged), RGB, CAMERA,
        what='a frame run with its mirror image')


def test_ground_contact_puts_the_car_at_the_road_depth(start: NodeFactory,
                                                      tmp_path: Path) -> None:
    # the fixture's car band stands on GROUND_ROWS rows of road: in each of its columns
    # the car takes the depth of the first road row beneath it
    path = mf.write_model(tmp_path / 'standing.onnx', standing=True)
    node, probe = start(listen=['depth/image_rect'], model_path=str(path), ground_contact=True)
    depth = image_to_array(probe.send_until('depth/image_rect', RGB, CAMERA)[0])
    car = mf.expected_segmentation(standing=True) == mf.CLASS_NAMES.index('car')
    foot = mf.expected_depth()[mf.HEIGHT - mf.GROUND_ROWS]  # (w,) the road beneath
    np.testing.assert_allclose(depth[car], np.broadcast_to(foot, car.shape)[car], rtol=1e-6)
    np.testing.assert_allclose(depth[~car], mf.expected_depth()[~car], rtol=1e-6)


def test_ground_contact_is_refused_at_runtime_for_a_model_without_ground(
        start: NodeFactory, tmp_path: Path) -> None:
    path = mf.write_model(tmp_path / 'classes.onnx', num_classes=4)
    node, probe = start(listen=['depth/image_rect'], model_path=str(path))
    result = node.set_parameters([Parameter('ground_contact', value=True)])[0]
    assert not result.successful and 'needs a ground class' in result.reason
    assert node.get_parameter('ground_contact').value is False
    probe.send_until('depth/image_rect', RGB, CAMERA)  # and it keeps running


def test_input_resolution_outputs_keep_the_image_size(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect', 'depth/camera_info'], output_resolution='input')
    depth = probe.send_until('depth/image_rect', RGB, CAMERA)[0]
    info = wait_until(lambda: probe.messages('depth/camera_info'))[0]
    assert (depth.width, depth.height) == (IMAGE_W, IMAGE_H)
    assert PinholeCamera.from_camera_info(info) == CAMERA


def test_bin_edges_are_latched(start: NodeFactory) -> None:
    node, probe = start(listen=[])
    probe.listen_bin_edges()  # subscribes after the node published them
    edges = wait_until(lambda: probe.messages('intervals/bin_edges'))[0]
    np.testing.assert_allclose(edges.data, mf.CODING.bin_edges(), rtol=1e-6)


def test_switched_off_output_has_no_publisher(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect', 'segmentation/image_rect'], outputs__segmentation=False)
    probe.send_until('depth/image_rect', RGB, CAMERA)
    assert node.count_publishers(f'{node.get_namespace()}/segmentation') == 0
    assert probe.messages('segmentation/image_rect') == []


def test_only_subscribed_heads_are_run(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    recorder = RunRecorder(node.model.predictor.backend.run)
    node.model.predictor.backend.run = recorder  # type: ignore[method-assign]
    probe.send_until('depth/image_rect', RGB, CAMERA)
    assert recorder.asked and all(outputs == ['depth_out'] for outputs in recorder.asked)


def test_nothing_runs_without_subscribers(start: NodeFactory) -> None:
    node, probe = start(listen=[])
    recorder = RunRecorder(node.model.predictor.backend.run)
    node.model.predictor.backend.run = recorder  # type: ignore[method-assign]
    probe.send_while_not(lambda: node.stats.handled_total, RGB, CAMERA, 'a handled frame')
    assert recorder.asked == []


def test_unorganized_cloud_keeps_only_confident_near_points_off_the_sky(
        start: NodeFactory) -> None:
    max_depth = float(np.median(mf.expected_depth()))
    node, probe = start(listen=['points'], points__organized=False,
                        points__min_confidence=0.5, points__max_depth=max_depth)
    msg = probe.send_until('points', RGB, CAMERA)[0]
    kept = (mf.expected_confidence() >= 0.5) & (mf.expected_depth() <= max_depth) & \
        (mf.expected_segmentation() != mf.CLASS_NAMES.index('sky'))  # points.drop_classes: 'sky'
    assert (msg.height, msg.width) == (1, int(kept.sum())) and msg.is_dense
    assert np.all(cloud_to_points(msg)['z'] <= max_depth)


def test_cloud_drops_the_named_classes_and_keeps_all_with_none(start: NodeFactory) -> None:
    node, probe = start(listen=['points'], points__organized=False,
                        points__drop_classes='road, car')
    msg = probe.send_until('points', RGB, CAMERA)[0]
    sky = mf.expected_segmentation() == mf.CLASS_NAMES.index('sky')
    assert msg.width == int(sky.sum()) and set(cloud_to_points(msg)['label'].ravel()) == {2}
    assert node.set_parameters([Parameter('points.drop_classes', value='')])[0].successful
    every_point = mf.HEIGHT * mf.WIDTH  # frames already in flight may still drop the rest
    probe.send_while_not(lambda: any(m.width == every_point for m in probe.messages('points')),
                         RGB, CAMERA, 'a cloud with every point')


def test_cloud_decimation(start: NodeFactory) -> None:
    node, probe = start(listen=['points'], points__decimation=2)
    msg = probe.send_until('points', RGB, CAMERA)[0]
    assert (msg.width, msg.height) == (mf.WIDTH // 2, mf.HEIGHT // 2)


def test_cloud_settings_change_at_runtime(start: NodeFactory) -> None:
    node, probe = start(listen=['points'])
    result = node.set_parameters([Parameter('points.organized', value=False)])[0]
    assert result.successful
    assert probe.send_until('points', RGB, CAMERA)[0].height == 1


def test_bad_runtime_choice_is_rejected(start: NodeFactory) -> None:
    node, probe = start(listen=[])
    result = node.set_parameters([Parameter('output_resolution', value='huge')])[0]
    assert not result.successful and 'output_resolution' in result.reason


def test_model_is_read_only_at_runtime(start: NodeFactory) -> None:
    node, probe = start(listen=[])
    result = node.set_parameters([Parameter('model_path', value='/elsewhere.onnx')])[0]
    assert not result.successful


# -- bad input -----------------------------------------------------------------------


def drops(node: MtDepthNode, reason: str) -> int:
    return node.stats.drops_total().get(reason, 0)


def test_unsupported_encoding_is_dropped_and_counted(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    strange = array_to_image(RGB[..., 0], 'mono8')
    strange.encoding = 'x-unknown-encoding'
    probe.send_while_not(lambda: drops(node, 'encoding'), strange, CAMERA, 'an encoding drop')
    probe.send_until('depth/image_rect', RGB, CAMERA)  # and the node keeps going


def test_step_that_does_not_match_the_data_is_dropped(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    broken = array_to_image(RGB, 'rgb8')
    broken.step += 7
    probe.send_while_not(lambda: drops(node, 'layout'), broken, CAMERA, 'a layout drop')
    probe.send_until('depth/image_rect', RGB, CAMERA)


def test_short_data_is_dropped(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    broken = array_to_image(RGB, 'rgb8')
    broken.data = broken.data[:100]
    probe.send_while_not(lambda: drops(node, 'layout'), broken, CAMERA, 'a layout drop')
    probe.send_until('depth/image_rect', RGB, CAMERA)


def test_zero_sized_image_is_dropped(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    empty = array_to_image(RGB, 'rgb8')
    empty.width = empty.height = empty.step = 0
    empty.data = []
    probe.send_while_not(lambda: drops(node, 'empty'), empty, None, 'an empty drop')
    probe.send_until('depth/image_rect', RGB, CAMERA)


def test_camera_info_of_another_size_drops_the_frame(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    other = CAMERA.scaled(IMAGE_W * 2, IMAGE_H * 2)
    probe.send_while_not(lambda: drops(node, 'size_mismatch'), RGB, other, 'a size_mismatch drop')
    assert probe.messages('depth/image_rect') == []
    probe.send_until('depth/image_rect', RGB, CAMERA)


def test_without_camera_info_depth_comes_but_no_cloud(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect', 'points'])
    probe.send_until('depth/image_rect', RGB, None, count=2)
    assert probe.messages('points') == []
    totals = node.stats.notes_total()
    assert totals.get('points skipped: no camera_info', 0) >= 1


def test_camera_info_with_another_stamp_pairs_when_cached(start: NodeFactory) -> None:
    node, probe = start(listen=['points'], cache_camera_info=True)
    probe.send_until('points', RGB, CAMERA, info_stamp=mf_stamp())


def test_camera_info_with_another_stamp_is_not_paired_by_default(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect', 'points'], camera_info_wait=0.0)
    probe.send_until('depth/image_rect', RGB, CAMERA, count=2, info_stamp=mf_stamp())
    assert probe.messages('points') == []


def mf_stamp() -> Any:
    from builtin_interfaces.msg import Time  # noqa: PLC0415

    return Time(sec=1, nanosec=0)  # no image has this stamp


# -- refusing to start -----------------------------------------------------------------


def refuse(harness: RosHarness, **parameters: Any) -> str:
    return refusal(harness, unique_namespace(), **parameters)


def test_refuses_a_card_naming_a_missing_output(harness: RosHarness, tmp_path: Path) -> None:
    path = mf.write_model_with_missing_output(tmp_path / 'broken.onnx')
    assert "'nowhere'" in refuse(harness, model_path=str(path))


def test_refuses_a_missing_model_file(harness: RosHarness, tmp_path: Path) -> None:
    assert 'no such file' in refuse(harness, model_path=str(tmp_path / 'absent.onnx'))


def test_refuses_an_unknown_backend(harness: RosHarness, model: Path) -> None:
    assert 'unknown backend' in refuse(harness, model_path=str(model), backend='magic')


def test_refuses_an_unavailable_backend_with_its_reason(harness: RosHarness, model: Path) -> None:
    message = refuse(harness, model_path=str(model), backend='onnxruntime:tensorrt')
    assert 'TensorrtExecutionProvider' in message


def test_refuses_ground_contact_for_a_model_that_cannot(harness: RosHarness,
                                                       tmp_path: Path) -> None:
    path = mf.write_model(tmp_path / 'depth_only.onnx', heads=('depth',))
    assert 'needs a segmentation head' in refuse(harness, model_path=str(path),
                                                 ground_contact=True)


def test_refuses_a_bad_choice(harness: RosHarness, model: Path) -> None:
    assert 'qos.input' in refuse(harness, model_path=str(model), qos__input='fast')


def test_refuses_a_value_out_of_range(harness: RosHarness, model: Path) -> None:
    assert 'points.decimation' in refuse(harness, model_path=str(model), points__decimation=0)
