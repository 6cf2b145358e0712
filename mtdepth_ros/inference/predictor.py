"""One exported model, from an RGB image to decoded head outputs.

``Predictor`` reads the model card, starts the first backend of a fallback
chain that works, and per image: crops it to the training aspect and resizes
it as the card says (:mod:`~mtdepth_ros.inference.framing`), normalises it,
runs only the heads asked for, and decodes them (normalised log depth to
metres, integer heads to compact label images). Everything comes back at the
network's resolution, covering :attr:`Prediction.region` of the image.

With ``flip``, the network also runs on the mirror image: its depth and
confidence outputs, flipped back, are averaged with the direct pass's in the
network's own output coding (normalised log depth: a mean of log distances)
before decoding; intervals and segmentation (class ids, not scores) come from
the direct pass, as do the far classes. It costs a second image in the
backend run (one batch of two where the model takes a batch).

With ``ground_contact`` (:mod:`~mtdepth_ros.inference.ground_contact`), every
standing thing the segmentation finds on the ground (a car, a wall, a hedge) is
put, column by column, at the depth of the ground beneath it; the segmentation
head then runs with depth.

Depth follows REP 117: metres where the model gives an estimate inside its
valid range (``card.depth_range``), +inf at or beyond its far limit and for
the classes the card marks far (the sky), -inf at or nearer than its near
limit, NaN for no estimate. With a live focal length, finite depth is scaled
by the focal correction factor (framing module).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mtdepth_ros.conversions.geometry import Region, resize_image
from mtdepth_ros.conversions.labels import label_dtype
from mtdepth_ros.inference.backends.base import Backend, BackendOptions, create_backend
from mtdepth_ros.inference.card import HEADS, ModelCard
from mtdepth_ros.inference.framing import focal_scale, input_region
from mtdepth_ros.inference.ground_contact import (
    GroundContactError, ground_contact_classes, ground_contact_depth)
from mtdepth_ros.inference.model_file import read_card

PIXEL_MAX = 255.0  # the card's mean/std are on the 0..1 scale
# Decoding at the clip of the coding lands within float32 rounding of the limit.
RANGE_EDGE = np.float32(1.0 - 1e-6)
# The heads whose outputs are averaged with the mirror pass's (the others are class ids).
FLIP_AVERAGED = ('depth', 'confidence')


@dataclass
class Prediction:
    """Decoded heads at the network's resolution (card input size); None = not asked for."""

    depth: np.ndarray | None = None  # (h, w) float32 metres, NaN invalid
    intervals: np.ndarray | None = None  # (h, w) uint8 interval index
    confidence: np.ndarray | None = None  # (h, w) float32 0..1
    segmentation: np.ndarray | None = None  # (h, w) uint8 (uint16 if > 255 classes)
    inference_s: float = 0.0  # time spent in the backend alone
    # The part of the input image the maps cover, in that image's pixels; None = all of it.
    region: Region | None = None
    # The focal correction applied to the depth (the card's valid range, marked before it,
    # is this many times the range in the depth's own metres)
    depth_scale: float = 1.0


