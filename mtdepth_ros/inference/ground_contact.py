"""Standing things at the depth of the ground they stand on (the stixel world's prior).

Seen by a level camera, a vertical surface lies at one depth down each image
column: the rays of a column share their direction in the ground plane, and a
vertical surface meets that direction at one distance whatever the height.
So a car, a wall, a hedge or a pole standing on the road or pavement is, in
each column, at the depth of the ground where it stands (Badino, Franke and
Pfeiffer, "The Stixel World", DAGM 2009).

:func:`ground_contact_depth` applies that to a network's depth with its own
segmentation: in each column, every maximal vertical run of one standing
class (car, building, vegetation, ...) that ends directly on a ground class
(road, sidewalk, terrain) takes the depth of the ground pixel beneath its
foot. Runs that end on something else (a wall behind a car, a crown above a
trunk labelled otherwise) or at the image's bottom edge keep the network's
depth, as do ground, sky and every other class. A network that draws depth
row by row, the road's, across a real car it does not recognise but does
segment, then puts the car where it stands.

Pure numpy on network-resolution maps; one pass over the image, no loop per
column or per pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Cityscapes train-id names (the card's classes.names) of the two groups.
GROUND_CLASSES = ('road', 'sidewalk', 'terrain')
STANDING_CLASSES = ('building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
                    'vegetation', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                    'motorcycle', 'bicycle')


class GroundContactError(ValueError):
    """The model's classes cannot say what stands and what is ground."""


def ground_contact_classes(names: Sequence[str]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(standing ids, ground ids) among a model's class ``names``; refuses a class list
    without both groups (an indoor model's, say), naming what it lacks."""
    standing = tuple(i for i, name in enumerate(names) if name in STANDING_CLASSES)
    ground = tuple(i for i, name in enumerate(names) if name in GROUND_CLASSES)
    if not standing or not ground:
        lacking = ' and '.join(group for group, ids in
                               (('a ground class (' + ', '.join(GROUND_CLASSES) + ')', ground),
                                ('a standing class (car, building, ...)', standing))
                               if not ids)
        raise GroundContactError(f'the ground-contact prior needs {lacking}; the model\'s '
                                 f'classes are: {", ".join(names)}')
    return standing, ground


def ground_contact_depth(depth: np.ndarray, labels: np.ndarray, standing: Sequence[int],
                         ground: Sequence[int]) -> np.ndarray:
    """``depth`` (h, w) float32 with every standing run that ends on ground at the depth
    of the ground pixel beneath it (module docstring), as a new array.

    ``labels`` (h, w) are the class ids of the same pixels. A ground pixel whose depth
    is not finite (no estimate, out of range) lends nothing: its run keeps its depth.
    """
    if depth.shape != labels.shape or depth.ndim != 2:
        raise ValueError(f'depth {depth.shape} and labels {labels.shape} must be one (h, w)')
    height = depth.shape[0]
    rows = np.arange(height, dtype=np.int32)[:, None]  # (h, 1)
    # A run's foot: the last row of each vertical run of one class in its column.
    last_of_run = np.ones(labels.shape, dtype=bool)
    np.not_equal(labels[1:], labels[:-1], out=last_of_run[:-1])
    foot_rows = np.where(last_of_run, rows, np.int32(height))
    foot = np.minimum.accumulate(foot_rows[::-1], axis=0)[::-1]  # (h, w) each pixel's foot
    beneath = np.minimum(foot + 1, height - 1)  # the row under the foot (clipped at the edge)
    columns = np.arange(depth.shape[1], dtype=np.int32)[None, :]
    below_label = labels[beneath, columns]
    below_depth = depth[beneath, columns]
    takes = (_members(labels, standing) & (foot < height - 1)
             & _members(below_label, ground) & np.isfinite(below_depth))
    return np.where(takes, below_depth, depth).astype(depth.dtype, copy=False)


def _members(labels: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    """``np.isin(labels, ids)``; a lookup table for 8- and 16-bit labels (the label images
    the predictor decodes), several times faster."""
    if labels.dtype in (np.uint8, np.uint16):
        table = np.zeros(np.iinfo(labels.dtype).max + 1, dtype=bool)
        table[list(ids)] = True
        return table[labels]
    return np.isin(labels, ids)
