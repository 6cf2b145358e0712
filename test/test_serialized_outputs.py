"""Every output written straight to CDR bytes decodes into exactly the message the message
builders make (rclpy's own deserializer, field by field): each output, encoding, odd sizes,
organized and unorganized clouds, NaN and infinite depth, every cloud setting."""

from __future__ import annotations

from typing import Any

import model_fixtures as mf
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.clouds import depth_to_points, points_to_cloud
from mtdepth_ros.conversions.colorize import intervals_to_color, labels_to_color
from mtdepth_ros.conversions.geometry import resize_image
from mtdepth_ros.conversions.images import array_to_image
from mtdepth_ros.inference.outputs import (
    TOPICS,
    CloudSettings,
    OutputBuilder,
    class_ids,
    message_type,
    resize_prediction,
)
from mtdepth_ros.inference.predictor import Prediction

HEADER = Header(stamp=Time(sec=1_700_000_000, nanosec=123_456_789), frame_id='camera_optical_frame')
SIZES = [(24, 32), (7, 13), (1, 5)]  # (height, width): odd widths, a single row
KINDS = {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CameraInfo': CameraInfo,
         'sensor_msgs/msg/PointCloud2': PointCloud2}


def prediction(height: int, width: int, many_classes: bool = False, seed: int = 0) -> Prediction:
    rng = np.random.default_rng(seed)
    depth = (rng.random((height, width)) * 50 + 0.5).astype(np.float32)
    depth.flat[::5] = np.nan
    depth.flat[1::7] = np.inf
    depth.flat[2::11] = -np.inf
    classes = 300 if many_classes else len(mf.CLASS_NAMES)
    segmentation = rng.integers(0, classes, (height, width)).astype(
        np.uint16 if many_classes else np.uint8)
    confidence = rng.random((height, width)).astype(np.float32)
    confidence.flat[3::13] = np.nan
    intervals = rng.integers(0, mf.CODING.num_intervals, (height, width)).astype(np.uint8)
    intervals.flat[4::9] = 255  # the ignore index
    return Prediction(depth=depth, intervals=intervals, confidence=confidence,
                      segmentation=segmentation)


def reference(output: str, builder: OutputBuilder, p: Prediction, rgb: np.ndarray,
              camera: PinholeCamera, settings: CloudSettings) -> Any:
    """The message the message builders make for ``output`` (the 2026-11 node path)."""
    if output.endswith('camera_info'):
        return camera.to_camera_info(HEADER)
    if output in ('depth', 'confidence'):
        return array_to_image(getattr(p, output), '32FC1', HEADER)
    if output == 'intervals':
        return array_to_image(p.intervals, 'mono8', HEADER)
    if output == 'intervals_color':
        return array_to_image(intervals_to_color(p.intervals, mf.CODING.num_intervals), 'rgb8',
                              HEADER)
    if output == 'segmentation':
        assert p.segmentation is not None
        encoding = 'mono8' if p.segmentation.dtype == np.uint8 else 'mono16'
        return array_to_image(p.segmentation, encoding, HEADER)
    if output == 'segmentation_color':
        return array_to_image(labels_to_color(p.segmentation, builder.palette), 'rgb8', HEADER)
    assert output == 'points' and p.depth is not None
    keep = None
    if settings.max_depth > 0:
        keep = ~(p.depth > settings.max_depth)
    if settings.min_confidence > 0:
        keep = (p.confidence >= settings.min_confidence) & (True if keep is None else keep)
    drop, _ = class_ids(builder.card, settings.drop_classes)
    if drop.size:
        keep = ~np.isin(p.segmentation, drop) & (True if keep is None else keep)
    colour = resize_image(rgb, p.depth.shape) if settings.color else None
    return points_to_cloud(depth_to_points(p.depth, camera), HEADER, rgb=colour,
                           labels=p.segmentation, confidence=p.confidence,
                           organized=settings.organized, keep=keep,
                           decimation=settings.decimation)


