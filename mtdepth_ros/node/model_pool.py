"""One loaded model per process, shared by every camera node that asks for the same one.

A vehicle runs 2 to 8 cameras; loading the network (or building its TensorRT
engine) once per camera would multiply memory and start-up time. Nodes that
name the same model file, backend chain and options get the same
:class:`SharedModel`: one predictor and one inference worker serving all of
them (:mod:`.scheduler`). The last node to release it closes it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from mtdepth_ros.inference.backends.base import BackendOptions
from mtdepth_ros.inference.predictor import Predictor
from mtdepth_ros.node.scheduler import InferenceScheduler


@dataclass(frozen=True)
class ModelKey:
    path: Path
    backends: tuple[str, ...]
    options: BackendOptions


@dataclass
class SharedModel:
    key: ModelKey
    predictor: Predictor
    scheduler: InferenceScheduler
    users: int = 0


_lock = threading.Lock()
_models: dict[ModelKey, SharedModel] = {}


def acquire(key: ModelKey) -> SharedModel:
    """The model for ``key``, loaded (and warmed up) on first use.

    Raises what loading raises (FileNotFoundError, CardError, BackendUnavailable,
    ValueError, RuntimeError from a backend that cannot run a blank frame).
    """
    with _lock:
        shared = _models.get(key)
        if shared is None:
            predictor = Predictor(key.path, key.backends, key.options)
            try:
                predictor.warm_up()
            except Exception:
                predictor.close()
                raise
            shared = SharedModel(key, predictor, InferenceScheduler(predictor))
            _models[key] = shared
        shared.users += 1
        return shared


def release(shared: SharedModel) -> None:
    """One user fewer; the last one stops the worker and closes the model."""
    with _lock:
        shared.users -= 1
        if shared.users > 0:
            return
        _models.pop(shared.key, None)
    shared.scheduler.close()
    shared.predictor.close()


def loaded() -> list[SharedModel]:
    """The models this process holds now."""
    with _lock:
        return list(_models.values())
