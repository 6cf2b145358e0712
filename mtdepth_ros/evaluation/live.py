"""Live replay: play a bag into the running node, record what it publishes, score that.

The thin rclpy layer of the evaluation. It starts ``python -m
mtdepth_ros.node`` in the :data:`~mtdepth_ros.evaluation.session.OUTPUT_NAMESPACE`,
publishes the bag's image and camera_info messages as recorded (their CDR
bytes, so the node sees exactly the bag's encoding) at the recorded pace
times ``rate``, and writes every output the node publishes, as received, into
the report's ``predictions`` bag. Each output's log time there is its input's
recorded log time plus the measured latency, so the recording merges with the
input bag in a sensible order. Scoring then reads both bags together and
pairs outputs with images by header stamp (the node copies it); an image with
no output was dropped by the node (newest frame wins).

Camera images of a few MB cross processes here, so the replay loads the Fast
DDS large-message profile and keeps discovery on this machine unless the
environment already says otherwise (:func:`.live_node.transport_environment`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtdepth_ros.evaluation.bag_reader import BagReader, Frame
from mtdepth_ros.evaluation.bag_source import BagStats, header_stamp_ns, raw_messages
from mtdepth_ros.evaluation.bag_writer import OutputBag
from mtdepth_ros.evaluation.live_node import NODE_LOG, NodeProcess, transport_environment
from mtdepth_ros.evaluation.options import EvalOptions, make_reader
from mtdepth_ros.evaluation.report import Report
from mtdepth_ros.evaluation.session import (
    PREDICTIONS_BAG,
    EvaluationSession,
    output_topic,
    prepare_out_dir,
)
from mtdepth_ros.inference.card import ModelCard
from mtdepth_ros.inference.framing import FocalCorrectionError, focal_scale, input_region
from mtdepth_ros.inference.model_file import read_card
from mtdepth_ros.inference.outputs import available_outputs, message_type
from mtdepth_ros.inference.predictor import Prediction

PLAYER_NODE = 'mtdepth_eval_player'
SPIN_SLICE_S = 0.005  # executor slice while waiting for the next message's time
DRAIN_QUIET_S = 2.0  # after the last image: stop when no output came for this long ...
DRAIN_LATENCY_FACTOR = 5.0  # ... or this many times the median latency, if longer
DRAIN_LIMIT_S = 30.0
SETTLE_S = 0.5
PUBLISH_DEPTH = 10
RECORD_DEPTH = 50  # keep-last depth of the recording subscriptions (reliable)
SCORED_HEADS = ('depth', 'segmentation')

log = logging.getLogger('mtdepth_eval')
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'


@dataclass
class Recording:
    """What the player measured while the node ran."""

    published: list[int] = field(default_factory=list)  # image stamps, in publish order
    sent_s: dict[int, float] = field(default_factory=dict)  # stamp -> monotonic publish time
    received_s: dict[int, float] = field(default_factory=dict)  # stamp -> first output time
    with_camera: set[int] = field(default_factory=set)  # stamps answered with depth/camera_info
    outputs: dict[str, int] = field(default_factory=dict)  # topic -> messages recorded
    wall_s: float = 0.0

    def latency_s(self, stamp: int) -> float | None:
        if stamp not in self.received_s or stamp not in self.sent_s:
            return None
        return self.received_s[stamp] - self.sent_s[stamp]

    def input_rate_hz(self) -> float:
        """Images published per second while the bag played (NaN for fewer than two)."""
        return _rate([self.sent_s[s] for s in self.published if s in self.sent_s])

    def output_rate_hz(self) -> float:
        """Answered images per second: the rate a subscriber of ``depth`` saw."""
        return _rate([self.received_s[s] for s in self.published if s in self.received_s])


def _rate(times_s: list[float]) -> float:
    if len(times_s) < 2 or max(times_s) <= min(times_s):
        return float('nan')
    return (len(times_s) - 1) / (max(times_s) - min(times_s))


class Player:
    """Publishes the bag's input topics and records the node's outputs (one rclpy context)."""

    def __init__(self, outputs: list[str], recording_bag: OutputBag) -> None:
        import rclpy  # noqa: PLC0415
        from rclpy.executors import SingleThreadedExecutor  # noqa: PLC0415
        from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: PLC0415
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: PLC0415

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(PLAYER_NODE, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.bag = recording_bag
        self.recording = Recording()
        self.input_log_ns: dict[int, int] = {}  # stamp -> the image's recorded log time
        self.publishers: dict[str, Any] = {}
        self._types = {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CameraInfo': CameraInfo,
                       'sensor_msgs/msg/PointCloud2': PointCloud2,
                       COMPRESSED_IMAGE: CompressedImage}
        reliable = QoSProfile(depth=RECORD_DEPTH, reliability=ReliabilityPolicy.RELIABLE)
        self.recorders = []
        for output in outputs:
            topic, msgtype = output_topic(output), message_type(output)
            self.recorders.append(self.node.create_subscription(
                self._types[msgtype], topic, self._recorder(topic, msgtype), reliable, raw=True))
        self.recorded_topics = [output_topic(o) for o in outputs]

    def publisher(self, topic: str, msgtype: str) -> Any:
        if topic not in self.publishers:
            self.publishers[topic] = self.node.create_publisher(self._types[msgtype], topic,
                                                                PUBLISH_DEPTH)
        return self.publishers[topic]

    def _recorder(self, topic: str, msgtype: str) -> Callable[[bytes], None]:
        camera_topic = output_topic('depth_camera_info')

        def record(data: bytes) -> None:
            now = time.monotonic()
            stamp = header_stamp_ns(data)
            self.recording.received_s.setdefault(stamp, now)
            if topic == camera_topic:
                self.recording.with_camera.add(stamp)
            sent = self.recording.sent_s.get(stamp, now)
            log_ns = self.input_log_ns.get(stamp, 0) + int((now - sent) * 1e9)
            self.bag.write_raw(topic, msgtype, data, log_ns)
            self.recording.outputs[topic] = self.recording.outputs.get(topic, 0) + 1
        return record

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.executor.spin_once(timeout_sec=min(left, SPIN_SLICE_S))

    def wait_for_node(self, image_topic: str, image_type: str, node: NodeProcess,
                      timeout_s: float) -> None:
        """Until the node's image subscription and every output publisher match ours."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not node.alive():
                raise RuntimeError(f'the node exited during start-up:\n{node.tail()}')
            # Matched, not merely discovered: an output published before the node's
            # publisher has matched our recorder is lost (volatile QoS).
            images = self.publisher(image_topic, image_type)
            if images.get_subscription_count() > 0 and \
                    all(r.get_publisher_count() > 0 for r in self.recorders):
                self.spin_for(SETTLE_S)
                return
            self.spin_for(0.1)
        raise RuntimeError(f'the node did not come up within {timeout_s:g} s '
                           f'(its subscription to {image_topic} or its publishers of '
                           f'{", ".join(self.recorded_topics)} did not match ours):\n'
                           f'{node.tail()}')

    def close(self) -> None:
        import rclpy  # noqa: PLC0415

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def prime_camera_info(bag: Path, camera_info_topic: str | None, player: Player,
                      stats: BagStats) -> None:
    """Publish the bag's first camera_info once before playback.

    The node pairs an image with the camera_info of its stamp, but waits for
    one only after a first camera_info has arrived; without this, the first
    image could overtake its camera_info (two topics, no order between them)
    and be predicted without focal correction.
    """
    if not camera_info_topic:
        return
    for raw in raw_messages(bag, [camera_info_topic], stats):
        player.publisher(raw.topic, raw.msgtype).publish(bytes(raw.data))
        player.spin_for(SETTLE_S)
        return