def assert_same(decoded: Any, expected: Any) -> None:
    for name in expected.get_fields_and_field_types():
        got, want = getattr(decoded, name), getattr(expected, name)
        if name == 'data':
            assert bytes(got) == bytes(want), name
        elif hasattr(want, '__len__') and not isinstance(want, str):
            assert list(got) == list(want), name
        else:
            assert got == want, name


@pytest.mark.parametrize(('height', 'width'), SIZES)
@pytest.mark.parametrize('many_classes', [False, True])
def test_every_image_and_camera_info_output(height: int, width: int, many_classes: bool) -> None:
    builder = OutputBuilder(mf.make_card(num_classes=300 if many_classes else 3))
    p = prediction(height, width, many_classes)
    camera = PinholeCamera(width=2 * width, height=2 * height, fx=41.5, fy=40.25,
                           cx=width - 0.3, cy=height + 0.2, tx=-3.5)
    outputs = [o for o in TOPICS if o != 'points']
    rgb = np.zeros((2 * height, 2 * width, 3), np.uint8)
    serialized = builder.build(outputs, HEADER, p, rgb, camera, (width, height))
    assert sorted(serialized) == sorted(outputs)
    scaled = camera.scaled(width, height)
    for output, data in serialized.items():
        decoded = deserialize_message(data, KINDS[message_type(output)])
        assert_same(decoded, reference(output, builder, p, rgb, scaled, CloudSettings()))


SETTINGS = [
    CloudSettings(),
    CloudSettings(organized=False),
    CloudSettings(color=False, decimation=2),
    CloudSettings(organized=False, max_depth=20.0, min_confidence=0.3, drop_classes=('sky',)),
    CloudSettings(max_depth=10.0, drop_classes=('road', 'sky'), decimation=3),
]


@pytest.mark.parametrize(('height', 'width'), SIZES)
@pytest.mark.parametrize('settings', SETTINGS, ids=range(len(SETTINGS)))
@pytest.mark.parametrize('many_classes', [False, True])
def test_the_cloud(height: int, width: int, settings: CloudSettings, many_classes: bool) -> None:
    builder = OutputBuilder(mf.make_card(num_classes=300 if many_classes else 3))
    p = prediction(height, width, many_classes, seed=height)
    rgb = np.random.default_rng(1).integers(0, 255, (3 * height, 3 * width, 3), np.uint8)
    camera = PinholeCamera(width=width, height=height, fx=30.5, fy=29.0, cx=width / 2 - 0.3,
                           cy=height / 2 + 0.1)
    data = builder.build(['points'], HEADER, p, rgb, camera, (width, height), settings)['points']
    assert_same(deserialize_message(data, PointCloud2),
                reference('points', builder, p, rgb, camera, settings))


@pytest.mark.parametrize('heads', [('depth',), ('depth', 'segmentation'), ('depth', 'confidence')])
def test_a_cloud_with_some_fields_only(heads: tuple[str, ...]) -> None:
    builder = OutputBuilder(mf.make_card())
    full = prediction(9, 11)
    p = Prediction(**{h: getattr(full, h) for h in heads})
    camera = PinholeCamera(width=11, height=9, fx=20.0, fy=20.0, cx=5.0, cy=4.0)
    rgb = np.zeros((9, 11, 3), np.uint8)
    settings = CloudSettings(color=False)
    data = builder.build(['points'], HEADER, p, rgb, camera, (11, 9), settings)['points']
    assert_same(deserialize_message(data, PointCloud2),
                reference('points', builder, p, rgb, camera, settings))


