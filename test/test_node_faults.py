"""The node never dies: bad input around warnings, signals with subscribers, refusals.

The installed executable runs as its own process (test/node_harness.py's
NodeProcess) with a probe beside it; after every bad input a good frame must
still be answered, and the process output must hold no traceback.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import model_fixtures as mf
import pytest
from node_harness import (
    CAMERA,
    DEADLINE_S,
    DIAGNOSTIC_NAME,
    EXECUTABLE,
    EXIT_TIMEOUT_S,
    NodeFactory,
    NodeProcess,
    Probe,
    RosHarness,
    unique_namespace,
    wait_until,
)
from node_harness import (
    GREY as RGB,
)
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, Image

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.images import array_to_image
from mtdepth_ros.node.diagnostics import SUPERSEDED

CLEAN_EXIT_S = 2.0  # a stop signal to exit, with frames flowing and subscribers attached
SEND_PERIOD_S = 0.05
# A model that keeps the worker busy (tens of ms a frame on one thread): a stop signal
# then lands while a frame is being processed, about to be published.
BUSY_MODEL_WORK = 24
SUPERSEDED_KEY = f'dropped {SUPERSEDED} (total)'  # frames replaced by newer ones: not bad input

needs_executable = pytest.mark.skipif(not EXECUTABLE.exists(), reason=f'{EXECUTABLE} not installed')


def image(**changes: Any) -> Image:
    msg = array_to_image(RGB, 'rgb8')
    for name, value in changes.items():
        setattr(msg, name, value)
    return msg


def info(**changes: Any) -> CameraInfo:
    msg = CAMERA.to_camera_info()
    for name, value in changes.items():
        setattr(msg, name, value)
    return msg


def scaled_focal(fx: float) -> CameraInfo:
    return PinholeCamera(width=64, height=48, fx=fx, fy=fx, cx=31.5, cy=23.5).to_camera_info()


# Every class of bad input docs/node.md lists: (name, image, camera_info).
BAD_INPUTS: dict[str, tuple[Image | bytes, CameraInfo | PinholeCamera | None]] = {
    'serialization: truncated': (serialize_message(image())[:61], CAMERA),
    'serialization: not CDR': (b'\xff\xff' + serialize_message(image())[2:], CAMERA),
    'encoding': (image(encoding='x-unknown'), CAMERA),
    'empty': (image(width=0, height=0, step=0, data=[]), None),
    'layout: step': (image(step=64 * 3 + 7), CAMERA),
    'layout: short data': (image(data=array_to_image(RGB, 'rgb8').data[:100]), CAMERA),
    'camera_info of another size': (image(), CAMERA.scaled(128, 96)),
    'uncalibrated camera_info': (image(), info(k=[0.0] * 9, p=[0.0] * 12)),
    'camera_info with fx 1e300': (image(), scaled_focal(1e300)),
    'camera_info with fx 1e-300': (image(), scaled_focal(1e-300)),
    'camera_info with 4 numbers in P': (image(), info(p=[1.0, 0.0, 0.0, 0.0])),
}


def warning(probe: Probe) -> None:
    """Make the node warn: a cloud subscriber and a frame without camera_info."""
    probe.send_until('depth/image_rect', RGB, None, count=len(probe.messages('depth/image_rect')) + 1)


def bad_input_seen(probe: Probe) -> int:
    """How many frames the node has dropped or flagged for bad input, by its diagnostics."""
    counts = [0]
    for status in probe.diagnostics(DIAGNOSTIC_NAME):
        counts.append(sum(int(kv.value) for kv in status.values
                          if kv.key.endswith('(total)') and kv.key != SUPERSEDED_KEY))
    return max(counts)


def delivered(probe: Probe, bad: Image | bytes, camera: CameraInfo | PinholeCamera | None) -> None:
    """Send ``bad`` until the node's diagnostics count it: the input queue keeps only the
    newest frames, so a busy node may never see one sent just before the next good frame."""
    before = bad_input_seen(probe)
    probe.send_while_not(lambda: bad_input_seen(probe) > before, bad, camera,
                         what='the node to count the bad input', timeout=3 * DEADLINE_S)


def answered(probe: Probe) -> None:
    """A good frame is answered with a depth image of its own stamp."""
    header = None

    def done() -> bool:
        return header is not None and any(
            m.header.stamp == header.stamp for m in probe.messages('depth/image_rect'))

    deadline = time.monotonic() + 3 * DEADLINE_S
    while time.monotonic() < deadline:
        header = probe.send(RGB, CAMERA)
        if wait_until(done, 0.3, raise_on_timeout=False):
            return
    raise AssertionError('no answer to a good frame')


@needs_executable
def test_every_bad_input_in_both_orders_around_a_warning(harness: RosHarness,
                                                         tmp_path: Path) -> None:
    model = mf.write_model(tmp_path / 'tiny.onnx')
    namespace = unique_namespace()
    node = NodeProcess(EXECUTABLE, model, namespace, tmp_path / 'node.log')
    probe = Probe(harness.context, namespace, listen=['depth/image_rect', 'points'])
    probe.listen_diagnostics()
    harness.add(probe)
    try:
        answered(probe)  # started
        for name, (bad, camera) in BAD_INPUTS.items():
            for first, second in ((warning, None), (None, warning)):
                if first:
                    first(probe)
                delivered(probe, bad, camera)
                if second:
                    second(probe)
                answered(probe)
                assert node.process.poll() is None, f'died after {name}:\n{node.output()}'
    finally:
        harness.remove(probe)
        code = node.interrupt()
    output = node.output()
    assert code == 0, output
    assert 'Traceback' not in output and 'severity cannot be changed' not in output, output
    for text in ('not an Image: truncated at data',  # once: one log per reason per period
                 'unsupported image encoding', 'empty image', 'camera_info is 128x96',
                 'unusable camera_info', 'no usable camera_info'):
        assert text in output, text


def flowing(probe: Probe, stop: threading.Event) -> None:
    while not stop.is_set():
        probe.send(RGB, CAMERA)
        time.sleep(SEND_PERIOD_S)


@needs_executable
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=lambda s: signal.Signals(s).name)
def test_a_stop_signal_with_frames_flowing_and_subscribers_exits_cleanly(
        harness: RosHarness, tmp_path: Path, signum: int) -> None:
    model = mf.write_model(tmp_path / 'busy.onnx', work=BUSY_MODEL_WORK)
    namespace = unique_namespace()
    node = NodeProcess(EXECUTABLE, model, namespace, tmp_path / 'node.log', 'threads:=1')
    probe = Probe(harness.context, namespace, listen=['depth/image_rect', 'points'])
    harness.add(probe)
    stop = threading.Event()
    sender = threading.Thread(target=flowing, args=(probe, stop), daemon=True)
    try:
        probe.send_until('points', RGB, CAMERA, timeout=3 * DEADLINE_S)
        sender.start()
        wait_until(lambda: len(probe.messages('points')) >= 3, what='a few clouds')
        sent = time.monotonic()
        node.process.send_signal(signum)
        code = node.process.wait(EXIT_TIMEOUT_S)
        took = time.monotonic() - sent
    finally:
        stop.set()
        if sender.is_alive():
            sender.join()
        harness.remove(probe)
        node.interrupt()
    output = node.output()
    print(f'{signal.Signals(signum).name}: exit {code} after {took:.2f} s')
    assert code == 0, output
    assert 'Traceback' not in output and 'frame failed' not in output, output
    assert took < CLEAN_EXIT_S, f'{took:.2f} s to stop'


def refusal(tmp_path: Path, model: Path, *parameters: str) -> tuple[int, str, str]:
    namespace = unique_namespace()
    node = NodeProcess(EXECUTABLE, model, namespace, tmp_path / 'node.log', *parameters)
    code = node.process.wait(EXIT_TIMEOUT_S)
    node.interrupt()
    return code, node.output(), f'{namespace}/mtdepth_node'


def nan_focal(card: dict[str, Any]) -> None:
    card['camera']['focal_length_px'] = math.nan


def bigger_input(card: dict[str, Any]) -> None:
    card['input'].update(height=2 * mf.HEIGHT, width=2 * mf.WIDTH)


@needs_executable
@pytest.mark.parametrize(('make', 'parameters', 'reason'), [
    (lambda p: mf.write_model_with_card_text(p, bigger_input), (),
     'card does not match the graph: input size differs: height 24 (graph) vs 48 (card)'),
    (lambda p: mf.write_model_with_card_text(p, nan_focal), (),
     "'camera.focal_length_px' must be a positive number, got nan"),
    (mf.write_model_without_card, (), 'has no model card'),
    (mf.write_model, ('model_pth:=/elsewhere.onnx',),
     "unknown parameter 'model_pth' (did you mean 'model_path'?)"),
], ids=['card-graph-size', 'nan-focal', 'no-card', 'misspelt-parameter'])
def test_start_up_refusals_are_one_fatal_line_with_the_full_node_name(
        tmp_path: Path, make: Callable[[Path], Path], parameters: tuple[str, ...],
        reason: str) -> None:
    code, output, name = refusal(tmp_path, make(tmp_path / 'model.onnx'), *parameters)
    fatal = [line for line in output.splitlines() if '[FATAL]' in line]
    assert code == 1, output
    assert len(fatal) == 1 and f'{name}: cannot start: ' in fatal[0], output
    assert reason in fatal[0], output
    assert 'Traceback' not in output, output


def test_a_failing_frame_is_counted_and_the_next_one_is_answered(start: NodeFactory) -> None:
    node, probe = start(listen=['depth/image_rect'])
    real = node.model.predictor.decode
    calls = []

    def fail_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError('backend hiccup')
        return real(*args, **kwargs)

    node.model.predictor.decode = fail_once
    probe.send_until('depth/image_rect', RGB, CAMERA)
    assert node.stats.drops_total().get('error') == 1 and len(calls) >= 2
