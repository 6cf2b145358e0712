"""Write generated road drives as a KITTI tree (raw + depth prediction layout).

Layout under ``out`` (what the loaders read; extras are clearly synthetic)::

    raw/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    raw/<date>/<drive>/image_02/data/*.png, image_02/timestamps.txt
    raw/<date>/<drive>/velodyne_points/data/*.bin, velodyne_points/timestamps.txt
    depth/train|val/<drive>/proj_depth/groundtruth/image_02/*.png
    depth/train|val/<drive>/proj_depth/velodyne_raw/image_02/*.png
    depth/depth_selection/val_selection_cropped/{image,groundtruth_depth,velodyne_raw,intrinsics}/
    splits/train_files.txt, val_files.txt, test_files.txt
    synth_semantic/<date>/<drive>/image_02/data/*.png     Cityscapes label ids (8-bit)
    synth_dense_depth/<date>/<drive>/image_02/data/*.png  dense depth, KITTI encoding
    synth_info.json

Like KITTI, the first and last ANNOTATION_MARGIN frames of a drive have no
annotated ground truth: the test split lists them anyway, so a loader must
fall back to projecting the Velodyne scan (as for KITTI's Eigen test frames).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mtdepth_ros.conversions.geometry import crop_intrinsics, kb_crop_region
from training.data.io import write_depth_png, write_label_png, write_rgb
from training.data.kitti_files import (
    FrameId,
    drive_name,
    selection_paths,
    write_cam_to_cam,
    write_split_file,
    write_velo_to_cam,
)
from training.data.lidar import write_velodyne
from training.data.synth import SCENES_VERSION, rig
from training.data.synth.rig import CAMERA_HEIGHT_M, FRAME_RATE_HZ, kitti_intrinsics
from training.data.synth.runner import run_jobs
from training.data.synth.samples import road_sample

DATE = '2000_01_01'  # one synthetic recording day; the real ones are 2011_09_26 .. 2011_10_03
START_TIME = datetime.datetime(2000, 1, 1, 12, 0, 0)
ANNOTATION_MARGIN = 1  # frames at each end of a drive without annotated ground truth
SELECTION_EVERY = 5  # every 5th annotated validation frame goes to val_selection_cropped
EXTRA_LABELS, EXTRA_DENSE = 'synth_semantic', 'synth_dense_depth'


@dataclass(frozen=True)
class KittiJob:
    seed: int
    drive: int  # 0-based; the folder is numbered drive + 1
    drive_frames: int
    frame: int
    global_index: int
    width: int
    height: int
    split: str  # train, val or test
    out: str


def split_of_drives(drives: int) -> list[str]:
    """train / val / test per drive: the last drive validates, the one before it tests."""
    splits = ['train'] * drives
    if drives >= 2:
        splits[-1] = 'val'
    if drives >= 3:
        splits[-2] = 'test'
    return splits


def annotated(job: KittiJob) -> bool:
    return ANNOTATION_MARGIN <= job.frame < job.drive_frames - ANNOTATION_MARGIN


def selected(job: KittiJob) -> bool:
    return job.split == 'val' and annotated(job) and (job.frame - ANNOTATION_MARGIN) % SELECTION_EVERY == 0


def _last_file(job: KittiJob) -> Path:
    """The file :func:`_render_and_write` writes last for ``job`` (it writes one at a time)."""
    frame = FrameId(DATE, drive_name(DATE, job.drive + 1), job.frame)
    out = Path(job.out)
    if selected(job):
        return selection_paths(out / 'depth', frame.drive, frame.frame)['intrinsics']
    if annotated(job):
        return frame.depth(out / 'depth', 'train' if job.split == 'train' else 'val', 'velodyne_raw')
    return out / EXTRA_DENSE / DATE / frame.drive / frame.camera / 'data' / f'{frame.stem}.png'


def written(job: KittiJob) -> bool:
    """Whether a previous run finished ``job``: its last file is there and whole (a kill
    interrupts at most that file; the ones before it were complete)."""
    last = _last_file(job)
    if not last.is_file():
        return False
    if last.suffix == '.txt':
        return len(last.read_text().split()) == 9
    return cv2.imread(str(last), cv2.IMREAD_UNCHANGED) is not None


def _render_and_write(job: KittiJob) -> None:
    out = Path(job.out)
    sample = road_sample(job.seed, job.drive, job.drive_frames, job.frame, job.global_index,
                         job.width, job.height)
    frame = FrameId(DATE, drive_name(DATE, job.drive + 1), job.frame)
    raw = out / 'raw'
    write_rgb(frame.image(raw), sample.image)
    frame.velodyne(raw).parent.mkdir(parents=True, exist_ok=True)
    write_velodyne(frame.velodyne(raw), sample.velodyne)
    extra = Path(DATE) / frame.drive / frame.camera / 'data' / f'{frame.stem}.png'
    write_label_png(out / EXTRA_LABELS / extra, sample.label_ids)
    write_depth_png(out / EXTRA_DENSE / extra, sample.dense_depth)
    depth_split = 'train' if job.split == 'train' else 'val'
    if annotated(job):
        write_depth_png(frame.depth(out / 'depth', depth_split, 'groundtruth'), sample.groundtruth)
        write_depth_png(frame.depth(out / 'depth', depth_split, 'velodyne_raw'), sample.velodyne_raw)
    if selected(job):
        region = kb_crop_region((job.height, job.width))
        paths = selection_paths(out / 'depth', frame.drive, frame.frame)
        write_rgb(paths['image'], region.of(sample.image))
        write_depth_png(paths['groundtruth_depth'], region.of(sample.groundtruth))
        write_depth_png(paths['velodyne_raw'], region.of(sample.velodyne_raw))
        intrinsics = crop_intrinsics(sample.intrinsics, region.top, region.left)
        paths['intrinsics'].parent.mkdir(parents=True, exist_ok=True)
        paths['intrinsics'].write_text(' '.join(f'{v:.6e}' for v in intrinsics.ravel()) + '\n')


class SynthResumeError(ValueError):
    """A tree that ``--resume`` must not extend: it was rendered with other settings."""


def _check_resumable(out: Path, request: dict[str, object], rendering: bool
                     ) -> dict[str, object] | None:
    """What ``out/synth_info.json`` records (None: no such file, as in a tree killed before
    the file was written first); SynthResumeError where its settings are not ``request``'s.
    The scenes' version counts only when frames are to be rendered (``rendering``): a
    finished tree of another version is left as it is."""
    path = out / 'synth_info.json'
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text())
    ignored = {'generator'} if rendering else {'generator', 'generator_version'}
    differs = [f'{key} {recorded.get(key)!r} (asked: {value!r})' for key, value in request.items()
               if key not in ignored and recorded.get(key) != value]
    if differs:
        raise SynthResumeError(f'{out} was rendered with other settings: {", ".join(differs)}; '
                               'resuming would mix two trees: render into a new folder')
    return recorded


def _timestamps(frames: int) -> str:
    stamps = [START_TIME + datetime.timedelta(seconds=i / FRAME_RATE_HZ) for i in range(frames)]
    return ''.join(s.strftime('%Y-%m-%d %H:%M:%S.%f') + '000\n' for s in stamps)


def write_kitti(out: Path, frames: int, seed: int, width: int, height: int, frames_per_drive: int,
                workers: int, resume: bool = False) -> dict[str, object]:
    """Render ``frames`` frames in drives of ``frames_per_drive`` and write the tree;
    ``resume`` renders only the frames a previous (killed) run left unwritten."""
    drives = -(-frames // frames_per_drive)
    splits = split_of_drives(drives)
    jobs = []
    for index in range(frames):
        drive, frame = divmod(index, frames_per_drive)
        drive_frames = min(frames_per_drive, frames - drive * frames_per_drive)
        jobs.append(KittiJob(seed, drive, drive_frames, frame, index, width, height, splits[drive],
                             str(out)))
    intrinsics = kitti_intrinsics(width, height)
    calib = rig.calibration(intrinsics, width, height)
    date_dir = out / 'raw' / DATE
    write_cam_to_cam(date_dir / 'calib_cam_to_cam.txt', intrinsics, (width, height),
                     rig.STEREO_BASELINE_M, rig.COLOUR_OFFSET_M)
    write_velo_to_cam(date_dir / 'calib_velo_to_cam.txt', calib.velo_to_cam[:, :3],
                      calib.velo_to_cam[:, 3])
    todo = [job for job in jobs if not resume or not written(job)]
    request: dict[str, object] = {
        'generator': 'mtdepth_ros training.data.synth (road scenes)', 'format': 'kitti',
        'generator_version': SCENES_VERSION, 'seed': seed, 'frames': frames, 'width': width,
        'height': height, 'frames_per_drive': frames_per_drive}
    recorded = _check_resumable(out, request, bool(todo)) if resume else None
    if todo:  # written first, so that a killed run's tree says what it was rendering
        (out / 'synth_info.json').write_text(json.dumps({**request, 'complete': False},
                                                        indent=2) + '\n')
    elif recorded is not None:  # nothing rendered now: the tree keeps the version it has
        request['generator_version'] = recorded.get('generator_version')
    for _ in run_jobs(_render_and_write, todo, workers):
        pass
    lists: dict[str, list[FrameId]] = {'train': [], 'val': [], 'test': []}
    for job in jobs:
        if job.split == 'test' or annotated(job):
            lists[job.split].append(FrameId(DATE, drive_name(DATE, job.drive + 1), job.frame))
    for drive in range(drives):
        count = sum(1 for job in jobs if job.drive == drive)
        drive_dir = date_dir / drive_name(DATE, drive + 1)
        for sensor in ('image_02', 'velodyne_points'):
            (drive_dir / sensor).mkdir(parents=True, exist_ok=True)
            (drive_dir / sensor / 'timestamps.txt').write_text(_timestamps(count))
    for split, frame_ids in lists.items():
        if frame_ids:
            write_split_file(out / 'splits' / f'{split}_files.txt', frame_ids)
    info: dict[str, object] = {
        **request, 'complete': True, 'camera_height_m': CAMERA_HEIGHT_M,
        'intrinsics': np.round(intrinsics, 6).tolist(), 'date': DATE,
        'drives': {drive_name(DATE, d + 1): splits[d] for d in range(drives)},
        'split_sizes': {split: len(frame_ids) for split, frame_ids in lists.items()},
        'label_ids': 'cityscapes', 'extras': [EXTRA_LABELS, EXTRA_DENSE]}
    (out / 'synth_info.json').write_text(json.dumps(info, indent=2) + '\n')
    return info
