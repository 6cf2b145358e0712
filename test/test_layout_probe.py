"""layout-probe: depth from the segmentation alone, on the project's own generated frames."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fixtures import CLASS_NAMES, write_model
from test_data_trees import kitti_tree
from training_helpers import PYTHON, REPO, training_env

from mtdepth_ros.inference.backends.engine_cache import file_sha256
from training import layout_probe
from training.data.random_convolution import random_convolution
from training.layout_probe import HELD_M, PREDICTORS, layout_depth, load, main, model_ln_depth
from training.layout_train import (
    FALLBACK_SHARE,
    FAR_FACTOR,
    PATCH_COLUMNS,
    PATCH_ROWS,
    PATCHES,
    patch_noise,
    read_far,
    row_fallback,
    state_path,
    train,
)
from training.nets.layout import STRIDE, LayoutNet, network_input

KILL_STEPS, KILL_EVERY = 40, 5  # the kill test's run: long enough to be killed mid-run


def _two_band_data(path: Path, frames: int = 16) -> Path:
    """Class 0 on the top rows at 20 m, class 1 below at 4 m, the boundary row varying."""
    rng = np.random.default_rng(0)
    labels = np.zeros((frames, 12, 16), np.uint8)
    depth = np.full(labels.shape, 20.0, np.float16)
    for k, boundary in enumerate(rng.integers(3, 9, frames)):
        labels[k, boundary:] = 1
        depth[k, boundary:] = 4.0
    np.savez_compressed(path, labels=labels, depth=depth, classes=2)
    return path


def test_network_input_is_one_hot_classes_then_row_and_column() -> None:
    labels = torch.tensor([[[0, 2], [1, 2]]])
    x = network_input(labels, 3)
    assert x.shape == (1, 5, 2, 2)
    assert torch.equal(x[0, :3].argmax(0), labels[0]) and torch.all(x[0, :3].sum(0) == 1)
    assert torch.equal(x[0, 3], torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))  # rows
    assert torch.equal(x[0, 4], torch.tensor([[-1.0, 1.0], [-1.0, 1.0]]))  # columns


def test_the_probe_learns_depth_from_classes_alone(tmp_path: Path) -> None:
    data = _two_band_data(tmp_path / 'bands.npz')
    losses = train(data, tmp_path / 'probe.pt', steps=150, seed=0)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    net = load(tmp_path / 'probe.pt')
    segmentation = np.zeros((12 * STRIDE, 16 * STRIDE), np.uint8)
    segmentation[6 * STRIDE:] = 1
    depth = layout_depth(net, segmentation)
    assert depth.shape == segmentation.shape
    assert np.median(depth[:4 * STRIDE]) == pytest.approx(20.0, rel=0.25)
    assert np.median(depth[-3 * STRIDE:]) == pytest.approx(4.0, rel=0.25)


def test_training_is_deterministic(tmp_path: Path) -> None:
    data = _two_band_data(tmp_path / 'bands.npz')
    first = train(data, tmp_path / 'a.pt', steps=5, seed=3)
    assert train(data, tmp_path / 'b.pt', steps=5, seed=3) == first


def test_prepare_train_and_score_a_generated_tree(tmp_path: Path) -> None:
    tree = kitti_tree()
    model = write_model(tmp_path / 'tiny.onnx')
    data, probe, out = tmp_path / 'data.npz', tmp_path / 'probe.pt', tmp_path / 'scores.json'
    assert main(['prepare', '--tree', str(tree), '--out', str(data), '--model', str(model)]) == 0
    arrays = np.load(data)
    assert arrays['labels'].shape == (9, 24 // STRIDE, 32 // STRIDE)  # every frame of the tree
    assert arrays['depth'].shape == arrays['labels'].shape
    assert int(arrays['classes']) == len(CLASS_NAMES)
    assert np.nanmax(arrays['depth'].astype(np.float32)) > 0
    assert main(['train', str(data), '--out', str(probe), '--steps', '3']) == 0
    assert isinstance(load(probe), LayoutNet)
    assert main(['score', str(probe), '--kitti', str(tree), '--split', 'val', '--model', str(model),
                 '--textured', '--out', str(out)]) == 0
    scores = json.loads(out.read_text())
    assert set(scores) == {'kitti', 'kitti_textured'}
    for figures in scores.values():
        assert tuple(figures) == PREDICTORS
        assert all(np.isfinite(v) and v >= 0 for by in figures.values() for v in by.values())
    assert main(['score', str(probe), '--kitti', str(tree), '--split', 'val', '--model', str(model),
                 '--shares', '0', '0.5', '1', '0.3', '--out', str(out)]) == 0
    figures = json.loads(out.read_text())['kitti']
    assert tuple(figures) == (*PREDICTORS, 'share 0', 'share 0.5', 'share 1', 'share 0.3')
    for share, same in (('share 0', 'model'), ('share 0.5', 'geometric mean'),
                        ('share 1', 'layout')):  # the ends and the middle of the mix
        for key, value in figures[same].items():
            assert figures[share][key] == pytest.approx(value, rel=1e-4), (share, key)
    assert figures['share 0.3'] != figures['model'] and figures['share 0.3'] != figures['layout']


def test_prepare_refuses_a_tree_without_dense_depth(tmp_path: Path) -> None:
    image = tmp_path / 'tree' / 'raw' / 'd' / 'drive' / 'image_02' / 'data' / '0.png'
    image.parent.mkdir(parents=True)
    image.write_bytes(b'')
    with pytest.raises(SystemExit, match='no image with dense depth'):
        main(['prepare', '--tree', str(tmp_path / 'tree'), '--out', str(tmp_path / 'x.npz'),
              '--model', str(write_model(tmp_path / 'tiny.onnx'))])


def test_score_without_frames_says_so(tmp_path: Path) -> None:
    data = _two_band_data(tmp_path / 'bands.npz')
    train(data, tmp_path / 'probe.pt', steps=1, seed=0)
    with pytest.raises(SystemExit, match='nothing to score'):
        main(['score', str(tmp_path / 'probe.pt'),
              '--model', str(write_model(tmp_path / 't.onnx'))])


def test_patch_noise_paints_rectangles_of_a_class_the_frame_has() -> None:
    labels = torch.arange(4).repeat_interleave(16).view(1, 1, 64).expand(3, 40, 64).clone()
    assert torch.equal(patch_noise(labels, 0.0, np.random.default_rng(0)), labels)
    noisy = patch_noise(labels, 1.0, np.random.default_rng(0))
    assert torch.equal(noisy, patch_noise(labels, 1.0, np.random.default_rng(0)))  # seeded
    changed = noisy != labels
    assert changed.any(dim=(1, 2)).all()  # every frame chosen at share 1
    assert set(noisy.unique().tolist()) <= set(labels.unique().tolist())
    most = (PATCHES[1] - 1) * (PATCH_ROWS[1] - 1) * (PATCH_COLUMNS[1] - 1)
    assert (changed.sum(dim=(1, 2)) <= most).all()  # a few patches, not the frame


def test_prepare_reads_several_trees_and_records_them(tmp_path: Path) -> None:
    tree, data = kitti_tree(), tmp_path / 'data.npz'
    model = write_model(tmp_path / 'tiny.onnx')
    assert main(['prepare', '--tree', str(tree), str(tree), '--out', str(data),
                 '--model', str(model)]) == 0
    arrays = np.load(data)
    assert len(arrays['labels']) == 2 * 9  # every frame of each tree
    assert str(arrays['tree']) == f'{tree} + {tree}'
    assert str(arrays['model_sha256']) == file_sha256(model)


def _biased_model_data(path: Path, frames: int = 16, model: str = 'm',
                       names: tuple[str, str] = ('road', 'car')) -> Path:
    """The two bands, with a model's depth that reads class 1 (below) 1.5x too far."""
    bands = np.load(_two_band_data(path, frames))
    depth = bands['depth'].astype(np.float32)
    given = np.where(bands['labels'] == 1, 1.5 * depth, depth)
    np.savez_compressed(path, labels=bands['labels'], depth=bands['depth'], classes=2,
                        names=np.array(names), model_sha256=model,
                        model_depth=model_ln_depth(given).astype(np.float16))
    return path


