"""TensorRT FP32/FP16/INT8 vs ONNX Runtime at 1216x352 (``python -m bench tensorrt``).

Times ``Backend.run`` (input copy, inference, every output copied back) on
one preprocessed frame: FPS and latency (median, 90th percentile) per
backend, with each backend's ratio to ONNX Runtime CUDA on the same GPU and
to ONNX Runtime on the CPU, all measured in this run. One table per model:
the bundled ``models/mtdepth_default.onnx`` at its own input size (192x640)
and, because that is not the KITTI benchmark's 1216x352, a stand-in
convolutional network of about the same depth at 1216x352.
``MTDEPTH_BENCH_MODEL=model.onnx`` times that model alone (for the real
network at 1216x352: ``python -m training export CKPT --height 352 --width
1216``). Without TensorRT or a GPU every GPU row is printed as
``skipped: <reason>`` and ONNX Runtime on the CPU is still timed. INT8 is
calibrated on synthetic frames: its timing is real, its accuracy is not
measured here.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bench.rows import report
from mtdepth_ros.inference.backends.base import BackendOptions, BackendUnavailable, create_backend
from mtdepth_ros.inference.backends.calibration import find_source
from mtdepth_ros.inference.backends.engine_builder import BuildRequest, build, static_profile
from mtdepth_ros.inference.card import CameraSpec, HeadSpec, InputSpec, ModelCard
from mtdepth_ros.inference.model_file import embed_card, read_card
from mtdepth_ros.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / 'models' / 'mtdepth_default.onnx'
WIDTH, HEIGHT = 1216, 352
WARM_UP = 5
REPEATS = int(os.environ.get('MTDEPTH_BENCH_REPEATS', '30'))
CPU_REPEATS = 5  # the CPU is two orders of magnitude slower
CALIBRATION_FRAMES = 16
SEED = 0
STAND_IN_CHANNELS = (32, 64, 128, 256)  # stride-2 stages, then back up to input resolution


@dataclass
class Timing:
    label: str
    seconds: list[float] | None = None
    skipped: str = ''

    @property
    def median_ms(self) -> float:
        return 1e3 * float(np.median(self.seconds)) if self.seconds else float('nan')

    @property
    def p90_ms(self) -> float:
        return 1e3 * float(np.percentile(self.seconds, 90)) if self.seconds else float('nan')

    @property
    def fps(self) -> float:
        return len(self.seconds) / float(np.sum(self.seconds)) if self.seconds else float('nan')


def stand_in_model(path: Path) -> Path:
    """A 1216x352 encoder-decoder of plain convolutions with a one-head card."""
    rng = np.random.default_rng(SEED)
    nodes, inits, previous, channels = [], [], 'image', 3
    for stage, width in enumerate(STAND_IN_CHANNELS):
        weight = rng.normal(0, (2 / (9 * channels)) ** 0.5, (width, channels, 3, 3))
        inits += [numpy_helper.from_array(weight.astype(np.float32), f'w{stage}'),
                  numpy_helper.from_array(np.zeros(width, np.float32), f'b{stage}')]
        nodes += [helper.make_node('Conv', [previous, f'w{stage}', f'b{stage}'], [f'c{stage}'],
                                   pads=[1, 1, 1, 1], strides=[2, 2]),
                  helper.make_node('Relu', [f'c{stage}'], [f'r{stage}'])]
        previous, channels = f'r{stage}', width
    scale = float(2 ** len(STAND_IN_CHANNELS))
    inits += [numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), 'scales'),
              numpy_helper.from_array(rng.normal(0, 0.05, (1, channels, 3, 3)).astype(
                  np.float32), 'w_out'),
              numpy_helper.from_array(np.zeros(1, np.float32), 'b_out')]
    # Predict at 1/16 resolution and upsample the one output channel (as depth heads do).
    nodes += [helper.make_node('Conv', [previous, 'w_out', 'b_out'], ['logit'], pads=[1, 1, 1, 1]),
              helper.make_node('Resize', ['logit', '', 'scales'], ['up'], mode='linear'),
              helper.make_node('Softplus', ['up'], ['depth'])]
    graph = helper.make_graph(
        nodes, 'stand_in',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, HEIGHT, WIDTH])],
        [helper.make_tensor_value_info('depth', TensorProto.FLOAT, [1, 1, HEIGHT, WIDTH])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    embed_card(model, ModelCard(
        name='bench_stand_in', recipe='bench', architecture='plain conv encoder-decoder',
        input=InputSpec(name='image', height=HEIGHT, width=WIDTH),
        heads={'depth': HeadSpec(output='depth', encoding='metres')},
        camera=CameraSpec(focal_length_px=721.5)))
    onnx.save(model, str(path))
    return path


def bench_models(scratch: Path) -> list[tuple[Path, str]]:
    """(model, description) to time: the chosen one, and the stand-in where it is not 1216x352."""
    chosen = Path(os.environ.get('MTDEPTH_BENCH_MODEL', DEFAULT_MODEL))
    if 'MTDEPTH_BENCH_MODEL' in os.environ and not chosen.is_file():
        raise SystemExit(f'MTDEPTH_BENCH_MODEL={chosen}: no such file')
    models = []
    if chosen.is_file():
        models.append((chosen, str(chosen.relative_to(REPO) if chosen.is_relative_to(REPO)
                                   else chosen)))
        size = read_card(chosen).input
        if (size.width, size.height) == (WIDTH, HEIGHT) or 'MTDEPTH_BENCH_MODEL' in os.environ:
            return models
    reason = 'not found' if not chosen.is_file() else f'not {WIDTH}x{HEIGHT}'
    models.append((stand_in_model(scratch / 'stand_in.onnx'),
                   f'stand-in conv net at {WIDTH}x{HEIGHT} ({chosen.name} {reason})'))
    return models


def frames(count: int, seed: int = SEED) -> list[np.ndarray]:
    """Synthetic road-like RGB frames at the benchmark size."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(220, 60, HEIGHT)[:, None, None]
    return [np.clip(rows + rng.normal(0, 25, (HEIGHT, WIDTH, 3)), 0, 255).astype(np.uint8)
            for _ in range(count)]


