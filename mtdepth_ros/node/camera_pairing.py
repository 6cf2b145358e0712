"""Pairs each image with its camera_info: by exact stamp, or the latest one.

Drivers publish an image and its camera_info with the same stamp, but the
two can arrive in either order, so the worker may wait a moment for the
match. Many drivers and bags stamp them differently; ``cache_latest`` then
pairs every image with the newest camera_info instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

HISTORY = 32  # camera_infos kept for matching: a few seconds of a fast camera


def stamp_key(header: Any) -> tuple[int, int]:
    return int(header.stamp.sec), int(header.stamp.nanosec)


class CameraInfoPairing:
    def __init__(self, cache_latest: bool = False, history: int = HISTORY) -> None:
        self.cache_latest = cache_latest
        self._history = history
        self._by_stamp: OrderedDict[tuple[int, int], Any] = OrderedDict()
        self._latest: Any = None
        self._arrived = threading.Condition()

    def add(self, msg: Any) -> None:
        with self._arrived:
            key = stamp_key(msg.header)
            self._by_stamp[key] = msg
            self._by_stamp.move_to_end(key)
            while len(self._by_stamp) > self._history:
                self._by_stamp.popitem(last=False)
            self._latest = msg
            self._arrived.notify_all()

    def match(self, header: Any, timeout: float = 0.0) -> Any:
        """The camera_info for the image with ``header``, or None.

        Waits up to ``timeout`` s for an exact-stamp match (the caller passes
        0 when nobody publishes camera_info, so such a camera costs no waiting).
        With ``cache_latest`` it waits only until a first camera_info arrived.
        """
        key = stamp_key(header)
        with self._arrived:
            if self.cache_latest:
                self._arrived.wait_for(lambda: self._latest is not None, timeout)
                return self._latest
            self._arrived.wait_for(lambda: key in self._by_stamp, timeout)
            return self._by_stamp.get(key)
