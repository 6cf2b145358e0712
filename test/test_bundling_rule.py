"""The bundling rule, read from real-check's own summaries of a generated tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_fixtures import write_model
from test_data_trees import kitti_tree

from training.bundling_rule import (
    RuleInputError,
    every_seed_wins,
    every_tree_wins,
    judge,
    main,
    read_means,
)
from training.real_check import main as real_check


@pytest.fixture(scope='module')
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """real-check --textured folders of two models on the test tree, one without the
    textured reading."""
    root = tmp_path_factory.mktemp('rule')
    models = {'blind': write_model(root / 'blind.onnx'),  # depth by the row alone
              'echo': write_model(root / 'echo.onnx', echo=True, std=1 / 40)}  # brightness
    folders = {}
    for name, model in models.items():
        folders[name] = root / name
        assert real_check(['--kitti', str(kitti_tree()), '--split', 'val',
                           '--textured', '--model', str(model), '--out',
                           str(folders[name])]) == 0
    folders['plain'] = root / 'plain'
    assert real_check(['--kitti', str(kitti_tree()), '--split', 'val',
                       '--model', str(models['echo']), '--out', str(folders['plain'])]) == 0
    return folders


def test_both_means_must_be_lower() -> None:
    bundled = {'abs_rel': 0.14, 'silog': 18.0}
    assert judge({'abs_rel': 0.13, 'silog': 17.0}, bundled).wins
    assert not judge({'abs_rel': 0.13, 'silog': 18.5}, bundled).wins
    assert not judge({'abs_rel': 0.15, 'silog': 17.0}, bundled).wins
    assert not judge(dict(bundled), bundled).wins  # a tie keeps the bundled model


def test_the_rule_reads_the_mean_of_both_readings(scored: dict[str, Path],
                                                  tmp_path: Path) -> None:
    summaries = {name: json.loads((scored[name] / 'summary.json').read_text())
                 for name in ('blind', 'echo')}
    means = {name: read_means(scored[name]) for name in summaries}
    for name, summary in summaries.items():
        assert means[name] == {key: pytest.approx(summary['kitti_mean'][key])
                               for key in ('abs_rel', 'silog')}
    verdicts = {}
    for candidate, bundled in (('echo', 'blind'), ('blind', 'echo')):
        out = tmp_path / f'{candidate}.json'
        assert main([str(scored[candidate]), str(scored[bundled] / 'summary.json'),
                     '--json', str(out)]) == 0
        verdicts[candidate] = json.loads(out.read_text())
        assert verdicts[candidate]['wins'] == all(
            means[candidate][key] < means[bundled][key] for key in ('abs_rel', 'silog'))
    assert not (verdicts['echo']['wins'] and verdicts['blind']['wins'])
    assert main([str(scored['echo']), str(scored['echo'])]) == 0  # itself: a tie


def test_a_summary_it_cannot_judge_is_refused_with_the_reason(
        scored: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuleInputError, match='--textured'):
        read_means(scored['plain'])
    blurred = json.loads((scored['echo'] / 'summary.json').read_text())
    blurred['blur_sigma_px'] = 2.0
    (tmp_path / 'blurred.json').write_text(json.dumps(blurred))
    with pytest.raises(RuleInputError, match='blurred'):
        read_means(tmp_path / 'blurred.json')
    assert main([str(scored['echo']), str(tmp_path / 'missing')]) == 1
    assert 'missing' in capsys.readouterr().err
    assert main([str(scored['echo'])]) == 2  # one side only
    assert main(['--seeds', 'a.json', '--json', 'b.json']) == 2


def verdict(folder: Path, name: str, wins: bool) -> Path:
    """A verdict file as ``rule --json`` writes it, reduced to what the lists read."""
    path = folder / f'{name}.json'
    path.write_text(json.dumps({'wins': wins}))
    return path


def test_a_recipe_is_believed_on_every_one_of_two_seeds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second, lost = (verdict(tmp_path, name, wins)
                          for name, wins in (('s0', True), ('s1', True), ('s2', False)))
    assert every_seed_wins([first, second])[0]
    assert not every_seed_wins([first, lost])[0]
    believed, lines = every_seed_wins([first])
    assert not believed and 'asks for 2 seeds' in lines[-1]
    assert main(['--seeds', str(first), str(second)]) == 0
    assert "bundle the first seed's model" in capsys.readouterr().out
    (tmp_path / 'bad.json').write_text('{}')
    assert main(['--seeds', str(first), str(tmp_path / 'bad.json')]) == 1


def test_a_candidate_of_every_seed_is_believed_on_every_tree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenes_1, scenes_7, lost = (verdict(tmp_path, name, wins)
                               for name, wins in (('t1', True), ('t7', True), ('t8', False)))
    assert every_tree_wins([scenes_1])[0]  # no seed count: the candidate is every seed's
    assert not every_tree_wins([scenes_1, lost, scenes_7])[0]
    assert main(['--trees', str(scenes_1), str(scenes_7)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == 'every tree: bundle this model'
    assert main(['--trees', str(lost)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == 'every tree: not bundled'
    assert main(['--trees', str(lost), '--seeds', str(scenes_1)]) == 2
