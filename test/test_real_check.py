"""real-check: KITTI's object and depth-selection layouts scored through mtdepth-eval.

The "real" frames here are generated ones laid out as KITTI's object benchmark
ships them (per-frame calibration files with P2, R0_rect, Tr_velo_to_cam), so
the test needs no KITTI data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from model_fixtures import write_model
from test_data_trees import KITTI_SIZE, kitti_tree

from mtdepth_ros.inference.model_file import read_card
from training.data.io import read_depth_png
from training.data.kitti import KittiDataset
from training.data.kitti_files import FrameId, KittiCalibration, read_object_calibration
from training.data.texture import PROBE_CLASSES
from training.real_check import (blurred_frames, kitti_frames, main, textured_frames,
                                 velodyne_frames)

FRAME = FrameId('2000_01_01', '2000_01_01_drive_0001_sync', 1)


def _numbers(values: np.ndarray) -> str:
    return ' '.join(f'{v:.12e}' for v in np.asarray(values).ravel())


def _object_layout(tree: Path, out: Path) -> Path:
    """One generated frame in the object benchmark's layout, its depth selection beside it."""
    calibration = KittiCalibration.read(tree / 'raw' / FRAME.date)
    for folder in ('image_2', 'velodyne', 'calib'):
        (out / 'object' / folder).mkdir(parents=True)
    shutil.copy(FRAME.image(tree / 'raw'), out / 'object' / 'image_2' / 'frame.png')
    shutil.copy(FRAME.velodyne(tree / 'raw'), out / 'object' / 'velodyne' / 'frame.bin')
    (out / 'object' / 'calib' / 'frame.txt').write_text(
        f'P2: {_numbers(calibration.p_rect)}\nR0_rect: {_numbers(calibration.r_rect)}\n'
        f'Tr_velo_to_cam: {_numbers(calibration.velo_to_cam)}\n')
    (out / 'depth').symlink_to(tree / 'depth')
    return out


def test_object_calibration_projects_as_the_raw_calibration_files_do(tmp_path: Path) -> None:
    tree = kitti_tree()
    folder = _object_layout(tree, tmp_path / 'real')
    raw = KittiCalibration.read(tree / 'raw' / FRAME.date)
    read = read_object_calibration(folder / 'object' / 'calib' / 'frame.txt')
    np.testing.assert_allclose(read.velo_to_image(), raw.velo_to_image(), rtol=1e-9)
    frame = next(velodyne_frames(folder))
    written = read_depth_png(FRAME.depth(tree / 'depth', 'train', 'velodyne_raw'))
    assert frame.image.shape[:2] == written.shape == (KITTI_SIZE[1], KITTI_SIZE[0])
    assert np.array_equal(np.isfinite(frame.depth), written > 0)
    assert np.nanmax(np.abs(frame.depth - np.where(written > 0, written, np.nan))) <= 0.5 / 256 + 1e-6


def test_every_set_is_scored_with_the_model_and_the_constant(tmp_path: Path) -> None:
    tree = kitti_tree()
    folder = _object_layout(tree, tmp_path / 'real')
    model = write_model(tmp_path / 'tiny.onnx')
    out = tmp_path / 'out'
    assert main(['--frames', str(folder), '--kitti', str(tree), '--split', 'val',
                 '--model', str(model), '--out', str(out), '--constant', '12',
                 '--record', '2 test frames']) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['constant_m'] == 12 and summary['protocol'] == 'kitti_eigen'
    sets = summary['sets']
    assert set(sets) == {'velodyne', 'annotated', 'kitti'}
    for result in sets.values():
        assert result['frames'] == result['depth_scored'] == 1
        for predictor in ('model', 'constant'):
            assert 0 < result[predictor]['abs_rel'] < 10 and 0 <= result[predictor]['d1'] <= 1
    assert 'miou' not in sets['velodyne']
    # The generated tree's labels reach the scorer (the tiny model knows 3 classes, the
    # tree 19, so they are refused there; the bundled model scores them).
    assert 'labels not scored' in (out / 'kitti' / 'report.md').read_text()
    assert (out / 'velodyne' / 'report.html').is_file()
    assert not (out / 'bags').exists()  # the bags were intermediates
    metrics = read_card(model).metrics  # --record
    assert metrics['real_kitti_source'] == '2 test frames'
    assert metrics['real_kitti_all_frames'] == 2 and metrics['real_kitti_velodyne_frames'] == 1
    assert metrics['real_kitti_velodyne_abs_rel'] == round(sets['velodyne']['model']['abs_rel'], 4)
    # and the generated frames', as rendered, with the tree they were read from
    assert metrics['generated_val_source'] == f'{tree}, split val'
    assert metrics['generated_val_frames'] == 1
    assert metrics['generated_val_silog'] == round(sets['kitti']['model']['silog'], 4)


