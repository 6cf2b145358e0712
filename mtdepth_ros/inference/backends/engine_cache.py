"""TensorRT engine cache: which engine may run, and the build description beside it.

A serialized engine is only valid for the exact ONNX file, TensorRT version,
GPU model (and compute capability), precision, DLA core and input shapes it
was built for; TensorRT itself does not check most of this and may crash or
silently compute garbage with a foreign engine. So every engine ``X.engine``
has a build description ``X.engine.json`` that records its :class:`EngineKey`
and the sha256 of the engine bytes. An engine is used only when its
description parses, its bytes hash to what the description says, and its key
equals the key of what is asked for; anything else is stale or foreign, and is
rebuilt (rebuild policy ``auto``) or refused with the reason (``never``).

This module needs neither TensorRT nor a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ENGINE_SUFFIX = '.engine'
DESCRIPTION_SUFFIX = '.json'  # appended: model.fp16.352x1216.engine.json
DESCRIPTION_FORMAT = 1
REBUILD_POLICIES = ('auto', 'always', 'never')
HASH_CHUNK = 1 << 20
GPU_ONLY = -1  # dla_core value for engines that run on the GPU


class EngineCacheError(RuntimeError):
    """No usable engine and the rebuild policy forbids building one, or a cache file is bad."""


@dataclass(frozen=True)
class ShapeProfile:
    """The input shapes an engine accepts: TensorRT's optimization profile (min, opt, max)."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @classmethod
    def fixed(cls, shape: tuple[int, ...]) -> ShapeProfile:
        shape = tuple(int(d) for d in shape)
        return cls(shape, shape, shape)

    def covers(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.opt) and all(
            lo <= d <= hi for lo, d, hi in zip(self.min, shape, self.max))

    @property
    def label(self) -> str:
        """'352x1216' for a fixed (N, C, H, W) shape, '176x608-352x1216' for a range."""
        def size(shape: tuple[int, ...]) -> str:
            return 'x'.join(str(d) for d in shape[2:])
        return size(self.opt) if self.min == self.max else f'{size(self.min)}-{size(self.max)}'

    def to_dict(self) -> dict[str, list[int]]:
        return {'min': list(self.min), 'opt': list(self.opt), 'max': list(self.max)}

    @classmethod
    def from_dict(cls, values: Any) -> ShapeProfile:
        return cls(*(tuple(int(d) for d in values[k]) for k in ('min', 'opt', 'max')))


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine is specific to; equal keys = the engine may run."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_profile: ShapeProfile
    dla_core: int = GPU_ONLY

    def differences(self, wanted: EngineKey) -> list[str]:
        """Human-readable list of what differs from ``wanted`` (empty when equal)."""
        lines = []
        for item in fields(self):
            have, want = getattr(self, item.name), getattr(wanted, item.name)
            if have != want:
                if isinstance(have, ShapeProfile):
                    have, want = have.to_dict(), want.to_dict()
                lines.append(f'{item.name.replace("_", " ")} is {have}, needed {want}')
        return lines

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values['input_profile'] = self.input_profile.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EngineKey:
        names = {item.name for item in fields(cls)}
        kwargs = {name: values[name] for name in names if name in values}
        kwargs['input_profile'] = ShapeProfile.from_dict(values['input_profile'])
        return cls(**kwargs)