@pytest.mark.parametrize(('height', 'width'), SIZES)
@pytest.mark.parametrize('settings', SETTINGS[:2], ids=range(2))
@pytest.mark.parametrize('many_classes', [False, True])
def test_maps_at_the_network_size_are_resized_into_the_messages(
        height: int, width: int, settings: CloudSettings, many_classes: bool) -> None:
    """At input resolution the builder gets the network's maps: every output is the message
    of the maps resize_prediction makes, whichever outputs are asked for together."""
    builder = OutputBuilder(mf.make_card(num_classes=300 if many_classes else 3))
    small = prediction(height, width, many_classes, seed=width)
    size = (2 * width + 1, 3 * height - 1)  # enlarged, by factors that are not whole
    camera = PinholeCamera(width=size[0], height=size[1], fx=30.5, fy=29.0,
                           cx=size[0] / 2 - 0.3, cy=size[1] / 2 + 0.1)
    rgb = np.random.default_rng(2).integers(0, 255, (size[1], size[0], 3), np.uint8)
    resized = resize_prediction(small, *size)
    outputs = list(TOPICS)
    for asked in (outputs, outputs[::-1], ['points', 'segmentation_color'], ['depth']):
        built = builder.build(asked, HEADER, small, rgb, camera, size, settings)
        assert list(built) == asked
        for output, data in built.items():
            decoded = deserialize_message(data, KINDS[message_type(output)])
            assert_same(decoded, reference(output, builder, resized, rgb, camera, settings))


def test_the_stamp_is_read_back_from_the_bytes() -> None:
    from mtdepth_ros.conversions.cdr import image_bytes, stamp_of
    data = image_bytes(np.zeros((3, 5, 3), np.uint8), 'rgb8', HEADER)
    assert deserialize_message(data, Image).header.stamp == HEADER.stamp
    assert stamp_of(data) == (1_700_000_000, 123_456_789)


def test_min_confidence_without_a_confidence_channel_keeps_the_points() -> None:
    """A threshold has nothing to test on a model without a confidence head: the cloud is
    the one without a threshold (not an empty one)."""
    builder = OutputBuilder(mf.make_card())
    p = Prediction(depth=prediction(9, 11).depth)
    camera = PinholeCamera(width=11, height=9, fx=20.0, fy=20.0, cx=5.0, cy=4.0)
    rgb = np.zeros((9, 11, 3), np.uint8)
    for organized in (True, False):
        threshold = CloudSettings(color=False, organized=organized, min_confidence=0.5)
        data = builder.build(['points'], HEADER, p, rgb, camera, (11, 9), threshold)['points']
        expected = reference('points', builder, p, rgb, camera,
                             CloudSettings(color=False, organized=organized))
        assert_same(deserialize_message(data, PointCloud2), expected)


@pytest.mark.parametrize(('num_classes', 'dtype'), [(20, np.uint8), (300, np.uint16)])
@pytest.mark.parametrize('dropped', [1, 4, 6])
def test_dropped_classes_by_comparison_and_by_table(num_classes: int, dtype: Any,
                                                    dropped: int) -> None:
    """Up to four dropped classes are compared one by one, more go through a table: the
    same cloud either way, for uint8 and uint16 labels."""
    builder = OutputBuilder(mf.make_card(num_classes=num_classes))
    p = prediction(13, 17, seed=dropped)
    labels = np.random.default_rng(dropped).integers(0, num_classes, (13, 17)).astype(dtype)
    p = Prediction(depth=p.depth, segmentation=labels, confidence=p.confidence)
    names = tuple(f'class_{i}' for i in range(0, num_classes, num_classes // dropped))[:dropped]
    camera = PinholeCamera(width=17, height=13, fx=20.0, fy=20.0, cx=8.0, cy=6.0)
    rgb = np.random.default_rng(3).integers(0, 255, (13, 17, 3), np.uint8)
    for organized in (True, False):
        settings = CloudSettings(organized=organized, drop_classes=names)
        data = builder.build(['points'], HEADER, p, rgb, camera, (17, 13), settings)['points']
        assert_same(deserialize_message(data, PointCloud2),
                    reference('points', builder, p, rgb, camera, settings))
