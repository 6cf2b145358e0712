"""Test environment: ROS traffic stays on this machine, on a domain of its own."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# Set before anything imports rclpy: discovery on loopback only, the shipped
# large-message transport profile, and a domain per test run so parallel runs
# (and other sessions on the machine) do not hear each other.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault(
    'FASTDDS_DEFAULT_PROFILES_FILE', str(REPO / 'config' / 'fastdds_large_messages.xml'))
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
# Passive OpenMP threads: torch's busy-waiting threads slow a shared CPU (and
# the whole suite) down by an order of magnitude (see training/__main__.py).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line('markers', 'gpu: needs a CUDA GPU (skipped without one)')
    config.addinivalue_line('markers', 'slow: takes more than a few seconds')


# -- an in-process mtdepth_node beside a probe, over real topics (test/node_harness.py) --------

import model_fixtures as mf  # noqa: E402  (after the environment above)
from node_harness import Probe, RosHarness, unique_namespace  # noqa: E402


@pytest.fixture(scope='module')
def harness() -> Iterator[RosHarness]:
    ros = RosHarness()
    yield ros
    ros.shutdown()


@pytest.fixture(scope='module')
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.write_model(tmp_path_factory.mktemp('model') / 'tiny.onnx')


@pytest.fixture
def start(harness: RosHarness, model: Path) -> Iterator[Any]:
    """start(listen=topics, **parameters) -> (node, probe) in a fresh namespace."""
    started: list[Any] = []

    def factory(listen: Any = None, probe_args: dict[str, Any] | None = None,
                **parameters: Any) -> tuple[Any, Any]:
        from rclpy.parameter import Parameter  # noqa: PLC0415

        from mtdepth_ros.node.mtdepth_node import MtDepthNode  # noqa: PLC0415

        namespace = unique_namespace()
        values = {'model_path': str(model), 'diagnostics.period': 0.2, **parameters}
        node = MtDepthNode(
            context=harness.context, namespace=namespace,
            parameter_overrides=[Parameter(k.replace('__', '.'), value=v) for k, v in values.items()])
        started.append(harness.add(node))
        node.autostart()  # configure + activate, as the executable does with autostart: true
        kwargs = {} if listen is None else {'listen': listen}
        probe = Probe(harness.context, namespace, **kwargs, **(probe_args or {}))
        started.append(harness.add(probe))
        return node, probe

    yield factory
    for node in reversed(started):
        harness.remove(node)


