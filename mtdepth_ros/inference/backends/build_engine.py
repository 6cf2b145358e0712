"""``mtdepth-build-engine MODEL.onnx``: build the TensorRT engine ahead of time.

    mtdepth-build-engine MODEL.onnx [--fp16] [--int8 --calib DIR] [--workspace MB] [--out PATH]

Run it on the target (engines are specific to the GPU and TensorRT version):
the engine lands beside the ONNX file under the name the node's ``tensorrt``
backend looks for, with its build description. How precisions are built:
:mod:`.engine_builder`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mtdepth_ros.inference.backends.base import BackendUnavailable
from mtdepth_ros.inference.backends.calibration import (
    DEFAULT_IMAGE_TOPIC,
    DEFAULT_LIMIT,
    CalibrationError,
    find_source,
)
from mtdepth_ros.inference.backends.engine_builder import (
    DEFAULT_WORKSPACE_MB,
    BuildError,
    BuildRequest,
    build,
    static_profile,
)
from mtdepth_ros.inference.backends.engine_cache import GPU_ONLY
from mtdepth_ros.inference.backends.onnx_precision import PrecisionError, has_qdq, load_graph
from mtdepth_ros.inference.card import CardError
from mtdepth_ros.inference.model_file import read_card

EXIT_USAGE = 2  # argparse's code for bad arguments
EXIT_FAILED = 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='mtdepth-build-engine',
        description='Build a TensorRT engine (and its .engine.json build description) from an '
                    'exported mtdepth ONNX model.')
    parser.add_argument('model', type=Path, help='the exported model (ONNX with a model card)')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--fp16', action='store_true', help='FP16 engine')
    precision.add_argument('--int8', action='store_true',
                           help='INT8 engine (needs --calib unless the ONNX has Q/DQ nodes)')
    parser.add_argument('--calib', type=Path, metavar='DIR',
                        help='INT8 calibration images: a folder of PNG/JPEG files or a rosbag')
    parser.add_argument('--calib-limit', type=int, default=DEFAULT_LIMIT, metavar='N',
                        help=f'use at most N calibration images (default {DEFAULT_LIMIT})')
    parser.add_argument('--calib-topic', default=DEFAULT_IMAGE_TOPIC,
                        help=f'image topic when --calib is a rosbag (default {DEFAULT_IMAGE_TOPIC})')
    parser.add_argument('--legacy-int8', action='store_true',
                        help="TensorRT's implicit INT8 calibration (IInt8EntropyCalibrator2, "
                             'deprecated since 10.1) instead of a Q/DQ ONNX')
    parser.add_argument('--workspace', type=int, default=DEFAULT_WORKSPACE_MB, metavar='MB',
                        help=f'builder workspace limit in MiB (default {DEFAULT_WORKSPACE_MB})')
    parser.add_argument('--dla-core', type=int, default=GPU_ONLY, metavar='N',
                        help='build for DLA core N (Jetson), unsupported layers on the GPU')
    parser.add_argument('--out', type=Path, metavar='PATH',
                        help='engine file to write (default: beside the model, named as the '
                             "node's tensorrt backend looks for it)")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments beyond argparse's checks, or None."""
    if args.workspace <= 0:
        return f'--workspace must be a positive number of MiB, got {args.workspace}'
    if args.calib_limit <= 0:
        return f'--calib-limit must be positive, got {args.calib_limit}'
    if args.dla_core < GPU_ONLY:
        return f'--dla-core must be a core number (0, 1, ...) or -1 for the GPU, got {args.dla_core}'
    if (args.calib is not None or args.legacy_int8) and not args.int8:
        return '--calib and --legacy-int8 are for INT8 engines: add --int8'
    if args.out is not None and not args.out.name.endswith('.engine'):
        return f'--out must name a .engine file, got {args.out}'
    return None


def request_from_args(args: argparse.Namespace) -> BuildRequest:
    """Validate the model and calibration data; CardError/CalibrationError/BuildError say why."""
    card = read_card(args.model)
    precision = 'int8' if args.int8 else 'fp16' if args.fp16 else 'fp32'
    calibration = None
    if args.int8:
        if args.calib is not None:
            calibration = find_source(args.calib, args.calib_limit, args.calib_topic)
        elif not has_qdq(load_graph(args.model)):
            raise BuildError(f'{args.model} has no Q/DQ nodes, so INT8 needs calibration '
                             'images: add --calib DIR (a folder of PNG/JPEG images or a rosbag)')
    return BuildRequest(
        model_path=args.model, card=card, precision=precision,
        profile=static_profile(args.model, card), out=args.out, workspace_mb=args.workspace,
        dla_core=args.dla_core, calibration=calibration, legacy_int8=args.legacy_int8)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check_args(args)
    if problem:
        print(f'mtdepth-build-engine: error: {problem}', file=sys.stderr)
        return EXIT_USAGE
    try:
        request = request_from_args(args)
    except (CardError, CalibrationError, BuildError, PrecisionError) as error:
        print(f'mtdepth-build-engine: error: {error}', file=sys.stderr)
        return EXIT_USAGE
    try:
        engine, description = build(request)
    except BackendUnavailable as error:
        print(f'mtdepth-build-engine: TensorRT cannot be used here: {error}', file=sys.stderr)
        return EXIT_FAILED
    except (BuildError, CalibrationError, PrecisionError, OSError) as error:
        print(f'mtdepth-build-engine: error: {error}', file=sys.stderr)
        return EXIT_FAILED
    key = description.key
    print(f'wrote {engine} ({key.precision}, {key.input_profile.label}, TensorRT '
          f'{key.tensorrt_version}, {key.gpu_name} sm {key.compute_capability}, '
          f'{description.build_seconds} s) and {engine.name}.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
