"""Evaluation frames from a rosbag2 bag: each image with its camera and ground truth.

Reading gives :class:`Frame` objects: one per image on the image topic, in
recorded order, with the camera, and the ground-truth depth and labels whose
header stamps lie within a tolerance of the image's. It takes two passes over
the bag (:class:`~mtdepth_ros.evaluation.bag_source.BagSource`): the first
reads only header stamps (from the CDR bytes) and matches them, the second
decodes, holding a ground-truth message only until the images that need it
have come by. Everything that could not be used is counted with its reason in
:class:`~mtdepth_ros.evaluation.bag_source.BagStats`.
"""

from __future__ import annotations

import struct
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.compressed import message_to_rgb
from mtdepth_ros.conversions.images import depth_from_message, image_to_array, labels_from_message
from mtdepth_ros.evaluation.bag_source import (
    NS_PER_S,
    BagError,
    BagSource,
    BagStats,
    RawMessage,
    header_stamp_ns,
    stamp_to_ns,
)

DEFAULT_STAMP_TOLERANCE_S = 0.005


@dataclass(frozen=True)
class BagTopics:
    """Topics of an evaluation bag; ``None`` for ground truth that is not there."""

    image: str = '/camera/image_raw'
    camera_info: str | None = '/camera/camera_info'
    depth: str | None = '/ground_truth/depth'
    labels: str | None = '/ground_truth/labels'


@dataclass
class Frame:
    """One image of the bag with what was matched to it."""

    index: int  # position among the bag's images
    stamp_ns: int  # the image header's stamp
    log_time_ns: int  # when the bag recorded it
    frame_id: str
    rgb: np.ndarray  # (H, W, 3) uint8 RGB
    camera: PinholeCamera | None = None  # None: no usable camera_info
    depth: np.ndarray | None = None  # (H, W) float32 metres, NaN = no measurement
    labels: np.ndarray | None = None  # (H, W) integer class ids
    notes: list[str] = field(default_factory=list)  # why some ground truth is absent
    predicted: dict[str, np.ndarray] = field(default_factory=dict)  # head -> recorded output

    @property
    def stamp_s(self) -> float:
        return self.stamp_ns / NS_PER_S


def _nearest(stamps: np.ndarray, stamp: int) -> int:
    """Index of the stamp in sorted ``stamps`` nearest to ``stamp`` (-1 if empty)."""
    if stamps.size == 0:
        return -1
    i = int(np.searchsorted(stamps, stamp))
    candidates = [j for j in (i - 1, i) if 0 <= j < stamps.size]
    return min(candidates, key=lambda j: abs(int(stamps[j]) - stamp))


