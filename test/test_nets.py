"""Every registered network (tiny variant): heads, shapes, finite outputs, gradients, export.

Parametrised over ``training.nets.list_models()``, so a newly registered model
is covered without new test code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from mtdepth_ros.inference.depth_coding import DepthCoding
from mtdepth_ros.inference.model_file import read_card
from training.checkpoints import EXTRA_KEY
from training.export import export_checkpoint
from training.export_card import deploy_heads
from training.losses import TOTAL
from training.losses.targets import depth_to_intervals, encode_depth
from training.depth_decoding import DEFAULT_CODING
from training.nets import build_loss, build_model, get_spec, list_models
from training.nets.encoders import build_encoder

MODELS = list_models()
BATCH = 2  # BatchNorm needs more than one value per channel in train mode
SCENE_KEY = 'scene'  # batch key of image-level (N, C) heads' class targets
CODING = DepthCoding.from_dict(DEFAULT_CODING)


def tiny(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, **get_spec(name).tiny)


def channels(net: nn.Module) -> dict[str, int]:
    return dict(getattr(net, 'head_channels'))


def full_batch(net: nn.Module, size: tuple[int, int], n: int = BATCH) -> dict[str, Any]:
    """A batch with every target the brief's batch dictionary has, all supervised."""
    generator = torch.Generator().manual_seed(0)
    height, width = size
    depth = 2.0 + 60.0 * torch.rand(n, 1, height, width, generator=generator)
    valid = torch.rand(n, 1, height, width, generator=generator) < 0.7
    depth = torch.where(valid, depth, torch.zeros_like(depth))
    classes = channels(net).get('segmentation', 1)
    batch: dict[str, Any] = {
        'image': torch.randn(n, 3, height, width, generator=generator),
        'depth': depth, 'depth_valid': valid, 'depth_log': encode_depth(depth, CODING),
        'intervals': depth_to_intervals(depth, CODING),
        'labels': torch.randint(0, classes, (n, height, width), generator=generator),
        'has_depth': torch.ones(n, dtype=torch.bool),
        'has_labels': torch.ones(n, dtype=torch.bool),
    }
    for head, count in channels(net).items():
        if head not in ('segmentation', 'intervals', 'depth'):
            batch[SCENE_KEY] = torch.randint(0, count, (n,), generator=generator)
    return batch


@pytest.mark.parametrize('name', MODELS)
def test_network_returns_its_declared_heads_at_input_resolution(name: str) -> None:
    spec, net = get_spec(name), tiny(name).eval()
    height, width = spec.test_size
    with torch.no_grad():
        outputs = net(torch.randn(BATCH, 3, height, width))
    assert set(outputs) == set(spec.heads) == set(channels(net))
    for head, value in outputs.items():
        assert value.shape[:2] == (BATCH, channels(net)[head]), head
        if value.dim() == 4:
            assert value.shape[2:] == (height, width), head
        else:
            assert value.dim() == 2, head


@pytest.mark.parametrize('name', MODELS)
def test_network_outputs_are_finite(name: str) -> None:
    spec, net = get_spec(name), tiny(name).eval()
    with torch.no_grad():
        outputs = net(torch.randn(BATCH, 3, *spec.test_size))
    for head, value in outputs.items():
        assert torch.isfinite(value).all(), head


@pytest.mark.parametrize('name', MODELS)
def test_every_parameter_gets_a_gradient_from_its_loss(name: str) -> None:
    spec, net = get_spec(name), tiny(name).train()
    loss = build_loss(name)
    batch = full_batch(net, spec.test_size)
    losses = loss(net(batch['image']), batch)
    assert set(losses) - {TOTAL} <= set(spec.heads)
    assert torch.isfinite(losses[TOTAL])
    losses[TOTAL].backward()
    missing = [n for n, p in [*net.named_parameters(), *loss.named_parameters()]
               if p.requires_grad and p.grad is None]
    assert not missing, f'no gradient: {missing[:10]}'
    bad = [n for n, p in net.named_parameters() if p.grad is not None
           and not torch.isfinite(p.grad).all()]
    assert not bad, f'non-finite gradient: {bad[:10]}'


