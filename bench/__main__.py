"""Run every ``bench/bench_*.py`` (or those named) and print their ratio tables.

Each benchmark module has ``main() -> None`` and measures its baseline in the
same run, so the printed ratios hold on whatever machine runs them.
"""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path

import numpy as np


def available() -> list[str]:
    return sorted(p.stem.removeprefix('bench_') for p in Path(__file__).parent.glob('bench_*.py'))


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f'unknown benchmarks {unknown}; available: {available()}', file=sys.stderr)
        return 2
    print(f'# {platform.processor() or platform.machine()}, python {platform.python_version()}, '
          f'numpy {np.__version__}')
    for name in names:
        print(f'\n## {name}')
        importlib.import_module(f'bench.bench_{name}').main()
    return 0


if __name__ == '__main__':
    sys.exit(main())
