"""rosbag2 reading and writing for evaluation, with ``rosbags`` (no middleware).

Reading gives :class:`Frame` objects: one per image on the image topic, in
recorded order, with the camera, and the ground-truth depth and labels whose
header stamps lie within a tolerance of the image's. It takes two passes over
the bag: the first reads only header stamps (from the CDR bytes) and matches
them, the second decodes, holding a ground-truth message only until the images
that need it have come by.

Bags are rosbag2 directories (mcap or sqlite3, via ``rosbags``' AnyReader) or
bare ``.mcap`` files. An mcap bag that ``rosbags`` cannot open (no summary:
truncated by a crash or a full disk) is read record by record with the
``mcap`` library up to where it breaks, and the problem is noted.
Everything that could not be used is counted with its reason in
:class:`BagStats` rather than stopping the run.

Writing (:class:`OutputBag`) takes the same ``sensor_msgs`` message objects
the node publishes (``images.array_to_image``, ``PinholeCamera.to_camera_info``,
``clouds.points_to_cloud``) and stores them through ``rosbags``' CDR serialiser.
"""

from __future__ import annotations

import array
import struct
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtdepth_ros.camera import PinholeCamera
from mtdepth_ros.images import image_to_array, image_to_rgb

DEFAULT_STAMP_TOLERANCE_S = 0.005
NS_PER_S = 1_000_000_000
MM_PER_M = 1000.0
DEPTH_FLOAT_ENCODINGS = ('32FC1',)  # metres (REP 118)
DEPTH_MM_ENCODINGS = ('16UC1', 'mono16')  # millimetres, 0 = no measurement (REP 118)
LABEL_ENCODINGS = ('mono8', '8UC1', 'mono16', '16UC1')
MCAP_SUFFIX = '.mcap'
CDR_HEADER_BYTES = 4  # encapsulation kind (2 bytes) + options (2 bytes)
CDR_LITTLE_ENDIAN = 1  # second byte of the encapsulation kind: 0x0001 = CDR_LE
STORAGES = ('mcap', 'sqlite3')


class BagError(ValueError):
    """A bag that cannot be used at all; the text names the path and the reason."""


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


@dataclass
class BagStats:
    """What the reader saw, used and skipped (with reasons), for the report."""

    path: str = ''
    topics: dict[str, str] = field(default_factory=dict)  # topic -> message type
    messages: Counter[str] = field(default_factory=Counter)  # per topic, read
    images: int = 0  # frames yielded
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> images skipped
    unmatched: Counter[str] = field(default_factory=Counter)  # reason -> frames lacking gt
    problems: list[str] = field(default_factory=list)  # bag-level problems (truncation, ...)

    def to_dict(self) -> dict[str, Any]:
        return {'path': self.path, 'topics': self.topics, 'messages': dict(self.messages),
                'images': self.images, 'skipped': dict(self.skipped),
                'unmatched': dict(self.unmatched), 'problems': list(self.problems)}


@dataclass
class RawMessage:
    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes | memoryview


def default_typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore  # noqa: PLC0415

    return get_typestore(Stores.LATEST)


class _Source:
    """Raw messages of one bag, through rosbags, or the mcap salvage reader."""

    def __init__(self, paths: Sequence[Path], stats: BagStats) -> None:
        self.path = paths[0]
        self.paths = list(paths)
        self.stats = stats
        self.typestore = default_typestore()
        for path in self.paths:
            if not path.exists():
                raise BagError(f'{path}: no such bag (a rosbag2 directory or an .mcap file)')
        self.salvage = len(paths) == 1 and self.path.is_file() and self.path.suffix == MCAP_SUFFIX
        if not self.salvage:
            self._check_opens()

    def _check_opens(self) -> None:
        from rosbags.highlevel import AnyReader, AnyReaderError  # noqa: PLC0415

        try:
            with AnyReader(self.paths, default_typestore=self.typestore) as reader:
                self.stats.topics = {c.topic: c.msgtype for c in reader.connections}
        except (AnyReaderError, OSError, ValueError) as error:
            mcaps = sorted(self.path.glob(f'*{MCAP_SUFFIX}')) if self.path.is_dir() else []
            if not mcaps or len(self.paths) > 1:
                raise BagError(f'{self.path}: cannot open the bag: {error}') from error
            self.salvage = True
            self.stats.problems.append(
                f'rosbags cannot open the bag ({error}); read record by record up to '
                'where it breaks')

    def messages(self, topics: Sequence[str]) -> Iterator[RawMessage]:
        if self.salvage:
            yield from self._salvage_messages(topics)
            return
        from rosbags.highlevel import AnyReader  # noqa: PLC0415

        with AnyReader(self.paths, default_typestore=self.typestore) as reader:
            connections = [c for c in reader.connections if c.topic in topics]
            try:
                for connection, log_time, data in reader.messages(connections=connections):
                    yield RawMessage(connection.topic, connection.msgtype, log_time, data)
            except Exception as error:  # noqa: BLE001  (rosbags raises many kinds on damage)
                self._note_break(error)

    def _salvage_messages(self, topics: Sequence[str]) -> Iterator[RawMessage]:
        from mcap.records import Channel, Message, Schema  # noqa: PLC0415
        from mcap.stream_reader import StreamReader  # noqa: PLC0415

        files = [self.path] if self.path.is_file() else sorted(self.path.glob(f'*{MCAP_SUFFIX}'))
        for file in files:
            schemas: dict[int, str] = {}
            channels: dict[int, tuple[str, str]] = {}
            with open(file, 'rb') as stream:
                try:
                    for record in StreamReader(stream).records:
                        if isinstance(record, Schema):
                            schemas[record.id] = record.name
                        elif isinstance(record, Channel):
                            msgtype = schemas.get(record.schema_id, '')
                            channels[record.id] = (record.topic, msgtype)
                            self.stats.topics.setdefault(record.topic, msgtype)
                        elif isinstance(record, Message) and record.channel_id in channels:
                            topic, msgtype = channels[record.channel_id]
                            if topic in topics:
                                yield RawMessage(topic, msgtype, record.log_time, record.data)
                except Exception as error:  # noqa: BLE001  (EndOfFile, bad records, CRC, ...)
                    self._note_break(error, file)

    def _note_break(self, error: Exception, file: Path | None = None) -> None:
        where = file or self.path
        problem = f'{where}: stopped reading at a damaged or truncated part ' \
                  f'({type(error).__name__}: {error}); messages before it are used'
        if problem not in self.stats.problems:
            self.stats.problems.append(problem)

    def deserialize(self, raw: RawMessage) -> Any:
        return self.typestore.deserialize_cdr(bytes(raw.data), raw.msgtype)


