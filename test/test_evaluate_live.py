"""mtdepth-eval live: the bag played into the real node process, its outputs recorded and scored.

No timing assertions: whichever frames the node answers must score exactly as
the tiny model's known output does, and answered + dropped = published.
"""

import csv
import json

import numpy as np
import pytest
from evaluation_fixtures import depth_of, write_bag
from model_fixtures import FOCAL_PX, expected_depth, write_model

from mtdepth_ros.bags import BagReader, BagTopics
from mtdepth_ros.evaluate import EvalOptions, evaluate_bag
from mtdepth_ros.metrics import DEPTH_METRICS, depth_metrics
from mtdepth_ros.session import output_topic

FRAMES, HEIGHT, WIDTH = 6, 24, 32
FIXTURE_FX = 0.9 * WIDTH  # evaluation_fixtures.camera
PLAYBACK_RATE = 2.0  # twice the recorded 10 Hz


@pytest.fixture(scope='module')
def live_report(tmp_path_factory):
    root = tmp_path_factory.mktemp('live')
    model = write_model(root / 'tiny.onnx')
    bag = write_bag(root / 'bag', frames=FRAMES)
    options = EvalOptions(progress=False, panels=1, rate=PLAYBACK_RATE)
    return evaluate_bag(bag, model, root / 'report', 'live', options)


def answered(report):
    with open(report.out_dir / 'frames.csv') as stream:
        return [int(row['index']) for row in csv.DictReader(stream) if row['status'] == 'scored']


def test_every_published_frame_is_answered_or_counted_dropped(live_report):
    live = live_report.metrics['live']
    assert live['published_images'] == FRAMES
    assert live['answered_images'] + live['dropped_images'] == FRAMES
    assert live['answered_images'] == len(answered(live_report)) > 0


def test_scores_of_the_node_outputs_match_the_model(live_report):
    pred = expected_depth(HEIGHT, WIDTH) * np.float32(FIXTURE_FX / FOCAL_PX)
    frames = [depth_metrics(pred, depth_of(i, HEIGHT, WIDTH)) for i in answered(live_report)]
    for key in DEPTH_METRICS:
        assert live_report.depth[key] == pytest.approx(np.mean([f[key] for f in frames]),
                                                       rel=1e-5), key
    assert live_report.miou is not None


def test_latency_is_measured_and_plotted(live_report):
    saved = json.loads((live_report.out_dir / 'metrics.json').read_text())
    assert saved['run']['mode'] == 'live'
    assert saved['timing']['latency_s mean'] > 0
    assert (live_report.out_dir / 'plots' / 'latency.png').is_file()
    assert (live_report.out_dir / 'node.log').is_file()


def test_recorded_bag_holds_what_the_node_published(live_report):
    bag = live_report.files['predictions_bag']
    reader = BagReader(bag, BagTopics(image=output_topic('depth'), camera_info=None,
                                      depth=None, labels=None))
    frames = list(reader)
    assert len(frames) == live_report.metrics['live']['answered_images']
    assert output_topic('points') in reader.stats.topics
