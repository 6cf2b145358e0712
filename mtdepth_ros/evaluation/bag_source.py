"""Raw messages of a rosbag2 bag, through ``rosbags`` (no middleware), salvaging damage.

Bags are rosbag2 directories (mcap or sqlite3, via ``rosbags``' AnyReader) or
bare ``.mcap`` files. An mcap bag that ``rosbags`` cannot open (no summary:
truncated by a crash or a full disk) is read record by record with the
``mcap`` library up to where it breaks, and the problem is noted in
:class:`BagStats` rather than stopping the run.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NS_PER_S = 1_000_000_000
MCAP_SUFFIX = '.mcap'
CDR_HEADER_BYTES = 4  # encapsulation kind (2 bytes) + options (2 bytes)
CDR_LITTLE_ENDIAN = 1  # second byte of the encapsulation kind: 0x0001 = CDR_LE


class BagError(ValueError):
    """A bag that cannot be used at all; the text names the path and the reason."""


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


class BagSource:
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
    yield from BagSource([Path(path)], stats or BagStats(path=str(path))).messages(topics)


def header_stamp_ns(data: bytes | memoryview) -> int:
    """The header stamp of a CDR-serialised message that starts with std_msgs/Header."""
    if len(data) < CDR_HEADER_BYTES + 8:
        raise ValueError(f'message of {len(data)} bytes is too short to hold a header')
    order = '<' if data[1] == CDR_LITTLE_ENDIAN else '>'
    sec, nanosec = struct.unpack_from(f'{order}iI', data, CDR_HEADER_BYTES)
    return sec * NS_PER_S + nanosec


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)