def time_backend(label: str, chain: list[str], model: Path, tensor: np.ndarray,
                 options: BackendOptions, repeats: int = REPEATS) -> Timing:
    try:
        backend, _ = create_backend(chain, model, read_card(model), options)
    except BackendUnavailable as error:
        return Timing(label, skipped=str(error).removeprefix('no backend could be started: '))
    outputs = list(backend.card.output_names.values())
    described = backend.description
    try:
        for _ in range(WARM_UP):
            backend.run(tensor, outputs)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            backend.run(tensor, outputs)
            seconds.append(time.perf_counter() - start)
    finally:
        backend.close()
    return Timing(f'{label} [{described}]', seconds)


def build_int8(model: Path, cache: Path, scratch: Path) -> str:
    """Build the INT8 engine from synthetic calibration frames; '' or why it could not."""
    folder = scratch / 'calibration'
    folder.mkdir(exist_ok=True)
    for i, rgb in enumerate(frames(CALIBRATION_FRAMES, seed=SEED + 1)):
        cv2.imwrite(str(folder / f'{i:03d}.png'), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    card = read_card(model)
    try:
        engine_dir = cache / 'int8'
        engine_dir.mkdir(exist_ok=True)
        build(BuildRequest(model_path=model, card=card, precision='int8',
                           profile=static_profile(model, card),
                           calibration=find_source(folder)),
              log=lambda line: None)
    except Exception as error:  # noqa: BLE001  (reported in the table, not raised)
        return str(error)
    return ''


def print_table(timings: list[Timing]) -> None:
    by_name = {t.label.split(' [')[0]: t for t in timings}
    cpu, cuda = by_name.get('onnxruntime cpu'), by_name.get('onnxruntime cuda')
    rows = []
    for timing in timings:
        if timing.skipped:
            rows.append({'backend': timing.label, 'skipped': timing.skipped})
            continue
        rows.append({'backend': timing.label, 'FPS': timing.fps, 'median ms': timing.median_ms,
                     'p90 ms': timing.p90_ms,
                     **{f'vs {name}': ref.median_ms / timing.median_ms
                        for name, ref in (('ORT CUDA', cuda), ('ORT CPU', cpu))
                        if ref and ref.seconds}})
    report('tensorrt', rows)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix='mtdepth-bench-trt-') as scratch_name:
        for index, (model, described) in enumerate(bench_models(Path(scratch_name))):
            scratch = Path(scratch_name) / f'model{index}'
            scratch.mkdir()
            if index:
                print()
            bench_one(model, described, scratch)


def bench_one(model: Path, described: str, scratch: Path) -> None:
    """Time every backend on ``model`` and print its table."""
    card = read_card(model)
    # The engines are built beside a copy, so no engine lands beside the real model.
    local = scratch / model.name
    local.write_bytes(model.read_bytes())
    tensor = Predictor(local).preprocess(frames(1)[0])
    print(f'model: {described}, input {card.input.width}x{card.input.height}, '
          f'{REPEATS} timed runs after {WARM_UP} warm-up ({CPU_REPEATS} on the CPU)')
    timings = [
        time_backend('onnxruntime cpu', ['onnxruntime:cpu'], local, tensor, BackendOptions(),
                     repeats=CPU_REPEATS),
        time_backend('onnxruntime cuda', ['onnxruntime:cuda'], local, tensor,
                     BackendOptions()),
    ]
    for precision in ('fp32', 'fp16', 'int8'):
        options = BackendOptions(precision=precision, engine_cache_dir=str(scratch))
        if precision == 'int8':
            problem = build_int8(local, scratch, scratch)
            if problem:
                timings.append(Timing(f'tensorrt {precision}', skipped=problem))
                continue
        timings.append(time_backend(f'tensorrt {precision}', ['tensorrt'], local, tensor,
                                    options))
    print_table(timings)


if __name__ == '__main__':
    main()
