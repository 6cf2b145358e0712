"""One evaluation run's state: scoring, sample panels, the prediction bag and the report.

Offline and live replay feed frames and predictions in; :meth:`finish`
writes the report folder and returns the :class:`~mtdepth_ros.evaluation.report.Report`.
"""

from __future__ import annotations

import math
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol as StructuralType

import numpy as np

from mtdepth_ros.conversions.geometry import Region
from mtdepth_ros.conversions.images import array_to_image
from mtdepth_ros.evaluation import plots
from mtdepth_ros.evaluation.bag_reader import BagTopics, Frame
from mtdepth_ros.evaluation.bag_source import BagStats
from mtdepth_ros.evaluation.bag_writer import OutputBag, header
from mtdepth_ros.evaluation.panels import write_panel
from mtdepth_ros.evaluation.protocols import Protocol
from mtdepth_ros.evaluation.report import (
    METRICS_JSON,
    Report,
    write_frames_csv,
    write_metrics_json,
    write_reports,
)
from mtdepth_ros.evaluation.scoring import Scorer, default_range_edges
from mtdepth_ros.inference.card import ModelCard
from mtdepth_ros.inference.outputs import TOPICS, OutputBuilder, message_type
from mtdepth_ros.inference.predictor import Prediction

OUTPUT_NAMESPACE = '/mtdepth'  # the prediction topics, as the node publishes them in it
PREDICTIONS_BAG = 'predictions'
PLOTS_DIR = 'plots'
PANELS_DIR = 'panels'
DEFAULT_MAX_DEPTH_M = 80.0  # plots and ranges when neither protocol nor card gives one
DEFAULT_MIN_DEPTH_M = 0.5
PERCENTILES = (50, 95)


class FrameSource(StructuralType):
    """What a session needs of where its frames come from: a :class:`BagReader`, or
    ``training.benchmark.DatasetFrames`` (a dataset's test split)."""

    @property
    def topics(self) -> BagTopics: ...

    @property
    def stats(self) -> BagStats: ...

    @property
    def planned_frames(self) -> int: ...

    @property
    def has_depth(self) -> bool: ...

    @property
    def has_labels(self) -> bool: ...


def output_topic(output: str) -> str:
    """The absolute topic of one node output (``outputs.TOPICS``) in :data:`OUTPUT_NAMESPACE`."""
    return f'{OUTPUT_NAMESPACE}/{TOPICS[output]}'


def classes_check(card: ModelCard, label_classes: Sequence[str] | None) -> tuple[bool, str]:
    """(score segmentation?, a sentence for the report) from the card's and the labels' classes."""
    if card.classes is None:
        return False, 'The model has no segmentation head: labels are not scored.'
    names = tuple(card.classes.names)
    if label_classes is None:
        return True, (f"Label class names were not given; the bag's label ids are taken to be "
                      f"the model card's {len(names)} classes ({', '.join(names)}).")
    if tuple(label_classes) == names:
        return True, f'The labels and the model card share the same {len(names)} classes.'
    missing = [n for n in label_classes if n not in names]
    extra = [n for n in names if n not in label_classes]
    detail = (f'labels have {len(label_classes)} classes, the card {len(names)}; '
              f'only in the labels: {missing or "none"}; only in the card: {extra or "none"}')
    if not missing and not extra:
        detail = 'same names in a different order, so the ids mean different classes'
    return False, (f'The model card classes differ from the label classes ({detail}): '
                   'segmentation is not scored, because ids would compare different classes.')


def prepare_out_dir(out_dir: Path) -> None:
    """Create the folder; a previous report in it is replaced, anything else is refused."""
    bag = out_dir / PREDICTIONS_BAG
    if bag.exists():
        if not (out_dir / METRICS_JSON).exists():
            raise FileExistsError(f'{bag} exists and {out_dir} holds no earlier report; '
                                  'choose an empty output folder')
        shutil.rmtree(bag)
    out_dir.mkdir(parents=True, exist_ok=True)


