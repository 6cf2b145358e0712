"""The node's per-frame work outside the network, as a share of the network's time.

``python -m bench node``. KITTI-size bgr8 frames (1242x375), serialized as
the node's raw subscription receives them, go through the node's own
per-frame code (``read_image``, then
``mtdepth_ros.node.camera_frames.CameraFrames``: ``prepare`` decodes the
image, pairs the camera, crops and normalises;
``complete`` decodes the heads and writes every output's serialized bytes)
and real rclpy publishers (``publish`` of those bytes), with every output on
and subscribed, at ``network`` and at ``input`` resolution. The network is
the bundled model (ONNX Runtime with its default thread count, two on a
2-core machine: the fastest it runs here, so the strictest share; the node's
own default is one thread), timed in the same run. Frames go through the
stages one after another, as the node's worker takes them, and each stage is
timed inside that sequence (until 2026-12-01 each stage was timed in a loop
of its own, where its buffers stay in the cache and its threads stay awake:
1-3 percentage points lower shares). A second table times writing every
output from decoded heads to bytes against a plain copy of all those bytes,
at both resolutions: against a copy timed in a loop of its own (the floor
the targets are read against), and, as a second view, pair by pair against
a copy run right after each build (``bench.rows.paired_ratio``: steadier on
a virtual machine whose speed drifts, and the copy as cold as the node's).
A third run of the stages has ``flip: true`` (each frame with its mirror
image, one backend run of two): its network time against the plain run's.
A fourth has ``ground_contact: true``: its ``complete`` against the plain
run's, and the prior itself (``ground_contact_depth`` on the model's own
network-resolution depth and segmentation of a frame) against a plain
Python loop over the columns and their runs, timed in the same run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from bench.rows import (
    copy_seconds,
    median_seconds,
    paired_ratio,
    report,
    zero_page_copy_seconds,
)
from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.conversions.cdr import image_bytes
from mtdepth_ros.conversions.cloud_bytes import warm_up
from mtdepth_ros.conversions.geometry import Region
from mtdepth_ros.conversions.serialized_image import read_image
from mtdepth_ros.inference.ground_contact import ground_contact_depth
from mtdepth_ros.inference.outputs import (
    TOPICS,
    OutputBuilder,
    available_outputs,
    message_type,
)
from mtdepth_ros.inference.predictor import Predictor
from mtdepth_ros.inference.resources import default_model_candidates
from mtdepth_ros.node.camera_frames import CameraFrames, RosSide
from mtdepth_ros.node.camera_pairing import CameraInfoPairing
from mtdepth_ros.node.diagnostics import FrameStats
from mtdepth_ros.node.frame_slot import FrameSlot
from mtdepth_ros.node.parameters import config_from_values
from mtdepth_ros.node.process import tune_allocator
from mtdepth_ros.node.throttled_log import ThrottledLog

WIDTH, HEIGHT = 1242, 375
CAMERA = PinholeCamera(width=WIDTH, height=HEIGHT, fx=721.5, fy=721.5, cx=609.6, cy=172.9)
REPEATS = 10
FRAMES = 30  # frames through the whole per-frame sequence
SEED = 0
CLASSES = {'sensor_msgs/msg/Image': Image, 'sensor_msgs/msg/CameraInfo': CameraInfo,
           'sensor_msgs/msg/PointCloud2': PointCloud2}


class Frame:
    """One frame through CameraFrames, stage by stage."""

    def __init__(self, predictor: Predictor, resolution: str, publishers: dict[str, Any],
                 flip: bool = False, ground_contact: bool = False) -> None:
        config = config_from_values({'output_resolution': resolution, 'cache_camera_info': True,
                                     'points.drop_classes': 'sky', 'flip': flip,
                                     'ground_contact': ground_contact})
        pairing = CameraInfoPairing(cache_latest=True)
        self.header = Header(frame_id='camera_optical_frame')
        self.header.stamp.sec = 1
        pairing.add(CAMERA.to_camera_info(self.header))
        outputs = set(available_outputs(predictor.card))
        self.published: dict[str, bytes] = {}
        ros = RosSide(subscribed=lambda: set(outputs), camera_info_publishers=lambda: 1,
                      latency_s=lambda stamp: 0.0, publish=self.published.update,
                      running=lambda: True)
        self.frames = CameraFrames(predictor, lambda: config, FrameSlot(), ros, FrameStats(),
                                   ThrottledLog(logging.getLogger('bench')), pairing)
        self.predictor = predictor
        self.publishers = publishers
        rgb = np.random.default_rng(SEED).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
        self.data = image_bytes(rgb, 'bgr8', self.header)  # as the node's subscription gets it

    def prepare(self) -> Any:
        return self.frames.prepare(read_image(self.data))

    def network(self, job: Any) -> Any:
        job.raws, job.inference_s = self.predictor.infer(list(job.tensors), job.outputs)
        return job

    def publish(self) -> None:
        for output, data in self.published.items():
            self.publishers[output].publish(data)


def stages(frame: Frame) -> list[dict[str, Any]]:
    """Frames one after another as the node's worker takes them (prepare, network,
    complete, publish), each stage timed: each starts with the caches and the idle
    threads the stage before left, as in the node."""
    frame.network(frame.prepare())  # warm-up
    names = ('prepare (image bytes -> rgb, camera_info, crop, resize, normalise)',
             'complete (decode heads, write every output as bytes)',
             'publish the bytes (rclpy, no subscriber in the way)')
    network_times: list[float] = []
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(FRAMES):
        start = time.perf_counter()
        job = frame.prepare()
        prepared = time.perf_counter()
        frame.network(job)
        inferred = time.perf_counter()
        frame.frames.complete(job)
        completed = time.perf_counter()
        frame.publish()
        published = time.perf_counter()
        network_times.append(inferred - prepared)
        for name, seconds in zip(names, (prepared - start, completed - inferred,
                                         published - completed)):
            times[name].append(seconds)
    network_s = float(np.median(network_times))
    timings = {name: float(np.median(values)) for name, values in times.items()}
    overhead = sum(timings.values())
    rows = [{'stage': 'network', 'ms': network_s * 1e3, 'share of network': 1.0}]
    rows += [{'stage': stage, 'ms': s * 1e3, 'share of network': s / network_s}
             for stage, s in timings.items()]
    rows.append({'stage': 'outside the network (sum)', 'ms': overhead * 1e3,
                 'share of network': overhead / network_s})
    return rows


def serialization(predictor: Predictor) -> list[dict[str, Any]]:
    """Decoded heads -> every output's bytes, against a plain copy of those bytes, at both
    output resolutions (at ``network`` the copy stays in the cache; at ``input`` it
    does not)."""
    builder = OutputBuilder(predictor.card)
    rgb = np.random.default_rng(SEED).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    prediction = predictor.predict(rgb, focal_px=CAMERA.fx)
    header = Header(frame_id='camera_optical_frame')
    region = prediction.region or Region.whole((HEIGHT, WIDTH))
    view = CAMERA.cropped(region)
    outputs = available_outputs(predictor.card)
    # what CameraFrames.complete hands the builder at each resolution: the network's maps
    # (resized by the builder at input resolution) and the cloud's colours
    sizes = {'network': (predictor.input_size, prediction, predictor.network_image(rgb)),
             'input': ((region.width, region.height), prediction, region.of(rgb))}
    rows = []
    for resolution, (size, maps, colours) in sizes.items():
        build = partial(builder.build, header=header, prediction=maps, rgb=colours,
                        camera=view, size=size)
        rows += _serialization_rows(resolution, build, outputs)
    return rows


def _serialization_rows(resolution: str, build: Callable[[list[str]], dict[str, bytes]],
                        outputs: list[str]) -> list[dict[str, Any]]:
    built = build(outputs)
    total = sum(len(b) for b in built.values())
    copy_s = copy_seconds(b''.join(built.values()))  # the messages' own bytes
    zero_page_s = zero_page_copy_seconds(total)
    build_s = median_seconds(lambda: build(outputs))
    cloud_s = median_seconds(lambda: build(['points']))
    cloud_copy_s = copy_seconds(built['points'])
    paired_s, paired_copy_s, paired = paired_ratio(lambda: build(outputs), b''.join(built.values()))
    return [{'resolution': resolution, 'what': f'plain copy of every output '
             f'({total / 1e6:.2f} MB)', 'ms': copy_s * 1e3, 'vs copy': 1.0},
            {'resolution': resolution, 'what': 'the same from never-written pages (the floor '
             'until 2026-12-01)', 'ms': zero_page_s * 1e3, 'vs copy': zero_page_s / copy_s},
            {'resolution': resolution, 'what': 'every output, decoded heads -> bytes',
             'ms': build_s * 1e3, 'vs copy': build_s / copy_s,
             'vs never-written copy': build_s / zero_page_s},
            {'resolution': resolution, 'what': 'the same, each run followed by a copy of its '
             f'bytes (copy {paired_copy_s * 1e3:.3g} ms there; median of the pairs\' ratios)',
             'ms': paired_s * 1e3, 'vs copy': paired},
            {'resolution': resolution, 'what': f'the cloud alone ({len(built["points"]) / 1e6:.2f}'
             ' MB)', 'ms': cloud_s * 1e3, 'vs copy': cloud_s / cloud_copy_s}]


def ground_contact_loop(depth: np.ndarray, labels: np.ndarray, standing: frozenset[int],
                        ground: frozenset[int]) -> np.ndarray:
    """The baseline: the prior as a Python loop over each column's runs."""
    out = depth.copy()
    height, width = depth.shape
    for column in range(width):
        top = 0
        while top < height:
            foot = top
            while foot + 1 < height and labels[foot + 1, column] == labels[top, column]:
                foot += 1
            beneath = foot + 1
            if (labels[top, column] in standing and beneath < height
                    and labels[beneath, column] in ground
                    and np.isfinite(depth[beneath, column])):
                out[top:beneath, column] = depth[beneath, column]
            top = beneath
    return out


