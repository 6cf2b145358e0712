"""Frame statistics for ``/diagnostics``: rates, latency, inference time, drops.

``FrameStats`` is fed by the image callback and the worker (thread-safe) and
summarised once per diagnostics period into a :class:`StatsWindow`; the
window's counters then start again, so memory stays constant however long
the node runs. :func:`build_status` turns a window into the
``diagnostic_msgs/DiagnosticStatus`` a robot monitor reads.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

OK, WARN, ERROR = 0, 1, 2  # DiagnosticStatus levels (the message holds them as one byte)
SUPERSEDED = 'superseded'  # replaced by a newer frame before the worker took it: falling behind
ERROR_REASON = 'error'  # an unexpected failure while processing (logged with the exception)


@dataclass(frozen=True)
class DiagnosticsSettings:
    expected_rate: float = 0.0  # Hz; 0 = compare against the input rate
    rate_tolerance: float = 0.1  # WARN below (1 - tolerance) x the expected rate
    max_latency: float = 0.5  # s, stamp to publish; WARN above; 0 = no limit


@dataclass(frozen=True)
class StatsWindow:
    """What happened in one diagnostics period (plus totals since start)."""

    elapsed_s: float
    received: int  # images that arrived
    handled: int  # frames the worker finished (published, or nobody was subscribed)
    published: int
    latency_mean_s: float
    latency_max_s: float
    inference_mean_s: float
    processing_mean_s: float  # worker time per frame, inference included
    drops: dict[str, int]  # this period, by reason
    drops_total: dict[str, int]
    notes: dict[str, int]  # this period: frames handled with something wrong (no camera_info, ...)
    notes_total: dict[str, int]

    @property
    def input_rate(self) -> float:
        return self.received / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def output_rate(self) -> float:
        return self.handled / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class _Window:
    received: int = 0
    handled: int = 0
    published: int = 0
    latency_sum: float = 0.0
    latency_max: float = 0.0
    inference_sum: float = 0.0
    processing_sum: float = 0.0
    drops: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)


class FrameStats:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._window = _Window()
        self._started = clock()
        self._drops_total: Counter[str] = Counter()
        self._notes_total: Counter[str] = Counter()
        self._handled_total = 0

    def received(self) -> None:
        with self._lock:
            self._window.received += 1

    def dropped(self, reason: str) -> None:
        with self._lock:
            self._window.drops[reason] += 1
            self._drops_total[reason] += 1

    def noted(self, note: str) -> None:
        """A frame handled with something wrong (WARN in this period's status)."""
        with self._lock:
            self._window.notes[note] += 1
            self._notes_total[note] += 1

    def idle(self) -> None:
        """A frame handled without work: no output had a subscriber."""
        with self._lock:
            self._window.handled += 1
            self._handled_total += 1

    def published(self, latency_s: float, inference_s: float, processing_s: float) -> None:
        with self._lock:
            w = self._window
            w.handled += 1
            self._handled_total += 1
            w.published += 1
            w.latency_sum += latency_s
            w.latency_max = max(w.latency_max, latency_s)
            w.inference_sum += inference_s
            w.processing_sum += processing_s

    def drops_total(self) -> dict[str, int]:
        with self._lock:
            return dict(self._drops_total)

    def notes_total(self) -> dict[str, int]:
        with self._lock:
            return dict(self._notes_total)

    @property
    def handled_total(self) -> int:
        """Frames the worker finished since start."""
        return self._handled_total

    def snapshot(self) -> StatsWindow:
        """Summarise the period since the last snapshot and start a new one."""
        with self._lock:
            now = self._clock()
            w, self._window = self._window, _Window()
            elapsed, self._started = now - self._started, now
            count = max(w.published, 1)
            return StatsWindow(
                elapsed_s=elapsed, received=w.received, handled=w.handled, published=w.published,
                latency_mean_s=w.latency_sum / count, latency_max_s=w.latency_max,
                inference_mean_s=w.inference_sum / count,
                processing_mean_s=w.processing_sum / count,
                drops=dict(w.drops), drops_total=dict(self._drops_total),
                notes=dict(w.notes), notes_total=dict(self._notes_total))


def assess(window: StatsWindow, settings: DiagnosticsSettings) -> tuple[int, str]:
    """(level, message): the worst problem of the period, or OK with the output rate."""
    problems: list[tuple[int, str]] = []
    if window.drops.get(ERROR_REASON):
        problems.append((ERROR, f'{window.drops[ERROR_REASON]} frames failed (see the log)'))
    if window.received == 0:
        problems.append((WARN, f'no images in the last {window.elapsed_s:.1f} s'))
    expected = settings.expected_rate or window.input_rate
    if window.received and window.output_rate < expected * (1.0 - settings.rate_tolerance):
        what = 'expected' if settings.expected_rate else 'input'
        problems.append((WARN, f'falling behind: {window.output_rate:.1f} Hz out, '
                               f'{expected:.1f} Hz {what}'))
    if settings.max_latency and window.latency_max_s > settings.max_latency:
        problems.append((WARN, f'latency {window.latency_max_s * 1e3:.0f} ms over '
                               f'{settings.max_latency * 1e3:.0f} ms'))
    bad = {r: n for r, n in window.drops.items() if r not in (SUPERSEDED, ERROR_REASON)}
    if bad:
        problems.append((WARN, 'dropped bad input: '
                               + ', '.join(f'{n} {r}' for r, n in sorted(bad.items()))))
    if window.notes:
        problems.append((WARN, ', '.join(f'{note} ({n} frames)'
                                         for note, n in sorted(window.notes.items()))))
    if not problems:
        return OK, f'{window.output_rate:.1f} Hz, latency {window.latency_mean_s * 1e3:.0f} ms'
    level = max(level for level, _ in problems)
    return level, '; '.join(text for _, text in problems)


def build_status(window: StatsWindow, settings: DiagnosticsSettings, name: str,
                 hardware_id: str, extra: dict[str, str] | None = None, error: str = '') -> Any:
    """A ``DiagnosticStatus`` for one period, with every figure as a key-value pair.

    ``error`` is a standing problem (a backend fallback): ERROR whatever the period.
    """
    level, message = assess(window, settings)
    if error:
        level, message = ERROR, f'{error}; {message}'
    values = {
        'input rate (Hz)': f'{window.input_rate:.2f}',
        'output rate (Hz)': f'{window.output_rate:.2f}',
        'expected rate (Hz)': f'{settings.expected_rate:.2f}' if settings.expected_rate
        else 'input rate',
        'latency mean (s)': f'{window.latency_mean_s:.4f}',
        'latency max (s)': f'{window.latency_max_s:.4f}',
        'inference mean (s)': f'{window.inference_mean_s:.4f}',
        'processing mean (s)': f'{window.processing_mean_s:.4f}',
        'frames received': str(window.received),
        'frames published': str(window.published),
        **{f'dropped {reason} (total)': str(n) for reason, n in sorted(window.drops_total.items())},
        **{f'{note} (total)': str(n) for note, n in sorted(window.notes_total.items())},
        **(extra or {}),
    }
    return DiagnosticStatus(
        level=bytes([level]), name=name, message=message,
        hardware_id=hardware_id, values=[KeyValue(key=k, value=v) for k, v in values.items()])


def state_status(name: str, level: int, message: str, hardware_id: str) -> Any:
    """A ``DiagnosticStatus`` for a node that is not processing (unconfigured, configuring,
    inactive)."""
    return DiagnosticStatus(level=bytes([level]), name=name, message=message,
                            hardware_id=hardware_id)
