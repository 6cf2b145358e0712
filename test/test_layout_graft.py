"""The layout branch: the probe inside the default network, and its graft into an export."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from training_helpers import kitti_tree, two_step_checkpoint

from mtdepth_ros.inference.backends.engine_cache import file_sha256
from mtdepth_ros.inference.model_file import embed_card, read_card
from mtdepth_ros.inference.predictor import Predictor
from training import layout_share
from training.export import DeployNet, check_report, compare_outputs, export_main
from training.layout_graft import MIX_METRIC, REFINE_MIX_METRIC, GraftError, graft
from training.layout_probe import layout_depth, load, main
from training.nets import build_model, get_spec
from training.nets.layout import LayoutBranch, RefineBranch
from training.onnx_weights import load_onnx_weights

TINY = {'decoder_width': 16, 'head_width': 8, 'encoder_args': {'width_mult': 0.25}}
WIDTHS = ('4', '6')  # the probe's U-Net, tiny


@pytest.fixture(scope='module')
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny default network, trained two steps on the generated tree and exported."""
    base = tmp_path_factory.mktemp('graft')
    checkpoint = two_step_checkpoint(base, tmp_path_factory.getbasetemp(), 'tiny_graft')
    out = base / 'model.onnx'
    assert export_main([str(checkpoint), '--out', str(out)]) == 0
    return out


def _trained(exported: Path, factory: pytest.TempPathFactory, name: str,
             prepare: Sequence[str] = (), train: Sequence[str] = ()) -> Path:
    """``layout-probe prepare`` on the generated tree with the exported model, then
    ``train`` five steps: a probe, or with ``--with-depth`` among ``prepare`` a refiner."""
    base = factory.mktemp(name)
    tree = kitti_tree(factory.getbasetemp())
    data, out = base / 'data.npz', base / f'{name}.pt'
    assert main(['prepare', '--tree', str(tree), '--out', str(data), '--model', str(exported),
                 *prepare]) == 0
    assert main(['train', str(data), '--out', str(out), '--steps', '5', '--widths', *WIDTHS,
                 *train]) == 0
    return out


@pytest.fixture(scope='module')
def probe(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A probe of the exported model's segmentation of the generated tree (a few steps)."""
    return _trained(exported, tmp_path_factory, 'probe')


@pytest.fixture(scope='module')
def grafted(exported: Path, probe: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('grafted') / 'grafted.onnx'
    assert main(['graft', str(probe), '--model', str(exported), '--out', str(out)]) == 0
    return out


def test_the_branch_starts_neutral_and_trains() -> None:
    with_branch = build_model('default', layout_widths=(4, 6), **TINY).eval()
    without = build_model('default', **TINY).eval()
    without.load_state_dict({k: v for k, v in with_branch.state_dict().items()
                             if not k.startswith('layout.')})
    assert with_branch.starts_neutral == ('layout.',)
    image = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        ours, theirs = with_branch(image), without(image)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)  # exactly, at mix 0
    with_branch.train()
    with_branch(image)['depth'].mean().backward()
    assert with_branch.layout.mix.grad is not None and with_branch.layout.mix.grad != 0
    with torch.no_grad():
        with_branch.layout.mix.fill_(0.5)
    with_branch.zero_grad()
    with_branch(image)['depth'].mean().backward()
    inner = with_branch.layout.layout.out.weight.grad  # (its input layers: once it moves)
    assert inner is not None and inner.abs().sum() > 0
    assert next(with_branch.encoder.parameters()).grad is not None  # the head's path learns too
    with torch.no_grad():  # a share trained outside 0..1 keeps depth finite
        with_branch.layout.mix.fill_(-3.0)
        assert torch.isfinite(with_branch(image)['depth']).all()


def test_the_graft_is_the_geometric_mean_of_model_and_probe(
        exported: Path, probe: Path, grafted: Path) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (80, 256, 3), np.uint8)
    model, ours = Predictor(exported).predict(image), Predictor(grafted).predict(image)
    assert model.segmentation is not None and model.depth is not None
    assert ours.depth is not None and ours.segmentation is not None
    assert np.array_equal(ours.segmentation, model.segmentation)  # the other heads unchanged
    coding = read_card(exported).depth_coding
    assert coding is not None
    layout = np.clip(layout_depth(load(probe), model.segmentation), coding.d_min, coding.d_max)
    expected = np.sqrt(np.clip(model.depth, coding.d_min, coding.d_max) * layout)
    compared = np.isfinite(ours.depth) & np.isfinite(model.depth)
    assert compared.mean() > 0.5
    np.testing.assert_allclose(ours.depth[compared], expected[compared], rtol=2e-3)
    assert not np.allclose(ours.depth[compared], model.depth[compared], rtol=1e-2)


