"""Cityscapes-style segmentation-only source and its mix with KITTI depth."""

from __future__ import annotations

import cv2
import numpy as np
from torch.utils.data import ConcatDataset, DataLoader

from training.data.cityscapes import CityscapesSegmentation
from training.data.classes import cityscapes_label_to_train_lut
from training.data.kitti import KittiDataset

from test_data_trees import cityscapes_tree, kitti_tree


def test_label_ids_map_to_the_written_train_ids() -> None:
    data = CityscapesSegmentation(cityscapes_tree(), 'train')
    city, name = data.names[0]
    train_ids = cv2.imread(str(cityscapes_tree() / 'gtFine' / 'train' / city
                               / f'{name}_gtFine_labelTrainIds.png'), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(data[0]['labels'].numpy(), train_ids)
    assert np.array_equal(CityscapesSegmentation(cityscapes_tree(), 'train', label_file='labelTrainIds')[0][
        'labels'].numpy(), train_ids)


def test_samples_carry_labels_and_no_depth() -> None:
    batch = CityscapesSegmentation(cityscapes_tree(), 'train')[0]
    assert bool(batch['has_labels']) and not bool(batch['has_depth'])
    assert not batch['depth_valid'].any()


def test_lut_ignores_classes_outside_the_19() -> None:
    lut = cityscapes_label_to_train_lut()
    assert lut[7] == 0 and lut[26] == 13 and lut[0] == 255 and lut[9] == 255


def test_depth_only_and_labels_only_samples_batch_together() -> None:
    crop = {'crop': (32, 32)}
    mixed = ConcatDataset([KittiDataset(kitti_tree(), 'train', labels='none', **crop),
                           CityscapesSegmentation(cityscapes_tree(), 'train', **crop)])
    batch = next(iter(DataLoader(mixed, batch_size=len(mixed))))
    assert batch['has_depth'].tolist() == [True, False, False]  # 1 KITTI, 2 Cityscapes frames
    assert batch['has_labels'].tolist() == [False, True, True]


def test_a_mixtures_card_facts_come_from_its_first_depth_source() -> None:
    # labels first, then depth: the frame size and the far classes are the depth source's
    # (a mixture's card once lost its far classes: sky was not marked +inf on the vehicle)
    from training.datamodule import MultiTaskDataModule  # noqa: PLC0415

    depth_args = {'resize': (24, 80), 'far_classes': ['sky']}
    sources = [{'dataset': 'training.data.cityscapes.CityscapesSegmentation',
                'root': str(cityscapes_tree()), 'args': {'resize': (24, 80)}},
               {'dataset': 'kitti', 'root': str(kitti_tree()), 'args': depth_args}]
    data = MultiTaskDataModule(
        'training.data.mixed.MixedSources', '', num_workers=0, train_split='train',
        val_split='val', train_args={'sources': sources},
        val_args={'sources': [{'dataset': 'kitti', 'root': str(kitti_tree()),
                               'args': {'resize': (24, 80)}}]})
    facts = data.card_facts()
    assert facts['far_classes'] == ['sky']
    # the card names each source (a mixture's own root is empty: it once said 'at .')
    labels = f'training.data.cityscapes.CityscapesSegmentation at {cityscapes_tree()} ('
    assert labels in facts['training_data']
    assert f") + kitti at {kitti_tree()} (" in facts['training_data']
    assert 'MixedSources' not in facts['training_data']
    assert facts['frame_size'] == list(KittiDataset(kitti_tree(), 'train').read(0).image.shape[:2])
