import math

import numpy as np
import pytest

from mtdepth_ros.conversions.labels import IGNORE_INDEX
from mtdepth_ros.inference.depth_coding import MULTIDEPTH_KITTI, DepthCoding


def test_multidepth_coding_matches_the_paper_formula():
    depth = np.array([2.0, 10.0, 50.0, 125.0], np.float32)
    expected = np.log(depth - 1) / math.log(124)
    np.testing.assert_allclose(MULTIDEPTH_KITTI.encode(depth), expected, rtol=1e-6)


def test_encode_clips_to_range_and_marks_invalid_nan():
    coded = MULTIDEPTH_KITTI.encode(np.array([0.0, -1.0, np.nan, np.inf, 1.0, 500.0]))
    assert np.isnan(coded[:4]).all()
    assert coded[4] == 0.0 and coded[5] == 1.0


def test_decode_is_the_exact_inverse_on_the_range():
    depth = np.linspace(2.0, 125.0, 1001, dtype=np.float32)
    np.testing.assert_allclose(MULTIDEPTH_KITTI.decode(MULTIDEPTH_KITTI.encode(depth)), depth,
                               rtol=1e-5)


def test_decode_clips_overshoot_and_keeps_nan():
    decoded = MULTIDEPTH_KITTI.decode(np.array([-0.2, 1.3, np.nan]))
    assert decoded[0] == pytest.approx(2.0) and decoded[1] == pytest.approx(125.0, rel=1e-5)
    assert np.isnan(decoded[2])


def test_intervals_are_uniform_in_log_space_and_ignore_invalid():
    coding = DepthCoding(d_min=1.0, d_max=math.e ** 4, num_intervals=4)  # ln(d) / 4
    labels = coding.depth_to_intervals(np.array([1.0, 2.0, 3.0, 8.0, 54.0, 0.0]))
    # ln d / 4 = 0, .17, .27, .52, .997 -> bins of width 0.25
    assert labels.tolist() == [0, 0, 1, 2, 3, IGNORE_INDEX]
    np.testing.assert_allclose(coding.bin_edges(), np.exp([0, 1, 2, 3, 4]), rtol=1e-5)


def test_clip_planes_put_far_depth_in_last_interval():
    coding = DepthCoding(d_min=1.0, d_max=100.0, num_intervals=8, clip_min=2.0, clip_max=50.0)
    labels = coding.depth_to_intervals(np.array([1.0, 2.0, 49.9, 80.0]))
    assert labels.tolist() == [0, 0, 7, 7]
    edges = coding.bin_edges()
    assert edges[0] == pytest.approx(2.0) and edges[-1] == pytest.approx(50.0, rel=1e-5)


def test_bin_centres_round_trip_through_intervals():
    centres = MULTIDEPTH_KITTI.bin_centres()
    labels = MULTIDEPTH_KITTI.depth_to_intervals(centres)
    assert labels.tolist() == list(range(32))
    decoded = MULTIDEPTH_KITTI.intervals_to_depth(np.array([0, 31, IGNORE_INDEX]))
    assert decoded[0] == pytest.approx(centres[0]) and np.isnan(decoded[2])


@pytest.mark.parametrize('kwargs, message', [
    (dict(d_min=5.0, d_max=2.0), 'd_min < d_max'),
    (dict(num_intervals=0), 'num_intervals'),
    (dict(clip_min=1.0), 'clip planes'),
    (dict(d_max=math.inf), 'finite'),
])
def test_bad_coding_is_refused_with_the_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DepthCoding(**kwargs)


def test_dict_round_trip_and_unknown_keys():
    coding = DepthCoding(d_min=0.5, d_max=10.0, num_intervals=16, clip_max=8.0)
    assert DepthCoding.from_dict(coding.to_dict()) == DepthCoding(
        d_min=0.5, d_max=10.0, num_intervals=16, clip_min=0.5, clip_max=8.0)
    with pytest.raises(ValueError, match='unknown depth coding keys'):
        DepthCoding.from_dict({'d_min': 1.0, 'd_maxx': 2.0})
