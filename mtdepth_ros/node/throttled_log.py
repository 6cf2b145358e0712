"""Log lines that can never take the node down: one per problem kind per interval.

rclpy identifies a log call by its call site and raises ``ValueError('Logger
severity cannot be changed between calls.')`` when one site logs at two
severities. Each severity here has its own call site, and a failure to log
(a logger already torn down at shutdown, say) is swallowed: a log line is
never worth a frame, let alone the node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_INTERVAL_S = 5.0


class ThrottledLog:
    """At most one line per ``kind`` per ``interval_s``, at WARN or ERROR."""

    def __init__(self, logger: Any, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()  # the image callback and the worker both log

    def warning(self, kind: str, text: str) -> None:
        if self._due(kind):
            try:
                self._logger.warning(text)
            except Exception:  # noqa: BLE001  never let a log line raise
                pass

    def error(self, kind: str, text: str) -> None:
        if self._due(kind):
            try:
                self._logger.error(text)
            except Exception:  # noqa: BLE001  never let a log line raise
                pass

    def _due(self, kind: str) -> bool:
        now = self._clock()
        with self._lock:
            if now - self._last.get(kind, -self._interval) < self._interval:
                return False
            self._last[kind] = now
            return True
