"""Finding the package's installed files: the bundled model and the config directory.

The share directory is looked up as ROS does (ament_index_python, when
``AMENT_PREFIX_PATH`` knows the package), then in the Python prefix a pip
install wrote it to, then in the source tree, so the node finds its default
model in a colcon workspace, in a venv and in a checkout alike.
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = 'mtdepth_ros'
DEFAULT_MODEL = 'mtdepth_default.onnx'
MODELS_DIR = 'models'
CONFIG_DIR = 'config'
FASTDDS_PROFILE = 'fastdds_large_messages.xml'
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when run from one


def share_dirs() -> list[Path]:
    """Candidate share directories, most specific first."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415
        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)))
        except (LookupError, OSError):  # not in the index, or AMENT_PREFIX_PATH unset
            pass
    except ImportError:
        pass
    candidates.append(Path(sys.prefix) / 'share' / PACKAGE)
    candidates.append(SOURCE_ROOT)  # a checkout keeps models/ and config/ at its root
    return list(dict.fromkeys(candidates))


def default_model_candidates() -> list[Path]:
    return [share / MODELS_DIR / DEFAULT_MODEL for share in share_dirs()]


def fastdds_profile_path() -> Path | None:
    """The Fast DDS large-message profile shipped in ``config/``, if installed anywhere."""
    for share in share_dirs():
        candidate = share / CONFIG_DIR / FASTDDS_PROFILE
        if candidate.is_file():
            return candidate
    return None


def resolve_model_path(model_path: str) -> Path:
    """The model file to load: ``model_path`` itself, or the bundled default when it is ''.

    Raises FileNotFoundError naming every place that was searched.
    """
    if model_path:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f'model_path {path}: no such file')
        return path
    candidates = default_model_candidates()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ', '.join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"model_path is '' (the bundled model) but {DEFAULT_MODEL} is in none of: {searched}; "
        'set model_path to an exported model')