@dataclass(frozen=True)
class BuildDescription:
    """The JSON written beside each engine: its key, its hash and how it was built."""

    key: EngineKey
    engine_sha256: str
    onnx_path: str  # the model the engine was built from (as given at build time)
    input_name: str
    parsed_onnx: str = ''  # the ONNX TensorRT parsed, when a converted copy (fp16, Q/DQ)
    strongly_typed: bool = True
    builder_flags: tuple[str, ...] = ()
    calibration: str = ''  # where INT8 scales came from
    workspace_mb: int = 0
    build_seconds: float = 0.0
    build_time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(
        timespec='seconds'))
    format_version: int = DESCRIPTION_FORMAT

    def to_json(self) -> str:
        values = asdict(self)
        key = values.pop('key')
        key['input_profile'] = self.key.input_profile.to_dict()
        # Flat, so a person reads the essentials first: hashes, versions, GPU, precision, shape.
        flat = {**key, 'input_shape': list(self.key.input_profile.opt), **values,
                'builder_flags': list(self.builder_flags)}
        return json.dumps(flat, indent=2) + '\n'

    @classmethod
    def from_json(cls, text: str, where: str | Path = 'build description') -> BuildDescription:
        try:
            values = json.loads(text)
            if values.get('format_version') != DESCRIPTION_FORMAT:
                raise ValueError(f"format_version {values.get('format_version')!r} is not "
                                 f'{DESCRIPTION_FORMAT}')
            key = EngineKey.from_dict(values)
            own = {item.name for item in fields(cls)} - {'key'}
            kwargs = {name: values[name] for name in own if name in values}
            kwargs['builder_flags'] = tuple(kwargs.get('builder_flags', ()))
            return cls(key=key, **kwargs)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise EngineCacheError(f'{where} is not a valid build description: {error}') from error


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(HASH_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def description_path(engine: Path) -> Path:
    return engine.with_name(engine.name + DESCRIPTION_SUFFIX)


def cache_dir_for(model_path: Path, engine_cache_dir: str) -> Path:
    """The configured cache directory, or the model's own directory when '' (the default)."""
    return Path(engine_cache_dir).expanduser() if engine_cache_dir else model_path.parent


def engine_path(cache_dir: Path, model_path: Path, key: EngineKey) -> Path:
    """Canonical engine file for ``key``: one per model, precision, DLA core and shape.

    Version, GPU and ONNX hash are not in the name on purpose: a newer build for
    the same role replaces the stale one instead of piling up beside it.
    """
    dla = f'.dla{key.dla_core}' if key.dla_core != GPU_ONLY else ''
    name = f'{model_path.stem}.{key.precision}{dla}.{key.input_profile.label}{ENGINE_SUFFIX}'
    return cache_dir / name


def check_engine(engine: Path, wanted: EngineKey) -> str | None:
    """Why ``engine`` must not run for ``wanted``, or None when it may."""
    if not engine.is_file():
        return f'{engine} does not exist'
    described = description_path(engine)
    if not described.is_file():
        return (f'{engine} has no build description {described.name}: a foreign engine '
                '(not built by mtdepth-build-engine) is never run')
    try:
        description = BuildDescription.from_json(described.read_text(), described)
    except (EngineCacheError, OSError, UnicodeDecodeError) as error:
        return str(error)
    if file_sha256(engine) != description.engine_sha256:
        return (f'{engine} does not match the sha256 in {described.name} '
                '(replaced, truncated or corrupt)')
    stale = description.key.differences(wanted)
    if stale:
        return f'{engine} is stale: ' + '; '.join(stale)
    return None


@dataclass
class Lookup:
    """Result of looking for an engine: the one to load (if any) and why others were refused."""

    engine: Path | None
    refused: list[str]

    def reason(self) -> str:
        return '; '.join(self.refused) or 'no engine in the cache'


def find_engine(cache_dir: Path, wanted: EngineKey, preferred: Path) -> Lookup:
    """Look for a usable engine: ``preferred`` first, then any described engine in ``cache_dir``.

    The scan finds engines that ``mtdepth-build-engine --out`` wrote under
    another name in the same directory.
    """
    refused: list[str] = []
    reason = check_engine(preferred, wanted)
    if reason is None:
        return Lookup(preferred, refused)
    refused.append(reason)
    for described in sorted(cache_dir.glob(f'*{ENGINE_SUFFIX}{DESCRIPTION_SUFFIX}')):
        engine = described.with_name(described.name[:-len(DESCRIPTION_SUFFIX)])
        if engine != preferred and check_engine(engine, wanted) is None:
            return Lookup(engine, refused)
    return Lookup(None, refused)


def must_build(policy: str, lookup: Lookup, model_path: Path) -> bool:
    """Apply the rebuild policy: True = build a new engine, False = load ``lookup.engine``."""
    if policy not in REBUILD_POLICIES:
        raise ValueError(f'rebuild policy must be one of {REBUILD_POLICIES}, got {policy!r}')
    if policy == 'always':
        return True
    if lookup.engine is not None:
        return False
    if policy == 'never':
        raise EngineCacheError(
            f"rebuild policy 'never' and no usable engine for {model_path}: {lookup.reason()}. "
            f'Build one with `mtdepth-build-engine {model_path}` (or set rebuild to auto)')
    return True


def atomic_write(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_engine(engine: Path, data: bytes | memoryview, description: BuildDescription) -> None:
    """Write an engine and then its description (the description is the commit mark).

    A crash between the two leaves an engine whose hash matches no description,
    which :func:`check_engine` refuses.
    """
    digest = hashlib.sha256(data).hexdigest()
    if digest != description.engine_sha256:
        raise ValueError('build description engine_sha256 does not match the engine bytes')
    atomic_write(engine, data)
    atomic_write(description_path(engine), description.to_json().encode())


def read_engine(engine: Path, wanted: EngineKey) -> bytes:
    """The engine's bytes, checked against its description and ``wanted`` once more.

    Read once and hashed in memory, so the file cannot change between the
    check and the load.
    """
    data = engine.read_bytes()
    description = BuildDescription.from_json(description_path(engine).read_text(),
                                             description_path(engine))
    if hashlib.sha256(data).hexdigest() != description.engine_sha256:
        raise EngineCacheError(f'{engine} changed on disk while being loaded')
    stale = description.key.differences(wanted)
    if stale:
        raise EngineCacheError(f'{engine} is stale: ' + '; '.join(stale))
    return data