class EvaluationSession:
    """Everything one run accumulates; frames in, report out."""

    def __init__(self, card: ModelCard, model_path: Path, reader: FrameSource, out_dir: Path,
                 protocol: Protocol, mode: str, range_edges: Sequence[float] | None = None,
                 label_classes: Sequence[str] | None = None, panels: int = 4,
                 write_predictions: bool = True) -> None:
        self.card = card
        self.model_path = model_path
        self.reader = reader
        self.out_dir = out_dir
        self.protocol = protocol
        self.mode = mode
        coding = card.depth_coding
        top = protocol.max_depth or (coding.d_max if coding else DEFAULT_MAX_DEPTH_M)
        self.depth_range = (coding.d_min if coding else DEFAULT_MIN_DEPTH_M, top)
        edges = range_edges or protocol.range_edges or default_range_edges(top)
        score_labels, self.classes_note = classes_check(card, label_classes)
        names = card.classes.names if card.classes else ()
        self.scorer = Scorer(protocol, edges, plot_max_m=top, num_classes=len(names),
                             ignore_index=card.classes.ignore_index if card.classes else 255,
                             score_segmentation=score_labels,
                             near_limit=card.depth_range[0] if card.depth_range else None)
        self.panel_positions = self._panel_positions(reader.planned_frames, panels)
        self.panel_files: list[str] = []
        self.seen = 0
        self.builder = OutputBuilder(card)
        self.bag = OutputBag(out_dir / PREDICTIONS_BAG) if write_predictions else None
        self.timings: dict[str, list[float]] = {}
        self.started = time.perf_counter()

    @staticmethod
    def _panel_positions(count: int, panels: int) -> set[int]:
        if count <= 0 or panels <= 0:
            return set()
        return {int(round(x)) for x in np.linspace(0, count - 1, min(panels, count))}

    def skip(self, frame: Frame, reason: str) -> None:
        self.scorer.skip(frame.index, frame.stamp_s, reason)
        self.seen += 1

    def add(self, frame: Frame, prediction: Prediction, timing: dict[str, float]) -> None:
        """Score one frame, maybe draw its panel, and record its prediction messages."""
        row, aligned = self.scorer.add(frame, prediction.depth, prediction.segmentation, timing,
                                       prediction.region, prediction.depth_scale)
        for key, value in timing.items():
            self.timings.setdefault(key, []).append(value)
        if self.seen in self.panel_positions:
            name = f'{PANELS_DIR}/frame_{frame.index:06d}.png'
            palette = self.card.classes.palette if self.card.classes else None
            if write_panel(self.out_dir / name, aligned, self.depth_range, palette):
                self.panel_files.append(name)
        self.seen += 1
        if self.bag is not None:
            self._record(frame, prediction)

    def _record(self, frame: Frame, prediction: Prediction) -> None:
        assert self.bag is not None
        head = header(frame.stamp_ns, frame.frame_id)
        topics = self.reader.topics
        self.bag.write(topics.image, array_to_image(frame.rgb, 'rgb8', head), frame.log_time_ns)
        if frame.camera is not None and topics.camera_info:
            self.bag.write(topics.camera_info, frame.camera.to_camera_info(head),
                           frame.log_time_ns)
        maps = [m for m in (prediction.depth, prediction.segmentation, prediction.confidence,
                            prediction.intervals) if m is not None]
        if not maps:
            return
        height, width = maps[0].shape
        region = prediction.region or Region.whole(frame.rgb.shape[:2])
        camera = frame.camera.cropped(region) if frame.camera is not None else None
        messages = self.builder.build(TOPICS, head, prediction, region.of(frame.rgb), camera,
                                      (width, height))
        for output, message in messages.items():  # serialized already, as the node publishes
            self.bag.write_raw(output_topic(output), message_type(output), message,
                               frame.log_time_ns)

    def timing_summary(self) -> dict[str, float]:
        summary: dict[str, float] = {}
        for key, values in self.timings.items():
            array = np.asarray(values, dtype=np.float64)
            summary[f'{key} mean'] = float(array.mean())
            for q in PERCENTILES:
                summary[f'{key} p{q}'] = float(np.percentile(array, q))
        elapsed = time.perf_counter() - self.started
        scored = len(self.timings.get('inference_s', []))
        if self.mode == 'offline' and scored and elapsed > 0:
            summary['frames per second (whole loop)'] = scored / elapsed
        return summary

    def finish(self, extra: dict[str, Any] | None = None,
               latency: tuple[list[float], list[float], list[float]] | None = None,
               recorded_bag: Path | None = None) -> Report:
        """Close the bag, draw the plots, write every report file; return the Report.

        ``latency`` is (bag times, latencies, bag times of dropped frames) in
        seconds; ``recorded_bag`` a bag of predictions written elsewhere (live mode).
        """
        if self.bag is not None:
            self.bag.close()
        stats: BagStats = self.reader.stats
        images = self._plots(latency)
        files = {'metrics_json': 'metrics.json', 'frames_csv': 'frames.csv',
                 'report_md': 'report.md', 'report_html': 'report.html'}
        bag_path = self.out_dir / PREDICTIONS_BAG if self.bag is not None else recorded_bag
        if bag_path is not None:
            files['predictions_bag'] = str(bag_path.relative_to(self.out_dir)
                                           if bag_path.is_relative_to(self.out_dir) else bag_path)
        metrics = self._metrics(stats, files, extra or {})
        paths = {'metrics_json': write_metrics_json(self.out_dir, metrics),
                 'frames_csv': write_frames_csv(self.out_dir, self.scorer.rows)}
        paths.update(write_reports(self.out_dir, metrics, images, self.panel_files))
        if bag_path is not None:
            paths['predictions_bag'] = bag_path
        paths.update({f'plot_{k}': self.out_dir / v for k, v in images.items()})
        paths.update({f'panel_{i}': self.out_dir / p for i, p in enumerate(self.panel_files)})
        return Report(out_dir=self.out_dir, metrics=metrics, files=paths)

    def _near_limit_lines(self) -> list[str]:
        near = self.scorer.near_limit
        if near is None:
            return []
        return [f"REP 117's -inf (nearer than the model's depth range) scored as the range's "
                f'near end, {near:g} m (the model card; times the focal correction), before '
                'the rule above']

    def _metrics(self, stats: BagStats, files: dict[str, str],
                 extra: dict[str, Any]) -> dict[str, Any]:
        scorer = self.scorer
        not_scored = sum(1 for row in scorer.rows if row.status != 'scored')
        skipped: Counter[str] = Counter(stats.skipped)
        skipped.update(scorer.skipped)
        metrics: dict[str, Any] = {
            'run': {'mode': self.mode, 'model_name': self.card.name, 'model_recipe':
                    self.card.recipe, 'model_path': str(self.model_path), 'bag': stats.path,
                    'bag_name': Path(stats.path).name, **extra.pop('run', {})},
            'protocol': self.protocol.to_dict(),
            'protocol_description': self.protocol.describe() + self._near_limit_lines(),
            'frames': {'read': len(scorer.rows), 'depth_scored': scorer.frames_with_depth,
                       'labels_scored': scorer.frames_with_labels, 'not_scored': not_scored,
                       'skipped': dict(skipped), 'unmatched': dict(stats.unmatched)},
            'depth': scorer.depth_summary(self.card.classes.names if self.card.classes else ())
                     if self.reader.has_depth else None,
            'segmentation': scorer.segmentation_summary(
                self.card.classes.names if self.card.classes else ()),
            'classes_check': self.classes_note if self.reader.has_labels else '',
            'timing': self.timing_summary(),
            'bag': stats.to_dict(),
            'files': files,
        }
        metrics.update(extra)
        return metrics

    def _plots(self, latency: tuple[list[float], list[float], list[float]] | None
               ) -> dict[str, str]:
        images: dict[str, str] = {}
        scorer = self.scorer
        if scorer.frames_with_depth:
            images['error_vs_distance'] = f'{PLOTS_DIR}/error_vs_distance.png'
            plots.error_vs_distance(scorer.distance_curve(),
                                    self.out_dir / images['error_vs_distance'])
            images['error_histogram'] = f'{PLOTS_DIR}/error_histogram.png'
            plots.error_histogram(scorer.histogram_edges, scorer.histogram,
                                  self.out_dir / images['error_histogram'])
        segmentation = scorer.segmentation_summary(
            self.card.classes.names if self.card.classes else ())
        if segmentation and segmentation['frames_scored'] and not \
                all(math.isnan(v) for v in segmentation['per_class_iou'].values()):
            images['per_class_iou'] = f'{PLOTS_DIR}/per_class_iou.png'
            plots.per_class_iou(segmentation['per_class_iou'],
                                self.out_dir / images['per_class_iou'])
        if latency is not None and latency[0]:
            images['latency'] = f'{PLOTS_DIR}/latency.png'
            plots.latency_over_time(*latency, self.out_dir / images['latency'])
        return images
