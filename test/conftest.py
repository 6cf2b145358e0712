"""Test environment: ROS traffic stays on this machine, on a domain of its own."""

import os
from pathlib import Path

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
