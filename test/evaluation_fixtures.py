"""Small evaluation bags written by hand with the package's own message builders.

Frame ``i`` has header stamp ``i / RATE_HZ`` s; its image is a flat grey level,
its ground-truth depth is ``depth_of(i)`` (metres, a few NaN holes) and its
labels are ``labels_of(i)`` (with an ignored row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.compressed import rgb_to_compressed
from mtdepth_ros.conversions.images import array_to_image
from mtdepth_ros.evaluation.bag_reader import BagTopics
from mtdepth_ros.evaluation.bag_source import NS_PER_S
from mtdepth_ros.evaluation.bag_writer import OutputBag, header

RATE_HZ = 10
FRAME_ID = 'camera_optical_frame'
TOPICS = BagTopics()


def stamp_ns(i: int, offset_s: float = 0.0) -> int:
    return int(round((i / RATE_HZ + offset_s) * NS_PER_S)) + NS_PER_S  # start at 1 s


def camera(height: int, width: int) -> PinholeCamera:
    return PinholeCamera(width=width, height=height, fx=width * 0.9, fy=width * 0.9,
                         cx=width / 2, cy=height / 2)


def depth_of(i: int, height: int, width: int) -> np.ndarray:
    """(H, W) float32 metres: rows from 30 m (top) to 3 m (bottom), NaN holes, times (1 + i/10)."""
    rows = np.linspace(30.0, 3.0, height, dtype=np.float32)
    depth = np.repeat(rows[:, None], width, axis=1) * np.float32(1 + i / 10)
    depth[::3, ::2] = np.nan  # sparse like LiDAR
    return depth


def labels_of(i: int, height: int, width: int, num_classes: int = 3) -> np.ndarray:
    labels = (np.arange(width)[None, :] * num_classes // width).repeat(height, axis=0)
    labels = labels.astype(np.uint8)
    labels[0] = 255  # ignored
    return labels


def write_bag(path: Path, frames: int = 4, height: int = 24, width: int = 32,
              depth_encoding: str = '32FC1', with_labels: bool = True, with_depth: bool = True,
              gt_offset_s: float = 0.0, storage: str = 'mcap', skip_gt: tuple[int, ...] = (),
              gt_delay_frames: int = 0, compressed: str = '') -> Path:
    """An evaluation bag at ``path``; returns the path.

    ``compressed`` ('jpeg' or 'png') stores the images as sensor_msgs/CompressedImage.
    ``gt_offset_s`` shifts ground-truth stamps; ``skip_gt`` leaves those frames
    without ground truth; ``gt_delay_frames`` records ground truth that many
    frames after its image (out of order in the bag).
    """
    cam = camera(height, width)
    with OutputBag(path, storage=storage) as bag:
        gt_queue = []
        for i in range(frames):
            log = stamp_ns(i) + 1000
            head = header(stamp_ns(i), FRAME_ID)
            rgb = np.full((height, width, 3), (40 + 20 * i) % 256, dtype=np.uint8)
            bag.write(TOPICS.camera_info, cam.to_camera_info(head), log)
            image = rgb_to_compressed(rgb, compressed, head) if compressed else \
                array_to_image(rgb, 'rgb8', head)
            bag.write(TOPICS.image, image, log)
            if i not in skip_gt:
                gt_queue.append((i, head if gt_offset_s == 0 else
                                 header(stamp_ns(i, gt_offset_s), FRAME_ID)))
            while gt_queue and gt_queue[0][0] <= i - gt_delay_frames:
                j, gt_head = gt_queue.pop(0)
                _write_gt(bag, j, gt_head, log + 10, height, width, depth_encoding,
                          with_depth, with_labels)
        for j, gt_head in gt_queue:
            _write_gt(bag, j, gt_head, stamp_ns(frames) + 10 * j, height, width, depth_encoding,
                      with_depth, with_labels)
    return path


def _write_gt(bag: OutputBag, i: int, head, log: int, height: int, width: int,
              depth_encoding: str, with_depth: bool, with_labels: bool) -> None:
    if with_depth:
        depth = depth_of(i, height, width)
        if depth_encoding == '16UC1':
            depth = np.nan_to_num(depth * 1000, nan=0).round().astype(np.uint16)
        bag.write(TOPICS.depth, array_to_image(depth, depth_encoding, head), log)
    if with_labels:
        bag.write(TOPICS.labels, array_to_image(labels_of(i, height, width), 'mono8', head), log)


CITYSCAPES_CLASSES = 19  # the synthetic road labels are Cityscapes train ids


def generate_bag(path: Path, frames: int = 3, width: int = 160, height: int = 48,
                 seed: int = 0) -> Path:
    """A bag from the project's own generator (``python -m training synth --format rosbag``)."""
    from training.__main__ import main as training_main

    code = training_main(['synth', '--format', 'rosbag', '--out', str(path), '--frames',
                          str(frames), '--seed', str(seed), '--width', str(width),
                          '--height', str(height), '--workers', '1'])
    assert code == 0, f'synth exited with {code}'
    return path


def read_ground_truth(bag: Path) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(depth metres NaN-invalid, labels, camera fx) per frame, read with rosbags alone
    (independent of mtdepth_ros.evaluation.bag_reader), assuming one message per topic per frame in order."""
    from rosbags.highlevel import AnyReader

    found: dict[str, list] = {TOPICS.depth: [], TOPICS.labels: [], TOPICS.camera_info: []}
    with AnyReader([bag]) as reader:
        connections = [c for c in reader.connections if c.topic in found]
        for connection, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            if connection.topic == TOPICS.camera_info:
                found[connection.topic].append(float(msg.p[0]))
                continue
            dtype = np.float32 if msg.encoding == '32FC1' else np.uint8
            found[connection.topic].append(
                np.frombuffer(msg.data.tobytes(), dtype).reshape(msg.height, msg.width))
    depths = [np.where(d > 0, d, np.nan).astype(np.float32) for d in found[TOPICS.depth]]
    return list(zip(depths, found[TOPICS.labels], found[TOPICS.camera_info]))
