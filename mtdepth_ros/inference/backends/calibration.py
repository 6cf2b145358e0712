"""INT8 calibration data: images from a folder or a rosbag, preprocessed as the Predictor does.

Calibration measures the range of every activation on representative
inputs, so the inputs must be exactly what the network sees at run time:
the images go through :meth:`mtdepth_ros.inference.predictor.Predictor.preprocess`
(resize to the card's input size, colour order, mean/std), not a copy of it.

The scales are used in one of two ways (see :mod:`.engine_builder`):

- explicit quantisation (current TensorRT): ONNX Runtime's entropy
  calibration writes a Q/DQ ONNX (:func:`onnx_precision.quantize_to_qdq`),
  kept beside the engine and reused while the model and images are the same;
- implicit quantisation (TensorRT < 10 without strong typing, or on request
  where it is still available): :func:`make_entropy_calibrator` gives
  TensorRT an ``IInt8EntropyCalibrator2`` with a calibration cache file.
  Deprecated since TensorRT 10.1 and gone in 11.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mtdepth_ros.conversions.images import image_to_rgb

if TYPE_CHECKING:
    import tensorrt as trt

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
BAG_SUFFIXES = ('.mcap', '.db3')
BAG_METADATA = 'metadata.yaml'
DEFAULT_IMAGE_TOPIC = '/camera/image_raw'
DEFAULT_LIMIT = 200  # images; TensorRT's guidance is a few hundred representative frames
HASH_CHUNK = 1 << 20

Preprocess = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 RGB -> (1, 3, h, w) float32


class CalibrationError(ValueError):
    """Calibration data that cannot be used; the message names the path and the reason."""


@dataclass(frozen=True)
class CalibrationSource:
    """Where calibration images come from: image files, or one rosbag and its image topic."""

    path: Path
    files: tuple[Path, ...] = ()  # the images used, when path is a folder
    topic: str = ''  # the image topic, when path is a bag
    limit: int = DEFAULT_LIMIT

    @property
    def is_bag(self) -> bool:
        return bool(self.topic)

    def describe(self) -> str:
        if self.is_bag:
            return f'up to {self.limit} images of {self.topic} in {self.path}'
        return f'{len(self.files)} images from {self.path}'

    def digest(self) -> str:
        """sha256 over the images' bytes (and the topic and limit for a bag)."""
        digest = hashlib.sha256()
        if self.is_bag:
            digest.update(f'{self.topic}\0{self.limit}\0'.encode())
        for file in self._content_files():
            digest.update(file.name.encode() + b'\0')
            with open(file, 'rb') as stream:
                for chunk in iter(lambda: stream.read(HASH_CHUNK), b''):
                    digest.update(chunk)
        return digest.hexdigest()

    def _content_files(self) -> list[Path]:
        if not self.is_bag:
            return list(self.files)
        if self.path.is_file():
            return [self.path]
        return sorted(p for p in self.path.iterdir() if p.suffix in BAG_SUFFIXES)


def is_bag(path: Path) -> bool:
    return (path.is_dir() and (path / BAG_METADATA).is_file()) or (
        path.is_file() and path.suffix in BAG_SUFFIXES)


def find_source(path: str | Path, limit: int = DEFAULT_LIMIT,
                topic: str = DEFAULT_IMAGE_TOPIC) -> CalibrationSource:
    """Calibration images at ``path``: a rosbag, or a folder searched for PNG/JPEG files.

    A folder with more than ``limit`` images gives ``limit`` of them, evenly
    spread over the sorted list (neighbouring video frames are alike).
    """
    path = Path(path).expanduser()
    if limit < 1:
        raise CalibrationError(f'the calibration image limit must be at least 1, got {limit}')
    if not path.exists():
        raise CalibrationError(f'calibration data not found: {path}')
    if is_bag(path):
        return CalibrationSource(path=path, topic=topic, limit=limit)
    if not path.is_dir():
        raise CalibrationError(f'{path} is neither a folder of images nor a rosbag '
                               f'({", ".join(BAG_SUFFIXES)} file or folder with {BAG_METADATA})')
    files = sorted(p for p in path.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(f'no {"/".join(IMAGE_SUFFIXES)} images in {path}')
    return CalibrationSource(path=path, files=tuple(spread(files, limit)), limit=limit)


def spread(items: Sequence[Path], limit: int) -> list[Path]:
    """At most ``limit`` items, evenly spaced over ``items`` and including the first."""
    if len(items) <= limit:
        return list(items)
    picks = np.linspace(0, len(items) - 1, limit).round().astype(int)
    return [items[i] for i in np.unique(picks)]


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (grey and 16-bit images converted)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)  # 8-bit BGR whatever the file holds
    if pixels is None:
        raise CalibrationError(f'{path}: cannot be read as an image')
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def source_images(source: CalibrationSource) -> Iterator[np.ndarray]:
    """The source's images, (H, W, 3) uint8 RGB each, in order."""
    if not source.is_bag:
        for file in source.files:
            yield read_rgb(file)
        return
    count = 0
    for msg in bag_messages(source.path, source.topic, source.limit):
        count += 1
        try:
            yield image_to_rgb(msg)
        except ValueError as error:
            raise CalibrationError(f'{source.path}: image {count} on {source.topic}: '
                                   f'{error}') from error
    if count == 0:
        raise CalibrationError(f'{source.path}: no images on {source.topic}')


