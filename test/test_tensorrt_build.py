"""Engine building without a GPU: the precision plan per TensorRT version, the FP16 and
INT8 Q/DQ ONNX copies (run here with ONNX Runtime on the CPU), and the CLI's arguments."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import model_fixtures as mf
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mtdepth_ros.inference.backends.base import BackendUnavailable
from mtdepth_ros.inference.backends.build_engine import main, parse_args, request_from_args
from mtdepth_ros.inference.backends.calibration import calibration_batches, find_source
from mtdepth_ros.inference.backends.engine_builder import (
    BuildError,
    TensorRTFeatures,
    load_tensorrt,
    plan_build,
    static_profile,
    version_tuple,
)
from mtdepth_ros.inference.backends.onnx_precision import (
    QDQ_SOURCE_KEY,
    cached_qdq_matches,
    convert_to_fp16,
    has_qdq,
    load_graph,
    qdq_source,
    quantize_to_qdq,
)
from mtdepth_ros.inference.model_file import embed_card, read_card
from mtdepth_ros.inference.predictor import Predictor

TRT_10_13 = TensorRTFeatures('10.13.0.35', strongly_typed=True, weak_typing_flags=True,
                             implicit_int8=True)
TRT_11 = TensorRTFeatures('11.4.0.106', strongly_typed=True, weak_typing_flags=False,
                          implicit_int8=False)
TRT_8_6 = TensorRTFeatures('8.6.2.3', strongly_typed=False, weak_typing_flags=True,
                           implicit_int8=True)
SEED = 7


def tensorrt_runs_here() -> bool:
    try:
        load_tensorrt()
    except BackendUnavailable:
        return False
    return True


# ---- the precision plan ---------------------------------------------------------------------

@pytest.mark.parametrize('features', [TRT_10_13, TRT_11], ids=['10.13', '11'])
def test_fp16_is_a_strongly_typed_fp16_onnx_without_flags(features: TensorRTFeatures) -> None:
    plan = plan_build('fp16', features, onnx_is_qdq=False)
    assert (plan.onnx_form, plan.strongly_typed, plan.flags) == ('fp16', True, ())


def test_fp16_uses_the_flag_only_where_strong_typing_is_missing() -> None:
    plan = plan_build('fp16', TRT_8_6, onnx_is_qdq=False)
    assert (plan.onnx_form, plan.strongly_typed, plan.flags) == ('original', False, ('FP16',))
    assert 'no strongly typed networks' in plan.notes[0]


def test_int8_is_calibrated_into_a_qdq_onnx_on_current_tensorrt() -> None:
    plan = plan_build('int8', TRT_10_13, onnx_is_qdq=False)
    assert (plan.onnx_form, plan.strongly_typed, plan.flags) == ('qdq', True, ())
    assert plan.scales == 'onnxruntime' and plan.needs_calibration_data


def test_legacy_int8_uses_the_entropy_calibrator_and_says_it_is_deprecated() -> None:
    plan = plan_build('int8', TRT_10_13, onnx_is_qdq=False, legacy_int8=True)
    assert plan.implicit_calibration and not plan.strongly_typed
    assert plan.flags == ('INT8', 'FP16')
    assert 'deprecated since TensorRT 10.1' in plan.notes[0]


def test_legacy_int8_is_refused_where_tensorrt_removed_it() -> None:
    with pytest.raises(BuildError, match='no implicit INT8 calibration'):
        plan_build('int8', TRT_11, onnx_is_qdq=False, legacy_int8=True)


def test_old_tensorrt_calibrates_int8_itself() -> None:
    plan = plan_build('int8', TRT_8_6, onnx_is_qdq=False)
    assert plan.implicit_calibration and 'deprecated' not in plan.notes[0]


def test_a_quantised_onnx_keeps_its_own_scales() -> None:
    plan = plan_build('int8', TRT_11, onnx_is_qdq=True)
    assert (plan.onnx_form, plan.strongly_typed, plan.scales) == ('original', True, 'onnx')
    assert not plan.needs_calibration_data


def test_a_quantised_onnx_is_not_built_as_fp16() -> None:
    with pytest.raises(BuildError, match='build it as int8'):
        plan_build('fp16', TRT_10_13, onnx_is_qdq=True)


def test_dla_needs_reduced_precision_and_falls_back_to_the_gpu() -> None:
    with pytest.raises(BuildError, match='DLA runs FP16 or INT8 only'):
        plan_build('fp32', TRT_10_13, onnx_is_qdq=False, dla_core=0)
    assert plan_build('fp16', TRT_10_13, onnx_is_qdq=False, dla_core=0).flags == ('GPU_FALLBACK',)


@pytest.mark.parametrize('features', [TRT_10_13, TRT_11, TRT_8_6], ids=['10.13', '11', '8.6'])
@pytest.mark.parametrize('precision', ['fp16', 'int8'])
def test_reduced_precision_never_ends_as_a_plain_fp32_build(
        features: TensorRTFeatures, precision: str) -> None:
    plan = plan_build(precision, features, onnx_is_qdq=False)
    assert plan.onnx_form != 'original' or precision.upper() in plan.flags


def test_features_are_detected_from_the_module() -> None:
    trt11 = SimpleNamespace(
        __version__='11.0.0', BuilderFlag=SimpleNamespace(TF32=6),
        NetworkDefinitionCreationFlag=SimpleNamespace(STRONGLY_TYPED=1),
        IBuilderConfig=SimpleNamespace())
    assert TensorRTFeatures.detect(trt11) == TensorRTFeatures('11.0.0', True, False, False)
    assert TensorRTFeatures('10.12.0.36', True, True, True).weak_typing_deprecated
    assert not TensorRTFeatures('10.11.0.33', True, True, True).weak_typing_deprecated


def test_version_tuple_stops_at_text() -> None:
    assert version_tuple('10.13.0.35') == (10, 13, 0, 35)
    assert version_tuple('11.0.0rc1') == (11, 0, 0)


@pytest.mark.skipif(tensorrt_runs_here(), reason='TensorRT is installed here')
def test_load_tensorrt_says_why_it_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match='install TensorRT for Python'):
        load_tensorrt()


# ---- ONNX copies in the precision TensorRT builds from --------------------------------------

def conv_model(path: Path) -> Path:
    """A small convolutional network (so there is something to quantise) with a model card."""
    rng = np.random.default_rng(SEED)
    card = mf.make_card(heads=('depth',), echo=True)  # one float output, metres
    weights = {
        'w1': rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32),
        'b1': rng.normal(0, 0.1, 8).astype(np.float32),
        'w2': rng.normal(0, 0.3, (1, 8, 3, 3)).astype(np.float32),
        'b2': np.array([2.0], np.float32),
    }
    nodes = [
        helper.make_node('Conv', ['image', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1]),
        helper.make_node('Relu', ['c1'], ['r1']),
        helper.make_node('Conv', ['r1', 'w2', 'b2'], ['c2'], pads=[1, 1, 1, 1]),
        helper.make_node('Softplus', ['c2'], ['depth_out']),  # positive metres
    ]
    shape = [1, 3, mf.HEIGHT, mf.WIDTH]
    graph = helper.make_graph(
        nodes, 'conv', [helper.make_tensor_value_info('image', TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info('depth_out', TensorProto.FLOAT, [1, 1, *shape[2:]])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', mf.OPSET)])
    model.ir_version = 8
    embed_card(model, card)
    onnx.save(model, str(path))
    return path


def run_onnx(path: Path, image: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    return session.run(None, {'image': image})[0]


def write_images(folder: Path, count: int, seed: int = SEED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        bgr = rng.integers(0, 256, (mf.HEIGHT * 2, mf.WIDTH * 2, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f'frame_{i:03d}.png'), bgr)
    return folder


@pytest.fixture(scope='module')
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return conv_model(tmp_path_factory.mktemp('conv') / 'conv.onnx')


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    return rng.normal(0, 1, (1, 3, mf.HEIGHT, mf.WIDTH)).astype(np.float32)


def test_fp16_copy_matches_fp32_within_fp16_tolerance(model: Path, image: np.ndarray,
                                                      tmp_path: Path) -> None:
    fp16 = tmp_path / 'conv.fp16.onnx'
    convert_to_fp16(model, fp16)
    graph = load_graph(fp16)
    assert TensorProto.FLOAT16 in {init.data_type for init in graph.graph.initializer}
    np.testing.assert_allclose(run_onnx(fp16, image), run_onnx(model, image),
                               rtol=1e-2, atol=1e-2)


def test_fp16_copy_keeps_float32_io_and_the_card(model: Path, tmp_path: Path) -> None:
    fp16 = tmp_path / 'conv.fp16.onnx'
    convert_to_fp16(model, fp16)
    graph = load_graph(fp16).graph
    io = [v.type.tensor_type.elem_type for v in [*graph.input, *graph.output]]
    assert io == [TensorProto.FLOAT, TensorProto.FLOAT]
    assert read_card(fp16) == read_card(model)


@pytest.fixture(scope='module')
def quantised(model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    source = find_source(write_images(tmp_path_factory.mktemp('calib'), 8))
    target = tmp_path_factory.mktemp('qdq') / 'conv.int8-qdq.onnx'
    tag = qdq_source('f' * 64, source.digest())
    batches = calibration_batches(source, Predictor(model).preprocess)
    quantize_to_qdq(model, target, 'image', batches, tag)
    return target, tag


def test_int8_copy_has_symmetric_qdq_nodes(quantised: tuple[Path, str]) -> None:
    graph = load_graph(quantised[0])
    assert has_qdq(graph)
    inits = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    zero_points = [inits[n.input[2]] for n in graph.graph.node
                   if n.op_type == 'QuantizeLinear' and len(n.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)


def test_int8_copy_runs_close_to_fp32(model: Path, quantised: tuple[Path, str],
                                      image: np.ndarray) -> None:
    reference = run_onnx(model, image)
    error = np.abs(run_onnx(quantised[0], image) - reference)
    assert error.mean() < 0.05 * np.abs(reference).mean()


def test_int8_copy_is_reused_only_for_the_same_model_and_images(
        quantised: tuple[Path, str]) -> None:
    path, tag = quantised
    metadata = {p.key: p.value for p in load_graph(path).metadata_props}
    assert metadata[QDQ_SOURCE_KEY] == tag
    assert cached_qdq_matches(path, tag)
    assert not cached_qdq_matches(path, qdq_source('e' * 64, 'other images'))


def test_static_profile_fills_dynamic_dimensions_from_the_card(tmp_path: Path) -> None:
    model = onnx.load(str(conv_model(tmp_path / 'conv.onnx')))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = 'height', 'width'
    onnx.save(model, str(tmp_path / 'dynamic.onnx'))
    profile = static_profile(tmp_path / 'dynamic.onnx', read_card(tmp_path / 'dynamic.onnx'))
    assert profile.opt == (1, 3, mf.HEIGHT, mf.WIDTH)


# ---- mtdepth-build-engine's arguments -------------------------------------------------------

@pytest.mark.parametrize('args, message', [
    (['--workspace', '0'], '--workspace must be a positive'),
    (['--calib', '.'], '--calib and --legacy-int8 are for INT8 engines'),
    (['--legacy-int8'], 'add --int8'),
    (['--calib-limit', '0', '--int8'], '--calib-limit must be positive'),
    (['--dla-core', '-3', '--fp16'], '--dla-core must be'),
    (['--out', 'model.plan'], '--out must name a .engine file'),
    (['--int8'], 'INT8 needs calibration images: add --calib DIR'),
])
def test_bad_arguments_say_what_is_wrong(model: Path, args: list[str], message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(model), *args]) == 2
    assert message in capsys.readouterr().err


def test_fp16_and_int8_are_exclusive(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(model), '--fp16', '--int8'])
    assert exit_info.value.code == 2
    assert 'not allowed with argument' in capsys.readouterr().err


def test_a_missing_model_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / 'nowhere.onnx')]) == 2
    assert 'model file not found' in capsys.readouterr().err


def test_a_calibration_folder_without_images_is_named(
        model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(model), '--int8', '--calib', str(tmp_path)]) == 2
    assert f'no .png/.jpg/.jpeg images in {tmp_path}' in capsys.readouterr().err


def test_arguments_make_a_build_request(model: Path, tmp_path: Path) -> None:
    calib = write_images(tmp_path / 'calib', 3)
    out = tmp_path / 'x.engine'
    request = request_from_args(parse_args(
        [str(model), '--int8', '--calib', str(calib), '--workspace', '512', '--out', str(out)]))
    assert (request.precision, request.workspace_mb, request.out) == ('int8', 512, out)
    assert request.profile.opt == (1, 3, mf.HEIGHT, mf.WIDTH)
    assert request.calibration is not None and len(request.calibration.files) == 3


@pytest.mark.skipif(tensorrt_runs_here(), reason='TensorRT is installed here')
def test_a_valid_build_without_tensorrt_says_why(model: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(model), '--fp16']) == 1
    assert 'TensorRT cannot be used here' in capsys.readouterr().err
