"""``python -m training test MODEL --protocol kitti_eigen|kitti_benchmark|nyu_eigen --out DIR``.

Scores a checkpoint or an exported ONNX model on a dataset's test split with
the evaluation's own code: the frames of the split (read by the dataset
classes of ``training.data``, at their native resolution, with their own
ground truth) go through :func:`mtdepth_ros.evaluation.offline.predict_frame`
and :class:`mtdepth_ros.evaluation.session.EvaluationSession`, exactly as
``mtdepth-eval`` runs on the frames of a bag, and the same report comes out
(``metrics.json``, ``report.md`` / ``.html`` with the tables per depth range,
plots, sample panels). A checkpoint is exported first (``model.onnx`` in the
report folder, through ``training.export``): the numbers are those of the file
the vehicle would run. Where export's own check finds ONNX Runtime and torch
apart beyond its tolerance on its random check image, the file is still
scored, a warning says so and ``metrics.json`` (``run.export_check_problems``)
records it.

The data come from the model's own training config (stored in the checkpoint
and in the model card): ``data.test_split`` and ``data.test_args`` (default:
the validation arguments without ``resize`` or crops, since the protocol scores
the native ground truth), overridable with ``--split``, ``--root``,
``--dataset`` or a ``--config`` recipe.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mtdepth_ros.conversions.camera import PinholeCamera
from mtdepth_ros.evaluation.bag_reader import BagTopics, Frame
from mtdepth_ros.evaluation.bag_source import NS_PER_S, BagStats
from mtdepth_ros.evaluation.offline import predict_frame
from mtdepth_ros.evaluation.protocols import INPUT_CROPS, get_protocol
from mtdepth_ros.evaluation.report import Report
from mtdepth_ros.evaluation.session import EvaluationSession, prepare_out_dir
from mtdepth_ros.inference.model_file import read_card
from mtdepth_ros.inference.predictor import Predictor
from training.data.base import DepthDataset
from training.datamodule import MultiTaskDataModule, _unwrap

BENCHMARK_PROTOCOLS = ('kitti_eigen', 'kitti_benchmark', 'nyu_eigen', 'raw')
EXPORTED = 'model.onnx'
FRAME_PERIOD_NS = NS_PER_S // 10  # frames get the stamps of a 10 Hz bag
# Dataset arguments that change the frame itself: the protocol scores native frames.
RESAMPLING_ARGS = ('resize', 'crop', 'flip', 'far_classes', 'brightness', 'contrast',
                   'saturation', 'hue', 'channel_swap')


class DatasetFrames:
    """The frames of a dataset split as evaluation :class:`Frame`s (a bag reader's interface).

    Depth is NaN where the dataset has none (0); the camera is the frame's
    intrinsics, so the focal correction sees what a bag's camera_info says.
    """

    def __init__(self, data: DepthDataset, name: str, max_frames: int | None = None) -> None:
        self.data = data
        self.count = len(data) if max_frames is None else min(max_frames, len(data))
        self.stats = BagStats(path=name, images=self.count)
        self.topics = BagTopics()
        first = data.read(0)
        self.has_depth = first.depth is not None
        self.has_labels = first.labels is not None

    @property
    def planned_frames(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Frame]:
        for index in range(self.count):
            sample = self.data.transform(self.data.read(index))  # bottom_crop, if asked
            height, width = sample.image.shape[:2]
            k = sample.intrinsics
            depth = None if sample.depth is None else \
                np.where(sample.depth > 0, sample.depth, np.nan).astype(np.float32)
            stamp = NS_PER_S + index * FRAME_PERIOD_NS
            yield Frame(index=index, stamp_ns=stamp, log_time_ns=stamp, frame_id='camera',
                        rgb=sample.image, depth=depth, labels=sample.labels,
                        camera=PinholeCamera(width=width, height=height, fx=float(k[0, 0]),
                                             fy=float(k[1, 1]), cx=float(k[0, 2]),
                                             cy=float(k[1, 2])))


def onnx_model(model: Path, out_dir: Path) -> tuple[Path, list[str]]:
    """The ONNX file to score: ``model`` itself, or a checkpoint exported into ``out_dir``;
    and where the export's check found ONNX Runtime and torch apart (export's tolerances)."""
    if model.suffix == '.onnx':
        return model, []
    # Deferred: torch and the ONNX exporter load only for a checkpoint.
    from training.export import check_report, export_checkpoint

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / EXPORTED
    _, report = export_checkpoint(model, path, strict=False)
    problems = check_report(report)
    for problem in problems:
        print(f'warning: the exported model differs from the checkpoint beyond the export '
              f'tolerance on its random check image: {problem}; scoring the exported file',
              file=sys.stderr)
    return path, problems


def data_config(onnx: Path, recipe: Path | None) -> dict[str, Any]:
    """The ``data`` section of the recipe, else of the training config in the model card."""
    if recipe is not None:
        return dict(yaml.safe_load(recipe.read_text()).get('data') or {})
    config = read_card(onnx).config
    if not config.get('data'):
        raise ValueError(f'{onnx}: the model card holds no training config; pass --config RECIPE')
    return dict(config['data'])


def scored_dataset(data: dict[str, Any], split: str | None, root: str | None,
                 dataset: str | None) -> tuple[DepthDataset, str]:
    """The test split's dataset at native resolution, and a name for the report."""
    accepted = inspect.signature(MultiTaskDataModule).parameters
    fields = {k: v for k, v in data.items() if k in accepted}
    args = dict(fields.get('test_args') or fields.get('val_args') or {})
    if dataset and dataset != (fields.get('test_dataset') or fields.get('dataset')):
        fields['test_dataset'], args = dataset, {}  # the recipe's arguments are another class's
    if root:
        fields['test_root'] = root
    fields['test_args'] = {k: v for k, v in args.items() if k not in RESAMPLING_ARGS}
    module = MultiTaskDataModule(**fields)
    chosen = split or fields.get('test_split')
    found = _unwrap(module.test_set(chosen))
    if not isinstance(found, DepthDataset):
        raise TypeError(f'{type(found).__name__} is not a training.data DepthDataset')
    where = fields.get('test_root') or fields.get('root')
    return found, f"{fields.get('test_dataset') or fields.get('dataset')} {where} split {chosen}"


