"""A one-frame mailbox between the image callback and the inference worker.

Newest frame wins: putting a frame replaces one the worker has not taken yet
and hands the replaced frame back so the caller can count it as dropped.
Whatever the input rate, at most one frame waits, so memory and latency stay
bounded by one inference.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar('T')


class FrameSlot(Generic[T]):
    """``changed`` may be shared by several slots (one worker serving several cameras)."""

    def __init__(self, changed: threading.Condition | None = None) -> None:
        self._frame: T | None = None
        self._closed = False
        self._changed = changed or threading.Condition()

    def put(self, frame: T) -> T | None:
        """Store ``frame``; return the frame it replaced (never taken), or None."""
        with self._changed:
            replaced, self._frame = self._frame, frame
            self._changed.notify_all()
        return replaced

    def take(self, timeout: float | None = None) -> T | None:
        """The newest frame, waiting up to ``timeout`` s; None on timeout or when closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._frame is not None or self._closed, timeout)
            frame, self._frame = self._frame, None
        return frame

    def close(self) -> None:
        """Wake the worker for good: ``take`` returns None from now on."""
        with self._changed:
            self._closed = True
            self._frame = None
            self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ready(self) -> bool:
        """A frame waits (check under the shared condition's lock to act on it)."""
        return self._frame is not None
