"""mtdepth-eval offline: a small bag scored end to end; the report holds the expected numbers."""

import csv
import json
import math

import numpy as np
import pytest
from evaluation_fixtures import (
    CITYSCAPES_CLASSES,
    depth_of,
    generate_bag,
    labels_of,
    read_ground_truth,
    write_bag,
)
from model_fixtures import FOCAL_PX, expected_depth, expected_segmentation, write_model

from mtdepth_ros.evaluation.bag_reader import BagReader, BagTopics
from mtdepth_ros.evaluation.evaluate import EvalOptions, evaluate_bag, main
from mtdepth_ros.evaluation.metrics import DEPTH_METRICS, depth_metrics, segmentation_metrics
from mtdepth_ros.evaluation.session import output_topic
from mtdepth_ros.inference.predictor import RANGE_EDGE

FRAMES, HEIGHT, WIDTH = 4, 24, 32  # the bag's images are the tiny model's input size
FIXTURE_FX = 0.9 * WIDTH  # evaluation_fixtures.camera


def expected_frame_depth(i, focal_correction=True):
    pred = expected_depth(HEIGHT, WIDTH)
    if focal_correction:
        pred = pred * np.float32(FIXTURE_FX / FOCAL_PX)
    return depth_metrics(pred, depth_of(i, HEIGHT, WIDTH))


def expected_miou(frames):
    pred = np.concatenate([expected_segmentation(HEIGHT, WIDTH).ravel()] * len(frames))
    gt = np.concatenate([labels_of(i, HEIGHT, WIDTH).ravel() for i in frames])
    return segmentation_metrics(pred, gt, 3)['miou']


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp('model') / 'tiny.onnx')


SYNTH_FRAMES, SYNTH_HEIGHT, SYNTH_WIDTH = 3, 48, 160


def expected_for_generated_bag(bag):
    """(per-frame depth metrics, mIoU) of the tiny model's known output on ``bag``."""
    frames, pred_labels, gt_labels = [], [], []
    segmentation = expected_segmentation(SYNTH_HEIGHT, SYNTH_WIDTH, CITYSCAPES_CLASSES)
    for depth, labels, fx in read_ground_truth(bag):
        pred = expected_depth(SYNTH_HEIGHT, SYNTH_WIDTH) * np.float32(fx / FOCAL_PX)
        frames.append(depth_metrics(pred, depth))
        pred_labels.append(segmentation.ravel())
        gt_labels.append(labels.ravel())
    miou = segmentation_metrics(np.concatenate(pred_labels), np.concatenate(gt_labels),
                                CITYSCAPES_CLASSES)['miou']
    return frames, miou


@pytest.fixture(scope='module')
def generated_report(tmp_path_factory):
    root = tmp_path_factory.mktemp('generated')
    bag = generate_bag(root / 'bag', SYNTH_FRAMES, SYNTH_WIDTH, SYNTH_HEIGHT)
    model = write_model(root / 'road.onnx', height=SYNTH_HEIGHT, width=SYNTH_WIDTH,
                        num_classes=CITYSCAPES_CLASSES)
    report = evaluate_bag(bag, model, root / 'report', 'offline', EvalOptions(progress=False))
    return bag, report


def test_generated_bag_scored_offline_holds_the_expected_numbers(generated_report):
    bag, report = generated_report
    frames, miou = expected_for_generated_bag(bag)
    saved = json.loads((report.out_dir / 'metrics.json').read_text())
    assert saved['frames']['depth_scored'] == saved['frames']['labels_scored'] == SYNTH_FRAMES
    for key in DEPTH_METRICS:
        expected = np.mean([f[key] for f in frames])
        assert saved['depth']['headline'][key] == pytest.approx(expected, rel=1e-5), key
    assert saved['segmentation']['miou'] == pytest.approx(miou)
    for name in ('frames.csv', 'report.md', 'report.html', 'plots/error_vs_distance.png',
                 'plots/per_class_iou.png', 'predictions/metadata.yaml'):
        assert (report.out_dir / name).exists(), name
    assert f"{saved['depth']['headline']['abs_rel']:.4f}" in (report.out_dir / 'report.md').read_text()


