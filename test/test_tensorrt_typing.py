"""The type information TensorRT and CUDA calls are checked against (mypy.ini's mypy_path).

- stubs/cuda: our subset of cuda-bindings' runtime API, checked against the
  installed module with mypy's stubtest (names, parameters, classes);
- scripts/repair_tensorrt_stubs.py: the installed tensorrt-stubs made parseable,
  changing only the lines it must.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'scripts'))
import repair_tensorrt_stubs as repair  # noqa: E402


def test_cuda_stubs_match_the_installed_cuda_bindings() -> None:
    env = {**os.environ, 'MYPYPATH': str(REPO / 'stubs')}
    result = subprocess.run(
        [sys.executable, '-m', 'mypy.stubtest', 'cuda.bindings.runtime', '--ignore-missing-stub'],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_keyword_parameters_are_renamed() -> None:
    line = '    def configure(self, in: list[int], out: list[int]) -> None:'
    assert repair.repair_line(line) == \
        '    def configure(self, in_: list[int], out: list[int]) -> None:'


def test_parameters_after_a_default_get_one() -> None:
    line = '    def add(self, a: int, b: W = None, c: dict[str, int], *, d: int) -> L:'
    assert repair.repair_line(line) == \
        '    def add(self, a: int, b: W = None, c: dict[str, int] = ..., *, d: int) -> L:'


def test_valid_lines_are_left_alone() -> None:
    line = '    def set_shape(self, input: str, min: Dims, opt: Dims, max: Dims) -> None:'
    assert repair.repair_line(line) == line


def test_an_unknown_syntax_error_stops_the_repair() -> None:
    with pytest.raises(SystemExit, match='does not know how to repair'):
        repair.repair('def f(:\n    ...\n', 'broken.pyi')


def test_the_installed_tensorrt_stubs_are_repaired(tmp_path: Path) -> None:
    if importlib.util.find_spec('tensorrt_stubs') is None:
        pytest.skip('tensorrt-stubs is not installed (requirements/typecheck-nodeps.txt)')
    assert repair.main([str(tmp_path)]) == 0
    text = (tmp_path / 'tensorrt_bindings' / 'tensorrt.pyi').read_text()
    ast.parse(text)
    assert 'class IInt8EntropyCalibrator2' in text and 'def execute_async_v3' in text
