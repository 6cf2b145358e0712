"""texture-probe: a model blind to the image does not move; one that reads brightness moves
only where the pattern lies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_fixtures import write_model
from test_data_trees import kitti_tree

from mtdepth_ros.inference.predictor import Predictor
from training.data.base import RawSample
from training.texture_probe import main, texture_shifts

K = np.array([[40.0, 0.0, 32.0], [0.0, 40.0, 24.0], [0.0, 0.0, 1.0]])


def test_a_model_blind_to_the_image_does_not_move(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    model = write_model(tmp_path / 'tiny.onnx')  # depth by the row alone
    out = tmp_path / 'probe.json'
    assert main(['--kitti', str(kitti_tree()), '--split', 'val',
                 '--model', str(model), '--classes', 'building', 'vegetation',
                 '--json', str(out)]) == 0
    rows = json.loads(out.read_text())['classes']
    assert rows and all(r['median_log2'] == 0 and r['mean_log2'] == 0 for r in rows)
    textured = [r['textured'] for r in rows]
    assert textured == sorted(textured, reverse=True)  # the textured classes first
    assert {r['class'] for r in rows if r['textured']} <= {'building', 'vegetation'}
    assert '| class | textured |' in capsys.readouterr().out


def test_a_model_reading_brightness_moves_the_textured_class_alone(tmp_path: Path) -> None:
    predictor = Predictor(write_model(tmp_path / 'echo.onnx', echo=True, height=48, width=64))
    labels = np.zeros((48, 64), np.uint8)  # class 0 (road) on the right: the control
    labels[:, :32] = 2  # class 2 (building) on the left: textured
    bright = RawSample(np.full((48, 64, 3), 200, np.uint8), K.copy(), None, labels)
    shifts = texture_shifts(predictor, [bright, bright], ['road', 'sidewalk', 'building'], [2],
                            amplitude=0.5, min_pixels=10)
    by_name = {s.name: s for s in shifts}
    assert [s.name for s in shifts] == ['building', 'road']
    assert by_name['building'].textured and len(by_name['building'].shifts) == 2
    assert all(abs(v) > 0.01 for v in by_name['building'].shifts)
    assert by_name['road'].shifts == (0.0, 0.0)


def test_sharpening_moves_a_detail_reading_model_where_the_mask_lies(tmp_path: Path) -> None:
    # The echo model's depth follows brightness: an unsharp mask on the building's edges
    # moves it, the flat road (no detail to sharpen) stays.
    predictor = Predictor(write_model(tmp_path / 'echo.onnx', echo=True, height=48, width=64))
    labels = np.zeros((48, 64), np.uint8)
    labels[:, :32] = 2
    image = np.full((48, 64, 3), 200, np.uint8)  # bright: the echo's depth is positive
    image[:, :32] = np.where(np.arange(32) % 4 == 0, 230, 170)[None, :, None]  # thin lines
    striped = RawSample(image, K.copy(), None, labels)
    shifts = texture_shifts(predictor, [striped], ['road', 'sidewalk', 'building'], [2],
                            min_pixels=10, change='sharpen')
    by_name = {s.name: s for s in shifts}
    assert abs(by_name['building'].shifts[0]) > 0.001 and by_name['road'].shifts == (0.0,)
    with pytest.raises(ValueError, match='change'):
        texture_shifts(predictor, [striped], ['road', 'sidewalk', 'building'], [2],
                       change='paint')


def test_the_sharpen_table_says_what_was_laid(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    model = write_model(tmp_path / 'tiny.onnx')
    out = tmp_path / 'probe.json'
    assert main(['--kitti', str(kitti_tree()), '--split', 'val',
                 '--model', str(model), '--change', 'sharpen', '--json', str(out)]) == 0
    assert json.loads(out.read_text())['change'] == 'sharpen'
    assert '| class | sharpened |' in capsys.readouterr().out


def test_unlabelled_frames_and_unknown_classes_are_refused(tmp_path: Path) -> None:
    predictor = Predictor(write_model(tmp_path / 'tiny.onnx'))
    plain = RawSample(np.zeros((48, 64, 3), np.uint8), K.copy(), None, None)
    with pytest.raises(ValueError, match='labelled'):
        texture_shifts(predictor, [plain], ['road'], [0])
    with pytest.raises(SystemExit, match='not classes'):
        main(['--kitti', str(kitti_tree()), '--split', 'val',
              '--model', str(tmp_path / 'tiny.onnx'), '--classes', 'castle'])