def test_generated_bag_reports_depth_per_ground_truth_class(generated_report):
    _, report = generated_report
    per_class = report.metrics['depth']['per_class']
    assert per_class['source'] == 'ground truth labels'
    pixels = sum(v['pixels'] for v in per_class['classes'].values())
    assert 0 < pixels <= report.metrics['depth']['ground_truth_pixels']
    assert '## Depth per class' in (report.out_dir / 'report.md').read_text()


@pytest.fixture(scope='module')
def offline_report(tmp_path_factory, model):
    root = tmp_path_factory.mktemp('offline')
    bag = write_bag(root / 'bag', frames=FRAMES)
    options = EvalOptions(progress=False, panels=2)
    return evaluate_bag(bag, model, root / 'report', 'offline', options)


def test_headline_depth_is_the_mean_of_frame_metrics(offline_report):
    frames = [expected_frame_depth(i) for i in range(FRAMES)]
    for key in DEPTH_METRICS:
        assert offline_report.depth[key] == pytest.approx(np.mean([f[key] for f in frames]),
                                                          rel=1e-5), key


@pytest.mark.parametrize('kind', ['png', 'jpeg'])
def test_a_bag_of_compressed_images_scores_as_its_raw_twin(tmp_path, model, offline_report,
                                                           kind):
    # PNG is lossless; the tiny model's output does not depend on the pixels either way
    bag = write_bag(tmp_path / 'bag', frames=FRAMES, compressed=kind)
    report = evaluate_bag(bag, model, tmp_path / 'report', 'offline',
                          EvalOptions(progress=False, panels=0))
    assert report.depth == pytest.approx(offline_report.depth, rel=1e-6)
    assert report.miou == pytest.approx(offline_report.miou)


def test_miou_comes_from_one_confusion_matrix(offline_report):
    assert offline_report.miou == pytest.approx(expected_miou(range(FRAMES)))


def test_report_files_exist(offline_report):
    out = offline_report.out_dir
    for name in ('metrics.json', 'frames.csv', 'report.md', 'report.html',
                 'plots/error_vs_distance.png', 'plots/error_histogram.png',
                 'plots/per_class_iou.png'):
        assert (out / name).is_file(), name
    assert len(list((out / 'panels').glob('*.png'))) == 2


def test_metrics_json_holds_the_numbers(offline_report):
    saved = json.loads((offline_report.out_dir / 'metrics.json').read_text())
    assert saved['depth']['headline']['abs_rel'] == pytest.approx(offline_report.depth['abs_rel'])
    assert saved['segmentation']['miou'] == pytest.approx(expected_miou(range(FRAMES)))
    assert saved['frames']['depth_scored'] == FRAMES
    assert saved['protocol']['name'] == 'raw' and saved['run']['mode'] == 'offline'


def test_frames_csv_has_one_row_per_frame(offline_report):
    with open(offline_report.out_dir / 'frames.csv') as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r['index']) for r in rows] == list(range(FRAMES))
    assert float(rows[2]['rmse']) == pytest.approx(expected_frame_depth(2)['rmse'], rel=1e-5)


def test_reports_show_the_headline_and_the_protocol(offline_report):
    rmse = f"{offline_report.depth['rmse']:.4f}"
    for name in ('report.md', 'report.html'):
        text = (offline_report.out_dir / name).read_text()
        assert rmse in text and 'protocol: raw' in text and 'Depth per range' in text


def test_predictions_bag_holds_the_node_topics(offline_report):
    stats = BagReader(offline_report.out_dir / 'predictions',
                      BagTopics(depth=output_topic('depth'), labels=None)).stats
    for output in ('depth', 'depth_camera_info', 'segmentation', 'segmentation_color',
                   'confidence', 'intervals', 'points'):
        assert output_topic(output) in stats.topics, output
    frames = list(BagReader(offline_report.out_dir / 'predictions',
                            BagTopics(depth=output_topic('depth'), labels=None)))
    assert len(frames) == FRAMES
    np.testing.assert_allclose(frames[0].depth, expected_depth(HEIGHT, WIDTH)
                               * np.float32(FIXTURE_FX / FOCAL_PX), rtol=1e-6)


