"""The one error type of the data layer: which file, and what is wrong with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A dataset file that is missing, truncated, wrongly encoded or inconsistent."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f'{path}: {reason}')


def check_same_size(path: Path | str, array: np.ndarray, image_path: Path | str,
                    image: np.ndarray) -> None:
    """A DataError unless the map at ``path`` has the size of its image."""
    if array.shape[:2] != image.shape[:2]:
        raise DataError(path, f'is {array.shape[1]}x{array.shape[0]} but its image {image_path} is '
                              f'{image.shape[1]}x{image.shape[0]}')


MISSING_SHOWN = 5  # missing files named in the error message


def check_listed_files(listing: Path | str, paths: list[Path], what: str) -> None:
    """One DataError saying how many files a listing names are missing, and which (the first few)."""
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        shown = ', '.join(str(p) for p in missing[:MISSING_SHOWN])
        more = f' (and {len(missing) - MISSING_SHOWN} more)' if len(missing) > MISSING_SHOWN else ''
        raise DataError(listing, f'{len(missing)} of {len(paths)} listed {what} are missing: {shown}{more}')
