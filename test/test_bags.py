"""Reading evaluation bags: stamp matching, depth encodings, missing and damaged parts."""

import numpy as np
import pytest
from evaluation_fixtures import FRAME_ID, TOPICS, depth_of, labels_of, stamp_ns, write_bag

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.clouds import depth_to_points, points_to_cloud
from mtdepth_ros.conversions.images import array_to_image, depth_from_message
from mtdepth_ros.evaluation.bag_reader import BagReader, BagTopics
from mtdepth_ros.evaluation.bag_source import BagError, header_stamp_ns
from mtdepth_ros.evaluation.bag_writer import OutputBag, header


def test_frames_come_in_order_with_matched_ground_truth(tmp_path):
    frames = list(BagReader(write_bag(tmp_path / 'bag', frames=3)))
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[1].stamp_ns == stamp_ns(1) and frames[1].frame_id == FRAME_ID
    np.testing.assert_array_equal(frames[1].depth, depth_of(1, 24, 32))
    np.testing.assert_array_equal(frames[2].labels, labels_of(2, 24, 32))
    assert frames[0].rgb.shape == (24, 32, 3) and frames[0].rgb[0, 0, 0] == 40
    assert frames[0].camera is not None and frames[0].camera.width == 32


def test_ground_truth_recorded_later_is_still_matched(tmp_path):
    frames = list(BagReader(write_bag(tmp_path / 'bag', frames=4, gt_delay_frames=2)))
    assert all(f.depth is not None and f.labels is not None for f in frames)
    np.testing.assert_array_equal(frames[3].depth, depth_of(3, 24, 32))


def test_stamp_tolerance_decides_the_match(tmp_path):
    path = write_bag(tmp_path / 'bag', frames=2, gt_offset_s=0.004)
    assert all(f.depth is not None for f in BagReader(path, tolerance_s=0.005))
    reader = BagReader(path, tolerance_s=0.003)
    frames = list(reader)
    assert all(f.depth is None for f in frames)
    assert reader.stats.unmatched == {'no depth ground truth within 3 ms': 2,
                                      'no labels ground truth within 3 ms': 2}
    assert 'no depth ground truth within 3 ms' in frames[0].notes


def test_frames_without_ground_truth_are_yielded_and_counted(tmp_path):
    reader = BagReader(write_bag(tmp_path / 'bag', frames=3, skip_gt=(1,)))
    frames = list(reader)
    assert [f.depth is None for f in frames] == [False, True, False]
    assert reader.stats.images == 3
    assert reader.stats.unmatched['no depth ground truth within 5 ms'] == 1


def test_16uc1_depth_is_millimetres(tmp_path):
    frames = list(BagReader(write_bag(tmp_path / 'bag', frames=1, depth_encoding='16UC1')))
    expected = depth_of(0, 24, 32)
    np.testing.assert_allclose(frames[0].depth, expected, atol=5e-4)
    assert np.isnan(frames[0].depth[0, 0])  # 0 mm -> no measurement


