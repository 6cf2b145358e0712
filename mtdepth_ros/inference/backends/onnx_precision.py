"""ONNX graphs in the precision TensorRT should run: FP16 copies and INT8 Q/DQ copies.

Current TensorRT (weak typing deprecated in 10.12, removed in 11) takes its
precision from the network's tensor types: an FP16 engine is built from an
FP16 ONNX, an INT8 engine from an ONNX with explicit QuantizeLinear /
DequantizeLinear (Q/DQ) nodes. Both copies are made here on the CPU, with
ONNX Runtime's own tools (``onnxruntime.transformers.float16``, the maintained
copy of onnxconverter-common's converter, and ``onnxruntime.quantization``),
so they are tested on machines without a GPU:

- FP16: weights and activations in float16, graph inputs and outputs kept in
  float32 (``keep_io_types``) so the backend's buffers and the model card's
  contract do not change; operators the converter knows to be unsafe in
  float16 stay float32 behind Cast nodes.
- INT8: symmetric signed 8-bit (zero point 0, as TensorRT requires),
  per-channel weights, activation ranges from entropy calibration on images
  (:mod:`mtdepth_ros.inference.backends.calibration`). Only Conv, ConvTranspose, MatMul
  and Gemm inputs are quantised: they are where INT8 pays on a GPU, and the
  heads' argmax/softmax tails stay in float. In a strongly typed network the
  layers left unquantised run in FP32.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from mtdepth_ros.inference.backends.engine_cache import atomic_write

QDQ_OPS = frozenset({'QuantizeLinear', 'DequantizeLinear'})
QUANTIZED_OP_TYPES = ('Conv', 'ConvTranspose', 'MatMul', 'Gemm')
QDQ_SOURCE_KEY = 'mtdepth.qdq_source'  # metadata: which model and images the scales came from


class PrecisionError(RuntimeError):
    """A precision conversion that cannot be done; the message says why."""


def load_graph(path: Path) -> onnx.ModelProto:
    """The ONNX model without its external weights (enough to inspect the graph)."""
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises DecodeError, OSError, ...
        raise PrecisionError(f'{path} is not a readable ONNX model: {error}') from error


def has_qdq(model: onnx.ModelProto) -> bool:
    """True when the graph is already explicitly quantised (e.g. by ModelOpt or QAT)."""
    return any(node.op_type in QDQ_OPS for node in model.graph.node)


def input_dims(model: onnx.ModelProto, name: str) -> tuple[int | None, ...]:
    """The declared shape of input ``name``; None for a symbolic (dynamic) dimension."""
    for value in model.graph.input:
        if value.name == name:
            dims = value.type.tensor_type.shape.dim
            return tuple(d.dim_value if d.HasField('dim_value') else None for d in dims)
    raise PrecisionError(f'the ONNX graph has no input {name!r}')


def convert_to_fp16(source: Path, target: Path) -> None:
    """Write an FP16 copy of ``source`` to ``target`` (float32 inputs and outputs kept)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16  # noqa: PLC0415

    model = onnx.load(str(source))
    if has_qdq(model):
        raise PrecisionError(f'{source} is quantised (Q/DQ nodes); build it as int8, not fp16')
    try:
        converted = convert_float_to_float16(model, keep_io_types=True)
    except Exception as error:  # the converter raises plain ValueError/AssertionError
        raise PrecisionError(f'cannot convert {source} to FP16: {error}') from error
    atomic_write(target, converted.SerializeToString())


def qdq_source(onnx_sha256: str, calibration_digest: str) -> str:
    return json.dumps({'onnx_sha256': onnx_sha256, 'calibration': calibration_digest},
                      sort_keys=True)


def cached_qdq_matches(path: Path, source: str) -> bool:
    """True when ``path`` is a Q/DQ model made from the same ONNX and calibration images."""
    if not path.is_file():
        return False
    try:
        metadata = {p.key: p.value for p in load_graph(path).metadata_props}
    except PrecisionError:
        return False
    return metadata.get(QDQ_SOURCE_KEY) == source


def quantize_to_qdq(source: Path, target: Path, input_name: str,
                    batches: Iterable[np.ndarray], source_tag: str) -> None:
    """Write an INT8 Q/DQ copy of ``source`` to ``target``, calibrated on ``batches``.

    ``batches`` are preprocessed network inputs, (1, 3, H, W) float32 each.
    ``source_tag`` (:func:`qdq_source`) is stored in the copy's metadata so a
    later build reuses it only for the same model and images.
    """
    from onnxruntime.quantization import (  # noqa: PLC0415
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    reader = _BatchReader(input_name, batches)
    with tempfile.TemporaryDirectory(prefix='mtdepth-qdq-') as scratch:
        quantized = Path(scratch) / 'model.qdq.onnx'
        try:
            quantize_static(
                str(source), str(quantized), reader, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OP_TYPES), per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.Entropy,
                extra_options={'ActivationSymmetric': True, 'WeightSymmetric': True})
        except Exception as error:  # onnxruntime raises its own types
            raise PrecisionError(f'INT8 calibration of {source} failed: {error}') from error
        if reader.count == 0:
            raise PrecisionError('INT8 calibration got no images')
        model = onnx.load(str(quantized))
    entry = model.metadata_props.add()
    entry.key, entry.value = QDQ_SOURCE_KEY, source_tag
    atomic_write(target, model.SerializeToString())


class _BatchReader:
    """ONNX Runtime's CalibrationDataReader protocol over an iterable of input tensors."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self.input_name = input_name
        self._batches = iter(batches)
        self.count = 0

    def get_next(self) -> dict[str, Any] | None:
        batch = next(self._batches, None)
        if batch is None:
            return None
        self.count += 1
        return {self.input_name: batch}

    def __iter__(self) -> _BatchReader:
        return self

    def __next__(self) -> dict[str, Any]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
