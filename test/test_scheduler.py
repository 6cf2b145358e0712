"""The shared inference worker: newest frame per camera, rotating rounds, batches, failures."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from node_harness import wait_until

from mtdepth_ros.node.scheduler import InferenceScheduler, Job


class FakeNetwork:
    """Doubles its input; records every batch it was given."""

    def __init__(self, max_batch: int, fail: bool = False) -> None:
        self.max_batch = max_batch
        self.fail = fail
        self.batches: list[list[float]] = []
        self.gate = threading.Event()
        self.gate.set()

    def infer(self, tensors: Sequence[np.ndarray], outputs: Sequence[str]
              ) -> tuple[list[dict[str, np.ndarray]], float]:
        self.gate.wait(5)
        self.batches.append([float(t[0, 0, 0, 0]) for t in tensors])
        if self.fail:
            raise RuntimeError('backend broke')
        return [{'out': t * 2} for t in tensors], 0.01 * len(tensors)


def tensor(value: float) -> np.ndarray:
    return np.full((1, 3, 2, 2), value, np.float32)


class FakeCamera:
    def __init__(self, scheduler: InferenceScheduler, name: str) -> None:
        self.name = name
        self.slot = scheduler.new_slot()
        self.done: list[tuple[float, float]] = []  # (input, output)
        self.errors: list[str] = []

    def prepare(self, msg: Any) -> Job | None:
        if msg == 'bad':
            raise ValueError('bad frame')
        return Job(tensors=(tensor(msg),), outputs=('out',), state=msg)

    def complete(self, job: Job) -> None:
        self.done.append((job.state, float(job.raws[0]['out'][0, 0, 0, 0])))

    def failed(self, error: Exception) -> None:
        self.errors.append(str(error))


class FlippingCamera(FakeCamera):
    """Each frame with a second image (its 'mirror': the value + 0.5)."""

    def __init__(self, scheduler: InferenceScheduler, name: str) -> None:
        super().__init__(scheduler, name)
        self.outputs: list[tuple[float, ...]] = []
        self.seconds: list[float] = []

    def prepare(self, msg: Any) -> Job | None:
        return Job(tensors=(tensor(msg), tensor(msg + 0.5)), outputs=('out',), state=msg)

    def complete(self, job: Job) -> None:
        self.outputs.append(tuple(float(raw['out'][0, 0, 0, 0]) for raw in job.raws))
        self.seconds.append(job.inference_s)


@pytest.fixture
def setup() -> Any:
    made: list[InferenceScheduler] = []

    def make(max_batch: int = 1, fail: bool = False) -> tuple[InferenceScheduler, FakeNetwork]:
        network = FakeNetwork(max_batch, fail)
        scheduler = InferenceScheduler(network)
        made.append(scheduler)
        return scheduler, network

    yield make
    for scheduler in made:
        scheduler.close()


def test_frames_of_several_cameras_run_as_one_batch(setup: Any) -> None:
    scheduler, network = setup(max_batch=4)
    cameras = [FakeCamera(scheduler, n) for n in 'abc']
    with scheduler.changed:  # the worker sees all three frames at once
        for value, camera in enumerate(cameras, start=1):
            camera.slot.put(float(value))
            scheduler.attach(camera)
    wait_until(lambda: all(c.done for c in cameras), what='every camera answered')
    assert network.batches == [[1.0, 2.0, 3.0]]
    assert [c.done[0] for c in cameras] == [(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]


def test_a_model_without_a_batch_dimension_runs_round_robin(setup: Any) -> None:
    scheduler, network = setup(max_batch=1)
    cameras = [FakeCamera(scheduler, n) for n in 'ab']
    with scheduler.changed:
        for value, camera in enumerate(cameras, start=1):
            camera.slot.put(float(value))
            scheduler.attach(camera)
    wait_until(lambda: all(c.done for c in cameras), what='both answered')
    assert network.batches == [[1.0], [2.0]]


def test_a_frame_and_its_mirror_share_a_batch_and_come_back_apart(setup: Any) -> None:
    scheduler, network = setup(max_batch=4)
    cameras = [FlippingCamera(scheduler, 'a'), FlippingCamera(scheduler, 'b')]
    with scheduler.changed:
        for value, camera in enumerate(cameras, start=1):
            camera.slot.put(float(value))
            scheduler.attach(camera)
    wait_until(lambda: all(c.outputs for c in cameras), what='both answered')
    assert network.batches == [[1.0, 1.5, 2.0, 2.5]]
    assert [c.outputs for c in cameras] == [[(2.0, 3.0)], [(4.0, 5.0)]]
    assert [c.seconds for c in cameras] == [[pytest.approx(0.02)], [pytest.approx(0.02)]]


def test_a_frame_and_its_mirror_are_never_split_across_batches(setup: Any) -> None:
    # three fit the batch: the second camera's pair waits for the next run, whole
    scheduler, network = setup(max_batch=3)
    flipping, plain = FlippingCamera(scheduler, 'a'), FakeCamera(scheduler, 'b')
    other = FlippingCamera(scheduler, 'c')
    with scheduler.changed:
        for value, camera in enumerate((flipping, plain, other), start=1):
            camera.slot.put(float(value))
            scheduler.attach(camera)
    wait_until(lambda: flipping.outputs and plain.done and other.outputs, what='all answered')
    assert network.batches == [[1.0, 1.5, 2.0], [3.0, 3.5]]
    assert (flipping.outputs, plain.done, other.outputs) == ([(2.0, 3.0)], [(2.0, 4.0)],
                                                              [(6.0, 7.0)])


def test_no_camera_starves_another(setup: Any) -> None:
    # a camera that always has a new frame waiting cannot keep the other from being served
    scheduler, network = setup(max_batch=1)
    busy, quiet = FakeCamera(scheduler, 'busy'), FakeCamera(scheduler, 'quiet')
    scheduler.attach(busy)
    scheduler.attach(quiet)
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            busy.slot.put(1.0)

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        for value in (5.0, 6.0, 7.0):
            quiet.slot.put(value)
            wait_until(lambda v=value: (v, 2 * v) in quiet.done, what=f'quiet frame {value}')
    finally:
        stop.set()
        thread.join()
    assert busy.done  # both served


def test_rounds_start_one_camera_further_each_time(setup: Any) -> None:
    scheduler, network = setup(max_batch=1)
    network.gate.clear()
    cameras = [FakeCamera(scheduler, n) for n in 'abc']
    for camera in cameras:
        scheduler.attach(camera)
    firsts = []
    for _ in range(3):
        network.batches.clear()
        with scheduler.changed:
            for value, camera in enumerate(cameras, start=1):
                camera.slot.put(float(value))
        network.gate.set()
        wait_until(lambda: len(network.batches) == 3, what='a round')
        network.gate.clear()
        firsts.append(network.batches[0][0])
    network.gate.set()
    assert firsts == [1.0, 2.0, 3.0]  # a, then b, then c first


def test_a_bad_frame_of_one_camera_does_not_stop_the_others(setup: Any) -> None:
    scheduler, network = setup(max_batch=2)
    bad, good = FakeCamera(scheduler, 'bad'), FakeCamera(scheduler, 'good')
    scheduler.attach(bad)
    scheduler.attach(good)
    bad.slot.put('bad')
    good.slot.put(3.0)
    wait_until(lambda: bad.errors and good.done, what='one error, one answer')
    assert bad.errors == ['bad frame'] and good.done == [(3.0, 6.0)]


def test_a_failing_network_is_reported_to_every_camera_of_the_batch(setup: Any) -> None:
    scheduler, network = setup(max_batch=2, fail=True)
    cameras = [FakeCamera(scheduler, n) for n in 'ab']
    for camera in cameras:
        scheduler.attach(camera)
        camera.slot.put(1.0)
    wait_until(lambda: all(c.errors for c in cameras), what='both told')
    assert not any(c.done for c in cameras)


def test_detach_waits_for_the_frame_in_flight(setup: Any) -> None:
    scheduler, network = setup()
    camera = FakeCamera(scheduler, 'a')
    scheduler.attach(camera)
    network.gate.clear()
    camera.slot.put(1.0)
    wait_until(lambda: scheduler._busy, what='the frame taken')
    detached = threading.Event()
    thread = threading.Thread(target=lambda: (scheduler.detach(camera), detached.set()))
    thread.start()
    assert not detached.wait(0.2)  # still in flight
    network.gate.set()
    thread.join(5)
    assert detached.is_set() and camera.done == [(1.0, 2.0)]
