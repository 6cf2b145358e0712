"""Class lists, id maps and palettes of the datasets the project trains on.

Road scenes use Cityscapes' 19 training classes ("train ids"). The table of
all 34 Cityscapes label ids, their train ids and colours is the one published
with the dataset (Cordts et al., CVPR 2016; cityscapesScripts,
``cityscapesscripts/helpers/labels.py``). Indoor scenes use the NYU Depth v2
40-class set of Gupta et al. (CVPR 2013, ``classMapping40.mat``) and the
13-class set of Couprie et al. (ICLR 2013; ``class13Mapping.mat`` of
github.com/ankurhanda/nyuv2-meta-data). NYU's labelled frames also carry a
scene type (``sceneTypes``), 27 of them: :data:`NYU_SCENE_TYPES`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mtdepth_ros.conversions.labels import IGNORE_INDEX

RGB = tuple[int, int, int]


class ClassList(NamedTuple):
    """The classes a dataset's ``labels`` index (what the model card records)."""

    names: tuple[str, ...]
    palette: tuple[RGB, ...]
    ignore_index: int = IGNORE_INDEX


class CityscapesLabel(NamedTuple):
    name: str
    label_id: int  # the id in *_gtFine_labelIds.png
    train_id: int  # the id networks predict; IGNORE_INDEX = not trained on
    color: RGB


CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    CityscapesLabel('unlabeled', 0, IGNORE_INDEX, (0, 0, 0)),
    CityscapesLabel('ego vehicle', 1, IGNORE_INDEX, (0, 0, 0)),
    CityscapesLabel('rectification border', 2, IGNORE_INDEX, (0, 0, 0)),
    CityscapesLabel('out of roi', 3, IGNORE_INDEX, (0, 0, 0)),
    CityscapesLabel('static', 4, IGNORE_INDEX, (0, 0, 0)),
    CityscapesLabel('dynamic', 5, IGNORE_INDEX, (111, 74, 0)),
    CityscapesLabel('ground', 6, IGNORE_INDEX, (81, 0, 81)),
    CityscapesLabel('road', 7, 0, (128, 64, 128)),
    CityscapesLabel('sidewalk', 8, 1, (244, 35, 232)),
    CityscapesLabel('parking', 9, IGNORE_INDEX, (250, 170, 160)),
    CityscapesLabel('rail track', 10, IGNORE_INDEX, (230, 150, 140)),
    CityscapesLabel('building', 11, 2, (70, 70, 70)),
    CityscapesLabel('wall', 12, 3, (102, 102, 156)),
    CityscapesLabel('fence', 13, 4, (190, 153, 153)),
    CityscapesLabel('guard rail', 14, IGNORE_INDEX, (180, 165, 180)),
    CityscapesLabel('bridge', 15, IGNORE_INDEX, (150, 100, 100)),
    CityscapesLabel('tunnel', 16, IGNORE_INDEX, (150, 120, 90)),
    CityscapesLabel('pole', 17, 5, (153, 153, 153)),
    CityscapesLabel('polegroup', 18, IGNORE_INDEX, (153, 153, 153)),
    CityscapesLabel('traffic light', 19, 6, (250, 170, 30)),
    CityscapesLabel('traffic sign', 20, 7, (220, 220, 0)),
    CityscapesLabel('vegetation', 21, 8, (107, 142, 35)),
    CityscapesLabel('terrain', 22, 9, (152, 251, 152)),
    CityscapesLabel('sky', 23, 10, (70, 130, 180)),
    CityscapesLabel('person', 24, 11, (220, 20, 60)),
    CityscapesLabel('rider', 25, 12, (255, 0, 0)),
    CityscapesLabel('car', 26, 13, (0, 0, 142)),
    CityscapesLabel('truck', 27, 14, (0, 0, 70)),
    CityscapesLabel('bus', 28, 15, (0, 60, 100)),
    CityscapesLabel('caravan', 29, IGNORE_INDEX, (0, 0, 90)),
    CityscapesLabel('trailer', 30, IGNORE_INDEX, (0, 0, 110)),
    CityscapesLabel('train', 31, 16, (0, 80, 100)),
    CityscapesLabel('motorcycle', 32, 17, (0, 0, 230)),
    CityscapesLabel('bicycle', 33, 18, (119, 11, 32)),
)
CITYSCAPES_LABEL_IDS = {label.name: label.label_id for label in CITYSCAPES_LABELS}

# The 19 road classes, indexed by train id.
ROAD_CLASSES: tuple[str, ...] = tuple(
    label.name for label in sorted(CITYSCAPES_LABELS, key=lambda label: label.train_id)
    if label.train_id != IGNORE_INDEX)
ROAD_PALETTE: tuple[RGB, ...] = tuple(
    label.color for label in sorted(CITYSCAPES_LABELS, key=lambda label: label.train_id)
    if label.train_id != IGNORE_INDEX)