def bag_messages(path: Path, topic: str, limit: int) -> Iterator[Any]:
    """The first ``limit`` messages on ``topic`` of a rosbag2 bag, read with ``rosbags``.

    Plain reading (no stamp matching or salvage of damaged files, which the
    evaluation's bag reader adds); needs ``rosbags`` (the ``eval`` extra).
    """
    try:
        from rosbags.highlevel import AnyReader  # noqa: PLC0415  (optional on a vehicle)
        from rosbags.typesys import Stores, get_typestore  # noqa: PLC0415
    except ImportError as error:
        raise CalibrationError(f'{path}: reading a bag needs rosbags (pip install '
                               f'mtdepth_ros[eval]), or pass a folder of images') from error
    with AnyReader([path], default_typestore=get_typestore(Stores.LATEST)) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections:
            topics = sorted({c.topic for c in reader.connections})
            raise CalibrationError(f'{path}: no topic {topic!r}; its topics: {topics}')
        for count, (connection, _, data) in enumerate(reader.messages(connections=connections)):
            if count >= limit:
                return
            yield reader.deserialize(data, connection.msgtype)


def calibration_batches(source: CalibrationSource, preprocess: Preprocess) -> Iterator[np.ndarray]:
    """Network inputs for calibration: (1, 3, h, w) float32 C-contiguous, one per image."""
    for rgb in source_images(source):
        yield np.ascontiguousarray(preprocess(rgb), dtype=np.float32)


def predictor_preprocess(model_path: Path) -> Preprocess:
    """The Predictor's own preprocessing for ``model_path`` (ONNX Runtime on the CPU)."""
    from mtdepth_ros.inference.predictor import Predictor  # noqa: PLC0415

    return Predictor(model_path, backends=('onnxruntime',)).preprocess


def calibration_cache_path(cache_dir: Path, model_path: Path, onnx_sha256: str) -> Path:
    """TensorRT's calibration cache for this exact model (the hash prefix keeps models apart)."""
    return cache_dir / f'{model_path.stem}.{onnx_sha256[:12]}.calib'


def make_entropy_calibrator(batches: Iterator[np.ndarray], input_shape: tuple[int, ...],
                            cache_path: Path) -> trt.IInt8EntropyCalibrator2:
    """A TensorRT entropy calibrator over ``batches`` with a calibration cache at ``cache_path``.

    When the cache file exists TensorRT takes the scales from it and asks for
    no batches. Needs TensorRT with implicit INT8 (before 11) and a GPU.
    """
    import tensorrt as trt  # noqa: PLC0415

    from mtdepth_ros.inference.backends.cuda_memory import DeviceBuffer  # noqa: PLC0415

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)  # pybind11 needs the explicit call
            self.device = DeviceBuffer(int(np.prod(input_shape)) * np.dtype(np.float32).itemsize)
            self.count = 0
            # The bindings print and swallow exceptions raised in get_batch (calibration
            # just ends), so the first one is kept here for the builder to raise.
            self.error: Exception | None = None

        def get_batch_size(self) -> int:
            return int(input_shape[0])

        def get_batch(self, names: list[str]) -> list[int]:
            try:
                batch = next(batches, None)
                if batch is None:
                    return []  # an empty list (or None) ends calibration
                if batch.shape != input_shape:
                    raise CalibrationError(f'calibration batch of shape {batch.shape}, the '
                                           f'network input is {input_shape}')
                self.device.copy_from_host_sync(batch)
            except Exception as error:  # kept and re-raised by the builder
                self.error = error
                return []
            self.count += 1
            return [self.device.pointer]

        def read_calibration_cache(self) -> Any:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            from mtdepth_ros.inference.backends.engine_cache import atomic_write  # noqa: PLC0415

            atomic_write(cache_path, bytes(cache))

    return EntropyCalibrator()
