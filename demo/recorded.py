"""Panels from what the node published, as the live evaluation recorded it.

Reads the input bag's camera images and the predictions bag's depth,
intervals/color, segmentation/color, confidence and points, pairs them by
header stamp (the node copies the image's) and writes one panel per frame
the node answered.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from demo import panels
from mtdepth_ros.conversions.clouds import cloud_to_points
from mtdepth_ros.conversions.images import image_to_array, image_to_rgb
from mtdepth_ros.evaluation.bag_reader import BagTopics
from mtdepth_ros.evaluation.bag_source import default_typestore, header_stamp_ns, raw_messages
from mtdepth_ros.evaluation.panels import write_png
from mtdepth_ros.evaluation.session import output_topic
from mtdepth_ros.inference.card import ModelCard

OUTPUTS = ('depth', 'intervals_color', 'segmentation_color', 'confidence', 'points')
DEFAULT_DEPTH_RANGE_M = (1.0, 80.0)
PANEL_NAME = 'frame_{index:03d}.png'


def recorded_outputs(predictions: Path) -> dict[int, dict[str, Any]]:
    """stamp (ns) -> {output: decoded message content} from the predictions bag."""
    typestore = default_typestore()
    topics = {output_topic(o): o for o in OUTPUTS}
    frames: dict[int, dict[str, Any]] = defaultdict(dict)
    for raw in raw_messages(predictions, list(topics)):
        msg = typestore.deserialize_cdr(bytes(raw.data), raw.msgtype)
        output = topics[raw.topic]
        if output == 'points':
            value: Any = cloud_to_points(msg)
        elif output.endswith('_color'):
            value = image_to_rgb(msg)
        else:
            value = np.array(image_to_array(msg), dtype=np.float32)
        frames[header_stamp_ns(raw.data)][output] = value
    return frames


def input_images(bag: Path, topic: str = BagTopics.image) -> dict[int, np.ndarray]:
    """stamp (ns) -> (H, W, 3) uint8 RGB of the input bag's camera images."""
    typestore = default_typestore()
    return {header_stamp_ns(raw.data): image_to_rgb(typestore.deserialize_cdr(bytes(raw.data),
                                                                             raw.msgtype))
            for raw in raw_messages(bag, [topic])}


def depth_range(card: ModelCard) -> tuple[float, float]:
    if card.depth_coding is None:
        return DEFAULT_DEPTH_RANGE_M
    return (max(card.depth_coding.d_min, DEFAULT_DEPTH_RANGE_M[0]),
            min(card.depth_coding.d_max, DEFAULT_DEPTH_RANGE_M[1]))


def write_panels(bag: Path, predictions: Path, out_dir: Path, card: ModelCard) -> list[Path]:
    """One PNG per answered frame, named by the frame's position in the bag."""
    if not predictions.exists():
        return []
    outputs = recorded_outputs(predictions)
    written = []
    for index, (stamp, rgb) in enumerate(sorted(input_images(bag).items())):
        frame = outputs.get(stamp)
        if not frame or 'depth' not in frame:
            continue  # dropped by the node (newest frame wins)
        panel = panels.compose(rgb, frame['depth'], frame.get('intervals_color'),
                               frame.get('segmentation_color'), frame.get('confidence'),
                               frame.get('points'), depth_range(card))
        written.append(write_png(out_dir / PANEL_NAME.format(index=index), panel))
    return written
