"""average-weights: exports of one network averaged into another, or refused."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import model_fixtures as mf
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from mtdepth_ros.inference.card import SEED_METRIC
from mtdepth_ros.inference.model_file import embed_card, read_card
from mtdepth_ros.inference.predictor import Predictor
from training.average_weights import WEIGHT_METRIC, average_weights, main

SHIFT = 0.2  # the second model's coded depth is the first's minus this


def initializers(path: Path) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def pair(tmp_path: Path) -> tuple[Path, Path]:
    """The tiny model, and a copy trained elsewhere: another depth constant, another recipe."""
    first = mf.write_model(tmp_path / 'first.onnx')
    model = onnx.load(str(first))
    for initializer in model.graph.initializer:
        if initializer.name == 'depth_const':
            value = numpy_helper.to_array(initializer) - np.float32(SHIFT)
            initializer.CopyFrom(numpy_helper.from_array(value, initializer.name))
    card = read_card(first)
    embed_card(model, replace(card, recipe='other', training_data='elsewhere',
                              metrics={'train_mean_depth_m': 9.0, 'val_silog': 1.0}))
    second = tmp_path / 'second.onnx'
    onnx.save(model, str(second))
    return first, second


def test_float_initializers_are_mixed_by_the_weight_and_the_rest_kept(tmp_path: Path) -> None:
    first, second = pair(tmp_path)
    a, b = initializers(first), initializers(second)
    for weight in (0.0, 0.25, 1.0):
        out = tmp_path / f'avg{weight}.onnx'
        average_weights([first, second], [weight, 1 - weight], out)
        mixed = initializers(out)
        np.testing.assert_allclose(mixed['depth_const'],
                                   weight * a['depth_const'] + (1 - weight) * b['depth_const'],
                                   rtol=1e-6)
        for name in a:  # equal in both parents: exactly the same
            if name != 'depth_const':
                assert np.array_equal(mixed[name], a[name]), name
    assert np.array_equal(initializers(tmp_path / 'avg1.0.onnx')['depth_const'], a['depth_const'])
    assert np.array_equal(initializers(tmp_path / 'avg0.0.onnx')['depth_const'], b['depth_const'])


def test_the_average_runs_and_its_card_names_both_parents(tmp_path: Path) -> None:
    first, second = pair(tmp_path)
    out = tmp_path / 'avg.onnx'
    card = average_weights([first, second], [0.5, 0.5], out)
    coded = mf.coded_depth() - SHIFT / 2
    depth = Predictor(out).predict(np.zeros((mf.HEIGHT, mf.WIDTH, 3), np.uint8)).depth
    assert depth is not None
    inside = np.isfinite(depth)  # the last row's coded depth reached the near limit: -inf
    assert inside.mean() > 0.9 and np.isneginf(depth[~inside]).all()
    np.testing.assert_allclose(depth[inside], mf.CODING.decode(coded)[inside], rtol=1e-5)
    assert 'test' in card.recipe and 'other' in card.recipe and '0.5' in card.recipe
    assert 'none (test fixture)' in card.training_data and 'elsewhere' in card.training_data
    assert card.metrics == {WEIGHT_METRIC: 0.5}  # the first's metrics were its own alone


def test_one_network_exported_by_other_code_is_still_one_network(tmp_path: Path) -> None:
    """Exports of one network by two versions of the code: the exporter's metadata (source
    lines), its names for constants and for the values between nodes, and the order it
    writes independent nodes in all moved (the town stage's export against the bundled
    model's); a constant of another value is still refused."""
    first, second = pair(tmp_path)
    model = onnx.load(str(second))
    graph = model.graph
    ends = {o.name for o in graph.output}
    renamed = {name: f'moved_{k}' for k, name in enumerate(
        out for node in graph.node for out in node.output if out not in ends)}
    for initializer in graph.initializer:  # a constant the exporter named otherwise
        if initializer.name == 'zero':
            initializer.name = 'val_7'
    renamed['zero'] = 'val_7'
    for node in graph.node:
        entry = node.metadata_props.add()
        entry.key, entry.value = 'pkg.torch.onnx.stack_trace', 'File "default.py", line 101'
        node.doc_string = 'moved'
        node.input[:] = [renamed.get(i, i) for i in node.input]
        node.output[:] = [renamed.get(o, o) for o in node.output]
    heads = [n for n in graph.node if any(o in ends for o in n.output)]
    body = [n for n in graph.node if not any(o in ends for o in n.output)]
    reordered = body + heads[::-1]  # the output nodes written in the other order
    assert len(heads) > 1
    del graph.node[:]
    graph.node.extend(reordered)
    onnx.checker.check_model(model)
    onnx.save(model, str(second))
    average_weights([first, second], [0.5, 0.5], tmp_path / 'avg.onnx')
    np.testing.assert_allclose(initializers(tmp_path / 'avg.onnx')['depth_const'],
                               initializers(first)['depth_const'] - SHIFT / 2, rtol=1e-6)
    for initializer in graph.initializer:  # the renamed constant, now of another value
        if initializer.name == 'val_7':
            initializer.CopyFrom(numpy_helper.from_array(np.array([1.0], np.float32), 'val_7'))
    onnx.save(model, str(second))
    with pytest.raises(ValueError, match='graphs differ at node'):
        average_weights([first, second], [0.5, 0.5], tmp_path / 'avg.onnx')


def test_another_network_is_refused_with_where_it_differs(tmp_path: Path) -> None:
    first = mf.write_model(tmp_path / 'first.onnx')
    depth_only = mf.write_model(tmp_path / 'depth_only.onnx', heads=('depth',))
    with pytest.raises(ValueError, match='cards differ in heads'):
        average_weights([first, depth_only], [0.5, 0.5], tmp_path / 'out.onnx')
    slow = mf.write_model(tmp_path / 'slow.onnx', work=1)
    with pytest.raises(ValueError, match='graphs differ at node'):
        average_weights([first, slow], [0.5, 0.5], tmp_path / 'out.onnx')
    assert not (tmp_path / 'out.onnx').exists()


def test_a_changed_index_or_a_weight_out_of_range_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = mf.write_model(tmp_path / 'first.onnx', echo=True)  # its Slice takes int64 indices
    model = onnx.load(str(first))
    for initializer in model.graph.initializer:
        if initializer.name == 'c1':
            initializer.CopyFrom(numpy_helper.from_array(np.array([2], np.int64), 'c1'))
    second = tmp_path / 'second.onnx'
    onnx.save(model, str(second))
    assert main([str(first), str(second), '--out',
                 str(tmp_path / 'out.onnx')]) == 2
    assert 'c1: int64 values differ' in capsys.readouterr().err
    assert main([str(first), str(first), '--weight', '1.5', '--out',
                 str(tmp_path / 'out.onnx')]) == 2
    assert 'weight must be in [0, 1]' in capsys.readouterr().err


def trio(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The pair, and a third copy whose depth constant moved the other way."""
    first, second = pair(tmp_path)
    model = onnx.load(str(first))
    for initializer in model.graph.initializer:
        if initializer.name == 'depth_const':
            value = numpy_helper.to_array(initializer) + np.float32(2 * SHIFT)
            initializer.CopyFrom(numpy_helper.from_array(value, initializer.name))
    embed_card(model, replace(read_card(first), recipe='third', training_data='there'))
    third = tmp_path / 'third.onnx'
    onnx.save(model, str(third))
    return first, second, third


def test_a_soup_of_three_is_their_weighted_mean_and_names_every_parent(tmp_path: Path) -> None:
    first, second, third = trio(tmp_path)
    values = [initializers(m)['depth_const'] for m in (first, second, third)]
    out = tmp_path / 'soup.onnx'
    assert main([str(first), str(second), str(third), '--out', str(out)]) == 0
    np.testing.assert_allclose(initializers(out)['depth_const'], sum(values) / 3, rtol=1e-6)
    card = read_card(out)
    assert card.recipe == 'weight average: 0.333333 x test + 0.333333 x other + 0.333333 x third'
    assert 'elsewhere' in card.training_data and 'there' in card.training_data
    for name, value in initializers(first).items():  # equal in every parent: exactly the same
        if name != 'depth_const':
            assert np.array_equal(initializers(out)[name], value), name
    shares = [0.5, 0.25, 0.25]
    card = average_weights([first, second, third], shares, out)
    np.testing.assert_allclose(initializers(out)['depth_const'],
                               sum(w * v for w, v in zip(shares, values, strict=True)), rtol=1e-6)
    assert card.metrics == {WEIGHT_METRIC: 0.5}


def test_an_average_of_averages_names_its_parents_in_brackets(tmp_path: Path) -> None:
    first, second, third = trio(tmp_path)
    half = tmp_path / 'half.onnx'
    average_weights([second, third], [0.5, 0.5], half)
    card = average_weights([half, first], [0.5, 0.5], tmp_path / 'soup.onnx')
    assert card.recipe == ('weight average: 0.5 x [weight average: 0.5 x other + 0.5 x third]'
                           ' + 0.5 x test')
    np.testing.assert_allclose(initializers(tmp_path / 'soup.onnx')['depth_const'],
                               initializers(first)['depth_const'] + SHIFT / 4, rtol=1e-6)


def test_two_seeds_of_one_recipe_are_named_apart(tmp_path: Path) -> None:
    first, second = pair(tmp_path)
    seeds = []
    for seed, path in enumerate((first, second)):  # one recipe, two seeds, as export writes them
        model = onnx.load(str(path))
        card = read_card(path)
        embed_card(model, replace(card, recipe='stage',
                                  metrics={**card.metrics, SEED_METRIC: seed}))
        seeds.append(tmp_path / f'seed{seed}.onnx')
        onnx.save(model, str(seeds[-1]))
    card = average_weights([*seeds, first], [0.25, 0.25, 0.5], tmp_path / 'soup.onnx')
    assert card.recipe == ('weight average: 0.25 x stage (seed 0) + 0.25 x stage (seed 1)'
                           ' + 0.5 x test')
    assert SEED_METRIC not in card.metrics  # an average has no seed of its own


def test_shares_that_are_not_a_mean_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second, third = trio(tmp_path)
    out = str(tmp_path / 'out.onnx')
    models = [str(first), str(second), str(third)]
    for extra, message in ((['--weights', '0.5', '0.5'], '2 weights for 3 models'),
                           (['--weights', '0.5', '0.4', '0.4'], 'the weights sum to 1.3'),
                           (['--weight', '0.5'], "--weight is the first of two models' share")):
        assert main([*models, *extra, '--out', out]) == 2
        assert message in capsys.readouterr().err
    assert main([str(first), '--out', out]) == 2
    assert 'two models or more, got 1' in capsys.readouterr().err
    assert main([str(first), str(second), '--weight', '0.5', '--weights',
                 '0.5', '0.5', '--out', out]) == 2
    assert '--weight and --weights' in capsys.readouterr().err
    assert not Path(out).exists()