def write_checkpoint(name: str, net: nn.Module, path: Path) -> Path:
    """What a training run writes, reduced to what export reads."""
    facts = {'focal_length_px': 500.0, 'image_size': list(get_spec(name).test_size),
             'training_data': 'test weights', 'mean': [0.485, 0.456, 0.406],
             'std': [0.229, 0.224, 0.225]}
    torch.save({'state_dict': {f'net.{k}': v for k, v in net.state_dict().items()},
                'hyper_parameters': {'net': name, 'net_args': dict(get_spec(name).tiny)},
                'global_step': 3, EXTRA_KEY: {'data': facts, 'config': {'recipe': 'test'},
                                              'metrics': {'silog': 20.0}}}, path)
    return path


@pytest.mark.parametrize('name', MODELS)
def test_export_round_trip_matches_torch_and_carries_a_card(name: str, tmp_path: Path) -> None:
    spec, net = get_spec(name), tiny(name)
    checkpoint = write_checkpoint(name, net, tmp_path / 'model.ckpt')
    out = tmp_path / 'model.onnx'
    # export_checkpoint itself compares ONNX Runtime with torch and raises on a mismatch.
    # The graph optimiser is model-agnostic (test_export.py runs it); skipping it halves the time.
    card, report = export_checkpoint(checkpoint, out, *spec.test_size, optimize=False)
    assert set(report) == set(deploy_heads(spec.heads)) == set(read_card(out).heads)
    assert not list(tmp_path.glob('*.data')), 'weights must be inside the .onnx file'
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    image = np.zeros((1, 3, *spec.test_size), dtype=np.float32)
    results = dict(zip(card.output_names, session.run(list(card.output_names.values()),
                                                      {card.input.name: image})))
    for head, value in results.items():
        assert value.shape == (1, 1, *spec.test_size), head
        expected = np.int32 if head in ('intervals', 'segmentation') else np.float32
        assert value.dtype == expected, head


@pytest.mark.parametrize('name, kwargs, channels_, reductions', [
    ('resnet101', {'output_stride': 8, 'deep_stem_widths': (64, 64, 128), 'layers': (1, 1, 1, 1)},
     (128, 256, 512, 1024, 2048), (2, 4, 8, 8, 8)),
    ('resnet18', {}, (64, 64, 128, 256, 512), (2, 4, 8, 16, 32)),
    ('mobilenet_v3_small', {}, (16, 16, 24, 48, 576), (2, 4, 8, 16, 32)),
])
def test_encoder_reports_the_channels_and_strides_it_returns(
        name: str, kwargs: dict[str, Any], channels_: tuple[int, ...],
        reductions: tuple[int, ...]) -> None:
    encoder = build_encoder(name, **kwargs).eval()
    assert encoder.channels == channels_ and encoder.reductions == reductions
    with torch.no_grad():
        features = encoder(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == list(channels_)
    assert [64 // f.shape[-1] for f in features] == list(reductions)


def test_deep_stem_is_three_convolutions_first_with_stride_two() -> None:
    encoder = build_encoder('resnet101', deep_stem_widths=(64, 64, 128), layers=(1, 1, 1, 1))
    convs = [m for m in encoder.stem if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (64, (3, 3), (2, 2)), (64, (3, 3), (1, 1)), (128, (3, 3), (1, 1))]


def test_multidepth_pyramid_matches_pspnet() -> None:
    net = build_model('multidepth', layers=(1, 1, 1, 1))
    head = net.task_heads['depth']
    assert head.pyramid.bins == (6, 3, 2, 1)
    assert [level[0].out_channels for level in head.pyramid.levels] == [512] * 4
    assert head.fuse[0].out_channels == 512 and head.dropout.p == 0.1
    assert head.classifier.out_channels == 1
    assert net.task_heads['intervals'].classifier.out_channels == 32


def test_pyramid_pooling_equals_adaptive_average_pooling() -> None:
    from training.nets.heads import adaptive_avg_pool

    x = torch.randn(2, 3, 44, 152)  # KITTI at stride 8: not divisible by 6
    for bins in (6, 3, 2, 1):
        torch.testing.assert_close(adaptive_avg_pool(x, bins),
                                   torch.nn.functional.adaptive_avg_pool2d(x, bins))


def test_unknown_model_names_the_registered_ones() -> None:
    with pytest.raises(KeyError, match='registered models'):
        get_spec('pspnet-9000')
