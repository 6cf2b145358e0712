"""What every benchmark reports: named rows of figures, printed as a table and kept for --json.

Each row is a dict whose first key is ``name``; the others are figures
(numbers, or text for what ran). :func:`report` prints the rows as a Markdown
table and keeps them, so ``python -m bench --json FILE`` can write every row
of the run for two runs to be compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

REPEATS = 10
MIN_TOTAL_S = 0.3  # short steps repeat until this much time has been measured (at most 500)
MAX_REPEATS = 500
PAIRS = 400  # work-then-copy pairs of paired_ratio

collected: list[dict[str, Any]] = []  # every row of this run, with its benchmark's name


def median_seconds(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of at least ``repeats`` calls after one warm-up call; a step of a
    millisecond or two repeats until MIN_TOTAL_S has been measured (its median otherwise
    moves by tens of percent from run to run on a virtual machine)."""
    function()
    times: list[float] = []
    while len(times) < repeats or (sum(times) < MIN_TOTAL_S and len(times) < MAX_REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def copy_seconds(data: bytes | np.ndarray) -> float:
    """Median time of one ``np.copyto`` of ``data``'s bytes, from a buffer holding them into
    another: the floor a writer of those bytes is measured against.

    The source holds written bytes on purpose. Pages that were never written
    (a fresh ``np.zeros``) all map the kernel's one zero page, which stays in
    the L1 cache, so copying them measures writes alone: 5.9 MB in 0.165 ms
    against 0.24-0.29 ms from written bytes on the project's 2-core machine
    (2026-12-01); every ratio against a copy used that faster floor until then.
    """
    source = np.frombuffer(data, np.uint8).copy() if isinstance(data, bytes) else \
        np.ascontiguousarray(data).reshape(-1).view(np.uint8).copy()
    target = np.empty_like(source)
    return median_seconds(lambda: np.copyto(target, source))


def paired_ratio(work: Callable[[], object], data: bytes, pairs: int = PAIRS
                 ) -> tuple[float, float, float]:
    """(median work s, median copy s, median of the per-pair ratios): ``work`` and a copy of
    ``data``'s bytes run back to back ``pairs`` times.

    Each ratio compares two timings taken a moment apart, so a virtual machine
    that runs 20-40 % slower for a while moves both alike; :func:`copy_seconds`'s
    tight loop keeps its buffers in the cache, while here the copy starts with
    the cache the work left, as a copy in a node would. A second view of the same
    work, not a replacement for the tight-loop floor.
    """
    source = np.frombuffer(data, np.uint8).copy()
    target = np.empty_like(source)
    work()
    np.copyto(target, source)
    work_s, copy_s = [], []
    for _ in range(pairs):
        start = time.perf_counter()
        work()
        middle = time.perf_counter()
        np.copyto(target, source)
        work_s.append(middle - start)
        copy_s.append(time.perf_counter() - middle)
    ratios = np.asarray(work_s) / np.asarray(copy_s)
    return float(np.median(work_s)), float(np.median(copy_s)), float(np.median(ratios))


def zero_page_copy_seconds(size: int) -> float:
    """The floor every ratio against a copy used until 2026-12-01 (see
    :func:`copy_seconds`): ``size`` bytes copied from a fresh ``np.zeros``."""
    source, target = np.zeros(size, np.uint8), np.empty(size, np.uint8)
    return median_seconds(lambda: np.copyto(target, source))


def report(bench: str, rows: Sequence[dict[str, Any]], note: str = '') -> None:
    """Print ``rows`` as a table (columns: the union of their keys) and keep them."""
    if note:
        print(note)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    cells = [[_cell(row.get(key, '')) for key in columns] for row in rows]
    widths = [max(len(key), *(len(line[i]) for line in cells)) for i, key in enumerate(columns)]
    print('| ' + ' | '.join(key.ljust(w) for key, w in zip(columns, widths)) + ' |')
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for line in cells:
        print('| ' + ' | '.join(cell.rjust(w) if i else cell.ljust(w)
                                for i, (cell, w) in enumerate(zip(line, widths))) + ' |')
    collected.extend({'bench': bench, **row} for row in rows)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f'{value:.3g}' if abs(value) < 10 else f'{value:.1f}'
    return str(value)
