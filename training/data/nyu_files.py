"""NYU Depth v2's files: the labelled .mat (MATLAB v7.3 = HDF5), splits.mat and the class maps.

The labelled set ``nyu_depth_v2_labeled.mat`` is an HDF5 file behind a
512-byte MATLAB header. MATLAB stores arrays column-major, so an image stack
that MATLAB sees as (H, W, 3, N) = (480, 640, 3, 1449) reads through h5py as
(N, 3, W, H) = (1449, 3, 640, 480); depths/rawDepths/labels (H, W, N) read as
(N, W, H). Depths are metres (float32), labels uint16 0..894 (0 = void).
``sceneTypes`` is a cell array (one entry per frame) of references to char
arrays, stored as uint16 code units: each frame's scene type, e.g. 'kitchen';
``scenes`` likewise names each frame's scene, e.g. 'kitchen_0028'.

``splits.mat`` (MATLAB v5) holds ``trainNdxs`` (795) and ``testNdxs`` (654),
1-based indices into the labelled set. The class maps are published data
files placed beside the dataset (docs/data.md says where they come from):
``classMapping40.mat`` (Gupta et al. 2013: ``mapClass`` (1, 894) uint8 in
1..40, ``className`` (1, 40) cell, ``allClassName`` (1, 894) cell) and
``class13Mapping.mat`` (``classMapping13`` struct: ``labels13`` (1, 40) uint8
in 1..13, ``classNames`` (1, 13) cell).
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from training.data.classes import NUM_NYU_RAW_CLASSES
from training.data.errors import DataError

LABELED_FILE = 'nyu_depth_v2_labeled.mat'
SPLITS_FILE = 'splits.mat'
MAP40_FILE = 'classMapping40.mat'
MAP13_FILE = 'class13Mapping.mat'
NYU_IMAGE_SHAPE = (480, 640)  # (H, W)
MATLAB_USERBLOCK = 512  # bytes of MATLAB header in front of the HDF5 data
# The validation split held out of the official 795 training frames (about 80 frames): the
# official 654 test frames are never used to select a model.
VAL_FRACTION = 0.1
VAL_SEED = 0


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(path, f'{what} not found (docs/data.md says where it comes from)')
    return path


def check_labeled(path: Path, file: h5py.File) -> int:
    """Number of frames; raises if a dataset is missing or not in MATLAB's (N, C, W, H) order."""
    for name in ('images', 'depths', 'rawDepths', 'labels'):
        if name not in file:
            raise DataError(path, f'has no dataset {name!r} (is it nyu_depth_v2_labeled.mat?)')
    images = file['images']
    # Landscape frames: a (N, 3, H, W) stack was written by something other than MATLAB.
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] <= images.shape[3]:
        raise DataError(path, f'images is {images.shape}; expected (N, 3, W, H) with W > H, e.g. '
                              f'(1449, 3, 640, 480): the order h5py reads MATLAB\'s (H, W, 3, N) in')
    count, _, width, height = images.shape
    for name in ('depths', 'rawDepths', 'labels'):
        if file[name].shape != (count, width, height):
            raise DataError(path, f'{name} is {file[name].shape}; expected ({count}, {width}, {height})')
    if file['images'].dtype != np.uint8:
        raise DataError(path, f'images are {file["images"].dtype}; expected uint8')
    return int(count)


def _matlab_string(file: h5py.File, ref: h5py.Reference) -> str:
    """A MATLAB char array behind an HDF5 reference ('' when empty or not characters)."""
    data = file[ref]
    if int(np.asarray(data.attrs.get('MATLAB_empty', 0)).ravel()[0]) or data.size == 0:
        return ''  # MATLAB -v7.3 writes an empty array as its dimensions, flagged MATLAB_empty
    codes = np.asarray(data[()]).ravel()
    if not np.issubdtype(codes.dtype, np.integer):
        return ''
    return ''.join(chr(int(code)) for code in codes)


def read_strings(path: Path, file: h5py.File, key: str, frames: int) -> list[str] | None:
    """Each frame's string of the cell array ``key`` (``sceneTypes``, ``scenes``); None without it."""
    if key not in file:
        return None
    cell = file[key]
    if cell.dtype != h5py.ref_dtype:
        raise DataError(path, f'{key} is {cell.dtype}; expected a cell array (HDF5 references)')
    refs = np.asarray(cell[()]).ravel()
    if len(refs) != frames:
        raise DataError(path, f'{key} has {len(refs)} entries; the file has {frames} frames')
    return [_matlab_string(file, ref) for ref in refs]


def read_scene_types(path: Path, file: h5py.File, frames: int) -> list[str] | None:
    """Each frame's ``sceneTypes`` string; None when the file has no ``sceneTypes``."""
    return read_strings(path, file, 'sceneTypes', frames)


