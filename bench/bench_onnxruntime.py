"""ONNX Runtime's session options on the bundled model: threads, spinning, execution mode.

``python -m bench onnxruntime``. One row per setting the node exposes
(``threads``, ``onnxruntime.spinning``, ``onnxruntime.execution_mode``),
each changed alone from the node's defaults; median wall time of one
inference at the model's input size, and its ratio to the defaults, measured
in the same run. On a shared machine spinning threads steal the cores the
other work needs; the defaults are chosen from these rows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bench.rows import median_seconds, report
from mtdepth_ros.inference.backends.base import BackendOptions
from mtdepth_ros.inference.predictor import Predictor
from mtdepth_ros.inference.resources import default_model_candidates
from mtdepth_ros.node.parameters import defaults as node_defaults

REPEATS = 20
NODE_DEFAULTS = node_defaults()
SETTINGS = {
    'node defaults (threads 1, no spinning, sequential)': {},
    'threads 0 (ONNX Runtime decides: one per core)': {'threads': 0},
    'threads 2': {'threads': 2},
    'spinning on': {'spinning': True},
    'execution mode parallel': {'execution_mode': 'parallel'},
}


def main() -> None:
    model = next((m for m in default_model_candidates() if m.is_file()), None)
    if model is None:
        print('skipped: the bundled model is not installed (make venv)')
        return
    defaults = BackendOptions(threads=NODE_DEFAULTS['threads'])
    rows, default_s = [], 0.0
    for name, changes in SETTINGS.items():
        predictor = Predictor(model, options=replace(defaults, **changes))
        width, height = predictor.input_size
        tensor = np.random.default_rng(0).standard_normal((1, 3, height, width)).astype(
            np.float32)
        outputs = predictor.outputs_for(predictor.heads)
        seconds = median_seconds(lambda p=predictor: p.backend.run(tensor, outputs), REPEATS)
        predictor.close()
        default_s = default_s or seconds
        rows.append({'setting': name, 'ms': seconds * 1e3, 'vs defaults': seconds / default_s})
    report('onnxruntime', rows, note=f'{model.name}, median of {REPEATS} inferences each')