def test_several_folders_are_one_set_per_layout(tmp_path: Path) -> None:
    # The sets kept apart (docs/training.md: three folders of real frames) scored together.
    tree = kitti_tree()
    first = _object_layout(tree, tmp_path / 'first')
    second = _object_layout(tree, tmp_path / 'second')
    out = tmp_path / 'out'
    assert main(['--frames', str(first), str(second), '--model',
                 str(write_model(tmp_path / 'tiny.onnx')), '--out', str(out)]) == 0
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['frames'] == f'{first} {second}'
    # generated frames, not the documented real ones: each folder says so
    identities = summary['frames_identity']
    assert [i['folder'] for i in identities] == [str(first), str(second)]
    assert all(i['set'] is None and i['unlisted'] for i in identities)
    assert {name: s['depth_scored'] for name, s in summary['sets'].items()} == \
        {'velodyne': 2, 'annotated': 2}
    # the same frame twice: the two rows of each set read alike
    rows = (out / 'velodyne' / 'frames.csv').read_text().splitlines()
    assert len(rows) == 3 and rows[1].split(',')[6:10] == rows[2].split(',')[6:10]


def test_record_needs_the_model_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Without --model the installed copy of the bundled model would be rewritten.
    assert main(['--frames', str(tmp_path), '--out', str(tmp_path / 'out'),
                 '--record', 'frames']) == 2
    assert '--record rewrites the card of the model file it scores' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()


def test_textured_frames_differ_on_the_probe_classes_alone_and_repeat() -> None:
    tree = kitti_tree()
    plain = list(kitti_frames(tree, 'train'))
    names = list(KittiDataset(tree, 'train').classes.names)
    ids = [names.index(n) for n in PROBE_CLASSES]
    first, second = (list(textured_frames(iter(plain), ids)) for _ in range(2))
    changed = 0
    for before, after, again in zip(plain, first, second, strict=True):
        assert np.array_equal(after.image, again.image)  # the same pattern for every model
        assert after.depth is before.depth and after.labels is before.labels
        assert before.labels is not None
        outside = ~np.isin(before.labels, ids)
        assert np.array_equal(after.image[outside], before.image[outside])
        changed += int(np.count_nonzero(after.image[~outside] != before.image[~outside]))
    assert changed > 0


def test_textured_scores_the_tree_twice_and_their_mean(tmp_path: Path) -> None:
    def scored(model: Path) -> dict[str, Any]:
        out = tmp_path / model.stem
        assert main(['--kitti', str(kitti_tree()), '--split', 'val', '--textured',
                     '--model', str(model), '--out', str(out), '--constant', '12',
                     '--keep-bags']) == 0
        return dict(json.loads((out / 'summary.json').read_text()))

    blind = scored(write_model(tmp_path / 'blind.onnx'))  # depth by the row alone
    assert blind['sets']['kitti_textured']['model'] == blind['sets']['kitti']['model']
    kept = sorted(p.name for p in (tmp_path / 'blind' / 'bags').iterdir())  # --keep-bags
    assert kept == ['kitti', 'kitti_textured']
    # depth from brightness, 0-40 m
    echo = scored(write_model(tmp_path / 'echo.onnx', echo=True, std=1 / 40))
    plain, textured = echo['sets']['kitti'], echo['sets']['kitti_textured']
    assert textured['frames'] == plain['frames'] == 1
    assert textured['model']['abs_rel'] != plain['model']['abs_rel']
    assert echo['kitti_mean']['abs_rel'] == pytest.approx(
        (plain['model']['abs_rel'] + textured['model']['abs_rel']) / 2)
    assert main(['--frames', str(tmp_path), '--textured', '--out',
                 str(tmp_path / 'none')]) == 2