def test_frames_without_ground_truth_are_reported(tmp_path, model):
    bag = write_bag(tmp_path / 'bag', frames=3, skip_gt=(1,))
    report = evaluate_bag(bag, model, tmp_path / 'out', options=EvalOptions(
        progress=False, panels=0, write_predictions=False, focal_correction=False))
    assert report.metrics['frames']['depth_scored'] == 2
    assert report.metrics['frames']['unmatched'] == {'no depth ground truth within 5 ms': 1,
                                                     'no labels ground truth within 5 ms': 1}
    expected = [expected_frame_depth(i, focal_correction=False)['mae'] for i in (0, 2)]
    assert report.depth['mae'] == pytest.approx(np.mean(expected), rel=1e-5)
    assert '1 frames: no depth ground truth within 5 ms' in \
        (tmp_path / 'out' / 'report.md').read_text()


def test_different_label_classes_are_not_scored_and_said_so(tmp_path, model):
    bag = write_bag(tmp_path / 'bag', frames=1)
    report = evaluate_bag(bag, model, tmp_path / 'out', options=EvalOptions(
        progress=False, panels=0, write_predictions=False,
        label_classes=('road', 'sidewalk', 'building')))
    assert report.miou is None
    assert 'only in the labels' in report.metrics['classes_check']
    assert 'differ' in (tmp_path / 'out' / 'report.md').read_text()


def test_kitti_eigen_protocol_caps_and_crops(tmp_path, model):
    bag = write_bag(tmp_path / 'bag', frames=1)
    report = evaluate_bag(bag, model, tmp_path / 'out', options=EvalOptions(
        protocol='kitti_eigen', progress=False, panels=0, write_predictions=False))
    pixels = report.metrics['depth']['pixels']['all']
    assert 0 < pixels < np.isfinite(depth_of(0, HEIGHT, WIDTH)).sum()  # the Garg crop
    assert 'Eigen split' in (tmp_path / 'out' / 'report.md').read_text()


def test_cli_writes_the_report_and_prints_a_summary(tmp_path, model, capsys):
    bag = write_bag(tmp_path / 'bag', frames=2)
    code = main([str(bag), '--model', str(model), '--out', str(tmp_path / 'out'),
                 '--no-progress', '--no-bag', '--panels', '0', '--ranges', '0,10,40'])
    assert code == 0
    printed = capsys.readouterr().out
    assert 'frames: 2 read, 2 depth-scored' in printed
    saved = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert list(saved['depth']['per_image']) == ['all', '0-10 m', '10-40 m']


def test_cli_missing_image_topic_is_a_clear_error(tmp_path, model, capsys):
    bag = write_bag(tmp_path / 'bag', frames=1)
    code = main([str(bag), '--model', str(model), '--out', str(tmp_path / 'out'),
                 '--image-topic', '/front/image'])
    assert code == 1
    assert "image topic '/front/image' is not in the bag" in capsys.readouterr().err


def test_cli_bag_without_ground_truth_exits_nothing_scored(tmp_path, model):
    bag = write_bag(tmp_path / 'bag', frames=1, with_depth=False, with_labels=False)
    code = main([str(bag), '--model', str(model), '--out', str(tmp_path / 'out'),
                 '--no-progress', '--panels', '0'])
    assert code == 3
    saved = json.loads((tmp_path / 'out' / 'metrics.json').read_text())
    assert saved['depth'] is None and saved['frames']['read'] == 1
    assert math.isclose(len(saved['bag']['problems']), 2)


def test_truncated_bag_scores_what_it_can_and_says_why(tmp_path, model):
    bag = write_bag(tmp_path / 'bag', frames=16, height=192, width=256)  # 1 MiB chunks
    (mcap,) = bag.glob('*.mcap')
    mcap.write_bytes(mcap.read_bytes()[:int(mcap.stat().st_size * 0.6)])
    report = evaluate_bag(bag, model, tmp_path / 'out', options=EvalOptions(
        progress=False, panels=0, write_predictions=False))
    assert 0 < report.metrics['frames']['depth_scored'] < 16
    text = (tmp_path / 'out' / 'report.md').read_text()
    assert 'bag: ' in text and 'truncated' in text


