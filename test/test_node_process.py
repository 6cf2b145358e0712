"""The installed ``mtdepth_node`` executable as its own process, with config/mtdepth.yaml.

Runs the console script from this venv with the source tree first on
PYTHONPATH (so it tests this checkout even before ``pip install``): outputs
and diagnostics over real topics, a 100 Hz flood against a slow model (the
node stays up, counts drops, answers with the newest frames, keeps its
memory), refusal of a bad model, and a clean exit on Ctrl-C.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import model_fixtures as mf
import numpy as np
import pytest
from node_harness import (
    DEADLINE_S,
    DIAGNOSTIC_NAME,
    EXECUTABLE,
    EXIT_TIMEOUT_S,
    NodeProcess,
    Probe,
    RosHarness,
    unique_namespace,
    wait_until,
)

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.images import array_to_image

ROS2_RUN_WRAPPER = EXECUTABLE.parent.parent / 'lib' / 'mtdepth_ros' / 'mtdepth_node'
FLOOD_W, FLOOD_H = 640, 480  # 0.9 MB frames: a leak of one per frame would show at once
FLOOD_FRAMES = 150  # per batch, at FLOOD_HZ
FLOOD_HZ = 100.0
SLOW_MODEL_WORK = 24  # matrix products: tens of ms per frame, far slower than the flood
RSS_GROWTH_LIMIT_KB = 30_000  # between two equal batches; a per-frame leak would be > 100 MB
NEWEST_FRAMES = 10  # the last output answers one of the last frames sent (no backlog)

pytestmark = pytest.mark.skipif(not EXECUTABLE.exists(), reason=f'{EXECUTABLE} not installed')


@pytest.fixture(scope='module')
def running(harness: RosHarness, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[NodeProcess, Probe]]:
    """The executable on a slow model (one ONNX Runtime thread), and a probe beside it."""
    folder = tmp_path_factory.mktemp('process')
    model = mf.write_model(folder / 'slow.onnx', work=SLOW_MODEL_WORK)
    namespace = unique_namespace()
    node = NodeProcess(EXECUTABLE, model, namespace, folder / 'node.log', 'threads:=1')
    probe = Probe(harness.context, namespace, listen=['depth/image_rect', 'points'])
    probe.listen_diagnostics()
    harness.add(probe)
    yield node, probe
    harness.remove(probe)
    code = node.interrupt()
    assert code == 0, f'exit code {code} after SIGINT:\n{node.output()}'


def flood_camera() -> PinholeCamera:
    return PinholeCamera(width=FLOOD_W, height=FLOOD_H, fx=500.0, fy=500.0,
                         cx=FLOOD_W / 2 - 0.5, cy=FLOOD_H / 2 - 0.5)


def status(node: NodeProcess, probe: Probe) -> Any:
    """The newest diagnostics of this process: every node in the domain is named
    mtdepth_node, and one left unconfigured by another test may publish beside it."""
    def own() -> list[Any]:
        return [s for s in probe.diagnostics(DIAGNOSTIC_NAME)
                if values(s).get('model path') == str(node.model)]
    return wait_until(own, what=f'diagnostics naming {node.model}')[-1]


def values(entry: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in entry.values}


def test_executable_publishes_depth_and_cloud(running: tuple[NodeProcess, Probe]) -> None:
    node, probe = running
    rgb = np.zeros((FLOOD_H, FLOOD_W, 3), np.uint8)
    probe.send_until('points', rgb, flood_camera(), timeout=3 * DEADLINE_S)  # start-up included
    depth = wait_until(lambda: probe.messages('depth/image_rect'))[0]
    assert (depth.width, depth.height, depth.encoding) == (mf.WIDTH, mf.HEIGHT, '32FC1')


def test_diagnostics_name_backend_and_model(running: tuple[NodeProcess, Probe]) -> None:
    node, probe = running
    entry = values(status(node, probe))
    assert 'CPUExecutionProvider' in entry['backend'] and entry['model'] == 'tiny_test'


def flood(probe: Probe, message: Any, camera: PinholeCamera) -> None:
    period = 1.0 / FLOOD_HZ
    start = time.monotonic()
    for i in range(FLOOD_FRAMES):
        probe.send(message, camera)
        time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))


def test_flood_is_survived_with_counted_drops_newest_frames_and_flat_memory(
        running: tuple[NodeProcess, Probe]) -> None:
    node, probe = running
    camera = flood_camera()
    rng = np.random.default_rng(0)
    message = array_to_image(rng.integers(0, 255, (FLOOD_H, FLOOD_W, 3), np.uint8), 'rgb8')
    probe.send_until('depth/image_rect', message, camera, timeout=3 * DEADLINE_S)
    flood(probe, message, camera)
    answered_late(node, probe)
    rss_first = node.rss_kb()
    flood(probe, message, camera)
    answered_late(node, probe)
    rss_second = node.rss_kb()
    assert node.process.poll() is None, node.output()
    assert rss_second - rss_first < RSS_GROWTH_LIMIT_KB, (rss_first, rss_second)
    time.sleep(0.5)  # let one diagnostics period cover the end of the flood
    entry = values(status(node, probe))
    print(f'flood: RSS {rss_first} -> {rss_second} kB; diagnostics {entry}')
    assert int(entry['dropped superseded (total)']) > 0, entry


def answered_late(node: NodeProcess, probe: Probe) -> None:
    """Wait for an answer to one of the last NEWEST_FRAMES frames sent (not to the very
    last: at 100 Hz the node's best-effort input may lose it), or for the node to die."""
    last = probe.sent[-NEWEST_FRAMES:]
    wait_until(lambda: key(probe.messages('depth/image_rect')[-1]) in last
               or node.process.poll() is not None, what='an answer to a last frame')


def key(msg: Any) -> tuple[int, int]:
    return msg.header.stamp.sec, msg.header.stamp.nanosec


def test_bad_model_is_refused_with_the_reason(tmp_path: Path) -> None:
    model = mf.write_model_without_card(tmp_path / 'nocard.onnx')
    executable = ROS2_RUN_WRAPPER if ROS2_RUN_WRAPPER.exists() else EXECUTABLE
    node = NodeProcess(executable, model, unique_namespace(), tmp_path / 'node.log')
    code = node.process.wait(EXIT_TIMEOUT_S)
    node.interrupt()
    assert code == 1
    assert 'no model card' in node.output()
