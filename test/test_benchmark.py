"""`python -m training test`: a generated KITTI tree and NYU file scored as mtdepth-eval scores a bag.

The same frames are written into a rosbag and scored by `mtdepth-eval`
offline; both reports must hold the same numbers, to the last bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from model_fixtures import write_model
from test_data_trees import kitti_tree, nyu_tree

from mtdepth_ros.conversions.images import array_to_image
from mtdepth_ros.evaluation.bag_reader import BagTopics
from mtdepth_ros.evaluation.bag_writer import OutputBag, header
from mtdepth_ros.evaluation.evaluate import EvalOptions, evaluate_bag
from training.__main__ import main as training_main
from training.benchmark import DatasetFrames, run_test, scored_dataset

TOPICS = BagTopics()


def write_frames_bag(frames: DatasetFrames, path: Path) -> Path:
    """The frames as a bag: image, camera_info, 32FC1 depth (NaN = none), mono8 labels."""
    with OutputBag(path) as bag:
        for frame in frames:
            head = header(frame.stamp_ns, frame.frame_id)
            assert frame.camera is not None
            bag.write(TOPICS.camera_info, frame.camera.to_camera_info(head), frame.log_time_ns)
            bag.write(TOPICS.image, array_to_image(frame.rgb, 'rgb8', head), frame.log_time_ns)
            if frame.depth is not None:
                bag.write(TOPICS.depth, array_to_image(frame.depth, '32FC1', head),
                          frame.log_time_ns)
            if frame.labels is not None:
                labels = np.ascontiguousarray(frame.labels, dtype=np.uint8)
                bag.write(TOPICS.labels, array_to_image(labels, 'mono8', head), frame.log_time_ns)
    return path


def recipe(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump({'data': data}))
    return path


CASES = {
    'kitti_eigen': (kitti_tree, {'dataset': 'kitti', 'test_split': 'test',
                                 'test_args': {'depth': 'annotated_or_velodyne'}}, 19),
    'nyu_eigen': (nyu_tree, {'dataset': 'nyu', 'test_split': 'test',
                             'val_args': {'resize': [48, 64]}}, 40),
}


@pytest.mark.parametrize('protocol', sorted(CASES))
def test_test_command_equals_mtdepth_eval_on_a_bag_of_the_same_frames(tmp_path, protocol):
    tree, data, classes = CASES[protocol]
    config = recipe(tmp_path / 'recipe.yaml', {**data, 'root': str(tree())})
    model = write_model(tmp_path / 'model.onnx', echo=True, num_classes=classes)
    report = run_test(model, protocol, tmp_path / 'test', recipe=config, panels=1)

    dataset, _ = scored_dataset(yaml.safe_load(config.read_text())['data'], None, None, None)
    bag = write_frames_bag(DatasetFrames(dataset, 'frames'), tmp_path / 'bag')
    from_bag = evaluate_bag(bag, model, tmp_path / 'eval', 'offline', EvalOptions(
        protocol=protocol, progress=False, panels=0, write_predictions=False))

    ours, theirs = report.metrics, from_bag.metrics
    assert ours['frames']['depth_scored'] == theirs['frames']['depth_scored'] == len(dataset) > 0
    # Every range, exactly (NaN for a range without pixels on both sides).
    np.testing.assert_equal(ours['depth']['per_image'], theirs['depth']['per_image'])
    np.testing.assert_equal(ours['depth']['pooled'], theirs['depth']['pooled'])
    assert ours['depth']['pixels'] == theirs['depth']['pixels']
    assert ours['depth']['pixels']['all'] > 0 and ours['segmentation']['frames_scored'] > 0
    np.testing.assert_equal(ours['segmentation']['per_class_iou'],
                            theirs['segmentation']['per_class_iou'])
    assert ours['protocol'] == theirs['protocol']
    assert (tmp_path / 'test' / 'report.html').is_file()
    assert list((tmp_path / 'test' / 'panels').glob('*.png'))


def test_native_frames_are_scored_whatever_the_validation_resize(tmp_path):
    # val_args resize the network input; the benchmark scores the native ground truth.
    config = recipe(tmp_path / 'recipe.yaml', {**CASES['nyu_eigen'][1], 'root': str(nyu_tree())})
    dataset, _ = scored_dataset(yaml.safe_load(config.read_text())['data'], None, None, None)
    assert dataset.augment.resize is None
    assert dataset.read(0).image.shape[:2] == next(iter(DatasetFrames(dataset, 'x'))).rgb.shape[:2]


def test_cli_prints_the_headline_and_writes_the_report(tmp_path, capsys):
    config = recipe(tmp_path / 'recipe.yaml', {**CASES['kitti_eigen'][1], 'root': str(kitti_tree())})
    model = write_model(tmp_path / 'model.onnx', echo=True, num_classes=19)
    code = training_main(['test', str(model), '--protocol', 'kitti_eigen', '--out',
                          str(tmp_path / 'out'), '--config', str(config), '--panels', '0'])
    assert code == 0
    printed = capsys.readouterr().out
    assert 'abs_rel' in printed and 'frames depth-scored' in printed
    metrics = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert metrics['protocol']['name'] == 'kitti_eigen' and metrics['run']['dataset']


def test_benchmark_selection_through_another_dataset_class(tmp_path):
    # --dataset switches the class; the recipe's KITTI arguments are not passed to it.
    config = recipe(tmp_path / 'recipe.yaml', {**CASES['kitti_eigen'][1], 'root': str(kitti_tree())})
    model = write_model(tmp_path / 'model.onnx', echo=True, num_classes=19)
    report = run_test(model, 'kitti_benchmark', tmp_path / 'out', split='val_selection',
                      dataset='training.data.kitti.KittiSelection', recipe=config, panels=0)
    assert report.metrics['frames']['depth_scored'] > 0
    assert 'KittiSelection' in report.metrics['run']['dataset']
