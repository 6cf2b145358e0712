"""Export: the ONNX file, its model card, the deploy decode, and the card command."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from training_helpers import two_step_checkpoint

from mtdepth_ros.inference.card import SEED_METRIC
from mtdepth_ros.inference.depth_coding import MULTIDEPTH_KITTI, DepthCoding
from mtdepth_ros.inference.model_file import read_card
from training.export import (
    card_main,
    check_report,
    export_checkpoint,
    export_main,
    load_for_export,
)
from training.export_card import far_classes
from training.losses.targets import encode_depth, interval_confidence


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.ckpt of a short tiny-recipe run on the generated KITTI tree."""
    return two_step_checkpoint(tmp_path_factory.mktemp('export'),
                               tmp_path_factory.getbasetemp(), 'tiny_export')


@pytest.fixture(scope='module')
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('onnx') / 'model.onnx'
    assert export_main([str(checkpoint), '--out', str(out)]) == 0
    return out


def test_export_writes_one_self_contained_file(exported: Path) -> None:
    assert [p.name for p in exported.parent.iterdir()] == ['model.onnx']
    model = onnx.load(str(exported))
    onnx.checker.check_model(model)
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL
                   for init in model.graph.initializer)


def test_card_records_what_the_vehicle_needs(exported: Path) -> None:
    card = read_card(exported)
    assert (card.input.height, card.input.width) == (64, 256)  # 80 x 256 frames, multiple of 32
    assert card.input.mean == pytest.approx((0.485, 0.456, 0.406))
    assert set(card.heads) == {'depth', 'intervals', 'confidence', 'segmentation'}
    assert card.heads['depth'].encoding == 'normalized_log'
    assert card.depth_coding == MULTIDEPTH_KITTI
    assert card.classes is not None and card.classes.names[0] == 'road'
    assert len(card.classes.palette) == 19
    assert card.camera.focal_length_px > 0
    assert 'kitti' in card.training_data
    assert math.isfinite(card.metrics['val_silog'])
    # the generated road scenes' depth ranges over a few to ~80 m
    assert 2.0 < card.metrics['train_mean_depth_m'] < 80.0
    assert card.config['recipe'] == 'tiny_export'
    assert card.config['model']['net'] == 'default'
    assert card.metrics[SEED_METRIC] == card.config['seed_everything'] == 0  # the run's seed


def test_card_focal_length_is_the_training_cameras_at_the_network_input(
        exported: Path, checkpoint: Path) -> None:
    from training.data.kitti import KittiDataset

    loaded = load_for_export(checkpoint)
    root = Path(loaded.extra['config']['data']['root'])
    fx = float(KittiDataset(root, split='train')[0]['intrinsics'][0, 0])
    assert read_card(exported).camera.focal_length_px == pytest.approx(fx)


