import copy
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mtdepth_ros.inference.card import CARD_KEY, CardError, ModelCard, embed_card, read_card

CARD = {
    'format_version': 1,
    'name': 'tiny',
    'recipe': 'test',
    'architecture': 'identity',
    'input': {'name': 'image', 'height': 4, 'width': 6, 'layout': 'NCHW', 'color_order': 'RGB',
              'mean': [0.5, 0.5, 0.5], 'std': [0.25, 0.25, 0.25]},
    'heads': {'depth': {'output': 'depth', 'encoding': 'normalized_log'},
              'segmentation': {'output': 'seg'}},
    'depth_coding': {'d_min': 2.0, 'd_max': 125.0, 'num_intervals': 32},
    'classes': {'names': ['road', 'car'], 'palette': [[128, 64, 128], [0, 0, 142]]},
    'camera': {'focal_length_px': 721.5},
    'metrics': {'silog': 12.5},
}


def tiny_model(outputs=('depth', 'seg')) -> onnx.ModelProto:
    nodes = [helper.make_node('ReduceMean', ['image'], [name], axes=[1]) for name in outputs]
    graph = helper.make_graph(
        nodes, 'tiny', [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, 4, 6])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, 4, 6]) for n in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])


def test_round_trip_through_json():
    card = ModelCard.from_dict(CARD)
    assert ModelCard.from_json(card.to_json()) == card
    assert card.output_names == {'depth': 'depth', 'segmentation': 'seg'}
    assert card.depth_coding.num_intervals == 32
    assert 'road' in card.describe()


@pytest.mark.parametrize('mutate, message', [
    (lambda c: c.pop('input'), "missing 'input'"),
    (lambda c: c['input'].pop('height'), "missing 'input.height'"),
    (lambda c: c['input'].update(height=-4), "'input.height' must be positive"),
    (lambda c: c['input'].update(layout='NHWC'), "'input.layout' must be one of"),
    (lambda c: c['heads'].update(normals={'output': 'n'}), 'unknown heads'),
    (lambda c: c['heads']['depth'].pop('encoding'), "missing 'heads.depth.encoding'"),
    (lambda c: c.pop('depth_coding'), "missing 'depth_coding'"),
    (lambda c: c.pop('classes'), "missing 'classes'"),
    (lambda c: c['classes']['palette'].pop(), 'one \\[r, g, b\\]'),
    (lambda c: c['camera'].update(focal_length_px=0), 'focal_length_px'),
    (lambda c: c.update(format_version=7), 'format_version 7'),
    (lambda c: c['depth_coding'].update(d_min=200.0), "'depth_coding' is invalid"),
])
def test_bad_cards_name_what_is_wrong(mutate, message):
    values = copy.deepcopy(CARD)
    mutate(values)
    with pytest.raises(CardError, match=message):
        ModelCard.from_dict(values)


def test_every_problem_is_reported_at_once():
    values = copy.deepcopy(CARD)
    values['input'].pop('name')
    values['camera'] = {}
    with pytest.raises(CardError) as error:
        ModelCard.from_dict(values)
    assert "'input.name'" in str(error.value) and "'camera.focal_length_px'" in str(error.value)


def test_embed_and_read_back(tmp_path):
    model = tiny_model()
    embed_card(model, ModelCard.from_dict(CARD))
    path = tmp_path / 'tiny.onnx'
    onnx.save(model, str(path))
    assert read_card(path) == ModelCard.from_dict(CARD)


def test_model_without_card_is_refused(tmp_path):
    path = tmp_path / 'plain.onnx'
    onnx.save(tiny_model(), str(path))
    with pytest.raises(CardError, match='has no model card'):
        read_card(path)


def test_card_naming_missing_output_is_refused(tmp_path):
    model = tiny_model(outputs=('depth',))
    model.metadata_props.add(key=CARD_KEY, value=json.dumps(CARD))
    path = tmp_path / 'mismatch.onnx'
    onnx.save(model, str(path))
    with pytest.raises(CardError, match="names output 'seg'"):
        read_card(path)


def test_not_an_onnx_file_is_refused(tmp_path):
    path = tmp_path / 'junk.onnx'
    path.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    with pytest.raises(CardError, match='not a readable ONNX model'):
        read_card(path)
    with pytest.raises(CardError, match='not found'):
        read_card(tmp_path / 'absent.onnx')