class Predictor:
    """Preprocess -> backend -> decode, configured from the model card alone."""

    def __init__(self, model_path: str | Path, backends: Sequence[str] = ('onnxruntime',),
                 options: BackendOptions | None = None) -> None:
        self.model_path = Path(model_path)
        self.card: ModelCard = read_card(self.model_path)
        self.backend: Backend
        self.backend, self.skipped_backends = create_backend(
            backends, self.model_path, self.card, options)
        spec = self.card.input
        # (x / 255 - mean) / std as one multiply-subtract per channel.
        std = np.asarray(spec.std, dtype=np.float32)
        self._scale = (1.0 / (PIXEL_MAX * std)).reshape(3, 1, 1)  # (3, 1, 1)
        self._offset = (np.asarray(spec.mean, dtype=np.float32) / std).reshape(3, 1, 1)
        classes = self.card.classes
        self._label_dtype = label_dtype(len(classes.names) if classes else 0)

    @functools.cached_property
    def ground_contact_classes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(standing class ids, ground class ids) of the ground-contact prior; raises
        GroundContactError (a ValueError) naming what a model without a segmentation head,
        or without ground and standing classes, lacks."""
        classes = self.card.classes
        if classes is None or not self.card.has_head('segmentation'):
            raise GroundContactError(f'{self.model_path}: the ground-contact prior needs a '
                                     'segmentation head, and this model has none')
        try:
            return ground_contact_classes(classes.names)
        except GroundContactError as error:
            raise GroundContactError(f'{self.model_path}: {error}') from None

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads this model has, in the card's canonical order."""
        return tuple(h for h in HEADS if self.card.has_head(h))

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the network input, and of every Prediction array."""
        return self.card.input.width, self.card.input.height

    @property
    def description(self) -> str:
        return self.backend.description

    @property
    def max_batch(self) -> int:
        """Images one backend run takes (1 unless the model has a free batch dimension)."""
        return self.backend.max_batch

    def heads_to_run(self, heads: Collection[str], ground_contact: bool = False
                     ) -> tuple[str, ...]:
        """``heads`` in canonical order, plus segmentation for depth when the card marks
        far classes (their depth is +inf) or with ``ground_contact``."""
        wanted = set(heads)
        if 'depth' in wanted and 'segmentation' in self.heads and (
                self.card.far_class_ids or ground_contact):
            wanted.add('segmentation')
        return self._check_heads(wanted) if wanted else ()

    def outputs_for(self, heads: Collection[str]) -> tuple[str, ...]:
        """The ONNX output names of ``heads`` (checked against the model's heads)."""
        return tuple(self.card.heads[h].output for h in self._check_heads(heads))

    def infer(self, tensors: Sequence[np.ndarray], outputs: Sequence[str]
              ) -> tuple[list[dict[str, np.ndarray]], float]:
        """Run preprocessed (1, 3, h, w) tensors, several per backend run where the model
        takes a batch; per tensor ``{output name: (1, ...) array}``, and the backend's seconds."""
        results: list[dict[str, np.ndarray]] = []
        seconds = 0.0
        size = max(1, self.max_batch)
        for start in range(0, len(tensors), size):
            chunk = tensors[start:start + size]
            batch = chunk[0] if len(chunk) == 1 else np.concatenate(chunk)
            started = time.perf_counter()
            raw = self.backend.run(batch, outputs)
            seconds += time.perf_counter() - started
            results += [{name: value[i:i + 1] for name, value in raw.items()}
                        for i in range(len(chunk))]
        return results, seconds

    def region(self, width: int, height: int) -> Region:
        """The part of a ``width`` x ``height`` image the network sees (the training aspect)."""
        return input_region(self.card, width, height)

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (1, 3, h, w) float32 as the card says (crop, resize,
        colour order, normalisation)."""
        return self.normalise(self.network_image(rgb))

    def network_image(self, rgb: np.ndarray, bgr: bool = False) -> np.ndarray:
        """(H, W, 3) uint8 RGB cropped to the training aspect and resized to the input:
        (h, w, 3) uint8 RGB, the picture the network sees (and the cloud's colours).

        ``bgr``: the image's channels are in BGR order (a bgr8 message as it came):
        resized first, then swapped, so the swap touches the input's pixels only.
        """
        check_rgb(rgb)
        width, height = self.input_size
        image = resize_image(self.region(rgb.shape[1], rgb.shape[0]).of(rgb), (height, width))
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else image

    def normalise(self, image: np.ndarray) -> np.ndarray:
        """:meth:`network_image`'s (h, w, 3) uint8 -> the (1, 3, h, w) float32 input tensor."""
        width, height = self.input_size
        planes = cv2.split(image)  # three contiguous (h, w) planes: a strided multiply is 4x slower
        if self.card.input.color_order == 'BGR':
            planes = planes[::-1]
        tensor = np.empty((1, 3, height, width), dtype=np.float32)
        for channel, plane in enumerate(planes):
            np.multiply(plane, self._scale[channel], out=tensor[0, channel])
            tensor[0, channel] -= self._offset[channel]
        return tensor

    def predict(self, rgb: np.ndarray, heads: Collection[str] | None = None,
                focal_px: float | None = None, flip: bool = False,
                ground_contact: bool = False) -> Prediction:
        """Run the model on one image; decode the heads asked for (None = all it has).

        ``focal_px`` is the live camera's fx at ``rgb``'s resolution; when
        given, depth is scaled for the focal length (FocalCorrectionError when
        the factor is out of bounds). Far classes need the segmentation head,
        which is then run and returned with depth. ``flip``: depth and
        confidence averaged with the mirror image's; ``ground_contact``: standing
        things at the depth of the ground beneath them (module docstring).
        """
        wanted = self.heads_to_run(self.heads if heads is None else heads, ground_contact)
        region = self.region(rgb.shape[1], rgb.shape[0])
        scale = 1.0 if focal_px is None else focal_scale(self.card, focal_px, region)
        tensors = self.input_tensors(self.preprocess(rgb), wanted, flip)
        raws, inference_s = self.infer(tensors, self.outputs_for(wanted))
        prediction = self.decode(raws[0], wanted, scale,
                                 mirrored=raws[1] if len(raws) > 1 else None,
                                 ground_contact=ground_contact)
        prediction.inference_s = inference_s
        prediction.region = region
        return prediction

    def flips(self, heads: Collection[str]) -> bool:
        """Whether a mirror pass changes any of ``heads`` (depth or confidence among them)."""
        return any(head in heads for head in FLIP_AVERAGED)

    def input_tensors(self, tensor: np.ndarray, heads: Collection[str], flip: bool
                      ) -> tuple[np.ndarray, ...]:
        """The backend inputs for one image's ``tensor``: it, and with ``flip`` its mirror
        when that changes one of ``heads``; their outputs go to :meth:`decode` in order."""
        return (tensor, mirror(tensor)) if flip and self.flips(heads) else (tensor,)

    def decode(self, raw: Mapping[str, np.ndarray], heads: Collection[str],
               depth_scale: float = 1.0, mirrored: Mapping[str, np.ndarray] | None = None,
               ground_contact: bool = False) -> Prediction:
        """Backend outputs ``{output name: (1, 1, h, w)}`` -> decoded ``heads``.

        ``depth_scale`` multiplies the finite depth in metres (the focal
        correction), after the valid range and far classes are marked
        (REP 117, module docstring). ``mirrored``: the outputs of the mirror
        image, whose depth and confidence are averaged in; ``ground_contact``: with
        segmentation among ``heads`` (:meth:`heads_to_run`), standing things at the
        depth of the ground beneath them (module docstring).
        """
        prediction = Prediction(depth_scale=depth_scale)
        for head in heads:
            output = self.card.heads[head].output
            value = raw[output][0, 0]  # (N, 1, h, w) -> (h, w)
            if mirrored is not None and head in FLIP_AVERAGED:
                value = average_mirrored(value, mirrored[output][0, 0])
            setattr(prediction, head, self._decode(head, value))
        depth = prediction.depth
        if depth is not None:
            self._mark_out_of_range(depth)
            far = self.card.far_class_ids
            if far and prediction.segmentation is not None:
                depth[np.isin(prediction.segmentation, far)] = np.inf
            if ground_contact and prediction.segmentation is not None:
                depth = prediction.depth = ground_contact_depth(
                    depth, prediction.segmentation, *self.ground_contact_classes)
            if depth_scale != 1.0:
                depth *= np.float32(depth_scale)  # inf stays inf, NaN stays NaN
        return prediction

    def _mark_out_of_range(self, depth: np.ndarray) -> None:
        """+inf at or beyond the far limit, -inf at or nearer than the near limit (in place)."""
        if self.card.depth_range is None:
            return
        near, far = self.card.depth_range
        with np.errstate(invalid='ignore'):
            depth[depth >= np.float32(far) * RANGE_EDGE] = np.inf
            depth[depth <= np.float32(near) / RANGE_EDGE] = -np.inf

    def warm_up(self) -> None:
        """Run once on a blank image so the first real frame is not slowed by lazy set-up."""
        width, height = self.input_size
        self.backend.run(self.preprocess(np.zeros((height, width, 3), np.uint8)), [])

    def close(self) -> None:
        self.backend.close()

    def _check_heads(self, heads: Collection[str] | None) -> tuple[str, ...]:
        if heads is None:
            return self.heads
        missing = sorted(set(heads) - set(self.heads))
        if missing:
            raise ValueError(f'{self.model_path} has no heads {missing} '
                             f'(its heads: {list(self.heads)})')
        return tuple(h for h in self.heads if h in heads)

    def _decode(self, head: str, value: np.ndarray) -> np.ndarray:
        if head == 'depth':
            return self._decode_depth(value)
        if head == 'confidence':
            return value.astype(np.float32, copy=False)
        dtype = np.uint8 if head == 'intervals' else self._label_dtype
        return value.astype(dtype, copy=False)

    def _decode_depth(self, value: np.ndarray) -> np.ndarray:
        spec = self.card.heads['depth']
        if spec.encoding == 'normalized_log':
            assert self.card.depth_coding is not None  # the card parser requires it
            depth = self.card.depth_coding.decode(value)
        else:
            depth = np.array(value, dtype=np.float32)  # a copy: backends may reuse buffers
        depth[~(depth > 0)] = np.nan  # non-positive and NaN are invalid (REP 118)
        return depth


def mirror(tensor: np.ndarray) -> np.ndarray:
    """The (N, C, h, w) input tensor of the mirror image (left and right swapped)."""
    return np.ascontiguousarray(tensor[..., ::-1])


def average_mirrored(value: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """(h, w) float32 mean of a head's output and the mirror pass's, flipped back."""
    if value.shape != mirrored.shape:
        raise ValueError(f'the mirror pass gave {mirrored.shape}, the direct pass {value.shape}')
    return ((value.astype(np.float32) + mirrored[:, ::-1]) * np.float32(0.5)).astype(
        np.float32, copy=False)


def check_rgb(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 \
            or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        shape = getattr(rgb, 'shape', None)
        dtype = getattr(rgb, 'dtype', type(rgb).__name__)
        raise ValueError(f'expected a (H, W, 3) uint8 RGB image, got shape {shape} dtype {dtype}')
