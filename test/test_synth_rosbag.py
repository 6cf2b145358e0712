"""The generated rosbag: topics, encodings and stamps as the brief fixes them, decoded by rclpy."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from test_data_trees import _ROOT

rclpy_serialization = pytest.importorskip('rclpy.serialization')
sensor_msgs = pytest.importorskip('sensor_msgs.msg')

FRAMES, WIDTH, HEIGHT = 3, 96, 29
TOPICS = {'/camera/image_raw': 'sensor_msgs/msg/Image', '/camera/camera_info': 'sensor_msgs/msg/CameraInfo',
          '/ground_truth/depth': 'sensor_msgs/msg/Image', '/ground_truth/labels': 'sensor_msgs/msg/Image'}


@lru_cache(maxsize=None)
def _messages(dense: bool) -> tuple[Path, list[tuple[str, int, object]]]:
    from rosbags.rosbag2 import Reader

    from training.data.synth.rosbag_writer import write_rosbag

    out = _ROOT / f'bag_{"dense" if dense else "sparse"}'
    write_rosbag(out, FRAMES, seed=3, width=WIDTH, height=HEIGHT, dense=dense, workers=1)
    decoded = []
    with Reader(out) as reader:
        for connection, stamp, raw in reader.messages():
            kind = sensor_msgs.CameraInfo if connection.msgtype.endswith('CameraInfo') else sensor_msgs.Image
            decoded.append((connection.topic, stamp, rclpy_serialization.deserialize_message(raw, kind)))
    return out, decoded


def _topic(topic: str, dense: bool = False) -> list[object]:
    return [m for t, _, m in _messages(dense)[1] if t == topic]


def test_bag_is_mcap_with_the_four_topics() -> None:
    from rosbags.rosbag2 import Reader

    out, _ = _messages(False)
    assert list(out.glob('*.mcap'))
    with Reader(out) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == TOPICS
        assert all(c.msgcount == FRAMES for c in reader.connections)


def test_every_frame_shares_one_stamp_at_10_hz_in_the_optical_frame() -> None:
    _, messages = _messages(False)
    stamps: dict[str, list[int]] = {}
    for topic, stamp, message in messages:
        header = message.header  # type: ignore[attr-defined]
        assert header.frame_id == 'camera_optical_frame'
        assert header.stamp.sec * 10**9 + header.stamp.nanosec == stamp
        stamps.setdefault(topic, []).append(stamp)
    assert len({tuple(s) for s in stamps.values()}) == 1
    assert np.all(np.diff(stamps['/camera/image_raw']) == 100_000_000)


def test_image_is_rgb8_and_camera_info_matches_it() -> None:
    image = _topic('/camera/image_raw')[0]
    info = _topic('/camera/camera_info')[0]
    assert (image.encoding, image.width, image.height, image.step) == ('rgb8', WIDTH, HEIGHT, WIDTH * 3)
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert np.isclose(info.k[0], 721.5377 * WIDTH / 1242) and np.isclose(info.p[2], info.k[2])


def test_depth_is_32fc1_metres_with_nan_where_not_measured() -> None:
    sparse = _topic('/ground_truth/depth')[0]
    assert sparse.encoding == '32FC1' and sparse.step == WIDTH * 4
    values = np.frombuffer(bytes(sparse.data), dtype=np.float32)
    assert np.isnan(values).any() and (values[np.isfinite(values)] > 0).all()
    dense = np.frombuffer(bytes(_topic('/ground_truth/depth', dense=True)[0].data), dtype=np.float32)
    assert np.isfinite(dense).mean() > np.isfinite(values).mean()


def test_labels_are_mono8_train_ids() -> None:
    labels = _topic('/ground_truth/labels')[0]
    assert labels.encoding == 'mono8'
    ids = np.unique(np.frombuffer(bytes(labels.data), dtype=np.uint8))
    assert set(ids.tolist()) <= set(range(19)) | {255}
    assert 0 in ids  # road
