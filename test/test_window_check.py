"""window-check: a network that looks at each pixel's neighbourhood reads the same in windows
and on the whole input; one that pools over the whole image does not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data_trees import KITTI_SIZE, kitti_tree
from torch import Tensor

from training.nets import build_model
from training.window_check import compare, main, window_lefts, windowed

WINDOW = (16, 24)


def _local(image: Tensor) -> Tensor:
    """Depth from a pixel's 3 x 3 neighbourhood alone (edge pixels replicate)."""
    padded = torch.nn.functional.pad(image.mean(1, keepdim=True), (1, 1, 1, 1), mode='replicate')
    return 5.0 + 2.0 * torch.nn.functional.avg_pool2d(padded, 3, stride=1)


def _pooled(image: Tensor) -> Tensor:
    """The local depth times a gain from the whole image's mean (a global context)."""
    return _local(image) * torch.exp(image.mean())


def _frames(count: int = 3) -> list[tuple[Tensor, np.ndarray]]:
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(count):
        image = torch.from_numpy(rng.normal(0.0, 1.0, (3, 24, 48)).astype(np.float32))
        image[:, :, :24] += 1.0  # the left half bright: its windows see another mean
        truth = rng.uniform(3.0, 30.0, (24, 48))
        truth[rng.random((24, 48)) < 0.5] = 0.0  # sparse, as LiDAR
        frames.append((image, truth))
    return frames


def test_windows_cover_the_width_from_edge_to_edge() -> None:
    assert window_lefts(640, 352) == [0, 288]
    assert window_lefts(48, 24) == [0, 24]
    assert window_lefts(50, 24) == [0, 13, 26]
    assert window_lefts(24, 24) == [0]
    with pytest.raises(ValueError, match='does not fit'):
        window_lefts(20, 24)


def test_windows_lie_along_the_bottom_and_average_their_overlap() -> None:
    image = torch.zeros(1, 3, 24, 50)
    depth, covered = windowed(lambda x: torch.ones(1, 1, *x.shape[-2:]), image, WINDOW)
    assert not covered[:8].any() and covered[8:].all()
    assert torch.isnan(depth[:8]).all() and torch.equal(depth[8:], torch.ones(16, 50))


def test_a_local_network_reads_the_same_both_ways() -> None:
    whole, windows = compare(_local, _frames(), WINDOW)
    assert whole.pixels == windows.pixels > 0 and whole.frames == 3
    # a 3 x 3 neighbourhood differs only on the windows' inner edges (replicated there)
    assert windows.median_log_ratio == pytest.approx(whole.median_log_ratio, abs=0.01)
    assert windows.abs_rel == pytest.approx(whole.abs_rel, abs=0.01)


def test_a_network_pooling_over_the_image_reads_windows_otherwise() -> None:
    whole, windows = compare(_pooled, _frames(), WINDOW)
    # the bright half's windows read farther, the dark half's nearer, than the whole
    assert abs(windows.median_log_ratio - whole.median_log_ratio) > 0.05
    assert abs(windows.abs_rel - whole.abs_rel) > 0.05


def test_the_command_reads_a_checkpoint_on_a_generated_tree(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    net_args = {'decoder_width': 16, 'head_width': 8, 'encoder_args': {'width_mult': 0.25}}
    net = build_model('default', **net_args)
    checkpoint = tmp_path / 'best.ckpt'
    torch.save({'hyper_parameters': {'net': 'default', 'net_args': net_args},
                'state_dict': {f'net.{k}': v for k, v in net.state_dict().items()},
                'global_step': 0}, checkpoint)
    out = tmp_path / 'window.json'
    width, height = KITTI_SIZE
    assert main([str(checkpoint), '--kitti', str(kitti_tree()), '--split', 'val',
                 '--resize', str(height), str(width), '--window', '32', '96',
                 '--json', str(out)]) == 0
    readings = json.loads(out.read_text())['readings']
    assert [r['name'] for r in readings] == ['whole', 'windows']
    assert all(r['frames'] >= 1 and r['pixels'] > 0 and np.isfinite(r['abs_rel']) for r in readings)
    assert '| whole |' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='does not fit'):
        main([str(checkpoint), '--kitti', str(kitti_tree()), '--split', 'val',
              '--resize', str(height), str(width), '--window', '64', '96'])
