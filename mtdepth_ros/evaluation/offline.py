"""Offline replay: the model runs on each frame of a bag directly (no middleware).

Deterministic and as fast as the backend goes; the same report as live replay.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from mtdepth_ros.evaluation.bag_reader import Frame
from mtdepth_ros.evaluation.options import EvalOptions, make_reader
from mtdepth_ros.evaluation.protocols import Protocol, input_region
from mtdepth_ros.evaluation.report import Report
from mtdepth_ros.evaluation.session import EvaluationSession, prepare_out_dir
from mtdepth_ros.inference.predictor import Prediction, Predictor

PROGRESS_INTERVAL_S = 0.25
PROGRESS_WIDTH = 30


class Progress:
    """A one-line progress bar on stderr, redrawn at most every PROGRESS_INTERVAL_S."""

    def __init__(self, total: int, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.enabled = enabled
        self.stream = stream
        self.done = 0
        self.started = time.perf_counter()
        self.drawn = 0.0

    def wrap(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        for frame in frames:
            yield frame
            self.done += 1
            self._draw(final=False)
        self._draw(final=True)

    def _draw(self, final: bool) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self.drawn < PROGRESS_INTERVAL_S):
            return
        self.drawn = now
        filled = int(PROGRESS_WIDTH * min(self.done / self.total, 1.0))
        rate = self.done / max(now - self.started, 1e-9)
        self.stream.write(f'\r[{"#" * filled}{"." * (PROGRESS_WIDTH - filled)}] '
                          f'{self.done}/{self.total} frames, {rate:.1f} fps')
        if final:
            self.stream.write('\n')
        self.stream.flush()


def predict_frame(predictor: Predictor, frame: Frame, protocol: Protocol,
                  focal_correction: bool, ground_contact: bool = False) -> Prediction:
    """The model's prediction for one frame, with flip TTA when the protocol says (the
    predictor's ``flip``, as the node's ``flip`` parameter) and the ground-contact
    prior with ``ground_contact`` (as the node's parameter).

    With the protocol's ``input_crop``, the model sees only that part of the
    image, and the prediction's ``region`` says where it lies in the image.
    """
    focal = frame.camera.fx if focal_correction and frame.camera is not None else None
    crop = input_region(frame.rgb.shape[:2], protocol.input_crop)
    rgb = np.ascontiguousarray(crop.of(frame.rgb)) if crop is not None else frame.rgb
    prediction = predictor.predict(rgb, focal_px=focal, flip=protocol.flip_tta,
                                   ground_contact=ground_contact)
    if crop is not None:
        prediction.region = crop if prediction.region is None else prediction.region.within(crop)
    return prediction


def run_offline(bag: Path, model_path: Path, out_dir: Path, options: EvalOptions) -> Report:
    predictor = Predictor(model_path, options.backends)
    if options.ground_contact:
        _ = predictor.ground_contact_classes  # a model that cannot is refused here, at start
    protocol = options.resolved_protocol()
    reader = make_reader(bag, options)
    prepare_out_dir(out_dir)
    session = EvaluationSession(
        predictor.card, model_path, reader, out_dir, protocol, 'offline', options.range_edges,
        options.label_classes, options.panels, options.write_predictions)
    for frame in Progress(reader.planned_frames, options.progress).wrap(reader):
        started = time.perf_counter()
        try:
            prediction = predict_frame(predictor, frame, protocol, options.focal_correction,
                                       options.ground_contact)
        except (ValueError, RuntimeError) as error:
            session.skip(frame, f'prediction failed: {error}')
            continue
        timing = {'inference_s': prediction.inference_s,
                  'predict_s': time.perf_counter() - started}
        session.add(frame, prediction, timing)
    backend = predictor.description
    predictor.close()
    return session.finish({'run': {'backend': backend,
                                   'ground_contact': options.ground_contact}})