def test_a_refiner_starts_as_the_depth_it_is_given() -> None:
    net = LayoutNet(3, (4, 6), depth_input=True).eval()
    labels = torch.randint(0, 3, (2, 6, 8))
    ln_depth = torch.rand(2, 6, 8) * 3
    assert torch.equal(net(labels, ln_depth), ln_depth)
    with pytest.raises(ValueError, match='reads the ln depth'):
        net(labels)
    sure = LayoutNet(3, (4, 6), depth_input=True, confidence_input=True).eval()
    assert torch.equal(sure(labels, ln_depth, torch.rand(2, 6, 8)), ln_depth)
    with pytest.raises(ValueError, match='reads the confidence too'):
        sure(labels, ln_depth)
    with pytest.raises(ValueError, match='only as a refiner'):
        LayoutNet(3, (4, 6), confidence_input=True)


def test_model_ln_depth_holds_the_far_and_the_near() -> None:
    depth = np.array([[np.inf, 0.5, 10.0, 500.0, -np.inf]], np.float32)
    np.testing.assert_allclose(np.exp(model_ln_depth(depth)),
                               [[HELD_M[1], HELD_M[0], 10.0, HELD_M[1], HELD_M[0]]], rtol=1e-5)


def test_the_refiner_learns_the_models_bias_by_class(tmp_path: Path) -> None:
    data = _biased_model_data(tmp_path / 'biased.npz')
    train(data, tmp_path / 'refiner.pt', steps=200, seed=0)
    net = load(tmp_path / 'refiner.pt')
    assert net.depth_input
    segmentation = np.zeros((12 * STRIDE, 16 * STRIDE), np.uint8)
    segmentation[6 * STRIDE:] = 1
    given = np.where(segmentation == 1, 6.0, 20.0).astype(np.float32)  # 4 m read 1.5x far
    given[0, 0] = np.inf  # the far stays far
    refined = layout_depth(net, segmentation, given)
    assert refined.shape == given.shape and refined[0, 0] == np.inf
    assert np.median(refined[-3 * STRIDE:]) == pytest.approx(4.0, rel=0.15)
    assert np.median(refined[STRIDE:4 * STRIDE]) == pytest.approx(20.0, rel=0.15)
    with pytest.raises(ValueError, match="corrects the model's depth"):
        layout_depth(net, segmentation)


