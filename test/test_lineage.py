"""training.lineage: a model's card names every tree its weights saw, across stages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import onnx
import torch
from model_fixtures import make_card, make_model

from training.checkpoints import EXTRA_KEY
from training.lineage import BEFORE, INIT_FROM_DATA, exported_lineage, training_data


def test_card_training_data_follows_init_from_back(tmp_path: Path) -> None:
    def save(name: str, data: str, parent: Path | None) -> Path:
        path = tmp_path / f'{name}.ckpt'
        config = {'model': {'init_from': str(parent) if parent else None}}
        torch.save({'state_dict': {}, EXTRA_KEY: {'config': config,
                                                   'data': {'training_data': data}}}, path)
        return path

    one = save('one', 'kitti at a (10 training frames)', None)
    two = save('two', 'kitti at a (10 training frames)', one)  # the same data again: said once
    extra = {'config': {'model': {'init_from': str(two)}},
             'data': {'training_data': 'kitti at b (20 training frames)'}}
    assert training_data(extra) == ('kitti at b (20 training frames); before that, from '
                                    'weights trained on kitti at a (10 training frames)')
    assert training_data({'data': {'training_data': 'x'}}) == 'x'  # no init_from
    gone = {'config': {'model': {'init_from': str(tmp_path / 'gone.ckpt')}},
            'data': {'training_data': 'x'}}
    assert training_data(gone) == (f'x; before that, from weights trained on '
                                   f'{tmp_path / "gone.ckpt"} (not found: its training data '
                                   'unknown)')
    junk = tmp_path / 'junk.ckpt'
    junk.write_bytes(b'not a checkpoint')
    unreadable = training_data({'config': {'model': {'init_from': str(junk)}},
                                'data': {'training_data': 'x'}})
    assert unreadable.startswith(f'x; before that, from weights trained on {junk} (unreadable: ')
    assert training_data({}) == ''  # a checkpoint from before the facts were recorded


def test_recorded_parent_lineage_is_used_and_outlives_the_parent(tmp_path: Path) -> None:
    gone = tmp_path / 'deleted.ckpt'  # the parent was deleted after the run recorded it
    extra = {'config': {'model': {'init_from': str(gone)}},
             'data': {'training_data': 'kitti at c (30 training frames)'},
             INIT_FROM_DATA: 'kitti at b (20 training frames); before that, from weights '
                             'trained on kitti at a (10 training frames)'}
    assert training_data(extra) == ('kitti at c (30 training frames); before that, from '
                                    'weights trained on kitti at b (20 training frames); before '
                                    'that, from weights trained on kitti at a (10 training frames)')
    extra['data'] = {'training_data': 'kitti at b (20 training frames)'}  # same tree again
    assert training_data(extra) == extra[INIT_FROM_DATA]


def test_an_exported_parent_gives_the_lineage_its_card_records(tmp_path: Path) -> None:
    # The bundled model's card already names every tree back to stage one.
    recorded = ('kitti at b (20 training frames); before that, from weights trained on '
                'kitti at a (10 training frames)')
    model = tmp_path / 'bundled.onnx'
    onnx.save(make_model(replace(make_card(), training_data=recorded)), str(model))
    assert exported_lineage(model) == recorded
    extra = {'config': {'model': {'init_from': str(model)}},
             'data': {'training_data': 'kitti at c (30 training frames)'}}
    assert training_data(extra) == f'kitti at c (30 training frames){BEFORE}{recorded}'
    unrecorded = tmp_path / 'unrecorded.onnx'
    onnx.save(make_model(replace(make_card(), training_data='')), str(unrecorded))
    assert exported_lineage(unrecorded) == f'{unrecorded} (unrecorded)'
    gone = tmp_path / 'gone.onnx'
    assert exported_lineage(gone) == f'{gone} (not found: its training data unknown)'
    junk = tmp_path / 'junk.onnx'
    junk.write_bytes(b'not a model')
    assert exported_lineage(junk).startswith(f'{junk} (unreadable: ')


def test_a_mixture_recorded_without_its_sources_is_named_from_its_config() -> None:
    # a mixture's card once said 'training.data.mixed.MixedSources at .'; the checkpoint's
    # config still holds the recipe's sources
    sources = [{'dataset': 'kitti', 'root': 'data/v9', 'args': {'flip': True}},
               {'dataset': 'kitti', 'root': 'data/v10'}]
    extra = {'config': {'data': {'train_args': {'sources': sources}}},
             'data': {'training_data': "training.data.mixed.MixedSources at . (7128 training "
                                       "frames, split 'train')"}}
    assert training_data(extra) == ("kitti at data/v9 + kitti at data/v10 (7128 training "
                                    "frames, split 'train')")
    extra['data'] = {'training_data': "kitti at data/v9 (10 frames, split 'train') (10 ...)"}
    assert training_data(extra) == extra['data']['training_data']  # named already: kept
