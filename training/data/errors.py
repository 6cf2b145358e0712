"""The one error type of the data layer: which file, and what is wrong with it."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A dataset file that is missing, truncated, wrongly encoded or inconsistent."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f'{path}: {reason}')
