"""Checkpoint files: atomic writes, safe loading, finding the one to resume from.

A training run that is killed (OOM killer, pre-emption, Ctrl-C twice) while
it writes a checkpoint must not leave a truncated ``last.ckpt`` behind:
:class:`AtomicCheckpointIO` writes to a temporary file in the same directory,
flushes it to disk and renames it over the target (``os.replace`` is atomic
on POSIX and Windows). Every checkpoint is read with
``torch.load(weights_only=True)``: no pickled code from a checkpoint file runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

LAST = 'last.ckpt'
CHECKPOINT_DIR = 'checkpoints'
CONFIG_NAME = 'config.yaml'
EXTRA_KEY = 'mtdepth'  # our entry in a Lightning checkpoint: resolved config, data facts


def atomic_save(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``torch.save`` to ``path`` so that readers see the old file or the whole new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f'.{target.name}.{os.getpid()}.tmp')
    try:
        with open(temporary, 'wb') as stream:
            torch.save(checkpoint, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike[str],
                    map_location: str | torch.device | None = 'cpu',
                    mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a clear error if it is missing or unsafe.

    ``mmap`` maps the tensors from the file instead of reading them (private,
    copy-on-write pages): nearly free when only a scalar such as ``global_step``
    is wanted."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f'checkpoint not found: {file}')
    try:
        loaded = torch.load(file, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # UnpicklingError (unsafe content), RuntimeError (truncated)
        raise ValueError(f'{file} is not a loadable checkpoint (weights_only=True): {error}') \
            from error
    if not isinstance(loaded, dict) or 'state_dict' not in loaded:
        raise ValueError(f'{file} is not a Lightning checkpoint (no state_dict)')
    return loaded


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic local writes and weights-only reads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError('AtomicCheckpointIO takes no storage_options')
        atomic_save(checkpoint, path)

    def load_checkpoint(self, path: Any, map_location: Callable[..., Any] | Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f'checkpoint not found: {file}')
        return torch.load(file, map_location=map_location, weights_only=True)


def checkpoint_dir(root_dir: str | os.PathLike[str]) -> Path:
    """Where a run rooted at ``trainer.default_root_dir`` keeps its checkpoints."""
    return Path(root_dir) / CHECKPOINT_DIR


def last_checkpoint(root_dir: str | os.PathLike[str]) -> Path | None:
    """The run's ``last.ckpt``, or None when the run has not written one yet."""
    path = checkpoint_dir(root_dir) / LAST
    return path if path.is_file() else None