def test_row_fallback_draws_standing_regions_at_their_rows_depth() -> None:
    labels = np.zeros((1, 8, 12), np.uint8)  # class 0 ground, class 1 standing
    labels[0, 2:5, 1:3] = 1
    labels[0, 2:5, 8:10] = 1  # two regions of the standing class, a third of their rows
    ln_depth = np.log(np.full((1, 8, 12), 30.0, np.float32))
    ln_depth[labels == 1] = np.log(5.0)
    rng = np.random.default_rng(0)
    assert np.array_equal(row_fallback(labels, ln_depth, 0.0, [1], rng), ln_depth)
    pulled = [row_fallback(labels, ln_depth, 1.0, [1], np.random.default_rng(seed))
              for seed in range(8)]
    assert np.array_equal(pulled[0], row_fallback(labels, ln_depth, 1.0, [1],
                                                  np.random.default_rng(0)))  # seeded
    for out in pulled:
        assert np.array_equal(out[labels == 0], ln_depth[labels == 0])  # ground untouched
        assert np.all(out <= np.log(30.0) + 1e-6) and np.all(out >= np.log(5.0) - 1e-6)
        for region in (np.s_[0, 2:5, 1:3], np.s_[0, 2:5, 8:10]):  # each region as one
            values = out[region]
            assert np.allclose(values, values.flat[0])
            share = (values.flat[0] - np.log(5.0)) / (np.log(30.0) - np.log(5.0))
            low, high = FALLBACK_SHARE
            assert share == pytest.approx(0, abs=1e-6) or low <= share <= high
    moved = [bool(out[0, 3, 2] != ln_depth[0, 3, 2]) for out in pulled]
    assert any(moved) and not all(moved)  # each region by chance


def test_read_far_reads_chosen_regions_farther_by_one_factor_each() -> None:
    labels = np.zeros((1, 8, 12), np.uint8)  # class 0 road, class 1 facade
    labels[0, 1:6, 0:3] = 1
    labels[0, 1:6, 8:12] = 1  # two facades, either side of the road
    ln_depth = np.log(np.linspace(5.0, 40.0, 8 * 12, dtype=np.float32)).reshape(1, 8, 12)
    assert np.array_equal(read_far(labels, ln_depth, 0.0, [1], np.random.default_rng(0)),
                          ln_depth)
    assert np.array_equal(read_far(labels, ln_depth, 1.0, [0], np.random.default_rng(0))[
        labels == 1], ln_depth[labels == 1])  # only the classes given
    farther = [read_far(labels, ln_depth, 1.0, [1], np.random.default_rng(seed))
               for seed in range(8)]
    assert np.array_equal(farther[0], read_far(labels, ln_depth, 1.0, [1],
                                               np.random.default_rng(0)))  # seeded
    low, high = np.log(FAR_FACTOR)
    for out in farther:
        assert np.array_equal(out[labels == 0], ln_depth[labels == 0])  # the road untouched
        for region in (np.s_[0, 1:6, 0:3], np.s_[0, 1:6, 8:12]):  # each region as one
            added = out[region] - ln_depth[region]
            assert np.allclose(added, added.flat[0], atol=1e-5)
            assert added.flat[0] == pytest.approx(0, abs=1e-6) or \
                low - 1e-5 <= added.flat[0] <= high + 1e-5
    moved = [bool(out[0, 3, 1] != ln_depth[0, 3, 1]) for out in farther]
    assert any(moved) and not all(moved)  # each region by chance


