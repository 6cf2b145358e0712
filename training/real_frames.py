"""The real frames' manifest: which files, from where, and does a folder hold them?

The real KITTI frames the default model is measured on live outside the project
(KITTI's licence keeps them out), and the machine they sit on has been replaced
more than once: each time they are fetched again from the repositories that ship
them (docs/training.md, "Real KITTI frames"). ``training/data/real_kitti_frames.csv``
is the list of them, plain facts: for every file of the four sets, its path in
the set's folder, its git blob id (``git hash-object``: the id the source
repository's own tree gives the same bytes), and the repository, commit and path
it was copied from (``(written here: ...)`` or ``(written from ...)`` for the few
written from the source's numbers: an intrinsics file, a calibration in another
layout, depth from a stereo disparity; their blob ids are still exact).

:func:`identify` reads a folder of frames against it: which set it holds byte for
byte, or which files differ, are missing or are not in the list. ``real-check``
prints it for each ``--frames`` folder and writes it into ``summary.json``, so a
figure always says whether it was read on the documented frames.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = Path(__file__).parent / 'data' / 'real_kitti_frames.csv'
COLUMNS = ('set', 'file', 'git_blob', 'repository', 'commit', 'path')
LAYOUTS = ('object', 'depth_selection')  # the folders real-check reads under a frames folder


class ManifestError(ValueError):
    """A manifest that cannot be read; the text says which line and why."""


@dataclass(frozen=True)
class ManifestEntry:
    set: str  # 'first', 'second', 'third': docs/training.md's sets
    file: str  # path inside the set's folder
    git_blob: str
    repository: str
    commit: str
    path: str


@dataclass
class Identity:
    """What a folder of frames holds, read against the manifest."""

    folder: Path
    set: str | None = None  # the set it holds byte for byte, every file of it
    files: int = 0  # files under the folder's layouts
    differing: list[str] = field(default_factory=list)  # listed, other bytes
    missing: list[str] = field(default_factory=list)  # of the closest set, not there
    unlisted: list[str] = field(default_factory=list)  # not in the manifest

    def line(self) -> str:
        if self.set is not None:
            return (f'{self.folder}: the {self.set} set of docs/training.md, byte for byte '
                    f'({self.files} files)')
        problems = [f'{len(files)} {what} ({_some(files)})'
                    for what, files in (('differing', self.differing),
                                        ('missing', self.missing),
                                        ('not in the manifest', self.unlisted)) if files]
        return (f'{self.folder}: not a set of docs/training.md as documented: '
                + ('; '.join(problems) or 'no frames'))


def _some(names: Sequence[str], shown: int = 3) -> str:
    return ', '.join(names[:shown]) + (', ...' if len(names) > shown else '')


def git_blob(data: bytes) -> str:
    """The id git gives a file of these bytes (``git hash-object``)."""
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def read_manifest(path: Path = MANIFEST) -> list[ManifestEntry]:
    with open(path, newline='') as stream:
        reader = csv.DictReader(stream)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ManifestError(f'{path}: columns {reader.fieldnames}, expected {list(COLUMNS)}')
        entries = []
        for line, row in enumerate(reader, start=2):
            if any(not row[c] for c in COLUMNS):
                raise ManifestError(f'{path}:{line}: an empty field')
            entries.append(ManifestEntry(**{c: row[c] for c in COLUMNS}))
    return entries


def folder_files(folder: Path) -> dict[str, Path]:
    """Every file under the folder's layouts, by its path inside the folder."""
    return {p.relative_to(folder).as_posix(): p
            for layout in LAYOUTS for p in sorted((folder / layout).rglob('*')) if p.is_file()}


def identify(folder: Path, entries: Iterable[ManifestEntry]) -> Identity:
    """The set ``folder`` holds, or how it differs from the set closest to it."""
    by_set: dict[str, dict[str, str]] = {}
    for entry in entries:
        by_set.setdefault(entry.set, {})[entry.file] = entry.git_blob
    files = folder_files(folder)
    blobs = {name: git_blob(path.read_bytes()) for name, path in files.items()}
    identity = Identity(folder, files=len(files))
    if not by_set or not files:
        identity.unlisted = sorted(files)
        return identity
    closest = max(by_set, key=lambda s: sum(by_set[s].get(n) == b for n, b in blobs.items()))
    listed = by_set[closest]
    identity.differing = sorted(n for n, b in blobs.items() if n in listed and listed[n] != b)
    identity.missing = sorted(n for n in listed if n not in blobs)
    identity.unlisted = sorted(n for n in blobs if n not in listed)
    if not (identity.differing or identity.missing or identity.unlisted):
        identity.set = closest
    return identity


def identify_all(folders: Sequence[Path], manifest: Path = MANIFEST) -> list[Identity]:
    entries = read_manifest(manifest)
    return [identify(folder, entries) for folder in folders]
