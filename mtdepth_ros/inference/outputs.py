"""The node's outputs: which heads each one needs, and its serialized message for one frame.

Every output is written straight to its CDR bytes, in one pass over its
payload (:mod:`~mtdepth_ros.conversions.cdr`, ``cloud_bytes``), ready for
``Publisher.publish`` or a rosbag2 writer; no message object is built and
serialized again. No rclpy, so the benchmark times exactly what the node
does per frame. Output names are the parameter names (``outputs.<name>``);
:data:`TOPICS` maps them to the topic names, all relative so they remap and
namespace cleanly.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.cdr import serialized_image
from mtdepth_ros.conversions.cloud_bytes import cloud_bytes
from mtdepth_ros.conversions.colorize import intervals_to_color, labels_to_color
from mtdepth_ros.conversions.geometry import resize_depth_nearest, resize_image
from mtdepth_ros.conversions.labels import label_encoding
from mtdepth_ros.inference.card import ModelCard
from mtdepth_ros.inference.depth_coding import DepthCoding
from mtdepth_ros.inference.predictor import Prediction

# output -> topic. Each map family sits in its own namespace with a camera_info
# beside its images, as image_transport pairs them (<ns>/image_rect with
# <ns>/camera_info), named as image_proc names rectified images: so
# depth_image_proc and RViz find the depth pair with a namespace remap only.
TOPICS = {
    'depth': 'depth/image_rect',
    'depth_camera_info': 'depth/camera_info',
    'intervals': 'intervals/image_rect',
    'intervals_color': 'intervals/image_rect_color',
    'intervals_camera_info': 'intervals/camera_info',
    'segmentation': 'segmentation/image_rect',
    'segmentation_color': 'segmentation/image_rect_color',
    'segmentation_camera_info': 'segmentation/camera_info',
    'confidence': 'confidence/image_rect',
    'confidence_camera_info': 'confidence/camera_info',
    'points': 'points',
}
# the topic names before 2026-11-30 (README: the mapping for users of the old names)
PREVIOUS_TOPICS = {'depth': 'depth', 'intervals': 'intervals', 'intervals_color': 'intervals/color',
                   'segmentation': 'segmentation', 'segmentation_color': 'segmentation/color',
                   'confidence': 'confidence'}
SWITCHES = ('depth', 'intervals', 'intervals_color', 'segmentation', 'segmentation_color',
            'confidence', 'points')
CAMERA_INFO_SUFFIX = '_camera_info'
# output -> the switch (outputs.<switch>) that turns it on: a camera_info goes with its family
SWITCH_OF = {output: output.removesuffix(CAMERA_INFO_SUFFIX) for output in TOPICS}
# output -> the head it shows (a model without that head has no such output)
PRIMARY_HEAD = {output: 'depth' if output == 'points' else
                output.removesuffix(CAMERA_INFO_SUFFIX).removesuffix('_color') for output in TOPICS}
CAMERA_OUTPUTS = frozenset(o for o in TOPICS if o.endswith(CAMERA_INFO_SUFFIX)) | {'points'}
CLOUD_EXTRA_HEADS = ('segmentation', 'confidence')  # label and confidence fields of the cloud
BIN_EDGES_TOPIC = 'intervals/bin_edges'
OUTPUT_RESOLUTIONS = ('network', 'input')
RGB_CHANNELS = 3


@dataclass(frozen=True)
class CloudSettings:
    organized: bool = True  # H x W with NaN points (depth_image_proc); False: 1 x N valid points
    max_depth: float = 0.0  # metres along the optical axis; 0 = no limit
    decimation: int = 1  # every n-th row and column
    min_confidence: float = 0.0  # drop points below; 0 = keep all
    color: bool = True  # add the rgb field
    drop_classes: tuple[str, ...] = ()  # class names (the card's) whose points are dropped


def available_outputs(card: ModelCard) -> list[str]:
    """The outputs this model can make (those whose head it has)."""
    return [output for output, head in PRIMARY_HEAD.items() if card.has_head(head)]


def enabled_outputs(card: ModelCard, switches: Collection[str]) -> list[str]:
    """The outputs of this model that ``switches`` (SWITCHES names) turn on; a family's
    camera_info is on while any image of its family is."""
    images = [o for o in available_outputs(card)
              if not o.endswith(CAMERA_INFO_SUFFIX) and SWITCH_OF[o] in switches]
    families = {_family(o) for o in images}
    return images + [o for o in available_outputs(card)
                     if o.endswith(CAMERA_INFO_SUFFIX) and _family(o) in families]


def _family(output: str) -> str:
    return TOPICS[output].split('/')[0]


def message_type(output: str) -> str:
    """The ROS type of an output's messages, e.g. 'sensor_msgs/msg/Image'."""
    if output.endswith(CAMERA_INFO_SUFFIX):
        return 'sensor_msgs/msg/CameraInfo'
    return 'sensor_msgs/msg/PointCloud2' if output == 'points' else 'sensor_msgs/msg/Image'