def test_train_refuses_a_fallback_without_depth_and_mixed_models(tmp_path: Path) -> None:
    for shares in ({'fallback_share': 0.5}, {'far_share': 0.5}):
        with pytest.raises(SystemExit, match='prepare --with-depth'):
            train(_two_band_data(tmp_path / 'bands.npz'), tmp_path / 'x.pt', steps=1, seed=0,
                  **shares)
    first = _biased_model_data(tmp_path / 'a.npz', model='a')
    with pytest.raises(SystemExit, match="another model_sha256"):
        train([first, _biased_model_data(tmp_path / 'b.npz', model='b')], tmp_path / 'x.pt',
              steps=1, seed=0)
    with pytest.raises(SystemExit, match='prepare all of them --with-depth, or none'):
        train([first, _two_band_data(tmp_path / 'bands.npz')], tmp_path / 'x.pt', steps=1,
              seed=0)
    losses = train([first, _biased_model_data(tmp_path / 'c.npz', model='a')],
                   tmp_path / 'x.pt', steps=2, seed=0, fallback_share=1.0)
    assert len(losses) == 2
    assert torch.load(tmp_path / 'x.pt', weights_only=True)['source']['frames'] == 32
    with pytest.raises(SystemExit, match='--read-far needs the class names .* building'):
        train(first, tmp_path / 'x.pt', steps=1, seed=0, far_share=0.5)  # road and car only
    facades = _biased_model_data(tmp_path / 'd.npz', names=('road', 'building'))
    assert len(train(facades, tmp_path / 'y.pt', steps=2, seed=0, far_share=1.0)) == 2
    assert torch.load(tmp_path / 'y.pt', weights_only=True)['source']['read_far'] == 1.0


def test_prepare_with_depth_train_and_score_a_refiner(tmp_path: Path) -> None:
    tree = kitti_tree()
    model = write_model(tmp_path / 'tiny.onnx')
    data, refiner, out = tmp_path / 'data.npz', tmp_path / 'refiner.pt', tmp_path / 'scores.json'
    assert main(['prepare', '--tree', str(tree), '--out', str(data), '--model', str(model),
                 '--with-depth']) == 0
    arrays = np.load(data)
    assert arrays['model_depth'].shape == arrays['labels'].shape
    assert list(arrays['names']) == list(CLASS_NAMES)
    assert main(['train', str(data), str(data), '--out', str(refiner), '--steps', '3',
                 '--row-fallback', '0.5']) == 0
    saved = torch.load(refiner, weights_only=True)
    assert saved['depth_input'] and saved['source']['row_fallback'] == 0.5
    assert 'read_far' not in saved['source']  # kept only when used, as records before it
    assert saved['source']['frames'] == 2 * 9
    assert load(refiner).depth_input
    assert main(['score', str(refiner), '--kitti', str(tree), '--split', 'val', '--model',
                 str(model), '--out', str(out)]) == 0
    figures = json.loads(out.read_text())['kitti']
    assert tuple(figures) == PREDICTORS
    assert all(np.isfinite(v) and v >= 0 for by in figures.values() for v in by.values())


def test_a_refiner_that_reads_the_models_confidence(tmp_path: Path) -> None:
    tree = kitti_tree()
    model = write_model(tmp_path / 'tiny.onnx')
    data, refiner, out = tmp_path / 'data.npz', tmp_path / 'refiner.pt', tmp_path / 'scores.json'
    with pytest.raises(SystemExit, match='give --with-depth too'):
        main(['prepare', '--tree', str(tree), '--out', str(data), '--model', str(model),
              '--with-confidence'])
    assert main(['prepare', '--tree', str(tree), '--out', str(data), '--model', str(model),
                 '--with-depth', '--with-confidence']) == 0
    arrays = np.load(data)
    confidence = arrays['model_confidence'].astype(np.float32)
    assert confidence.shape == arrays['labels'].shape
    assert 0 <= confidence.min() and confidence.max() <= 1 and confidence.std() > 0
    with pytest.raises(SystemExit, match='--with-depth --with-confidence, all of it'):
        train([data, _biased_model_data(tmp_path / 'b.npz')], tmp_path / 'x.pt', steps=1,
              seed=0)
    assert main(['train', str(data), '--out', str(refiner), '--steps', '3']) == 0
    net = load(refiner)
    assert net.depth_input and net.confidence_input
    labels = np.zeros((STRIDE * 4, STRIDE * 6), np.uint8)
    with pytest.raises(ValueError, match="reads the model's confidence too"):
        layout_depth(net, labels, np.full(labels.shape, 10.0, np.float32))
    assert main(['score', str(refiner), '--kitti', str(tree), '--split', 'val', '--model',
                 str(model), '--out', str(out)]) == 0
    figures = json.loads(out.read_text())['kitti']
    assert all(np.isfinite(v) and v >= 0 for by in figures.values() for v in by.values())


