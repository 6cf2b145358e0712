"""The batch dictionary every dataset returns, written down once.

Keys and what each holds (per sample; a DataLoader adds the batch dimension):

- ``image``        float32 (3, H, W) RGB normalised with IMAGENET_MEAN / IMAGENET_STD
- ``depth``        float32 (1, H, W) metres, 0 = invalid
- ``depth_log``    float32 (1, H, W) normalised log depth (the dataset's DepthCoding), 0 where invalid
- ``depth_valid``  bool (1, H, W)
- ``intervals``    int64 (H, W) depth interval labels, IGNORE_INDEX where invalid
- ``labels``       int64 (H, W) class ids, IGNORE_INDEX = ignore
- ``has_depth``    bool scalar: the sample carries depth ground truth
- ``has_labels``   bool scalar: the sample carries class labels
- ``intrinsics``   float32 (3, 3) after every crop, resize and flip
- ``index``        int, the sample's index in its dataset
"""

from __future__ import annotations

from mtdepth_ros.depth_coding import IGNORE_INDEX

IMAGE = 'image'
DEPTH = 'depth'
DEPTH_LOG = 'depth_log'
DEPTH_VALID = 'depth_valid'
INTERVALS = 'intervals'
LABELS = 'labels'
HAS_DEPTH = 'has_depth'
HAS_LABELS = 'has_labels'
INTRINSICS = 'intrinsics'
INDEX = 'index'
BATCH_KEYS = (IMAGE, DEPTH, DEPTH_LOG, DEPTH_VALID, INTERVALS, LABELS, HAS_DEPTH, HAS_LABELS,
              INTRINSICS, INDEX)

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB on the 0..1 scale (torchvision's ImageNet weights)
IMAGENET_STD = (0.229, 0.224, 0.225)