def test_exported_outputs_match_the_checkpoint(exported: Path, checkpoint: Path) -> None:
    loaded = load_for_export(checkpoint)
    card = read_card(exported)
    image = torch.randn(1, 3, card.input.height, card.input.width,
                        generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        outputs = loaded.net(image)
    session = ort.InferenceSession(str(exported), providers=['CPUExecutionProvider'])
    depth, intervals, segmentation = session.run(
        ['depth', 'intervals', 'segmentation'], {'image': image.numpy()})
    np.testing.assert_allclose(depth, outputs['depth'].numpy(), atol=1e-4)
    assert intervals.dtype == np.int32 and segmentation.dtype == np.int32
    assert (intervals == outputs['intervals'].argmax(1, keepdim=True).numpy()).mean() > 0.999
    assert (segmentation == outputs['segmentation'].argmax(1, keepdim=True).numpy()).mean() > 0.999


def test_the_export_takes_a_batch_of_images(exported: Path) -> None:
    # several cameras' frames run as one batch in the node; each image's outputs are its own
    from mtdepth_ros.inference.predictor import Predictor  # noqa: PLC0415

    predictor = Predictor(exported)
    assert predictor.max_batch == 8
    height, width = predictor.card.input.height, predictor.card.input.width
    rng = np.random.default_rng(0)
    tensors = [rng.standard_normal((1, 3, height, width)).astype(np.float32) for _ in range(3)]
    outputs = predictor.outputs_for(predictor.heads)
    batched, _ = predictor.infer(tensors, outputs)
    for tensor, result in zip(tensors, batched):
        alone = predictor.backend.run(tensor, outputs)
        for name in outputs:
            np.testing.assert_allclose(result[name], alone[name], rtol=1e-4, atol=1e-5)


def test_check_allows_a_few_pixels_on_an_interval_edge_and_no_more() -> None:
    # One pixel of a 192x640 map whose regressed depth sits on an interval edge
    # moves its confidence window (measured on the bundled model: 1 of 122880).
    one_edge_pixel = {'depth': 2e-6, 'intervals': 1.0, 'segmentation': 1.0,
                      'confidence': 1 - 1 / 122880}
    assert check_report(one_edge_pixel) == []
    many = dict(one_edge_pixel, confidence=0.99)
    assert check_report(many) == ['confidence: only 99.0000% of pixels agree']
    drifted = dict(one_edge_pixel, depth=2e-3)
    assert check_report(drifted) == ['depth: max error 2.00e-03']


def test_card_command_prints_the_card(exported: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert card_main([str(exported)]) == 0
    printed = capsys.readouterr().out
    assert 'training camera focal length' in printed and 'road' in printed


def test_export_in_metres_decodes_in_the_graph(checkpoint: Path, exported: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / 'metres.onnx'
    card, _ = export_checkpoint(checkpoint, out, depth_encoding='metres', optimize=False)
    assert card.heads['depth'].encoding == 'metres'
    image = np.random.default_rng(0).standard_normal((1, 3, 64, 256)).astype(np.float32)
    log_depth = ort.InferenceSession(str(exported)).run(['depth'], {'image': image})[0]
    metres = ort.InferenceSession(str(out)).run(['depth'], {'image': image})[0]
    np.testing.assert_allclose(metres, MULTIDEPTH_KITTI.decode(log_depth), rtol=1e-4)


def test_export_records_the_valid_range_and_frame_size_given(checkpoint: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / 'ranged.onnx'
    assert export_main([str(checkpoint), '--out', str(out), '--valid-range', '2', '60',
                 '--frame-size', '1242', '375']) == 0
    card = read_card(out)
    assert card.heads['depth'].valid_range == (2.0, 60.0)
    assert card.depth_range == (2.0, 60.0)
    assert (card.input.frame_width, card.input.frame_height) == (1242, 375)
    assert card.heads['segmentation'].valid_range is None


def test_export_refuses_a_valid_range_the_card_cannot_hold(checkpoint: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    out = tmp_path / 'bad.onnx'
    assert export_main([str(checkpoint), '--out', str(out), '--valid-range', '60', '2']) == 1
    assert '--valid-range 60.0 2.0: NEAR must be at least 0 and below FAR' in capsys.readouterr().err
    assert not out.exists()


def test_far_classes_come_from_the_data_facts_else_the_recipe() -> None:
    def loaded(extra: dict) -> Any:
        return SimpleNamespace(extra=extra)

    recipe = {'config': {'data': {'train_args': {'far_classes': ['sky']}}}}
    assert far_classes(loaded({'data': {'far_classes': ['sky', 'void']}, **recipe})) == ('sky', 'void')
    assert far_classes(loaded({'data': {'far_classes': []}, **recipe})) == ()  # recorded: none
    assert far_classes(loaded({'data': {}, **recipe})) == ('sky',)  # older checkpoints
    assert far_classes(loaded({'data': {}, 'config': {'data': {'train_args': None}}})) == ()
    # a mixture's checkpoint before its facts recorded them: the first source naming them
    sources = [{'dataset': 'cityscapes', 'args': {}}, {'dataset': 'kitti', 'args': None},
               {'dataset': 'kitti', 'args': {'far_classes': ['sky']}}]
    mixture = {'config': {'data': {'train_args': {'sources': sources}}}}
    assert far_classes(loaded({'data': {}, **mixture})) == ('sky',)


def test_export_of_a_missing_checkpoint_fails_clearly(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert export_main([str(tmp_path / 'none.ckpt'), '--out', str(tmp_path / 'x.onnx')]) == 1
    assert 'checkpoint not found' in capsys.readouterr().err


def test_confidence_is_the_softmax_mass_around_the_regressed_bin() -> None:
    coding = DepthCoding(d_min=2.0, d_max=125.0, num_intervals=4)
    probabilities = torch.tensor([0.1, 0.2, 0.3, 0.4])
    logits = probabilities.log().view(1, 4, 1, 1).repeat(1, 1, 1, 2)  # two pixels
    edges = coding.coded_bin_edges()
    # Pixel 0 regresses into bin 0 (neighbours: bin 1 only); pixel 1 into bin 2 (1, 2, 3).
    coded = torch.tensor([(edges[0] + edges[1]) / 2, (edges[2] + edges[3]) / 2],
                         dtype=torch.float32).view(1, 1, 1, 2)
    confidence = interval_confidence(logits, coded, coding).ravel().tolist()
    assert confidence == pytest.approx([0.1 + 0.2, 0.2 + 0.3 + 0.4])


def test_confidence_is_high_where_regression_and_intervals_agree() -> None:
    depth = torch.tensor([10.0]).view(1, 1, 1, 1)
    coded = encode_depth(depth, MULTIDEPTH_KITTI)
    agree = torch.full((1, 32, 1, 1), -10.0)
    agree[0, int(MULTIDEPTH_KITTI.depth_to_intervals(np.array([10.0]))[0])] = 10.0
    disagree = torch.full((1, 32, 1, 1), -10.0)
    disagree[0, 31] = 10.0
    assert interval_confidence(agree, coded, MULTIDEPTH_KITTI).item() > 0.99
    assert interval_confidence(disagree, coded, MULTIDEPTH_KITTI).item() < 0.01