def heads_for(outputs: Collection[str], card: ModelCard) -> set[str]:
    """The heads to run for ``outputs``: nothing for outputs nobody needs."""
    heads = {PRIMARY_HEAD[o] for o in outputs if not o.endswith(CAMERA_INFO_SUFFIX)}
    if 'points' in outputs:
        heads.update(h for h in CLOUD_EXTRA_HEADS if card.has_head(h))
    return heads


def class_ids(card: ModelCard, names: Collection[str]) -> tuple[np.ndarray, list[str]]:
    """The card's ids of the classes called ``names``, and the names it does not have."""
    known = list(card.classes.names) if card.classes else []
    ids = np.array([known.index(n) for n in names if n in known], dtype=np.int64)
    return ids, [n for n in names if n not in known]


def bin_edges_message(coding: DepthCoding) -> Any:
    """The interval edges in metres, (num_intervals + 1,), as ``std_msgs/Float32MultiArray``."""
    from std_msgs.msg import Float32MultiArray, MultiArrayDimension  # noqa: PLC0415

    edges = coding.bin_edges().astype(np.float32)
    msg = Float32MultiArray()
    msg.layout.dim = [MultiArrayDimension(label='edges', size=edges.size, stride=edges.size)]
    msg.data = edges.tolist()
    return msg


class SizedMaps:
    """A prediction's maps at the output size by the nearest source pixel, each resized
    once: straight into the payload of its own image message where that image is
    written (one pass over it), and read from there by the colour images and the cloud.
    """

    def __init__(self, prediction: Prediction, size: tuple[int, int]) -> None:
        self.prediction = prediction
        self.shape = (size[1], size[0])  # (H, W)
        self.resized: dict[str, np.ndarray] = {}

    def get(self, name: str, out: np.ndarray | None = None) -> np.ndarray | None:
        """Map ``name`` (a :class:`Prediction` field) at the output size, written into
        ``out`` when given; None when the prediction lacks it."""
        values = getattr(self.prediction, name)
        if values is None:
            return None
        if name in self.resized:
            if out is None:
                return self.resized[name]
            np.copyto(out, self.resized[name])
            return out
        self.resized[name] = resize_depth_nearest(values, self.shape, out)
        return self.resized[name]


# Image outputs: (the map they show, its encoding; None: by the labels' type). Written
# before the colour images and the cloud, which then read those maps from their payloads.
MAP_IMAGES = {'depth': ('depth', '32FC1'), 'confidence': ('confidence', '32FC1'),
              'intervals': ('intervals', 'mono8'), 'segmentation': ('segmentation', None)}
PIXEL_TYPES = {'32FC1': np.float32, 'mono8': np.uint8, 'mono16': np.uint16}


def resize_prediction(prediction: Prediction, width: int, height: int) -> Prediction:
    """Every map resized to ``width`` x ``height`` by the nearest source pixel centre.

    Nearest, so no depth is invented between a foreground and a background
    surface (no flying points in the cloud) and labels stay labels.
    """
    maps = SizedMaps(prediction, (width, height))
    return replace(prediction, depth=maps.get('depth'), intervals=maps.get('intervals'),
                   confidence=maps.get('confidence'), segmentation=maps.get('segmentation'))


@lru_cache(maxsize=16)
def scaled_camera(camera: PinholeCamera, width: int, height: int) -> PinholeCamera:
    """``camera.scaled(width, height)``, made once per camera and size: the camera of a
    stream changes rarely, and building one costs as much as writing a small image."""
    return camera.scaled(width, height)


