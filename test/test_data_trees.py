"""Small generated trees shared by the data tests (built once per test process), and their layouts."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from training.data.io import read_depth_png
from training.data.kitti_files import KittiCalibration, read_split_file

SEED = 11
KITTI_SIZE = (160, 48)  # width, height: KITTI's aspect, small enough for tests
NYU_SIZE = (96, 72)
_ROOT = Path(tempfile.mkdtemp(prefix='mtdepth_data_tests_'))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


@lru_cache(maxsize=None)
def kitti_tree() -> Path:
    """3 drives of 3 frames: train, test and val drives, 1 frame each with annotated depth."""
    from training.data.synth.kitti_writer import write_kitti

    out = _ROOT / 'kitti'
    write_kitti(out, frames=9, seed=SEED, width=KITTI_SIZE[0], height=KITTI_SIZE[1], frames_per_drive=3,
                workers=1)
    return out


@lru_cache(maxsize=None)
def nyu_tree() -> Path:
    from training.data.synth.nyu_writer import write_nyu

    out = _ROOT / 'nyu'
    write_nyu(out, frames=4, seed=SEED, width=NYU_SIZE[0], height=NYU_SIZE[1], workers=1)
    return out


@lru_cache(maxsize=None)
def cityscapes_tree() -> Path:
    from training.data.synth.cityscapes_writer import write_cityscapes

    out = _ROOT / 'cityscapes'
    write_cityscapes(out, frames=2, seed=SEED, width=128, height=64, workers=1)
    return out


def copy_tree(source: Path, destination: Path) -> Path:
    """A private copy a test may break."""
    shutil.copytree(source, destination)
    return destination


def test_kitti_tree_has_the_real_layout() -> None:
    root = kitti_tree()
    date = root / 'raw' / '2000_01_01'
    assert (date / 'calib_cam_to_cam.txt').is_file() and (date / 'calib_velo_to_cam.txt').is_file()
    drive = date / '2000_01_01_drive_0001_sync'
    assert sorted(p.name for p in (drive / 'image_02' / 'data').iterdir()) == [
        '0000000000.png', '0000000001.png', '0000000002.png']
    assert (drive / 'velodyne_points' / 'data' / '0000000000.bin').is_file()
    assert len((drive / 'image_02' / 'timestamps.txt').read_text().splitlines()) == 3
    assert (root / 'depth' / 'train' / '2000_01_01_drive_0001_sync' / 'proj_depth' / 'groundtruth'
            / 'image_02' / '0000000001.png').is_file()


def test_split_files_list_frames_as_monodepth2_does() -> None:
    lines = (kitti_tree() / 'splits' / 'train_files.txt').read_text().splitlines()
    assert lines == ['2000_01_01/2000_01_01_drive_0001_sync 1 l']
    test_frames = read_split_file(kitti_tree() / 'splits' / 'test_files.txt')
    assert [f.frame for f in test_frames] == [0, 1, 2]  # frames 0 and 2 have no annotated depth


def test_calibration_is_kitti_format_with_the_drive_intrinsics() -> None:
    calib = KittiCalibration.read(kitti_tree() / 'raw' / '2000_01_01')
    scale = KITTI_SIZE[0] / 1242
    assert calib.p_rect.shape == (3, 4) and calib.image_size == KITTI_SIZE
    assert np.isclose(calib.p_rect[0, 0], 721.5377 * scale, rtol=1e-6)
    assert np.isclose(calib.p_rect[0, 3], calib.p_rect[0, 0] * 0.06, rtol=1e-6)  # camera 2 offset
    assert np.allclose(calib.p_rect[2], [0, 0, 1, 0])


def test_depth_png_is_uint16_metres_times_256() -> None:
    import cv2

    path = (kitti_tree() / 'depth' / 'train' / '2000_01_01_drive_0001_sync' / 'proj_depth' / 'groundtruth'
            / 'image_02' / '0000000001.png')
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 2
    assert np.array_equal(read_depth_png(path), raw.astype(np.float32) / 256.0)
    assert 0 < (raw > 0).mean() < 1