@dataclass
class _Index:
    """Header stamps of the messages of one topic, in bag order."""

    stamps: list[int] = field(default_factory=list)
    unreadable: int = 0

    def sorted(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted stamps, the bag-order position of each)."""
        stamps = np.asarray(self.stamps, dtype=np.int64)
        order = np.argsort(stamps, kind='stable')
        return stamps[order], order


PREDICTION_PREFIX = 'pred:'  # names of recorded prediction topics among the matched ones


class BagReader:
    """Frames of an evaluation bag; iterate once, then read :attr:`stats`.

    ``tolerance_s`` is how far apart (header stamps) an image and its ground
    truth may be. camera_info is taken from the message nearest in stamp
    within the tolerance, else the latest one before the image, else the
    first one in the bag. ``predictions`` (head -> topic), typically from a
    recording of the node given in ``extra_paths``, are matched the same way
    and land in :attr:`Frame.predicted`.
    """

    def __init__(self, path: str | Path, topics: BagTopics = BagTopics(),
                 tolerance_s: float = DEFAULT_STAMP_TOLERANCE_S, max_frames: int | None = None,
                 start: int = 0, step: int = 1, predictions: Mapping[str, str] | None = None,
                 extra_paths: Sequence[str | Path] = ()) -> None:
        if tolerance_s < 0:
            raise ValueError(f'stamp tolerance must be >= 0, got {tolerance_s}')
        if step < 1 or start < 0:
            raise ValueError(f'need start >= 0 and step >= 1, got start={start}, step={step}')
        self.path = Path(path)
        self.topics = topics
        self.tolerance_ns = int(round(tolerance_s * NS_PER_S))
        self.max_frames = max_frames
        self.start, self.step = start, step
        self.stats = BagStats(path=str(self.path))
        self._source = BagSource([self.path, *map(Path, extra_paths)], self.stats)
        # name -> topic of everything matched to an image by stamp
        self._matched = {name: topic for name, topic in
                         (('depth', topics.depth), ('labels', topics.labels)) if topic}
        self._matched.update({PREDICTION_PREFIX + head: topic
                              for head, topic in (predictions or {}).items()})
        self._wanted = [t for t in (topics.image, topics.camera_info, *self._matched.values())
                        if t]
        self._plan: tuple[list[int], dict[str, dict[int, int]], dict[int, int]] | None = None
        self._check_topics()

    def _check_topics(self) -> None:
        known = self.stats.topics
        if self._source.salvage and not known:
            return  # salvage mode learns the topics while reading
        if self.topics.image not in known:
            raise BagError(f'{self.path}: image topic {self.topics.image!r} is not in the bag; '
                           f'its topics: {sorted(known)}')
        for name, topic in [('camera_info', self.topics.camera_info), *self._matched.items()]:
            problem = f'{name} topic {topic!r} is not in the bag (its topics: {sorted(known)})'
            if topic and topic not in known and problem not in self.stats.problems:
                self.stats.problems.append(problem)

    @property
    def has_depth(self) -> bool:
        return 'depth' in self._matched and self._matched['depth'] in self.stats.topics

    @property
    def has_labels(self) -> bool:
        return 'labels' in self._matched and self._matched['labels'] in self.stats.topics

    @property
    def planned_frames(self) -> int:
        """How many images will be read (before any turns out unreadable)."""
        return len(self._prepare()[0])

    def _index(self) -> dict[str, _Index]:
        index: dict[str, _Index] = defaultdict(_Index)
        for raw in self._source.messages(self._wanted):
            entry = index[raw.topic]
            try:
                entry.stamps.append(header_stamp_ns(raw.data))
            except (ValueError, struct.error):
                entry.stamps.append(-1)
                entry.unreadable += 1
        return index

    def _prepare(self) -> tuple[list[int], dict[str, dict[int, int]], dict[int, int]]:
        """First pass (once): index stamps and match them."""
        if self._plan is None:
            index = self._index()
            self._check_topics()  # salvage mode knows the topics only now
            if self.topics.image not in self.stats.topics:
                raise BagError(f'{self.path}: image topic {self.topics.image!r} is not in the '
                               f'bag; its topics: {sorted(self.stats.topics)}')
            self._plan = self._match(index)
        return self._plan

    def _selected_images(self, count: int) -> list[int]:
        chosen = list(range(count))[self.start::self.step]
        return chosen[:self.max_frames] if self.max_frames is not None else chosen

    def _match(self, index: dict[str, _Index]) -> tuple[list[int], dict[str, dict[int, int]],
                                                        dict[int, int]]:
        """Images to use, name -> image -> bag position of its match, image -> camera_info."""
        image_stamps = index[self.topics.image].stamps
        images = self._selected_images(len(image_stamps))
        matches: dict[str, dict[int, int]] = {}
        for name, topic in self._matched.items():
            stamps, order = index[topic].sorted() if topic in index else (np.empty(0), np.empty(0))
            matches[name] = {}
            for i in images:
                j = _nearest(stamps, image_stamps[i])
                if j >= 0 and abs(int(stamps[j]) - image_stamps[i]) <= self.tolerance_ns:
                    matches[name][i] = int(order[j])
        cameras: dict[int, int] = {}
        if self.topics.camera_info and self.topics.camera_info in index:
            stamps, order = index[self.topics.camera_info].sorted()
            for i in images:
                j = _nearest(stamps, image_stamps[i])
                if j >= 0 and abs(int(stamps[j]) - image_stamps[i]) > self.tolerance_ns:
                    before = int(np.searchsorted(stamps, image_stamps[i], side='right')) - 1
                    j = before if before >= 0 else 0
                if j >= 0:
                    cameras[i] = int(order[j])
        return images, matches, cameras

    def __iter__(self) -> Iterator[Frame]:
        images, matches, cameras = self._prepare()
        yield from _Assembler(self, images, matches, cameras).frames()


class _Assembler:
    """Second pass: decode messages, hold what pending images need, emit frames in order."""

    def __init__(self, reader: BagReader, images: list[int], matches: dict[str, dict[int, int]],
                 cameras: dict[int, int]) -> None:
        self.reader = reader
        self.stats = reader.stats
        self.images = images
        # name -> image position -> bag position of what is matched to it
        self.tables = {**matches, 'camera': cameras}
        topics = reader.topics
        self.names = {topics.image: 'image', **{t: n for n, t in reader._matched.items()}}
        if topics.camera_info:
            self.names[topics.camera_info] = 'camera'
        self.needed: dict[str, Counter[int]] = defaultdict(Counter)  # name -> position -> users
        for name, table in self.tables.items():
            self.needed[name].update(table.values())
        self.held: dict[str, dict[int, Any]] = defaultdict(dict)  # name -> position -> decoded
        self.pending: dict[int, tuple[Any, int]] = {}  # image position -> (message, log time)
        self.next_image = 0  # index into self.images

    def frames(self) -> Iterator[Frame]:
        positions: Counter[str] = Counter()
        wanted = set(self.images)
        for raw in self.reader._source.messages(list(self.names)):
            name = self.names[raw.topic]
            position = positions[name]
            positions[name] += 1
            self.stats.messages[raw.topic] += 1
            if name == 'image':
                if position in wanted:
                    self.pending[position] = (self._decode(raw, name), raw.log_time_ns)
            elif self.needed[name][position]:
                self.held[name][position] = self._decode(raw, name)
            yield from self._ready(final=False)
        yield from self._ready(final=True)

    def _decode(self, raw: RawMessage, name: str) -> Any:
        try:
            msg = self.reader._source.deserialize(raw)
            if name == 'camera':
                return PinholeCamera.from_camera_info(msg)
            if name == 'image':
                return msg
            head = name.removeprefix(PREDICTION_PREFIX)
            if head == 'depth':
                return depth_from_message(msg)
            if head in ('labels', 'segmentation', 'intervals'):
                return labels_from_message(msg)
            return np.array(image_to_array(msg))  # confidence and other float images
        except Exception as error:  # noqa: BLE001  (a bad message must not end the run)
            return _Broken(f'{name} message could not be decoded: '
                           f'{type(error).__name__}: {error}')

    def _ready(self, final: bool) -> Iterator[Frame]:
        while self.next_image < len(self.images):
            position = self.images[self.next_image]
            parts = self._parts(position)
            if parts is None:
                if not final:
                    return
                self.stats.skipped['image message missing or unreadable'] += 1
            else:
                frame = self._frame(position, *parts)
                if frame is not None:
                    self.stats.images += 1
                    yield frame
            self._release(position)
            self.next_image += 1

    def _parts(self, position: int) -> tuple[Any, int, dict[str, Any]] | None:
        """The image message, its log time and its decoded matches, or None while some
        have not come."""
        if position not in self.pending:
            return None
        parts = {}
        for name, table in self.tables.items():
            if position in table:
                if table[position] not in self.held[name]:
                    return None
                parts[name] = self.held[name][table[position]]
        msg, log_time_ns = self.pending[position]
        return msg, log_time_ns, parts

    def _frame(self, position: int, msg: Any, log_time_ns: int,
               parts: dict[str, Any]) -> Frame | None:
        if isinstance(msg, _Broken):
            self.stats.skipped[msg.reason] += 1
            return None
        try:
            rgb = message_to_rgb(msg)  # Image or CompressedImage
        except ValueError as error:
            self.stats.skipped[f'image could not be converted: {error}'] += 1
            return None
        frame = Frame(index=position, stamp_ns=stamp_to_ns(msg.header.stamp),
                      log_time_ns=log_time_ns, frame_id=str(msg.header.frame_id), rgb=rgb)
        camera = parts.get('camera')
        if isinstance(camera, PinholeCamera):
            frame.camera = camera
        elif self.reader.topics.camera_info:
            frame.notes.append(camera.reason if isinstance(camera, _Broken) else 'no camera_info')
        tolerance_ms = self.reader.tolerance_ns / 1e6
        for name in self.reader._matched:
            value = parts.get(name)
            predicted = name.startswith(PREDICTION_PREFIX)
            if isinstance(value, np.ndarray):
                if predicted:
                    frame.predicted[name.removeprefix(PREDICTION_PREFIX)] = value
                else:
                    setattr(frame, name, value)
                continue
            if isinstance(value, _Broken):
                reason = value.reason
            elif predicted:
                reason = f'no recorded {name.removeprefix(PREDICTION_PREFIX)} output'
            else:
                reason = f'no {name} ground truth within {tolerance_ms:g} ms'
            frame.notes.append(reason)
            if not predicted:
                self.stats.unmatched[reason] += 1
        return frame

    def _release(self, position: int) -> None:
        self.pending.pop(position, None)
        for name, table in self.tables.items():
            if position in table:
                source = table[position]
                self.needed[name][source] -= 1
                if self.needed[name][source] <= 0:
                    self.held[name].pop(source, None)


@dataclass
class _Broken:
    reason: str
