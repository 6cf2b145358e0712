"""Run every ``bench/bench_*.py`` (or those named) and print their ratio tables.

    python -m bench [name ...] [--json FILE]

Each benchmark module has ``main() -> None``, measures its baseline in the
same run (so the printed ratios hold on whatever machine runs them) and
reports its rows through :func:`bench.rows.report`; ``--json FILE`` writes
every row with its benchmark's name and the machine, so two runs compare.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from bench.rows import collected


def available() -> list[str]:
    return sorted(p.stem.removeprefix('bench_') for p in Path(__file__).parent.glob('bench_*.py'))


def machine() -> dict[str, object]:
    return {'processor': platform.processor() or platform.machine(),
            'cores': os.cpu_count(), 'python': platform.python_version(),
            'numpy': np.__version__, 'load_average': os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m bench', description=__doc__.split('\n')[0])
    parser.add_argument('names', nargs='*', help=f'benchmarks to run (default all: {available()})')
    parser.add_argument('--json', type=Path, help='write every row to this file')
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        print(f'unknown benchmarks {unknown}; available: {available()}', file=sys.stderr)
        return 2
    about = machine()
    print(f"# {about['processor']}, {about['cores']} cores, python {about['python']}, "
          f"numpy {about['numpy']}, load average {about['load_average']:.1f} at the start")
    for name in names:
        print(f'\n## {name}')
        importlib.import_module(f'bench.bench_{name}').main()
    if args.json:
        args.json.write_text(json.dumps({'machine': about, 'rows': collected}, indent=1) + '\n')
        print(f'\nwrote {len(collected)} rows to {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
