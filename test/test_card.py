import copy
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mtdepth_ros.inference.card import CARD_KEY, CardError, ModelCard, training_data_summary
from mtdepth_ros.inference.model_file import embed_card, read_card

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
    (lambda c: c['camera'].update(focal_length_px=float('nan')), 'focal_length_px'),
    (lambda c: c['camera'].update(focal_length_px=float('inf')), 'focal_length_px'),
    (lambda c: c['input'].update(frame_width=1242), "'input.frame_width' and"),
    (lambda c: c['heads']['depth'].update(valid_range=[5.0, 2.0]), 'valid_range'),
    (lambda c: c['heads']['depth'].update(valid_range=[1.0, float('inf')]), 'valid_range'),
    (lambda c: c['classes'].update(far=['sky']), "'classes.far' names \\['sky'\\]"),
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


def test_nan_focal_length_in_the_json_text_is_refused():
    # json.loads reads NaN; a card saying so would turn every corrected depth into NaN
    text = json.dumps(CARD).replace('721.5', 'NaN')
    with pytest.raises(CardError, match="'camera.focal_length_px' must be a positive number"):
        ModelCard.from_json(text)


def test_frame_valid_range_and_far_classes_round_trip():
    values = copy.deepcopy(CARD)
    values['input'].update(frame_width=12, frame_height=4)
    values['heads']['depth']['valid_range'] = [2.0, 80.0]
    values['classes'].update(names=['road', 'sky'], far=['sky'])
    card = ModelCard.from_dict(values)
    assert ModelCard.from_json(card.to_json()) == card
    assert card.input.frame_aspect == 3.0 and card.depth_range == (2.0, 80.0)
    assert card.far_class_ids == (1,)
    assert 'far classes (+inf depth): sky' in card.describe()


def test_valid_range_defaults_to_the_depth_coding():
    card = ModelCard.from_dict(CARD)
    assert card.depth_range == (2.0, 125.0) and card.input.frame_aspect == 6 / 4
    assert 'frame_width' not in card.to_dict()['input'] and 'far' not in card.to_dict()['classes']


def test_card_input_size_differing_from_the_graph_is_refused(tmp_path):
    values = copy.deepcopy(CARD)
    values['input'].update(height=8, width=12)
    model = tiny_model()
    model.metadata_props.add(key=CARD_KEY, value=json.dumps(values))
    path = tmp_path / 'size.onnx'
    onnx.save(model, str(path))
    with pytest.raises(CardError, match=r'input size differs: height 4 \(graph\) vs 8 \(card\), '
                                        r'width 6 \(graph\) vs 12 \(card\)'):
        read_card(path)


def test_a_long_lineage_is_summarised_by_its_datasets_and_a_short_one_kept():
    stage = "kitti at data/v2 (1764 training frames, split 'train')"
    mix = ("kitti at data/v2 (1764 frames, split 'train') + kitti at data/v11 (3564 frames, "
           "split 'train') (5328 training frames)")
    soup = f'weights averaged, 0.5 x [{mix}; before that, {stage}]; 0.5 x [{stage}]' * 3
    assert training_data_summary(stage) == stage
    summary = training_data_summary(soup)
    assert summary.startswith('2 datasets (kitti at data/v2, data/v11) through a lineage')
    assert f'{len(soup)} characters' in summary
    assert training_data_summary('x' * 300) == 'x' * 300  # names no dataset: kept whole
    card = ModelCard.from_dict({**CARD, 'training_data': soup})
    assert 'training data: 2 datasets' in card.describe()
    assert ModelCard.from_json(card.to_json()).training_data == soup  # the card keeps it all
