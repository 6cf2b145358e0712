"""Every resize and crop of an image, and what it does to intrinsics, depth and labels.

The one copy of image geometry in the package: the node, the evaluation and
the training transforms all call these functions (docs/conversions.md).

Convention, the one ``cv2.resize`` samples with: pixel centres sit at integer
coordinates and a W-pixel row spans [-0.5, W - 0.5]. Resizing by ``s`` maps a
coordinate ``x`` to ``s (x + 0.5) - 0.5``, so ``fx' = s fx`` and
``cx' = s (cx + 0.5) - 0.5``; a crop starting at (top, left) shifts
``cx -= left``, ``cy -= top``; a left-right flip maps ``u`` to ``W - 1 - u``.
(image_proc's ``resize`` node scales ``cx' = s cx`` instead, which is off by
``(s - 1) / 2`` pixels from what OpenCV's resize actually samples.)

Sizes are (height, width) everywhere in this module, as numpy shapes are.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Labels: the source pixel whose centre is nearest (INTER_NEAREST rounds down
# instead and shifts upsampled labels by up to half a source pixel).
LABEL_INTERPOLATION = cv2.INTER_NEAREST_EXACT
# Images shrunk by this factor or more in both axes are averaged by whole blocks first.
BLOCK_SHRINK_MIN = 1.5
# The KITTI depth benchmark's crop of a 375x1242 frame: bottom 352 rows, centred 1216 columns.
KB_CROP_SIZE = (352, 1216)
KITTI_FRAME_SIZE = (375, 1242)

Size = tuple[int, int]  # (height, width)


@dataclass(frozen=True)
class Region:
    """A window of a frame, in that frame's pixels: top-left corner and size."""

    top: int
    left: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.top < 0 or self.left < 0 or self.height <= 0 or self.width <= 0:
            raise ValueError(f'a region needs top, left >= 0 and a positive size, got {self}')

    @classmethod
    def whole(cls, size: Size) -> Region:
        """All of a frame of ``size``."""
        return cls(0, 0, int(size[0]), int(size[1]))

    @property
    def size(self) -> Size:
        return self.height, self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width

    def within(self, outer: Region | None) -> Region:
        """This region, given in the pixels of ``outer`` (a window of a frame), in the frame's
        pixels; ``outer`` None = the whole frame."""
        if outer is None:
            return self
        if self.bottom > outer.height or self.right > outer.width:
            raise ValueError(f'{self} does not fit in {outer}')
        return Region(outer.top + self.top, outer.left + self.left, self.height, self.width)

    def of(self, array: np.ndarray) -> np.ndarray:
        """The region of an (H, W, ...) array (a view); the array must contain it."""
        if self.bottom > array.shape[0] or self.right > array.shape[1]:
            raise ValueError(f'{self} does not fit in a {array.shape[0]}x{array.shape[1]} frame')
        return array[self.top:self.bottom, self.left:self.right]

    def paste(self, values: np.ndarray, frame_size: Size, fill: float = np.nan) -> np.ndarray:
        """A ``frame_size`` array holding ``values`` (the region's size) here, ``fill`` elsewhere."""
        if values.shape[:2] != self.size:
            raise ValueError(f'values of {values.shape[0]}x{values.shape[1]} do not match '
                             f'the {self.height}x{self.width} region')
        frame = np.full((*frame_size, *values.shape[2:]), fill, dtype=values.dtype)
        self.of(frame)[...] = values
        return frame


def scale_coordinate(value: float, scale: float) -> float:
    """A pixel coordinate after a resize by ``scale`` (centre to centre, as cv2.resize)."""
    return scale * (value + 0.5) - 0.5


def resize_intrinsics(intrinsics: np.ndarray, old: Size, new: Size) -> np.ndarray:
    """(3, 3) K for an image resized from ``old`` to ``new``."""
    scale_y, scale_x = new[0] / old[0], new[1] / old[1]
    out = np.array(intrinsics, dtype=np.float64)
    out[0, 0] *= scale_x
    out[1, 1] *= scale_y
    out[0, 2] = scale_coordinate(out[0, 2], scale_x)
    out[1, 2] = scale_coordinate(out[1, 2], scale_y)
    return out


