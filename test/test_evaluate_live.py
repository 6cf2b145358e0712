"""mtdepth-eval live: a generated bag played into the real node process, its outputs
recorded and scored.

No timing assertions: whichever frames the node answers must score exactly as
the tiny model's known output does, and answered + dropped = published.
"""

import csv
import json

import numpy as np
import pytest
from evaluation_fixtures import CITYSCAPES_CLASSES, generate_bag, read_ground_truth
from model_fixtures import (
    CLASS_NAMES,
    FOCAL_PX,
    LOW_CONFIDENCE,
    expected_depth,
    expected_segmentation,
    write_model,
)

from mtdepth_ros.evaluation.bag_reader import BagReader, BagTopics
from mtdepth_ros.evaluation.evaluate import EvalOptions, evaluate_bag
from mtdepth_ros.evaluation.live_node import transport_environment
from mtdepth_ros.evaluation.metrics import DEPTH_METRICS, depth_metrics, segmentation_metrics
from mtdepth_ros.evaluation.session import output_topic

FRAMES, HEIGHT, WIDTH = 4, 48, 160  # generated bag; the tiny model's input is the same size
PLAYBACK_RATE = 2.0  # twice the recorded 10 Hz


@pytest.fixture(scope='module')
def live_report(tmp_path_factory):
    root = tmp_path_factory.mktemp('live')
    model = write_model(root / 'road.onnx', height=HEIGHT, width=WIDTH,
                        num_classes=CITYSCAPES_CLASSES)
    bag = generate_bag(root / 'bag', FRAMES, WIDTH, HEIGHT)
    options = EvalOptions(progress=False, panels=1, rate=PLAYBACK_RATE)
    return bag, evaluate_bag(bag, model, root / 'report', 'live', options)


def answered(report):
    with open(report.out_dir / 'frames.csv') as stream:
        return [int(row['index']) for row in csv.DictReader(stream) if row['status'] == 'scored']


def focal_scale(report, index, fx):
    """The node corrects for the focal length only when it had the frame's camera_info."""
    with open(report.out_dir / 'frames.csv') as stream:
        notes = {int(row['index']): row['notes'] for row in csv.DictReader(stream)}
    return np.float32(1.0) if 'without camera_info' in notes[index] else np.float32(fx / FOCAL_PX)


def test_every_published_frame_is_answered_or_counted_dropped(live_report):
    _, report = live_report
    live = report.metrics['live']
    assert live['published_images'] == FRAMES
    assert live['answered_images'] + live['dropped_images'] == FRAMES
    assert live['answered_images'] == len(answered(report)) > 0
    assert live['input_rate_hz'] > 0  # measured, not checked against a speed


def test_scores_of_the_node_outputs_match_the_model(live_report):
    bag, report = live_report
    truth = read_ground_truth(bag)
    indices = answered(report)
    frames = [depth_metrics(expected_depth(HEIGHT, WIDTH) * focal_scale(report, i, truth[i][2]),
                            truth[i][0]) for i in indices]
    saved = json.loads((report.out_dir / 'metrics.json').read_text())
    for key in DEPTH_METRICS:
        expected = np.mean([f[key] for f in frames])
        assert saved['depth']['headline'][key] == pytest.approx(expected, rel=1e-5), key
    segmentation = expected_segmentation(HEIGHT, WIDTH, CITYSCAPES_CLASSES).ravel()
    miou = segmentation_metrics(np.concatenate([segmentation] * len(indices)),
                                np.concatenate([truth[i][1].ravel() for i in indices]),
                                CITYSCAPES_CLASSES)['miou']
    assert saved['segmentation']['miou'] == pytest.approx(miou)


def test_latency_is_measured_and_plotted(live_report):
    _, report = live_report
    saved = json.loads((report.out_dir / 'metrics.json').read_text())
    assert saved['run']['mode'] == 'live'
    assert saved['timing']['latency_s mean'] > 0
    for name in ('plots/latency.png', 'node.log', 'report.md', 'report.html', 'frames.csv'):
        assert (report.out_dir / name).is_file(), name


def test_recorded_bag_holds_what_the_node_published(live_report):
    _, report = live_report
    reader = BagReader(report.files['predictions_bag'], BagTopics(
        image=output_topic('depth'), camera_info=None, depth=None, labels=None))
    frames = list(reader)
    assert len(frames) == report.metrics['live']['answered_images']
    assert output_topic('points') in reader.stats.topics


