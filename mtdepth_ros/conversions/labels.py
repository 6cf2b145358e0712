"""Label maps (segmentation classes, depth intervals): the ignore index and the pixel type.

Class ids 0..254 fit in uint8 beside the ignore index 255; models with more
classes get uint16 maps (``mono16`` images).
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = 255  # label of pixels without ground truth (intervals and segmentation)
MAX_UINT8_CLASSES = 255  # class ids 0..254 in uint8, beside IGNORE_INDEX


def label_dtype(num_classes: int) -> type[np.unsignedinteger]:
    """The pixel type of a label map with ``num_classes`` classes."""
    return np.uint8 if num_classes <= MAX_UINT8_CLASSES else np.uint16


def label_encoding(labels: np.ndarray) -> str:
    """The sensor_msgs/Image encoding of a label map: mono8 or mono16."""
    return 'mono8' if labels.dtype == np.uint8 else 'mono16'
