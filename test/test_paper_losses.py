"""The paper models' losses against values computed by hand on tiny tensors."""

import math

import pytest
import torch

from training.losses.attention import depth_aware_loss, focal_loss
from training.losses.gradient import (
    central_gradients, gradient_consistency_loss, gradient_l1_loss, gradient_matching_loss)
from training.losses.scale_invariant import scale_invariant_loss
from training.losses.ssim import ssim_loss
from training.nets.dense_transfer import DenseDepthLoss

IGNORE = 255


def image(rows):
    """(1, 1, H, W) float tensor from nested lists."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def all_valid(x):
    return torch.ones_like(x, dtype=torch.bool)


# -- scale-invariant ------------------------------------------------------------------------

def test_scale_invariant_matches_eigen_formula():
    # d = log(p) - log(t) = [1, 0]: 1/n sum d^2 = 1/2, (sum d)^2 / n^2 = 1/4.
    prediction, target = image([[math.e, 1.0]]), image([[1.0, 1.0]])
    loss = scale_invariant_loss(prediction, target, all_valid(target), lam=0.5)
    assert loss.item() == pytest.approx(0.5 - 0.5 * 0.25)


def test_scale_invariant_ignores_invalid_pixels():
    prediction, target = image([[math.e, 1.0, 50.0]]), image([[1.0, 1.0, 0.0]])
    loss = scale_invariant_loss(prediction, target, target > 0, lam=0.5)
    assert loss.item() == pytest.approx(0.375)


def test_scale_invariant_with_lambda_one_ignores_global_scale():
    target = image([[1.0, 2.0], [3.0, 4.0]])
    loss = scale_invariant_loss(2.5 * target, target, all_valid(target), lam=1.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_scale_invariant_averages_images_with_ground_truth_only():
    prediction = torch.cat([image([[math.e, 1.0]]), image([[7.0, 7.0]])])
    target = torch.cat([image([[1.0, 1.0]]), image([[0.0, 0.0]])])
    loss = scale_invariant_loss(prediction, target, target > 0, lam=0.5)
    assert loss.item() == pytest.approx(0.375)


def test_scale_invariant_without_ground_truth_is_none():
    target = image([[0.0, 0.0]])
    assert scale_invariant_loss(target + 1, target, target > 0) is None


# -- gradient terms -------------------------------------------------------------------------

def test_gradient_l1_sums_mean_x_and_mean_y_differences():
    # dx: (1 - 0), (5 - 2) -> mean 2; dy: (2 - 0), (5 - 1) -> mean 3.
    prediction, target = image([[0.0, 1.0], [2.0, 5.0]]), torch.zeros(1, 1, 2, 2)
    assert gradient_l1_loss(prediction, target, all_valid(target)).item() == pytest.approx(5.0)


def test_gradient_l1_skips_differences_touching_invalid_pixels():
    prediction, target = image([[0.0, 1.0], [2.0, 5.0]]), torch.zeros(1, 1, 2, 2)
    valid = torch.tensor([[True, True], [True, False]])[None, None]
    # Only the top row's dx (1) and the left column's dy (2) remain.
    assert gradient_l1_loss(prediction, target, valid).item() == pytest.approx(3.0)


def test_gradient_matching_on_log_residual():
    # R = log p - log t = [[0, 1], [3, 3]]: |dx| = 1 + 0, |dy| = 3 + 2, over n = 4 pixels.
    prediction = torch.exp(image([[0.0, 1.0], [3.0, 3.0]]))
    target = torch.ones(1, 1, 2, 2)
    loss = gradient_matching_loss(prediction, target, all_valid(target), scales=1)
    assert loss.item() == pytest.approx(6.0 / 4.0)


def test_gradient_matching_adds_coarser_levels():
    # Level 1 keeps the single pixel (0, 0): no differences, so it adds 0 / 1.
    prediction = torch.exp(image([[0.0, 1.0], [3.0, 3.0]]))
    target = torch.ones(1, 1, 2, 2)
    loss = gradient_matching_loss(prediction, target, all_valid(target), scales=2)
    assert loss.item() == pytest.approx(1.5)


def test_gradient_matching_is_scale_invariant():
    target = image([[1.0, 2.0], [3.0, 5.0]])
    prediction = image([[1.5, 1.0], [2.0, 9.0]])
    valid = all_valid(target)
    assert gradient_matching_loss(3 * prediction, target, valid).item() == pytest.approx(
        gradient_matching_loss(prediction, target, valid).item())


def test_central_gradients_use_minus_one_zero_one():
    gradients = central_gradients(image([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
    assert gradients[0, 0, 0].tolist() == [0.0, 3.0, 0.0]  # x: 4 - 1 in the middle, 0 at borders
    assert gradients[0, 1, :, 0].tolist() == [0.0, 0.0, 0.0]  # y: 1 - 1 in the middle
    assert gradients[0, 1, 1].tolist() == [0.0, -1.0, -3.0]


def test_gradient_consistency_with_phi():
    target = image([[1.0, 2.0, 4.0]] * 3)  # x gradient 3 in the middle column, y gradient 0
    predicted = torch.zeros(1, 2, 3, 3)
    loss = gradient_consistency_loss(predicted, target, all_valid(target))
    # 3 valid x entries with phi(-3), 3 valid y entries with phi(0) = sqrt(1e-4).
    expected = (3 * math.sqrt(9 + 1e-4) + 3 * math.sqrt(1e-4)) / 6
    assert loss.item() == pytest.approx(expected)


# -- SSIM -----------------------------------------------------------------------------------

def test_ssim_loss_of_single_pixels():
    # One pixel: window 1, no variance, SSIM = (2xy + C1) / (x^2 + y^2 + C1), C1 = (0.01 L)^2.
    c1 = (0.01 * 1.0) ** 2
    expected = (1 - (2 * 1 * 2 + c1) / (1 + 4 + c1)) / 2
    assert ssim_loss(image([[1.0]]), image([[2.0]]), val_range=1.0).item() == pytest.approx(expected)


def test_ssim_loss_of_constant_images_with_window_of_image_size():
    c1 = (0.01 * 10.0) ** 2
    x, y = torch.full((1, 1, 3, 3), 3.0), torch.full((1, 1, 3, 3), 5.0)
    expected = (1 - (2 * 15 + c1) / (9 + 25 + c1)) / 2
    # float32 Gaussian weights sum to 1 within 1e-7, so the variances are ~1e-6, not 0.
    assert ssim_loss(x, y, val_range=10.0).item() == pytest.approx(expected, abs=1e-4)


def test_ssim_loss_of_identical_images_is_zero():
    x = torch.arange(36, dtype=torch.float32).reshape(1, 1, 6, 6)
    assert ssim_loss(x, x.clone(), val_range=36.0).item() == pytest.approx(0.0, abs=1e-6)


def test_ssim_loss_treats_missing_ground_truth_as_agreeing():
    prediction = torch.full((1, 1, 3, 3), 3.0)
    target = prediction.clone()
    target[0, 0, 1, 1] = 100.0
    valid = target != 100.0
    assert ssim_loss(prediction, target, 10.0, valid).item() == pytest.approx(0.0, abs=1e-6)


def test_dense_depth_loss_on_depth_norm():
    # 1 m vs 2 m everywhere: DepthNorm 10 / d = 10 vs 5, L1 5 (x 0.1), no edges,
    # SSIM of constants with L = 10 / 0.1 = 100: (2 * 50 + 1) / (100 + 25 + 1).
    outputs = {'depth': torch.ones(1, 1, 4, 4)}
    target = torch.full((1, 1, 4, 4), 2.0)
    batch = {'depth': target, 'depth_valid': all_valid(target)}
    expected = 0.1 * 5.0 + (1 - 101 / 126) / 2
    assert DenseDepthLoss()(outputs, batch).item() == pytest.approx(expected)


# -- attention-driven (Jiao et al.) ---------------------------------------------------------

def test_depth_aware_loss_weights_error_by_depth_attention():
    prediction, target = image([[2.0, 5.0]]), image([[4.0, 5.0]])
    # Pixel 1: alpha = 4 / 10, lambda = 1 - ln 3 / ln 5, error 2. Pixel 2: exact, 0.
    weight = 0.4 + 1 - math.log(3) / math.log(5)
    loss = depth_aware_loss(prediction, target, all_valid(target), max_depth=10.0)
    assert loss.item() == pytest.approx(weight * 2 / 2)


def test_depth_aware_loss_weighs_far_pixels_more():
    near = depth_aware_loss(image([[1.0]]), image([[2.0]]), all_valid(image([[1.0]])), 10.0)
    far = depth_aware_loss(image([[8.0]]), image([[9.0]]), all_valid(image([[1.0]])), 10.0)
    assert far.item() > near.item()


def test_focal_loss_hand_values():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]]).T.reshape(1, 2, 1, 3)
    labels = torch.tensor([[[0, 0, IGNORE]]])
    # p_t = 1/2 and 3/4: -0.25 (1 - p)^2 log p; the ignored pixel does not count.
    expected = (-0.25 * 0.25 * math.log(0.5) - 0.25 * 0.0625 * math.log(0.75)) / 2
    assert focal_loss(logits, labels).item() == pytest.approx(expected)