def play(bag: Path, image_topic: str, camera_info_topic: str | None, player: Player,
         rate: float, stats: BagStats, selected: set[int] | None) -> None:
    """Publish the bag's images (only ``selected`` stamps, None = all) and camera_info at
    the recorded pace times ``rate``; spin the recorder in between."""
    topics = [t for t in (image_topic, camera_info_topic) if t]
    start_wall = start_log = None
    recording = player.recording
    for raw in raw_messages(bag, topics, stats):
        stamp = header_stamp_ns(raw.data)
        if raw.topic == image_topic and selected is not None and stamp not in selected:
            continue
        if start_wall is None or start_log is None:
            start_wall, start_log = time.monotonic(), raw.log_time_ns
        due = start_wall + (raw.log_time_ns - start_log) / 1e9 / rate
        player.spin_for(due - time.monotonic())
        publisher = player.publisher(raw.topic, raw.msgtype)
        if raw.topic == image_topic:
            player.input_log_ns[stamp] = raw.log_time_ns
            recording.sent_s[stamp] = time.monotonic()
            recording.published.append(stamp)
        publisher.publish(bytes(raw.data))
        player.executor.spin_once(timeout_sec=0)


def drain(player: Player) -> None:
    """Wait for the last outputs: until every image is answered or outputs stop coming."""
    recording = player.recording
    latencies = [v for v in (recording.latency_s(s) for s in recording.published) if v is not None]
    quiet = max(DRAIN_QUIET_S, DRAIN_LATENCY_FACTOR * float(np.median(latencies))
                if latencies else DRAIN_QUIET_S)
    deadline = time.monotonic() + DRAIN_LIMIT_S
    while time.monotonic() < deadline:
        if all(s in recording.received_s for s in recording.published):
            player.spin_for(0.2)  # the other outputs of the last frame
            return
        activity = [*recording.received_s.values(), *recording.sent_s.values()]
        if time.monotonic() - max(activity, default=0.0) > quiet:
            return
        player.spin_for(0.05)