def test_the_grafted_card_names_the_probe(exported: Path, probe: Path, grafted: Path) -> None:
    card, before = read_card(grafted), read_card(exported)
    assert set(card.heads) == set(before.heads) and card.input == before.input
    net_args = card.config['model']['net_args']
    assert net_args['layout_widths'] == [4, 6]
    assert net_args['layout_depth_range'] == [before.depth_coding.d_min,  # type: ignore[union-attr]
                                              before.depth_coding.d_max]  # type: ignore[union-attr]
    assert card.config['layout_probe']['steps'] == 5
    assert card.config['layout_probe']['model_sha256'] == file_sha256(exported)
    assert 'layout probe (mix 0.5' in card.recipe and card.recipe.startswith(before.recipe)
    assert card.training_data.startswith(before.training_data) and 'kitti_tiny' in \
        card.training_data
    assert card.metrics[MIX_METRIC] == 0.5
    assert not any(key.startswith('val_') for key in card.metrics)  # the base's, not ours
    assert card.metrics['train_mean_depth_m'] == before.metrics['train_mean_depth_m']


def test_the_grafted_export_loads_back_into_the_network(grafted: Path) -> None:
    """A later recipe stage may start from it (init_from): the branch's BatchNorm folded."""
    card = read_card(grafted)
    net = build_model('default', **card.config['model']['net_args'])
    load_onnx_weights(grafted, net, 'default')
    assert net.layout.mix.item() == 0.5
    deploy = DeployNet(net.eval(), get_spec('default'), card.depth_coding,  # type: ignore[arg-type]
                       'normalized_log').eval()
    assert check_report(compare_outputs(deploy, grafted, (card.input.height, card.input.width))) \
        == []


