"""Loss terms, weightings and the composition contract, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from mtdepth_ros.inference.depth_coding import MULTIDEPTH_KITTI, DepthCoding
from training.losses import (
    TOTAL,
    CompositeLoss,
    SparseCrossEntropy,
    SparseMSE,
    build_weighting,
    select_samples,
)
from training.losses.targets import decode_depth, depth_to_intervals, encode_depth


def depth_batch(prediction: list[list[float]], target: list[list[float]],
                valid: list[list[bool]]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    outputs = {'depth': torch.tensor([[prediction]], requires_grad=True)}  # (1, 1, H, W)
    batch = {'depth_log': torch.tensor([[target]]), 'depth_valid': torch.tensor([[valid]]),
             'has_depth': torch.tensor([True])}
    return outputs, batch


def test_sparse_mse_is_sum_over_valid_divided_by_valid_count() -> None:
    outputs, batch = depth_batch([[1.0, 2.0], [3.0, 4.0]], [[0.0, 9.0], [5.0, 4.0]],
                                 [[True, False], [True, True]])
    # (1 - 0)^2 + (3 - 5)^2 + (4 - 4)^2 = 5 over 3 valid pixels; the invalid 9 is ignored.
    loss = SparseMSE()(outputs, batch)
    assert loss is not None and loss.item() == pytest.approx(5.0 / 3.0)


def test_sparse_mse_without_valid_pixels_gives_no_loss() -> None:
    outputs, batch = depth_batch([[1.0]], [[0.0]], [[False]])
    assert SparseMSE()(outputs, batch) is None


def test_sparse_cross_entropy_skips_ignored_pixels() -> None:
    logits = torch.tensor([[[[2.0, 0.0, 5.0]], [[0.0, 1.0, -5.0]]]])  # (1, 2 classes, 1, 3)
    labels = torch.tensor([[[0, 1, IGNORE_INDEX]]])
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1))  # pixel 0, class 0
                - math.log(math.exp(1) / (1 + math.exp(1)))) / 2  # pixel 1, class 1
    loss = SparseCrossEntropy('segmentation', target='labels')({'segmentation': logits},
                                                               {'labels': labels})
    assert loss is not None and loss.item() == pytest.approx(expected, rel=1e-6)


def test_sparse_cross_entropy_with_every_pixel_ignored_gives_no_loss() -> None:
    term = SparseCrossEntropy('intervals')
    labels = torch.full((1, 1, 2), IGNORE_INDEX)
    assert term({'intervals': torch.zeros(1, 4, 1, 2)}, {'intervals': labels}) is None


def test_interval_labels_are_supervised_by_depth_and_classes_by_labels() -> None:
    assert SparseCrossEntropy('intervals').supervision == 'has_depth'
    assert SparseCrossEntropy('segmentation', target='labels').supervision == 'has_labels'


LOSSES = {'depth': torch.tensor(2.0), 'intervals': torch.tensor(3.0)}
KINDS = {'depth': 'regression', 'intervals': 'classification'}


def test_equal_weighting_sums_losses() -> None:
    assert build_weighting('equal', KINDS)(LOSSES).item() == pytest.approx(5.0)


def test_fixed_weighting_uses_config_weights_and_defaults_to_one() -> None:
    weighting = build_weighting('fixed', KINDS, {'intervals': 0.25})
    assert weighting(LOSSES).item() == pytest.approx(2.0 + 0.25 * 3.0)


def test_uncertainty_weighting_code_form_by_hand() -> None:
    # 0.5 exp(-s) L_reg + 0.5 s  +  exp(-s) L_cls + 0.5 s  at s = 2
    weighting = build_weighting('uncertainty', KINDS, uncertainty_init=2.0)
    expected = 0.5 * math.exp(-2) * 2 + 1.0 + math.exp(-2) * 3 + 1.0
    assert weighting(LOSSES).item() == pytest.approx(expected, rel=1e-6)


def test_uncertainty_weighting_text_form_by_hand() -> None:
    # 0.5 exp(-s^2) L_reg + 0.5 s^2  +  exp(-s^2) L_cls + 0.5 s^2  at s = 2
    weighting = build_weighting('uncertainty_text', KINDS, uncertainty_init=2.0)
    expected = 0.5 * math.exp(-4) * 2 + 2.0 + math.exp(-4) * 3 + 2.0
    assert weighting(LOSSES).item() == pytest.approx(expected, rel=1e-6)


def test_uncertainty_starts_at_s_equal_one_and_learns_s() -> None:
    weighting = build_weighting('uncertainty', KINDS)
    s = weighting.log_variance['depth']
    assert s.item() == 1.0
    weighting(LOSSES).backward()
    # d/ds (0.5 exp(-s) L + 0.5 s) = -0.5 exp(-s) L + 0.5, L = 2
    assert s.grad is not None and s.grad.item() == pytest.approx(-math.exp(-1) + 0.5, rel=1e-6)


@pytest.mark.parametrize('weighting, weights, message', [
    ('softmax', None, 'unknown loss weighting'),
    ('fixed', {'normals': 1.0}, 'does not supervise'),
    ('equal', {'depth': 2.0}, 'takes no weights'),
])
def test_bad_weighting_config_is_refused(weighting: str, weights: dict[str, float] | None,
                                         message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_weighting(weighting, KINDS, weights)


def two_head_loss(weighting: str = 'equal') -> CompositeLoss:
    return CompositeLoss({'depth': SparseMSE(), 'segmentation':
                          SparseCrossEntropy('segmentation', target='labels')}, weighting=weighting)


def mixed_batch(has_depth: list[bool], has_labels: list[bool]) -> dict[str, torch.Tensor]:
    n = len(has_depth)
    generator = torch.Generator().manual_seed(0)
    return {'depth_log': torch.rand(n, 1, 2, 2, generator=generator),
            'depth_valid': torch.ones(n, 1, 2, 2, dtype=torch.bool),
            'labels': torch.randint(0, 3, (n, 2, 2), generator=generator),
            'has_depth': torch.tensor(has_depth), 'has_labels': torch.tensor(has_labels)}


def head_outputs(n: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {'depth': torch.rand(n, 1, 2, 2, generator=generator).requires_grad_(),
            'segmentation': torch.randn(n, 3, 2, 2, generator=generator).requires_grad_()}


def test_composite_returns_each_head_and_total() -> None:
    losses = two_head_loss()(head_outputs(2), mixed_batch([True, True], [True, True]))
    assert set(losses) == {'depth', 'segmentation', TOTAL}
    assert losses[TOTAL].item() == pytest.approx(
        losses['depth'].item() + losses['segmentation'].item())


def test_composite_refuses_outputs_missing_a_supervised_head() -> None:
    outputs = head_outputs(1)
    del outputs['segmentation']
    with pytest.raises(KeyError, match='missing'):
        two_head_loss()(outputs, mixed_batch([True], [True]))


def test_depth_only_batch_gives_the_label_head_no_loss_and_no_gradient() -> None:
    outputs = head_outputs(2)
    losses = two_head_loss('uncertainty')(outputs, mixed_batch([True, True], [False, False]))
    assert 'segmentation' not in losses
    losses[TOTAL].backward()
    assert outputs['segmentation'].grad is None
    assert outputs['depth'].grad is not None


def test_partly_supervised_batch_uses_only_supervised_samples() -> None:
    outputs, batch = head_outputs(2), mixed_batch([True, False], [True, True])
    losses = two_head_loss()(outputs, batch)
    alone = SparseMSE()({'depth': outputs['depth'][:1]},
                        {k: v[:1] for k, v in batch.items()})
    assert alone is not None and losses['depth'].item() == pytest.approx(alone.item())
    losses[TOTAL].backward()
    assert outputs['depth'].grad is not None and not outputs['depth'].grad[1].any()


def test_unsupervised_batch_has_a_constant_total() -> None:
    losses = two_head_loss()(head_outputs(1), mixed_batch([False], [False]))
    assert set(losses) == {TOTAL} and not losses[TOTAL].requires_grad


def test_select_samples_returns_none_when_no_sample_is_supervised() -> None:
    assert select_samples(head_outputs(2), mixed_batch([False, False], [True, True]),
                          'has_depth') is None


def test_depth_targets_match_the_numpy_depth_coding() -> None:
    coding = DepthCoding(d_min=2.0, d_max=125.0, num_intervals=32)
    depth = np.array([[0.0, 1.0, 2.0, 2.5, 10.0], [40.3, 80.0, 124.9, 125.0, 300.0]],
                     dtype=np.float32)
    torch_depth = torch.from_numpy(depth)[None, None]
    coded = encode_depth(torch_depth, coding)[0, 0].numpy()
    expected = np.nan_to_num(coding.encode(depth), nan=0.0)
    np.testing.assert_allclose(coded, expected, atol=1e-6)
    labels = depth_to_intervals(torch_depth, coding)[0].numpy()
    np.testing.assert_array_equal(labels, coding.depth_to_intervals(depth))


def test_decode_inverts_encode_in_range() -> None:
    depth = torch.tensor([2.0, 5.0, 50.0, 125.0])
    decoded = decode_depth(encode_depth(depth, MULTIDEPTH_KITTI), MULTIDEPTH_KITTI)
    torch.testing.assert_close(decoded, depth, rtol=1e-5, atol=1e-4)