class OutputBuilder:
    """Serialized messages for one frame's prediction; colour tables and encodings fixed by
    the card."""

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.palette = np.asarray(card.classes.palette, np.uint8) if card.classes else None

    def build(self, outputs: Collection[str], header: Any, prediction: Prediction,
              rgb: np.ndarray, camera: PinholeCamera | None, size: tuple[int, int],
              cloud: CloudSettings = CloudSettings()) -> dict[str, bytes]:
        """``{output: serialized message}`` for ``outputs``; each carries ``header``.

        ``size`` (width, height) is the output size; the prediction's maps may
        be at another (the network's): they are resized by the nearest source
        pixel centre (:func:`resize_prediction`'s maps, without the extra copy).
        ``rgb`` (H, W, 3) uint8 is the input image (any size), ``camera`` the
        live camera at the input resolution; outputs that need a camera are
        left out when it is None.
        """
        scaled = scaled_camera(camera, *size) if camera is not None else None
        maps = SizedMaps(prediction, size)
        messages: dict[str, bytes] = {}
        info = None  # every family's camera_info is the same message: written once
        for output in sorted(outputs, key=lambda o: o not in MAP_IMAGES):
            if output.endswith(CAMERA_INFO_SUFFIX):
                if scaled is not None:
                    info = info or scaled.to_camera_info_bytes(header)
                    messages[output] = info
                continue
            message = self._build_one(output, header, maps, rgb, scaled, cloud)
            if message is not None:
                messages[output] = message
        return {output: messages[output] for output in outputs if output in messages}

    def _build_one(self, output: str, header: Any, maps: SizedMaps, rgb: np.ndarray,
                   camera: PinholeCamera | None, cloud: CloudSettings) -> bytes | None:
        if output in MAP_IMAGES:
            return self._map_image(output, header, maps)
        if output == 'intervals_color' and (intervals := maps.get('intervals')) is not None:
            assert self.card.depth_coding is not None  # required by an intervals head
            data, payload = colour_image(header, maps.shape)
            intervals_to_color(intervals, self.card.depth_coding.num_intervals, out=payload)
            return data
        if output == 'segmentation_color' and (labels := maps.get('segmentation')) is not None:
            assert self.palette is not None  # required by a segmentation head
            data, payload = colour_image(header, maps.shape)
            labels_to_color(labels, self.palette, out=payload)
            return data
        if output == 'points' and camera is not None and (depth := maps.get('depth')) is not None:
            sized = Prediction(depth=depth, segmentation=maps.get('segmentation'),
                               confidence=maps.get('confidence'))
            return self.cloud(header, sized, rgb, camera, cloud)
        return None

    def _map_image(self, output: str, header: Any, maps: SizedMaps) -> bytes | None:
        """An image output, its map resized straight into the message's payload."""
        name, encoding = MAP_IMAGES[output]
        values = getattr(maps.prediction, name)
        if values is None:
            return None
        encoding = encoding or label_encoding(values)
        pixel = np.dtype(PIXEL_TYPES[encoding])
        height, width = maps.shape
        data, payload = serialized_image(header, height, width, encoding, width * pixel.itemsize)
        maps.get(name, out=payload.view(pixel).reshape(height, width))
        return data

    def cloud(self, header: Any, p: Prediction, rgb: np.ndarray, camera: PinholeCamera,
              settings: CloudSettings) -> bytes:
        """The serialized cloud of ``p.depth`` seen by ``camera`` (already at the depth's size)."""
        assert p.depth is not None
        height, width = p.depth.shape
        drop_ids, _ = class_ids(self.card, settings.drop_classes)
        return cloud_bytes(
            p.depth, camera, header,
            rgb=resize_image(rgb, (height, width)) if settings.color else None,
            labels=p.segmentation, confidence=p.confidence, organized=settings.organized,
            decimation=settings.decimation, max_depth=settings.max_depth,
            min_confidence=settings.min_confidence, drop_ids=drop_ids.tolist())


def colour_image(header: Any, shape: tuple[int, ...]) -> tuple[bytes, np.ndarray]:
    """A serialized rgb8 image of ``shape[:2]`` and an (H, W, 3) view of its pixels to fill."""
    height, width = shape[:2]
    data, payload = serialized_image(header, height, width, 'rgb8', width * RGB_CHANNELS)
    return data, payload.reshape(height, width, RGB_CHANNELS)