def raw_messages(path: str | Path, topics: Sequence[str],
                 stats: BagStats | None = None) -> Iterator[RawMessage]:
    """The serialised messages of ``topics`` in log-time order (salvaging damaged mcap);
    problems go to ``stats``."""
    yield from _Source([Path(path)], stats or BagStats(path=str(path))).messages(topics)


def header_stamp_ns(data: bytes | memoryview) -> int:
    """The header stamp of a CDR-serialised message that starts with std_msgs/Header."""
    if len(data) < CDR_HEADER_BYTES + 8:
        raise ValueError(f'message of {len(data)} bytes is too short to hold a header')
    order = '<' if data[1] == CDR_LITTLE_ENDIAN else '>'
    sec, nanosec = struct.unpack_from(f'{order}iI', data, CDR_HEADER_BYTES)
    return sec * NS_PER_S + nanosec


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def depth_from_message(msg: Any) -> np.ndarray:
    """A depth image message -> (H, W) float32 metres, NaN where nothing was measured.

    32FC1 is metres (NaN, inf and <= 0 mean no measurement); 16UC1 (and mono16)
    is millimetres with 0 for no measurement, as REP 118 says.
    """
    if msg.encoding in DEPTH_FLOAT_ENCODINGS:
        depth = image_to_array(msg).astype(np.float32, copy=True)
    elif msg.encoding in DEPTH_MM_ENCODINGS:
        depth = image_to_array(msg).astype(np.float32) / np.float32(MM_PER_M)
    else:
        raise ValueError(f"depth encoding '{msg.encoding}' is not one of "
                         f'{DEPTH_FLOAT_ENCODINGS + DEPTH_MM_ENCODINGS}')
    depth[~(np.isfinite(depth) & (depth > 0))] = np.nan
    return depth


def labels_from_message(msg: Any) -> np.ndarray:
    """A label image message (mono8/8UC1, or 16-bit) -> (H, W) class ids."""
    if msg.encoding not in LABEL_ENCODINGS:
        raise ValueError(f"label encoding '{msg.encoding}' is not one of {LABEL_ENCODINGS}")
    return np.array(image_to_array(msg))


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
        self._source = _Source([self.path, *map(Path, extra_paths)], self.stats)
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
            rgb = image_to_rgb(msg)
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


def to_rosbags(msg: Any, typestore: Any) -> Any:
    """A ``sensor_msgs``-style (rosidl) message object -> the ``rosbags`` message of its type."""
    if not hasattr(msg, 'get_fields_and_field_types'):
        return msg  # already a rosbags message (or a plain value)
    package = type(msg).__module__.split('.')[0]
    cls = typestore.types[f'{package}/msg/{type(msg).__name__}']
    values = {}
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if hasattr(value, 'get_fields_and_field_types'):
            value = to_rosbags(value, typestore)
        elif isinstance(value, (list, tuple)) and value and \
                hasattr(value[0], 'get_fields_and_field_types'):
            value = [to_rosbags(v, typestore) for v in value]
        elif isinstance(value, (array.array, np.ndarray)):
            value = np.asarray(value)  # array.array keeps its type code (buffer protocol)
        values[name] = value
    return cls(**values)


class OutputBag:
    """A rosbag2 bag being written (mcap by default); topics are added on first use."""

    def __init__(self, path: str | Path, storage: str = 'mcap') -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: PLC0415

        if storage not in STORAGES:
            raise ValueError(f'storage must be one of {STORAGES}, got {storage!r}')
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'{self.path}: output bag already exists; remove it or choose another')
        self.typestore = default_typestore()
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self.counts: Counter[str] = Counter()

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        """Store ``msg`` (rosidl or rosbags message) on ``topic`` at ``log_time_ns``."""
        message = to_rosbags(msg, self.typestore)
        msgtype = message.__msgtype__
        self.write_raw(topic, msgtype, self.typestore.serialize_cdr(message, msgtype), log_time_ns)

    def write_raw(self, topic: str, msgtype: str, data: bytes | memoryview,
                  log_time_ns: int) -> None:
        """Store an already CDR-serialised message of type ``msgtype`` (e.g. 'sensor_msgs/msg/Image')."""
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(
                topic, msgtype, typestore=self.typestore)
        self._writer.write(self._connections[topic], int(log_time_ns), data)
        self.counts[topic] += 1

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> OutputBag:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def header(stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/Header`` (rosidl message class) for ``stamp_ns`` and ``frame_id``."""
    from builtin_interfaces.msg import Time  # noqa: PLC0415  (message classes only, no rclpy)
    from std_msgs.msg import Header  # noqa: PLC0415

    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)
