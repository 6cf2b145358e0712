"""The node's plain parts: frame slot, camera_info pairing, statistics, parameters, outputs."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import model_fixtures as mf
import numpy as np
import pytest
import yaml

from mtdepth_ros.inference.outputs import available_outputs, class_ids, heads_for, resize_prediction
from mtdepth_ros.inference.predictor import Prediction
from mtdepth_ros.node.camera_pairing import CameraInfoPairing
from mtdepth_ros.node.diagnostics import (
    ERROR,
    OK,
    SUPERSEDED,
    WARN,
    DiagnosticsSettings,
    FrameStats,
    assess,
    build_status,
)
from mtdepth_ros.node.frame_slot import FrameSlot
from mtdepth_ros.node.parameters import (
    PARAMETERS,
    ParameterError,
    config_from_values,
    defaults,
    descriptor,
)

YAML = Path(__file__).resolve().parents[1] / 'config' / 'mtdepth.yaml'


# -- frame slot -------------------------------------------------------------------------


def test_slot_keeps_the_newest_frame_and_returns_the_replaced_one() -> None:
    slot: FrameSlot[int] = FrameSlot()
    assert slot.put(1) is None
    assert slot.put(2) == 1
    assert slot.take(0) == 2 and slot.take(0) is None


def test_slot_take_waits_for_a_frame_from_another_thread() -> None:
    slot: FrameSlot[str] = FrameSlot()
    threading.Timer(0.01, slot.put, ['frame']).start()
    assert slot.take(5.0) == 'frame'


def test_closed_slot_wakes_the_worker() -> None:
    slot: FrameSlot[int] = FrameSlot()
    threading.Timer(0.01, slot.close).start()
    assert slot.take(5.0) is None and slot.closed


# -- camera_info pairing ------------------------------------------------------------------


def info(sec: int, nanosec: int = 0) -> Any:
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec)))


def test_pairing_matches_the_exact_stamp() -> None:
    pairing = CameraInfoPairing()
    first, second = info(1), info(2)
    pairing.add(first)
    pairing.add(second)
    assert pairing.match(info(1).header) is first
    assert pairing.match(info(3).header) is None


def test_pairing_with_cache_takes_the_latest() -> None:
    pairing = CameraInfoPairing(cache_latest=True)
    latest = info(2)
    pairing.add(info(1))
    pairing.add(latest)
    assert pairing.match(info(99).header) is latest


def test_pairing_waits_for_a_late_camera_info() -> None:
    pairing = CameraInfoPairing()
    pairing.add(info(1))
    late = info(2)
    threading.Timer(0.01, pairing.add, [late]).start()
    assert pairing.match(late.header, timeout=5.0) is late


def test_pairing_with_cache_waits_for_the_first() -> None:
    pairing = CameraInfoPairing(cache_latest=True)
    first = info(1)
    threading.Timer(0.01, pairing.add, [first]).start()
    assert pairing.match(info(5).header, timeout=5.0) is first


def test_pairing_forgets_old_stamps() -> None:
    pairing = CameraInfoPairing(history=2)
    for sec in range(3):
        pairing.add(info(sec))
    assert pairing.match(info(0).header) is None and pairing.match(info(2).header) is not None


# -- statistics and diagnostics -----------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stats_after(received: int, published: int, seconds: float = 1.0,
                drops: dict[str, int] | None = None, latency: float = 0.01) -> Any:
    clock = FakeClock()
    stats = FrameStats(clock)
    for _ in range(received):
        stats.received()
    for _ in range(published):
        stats.published(latency, 0.005, 0.008)
    for reason, count in (drops or {}).items():
        for _ in range(count):
            stats.dropped(reason)
    clock.now = seconds
    return stats.snapshot()


def test_window_rates_and_means() -> None:
    window = stats_after(received=20, published=10, seconds=2.0)
    assert window.input_rate == 10.0 and window.output_rate == 5.0
    assert window.latency_mean_s == pytest.approx(0.01)
    assert window.inference_mean_s == pytest.approx(0.005)


def test_snapshot_starts_a_new_window_but_keeps_drop_totals() -> None:
    stats = FrameStats(FakeClock())
    stats.dropped('encoding')
    stats.snapshot()
    window = stats.snapshot()
    assert window.drops == {} and window.drops_total == {'encoding': 1}


def test_keeping_up_is_ok() -> None:
    assert assess(stats_after(10, 10), DiagnosticsSettings())[0] == OK


def test_falling_behind_the_input_warns() -> None:
    level, message = assess(stats_after(10, 5, drops={SUPERSEDED: 5}), DiagnosticsSettings())
    assert level == WARN and 'falling behind' in message


def test_below_the_expected_rate_warns() -> None:
    level, message = assess(stats_after(10, 10), DiagnosticsSettings(expected_rate=30.0))
    assert level == WARN and '30.0 Hz expected' in message


def test_high_latency_warns() -> None:
    level, message = assess(stats_after(10, 10, latency=2.0), DiagnosticsSettings(max_latency=0.5))
    assert level == WARN and 'latency' in message


def test_bad_input_warns_with_reason() -> None:
    level, message = assess(stats_after(10, 9, drops={'encoding': 1}),
                            DiagnosticsSettings(rate_tolerance=0.5))
    assert level == WARN and '1 encoding' in message


def test_failures_are_errors() -> None:
    assert assess(stats_after(10, 9, drops={'error': 1}), DiagnosticsSettings())[0] == ERROR


def test_no_input_warns() -> None:
    level, message = assess(stats_after(0, 0), DiagnosticsSettings())
    assert level == WARN and 'no images' in message


def test_status_carries_every_figure() -> None:
    status = build_status(stats_after(10, 10, drops={'layout': 2}), DiagnosticsSettings(),
                          'mtdepth_node: inference', 'tiny', {'backend': 'cpu'})
    keys = {kv.key: kv.value for kv in status.values}
    assert status.level == bytes([WARN])  # the layout drops
    assert keys['dropped layout (total)'] == '2' and keys['backend'] == 'cpu'
    assert {'input rate (Hz)', 'output rate (Hz)', 'latency max (s)', 'inference mean (s)'} <= set(keys)


# -- parameters ---------------------------------------------------------------------------


def flatten(values: dict[str, Any], prefix: str = '') -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f'{prefix}{name}.'))
        else:
            flat[f'{prefix}{name}'] = value
    return flat


def test_yaml_mirrors_the_declarations() -> None:
    document = yaml.safe_load(YAML.read_text())
    assert flatten(document['/**']['ros__parameters']) == defaults()


def test_yaml_values_have_the_declared_types() -> None:
    # rclpy refuses an int for a double parameter: 80 where 80.0 is declared
    flat = flatten(yaml.safe_load(YAML.read_text())['/**']['ros__parameters'])
    for param in PARAMETERS:
        assert type(flat[param.name]) is type(param.default), param.name


def test_every_parameter_has_a_description_and_numbers_a_range() -> None:
    for param in PARAMETERS:
        desc = descriptor(param)
        assert desc.description, param.name
        if isinstance(param.default, (int, float)) and not isinstance(param.default, bool):
            assert desc.integer_range or desc.floating_point_range, param.name


def test_defaults_make_a_config() -> None:
    config = config_from_values({})
    assert config.backends == ('onnxruntime',) and 'points' in config.outputs


def test_backend_chain_is_split_and_checked() -> None:
    config = config_from_values({'backend': 'tensorrt, onnxruntime:cuda'})
    assert config.backends == ('tensorrt', 'onnxruntime:cuda')
    with pytest.raises(ParameterError, match='unknown backend'):
        config_from_values({'backend': 'tensorrt,magic'})


def test_backend_options_come_from_parameters() -> None:
    options = config_from_values({'precision': 'fp16', 'threads': 2, 'engine_rebuild': 'never',
                                  'dla_core': 0}).backend_options
    assert (options.precision, options.threads, options.rebuild, options.dla_core) == (
        'fp16', 2, 'never', 0)


def test_bad_choice_names_the_parameter() -> None:
    with pytest.raises(ParameterError, match='output_resolution'):
        config_from_values({'output_resolution': 'huge'})


def test_switched_off_outputs_leave_the_config() -> None:
    config = config_from_values({'outputs.points': False})
    assert 'points' not in config.outputs


def test_drop_classes_is_a_list_of_names() -> None:
    assert config_from_values({}).cloud.drop_classes == ('sky',)
    config = config_from_values({'points.drop_classes': ' car, sky ,car,'})
    assert config.cloud.drop_classes == ('car', 'sky')
    assert config_from_values({'points.drop_classes': ''}).cloud.drop_classes == ()


# -- outputs ------------------------------------------------------------------------------


def test_class_ids_come_from_the_card_and_unknown_names_are_returned() -> None:
    ids, unknown = class_ids(mf.make_card(), ('sky', 'tree', 'road'))  # road, car, sky
    assert ids.tolist() == [2, 0] and unknown == ['tree']
    ids, unknown = class_ids(mf.make_card(heads=('depth',)), ('sky',))  # no classes at all
    assert ids.size == 0 and unknown == ['sky']


def test_heads_for_each_output() -> None:
    card = mf.make_card()
    assert heads_for({'intervals_color'}, card) == {'intervals'}
    assert heads_for({'depth_camera_info'}, card) == set()
    assert heads_for({'points'}, card) == {'depth', 'segmentation', 'confidence'}


def test_outputs_need_their_head() -> None:
    card = mf.make_card(heads=('depth',))
    assert set(available_outputs(card)) == {'depth', 'depth_camera_info', 'points'}
    assert heads_for({'points'}, card) == {'depth'}


def test_resize_prediction_uses_nearest_neighbours() -> None:
    depth = np.array([[1.0, np.nan], [3.0, 4.0]], np.float32)
    resized = resize_prediction(Prediction(depth=depth), 4, 4).depth
    assert resized is not None and resized.shape == (4, 4)
    assert set(np.unique(resized[np.isfinite(resized)])) == {1.0, 3.0, 4.0}