def test_error_vs_distance_bins_by_ground_truth_depth():
    from mtdepth_ros.evaluation.bag_reader import Frame
    from mtdepth_ros.evaluation.protocols import get_protocol
    from mtdepth_ros.evaluation.scoring import DISTANCE_BINS, Scorer, default_range_edges

    gt = np.array([[1.0, 1.5, 30.0, 90.0]], dtype=np.float32)  # 90 m: beyond the plot
    frame = Frame(index=0, stamp_ns=0, log_time_ns=0, frame_id='cam',
                  rgb=np.zeros((1, 4, 3), np.uint8), depth=gt)
    scorer = Scorer(get_protocol('raw'), (0, 10, 80), plot_max_m=80.0)
    scorer.add(frame, gt + 2, None)
    curve = scorer.distance_curve()
    assert len(curve['mae']) == DISTANCE_BINS and sum(curve['pixels']) == 3
    assert curve['pixels'][0] == 2 and curve['mae'][0] == pytest.approx(2.0)  # 0-2 m bin
    assert curve['rmse'][15] == pytest.approx(2.0)  # 30 m
    assert math.isnan(curve['mae'][1])
    assert default_range_edges(40.0) == (0.0, 10.0, 20.0, 30.0, 40.0)
    assert default_range_edges(4.5) == (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)


def test_input_crop_runs_the_model_on_the_kb_crop_and_scores_it_there(tmp_path, model):
    from mtdepth_ros.conversions.geometry import Region, kb_crop_region
    from mtdepth_ros.evaluation.bag_reader import Frame
    from mtdepth_ros.evaluation.offline import predict_frame
    from mtdepth_ros.evaluation.protocols import get_protocol
    from mtdepth_ros.inference.framing import input_region
    from mtdepth_ros.inference.predictor import Predictor

    rgb = np.zeros((HEIGHT * 2, WIDTH * 2, 3), np.uint8)
    frame = Frame(index=0, stamp_ns=0, log_time_ns=0, frame_id='camera', rgb=rgb)
    predictor = Predictor(model)
    cropped = predict_frame(predictor, frame, get_protocol('raw', input_crop='kb_crop'), False)
    whole = predict_frame(predictor, frame, get_protocol('raw'), False)
    # The KB crop of a 48x64 frame is 45x63; the predictor then centres the
    # model's own 3:4 framing inside it, and the region composes both.
    kb = kb_crop_region(rgb.shape[:2])
    framing = input_region(predictor.card, kb.width, kb.height)
    assert cropped.region == framing.within(kb) == Region(3, 1, 45, 60)
    assert whole.region == Region(0, 0, 48, 64)  # 3:4 already: the whole frame
    bag = write_bag(tmp_path / 'bag', frames=1)
    report = evaluate_bag(bag, model, tmp_path / 'out', options=EvalOptions(
        input_crop='kb_crop', progress=False, panels=0, write_predictions=False))
    region = kb_crop_region((HEIGHT, WIDTH))
    assert report.metrics['depth']['pixels']['all'] == \
        np.isfinite(region.of(depth_of(0, HEIGHT, WIDTH))).sum()
    assert 'KB crop of the image' in (tmp_path / 'out' / 'report.md').read_text()


def test_nearer_than_range_is_scored_at_the_cards_near_limit(tmp_path):
    """A model whose card range starts inside the scene marks the nearer half -inf (REP 117);
    those pixels are scored as the near limit times the focal correction, and the report
    says so."""
    depth = expected_depth(HEIGHT, WIDTH)
    near = float(np.median(depth))
    model = write_model(tmp_path / 'ranged.onnx', valid_range=(near, 1000.0))
    bag = write_bag(tmp_path / 'bag', frames=1)
    report = evaluate_bag(bag, model, tmp_path / 'out', options=EvalOptions(
        progress=False, panels=0, write_predictions=False))
    marked = depth <= np.float32(near) / RANGE_EDGE
    assert 0 < marked.sum() < marked.size
    scored = np.where(marked, np.float32(near), depth) * np.float32(FIXTURE_FX / FOCAL_PX)
    expected = depth_metrics(scored, depth_of(0, HEIGHT, WIDTH))
    assert report.depth['abs_rel'] == pytest.approx(expected['abs_rel'], rel=1e-5)
    assert report.metrics['depth']['pixels']['all'] == np.isfinite(depth_of(0, HEIGHT, WIDTH)).sum()
    assert f'near end, {near:g} m' in (tmp_path / 'out' / 'report.md').read_text()