def test_replay_loads_the_large_message_profile_where_the_environment_lacks_it():
    environ = {}
    changed = transport_environment(environ)
    profile = environ['FASTDDS_DEFAULT_PROFILES_FILE']
    assert profile.endswith('config/fastdds_large_messages.xml')
    assert environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert changed == [f'FASTDDS_DEFAULT_PROFILES_FILE={profile}',
                       'ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST']


def test_replay_keeps_the_users_transport_settings():
    mine = {'FASTDDS_DEFAULT_PROFILES_FILE': '/etc/my_profile.xml',
            'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'}
    environ = dict(mine)
    assert transport_environment(environ) == []
    assert environ == mine
    cyclone = {'RMW_IMPLEMENTATION': 'rmw_cyclonedds_cpp', 'ROS_LOCALHOST_ONLY': '1'}
    environ = dict(cyclone)
    assert transport_environment(environ) == []  # no Fast DDS profile for another RMW
    assert environ == cyclone


def test_a_compressed_image_topic_is_replayed_through_the_node(tmp_path):
    from evaluation_fixtures import write_bag  # noqa: PLC0415

    model = write_model(tmp_path / 'tiny.onnx')
    bag = write_bag(tmp_path / 'bag', frames=3, height=48, width=64, compressed='jpeg')
    report = evaluate_bag(bag, model, tmp_path / 'report', 'live',
                          EvalOptions(progress=False, panels=0, rate=PLAYBACK_RATE))
    node_log = (report.out_dir / 'node.log').read_text()
    assert report.metrics['frames']['depth_scored'] >= 1, node_log
    assert 'Traceback' not in node_log


def test_flip_tta_runs_the_node_with_its_mirror_pass(tmp_path):
    from rosbags.highlevel import AnyReader  # noqa: PLC0415

    from mtdepth_ros.conversions.images import image_to_array  # noqa: PLC0415

    model = write_model(tmp_path / 'tiny.onnx')
    bag = generate_bag(tmp_path / 'bag', 2, 64, 48)
    report = evaluate_bag(bag, model, tmp_path / 'report', 'live',
                          EvalOptions(progress=False, panels=0, rate=PLAYBACK_RATE, flip_tta=True))
    assert 'flip test-time augmentation: on' in (report.out_dir / 'report.md').read_text()
    # the tiny model's confidence is 1 on the left half and LOW_CONFIDENCE on the right:
    # with the mirror pass flipped back and averaged in, it is their mean everywhere
    with AnyReader([report.files['predictions_bag']]) as reader:
        connections = [c for c in reader.connections if c.topic == output_topic('confidence')]
        maps = [image_to_array(reader.deserialize(raw, c.msgtype))
                for c, _, raw in reader.messages(connections=connections)]
    assert maps, (report.out_dir / 'node.log').read_text()
    for confidence in maps:
        np.testing.assert_allclose(confidence, (1 + LOW_CONFIDENCE) / 2)


def test_ground_contact_runs_the_node_with_its_prior(tmp_path):
    from rosbags.highlevel import AnyReader  # noqa: PLC0415

    from mtdepth_ros.conversions.images import image_to_array  # noqa: PLC0415

    model = write_model(tmp_path / 'standing.onnx', standing=True)
    bag = generate_bag(tmp_path / 'bag', 2, 64, 48)
    report = evaluate_bag(bag, model, tmp_path / 'report', 'live',
                          EvalOptions(progress=False, panels=0, rate=PLAYBACK_RATE,
                                      ground_contact=True))
    assert 'ground-contact prior on' in (report.out_dir / 'report.md').read_text()
    # the tiny model's car band stands on road: in the node's depth it is at the road's
    # depth beneath it, down each column
    car = expected_segmentation(standing=True) == CLASS_NAMES.index('car')
    with AnyReader([report.files['predictions_bag']]) as reader:
        connections = [c for c in reader.connections if c.topic == output_topic('depth')]
        maps = [image_to_array(reader.deserialize(raw, c.msgtype))
                for c, _, raw in reader.messages(connections=connections)]
    assert maps, (report.out_dir / 'node.log').read_text()
    columns = np.flatnonzero(car.any(axis=0))
    assert columns.size
    for depth in maps:
        for column in columns:
            standing = depth[car[:, column], column]
            np.testing.assert_allclose(standing, standing[-1], rtol=1e-6)
