"""One inference worker for every camera of one model: newest frame per camera, fairly.

Each camera keeps its own one-frame slot (newest frame wins, per camera). The
worker takes the waiting frame of every camera at once, starting the round
one camera further each time so none is always served last. With a model
that accepts a batch dimension the frames run as one batch (up to the
model's limit; a frame with its mirror image counts two); otherwise one
after another. So a camera's frame waits behind at most one frame of each
other camera: none can starve another.

Cameras do their own per-frame work around the network (:class:`Camera`):
``prepare`` turns a message into a :class:`Job` (or answers it without the
network), ``complete`` decodes and publishes. No rclpy here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mtdepth_ros.node.frame_slot import FrameSlot

IDLE_WAIT_S = 0.1  # an idle worker checks for shutdown this often
JOIN_S = 5.0


@dataclass
class Job:
    """One frame of one camera, ready for the network."""

    # (1, 3, h, w) float32 each: the frame, and its mirror image when the camera averages
    # the two; (): no network needed
    tensors: tuple[np.ndarray, ...]
    outputs: tuple[str, ...]  # ONNX output names the camera needs
    state: Any = None  # the camera's own per-frame state
    # filled by the worker: {output name: (1, ...) array} for each of ``tensors``
    raws: list[dict[str, np.ndarray]] = field(default_factory=list)
    inference_s: float = 0.0  # this frame's share of the backend's time
    failed: bool = False  # the network failed on it; the camera has been told


class Camera(Protocol):
    slot: FrameSlot[Any]

    def prepare(self, msg: Any) -> Job | None:
        """The job for ``msg``, or None when the camera dealt with it (dropped, idle)."""

    def complete(self, job: Job) -> None:
        """Decode ``job.raws`` and publish."""

    def failed(self, error: Exception) -> None:
        """An exception while preparing or completing one of this camera's frames."""


class Network(Protocol):
    @property
    def max_batch(self) -> int: ...

    def infer(self, tensors: Sequence[np.ndarray], outputs: Sequence[str]
              ) -> tuple[list[dict[str, np.ndarray]], float]: ...


class InferenceScheduler:
    def __init__(self, network: Network, name: str = 'mtdepth_worker') -> None:
        self.network = network
        self.changed = threading.Condition()  # shared by every camera's slot
        self._cameras: list[Camera] = []
        self._busy: set[int] = set()  # id() of cameras whose frame is in flight
        self._start = 0  # rotating first camera of a round
        self._closed = False
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()

    def new_slot(self) -> FrameSlot[Any]:
        """A frame slot that wakes this worker."""
        return FrameSlot(self.changed)

    def attach(self, camera: Camera) -> None:
        with self.changed:
            if camera not in self._cameras:
                self._cameras.append(camera)
            self.changed.notify_all()

    def detach(self, camera: Camera, timeout: float = JOIN_S) -> None:
        """Stop serving ``camera``; returns once its frame in flight (if any) is done."""
        with self.changed:
            if camera in self._cameras:
                self._cameras.remove(camera)
            self.changed.wait_for(lambda: id(camera) not in self._busy, timeout)

    @property
    def cameras(self) -> int:
        with self.changed:
            return len(self._cameras)

    def close(self) -> None:
        with self.changed:
            self._closed = True
            self.changed.notify_all()
        self._worker.join(JOIN_S)

    def _work(self) -> None:
        while True:
            round_ = self._next_round()
            if round_ is None:
                return
            try:
                self._serve(round_)
            finally:
                with self.changed:
                    self._busy.clear()
                    self.changed.notify_all()

    def _next_round(self) -> list[tuple[Camera, Any]] | None:
        """Every waiting frame, one per camera, in rotating order; None when closed."""
        with self.changed:
            self.changed.wait_for(lambda: self._closed or any(
                c.slot.ready for c in self._cameras), IDLE_WAIT_S)
            if self._closed:
                return None
            count = len(self._cameras)
            order = [self._cameras[(self._start + i) % count] for i in range(count)]
            round_ = [(camera, camera.slot.take(0)) for camera in order if camera.slot.ready]
            if round_:  # the next round starts one camera further
                self._start = (self._start + 1) % count
            self._busy = {id(camera) for camera, _ in round_}
            return round_

    def _serve(self, round_: list[tuple[Camera, Any]]) -> None:
        jobs: list[tuple[Camera, Job]] = []
        for camera, msg in round_:
            try:
                job = camera.prepare(msg)
            except Exception as error:  # noqa: BLE001  one camera's bad frame stops nothing
                camera.failed(error)
                continue
            if job is not None:
                jobs.append((camera, job))
        waiting = [(c, j) for c, j in jobs if j.tensors]
        size = max(1, self.network.max_batch)
        batch: list[tuple[Camera, Job]] = []  # whole jobs, up to the model's batch when they fit
        for camera, job in waiting:
            if batch and sum(len(j.tensors) for _, j in batch) + len(job.tensors) > size:
                self._infer(batch)
                batch = []
            batch.append((camera, job))
        if batch:
            self._infer(batch)
        for camera, job in jobs:
            if job.failed:
                continue
            try:
                camera.complete(job)
            except Exception as error:  # noqa: BLE001
                camera.failed(error)

    def _infer(self, batch: list[tuple[Camera, Job]]) -> None:
        outputs = sorted({name for _, job in batch for name in job.outputs})
        try:
            tensors = [tensor for _, job in batch for tensor in job.tensors]
            results, seconds = self.network.infer(tensors, outputs)
        except Exception as error:  # noqa: BLE001  every camera of the batch hears of it
            for camera, job in batch:
                job.failed = True
                camera.failed(error)
            return
        first = 0
        for _, job in batch:
            job.raws = results[first:first + len(job.tensors)]
            job.inference_s = seconds * len(job.tensors) / len(tensors)
            first += len(job.tensors)