def ground_contact_cost(predictor: Predictor) -> list[dict[str, Any]]:
    """The prior on the model's own maps of a frame, vectorised and as a loop."""
    rgb = np.random.default_rng(SEED).integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8)
    prediction = predictor.predict(rgb, heads=['depth', 'segmentation'])
    depth, labels = prediction.depth, prediction.segmentation
    assert depth is not None and labels is not None
    standing, ground = predictor.ground_contact_classes
    fast = median_seconds(lambda: ground_contact_depth(depth, labels, standing, ground), REPEATS)
    loop = median_seconds(lambda: ground_contact_loop(depth, labels, frozenset(standing),
                                                      frozenset(ground)), 3)
    np.testing.assert_array_equal(ground_contact_depth(depth, labels, standing, ground),
                                  ground_contact_loop(depth, labels, frozenset(standing),
                                                      frozenset(ground)))
    return [{'ground contact': 'a Python loop over columns and runs', 'ms': loop * 1e3,
             'vs loop': 1.0},
            {'ground contact': 'ground_contact_depth (numpy)', 'ms': fast * 1e3,
             'vs loop': fast / loop}]


def main() -> None:
    model = next((m for m in default_model_candidates() if m.is_file()), None)
    if model is None:
        print('skipped: the bundled model is not installed (make venv)')
        return
    tune_allocator()  # as the node does
    warm_up()
    predictor = Predictor(model)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('bench_node', context=context)
    try:
        publishers = {output: node.create_publisher(CLASSES[message_type(output)], topic,
                                                    QoSProfile(depth=2))
                      for output, topic in TOPICS.items()}
        print(f'{Path(model).name} ({predictor.input_size[0]}x{predictor.input_size[1]}), '
              f'{predictor.description}; {WIDTH}x{HEIGHT} bgr8 frames, every output on; '
              f'medians of {FRAMES} frames (stages) and of {REPEATS} or more runs '
              '(serialization)\n')
        plain_ms = 0.0
        for resolution in ('network', 'input'):
            rows = stages(Frame(predictor, resolution, publishers))
            plain_ms = plain_ms or rows[0]['ms']
            report('node', [{'resolution': resolution, **row} for row in rows])
            print()
        rows = stages(Frame(predictor, 'network', publishers, flip=True))
        report('node', [{'resolution': 'network, flip', **row} for row in rows])
        print()
        report('node', [{'network': 'one image (the first run)', 'ms': plain_ms, 'vs one': 1.0},
                        {'network': 'with its mirror (flip: true)', 'ms': rows[0]['ms'],
                         'vs one': rows[0]['ms'] / plain_ms}],
               note='the cost of flip in the network')
        print()
        rows = stages(Frame(predictor, 'network', publishers, ground_contact=True))
        report('node', [{'resolution': 'network, ground_contact', **row} for row in rows])
        print()
        report('node', ground_contact_cost(predictor),
               note=f'the ground-contact prior on {predictor.input_size[0]}x'
                    f'{predictor.input_size[1]} maps')
        print()
        report('node', serialization(predictor), note='decoded heads to serialized bytes')
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        predictor.close()


if __name__ == '__main__':
    main()
