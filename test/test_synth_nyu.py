"""The generated NYU files: MATLAB v7.3 orientation, 1-based splits, the class map files."""

from __future__ import annotations

import h5py
import numpy as np
import scipy.io

from training.data.classes import NYU40_CLASSES, NYU40_TO_13
from training.data.nyu_files import read_map13, read_map40
from training.data.synth.room import NYU_IDS

from test_data_trees import NYU_SIZE, nyu_tree


def test_labeled_mat_is_hdf5_behind_a_matlab_73_header() -> None:
    path = nyu_tree() / 'nyu_depth_v2_labeled.mat'
    header = path.read_bytes()[:128]
    assert header.startswith(b'MATLAB 7.3 MAT-file') and header[-2:] == b'IM'
    assert h5py.is_hdf5(path)


def test_arrays_are_stored_n_c_w_h_as_h5py_reads_matlab() -> None:
    width, height = NYU_SIZE
    with h5py.File(nyu_tree() / 'nyu_depth_v2_labeled.mat', 'r') as file:
        assert file['images'].shape == (4, 3, width, height) and file['images'].dtype == np.uint8
        assert file['depths'].shape == (4, width, height) and file['depths'].dtype == np.float32
        assert file['rawDepths'].shape == (4, width, height)
        assert file['labels'].shape == (4, width, height) and file['labels'].dtype == np.uint16
        assert file['images'].attrs['MATLAB_class'] == b'uint8'
        image = np.transpose(file['images'][0], (2, 1, 0))  # (H, W, 3)
        assert (image[0] == 255).all()  # the white border along the top row
        names = [''.join(map(chr, file[ref][:, 0])) for ref in file['names'][0]]
        assert len(names) == 894 and names[NYU_IDS['wall'] - 1] == 'wall'


def test_splits_are_one_based_uint16_columns() -> None:
    mat = scipy.io.loadmat(nyu_tree() / 'splits.mat')
    train, test = mat['trainNdxs'], mat['testNdxs']
    assert train.dtype == np.uint16 and train.shape[1] == 1
    assert sorted(np.concatenate([train.ravel(), test.ravel()]).tolist()) == [1, 2, 3, 4]


def test_class_maps_send_the_generator_ids_to_their_classes() -> None:
    map40 = read_map40(nyu_tree() / 'classMapping40.mat')
    assert NYU40_CLASSES[map40[NYU_IDS['wall']] - 1] == 'wall'
    assert NYU40_CLASSES[map40[NYU_IDS['books']] - 1] == 'books'
    assert NYU40_CLASSES[map40[NYU_IDS['cup']] - 1] == 'otherprop'
    assert map40[0] == 0
    map13 = read_map13(nyu_tree() / 'class13Mapping.mat')
    assert map13[1:].tolist() == list(NYU40_TO_13)
    struct = scipy.io.loadmat(nyu_tree() / 'class13Mapping.mat')['classMapping13'][0, 0]
    assert [str(n[0]) for n in struct['classNames'][0]][:3] == ['bed', 'books', 'ceiling']
