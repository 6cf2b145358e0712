"""INT8 calibration data: image folders and rosbags, preprocessed exactly as the Predictor does."""

from __future__ import annotations

from pathlib import Path

import cv2
import model_fixtures as mf
import numpy as np
import pytest

from mtdepth_ros.inference.backends.calibration import (
    CalibrationError,
    calibration_batches,
    calibration_cache_path,
    find_source,
    predictor_preprocess,
    read_rgb,
    source_images,
    spread,
)
from mtdepth_ros.inference.model_file import read_card
from mtdepth_ros.inference.predictor import Predictor

IMAGE_SIZE = (48, 64)  # (h, w): twice the tiny network input
SEED = 3


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def random_rgb(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*IMAGE_SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope='module')
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.write_model(tmp_path_factory.mktemp('model') / 'tiny.onnx')


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(3):
        write_png(tmp_path / 'calib' / f'{i}.png', random_rgb(SEED + i))
    (tmp_path / 'calib' / 'nested').mkdir()
    cv2.imwrite(str(tmp_path / 'calib' / 'nested' / 'a.JPG'), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / 'calib' / 'notes.txt').write_text('not an image')
    return tmp_path / 'calib'


def test_a_folder_gives_its_png_and_jpeg_files_sorted(folder: Path) -> None:
    source = find_source(folder)
    assert [p.relative_to(folder).as_posix() for p in source.files] == [
        '0.png', '1.png', '2.png', 'nested/a.JPG']
    assert source.describe() == f'4 images from {folder}'


def test_batches_are_what_the_predictor_feeds_the_network(model: Path, folder: Path) -> None:
    predictor = Predictor(model)
    source = find_source(folder)
    batches = list(calibration_batches(source, predictor_preprocess(model)))
    assert len(batches) == 4
    for batch, file in zip(batches, source.files):
        assert batch.shape == (1, 3, mf.HEIGHT, mf.WIDTH) and batch.dtype == np.float32
        assert batch.flags.c_contiguous
        np.testing.assert_array_equal(batch, predictor.preprocess(read_rgb(file)))


def test_batches_are_normalised_as_the_card_says(model: Path, tmp_path: Path) -> None:
    colour = np.array([200, 100, 50], np.uint8)
    write_png(tmp_path / 'flat.png', np.broadcast_to(colour, (*IMAGE_SIZE, 3)).copy())
    batch = next(calibration_batches(find_source(tmp_path), predictor_preprocess(model)))
    spec = read_card(model).input
    expected = (colour / 255.0 - np.array(spec.mean)) / np.array(spec.std)  # RGB order
    np.testing.assert_allclose(batch[0, :, 0, 0], expected, rtol=1e-5)
    assert np.ptp(batch, axis=(2, 3)).max() == 0  # flat image, flat tensor


def test_many_images_are_spread_evenly() -> None:
    items = [Path(f'{i:03d}.png') for i in range(10)]
    assert spread(items, 4) == [items[0], items[3], items[6], items[9]]
    assert spread(items, 20) == items


def test_the_limit_applies_to_folders(folder: Path) -> None:
    assert len(find_source(folder, limit=2).files) == 2


@pytest.mark.parametrize('name, message', [
    ('missing', 'calibration data not found'),
    ('', 'no .png/.jpg/.jpeg images in'),
    ('notes.txt', 'neither a folder of images nor'),
])
def test_unusable_sources_are_named(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / 'notes.txt').write_text('not an image')
    with pytest.raises(CalibrationError, match=message):
        find_source(tmp_path / name)


def test_an_unreadable_image_is_named(tmp_path: Path) -> None:
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG but not really')
    with pytest.raises(CalibrationError, match='broken.png: cannot be read as an image'):
        list(source_images(find_source(tmp_path)))


def test_the_digest_follows_the_image_contents(folder: Path) -> None:
    before = find_source(folder).digest()
    assert find_source(folder).digest() == before
    write_png(folder / '1.png', random_rgb(99))
    assert find_source(folder).digest() != before


def test_calibration_cache_is_per_model_content(tmp_path: Path) -> None:
    path = calibration_cache_path(tmp_path, Path('/m/model.onnx'), 'abcdef0123456789' * 4)
    assert path == tmp_path / 'model.abcdef012345.calib'


def test_a_rosbag_gives_the_images_of_its_topic(model: Path, tmp_path: Path) -> None:
    bag_writer = pytest.importorskip('mtdepth_ros.evaluation.bag_writer')
    from mtdepth_ros.conversions.images import array_to_image

    frames = [random_rgb(SEED + i) for i in range(3)]
    with bag_writer.OutputBag(tmp_path / 'bag') as bag:
        for i, rgb in enumerate(frames):
            stamp = (i + 1) * 100_000_000
            header = bag_writer.header(stamp, 'cam')
            bag.write('/cam/image', array_to_image(rgb, 'rgb8', header), stamp)
    source = find_source(tmp_path / 'bag', topic='/cam/image')
    assert source.is_bag
    images = list(source_images(source))
    assert len(images) == 3
    np.testing.assert_array_equal(images[1], frames[1])
    batches = list(calibration_batches(source, predictor_preprocess(model)))
    assert [b.shape for b in batches] == [(1, 3, mf.HEIGHT, mf.WIDTH)] * 3
