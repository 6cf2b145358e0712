"""Write generated road frames as a Cityscapes tree (images, gtFine label ids and train ids, cameras).

The road scenes keep KITTI's camera height (1.65 m; Cityscapes' is about
1.2 m) and take Cityscapes' intrinsics scaled to the output size: a
segmentation source, not a depth one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtdepth_ros.conversions.geometry import resize_intrinsics
from training.data.cityscapes_files import (
    CITYSCAPES_HEIGHT,
    CITYSCAPES_INTRINSICS,
    CITYSCAPES_WIDTH,
    camera_path,
    image_path,
    label_path,
    stem,
    write_camera,
)
from training.data.classes import cityscapes_label_to_train_lut
from training.data.io import write_label_png, write_rgb
from training.data.synth.rig import CAMERA_HEIGHT_M
from training.data.synth.runner import run_jobs
from training.data.synth.samples import road_sample

CITY = 'synthcity'
FRAMES_PER_SEQUENCE = 30  # Cityscapes' snippets are 30 frames; the 20th is annotated
VAL_EVERY = 5  # every 5th sequence is validation


@dataclass(frozen=True)
class CityJob:
    seed: int
    sequence: int
    frame: int
    width: int
    height: int
    split: str
    out: str


def intrinsics_for(width: int, height: int) -> np.ndarray:
    return resize_intrinsics(CITYSCAPES_INTRINSICS, (CITYSCAPES_HEIGHT, CITYSCAPES_WIDTH),
                             (height, width))


def _render_and_write(job: CityJob) -> None:
    intrinsics = intrinsics_for(job.width, job.height)
    # Sequences use their own drive streams, apart from the KITTI writer's drives.
    sample = road_sample(job.seed, 10_000 + job.sequence, FRAMES_PER_SEQUENCE, job.frame,
                         10_000 * FRAMES_PER_SEQUENCE + job.sequence * FRAMES_PER_SEQUENCE + job.frame,
                         job.width, job.height, intrinsics)
    out, name = Path(job.out), stem(CITY, job.sequence, job.frame)
    write_rgb(image_path(out, job.split, CITY, name), sample.image)
    write_label_png(label_path(out, job.split, CITY, name, 'labelIds'), sample.label_ids)
    write_label_png(label_path(out, job.split, CITY, name, 'labelTrainIds'),
                    cityscapes_label_to_train_lut()[sample.label_ids])
    write_camera(camera_path(out, job.split, CITY, name), intrinsics, CAMERA_HEIGHT_M)


def write_cityscapes(out: Path, frames: int, seed: int, width: int, height: int,
                     workers: int) -> dict[str, object]:
    """``frames`` annotated frames, one per sequence (its frame 19, as Cityscapes annotates)."""
    jobs = [CityJob(seed, s, 19, width, height, 'val' if s % VAL_EVERY == VAL_EVERY - 1 else 'train',
                    str(out)) for s in range(frames)]
    for _ in run_jobs(_render_and_write, jobs, workers):
        pass
    info: dict[str, object] = {
        'generator': 'mtdepth_ros training.data.synth (road scenes)', 'format': 'cityscapes',
        'seed': seed, 'frames': frames, 'width': width, 'height': height,
        'split_sizes': {s: sum(j.split == s for j in jobs) for s in ('train', 'val')}}
    (out / 'synth_info.json').write_text(json.dumps(info, indent=2) + '\n')
    return info