def test_depth_message_decoding_marks_zero_and_negative_invalid():
    depth = np.array([[2.5, 0.0], [-1.0, np.inf]], dtype=np.float32)
    decoded = depth_from_message(array_to_image(depth, '32FC1'))
    assert decoded[0, 0] == 2.5 and np.isnan(decoded[0, 1:]).all() and np.isnan(decoded[1]).all()
    with pytest.raises(ValueError, match="depth encoding 'rgb8'"):
        depth_from_message(array_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb8'))


def test_sqlite3_bags_read_the_same(tmp_path):
    frames = list(BagReader(write_bag(tmp_path / 'bag', frames=2, storage='sqlite3')))
    np.testing.assert_array_equal(frames[1].depth, depth_of(1, 24, 32))


def test_missing_ground_truth_topic_is_a_problem_not_an_error(tmp_path):
    reader = BagReader(write_bag(tmp_path / 'bag', frames=2, with_labels=False))
    frames = list(reader)
    assert all(f.depth is not None and f.labels is None for f in frames)
    assert not reader.has_labels and reader.has_depth
    assert any("labels topic '/ground_truth/labels' is not in the bag" in p
               for p in reader.stats.problems)


def test_missing_image_topic_names_the_topics_there(tmp_path):
    path = write_bag(tmp_path / 'bag', frames=1)
    with pytest.raises(BagError, match=r"image topic '/cam/image' is not in the bag.*/camera/"):
        BagReader(path, BagTopics(image='/cam/image'))


def test_missing_bag_is_a_clear_error(tmp_path):
    with pytest.raises(BagError, match='no such bag'):
        BagReader(tmp_path / 'nowhere')


def test_truncated_mcap_is_read_up_to_the_damage(tmp_path):
    # 192x256 rgb8 images (147 kB): rosbags closes a chunk after each 1 MiB,
    # so cutting the file at 60 % keeps the first chunks whole.
    path = write_bag(tmp_path / 'bag', frames=16, height=192, width=256)
    (mcap,) = path.glob('*.mcap')
    data = mcap.read_bytes()
    mcap.write_bytes(data[:int(len(data) * 0.6)])
    reader = BagReader(path)
    frames = list(reader)
    assert 0 < len(frames) < 16
    np.testing.assert_array_equal(frames[-1].depth, depth_of(frames[-1].index, 192, 256))
    assert any('cannot open the bag' in p for p in reader.stats.problems)
    assert any('truncated' in p for p in reader.stats.problems)


def test_bare_mcap_file_is_read(tmp_path):
    path = write_bag(tmp_path / 'bag', frames=2)
    (mcap,) = path.glob('*.mcap')
    assert len(list(BagReader(mcap))) == 2


def test_start_step_and_max_frames_select_images(tmp_path):
    path = write_bag(tmp_path / 'bag', frames=6)
    assert [f.index for f in BagReader(path, start=1, step=2, max_frames=2)] == [1, 3]


def test_output_bag_round_trips_node_messages(tmp_path):
    head = header(stamp_ns(3), FRAME_ID)
    depth = depth_of(0, 6, 8)
    cam = PinholeCamera(width=8, height=6, fx=7.0, fy=7.0, cx=4.0, cy=3.0)
    with OutputBag(tmp_path / 'out') as bag:
        bag.write('/mtdepth/depth', array_to_image(depth, '32FC1', head), stamp_ns(3))
        bag.write('/mtdepth/depth/camera_info', cam.to_camera_info(head), stamp_ns(3))
        bag.write('/mtdepth/points', points_to_cloud(depth_to_points(depth, cam), head),
                  stamp_ns(3))
    from rosbags.highlevel import AnyReader

    with AnyReader([tmp_path / 'out']) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        decoded = {c.topic: reader.deserialize(raw, c.msgtype)
                   for c, _, raw in reader.messages()}
    assert types['/mtdepth/points'] == 'sensor_msgs/msg/PointCloud2'
    np.testing.assert_array_equal(depth_from_message(decoded['/mtdepth/depth']), depth)
    assert PinholeCamera.from_camera_info(decoded['/mtdepth/depth/camera_info']) == cam
    assert decoded['/mtdepth/points'].width == 8 and decoded['/mtdepth/points'].height == 6
    assert decoded['/mtdepth/depth'].header.stamp.sec == stamp_ns(3) // 10**9


def test_output_bag_refuses_to_overwrite(tmp_path):
    (tmp_path / 'out').mkdir()
    with pytest.raises(BagError, match='already exists'):
        OutputBag(tmp_path / 'out')


def test_header_stamp_is_read_from_the_cdr_bytes():
    from mtdepth_ros.evaluation.bag_source import default_typestore
    from mtdepth_ros.evaluation.bag_writer import to_rosbags

    store = default_typestore()
    msg = to_rosbags(array_to_image(np.zeros((2, 2), np.uint8), 'mono8',
                                    header(12_345_678_901, 'x')), store)
    data = store.serialize_cdr(msg, msg.__msgtype__)
    assert header_stamp_ns(data) == 12_345_678_901
    assert TOPICS.image == '/camera/image_raw'


def test_undecodable_image_is_skipped_with_its_reason(tmp_path):
    head = header(stamp_ns(0), FRAME_ID)
    good = array_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb8', header(stamp_ns(1), FRAME_ID))
    bad = array_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb8', head)
    bad.encoding = 'yuv420'  # not a supported encoding
    with OutputBag(tmp_path / 'bag') as bag:
        bag.write(TOPICS.image, bad, stamp_ns(0))
        bag.write(TOPICS.image, good, stamp_ns(1))
    reader = BagReader(tmp_path / 'bag')
    assert [f.index for f in reader] == [1]
    ((reason, count),) = reader.stats.skipped.items()
    assert count == 1 and "unsupported image encoding 'yuv420'" in reason
