"""One camera's frames around the network: checks, pairing, framing, messages, statistics.

The inference worker (:mod:`.scheduler`) calls :meth:`CameraFrames.prepare`
(decode the image, pair its camera_info, crop and normalise it, and mirror it
with ``flip``) and
:meth:`CameraFrames.complete` (decode the heads, build and publish the
messages). A bad frame raises :class:`FrameDropped` with a reason that is
counted; anything else is counted as an error. No rclpy: the node hands in
what ROS knows (who subscribes, who publishes camera_info, the clock, how to
publish).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mtdepth_ros.conversions.camera import CameraInfoError, PinholeCamera
from mtdepth_ros.conversions.compressed import message_to_rgb_or_bgr
from mtdepth_ros.conversions.geometry import Region
from mtdepth_ros.conversions.images import SUPPORTED_ENCODINGS, ImageError, image_to_array
from mtdepth_ros.inference.framing import (
    AXIS_MISMATCH_TOLERANCE,
    FocalCorrectionError,
    axis_mismatch,
    focal_scale,
)
from mtdepth_ros.inference.outputs import (
    CAMERA_OUTPUTS,
    OutputBuilder,
    heads_for,
)
from mtdepth_ros.inference.predictor import Prediction, Predictor
from mtdepth_ros.node.camera_pairing import CameraInfoPairing
from mtdepth_ros.node.diagnostics import ERROR_REASON, FrameStats
from mtdepth_ros.node.frame_slot import FrameSlot
from mtdepth_ros.node.parameters import NodeConfig
from mtdepth_ros.node.scheduler import Job
from mtdepth_ros.node.throttled_log import ThrottledLog

NO_CAMERA_NOTE = 'points skipped: no camera_info'
UNUSABLE_CAMERA_NOTE = 'unusable camera_info'
AXIS_NOTE = 'x/y scale differs from training'


class FrameDropped(Exception):
    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


def check_image(msg: Any) -> FrameDropped | None:
    """Why a raw ``Image`` cannot be used (cheap: no pixel is touched), or None."""
    if msg.encoding not in SUPPORTED_ENCODINGS:
        return FrameDropped('encoding', f"unsupported image encoding '{msg.encoding}'; "
                                        f"supported: {', '.join(sorted(SUPPORTED_ENCODINGS))}")
    if msg.width == 0 or msg.height == 0:
        return FrameDropped('empty', f'empty image ({msg.width}x{msg.height})')
    try:
        image_to_array(msg)  # a view: checks step and data length against the size
    except ImageError as error:
        return FrameDropped('layout', str(error))
    return None


def check_compressed(msg: Any) -> FrameDropped | None:
    """Why a ``CompressedImage`` cannot be used before decoding it, or None."""
    if len(msg.data) == 0:
        return FrameDropped('empty', f"empty compressed image (format '{msg.format}')")
    return None


@dataclass
class FrameState:
    """What ``prepare`` found out about a frame, for ``complete``."""

    header: Any
    image: np.ndarray  # (H, W, 3) uint8, the whole image, RGB or (``bgr``) BGR
    bgr: bool
    network_image: np.ndarray  # (h, w, 3) uint8: the region resized to the network input
    region: Region  # the part the network sees
    camera: PinholeCamera | None  # at the whole image; None: no usable camera_info
    depth_scale: float
    wanted: set[str]
    heads: tuple[str, ...]
    config: NodeConfig
    started: float


@dataclass
class RosSide:
    """What the node knows about ROS, as plain callables."""

    subscribed: Callable[[], set[str]]  # outputs someone subscribes to now
    camera_info_publishers: Callable[[], int]
    latency_s: Callable[[Any], float]  # stamp -> seconds until now on the node's clock
    publish: Callable[[dict[str, Any]], None]
    running: Callable[[], bool]  # False while the node shuts down


class CameraFrames:
    def __init__(self, predictor: Predictor, config: Callable[[], NodeConfig],
                 slot: FrameSlot[Any], ros: RosSide, stats: FrameStats, log: ThrottledLog,
                 pairing: CameraInfoPairing) -> None:
        self.predictor = predictor
        self.card = predictor.card
        self.builder = OutputBuilder(predictor.card)
        self.config = config
        self.slot = slot
        self.ros = ros
        self.stats = stats
        self.log = log
        self.pairing = pairing

    def prepare(self, msg: Any) -> Job | None:
        started = time.perf_counter()
        config = self.config()
        wanted = self.ros.subscribed()
        if not wanted:
            self.stats.idle()
            return None
        image, bgr = self._pixels(msg)  # (H, W, 3) uint8, RGB unless bgr
        height, width = image.shape[:2]
        region = self.predictor.region(width, height)
        camera, scale = self._camera_for(msg.header, width, height, region, config)
        if camera is None and wanted & CAMERA_OUTPUTS:
            if 'points' in wanted:
                self.stats.noted(NO_CAMERA_NOTE)
                self.log.warning('no_camera_info', 'no usable camera_info for the image stamp '
                                 '(set cache_camera_info if they differ): cloud skipped')
            wanted -= CAMERA_OUTPUTS
        heads = self.predictor.heads_to_run(heads_for(wanted, self.card), config.ground_contact)
        network_image = self.predictor.network_image(image, bgr)
        state = FrameState(msg.header, image, bgr, network_image, region, camera, scale, wanted,
                           heads, config, started)
        if not heads:
            return Job(tensors=(), outputs=(), state=state)
        tensors = self.predictor.input_tensors(self.predictor.normalise(network_image), heads,
                                               config.flip)
        return Job(tensors=tensors, outputs=self.predictor.outputs_for(heads), state=state)

    def complete(self, job: Job) -> None:
        state: FrameState = job.state
        prediction = Prediction()
        if state.heads:
            prediction = self.predictor.decode(job.raws[0], state.heads, state.depth_scale,
                                               mirrored=job.raws[1] if len(job.raws) > 1 else None,
                                               ground_contact=state.config.ground_contact)
        prediction.inference_s, prediction.region = job.inference_s, state.region
        region = state.region
        size, colours = self.predictor.input_size, state.network_image  # the cloud's colours
        if state.config.output_resolution == 'input':  # the builder resizes the maps
            size, colours = (region.width, region.height), region.of(state.image)
            if state.bgr:
                colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB)
        view = state.camera.cropped(region) if state.camera is not None else None
        messages = self.builder.build(state.wanted, state.header, prediction, colours, view,
                                      size, state.config.cloud)
        if not messages:  # the cloud alone was wanted, and skipped
            self.stats.idle()
            return
        self.ros.publish(messages)
        self.stats.published(self.ros.latency_s(state.header.stamp), job.inference_s,
                             time.perf_counter() - state.started)

    def failed(self, error: Exception) -> None:
        if isinstance(error, FrameDropped):
            self.drop(error)
        elif self.ros.running():  # at shutdown publishers go away mid-frame: nothing to report
            self.stats.dropped(ERROR_REASON)
            self.log.error(ERROR_REASON, f'frame failed: {error!r}\n'
                           + ''.join(traceback.format_exception(error)))

    def drop(self, problem: FrameDropped) -> None:
        self.stats.dropped(problem.reason)
        self.log.warning(problem.reason, f'frame dropped: {problem}')

    def _pixels(self, msg: Any) -> tuple[np.ndarray, bool]:
        try:
            return message_to_rgb_or_bgr(msg)
        except ImageError as error:  # raw images were checked on arrival: a bad payload
            raise FrameDropped('decode', str(error)) from error

    def _camera_for(self, header: Any, width: int, height: int, region: Region,
                    config: NodeConfig) -> tuple[PinholeCamera | None, float]:
        """The image's camera and the depth factor; (None, 1.0) when unusable."""
        # Wait for a late camera_info only while someone publishes one.
        wait = config.camera_info_wait if self.ros.camera_info_publishers() else 0.0
        info = self.pairing.match(header, wait)
        if info is None:
            return None, 1.0
        try:
            camera = PinholeCamera.from_camera_info(info)
            if (camera.width, camera.height) != (width, height):
                raise FrameDropped('size_mismatch', f'image is {width}x{height} but its '
                                   f'camera_info is {camera.width}x{camera.height}')
            scale = focal_scale(self.card, camera.fx, region) if config.focal_correction \
                else 1.0
        except (CameraInfoError, FocalCorrectionError) as error:
            self.stats.noted(UNUSABLE_CAMERA_NOTE)
            self.log.warning('camera_info', f'unusable camera_info: {error}')
            return None, 1.0
        mismatch = axis_mismatch(self.card, region, camera.fx, camera.fy)
        if abs(mismatch) > AXIS_MISMATCH_TOLERANCE:
            self.stats.noted(AXIS_NOTE)
            self.log.warning('axis', f'x/y scale to the network input differs from training by '
                                     f'{mismatch:+.1%} (fx {camera.fx:g}, fy {camera.fy:g}): '
                                     'objects look squashed to the network')
        return camera, scale
