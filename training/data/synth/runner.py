"""Run independent frame jobs on a process pool; results come back in job order.

Every job carries everything it needs (seed, indices), so the output does not
depend on the number of workers or on scheduling.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Job = TypeVar('Job')
Result = TypeVar('Result')


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def run_jobs(function: Callable[[Job], Result], jobs: Iterable[Job], workers: int,
             chunk: int = 4) -> Iterator[Result]:
    """``function`` over ``jobs``, in order; ``workers`` <= 1 runs in this process."""
    if workers <= 1:
        yield from map(function, jobs)
        return
    # fork: workers inherit the imported modules and the texture bank; no re-import.
    with multiprocessing.get_context('fork').Pool(workers) as pool:
        yield from pool.imap(function, jobs, chunksize=chunk)