def hold_out_validation(train: np.ndarray, scenes: list[str] | None,
                        fraction: float = VAL_FRACTION, seed: int = VAL_SEED
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): a fixed share of the official training frames held out for validation.

    Whole scenes are held out (``scenes``, e.g. 'bedroom_0001', the labelled
    file's per-frame scene names), as the official split separates train and
    test: frames of one scene are near-duplicates, and a validation frame whose
    neighbour was trained on would flatter the model. The scenes are drawn with
    a fixed seed until they hold ``fraction`` of the frames; without scene
    names, single frames are drawn. Both parts keep the official order.
    """
    groups = np.asarray(scenes, dtype=object)[train] if scenes is not None else train
    names = sorted(set(groups.tolist()), key=str)
    order = np.random.default_rng(seed).permutation(len(names))
    # At least one frame, so that a small (generated) set has a validation split too.
    wanted, held = max(round(fraction * len(train)), min(len(train) - 1, 1)), set()
    sizes = {name: int(np.sum(groups == name)) for name in names}
    count = 0
    for index in order:
        if count >= wanted:
            break
        held.add(names[index])
        count += sizes[names[index]]
    is_val = np.array([group in held for group in groups.tolist()], dtype=bool)
    return train[~is_val], train[is_val]


def read_splits(path: Path, frames: int) -> dict[str, np.ndarray]:
    """{'train', 'test'}: 0-based indices from splits.mat's 1-based trainNdxs / testNdxs."""
    _require(path, 'NYU split file splits.mat')
    try:
        mat = scipy.io.loadmat(str(path))
    except (ValueError, OSError, NotImplementedError) as error:
        raise DataError(path, f'cannot be read as a MATLAB v5 .mat file ({error})') from error
    splits = {}
    for split, key in (('train', 'trainNdxs'), ('test', 'testNdxs')):
        if key not in mat:
            raise DataError(path, f'has no {key}')
        one_based = np.asarray(mat[key]).astype(np.int64).ravel()
        bad = one_based[(one_based < 1) | (one_based > frames)]
        if len(bad):
            raise DataError(path, f'{len(bad)} of {len(one_based)} {key} are outside 1..{frames} '
                                  f'(the labelled file has {frames} frames): {bad[:5].tolist()}')
        splits[split] = one_based - 1
    return splits


def read_map40(path: Path) -> np.ndarray:
    """(895,) uint8 lookup: 894-class id -> 40-class id (1..40), 0 -> 0."""
    _require(path, '894 -> 40 class map classMapping40.mat')
    mat = scipy.io.loadmat(str(path))
    if 'mapClass' not in mat:
        raise DataError(path, 'has no mapClass')
    mapping = np.asarray(mat['mapClass']).ravel()
    if mapping.size != NUM_NYU_RAW_CLASSES or mapping.max() > 40:
        raise DataError(path, f'mapClass has {mapping.size} entries up to {mapping.max()}; '
                              f'expected {NUM_NYU_RAW_CLASSES} in 0..40')
    return np.concatenate([[0], mapping]).astype(np.uint8)


def read_map13(path: Path) -> np.ndarray:
    """(41,) uint8 lookup: 40-class id -> 13-class id (1..13), 0 -> 0."""
    _require(path, '40 -> 13 class map class13Mapping.mat')
    mat = scipy.io.loadmat(str(path))
    try:
        mapping = np.asarray(mat['classMapping13'][0, 0]['labels13']).ravel()
    except (KeyError, IndexError, ValueError) as error:
        raise DataError(path, 'has no classMapping13.labels13') from error
    if mapping.size != 40 or mapping.max() > 13:
        raise DataError(path, f'labels13 has {mapping.size} entries up to {mapping.max()}; expected 40 in 1..13')
    return np.concatenate([[0], mapping]).astype(np.uint8)


# -- writing (the generator) ---------------------------------------------------------------------


V5_HEADER_TEXT = 116  # bytes of descriptive text at the start of a MATLAB v5 file


def _savemat(path: Path, variables: dict[str, object]) -> None:
    """scipy's savemat with a fixed header text, so equal content gives equal bytes."""
    scipy.io.savemat(str(path), variables, format='5')
    text = b'MATLAB 5.0 MAT-file, written by mtdepth_ros training.data'.ljust(V5_HEADER_TEXT, b' ')
    with open(path, 'r+b') as stream:
        stream.write(text)


def _cell_of_strings(strings: list[str]) -> np.ndarray:
    cell = np.empty((1, len(strings)), dtype=object)
    for i, s in enumerate(strings):
        cell[0, i] = s
    return cell


def write_splits(path: Path, train: np.ndarray, test: np.ndarray) -> None:
    """splits.mat as MATLAB v5 with 1-based (n, 1) uint16 columns, like the real file."""
    _savemat(path, {'trainNdxs': (np.asarray(train) + 1).astype(np.uint16)[:, None],
                    'testNdxs': (np.asarray(test) + 1).astype(np.uint16)[:, None]})


def write_map40(path: Path, map40: np.ndarray, all_names: list[str], names40: tuple[str, ...],
                superclass: tuple[int, ...]) -> None:
    """classMapping40.mat in the published file's variables and types."""
    superclass_mat = np.zeros((4, 40), dtype=np.uint8)
    superclass_mat[np.asarray(superclass) - 1, np.arange(40)] = 1
    _savemat(path, {
        'className': _cell_of_strings(list(names40)), 'mapClass': np.asarray(map40, np.uint8)[None, :],
        'allClassName': _cell_of_strings(all_names),
        'mapToNYUSuperClass': np.asarray(superclass, np.uint8)[None, :],
        'mapToNYUSuperClassMat': superclass_mat})


def write_map13(path: Path, map13: tuple[int, ...], names13: tuple[str, ...]) -> None:
    """class13Mapping.mat: a 1x1 struct classMapping13 with labels13 and classNames."""
    struct = np.empty((1, 1), dtype=[('labels13', object), ('classNames', object)])
    struct[0, 0]['labels13'] = np.asarray(map13, np.uint8)[None, :]
    struct[0, 0]['classNames'] = _cell_of_strings(list(names13))
    _savemat(path, {'classMapping13': struct})


class LabeledWriter:
    """Writes nyu_depth_v2_labeled.mat frame by frame, as MATLAB -v7.3 lays it out."""

    def __init__(self, path: Path, frames: int, names: list[str], width: int = 640, height: int = 480) -> None:
        self.path = path
        self.file = h5py.File(path, 'w', userblock_size=MATLAB_USERBLOCK, libver='earliest')
        self.frames = frames
        chunk = (1, 3, width, height)
        self._dataset('images', (frames, 3, width, height), np.uint8, 'uint8', chunk)
        for name in ('depths', 'rawDepths'):
            self._dataset(name, (frames, width, height), np.float32, 'single', chunk[:1] + chunk[2:])
        self._dataset('labels', (frames, width, height), np.uint16, 'uint16', chunk[:1] + chunk[2:])
        self._dataset('instances', (frames, width, height), np.uint8, 'uint8', chunk[:1] + chunk[2:])
        self._dataset('accelData', (4, frames), np.float32, 'single', None)
        self.scenes: list[str] = [''] * frames
        self.scene_types: list[str] = [''] * frames
        self.names = names

    def _dataset(self, name: str, shape: tuple[int, ...], dtype: type, matlab_class: str,
                 chunks: tuple[int, ...] | None) -> None:
        data = self.file.create_dataset(name, shape, dtype=dtype, chunks=chunks)
        data.attrs['MATLAB_class'] = np.bytes_(matlab_class)

    def write(self, index: int, image: np.ndarray, depth: np.ndarray, raw_depth: np.ndarray,
              labels: np.ndarray, instances: np.ndarray, scene: str, scene_type: str) -> None:
        """One frame given as (H, W, ...) arrays; stored transposed to MATLAB's order."""
        self.file['images'][index] = np.transpose(image, (2, 1, 0))
        self.file['depths'][index] = depth.T
        self.file['rawDepths'][index] = raw_depth.T
        self.file['labels'][index] = labels.T
        self.file['instances'][index] = instances.T
        self.scenes[index], self.scene_types[index] = scene, scene_type

    def _cell(self, name: str, strings: list[str]) -> None:
        refs = self.file.require_group('#refs#')
        ref_data = self.file.create_dataset(name, (1, len(strings)), dtype=h5py.ref_dtype)
        for i, text in enumerate(strings):
            chars = refs.create_dataset(f'{name}_{i}', data=np.frombuffer(
                text.encode('utf-16-le'), dtype=np.uint16)[:, None] if text else np.zeros((0, 1), np.uint16))
            chars.attrs['MATLAB_class'] = np.bytes_('char')
            chars.attrs['MATLAB_int_decode'] = np.int32(2)
            ref_data[0, i] = chars.ref
        ref_data.attrs['MATLAB_class'] = np.bytes_('cell')

    def close(self) -> None:
        self._cell('names', self.names)
        self._cell('scenes', self.scenes)
        self._cell('sceneTypes', self.scene_types)
        self.file.close()
        stamp = time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime(0))
        text = f'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 .'
        header = text.encode('ascii').ljust(116, b' ') + b'\x00' * 8 + b'\x00\x02' + b'IM'
        with open(self.path, 'r+b') as stream:
            stream.write(header)
