"""What a candidate model costs on this machine against the bundled one.

``BENCH_MODELS=a.onnx:b.onnx python -m bench models``. The bundled model and
each file in ``BENCH_MODELS`` (``:``-separated; none: the bundled model alone)
run one inference at their input size with ONNX Runtime on one thread (the
node's default) and on every core (``threads: 0``, as ``make demo`` runs it);
median wall time, frames per second and the ratio to the bundled model at the
same threads, measured in the same run. Before a model is bundled its cost is
read here (docs/training.md states it for each candidate).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.rows import median_seconds, report
from mtdepth_ros.inference.backends.base import BackendOptions
from mtdepth_ros.inference.predictor import Predictor
from mtdepth_ros.inference.resources import default_model_candidates

REPEATS = 20
THREADS = {'1 thread': 1, 'every core': 0}
ENVIRONMENT = 'BENCH_MODELS'


def candidates() -> list[Path]:
    return [Path(p) for p in os.environ.get(ENVIRONMENT, '').split(':') if p]


def inference_seconds(model: Path, threads: int) -> float:
    predictor = Predictor(model, options=BackendOptions(threads=threads))
    try:
        width, height = predictor.input_size
        tensor = np.random.default_rng(0).standard_normal((1, 3, height, width)).astype(
            np.float32)
        outputs = predictor.outputs_for(predictor.heads)
        return median_seconds(lambda: predictor.backend.run(tensor, outputs), REPEATS)
    finally:
        predictor.close()


def main() -> None:
    bundled = next((m for m in default_model_candidates() if m.is_file()), None)
    if bundled is None:
        print('skipped: the bundled model is not installed (make venv)')
        return
    missing = [str(m) for m in candidates() if not m.is_file()]
    if missing:
        print(f'skipped: {ENVIRONMENT} names files that do not exist: {missing}')
        return
    rows = []
    for label, threads in THREADS.items():
        baseline = 0.0
        for model in [bundled, *candidates()]:
            seconds = inference_seconds(model, threads)
            baseline = baseline or seconds
            name = 'bundled' if model == bundled else str(model)
            rows.append({'model': f'{name} ({label})', 'ms': seconds * 1e3,
                         'fps': 1.0 / seconds, 'vs bundled': seconds / baseline})
    report('models', rows, note=f'median of {REPEATS} inferences each; bundled: {bundled}')
