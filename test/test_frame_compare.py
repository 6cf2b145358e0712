"""compare-frames: two real-check folders of the same frames, paired frame by frame.

The folders are written as real-check writes them: each set's ``frames.csv`` by
``mtdepth-eval``'s own writer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mtdepth_ros.evaluation.report import write_frames_csv
from mtdepth_ros.evaluation.scoring import FrameResult
from training.frame_compare import (
    CompareInputError,
    compare_folders,
    main,
    sign_test,
)


def write_set(folder: Path, name: str, abs_rel: list[float | None],
              d1: list[float] | None = None) -> None:
    """A set's frames.csv: frame i scored with abs_rel[i], or not scored where None."""
    out = folder / name
    out.mkdir(parents=True)
    rows = []
    for index, value in enumerate(abs_rel):
        if value is None:
            rows.append(FrameResult(index, 0.1 * index, status='no ground truth'))
        else:
            depth = {'abs_rel': value, 'silog': 100 * value,
                     'd1': d1[index] if d1 else 1 - value}
            rows.append(FrameResult(index, 0.1 * index, depth=depth, depth_pixels=100))
    write_frames_csv(out, rows)


def by_name(comparisons):
    return {c.name: c for c in comparisons}


def test_each_set_and_the_real_sets_pooled(tmp_path):
    before, after = tmp_path / 'before', tmp_path / 'after'
    write_set(before, 'velodyne', [0.30, 0.20, 0.40])
    write_set(after, 'velodyne', [0.25, 0.21, 0.30])
    write_set(before, 'annotated', [0.10, 0.20])
    write_set(after, 'annotated', [0.10, 0.15])
    sets = by_name(compare_folders(before, after, resamples=500))
    assert list(sets) == ['annotated', 'velodyne', 'all real']
    velodyne = sets['velodyne']
    assert velodyne.frames == 3
    assert velodyne.before == pytest.approx(0.30)
    assert velodyne.after == pytest.approx(0.76 / 3)
    assert velodyne.difference == pytest.approx(-0.14 / 3)
    assert (velodyne.better, velodyne.worse, velodyne.equal) == (2, 1, 0)
    pooled = sets['all real']
    assert pooled.frames == 5  # per image, as real-check pools them
    assert pooled.before == pytest.approx(1.2 / 5)
    assert pooled.difference == pytest.approx((-0.14 - 0.05) / 5)
    assert (pooled.better, pooled.worse, pooled.equal) == (3, 1, 1)
    low, high = pooled.interval
    assert low <= pooled.difference <= high


def test_the_interval_is_seeded_and_tells_a_steady_gain_from_noise(tmp_path):
    before, steady, noisy = tmp_path / 'before', tmp_path / 'steady', tmp_path / 'noisy'
    values = [0.2, 0.3, 0.25, 0.4, 0.22, 0.35, 0.28, 0.31, 0.26]
    write_set(before, 'velodyne', values)
    write_set(steady, 'velodyne', [v - 0.02 for v in values])  # every frame a little better
    write_set(noisy, 'velodyne', [v + (0.05 if i % 2 else -0.05) for i, v in enumerate(values)])
    gain = compare_folders(before, steady)[0]
    assert gain.shown and gain.interval[1] < 0
    assert gain.better == 9 and gain.sign_p == pytest.approx(2 / 2 ** 9)
    noise = compare_folders(before, noisy)[0]
    assert not noise.shown and noise.interval[0] < 0 < noise.interval[1]
    assert compare_folders(before, noisy, seed=3) == compare_folders(before, noisy, seed=3)


def test_higher_is_better_for_the_threshold_accuracies(tmp_path):
    before, after = tmp_path / 'before', tmp_path / 'after'
    write_set(before, 'velodyne', [0.2, 0.2], d1=[0.6, 0.7])
    write_set(after, 'velodyne', [0.2, 0.2], d1=[0.8, 0.7])
    d1 = compare_folders(before, after, metric='d1')[0]
    assert (d1.better, d1.worse, d1.equal) == (1, 0, 1)
    assert d1.difference == pytest.approx(0.1)


def test_frames_scored_in_neither_are_left_out_and_a_frame_in_one_only_is_refused(tmp_path):
    before, after, other = tmp_path / 'before', tmp_path / 'after', tmp_path / 'other'
    write_set(before, 'velodyne', [0.2, None, 0.3])
    write_set(after, 'velodyne', [0.1, None, 0.2])
    assert compare_folders(before, after)[0].frames == 2
    write_set(other, 'velodyne', [0.1, 0.5, 0.2])
    with pytest.raises(CompareInputError, match=r"'velodyne'.*only after: \[1\]"):
        compare_folders(before, other)


def test_folders_of_other_real_frames_are_refused(tmp_path):
    before, after = tmp_path / 'before', tmp_path / 'after'
    write_set(before, 'velodyne', [0.2, 0.3])
    write_set(after, 'velodyne', [0.2, 0.3])
    (before / 'summary.json').write_text(json.dumps({'frames': '/data/real'}))
    (after / 'summary.json').write_text(json.dumps({'frames': '/data/real /data/real3'}))
    with pytest.raises(CompareInputError, match='frame i is not the same frame in both'):
        compare_folders(before, after)
    (after / 'summary.json').write_text(json.dumps({'frames': '/data/real'}))
    assert compare_folders(before, after)[0].frames == 2


def test_folders_with_nothing_to_compare_are_refused(tmp_path):
    write_set(tmp_path / 'before', 'velodyne', [0.2])
    write_set(tmp_path / 'after', 'annotated', [0.2])
    with pytest.raises(CompareInputError, match='no set in common'):
        compare_folders(tmp_path / 'before', tmp_path / 'after')
    with pytest.raises(CompareInputError, match='not a folder'):
        compare_folders(tmp_path / 'missing', tmp_path / 'after')
    with pytest.raises(CompareInputError, match="no column 'nope'"):
        compare_folders(tmp_path / 'before', tmp_path / 'before', metric='nope')


def test_sign_test_is_the_exact_binomial():
    assert sign_test(8, 4) == pytest.approx(2 * sum(math.comb(12, k) for k in range(5)) / 4096)
    assert sign_test(0, 0) == 1.0
    assert sign_test(3, 3) == 1.0
    assert sign_test(12, 0) == pytest.approx(2 / 4096)


def test_the_command_prints_the_table_and_writes_json(tmp_path, capsys):
    before, after = tmp_path / 'before', tmp_path / 'after'
    write_set(before, 'velodyne', [0.3, 0.2])
    write_set(after, 'velodyne', [0.2, 0.1])
    out = tmp_path / 'compare.json'
    assert main([str(before), str(after), '--resamples', '200',
                 '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert '| velodyne | 2 | 0.2500 | 0.1500 | -0.1000 |' in printed
    assert 'velodyne: the frames tell the two apart' in printed
    written = json.loads(out.read_text())
    assert written['metric'] == 'abs_rel'
    assert written['sets'][0]['better'] == 2 and written['sets'][0]['shown'] is True
    assert main([str(before), str(tmp_path / 'missing')]) == 1
    assert 'compare-frames: ' in capsys.readouterr().err
    assert main([str(before), str(after), '--resamples', '0']) == 2