def test_a_killed_training_resumes_to_the_probe_of_a_run_never_stopped(tmp_path: Path) -> None:
    data = _two_band_data(tmp_path / 'bands.npz')
    never_stopped = tmp_path / 'whole.pt'
    train(data, never_stopped, steps=KILL_STEPS, seed=2, save_every=KILL_EVERY)
    assert not state_path(never_stopped).exists(), 'a finished run leaves no state'

    killed = tmp_path / 'killed.pt'
    command = [PYTHON, '-m', 'training', 'layout-probe', 'train', str(data), '--out',
               str(killed), '--steps', str(KILL_STEPS), '--seed', '2', '--save-every',
               str(KILL_EVERY)]
    process = subprocess.Popen(command, cwd=REPO, env=training_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not state_path(killed).exists() and process.poll() is None:
            assert time.monotonic() < deadline, 'no state saved in time'
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    saved_at = torch.load(state_path(killed), weights_only=True)['step']
    assert 0 < saved_at < KILL_STEPS and saved_at % KILL_EVERY == 0

    with pytest.raises(SystemExit, match=r'the state of another run \(differs in seed\)'):
        train(data, killed, steps=KILL_STEPS, seed=3, save_every=KILL_EVERY, resume=True)
    rest = train(data, killed, steps=KILL_STEPS, seed=2, save_every=KILL_EVERY, resume=True)
    assert len(rest) == KILL_STEPS - saved_at, 'resumed from the last save'
    assert not state_path(killed).exists()
    whole, resumed = (torch.load(path, weights_only=True) for path in (never_stopped, killed))
    assert whole['source'] == resumed['source']
    assert whole['state'].keys() == resumed['state'].keys()
    assert all(torch.equal(whole['state'][key], resumed['state'][key]) for key in whole['state'])
    # resumed once more: the probe is trained; nothing is run and nothing written
    assert train(data, killed, steps=KILL_STEPS, seed=2, save_every=KILL_EVERY,
                 resume=True) == []
    with pytest.raises(SystemExit, match='--save-every 0'):
        main(['train', str(data), '--out', str(killed), '--save-every', '0'])


def test_prepare_through_random_convolutions_is_seeded_and_keeps_the_truth(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool, bytes]] = []  # the tiny model's maps do not follow its input:
    # watch the images it is given, whether each was changed and what it became

    def watched(image: np.ndarray, probability: float) -> np.ndarray:
        out = random_convolution(image, probability)
        seen.append((not np.array_equal(out, image), out.tobytes()))
        return out

    monkeypatch.setattr(layout_probe, 'random_convolution', watched)
    tree = kitti_tree()
    model = write_model(tmp_path / 'tiny.onnx')
    flags = ['--tree', str(tree), '--model', str(model), '--with-depth', '--with-confidence']
    plain, twice = tmp_path / 'plain.npz', [tmp_path / 'a.npz', tmp_path / 'b.npz']
    assert main(['prepare', *flags, '--out', str(plain)]) == 0
    for out in twice:
        assert main(['prepare', *flags, '--out', str(out), '--random-convolution', '1']) == 0
    before, first, second = (np.load(path) for path in (plain, *twice))
    assert np.array_equal(first['depth'], before['depth'])  # the truth is the frame's
    assert str(first['tree']).endswith('(random convolution 1)')
    for key in ('labels', 'model_depth', 'model_confidence'):
        assert np.array_equal(first[key], second[key])
    frames = len(first['labels'])
    assert len(seen) == 2 * frames and all(changed for changed, _ in seen)  # every frame
    assert seen[:frames] == seen[frames:]  # seeded: the same images each run
    with pytest.raises(SystemExit, match='a probability'):
        main(['prepare', *flags, '--out', str(plain), '--random-convolution', '1.5'])