def run_test(model: Path, protocol_name: str, out_dir: Path, split: str | None = None,
             root: str | None = None, dataset: str | None = None, recipe: Path | None = None,
             input_crop: str | None = None, max_frames: int | None = None, panels: int = 4,
             focal_correction: bool = True, backends: tuple[str, ...] = ('onnxruntime',),
             progress: bool = False) -> Report:
    """Score ``model`` (a checkpoint or ONNX file) on a test split; write the report folder."""
    protocol = get_protocol(protocol_name, **({'input_crop': input_crop} if input_crop else {}))
    prepare_out_dir(out_dir)
    onnx, export_problems = onnx_model(model, out_dir)
    data, name = scored_dataset(data_config(onnx, recipe), split, root, dataset)
    frames = DatasetFrames(data, name, max_frames)
    predictor = Predictor(onnx, backends)
    session = EvaluationSession(predictor.card, onnx, frames, out_dir, protocol, 'offline',
                                panels=panels, write_predictions=False)
    for index, frame in enumerate(frames):
        prediction = predict_frame(predictor, frame, protocol, focal_correction)
        session.add(frame, prediction, {'inference_s': prediction.inference_s})
        if progress:
            print(f'\r{index + 1}/{frames.count} frames', end='', file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    backend = predictor.description
    predictor.close()
    return session.finish({'run': {'backend': backend, 'dataset': name, 'checkpoint': str(model),
                                   'export_check_problems': export_problems}})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m training test', description=__doc__.split('\n\n')[0])
    p.add_argument('model', type=Path, help='a checkpoint (.ckpt) or an exported model (.onnx)')
    p.add_argument('--protocol', required=True, choices=BENCHMARK_PROTOCOLS)
    p.add_argument('--out', type=Path, required=True, help='report folder to write')
    p.add_argument('--split', help="test split (default: the recipe's data.test_split)")
    p.add_argument('--root', help="dataset folder (default: the recipe's)")
    p.add_argument('--dataset', help='another dataset class (kitti, nyu, '
                   "training.data.kitti.KittiSelection, ...), with its default arguments")
    p.add_argument('--config', type=Path, help='take the data section from this recipe instead')
    p.add_argument('--input-crop', choices=INPUT_CROPS, help='run the model on the KB crop (BTS)')
    p.add_argument('--max-frames', type=int)
    p.add_argument('--panels', type=int, default=4)
    p.add_argument('--no-focal-correction', action='store_true')
    p.add_argument('--backend', default='onnxruntime', help='comma-separated backend chain')
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    report = run_test(args.model, args.protocol, args.out, args.split, args.root, args.dataset,
                      args.config, args.input_crop, args.max_frames, args.panels,
                      not args.no_focal_correction, tuple(args.backend.split(',')), progress=True)
    frames = report.metrics['frames']
    print(f"{frames['depth_scored']} of {frames['read']} frames depth-scored; "
          + ', '.join(f'{k} {v:.4f}' for k, v in report.depth.items()))
    if report.miou is not None:
        print(f'mIoU {report.miou:.4f}')
    print(f"report: {report.out_dir / 'report.html'}")
    return 0 if frames['depth_scored'] or frames['labels_scored'] else 1
