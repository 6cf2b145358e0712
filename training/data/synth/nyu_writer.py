"""Write generated rooms as NYU Depth v2's labelled set, its split and its class maps.

Files under ``out`` (the real names, so the loader cannot tell them apart):
``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 / HDF5, (N, C, W, H) order),
``splits.mat`` (MATLAB v5, 1-based ``trainNdxs``/``testNdxs``),
``classMapping40.mat`` and ``class13Mapping.mat`` (the published files'
variables, for the generator's own 894-class ids), ``synth_info.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.classes import (NUM_NYU_RAW_CLASSES, NYU13_CLASSES, NYU40_CLASSES, NYU40_SUPERCLASS,
                                   NYU40_TO_13)
from training.data.nyu_files import (LABELED_FILE, MAP13_FILE, MAP40_FILE, SPLITS_FILE, LabeledWriter,
                                     write_map13, write_map40, write_splits)
from training.data.synth.room import NYU_40_OF, NYU_IDS, RoomFrame, make_room, nyu_intrinsics, render_room
from training.data.synth.runner import run_jobs

SCENE_STREAM, FRAME_STREAM = 3, 4
# Odd frames below 18 of every 20 are test frames: 9 in 20, about NYU's 654 of 1449, and even
# a handful of frames has both splits.
TEST_PERIOD, TEST_BELOW = 20, 18


@dataclass(frozen=True)
class RoomJob:
    seed: int
    index: int
    width: int
    height: int


def _render(job: RoomJob) -> RoomFrame:
    room = make_room(np.random.default_rng([job.seed, SCENE_STREAM, job.index]))
    rng = np.random.default_rng([job.seed, FRAME_STREAM, job.index])
    return render_room(room, job.width, job.height, nyu_intrinsics(job.width, job.height), rng)


def class_maps() -> tuple[np.ndarray, list[str]]:
    """(894,) 894 -> 40 map (1-based classes) and the 894 names, for the generator's ids."""
    map40 = np.full(NUM_NYU_RAW_CLASSES, NYU40_CLASSES.index('otherprop') + 1, dtype=np.uint8)
    names = [f'unused{k}' for k in range(1, NUM_NYU_RAW_CLASSES + 1)]
    for name, raw_id in NYU_IDS.items():
        map40[raw_id - 1] = NYU40_CLASSES.index(NYU_40_OF.get(name, name)) + 1
        names[raw_id - 1] = name
    return map40, names


def test_frames(frames: int) -> np.ndarray:
    return np.array([i for i in range(frames) if i % 2 == 1 and i % TEST_PERIOD < TEST_BELOW],
                    dtype=np.int64)


def write_nyu(out: Path, frames: int, seed: int, width: int, height: int, workers: int) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    map40, names = class_maps()
    writer = LabeledWriter(out / LABELED_FILE, frames, names, width, height)
    jobs = [RoomJob(seed, i, width, height) for i in range(frames)]
    try:
        for index, frame in enumerate(run_jobs(_render, jobs, workers)):
            writer.write(index, frame.image, frame.depth, frame.raw_depth, frame.labels, frame.instances,
                         f'{frame.scene_type}_{index + 1:04d}', frame.scene_type)
    finally:
        writer.close()
    test = test_frames(frames)
    train = np.setdiff1d(np.arange(frames), test)
    write_splits(out / SPLITS_FILE, train, test)
    write_map40(out / MAP40_FILE, map40, names, NYU40_CLASSES, NYU40_SUPERCLASS)
    write_map13(out / MAP13_FILE, NYU40_TO_13, NYU13_CLASSES)
    info: dict[str, object] = {
        'generator': 'mtdepth_ros training.data.synth (indoor rooms)', 'format': 'nyu', 'seed': seed,
        'frames': frames, 'width': width, 'height': height,
        'intrinsics': np.round(nyu_intrinsics(width, height), 6).tolist(),
        'split_sizes': {'train': len(train), 'test': len(test)}, 'raw_class_ids': NYU_IDS}
    (out / 'synth_info.json').write_text(json.dumps(info, indent=2) + '\n')
    return info
