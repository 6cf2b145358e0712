"""``make demo`` end to end at a reduced size: generated bag, real node, live scoring, panels.

The tiny test model stands in for the bundled one (its outputs are known, and
the test must not depend on a trained model's quality); everything else is
what ``make demo`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import model_fixtures as mf
import onnx
import pytest

from mtdepth_ros.inference.card import ClassSpec
from mtdepth_ros.inference.model_file import embed_card
from training.data.classes import ROAD
from training.data.synth import SCENES_VERSION

REPO = Path(__file__).resolve().parents[1]
FRAMES = 4
WIDTH, HEIGHT = 320, 96
TRAIN_MEAN_M = 12.0


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    folder = tmp_path_factory.mktemp('demo')
    # The generator labels road scenes with Cityscapes train ids: the model's
    # classes must be those for segmentation to be scored.
    card = replace(mf.make_card(num_classes=len(ROAD.names)),
                   classes=ClassSpec(names=tuple(ROAD.names), palette=tuple(ROAD.palette)),
                   metrics={'train_mean_depth_m': TRAIN_MEAN_M})
    model = mf.make_model(card)
    embed_card(model, card)
    onnx.save(model, str(folder / 'tiny.onnx'))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, '-m', 'demo', '--frames', str(FRAMES), '--width', str(WIDTH),
         '--height', str(HEIGHT), '--rate', '0.5', '--model', str(folder / 'tiny.onnx'),
         '--data', str(folder / 'data'), '--out', str(folder / 'out')],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return run, folder / 'out'


def test_demo_exits_cleanly_and_prints_the_summary(demo_run) -> None:
    run, out = demo_run
    assert run.returncode == 0, run.stdout + run.stderr
    for label in ('frames      in 4', 'latency', 'rate        in', 'depth       SILog',
                  'trivial     SILog',
                  'segmentation mIoU', f'outputs     {out}/'):
        assert label in run.stdout, f'{label!r} missing from:\n{run.stdout}'
    assert (out / 'summary.txt').read_text().strip() == run.stdout.split('...\n')[-1].strip()


def test_demo_writes_report_panels_and_predictions_bag(demo_run) -> None:
    run, out = demo_run
    summary = json.loads((out / 'summary.json').read_text())
    answered = summary['live']['answered_images']
    assert 1 <= answered <= FRAMES
    assert len(summary['panels']) == answered
    panel = cv2.imread(summary['panels'][0])
    assert panel is not None and panel.shape[0] > 2 * mf.HEIGHT  # two rows of tiles
    for name in ('report.html', 'report.md', 'metrics.json', 'frames.csv', 'node.log'):
        assert (out / 'report' / name).is_file(), name
    assert (out / 'report' / 'predictions' / 'metadata.yaml').is_file()


def test_trivial_baseline_scores_the_constant_on_the_same_frames(demo_run) -> None:
    run, out = demo_run
    summary = json.loads((out / 'summary.json').read_text())
    trivial, model = summary['trivial_depth'], summary['depth']
    assert summary['train_mean_depth_m'] == TRAIN_MEAN_M
    assert set(trivial) == set(model)
    # A constant has no scale-invariant structure to get right: SILog is the
    # spread of log ground truth, positive; and it is not the model's number.
    assert trivial['silog'] > 0 and trivial['silog'] != pytest.approx(model['silog'])


def test_a_demo_bag_of_other_scenes_is_not_reused(tmp_path: Path) -> None:
    """The bag's folder names what decides its frames, the generator's scenes version too:
    after a generator change the demo renders its frames again instead of reusing old ones."""
    from demo.__main__ import bag_path  # noqa: PLC0415

    args = argparse.Namespace(data=tmp_path, seed=2024, frames=30, width=None, height=None)
    assert bag_path(args) == tmp_path / f'road_seed2024_30f_scenes{SCENES_VERSION}'
    sized = argparse.Namespace(data=tmp_path, seed=2024, frames=30, width=640, height=193)
    assert bag_path(sized).name == f'road_seed2024_30f_640x193_scenes{SCENES_VERSION}'