def cityscapes_label_to_train_lut() -> np.ndarray:
    """(256,) uint8 lookup table: Cityscapes label id -> train id (IGNORE_INDEX elsewhere)."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label in CITYSCAPES_LABELS:
        lut[label.label_id] = label.train_id
    return lut


# NYU Depth v2, 40 classes (Gupta et al.), in the order of classMapping40.mat's
# className; the file's class k (1-based) is our index k - 1.
NYU40_CLASSES: tuple[str, ...] = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door', 'window',
    'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves', 'curtain', 'dresser',
    'pillow', 'mirror', 'floor mat', 'clothes', 'ceiling', 'books', 'refridgerator',
    'television', 'paper', 'towel', 'shower curtain', 'box', 'whiteboard', 'person',
    'night stand', 'toilet', 'sink', 'lamp', 'bathtub', 'bag', 'otherstructure',
    'otherfurniture', 'otherprop')

# NYU Depth v2, 13 classes (Couprie et al.), in the order of class13Mapping.mat's
# classNames.
NYU13_CLASSES: tuple[str, ...] = (
    'bed', 'books', 'ceiling', 'chair', 'floor', 'furniture', 'objects', 'picture',
    'sofa', 'table', 'tv', 'wall', 'window')

# The 40 -> 13 assignment (1-based on both sides, as class13Mapping.mat's
# labels13 stores it): the public definition of the 13-class task. The loader
# reads the user's file; the generator writes this table in that file's format.
NYU40_TO_13: tuple[int, ...] = (
    12, 5, 6, 1, 4, 9, 10, 12, 13, 6, 8, 6, 13, 10, 6, 13, 6, 7, 7, 5,
    7, 3, 2, 6, 11, 7, 7, 7, 7, 7, 7, 6, 7, 7, 7, 7, 7, 7, 6, 7)

# Silberman et al.'s four structure classes (1 ground, 2 structure,
# 3 furniture, 4 prop) per 40-class, as classMapping40.mat stores them.
NYU40_SUPERCLASS: tuple[int, ...] = (
    2, 1, 3, 3, 3, 3, 3, 2, 2, 3, 4, 2, 2, 3, 3, 2, 3, 4, 4, 4,
    4, 2, 4, 3, 4, 4, 4, 2, 4, 2, 4, 3, 3, 4, 4, 3, 4, 2, 3, 4)

NUM_NYU_RAW_CLASSES = 894  # labels in nyu_depth_v2_labeled.mat: 1..894, 0 = void

# NYU Depth v2's 27 scene types of the labelled set (``sceneTypes`` of
# nyu_depth_v2_labeled.mat), alphabetical: a frame's scene class id is the
# index here. Spelled as the dataset spells them, 'excercise_room' included
# (as open-mmlab/mmsegmentation's mmseg/datasets/nyu.py lists the 27 names, and
# as the raw dataset names its scenes, e.g. excercise_room_0001); the correct
# spelling is accepted as an alias (NYU_SCENE_ALIASES).
NYU_SCENE_TYPES: tuple[str, ...] = (
    'basement', 'bathroom', 'bedroom', 'bookstore', 'cafe', 'classroom', 'computer_lab',
    'conference_room', 'dinette', 'dining_room', 'excercise_room', 'foyer', 'furniture_store',
    'home_office', 'home_storage', 'indoor_balcony', 'kitchen', 'laundry_room', 'living_room',
    'office', 'office_kitchen', 'playroom', 'printer_room', 'reception_room', 'student_lounge',
    'study', 'study_room')
NYU_SCENE_ALIASES: dict[str, str] = {'exercise_room': 'excercise_room'}
NYU_SCENE_IDS: dict[str, int] = {
    **{name: index for index, name in enumerate(NYU_SCENE_TYPES)},
    **{alias: NYU_SCENE_TYPES.index(name) for alias, name in NYU_SCENE_ALIASES.items()}}


def nyu_scene_id(name: str) -> int:
    """The scene class id of a ``sceneTypes`` string; IGNORE_INDEX for a name not in the 27."""
    return NYU_SCENE_IDS.get(name.strip(), IGNORE_INDEX)


def nyu_palette(num_classes: int) -> tuple[RGB, ...]:
    """A fixed, well-separated palette for NYU classes (PASCAL VOC's bit-interleaved scheme)."""
    colors = []
    for index in range(1, num_classes + 1):
        r = g = b = 0
        value = index
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        colors.append((r, g, b))
    return tuple(colors)


NYU40_PALETTE = nyu_palette(len(NYU40_CLASSES))
NYU13_PALETTE = nyu_palette(len(NYU13_CLASSES))

ROAD = ClassList(ROAD_CLASSES, ROAD_PALETTE)
NYU40 = ClassList(NYU40_CLASSES, NYU40_PALETTE)
NYU13 = ClassList(NYU13_CLASSES, NYU13_PALETTE)
