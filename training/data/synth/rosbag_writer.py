"""Write one generated drive as a rosbag2 (mcap) for the node, the evaluation and the demo.

Topics (frame id ``camera_optical_frame``, 10 Hz, one stamp per frame on all
four messages):

- ``/camera/image_raw``      sensor_msgs/Image rgb8
- ``/camera/camera_info``    sensor_msgs/CameraInfo (plumb_bob, no distortion)
- ``/ground_truth/depth``    sensor_msgs/Image 32FC1 metres, NaN = no measurement;
                             the LiDAR-like sparse ground truth, or dense with ``dense``
- ``/ground_truth/labels``   sensor_msgs/Image mono8 Cityscapes train ids, 255 = ignore
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from training.data.classes import cityscapes_label_to_train_lut
from training.data.synth.rig import FRAME_RATE_HZ
from training.data.synth.runner import run_jobs
from training.data.synth.samples import road_sample

TYPESTORE = Stores.ROS2_KILTED  # the distribution rclpy from PyPI is; Image/CameraInfo match Humble on
FRAME_ID = 'camera_optical_frame'
IMAGE_TOPIC = '/camera/image_raw'
CAMERA_INFO_TOPIC = '/camera/camera_info'
DEPTH_TOPIC = '/ground_truth/depth'
LABELS_TOPIC = '/ground_truth/labels'
START_STAMP_NS = 1_700_000_000 * 10**9  # a fixed start: the same seed writes the same bag
ROSBAG_VERSION: Literal[9] = 9


@dataclass(frozen=True)
class BagJob:
    seed: int
    frames: int
    frame: int
    width: int
    height: int
    dense: bool


@dataclass
class BagFrame:
    image: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32, NaN = none
    labels: np.ndarray | None  # (H, W) uint8 train ids; None = not labelled
    intrinsics: np.ndarray  # (3, 3)


def _render(job: BagJob) -> BagFrame:
    sample = road_sample(job.seed, 0, job.frames, job.frame, job.frame, job.width, job.height)
    depth = sample.dense_depth if job.dense else sample.groundtruth
    depth = np.where(depth > 0, depth, np.nan).astype(np.float32)
    labels = cityscapes_label_to_train_lut()[sample.label_ids]
    return BagFrame(sample.image, depth, labels, sample.intrinsics)


class _Messages:
    """Builds the sensor_msgs types of the bag's typestore."""

    def __init__(self) -> None:
        self.store = get_typestore(TYPESTORE)
        self.types = self.store.types

    def header(self, stamp_ns: int) -> Any:
        time = self.types['builtin_interfaces/msg/Time'](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        return self.types['std_msgs/msg/Header'](stamp=time, frame_id=FRAME_ID)

    def image(self, stamp_ns: int, array: np.ndarray, encoding: str) -> Any:
        height, width = array.shape[:2]
        data = np.ascontiguousarray(array).view(np.uint8).reshape(-1)
        return self.types['sensor_msgs/msg/Image'](
            header=self.header(stamp_ns), height=height, width=width, encoding=encoding,
            is_bigendian=int(sys.byteorder == 'big'), step=data.size // height, data=data)

    def camera_info(self, stamp_ns: int, intrinsics: np.ndarray, width: int, height: int) -> Any:
        projection = np.hstack([intrinsics, np.zeros((3, 1))])
        roi = self.types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self.types['sensor_msgs/msg/CameraInfo'](
            header=self.header(stamp_ns), height=height, width=width, distortion_model='plumb_bob',
            d=np.zeros(5), k=intrinsics.astype(np.float64).ravel(), r=np.eye(3).ravel(),
            p=projection.ravel(), binning_x=0, binning_y=0, roi=roi)

    def serialize(self, message: Any) -> memoryview:
        return self.store.serialize_cdr(message, message.__msgtype__)


def write_rosbag(out: Path, frames: int, seed: int, width: int, height: int, dense: bool,
                 workers: int) -> dict[str, object]:
    """Render one drive of ``frames`` frames into the bag directory ``out`` (must not exist)."""
    jobs = [BagJob(seed, frames, i, width, height, dense) for i in range(frames)]
    write_frames(out, run_jobs(_render, jobs, workers))
    return {'format': 'rosbag', 'seed': seed, 'frames': frames, 'width': width, 'height': height,
            'depth': 'dense' if dense else 'sparse', 'topics': [IMAGE_TOPIC, CAMERA_INFO_TOPIC,
                                                                 DEPTH_TOPIC, LABELS_TOPIC]}


def write_frames(out: Path, frames: Iterable[BagFrame]) -> int:
    """Write ``frames`` (any sizes; ``labels`` None = no labels message) as a 10 Hz bag
    in the directory ``out`` (must not exist); returns the frame count."""
    messages = _Messages()
    period_ns = int(round(1e9 / FRAME_RATE_HZ))
    count = 0
    with Writer(out, version=ROSBAG_VERSION, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {
            topic: writer.add_connection(topic, msgtype, typestore=messages.store)
            for topic, msgtype in ((IMAGE_TOPIC, 'sensor_msgs/msg/Image'),
                                   (CAMERA_INFO_TOPIC, 'sensor_msgs/msg/CameraInfo'),
                                   (DEPTH_TOPIC, 'sensor_msgs/msg/Image'),
                                   (LABELS_TOPIC, 'sensor_msgs/msg/Image'))}
        for index, frame in enumerate(frames):
            stamp = START_STAMP_NS + index * period_ns
            height, width = frame.image.shape[:2]
            written = [(IMAGE_TOPIC, messages.image(stamp, frame.image, 'rgb8')),
                       (CAMERA_INFO_TOPIC, messages.camera_info(stamp, frame.intrinsics, width,
                                                                height)),
                       (DEPTH_TOPIC, messages.image(stamp, frame.depth, '32FC1'))]
            if frame.labels is not None:
                written.append((LABELS_TOPIC, messages.image(stamp, frame.labels, 'mono8')))
            for topic, message in written:
                writer.write(connections[topic], stamp, messages.serialize(message))
            count += 1
    return count