def record_live(bag: Path, model: Path, out_dir: Path, options: EvalOptions,
                selected: set[int] | None, stats: BagStats) -> Recording:
    """Run the node on the bag; the outputs go to ``out_dir/predictions``."""
    card = read_card(model)
    outputs = [o for o in available_outputs(card)]
    outputs.sort(key=lambda o: o != 'depth')  # depth first: it tells when the node is up
    topics = options.topics
    for setting in transport_environment(os.environ):  # before rclpy starts, here and in the node
        log.info('live replay: %s (unset in the environment)', setting)
    image_type = stats.topics.get(topics.image, 'sensor_msgs/msg/Image')
    compressed = image_type == COMPRESSED_IMAGE
    node = NodeProcess(model, topics.image, topics.camera_info, options.backends,
                       options.focal_correction, options.node_args, out_dir / NODE_LOG,
                       compressed, flip=options.resolved_protocol().flip_tta,
                       ground_contact=options.ground_contact)
    started = time.monotonic()
    with OutputBag(out_dir / PREDICTIONS_BAG) as recording_bag:
        player = Player(outputs, recording_bag)
        try:
            player.wait_for_node(topics.image, image_type, node, options.startup_timeout_s)
            prime_camera_info(bag, topics.camera_info, player, stats)
            play(bag, topics.image, topics.camera_info, player, options.rate, stats, selected)
            drain(player)
            if not node.alive():
                stats.problems.append(f'the node exited with code {node.process.returncode} '
                                      f'during the replay; see {NODE_LOG}')
        finally:
            player.close()
            node.stop()
    player.recording.wall_s = time.monotonic() - started
    return player.recording


def node_depth_scale(card: ModelCard, frame: Frame, recording: Recording) -> float:
    """The focal correction the node applied to ``frame``'s depth: as the predictor
    computes it where the node had the frame's camera_info, 1 otherwise."""
    if frame.camera is None or frame.stamp_ns not in recording.with_camera:
        return 1.0
    height, width = frame.rgb.shape[:2]
    try:
        return focal_scale(card, frame.camera.fx, input_region(card, width, height))
    except FocalCorrectionError:
        return 1.0


def run_live(bag: Path, model: Path, out_dir: Path, options: EvalOptions) -> Report:
    """Live replay of ``bag`` through the node."""
    protocol = options.resolved_protocol()
    if protocol.input_crop != 'none':
        raise ValueError(f'input_crop {protocol.input_crop} is offline only: the node runs on '
                         'the whole image')
    if options.rate <= 0:
        raise ValueError(f'--rate must be positive, got {options.rate}')
    card = read_card(model)
    prepare_out_dir(out_dir)
    planning = make_reader(bag, options)  # which images the options select, and their stamps
    selected = _selected_stamps(planning)
    recording = record_live(bag, model, out_dir, options, selected, planning.stats)
    recorded = out_dir / PREDICTIONS_BAG
    heads = {h: output_topic(h) for h in SCORED_HEADS if card.has_head(h)}
    reader = make_reader(bag, options, predictions=heads, extra_paths=[recorded])
    session = EvaluationSession(card, model, reader, out_dir, protocol, 'live',
                                options.range_edges, options.label_classes, options.panels,
                                write_predictions=False)
    times, latencies, dropped = [], [], []
    without_camera = 0
    first = None
    for frame in reader:
        first = frame.stamp_ns if first is None else first
        bag_time = (frame.stamp_ns - first) / 1e9
        latency = recording.latency_s(frame.stamp_ns)
        if not frame.predicted:
            dropped.append(bag_time)
            session.skip(frame, 'dropped: the node published no output for this frame')
            continue
        if latency is not None:
            times.append(bag_time)
            latencies.append(latency)
        if card.has_head('depth') and frame.camera is not None and \
                frame.stamp_ns not in recording.with_camera:
            without_camera += 1
            frame.notes.append('the node answered without camera_info (no focal correction)')
        # The node's outputs cover the whole image (region None).
        prediction = Prediction(depth=frame.predicted.get('depth'),
                                segmentation=frame.predicted.get('segmentation'),
                                depth_scale=node_depth_scale(card, frame, recording))
        session.add(frame, prediction, {'latency_s': latency} if latency is not None else {})
    published = len(recording.published)
    live = {'published_images': published, 'answered_images': published - len(dropped),
            'dropped_images': len(dropped), 'answered_without_camera_info': without_camera,
            'drop_rate': len(dropped) / published if published else float('nan'),
            'rate_factor': options.rate, 'wall_s': recording.wall_s,
            'input_rate_hz': recording.input_rate_hz(),
            'output_rate_hz': recording.output_rate_hz(),
            'recorded_messages': recording.outputs, 'node_log': NODE_LOG}
    return session.finish({'live': live, 'run': {'ground_contact': options.ground_contact}},
                          latency=(times, latencies, dropped),
                          recorded_bag=recorded)


def _selected_stamps(reader: BagReader) -> set[int] | None:
    """Header stamps of the images the options select (None: all of them)."""
    if reader.start == 0 and reader.step == 1 and reader.max_frames is None:
        return None
    return {frame.stamp_ns for frame in reader}