def test_graft_refuses_a_probe_of_another_model(
        exported: Path, probe: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / 'other.onnx'
    model = onnx.load(str(exported))
    embed_card(model, replace(read_card(exported), name='another'))
    onnx.save_model(model, str(other))
    assert main(['graft', str(probe), '--model', str(other), '--out', str(tmp_path / 'x.onnx')]) \
        == 1
    assert 'learnt from the segmentation of' in capsys.readouterr().err
    assert not (tmp_path / 'x.onnx').exists()


def test_graft_refuses_a_probe_without_its_record_and_a_bad_mix(
        exported: Path, probe: Path, tmp_path: Path) -> None:
    saved = torch.load(probe, weights_only=True)
    del saved['source']
    old = tmp_path / 'old.pt'
    torch.save(saved, old)
    with pytest.raises(GraftError, match='records no model'):
        graft(old, exported, tmp_path / 'x.onnx')
    with pytest.raises(GraftError, match=r'must be in \(0, 1\]'):
        graft(probe, exported, tmp_path / 'x.onnx', mix=1.5)


def test_graft_refuses_a_model_with_a_branch_already(
        probe: Path, grafted: Path, tmp_path: Path) -> None:
    with pytest.raises(GraftError, match='has a layout branch already'):
        graft(probe, grafted, tmp_path / 'x.onnx')


def test_the_gate_gives_the_share_by_the_segmentations_confidence() -> None:
    torch.manual_seed(0)
    gated = LayoutBranch(5, (4, 6), (2.0, 125.0), confidence=(0.5, 0.9)).eval()
    plain = LayoutBranch(5, (4, 6), (2.0, 125.0)).eval()
    plain.load_state_dict(gated.state_dict())
    with torch.no_grad():
        gated.mix.fill_(0.5)
        plain.mix.fill_(0.5)
    coded = torch.rand(1, 1, 64, 128)
    sure = torch.zeros(1, 5, 64, 128)
    sure[:, 2, :32] = 20.0  # class 2 above, class 4 below, each with p ~ 1
    sure[:, 4, 32:] = 20.0
    unsure = torch.zeros(1, 5, 64, 128)  # p = 0.2 for every class
    unsure[:, 1] = 1e-3  # (the argmax: class 1)
    with torch.no_grad():
        assert torch.allclose(gated(sure, coded), plain(sure, coded), atol=1e-6)
        assert not torch.allclose(plain(sure, coded), coded, atol=1e-3)
        assert torch.equal(gated(unsure, coded), coded)  # no share at all
        middling = torch.zeros(1, 5, 64, 128)
        middling[:, 0] = np.log(0.7 / 0.3 * 4)  # p(class 0) = 0.7: halfway from 0.5 to 0.9
        np.testing.assert_allclose(gated._share(middling).numpy(), 0.25, atol=1e-5)
    for bad in ((0.9, 0.5), (0.5,), (0.5, 1.5)):
        with pytest.raises(ValueError, match='confidence must be'):
            LayoutBranch(5, (4, 6), (2.0, 125.0), confidence=bad)


def test_a_gated_graft_records_its_gate_and_exports_it(
        exported: Path, probe: Path, tmp_path: Path) -> None:
    out = tmp_path / 'gated.onnx'
    assert main(['graft', str(probe), '--model', str(exported), '--out', str(out),
                 '--confidence', '0.5', '0.9']) == 0  # ONNX Runtime checked against torch
    card = read_card(out)
    assert card.config['model']['net_args']['layout_confidence'] == [0.5, 0.9]
    assert card.config['layout_probe']['confidence'] == [0.5, 0.9]
    assert 'gated by segmentation confidence 0.5-0.9' in card.recipe
    net = build_model('default', **card.config['model']['net_args'])
    load_onnx_weights(out, net, 'default')
    assert net.layout.confidence == (0.5, 0.9) and net.layout.mix.item() == 0.5
    with pytest.raises(GraftError, match='--confidence 0.9 0.5: give LOW HIGH'):
        graft(probe, exported, tmp_path / 'x.onnx', confidence=(0.9, 0.5))
    assert not (tmp_path / 'x.onnx').exists()


def test_a_class_share_scales_the_mix_by_the_pixels_class() -> None:
    torch.manual_seed(0)
    table = (0.0, 0.0, 1.0, 0.0, 0.0)
    shared = LayoutBranch(5, (4, 6), (2.0, 125.0), class_share=table).eval()
    plain = LayoutBranch(5, (4, 6), (2.0, 125.0)).eval()
    plain.load_state_dict(shared.state_dict())  # the table is no weight: not in the state
    with torch.no_grad():
        shared.mix.fill_(0.5)
        plain.mix.fill_(0.5)
    coded = torch.rand(1, 1, 64, 128)
    logits = torch.zeros(1, 5, 64, 128)
    logits[:, 2, :32] = 20.0  # class 2 above (share 1), class 4 below (share 0)
    logits[:, 4, 32:] = 20.0
    with torch.no_grad():
        ours, theirs = shared(logits, coded), plain(logits, coded)
    assert torch.allclose(ours[..., :32, :], theirs[..., :32, :], atol=1e-6)
    assert torch.equal(ours[..., 32:, :], coded[..., 32:, :])
    for bad in ((0.5,) * 4, (0.5, 0.5, 0.5, 0.5, 1.5)):
        with pytest.raises(ValueError, match='class_share needs 5 entries'):
            LayoutBranch(5, (4, 6), (2.0, 125.0), class_share=bad)


def test_fit_share_fits_a_table_the_graft_applies_by_class(
        exported: Path, probe: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setattr(layout_share, 'MIN_PIXELS', 1)  # the tiny tree: fit every class seen
    tree = kitti_tree(tmp_path_factory.getbasetemp())
    table, dense = tmp_path / 'share.json', tmp_path / 'dense.json'
    assert main(['fit-share', str(probe), '--tree', str(tree), '--model', str(exported),
                 '--out', str(table)]) == 0  # on the simulated scan's pixels
    assert main(['fit-share', str(probe), '--tree', str(tree), '--model', str(exported),
                 '--truth', 'dense', '--out', str(dense)]) == 0
    fitted, on_dense = json.loads(table.read_text()), json.loads(dense.read_text())
    assert (fitted['truth'], on_dense['truth']) == ('scan', 'dense')
    assert 0 < sum(fitted['pixels']) < sum(on_dense['pixels'])  # the scan: some pixels
    classes = read_card(exported).classes
    assert classes is not None and len(fitted['shares']) == len(classes.names)
    assert fitted['frames'] > 0 and sum(fitted['pixels']) > 0
    assert all(0 <= s <= 1 for s in fitted['shares'])
    seen = [c for c, n in enumerate(fitted['pixels']) if n]
    assert all(fitted['shares'][c] == fitted['overall'] for c, n in enumerate(fitted['pixels'])
               if not n)  # a class never seen takes the fit on all pixels
    # A table with one share per class, as the fit's (made to differ between classes):
    fitted['shares'] = [0.25 + 0.5 * (c % 2) for c in range(len(fitted['shares']))]
    table.write_text(json.dumps(fitted))
    out = tmp_path / 'shared.onnx'
    assert main(['graft', str(probe), '--model', str(exported), '--out', str(out),
                 '--mix', '1', '--class-share', str(table)]) == 0
    card = read_card(out)
    assert card.config['model']['net_args']['layout_class_share'] == fitted['shares']
    assert 'share by class fitted on' in card.recipe
    image = np.random.default_rng(0).integers(0, 256, (80, 256, 3), np.uint8)
    model, ours = Predictor(exported).predict(image), Predictor(out).predict(image)
    assert model.depth is not None and model.segmentation is not None and ours.depth is not None
    coding = read_card(exported).depth_coding
    assert coding is not None and seen
    head = np.log(np.clip(model.depth, coding.d_min, coding.d_max))
    layout = np.log(np.clip(layout_depth(load(probe), model.segmentation),
                            coding.d_min, coding.d_max))
    share = np.asarray(fitted['shares'])[model.segmentation]
    expected = np.exp(head + share * (layout - head))
    compared = np.isfinite(ours.depth) & np.isfinite(model.depth)
    assert compared.mean() > 0.5
    np.testing.assert_allclose(ours.depth[compared], expected[compared], rtol=2e-3)
    other = tmp_path / 'other.json'  # fitted for another probe: refused
    other.write_text(json.dumps({**fitted, 'probe_sha256': '0' * 64}))
    with pytest.raises(GraftError, match='fitted for another probe'):
        graft(probe, exported, tmp_path / 'x.onnx', class_share=other)


@pytest.fixture(scope='module')
def refiner(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A refiner of the exported model's depth and segmentation of the generated tree."""
    return _trained(exported, tmp_path_factory, 'refiner', ['--with-depth'],
                    ['--row-fallback', '0.5', '--read-far', '0.5'])


@pytest.fixture(scope='module')
def confident_refiner(exported: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A refiner that reads the exported model's confidence as well."""
    out = _trained(exported, tmp_path_factory, 'confident_refiner',
                   ['--with-depth', '--with-confidence'])
    saved = torch.load(out, weights_only=True)  # five steps correct little: made to correct,
    saved['state']['out.weight'] *= 100  # and to lean on the confidence (its channel, the
    saved['state']['down.0.0.weight'][:, -1] *= 100  # last), so that one read wrong shows
    torch.save(saved, out)
    return out


def test_the_refine_branch_starts_neutral_and_follows_the_layout_branch() -> None:
    with_branches = build_model('default', layout_widths=(4, 6), refine_widths=(4, 6),
                                refine_far_classes=(10,), **TINY).eval()
    moving = build_model('default', layout_widths=(4, 6), refine_widths=(4, 6),
                         refine_far_classes=(10,), refine_mix=1.0, **TINY).eval()
    without = build_model('default', layout_widths=(4, 6), **TINY).eval()
    without.load_state_dict({k: v for k, v in with_branches.state_dict().items()
                             if not k.startswith('refine.')})
    assert with_branches.starts_neutral == ('layout.', 'refine.')
    image = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        ours, theirs = with_branches(image), without(image)
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)  # exactly, at mix 0
        moving.load_state_dict(with_branches.state_dict())
        assert torch.equal(moving(image)['depth'], theirs['depth'])  # an untrained refiner
        moving.refine.refiner.out.bias.fill_(0.1)  # a correction of e^0.1 everywhere
        moved = moving(image)['depth']
    assert not torch.equal(moved, theirs['depth'])
    assert torch.isfinite(moved).all()


@pytest.mark.parametrize('which', ['refiner', 'confident_refiner'])
def test_the_grafted_refiner_is_the_refined_depth(
        exported: Path, which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    refiner: Path = request.getfixturevalue(which)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (80, 256, 3), np.uint8)
    model = Predictor(exported).predict(image)
    assert model.segmentation is not None and model.depth is not None
    coding = read_card(exported).depth_coding
    assert coding is not None
    net = load(refiner)
    refined = layout_depth(net, model.segmentation, model.depth, model.confidence)
    if net.confidence_input:  # the confidence counts: the branch must read the model's
        assert model.confidence is not None
        unsure = layout_depth(net, model.segmentation, model.depth, 1 - model.confidence)
        assert not np.allclose(unsure[np.isfinite(unsure)], refined[np.isfinite(refined)])
    for mix in (1.0, 0.5):
        out = tmp_path / f'refined_{mix}.onnx'
        assert main(['graft', str(refiner), '--model', str(exported), '--out', str(out),
                     '--mix', str(mix)]) == 0
        ours = Predictor(out).predict(image)
        assert ours.depth is not None
        assert np.array_equal(ours.segmentation, model.segmentation)  # the other heads unchanged
        clipped = np.clip(model.depth, coding.d_min, coding.d_max)
        expected = clipped * (np.clip(refined, coding.d_min, coding.d_max) / clipped) ** mix
        compared = np.isfinite(ours.depth) & np.isfinite(model.depth) & np.isfinite(expected)
        assert compared.mean() > 0.5
        np.testing.assert_allclose(ours.depth[compared], expected[compared], rtol=2e-3)
        assert not np.allclose(ours.depth[compared], model.depth[compared], rtol=1e-3)


def test_the_refine_branch_reads_far_classes_as_a_scored_refiner_does() -> None:
    """Where the segmentation says far (the sky: +inf in a prediction, read as the coding's
    far end by the scored refiner), the branch reads the far end too: the two agree."""
    torch.manual_seed(0)
    branch = RefineBranch(3, (4, 6), (2.0, 125.0), far_classes=(2,), mix=1.0).eval()
    for parameter in branch.refiner.parameters():  # a refiner whose correction varies
        parameter.data.normal_(0, 0.3)
    labels = torch.zeros(1, 32, 48, dtype=torch.long)
    labels[:, :12] = 2  # far on top
    labels[:, 20:, 10:30] = 1
    logits = torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    metres = torch.linspace(4.0, 60.0, 32).view(1, 1, 32, 1).expand(1, 1, 32, 48).clone()
    coded = torch.log(metres - 1.0) / branch.log_span  # the coding (d_min 2)
    with torch.no_grad():
        ours = torch.exp(branch(logits, coded) * branch.log_span)[0, 0].numpy() + 1.0
    given = metres[0, 0].numpy().copy()
    given[labels[0].numpy() == 2] = np.inf  # as the predictor marks the far classes
    expected = layout_depth(branch.refiner, labels[0].numpy().astype(np.uint8), given)
    near = labels[0].numpy() != 2
    np.testing.assert_allclose(ours[near], expected[near], rtol=1e-4)
    assert not np.allclose(ours[near], given[near], rtol=1e-2)


def test_the_grafted_refiners_card_names_it_and_loads_back(
        exported: Path, refiner: Path, tmp_path: Path) -> None:
    out = tmp_path / 'refined.onnx'
    graft(refiner, exported, out, mix=1.0)
    card, before = read_card(out), read_card(exported)
    net_args = card.config['model']['net_args']
    assert net_args['refine_widths'] == [4, 6]
    assert net_args['refine_far_classes'] == list(before.far_class_ids)
    assert card.config['refiner']['model_sha256'] == file_sha256(exported)
    assert card.config['refiner']['row_fallback'] == 0.5
    assert 'refiner (mix 1;' in card.recipe and card.recipe.startswith(before.recipe)
    assert 'row fallback 0.5, read far 0.5, on ' in card.recipe
    assert card.metrics[REFINE_MIX_METRIC] == 1.0
    assert not any(key.startswith('val_') for key in card.metrics)
    net = build_model('default', **net_args)
    load_onnx_weights(out, net, 'default')
    assert net.refine.mix == 1.0
    deploy = DeployNet(net.eval(), get_spec('default'), card.depth_coding,  # type: ignore[arg-type]
                       'normalized_log').eval()
    assert check_report(compare_outputs(deploy, out, (card.input.height, card.input.width))) == []
    with pytest.raises(GraftError, match='has a refine branch already'):
        graft(refiner, out, tmp_path / 'x.onnx')


def test_graft_refuses_a_refiner_of_another_model_or_with_a_gate(
        exported: Path, refiner: Path, grafted: Path, tmp_path: Path) -> None:
    with pytest.raises(GraftError, match='learnt from the segmentation of'):
        graft(refiner, grafted, tmp_path / 'x.onnx')  # its depth is the grafted model's
    with pytest.raises(GraftError, match='--confidence and --class-share'):
        graft(refiner, exported, tmp_path / 'x.onnx', confidence=(0.5, 0.9))
    assert not (tmp_path / 'x.onnx').exists()