def crop_intrinsics(intrinsics: np.ndarray, top: int, left: int) -> np.ndarray:
    """(3, 3) K for the crop of an image starting at (top, left)."""
    out = np.array(intrinsics, dtype=np.float64)
    out[0, 2] -= left
    out[1, 2] -= top
    return out


def flip_intrinsics(intrinsics: np.ndarray, width: int) -> np.ndarray:
    """(3, 3) K for the left-right mirror of an image ``width`` pixels wide."""
    out = np.array(intrinsics, dtype=np.float64)
    out[0, 2] = width - 1 - out[0, 2]
    return out


def resize_image(image: np.ndarray, size: Size) -> np.ndarray:
    """An (H, W[, C]) image at ``size``: area averaging when shrinking (no aliasing),
    bilinear when enlarging.

    A shrink by 1.5x or more in each axis (a camera frame to the network input)
    averages blocks first, as many pixels per block in each axis as its factor
    rounded (OpenCV's fast integer area path), and resamples the rest of the
    way (0.75-1.25x) bilinearly on the same pixel grid
    (:func:`_blocks_then_linear`): 4-7x faster than OpenCV's fractional area
    resize, and within a few grey levels of it (docs/conversions.md).
    """
    if image.shape[:2] == tuple(size):
        return image
    ratios = (image.shape[0] / size[0], image.shape[1] / size[1])
    if min(ratios) >= BLOCK_SHRINK_MIN:
        return _blocks_then_linear(image, size, (round(ratios[0]), round(ratios[1])))
    shrink = size[0] < image.shape[0] or size[1] < image.shape[1]
    return cv2.resize(image, (size[1], size[0]),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _blocks_then_linear(image: np.ndarray, size: Size, block: Size) -> np.ndarray:
    """``image`` at ``size``: means of ``block`` (rows, columns) blocks, then bilinear.

    The blocks tile the image from its top-left corner; a last partial block row
    or column is completed by repeating the image's last row or column. The
    bilinear step is given its scale, not its size (``cv2.resize`` with ``fx``
    and ``fy``), so it samples each output pixel centre where the module's
    convention puts it in the image, whatever the image's size modulo the
    block; the output is then cut to ``size``.
    """
    (height, width), (block_h, block_w) = image.shape[:2], block
    rows, cols = -(-height // block_h), -(-width // block_w)  # the last maybe padded
    padded = image if (rows * block_h, cols * block_w) == (height, width) else \
        cv2.copyMakeBorder(image, 0, rows * block_h - height, 0, cols * block_w - width,
                           cv2.BORDER_REPLICATE)
    blocks = cv2.resize(padded, (cols, rows), interpolation=cv2.INTER_AREA)
    if (rows, cols) == tuple(size):
        return blocks
    # output x -> image x = (x + 0.5) w / W - 0.5 -> block x = (x + 0.5) w / (W k) - 0.5:
    # cv2.resize's own mapping for a scale of W k / w
    out = cv2.resize(blocks, None, fx=size[1] * block_w / width, fy=size[0] * block_h / height,
                     interpolation=cv2.INTER_LINEAR)
    return out[:size[0], :size[1]]  # at least size: rows k >= h, so rows H k / h >= H


def resize_labels(labels: np.ndarray, size: Size) -> np.ndarray:
    """(h, w) class ids at ``size`` by the nearest source pixel centre (ids are not averaged)."""
    labels = np.asarray(labels)
    if labels.shape[:2] == tuple(size):
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=LABEL_INTERPOLATION)


def resize_depth_nearest(depth: np.ndarray, size: Size, out: np.ndarray | None = None
                         ) -> np.ndarray:
    """(h, w) depth at ``size`` by the nearest source pixel centre.

    No depth is invented between a foreground and a background surface (no
    flying points in a cloud); for dense predictions shown at another size.
    ``out``: an array of ``size`` and the depth's type to write into (a
    message's payload, say); without it a map already at ``size`` is returned
    as it is.
    """
    if depth.shape[:2] == tuple(size):
        if out is None:
            return depth
        np.copyto(out, depth)
        return out
    resized = cv2.resize(depth, (size[1], size[0]), dst=out, interpolation=LABEL_INTERPOLATION)
    if out is not None and not np.shares_memory(resized, out):  # OpenCV wrote elsewhere
        np.copyto(out, resized)
        return out
    return resized


def resize_depth_sparse(depth: np.ndarray, size: Size) -> np.ndarray:
    """Sparse ground truth (0 = no measurement) at ``size``, never interpolated.

    Shrinking moves every measurement to the pixel its centre falls in and
    keeps the nearest where several meet (sparse LiDAR points survive);
    enlarging takes the nearest source pixel.
    """
    height, width = depth.shape
    if size[0] >= height and size[1] >= width:
        return resize_depth_nearest(depth, size)
    v, u = np.nonzero(depth > 0)
    values = depth[v, u]
    nu = np.minimum(((u + 0.5) * size[1] / width).astype(np.int64), size[1] - 1)
    nv = np.minimum(((v + 0.5) * size[0] / height).astype(np.int64), size[0] - 1)
    out = np.full(size[0] * size[1], np.inf, dtype=np.float32)
    np.minimum.at(out, nv * size[1] + nu, values)
    out[np.isinf(out)] = 0.0
    return out.reshape(size)


def resize_depth_bilinear(depth: np.ndarray, size: Size) -> np.ndarray:
    """(h, w) metres at ``size``, bilinear over valid pixels only (NaN where none).

    Missing values (NaN, inf, <= 0) get zero weight, so NaN does not spread
    and no depth comes from a missing neighbour; for scoring a prediction on
    the ground truth's grid. REP 117's infinities (+inf beyond the range, -inf
    nearer than it) are not averaged but kept where the nearest source pixel
    holds one, so a far region stays far at any size.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.shape == tuple(size):
        return depth
    valid = np.isfinite(depth) & (depth > 0)
    cv_size = (size[1], size[0])
    values = cv2.resize(np.where(valid, depth, 0).astype(np.float32), cv_size,
                        interpolation=cv2.INTER_LINEAR)
    weights = cv2.resize(valid.astype(np.float32), cv_size, interpolation=cv2.INTER_LINEAR)
    with np.errstate(invalid='ignore', divide='ignore'):
        resized = np.where(weights > 0, values / weights, np.nan).astype(np.float32)
    if np.isinf(depth).any():
        nearest = resize_depth_nearest(depth, size)
        resized = np.where(np.isinf(nearest), nearest, resized)
    return resized


def bottom_centre_region(frame: Size, size: Size) -> Region:
    """The ``size`` window at the bottom of ``frame``, centred left-right (clipped to the frame)."""
    height, width = min(size[0], frame[0]), min(size[1], frame[1])
    return Region(frame[0] - height, (frame[1] - width) // 2, height, width)


def kb_crop_region(frame: Size) -> Region:
    """The KITTI benchmark crop of ``frame``: its bottom 352 rows and centred 1216 columns.

    Every KITTI frame (1224 to 1242 wide) holds the whole 352x1216 crop.
    Frames smaller than the crop (generated ones) get the crop's fractions of
    a 375x1242 KITTI frame, so their benchmark crop covers what KITTI's does.
    """
    if frame[0] >= KB_CROP_SIZE[0] and frame[1] >= KB_CROP_SIZE[1]:
        return bottom_centre_region(frame, KB_CROP_SIZE)
    height = round(frame[0] * KB_CROP_SIZE[0] / KITTI_FRAME_SIZE[0])
    width = round(frame[1] * KB_CROP_SIZE[1] / KITTI_FRAME_SIZE[1])
    return bottom_centre_region(frame, (max(height, 1), max(width, 1)))


def centre_region(frame: Size, aspect: float) -> Region:
    """The largest centred window of ``frame`` whose width / height is ``aspect``.

    The whole frame when its aspect already rounds to ``aspect``.
    """
    height, width = frame
    if not aspect > 0:
        raise ValueError(f'aspect must be positive, got {aspect}')
    crop_w, crop_h = min(width, round(height * aspect)), min(height, round(width / aspect))
    if crop_w < width:
        return Region(0, (width - crop_w) // 2, height, max(crop_w, 1))
    return Region((height - crop_h) // 2, 0, max(crop_h, 1), width)
