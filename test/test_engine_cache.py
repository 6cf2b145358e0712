"""Engine cache: keys, build descriptions, stale/foreign/corrupt engines and the rebuild policy."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from mtdepth_ros.inference.backends.engine_cache import (
    BuildDescription,
    EngineCacheError,
    EngineKey,
    Lookup,
    ShapeProfile,
    cache_dir_for,
    check_engine,
    description_path,
    engine_path,
    find_engine,
    must_build,
    read_engine,
    write_engine,
)

ENGINE_BYTES = b'not really a TensorRT plan, but bytes to hash' * 10
MODEL = Path('/models/mtdepth_default.onnx')
KEY = EngineKey(
    onnx_sha256='a' * 64, tensorrt_version='10.13.0.35', gpu_name='Orin',
    compute_capability='8.7', precision='fp16',
    input_profile=ShapeProfile.fixed((1, 3, 352, 1216)))


def describe(key: EngineKey = KEY, data: bytes = ENGINE_BYTES) -> BuildDescription:
    return BuildDescription(key=key, engine_sha256=hashlib.sha256(data).hexdigest(),
                            onnx_path=str(MODEL), input_name='image', workspace_mb=1024,
                            build_seconds=42.0)


@pytest.fixture
def cached(tmp_path: Path) -> Path:
    """An engine written to the cache for KEY, under its canonical name."""
    engine = engine_path(tmp_path, MODEL, KEY)
    write_engine(engine, ENGINE_BYTES, describe())
    return engine


def test_a_matching_engine_is_found_and_loaded(cached: Path) -> None:
    lookup = find_engine(cached.parent, KEY, cached)
    assert lookup.engine == cached
    assert not must_build('auto', lookup, MODEL)
    assert read_engine(cached, KEY) == ENGINE_BYTES


@pytest.mark.parametrize('change', [
    {'onnx_sha256': 'b' * 64},
    {'tensorrt_version': '10.3.0.26'},
    {'gpu_name': 'NVIDIA GeForce RTX 4090'},
    {'compute_capability': '8.9'},
    {'precision': 'fp32'},
    {'input_profile': ShapeProfile.fixed((1, 3, 480, 640))},
    {'dla_core': 0},
], ids=lambda change: next(iter(change)))
def test_changing_any_key_component_makes_the_engine_stale(cached: Path, change: dict) -> None:
    wanted = replace(KEY, **change)
    reason = check_engine(cached, wanted)
    field_name = next(iter(change)).replace('_', ' ')
    assert reason is not None and 'stale' in reason and field_name in reason
    lookup = find_engine(cached.parent, wanted, engine_path(cached.parent, MODEL, wanted))
    assert lookup.engine is None
    assert must_build('auto', lookup, MODEL)


def test_an_engine_without_description_is_foreign(tmp_path: Path) -> None:
    engine = engine_path(tmp_path, MODEL, KEY)
    engine.write_bytes(ENGINE_BYTES)
    reason = check_engine(engine, KEY)
    assert reason is not None and 'foreign' in reason


def test_an_engine_whose_bytes_changed_is_refused(cached: Path) -> None:
    cached.write_bytes(ENGINE_BYTES[:-1])  # truncated, or swapped for another engine
    reason = check_engine(cached, KEY)
    assert reason is not None and 'does not match the sha256' in reason


@pytest.mark.parametrize('text', ['{not json', '[]', json.dumps({'format_version': 1}),
                                  json.dumps({'format_version': 99})])
def test_a_corrupt_description_is_refused(cached: Path, text: str) -> None:
    description_path(cached).write_text(text)
    reason = check_engine(cached, KEY)
    assert reason is not None and 'not a valid build description' in reason


def test_policy_never_with_a_stale_engine_is_a_clear_error(cached: Path) -> None:
    wanted = replace(KEY, tensorrt_version='10.14.1.48')
    lookup = find_engine(cached.parent, wanted, cached)
    with pytest.raises(EngineCacheError) as error:
        must_build('never', lookup, MODEL)
    message = str(error.value)
    assert "rebuild policy 'never'" in message
    assert 'tensorrt version is 10.13.0.35, needed 10.14.1.48' in message
    assert f'mtdepth-build-engine {MODEL}' in message


def test_policy_always_builds_even_with_a_usable_engine(cached: Path) -> None:
    assert must_build('always', find_engine(cached.parent, KEY, cached), MODEL)


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match='rebuild policy must be one of'):
        must_build('sometimes', Lookup(None, []), MODEL)


def test_an_engine_written_under_another_name_is_found(tmp_path: Path) -> None:
    elsewhere = tmp_path / 'my_engine.engine'  # mtdepth-build-engine --out
    write_engine(elsewhere, ENGINE_BYTES, describe())
    lookup = find_engine(tmp_path, KEY, engine_path(tmp_path, MODEL, KEY))
    assert lookup.engine == elsewhere
    assert 'does not exist' in lookup.refused[0]


def test_description_json_has_what_a_person_needs(cached: Path) -> None:
    values = json.loads(description_path(cached).read_text())
    assert values['onnx_sha256'] == KEY.onnx_sha256
    assert values['tensorrt_version'] == '10.13.0.35'
    assert (values['gpu_name'], values['compute_capability']) == ('Orin', '8.7')
    assert values['precision'] == 'fp16'
    assert values['input_shape'] == [1, 3, 352, 1216]
    assert values['build_time'].endswith('+00:00')  # ISO 8601, UTC
    assert values['engine_sha256'] == hashlib.sha256(ENGINE_BYTES).hexdigest()


def test_description_round_trips(cached: Path) -> None:
    text = description_path(cached).read_text()
    assert BuildDescription.from_json(text).to_json() == text


def test_write_refuses_a_description_of_other_bytes(tmp_path: Path) -> None:
    engine = tmp_path / 'x.engine'
    with pytest.raises(ValueError, match='does not match'):
        write_engine(engine, ENGINE_BYTES, describe(data=b'other'))
    assert list(tmp_path.iterdir()) == []


def test_writes_leave_no_temporary_files(cached: Path) -> None:
    write_engine(cached, ENGINE_BYTES, describe())  # overwrite in place
    assert sorted(p.name for p in cached.parent.iterdir()) == [
        cached.name, description_path(cached).name]


def test_read_engine_rechecks_the_key(cached: Path) -> None:
    with pytest.raises(EngineCacheError, match='stale'):
        read_engine(cached, replace(KEY, precision='int8'))


def test_engine_names_say_precision_device_and_shape(tmp_path: Path) -> None:
    assert engine_path(tmp_path, MODEL, KEY).name == 'mtdepth_default.fp16.352x1216.engine'
    dla = replace(KEY, dla_core=1, input_profile=ShapeProfile(
        (1, 3, 176, 608), (1, 3, 352, 1216), (1, 3, 352, 1216)))
    assert engine_path(tmp_path, MODEL, dla).name == \
        'mtdepth_default.fp16.dla1.176x608-352x1216.engine'


def test_shape_profile_covers_its_range() -> None:
    profile = ShapeProfile((1, 3, 176, 608), (1, 3, 352, 1216), (1, 3, 352, 1216))
    assert profile.covers((1, 3, 200, 700))
    assert not profile.covers((1, 3, 480, 640))
    assert not profile.covers((1, 3, 352))


def test_cache_dir_defaults_to_the_model_folder(tmp_path: Path) -> None:
    assert cache_dir_for(MODEL, '') == MODEL.parent
    assert cache_dir_for(MODEL, str(tmp_path)) == tmp_path
