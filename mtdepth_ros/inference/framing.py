"""How a live image becomes the network input, and what that does to depth.

A network learns metric depth for the images it was trained on: their aspect
(``card.input.frame_aspect``), their resize to the input, and the training
camera's focal length. A live image of another aspect is centre-cropped to
the training aspect, never stretched, then resized exactly as training
images were (:mod:`mtdepth_ros.conversions.geometry`). Cropping keeps the
pixel scale in x and y as in training; padding would show the network bars
it never saw, stretching would squash every object.

Focal correction: an object of size S at depth Z is ``f S / Z`` pixels wide,
so a live camera whose focal length at the network input is ``f_live`` shows
at depth ``Z f_live / f_train`` what the training camera showed at Z: depth
is scaled by ``f_live / f_train``. A factor outside :data:`FOCAL_SCALE_RANGE`
means a broken camera_info (or a model far outside its training), and is
refused rather than applied.
"""

from __future__ import annotations

from mtdepth_ros.conversions.geometry import Region, centre_region
from mtdepth_ros.inference.card import ModelCard

# Focal correction factors outside this range are refused: a camera_info that
# claims a 4x longer lens than the training camera's is broken, not a camera.
FOCAL_SCALE_RANGE = (0.25, 4.0)
# Beyond this relative difference between the x and y scale from the live camera
# to the network input, and training's, the network sees objects squashed.
AXIS_MISMATCH_TOLERANCE = 0.01


class FocalCorrectionError(ValueError):
    """A focal correction factor that cannot be right; the text gives the numbers."""


def input_region(card: ModelCard, width: int, height: int) -> Region:
    """The centred part of a ``width`` x ``height`` image with the training aspect."""
    return centre_region((height, width), card.input.frame_aspect)


def focal_scale(card: ModelCard, fx: float, region: Region) -> float:
    """Depth factor ``f_live / f_train`` for a live ``fx`` (pixels of the full image).

    ``region`` is the part of the image the network sees; its resize to the
    input width sets ``f_live``. Raises FocalCorrectionError outside
    :data:`FOCAL_SCALE_RANGE`.
    """
    factor = fx * card.input.width / region.width / card.camera.focal_length_px
    low, high = FOCAL_SCALE_RANGE
    if not low <= factor <= high:  # NaN fails too
        raise FocalCorrectionError(
            f'focal correction factor {factor:.3g} (live fx {fx:.6g} px at '
            f'{region.width} px wide -> {fx * card.input.width / region.width:.6g} px at the '
            f'input, training {card.camera.focal_length_px:g} px) is outside '
            f'{low:g}-{high:g}: is the camera_info right?')
    return factor


def axis_mismatch(card: ModelCard, region: Region, fx: float = 1.0, fy: float = 1.0) -> float:
    """Relative difference between the live and the training x/y scale at the input.

    Training images (square pixels) were resized from ``frame`` to the input;
    a live camera with focal lengths fx, fy (pixels) cropped to ``region``
    is resized the same way. 0 means objects keep the proportions the network
    learned; 0.05 means they look 5 % wider than in training.
    """
    spec = card.input
    frame_w, frame_h = (spec.frame_width, spec.frame_height) if spec.frame_width else \
        (spec.width, spec.height)
    live = (fx * spec.width / region.width) / (fy * spec.height / region.height)
    training = (spec.width / frame_w) / (spec.height / frame_h)
    return live / training - 1.0
