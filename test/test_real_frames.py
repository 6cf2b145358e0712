"""The real frames' manifest: the shipped list is whole, and a folder is read against it."""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import pytest

from training.real_frames import (
    COLUMNS,
    MANIFEST,
    ManifestError,
    folder_files,
    git_blob,
    identify,
    read_manifest,
)

HEX40 = re.compile(r'[0-9a-f]{40}')


def write_folder(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def write_manifest(path: Path, sets: dict[str, dict[str, bytes]]) -> Path:
    with open(path, 'w', newline='') as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for name, files in sets.items():
            for file, data in files.items():
                writer.writerow([name, file, git_blob(data), 'owner/repo', '0' * 40, file])
    return path


FIRST = {'object/image_2/a.png': b'image a', 'object/velodyne/a.bin': b'scan a',
         'object/calib/a.txt': b'P2: 1'}
SECOND = {'object/image_2/b.png': b'image b', 'object/velodyne/b.bin': b'scan b',
          'object/calib/b.txt': b'P2: 1'}


def test_git_blob_is_the_id_git_gives_the_bytes(tmp_path):
    assert git_blob(b'') == 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391'  # git's empty blob
    (tmp_path / 'f').write_bytes(b'\x00\x01 some bytes\n')
    try:
        by_git = subprocess.run(['git', 'hash-object', str(tmp_path / 'f')], check=True,
                                capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('no git here to compare with')
    assert git_blob((tmp_path / 'f').read_bytes()) == by_git


def test_a_folder_is_the_set_it_holds_byte_for_byte(tmp_path):
    entries = read_manifest(write_manifest(tmp_path / 'm.csv', {'first': FIRST, 'second': SECOND}))
    write_folder(tmp_path / 'real', FIRST)
    identity = identify(tmp_path / 'real', entries)
    assert identity.set == 'first' and identity.files == 3
    assert 'the first set of docs/training.md, byte for byte (3 files)' in identity.line()
    write_folder(tmp_path / 'real2', SECOND)
    assert identify(tmp_path / 'real2', entries).set == 'second'


def test_other_bytes_a_missing_file_and_an_extra_one_are_named(tmp_path):
    entries = read_manifest(write_manifest(tmp_path / 'm.csv', {'first': FIRST, 'second': SECOND}))
    folder = tmp_path / 'real'
    write_folder(folder, {**FIRST, 'object/image_2/a.png': b'image a, re-encoded',
                          'object/image_2/c.png': b'image c'})
    (folder / 'object' / 'calib' / 'a.txt').unlink()
    (folder / 'notes.txt').write_text('outside the layouts: not read')
    identity = identify(folder, entries)
    assert identity.set is None
    assert identity.differing == ['object/image_2/a.png']
    assert identity.missing == ['object/calib/a.txt']
    assert identity.unlisted == ['object/image_2/c.png']
    line = identity.line()
    assert 'not a set of docs/training.md' in line and '1 differing (object/image_2/a.png)' in line
    assert sorted(folder_files(folder)) == ['object/image_2/a.png', 'object/image_2/c.png',
                                            'object/velodyne/a.bin']


def test_an_empty_folder_holds_no_frames(tmp_path):
    entries = read_manifest(write_manifest(tmp_path / 'm.csv', {'first': FIRST}))
    assert identify(tmp_path, entries).line().endswith('no frames')


def test_a_manifest_with_other_columns_or_an_empty_field_is_refused(tmp_path):
    (tmp_path / 'bad.csv').write_text('set,file,sha1\nfirst,a,b\n')
    with pytest.raises(ManifestError, match='columns'):
        read_manifest(tmp_path / 'bad.csv')
    (tmp_path / 'empty.csv').write_text(','.join(COLUMNS) + '\nfirst,a.png,,r,c,p\n')
    with pytest.raises(ManifestError, match='empty.csv:2: an empty field'):
        read_manifest(tmp_path / 'empty.csv')


def test_the_shipped_manifest_lists_every_frame_whole():
    entries = read_manifest(MANIFEST)
    by_set: dict[str, set[str]] = {}
    for entry in entries:
        assert HEX40.fullmatch(entry.git_blob) and HEX40.fullmatch(entry.commit), entry
        assert '/' in entry.repository and entry.path
        by_set.setdefault(entry.set, set()).add(entry.file)
    assert sorted(by_set) == ['first', 'fourth', 'second', 'third']
    frames = {name: {f for f in files if '/image_2/' in f or '/image/' in f}
              for name, files in by_set.items()}
    assert {name: len(images) for name, images in frames.items()} == \
        {'first': 12, 'second': 8, 'third': 8, 'fourth': 3}  # docs/training.md's counts
    for name, files in by_set.items():
        for image in frames[name]:
            if image.startswith('object/image_2/'):
                stem = Path(image).stem
                assert {f'object/velodyne/{stem}.bin', f'object/calib/{stem}.txt'} <= files
            else:
                assert image.replace('_image_', '_groundtruth_depth_', 1).replace(
                    '/image/', '/groundtruth_depth/') in files
                assert image.replace('/image/', '/intrinsics/').replace('.png', '.txt') in files