def test_blur_is_a_diagnosis_of_the_image_alone_and_never_recorded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = kitti_tree()
    plain = list(kitti_frames(tree, 'val'))
    for before, after in zip(plain, blurred_frames(iter(plain), 2.0), strict=True):
        assert after.depth is before.depth and after.labels is before.labels
        assert after.image.shape == before.image.shape
        assert after.image.astype(float).std() < before.image.astype(float).std()
    echo = write_model(tmp_path / 'echo.onnx', echo=True, std=1 / 40)  # depth from brightness
    summaries = []
    for sigma in ('0', '3'):
        out = tmp_path / f'blur{sigma}'
        assert main(['--kitti', str(tree), '--split', 'val', '--blur', sigma,
                     '--model', str(echo), '--out', str(out), '--constant', '12']) == 0
        summaries.append(json.loads((out / 'summary.json').read_text()))
    assert [s['blur_sigma_px'] for s in summaries] == [0.0, 3.0]
    assert summaries[0]['sets']['kitti']['model'] != summaries[1]['sets']['kitti']['model']
    assert summaries[0]['sets']['kitti']['constant'] == summaries[1]['sets']['kitti']['constant']
    assert main(['--kitti', str(tree), '--blur', '2', '--model', str(echo),
                 '--out', str(tmp_path / 'rec'), '--record', 'frames']) == 2
    assert 'not with --record' in capsys.readouterr().err


def test_flip_and_ground_contact_score_a_setting_never_recorded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, model = kitti_tree(), write_model(tmp_path / 'tiny.onnx')
    out = tmp_path / 'flip'
    assert main(['--kitti', str(tree), '--split', 'val', '--flip',
                 '--model', str(model), '--out', str(out), '--constant', '12']) == 0
    assert json.loads((out / 'summary.json').read_text())['flip'] is True
    assert 'flip test-time augmentation: on' in (out / 'kitti' / 'report.md').read_text()
    assert main(['--kitti', str(tree), '--flip', '--model', str(model),
                 '--out', str(tmp_path / 'rec'), '--record', 'frames']) == 2
    assert "the card records the model's own figures" in capsys.readouterr().err
    assert main(['--kitti', str(tree), '--ground-contact', '--model', str(model),
                 '--out', str(tmp_path / 'rec'), '--record', 'frames']) == 2
    assert 'not with --record' in capsys.readouterr().err


def test_ground_contact_passes_through_to_the_scoring(tmp_path: Path) -> None:
    tree = kitti_tree()
    model = write_model(tmp_path / 'standing.onnx', standing=True)
    summaries = {}
    for flag in ([], ['--ground-contact']):
        out = tmp_path / ('on' if flag else 'off')
        assert main(['--kitti', str(tree), '--split', 'val', *flag,
                     '--model', str(model), '--out', str(out), '--constant', '12']) == 0
        summaries[bool(flag)] = json.loads((out / 'summary.json').read_text())
        report = (out / 'kitti' / 'report.md').read_text()
        assert ('ground-contact prior on' in report) is bool(flag)
    assert summaries[True]['ground_contact'] is True
    # the car band stands on road: its depth moves, so the figures do
    assert summaries[True]['sets']['kitti']['model'] != summaries[False]['sets']['kitti']['model']
