"""The road scene generator: its own geometry, determinism and LiDAR sampling."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_data_trees import KITTI_SIZE, kitti_tree

from training.data.classes import CITYSCAPES_LABEL_IDS
from training.data.io import read_depth_png
from training.data.kitti_files import FrameId, KittiCalibration
from training.data.lidar import points_to_depth_map, read_velodyne
from training.data.synth import (
    SCENES_VERSION,
    kitti_writer,
    objects,
    rig,
    road,
    roadside,
    textures,
)
from training.data.synth.cli import main as synth_cli
from training.data.synth.kitti_writer import KittiJob, SynthResumeError, write_kitti
from training.data.synth.raycast import BOX, CYLINDER, ELLIPSOID, GABLE, Primitive
from training.data.synth.rig import VELODYNE_IN_CAMERA
from training.data.synth.samples import road_sample
from training.data.synth.shading import CameraResponse, MaterialTable, expose


def _drive(seed: int, mount: rig.Mount | None = None) -> road.RoadDrive:
    drive = road.make_drive(np.random.default_rng(seed), frames=5)
    return drive if mount is None else replace(drive, mount=mount)


def _frame(seed: int, width: int = 320, height: int = 97,
           drive: road.RoadDrive | None = None) -> road.RoadFrame:
    drive = drive or _drive(seed)
    return road.render_frame(drive, 2, width, height, rig.kitti_intrinsics(width, height),
                             np.random.default_rng(seed + 1), VELODYNE_IN_CAMERA)


def _road_pixels(frame: road.RoadFrame) -> tuple[np.ndarray, np.ndarray]:
    """Road pixels; the dark patches under cars lie 2 mm above the road (hence rtol 2e-3)."""
    v, u = np.nonzero(frame.label_ids == CITYSCAPES_LABEL_IDS['road'])
    assert len(v) > 1000
    return v, u


def test_road_depth_of_a_level_camera_is_the_ground_plane_from_the_intrinsics() -> None:
    frame = _frame(3, drive=_drive(3, rig.Mount()))
    k = frame.intrinsics
    v, u = _road_pixels(frame)
    expected = rig.CAMERA_HEIGHT_M * k[1, 1] / (v - k[1, 2])
    assert np.allclose(frame.depth[v, u], expected, rtol=2e-3)


def test_road_depth_follows_the_drives_camera_mount() -> None:
    drive = _drive(3, rig.Mount(height=1.72, pitch=np.deg2rad(0.8), roll=np.deg2rad(-0.4)))
    frame = _frame(3, drive=drive)
    k = frame.intrinsics
    v, u = _road_pixels(frame)
    _, rotation = drive.camera_pose(2)
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones(len(u))], axis=1)
    drop = (rays @ rotation.T)[:, 1]  # world y per unit of camera z
    assert np.allclose(frame.depth[v, u], 1.72 / drop, rtol=2e-3)


def test_camera_mount_stays_within_its_bounds_around_kittis() -> None:
    for seed in range(40):
        mount = _drive(seed).mount
        assert abs(mount.height - rig.CAMERA_HEIGHT_M) <= rig.MOUNT_HEIGHT_JITTER_M
        assert abs(np.rad2deg(mount.roll)) <= rig.MOUNT_ROLL_DEG
        pitches = [mount.pitch_at(t) for t in np.linspace(0.0, 10.0, 101)]
        assert max(abs(np.rad2deg(p)) for p in pitches) <= rig.MOUNT_PITCH_DEG + rig.PITCH_BOUNCE_DEG
    heights = [_drive(seed).mount.height for seed in range(40)]
    assert np.std(heights) > rig.MOUNT_HEIGHT_JITTER_M / 4  # it does vary


def test_parked_cars_line_the_kerb_close_to_the_camera() -> None:
    """Most streets have a row of parked cars on the camera's side, within a few metres."""
    rows = 0
    for seed in range(20):
        drive = _drive(seed)
        cars = [p for p in drive.static if drive.materials.label[p.material] == CITYSCAPES_LABEL_IDS['car']
                and p.lo[2] < 40.0 and p.hi[2] > 0.0 and p.lo[0] > 0.0]
        if cars:
            nearest = min(p.lo[0] for p in cars)
            assert nearest < drive.layout.x_right  # on the road, at the kerb
            rows += nearest < 3.5
    assert rows >= 10


def test_sky_has_no_depth_and_everything_else_has() -> None:
    frame = _frame(4)
    sky = frame.label_ids == CITYSCAPES_LABEL_IDS['sky']
    assert sky.any() and (frame.depth[sky] == 0).all() and (frame.depth[~sky] > 0).all()


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    first = road_sample(5, 0, 4, 1, 1, 96, 29)
    again = road_sample(5, 0, 4, 1, 1, 96, 29)
    other = road_sample(6, 0, 4, 1, 1, 96, 29)
    for name in ('image', 'dense_depth', 'label_ids', 'velodyne', 'groundtruth'):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    assert not np.array_equal(first.image, other.image)


@pytest.mark.slow
def test_lidar_covers_a_kitti_like_share_of_pixels_below_the_horizon() -> None:
    sample = road_sample(1, 0, 4, 0, 0, rig.KITTI_WIDTH, rig.KITTI_HEIGHT)
    share = (sample.groundtruth > 0).mean()
    assert 0.04 < share < 0.15
    rows = np.nonzero((sample.velodyne_raw > 0).any(axis=1))[0]
    assert rows.min() > rig.KITTI_HEIGHT // 4  # the top rows look above the highest beam (+2 deg)


def test_ground_truth_agrees_with_the_dense_depth_it_came_from() -> None:
    sample = road_sample(2, 0, 4, 0, 0, 200, 60)
    kept = sample.groundtruth > 0
    assert kept.any()
    error = np.abs(sample.groundtruth[kept] - sample.dense_depth[kept]) / sample.dense_depth[kept]
    assert error.max() <= 0.05 + 0.1 / sample.dense_depth[kept].min()


def test_velodyne_scan_projects_onto_the_written_raw_depth() -> None:
    root = kitti_tree()
    frame = FrameId('2000_01_01', '2000_01_01_drive_0001_sync', 1)
    calib = KittiCalibration.read(root / 'raw' / frame.date)
    projected = points_to_depth_map(read_velodyne(frame.velodyne(root / 'raw')), calib.velo_to_image(),
                                    *KITTI_SIZE)
    written = read_depth_png(frame.depth(root / 'depth', 'train', 'velodyne_raw'))
    assert np.array_equal(projected > 0, written > 0)
    assert np.abs(projected - written).max() <= 0.5 / 256 + 1e-6


def test_pattern_textures_tile_with_dark_joints_in_range() -> None:
    bank = textures.texture_bank()
    assert bank[0].shape[0] == textures.NUM_TEXTURES
    for kind in range(textures.NUM_NOISE, textures.NUM_TEXTURES):
        tile = bank[0][kind]
        assert tile.min() >= -1.0 and tile.max() <= 1.0
        joints = (tile == textures.JOINT_VALUE).mean()
        assert 0.03 < joints < 0.4, kind


def test_road_camera_artefacts_blur_and_compress_deterministically() -> None:
    radiance = np.random.default_rng(0).uniform(0.0, 0.5, (60, 80, 3)).astype(np.float32)
    plain = CameraResponse(0.18, np.ones(3), 0.0, 0.0, 1.0)
    soft = replace(plain, blur_sigma=1.0, motion_px=3.0, motion_angle=0.3, jpeg_quality=50)
    sharp_image = expose(radiance, plain, np.random.default_rng(1))
    soft_image = expose(radiance, soft, np.random.default_rng(1))
    assert np.array_equal(soft_image, expose(radiance, soft, np.random.default_rng(1)))
    detail = [np.abs(np.diff(im.astype(float), axis=1)).mean() for im in (sharp_image, soft_image)]
    assert detail[1] < detail[0] / 2
    drawn = [CameraResponse.random(np.random.default_rng(seed), artefacts=True) for seed in range(50)]
    assert any(r.jpeg_quality for r in drawn) and any(r.motion_px for r in drawn)
    assert all(r.jpeg_quality == 0 for r in (CameraResponse.random(np.random.default_rng(s))
                                             for s in range(10)))


def test_a_resumed_kitti_tree_equals_one_written_in_one_go(tmp_path: Path) -> None:
    whole, resumed = tmp_path / 'whole', tmp_path / 'resumed'
    write_kitti(whole, 6, 3, 96, 29, 3, workers=1)
    write_kitti(resumed, 6, 3, 96, 29, 3, workers=1)
    jobs = [KittiJob(3, d, 3, f, d * 3 + f, 96, 29, s, str(resumed))
            for d, s in ((0, 'train'), (1, 'val')) for f in range(3)]
    last = [kitti_writer._last_file(job) for job in jobs]
    last[1].unlink()  # killed before its last file
    last[4].write_bytes(last[4].read_bytes()[:20])  # killed while writing it
    assert [kitti_writer.written(job) for job in jobs] == [True, False, True, True, False, True]
    untouched = kitti_writer.FrameId(kitti_writer.DATE, '2000_01_01_drive_0001_sync', 0).image(resumed / 'raw')
    stamp = untouched.stat().st_mtime_ns
    write_kitti(resumed, 6, 3, 96, 29, 3, workers=1, resume=True)
    assert untouched.stat().st_mtime_ns == stamp  # a finished frame is not rendered again
    for path in whole.rglob('*'):
        if path.is_file():
            assert path.read_bytes() == (resumed / path.relative_to(whole)).read_bytes(), path


def test_resume_refuses_a_tree_of_other_settings_or_scenes(tmp_path: Path) -> None:
    """A killed tree says what it was rendering; --resume extends it only with the same
    settings and the same scenes' version, and leaves a finished tree's version alone."""
    tree = tmp_path / 'tree'
    write_kitti(tree, 6, 3, 96, 29, 3, workers=1)
    info = json.loads((tree / 'synth_info.json').read_text())
    assert info['generator_version'] == SCENES_VERSION and info['complete'] is True
    last = kitti_writer._last_file(KittiJob(3, 1, 3, 2, 5, 96, 29, 'val', str(tree)))
    last.unlink()  # killed before its last frame
    with pytest.raises(SynthResumeError, match=r'seed 3 \(asked: 4\)'):
        write_kitti(tree, 6, 4, 96, 29, 3, workers=1, resume=True)
    info['generator_version'] = SCENES_VERSION - 1  # rendered by an earlier generator
    (tree / 'synth_info.json').write_text(json.dumps(info))
    with pytest.raises(SynthResumeError, match='generator_version'):
        write_kitti(tree, 6, 3, 96, 29, 3, workers=1, resume=True)
    assert not last.exists()  # nothing was rendered into it
    assert synth_cli(['--format', 'kitti', '--out', str(tree), '--frames', '6',
                      '--seed', '3', '--width', '96', '--height', '29',
                      '--frames-per-drive', '3', '--workers', '1', '--resume']) == 2
    # a finished tree of another version: nothing to render, its version kept
    info['generator_version'] = None  # a tree from before the version was recorded
    (tree / 'synth_info.json').write_text(json.dumps(info))
    kitti_writer._render_and_write(KittiJob(3, 1, 3, 2, 5, 96, 29, 'val', str(tree)))
    write_kitti(tree, 6, 3, 96, 29, 3, workers=1, resume=True)
    assert json.loads((tree / 'synth_info.json').read_text())['generator_version'] is None


def test_tree_crowns_clear_the_ground_under_them() -> None:
    """No leaf cluster hangs below the trunk's top (a crown low over the road once put a
    camera inside a tree)."""
    for seed in range(50):
        for size, lean in ((objects.STREET_TREE, 0.0), (objects.AVENUE_TREE, -2.0)):
            rng = np.random.default_rng(seed)
            parts = objects.tree(rng, MaterialTable(), 0.0, 0.0, rig.CAMERA_HEIGHT_M, size, lean)
            crowns = [p for p in parts if p.kind == ELLIPSOID]
            assert crowns and all(p.hi[1] <= rig.CAMERA_HEIGHT_M - size.trunk_m[0] + 1e-9
                                  for p in crowns)


def test_a_crown_has_shaded_and_sunlit_leaves() -> None:
    """Two leaf tones per crown, the sunlit one brighter: real crowns are not one green."""
    two_tones = 0
    for seed in range(20):
        materials = MaterialTable()
        parts = objects.tree(np.random.default_rng(seed), materials, 0.0, 0.0, rig.CAMERA_HEIGHT_M,
                             objects.AVENUE_TREE)
        tones = sorted({p.material for p in parts if p.kind == ELLIPSOID})
        assert len(tones) <= 2
        if len(tones) == 2:
            two_tones += 1
            shade, sunlit = (np.array(materials.albedo[m]) for m in tones)
            assert np.all(sunlit > shade)
    assert two_tones >= 15


def _overhanging_crowns(drive: road.RoadDrive) -> tuple[int, int]:
    """Leaf clusters in the first 100 m reaching at least 2 m over the road from the left
    and from the right kerb."""
    layout = drive.layout
    crowns = [p for p in drive.static if p.kind == ELLIPSOID and 0.0 < p.lo[2] < 100.0
              and drive.materials.label[p.material] == CITYSCAPES_LABEL_IDS['vegetation']]
    left = sum(p.lo[0] < layout.x_left < layout.x_left + 2.0 < p.hi[0] for p in crowns)
    right = sum(p.lo[0] < layout.x_right - 2.0 < layout.x_right < p.hi[0] for p in crowns)
    return left, right


def test_avenues_have_rows_of_old_trees_whose_crowns_meet_over_the_road() -> None:
    """About AVENUE_SHARE of streets: crowns over the road from both kerbs, on thick trunks;
    on the other streets hardly a crown reaches 2 m over the road from both."""
    avenues, others = [], []
    for seed in range(60):
        drive = _drive(seed)
        both = min(_overhanging_crowns(drive))
        if both < 10:
            others.append(both)
            continue
        avenues.append(both)
        trunks = [p for p in drive.static if p.kind == CYLINDER and p.axis == 1
                  and drive.materials.label[p.material] == CITYSCAPES_LABEL_IDS['vegetation']]
        assert max(p.hi[0] - p.lo[0] for p in trunks) >= 2 * objects.AVENUE_TREE.trunk_radius_m[0]
    assert np.mean(avenues) > 40 and np.mean(others) < 2
    avenues = len(avenues)
    assert 4 <= avenues <= 30  # about AVENUE_SHARE of 60


def test_a_gable_roof_is_hit_on_its_slopes_and_ends_only_inside_its_triangle() -> None:
    # 8 m across x, rising 3 m (y is down), ridge along z from z = 0 to 10: slopes of 3/4.
    roof = Primitive(GABLE, np.array([-4.0, -3.0, 0.0]), np.array([4.0, 0.0, 10.0]), 0, axis=2)
    down = np.array([[0.0, 1.0, 0.0]], np.float32)
    above = np.array([[2.0, -10.0, 5.0], [0.0, -10.0, 5.0], [-2.0, -10.0, 5.0], [5.0, -10.0, 5.0]],
                     np.float32)
    np.testing.assert_allclose(roof.t(above, down), [8.5, 7.0, 8.5, np.inf], rtol=1e-5)
    hit = above[:1] + 8.5 * down
    np.testing.assert_allclose(roof.normal(hit, down), [[0.6, -0.8, 0.0]], atol=1e-5)
    along = np.array([[0.0, 0.0, 1.0]], np.float32)  # towards a gable end, from in front of it
    ahead = np.array([[0.0, -1.0, -5.0], [3.5, -1.0, -5.0], [3.5, -0.2, -5.0]], np.float32)
    np.testing.assert_allclose(roof.t(ahead, along), [5.0, np.inf, 5.0], rtol=1e-5)
    np.testing.assert_allclose(roof.normal(ahead[:1] + 5.0 * along, along), [[0.0, 0.0, -1.0]])
    up = np.array([[0.0, -1.0, 0.0]], np.float32)  # from below: the base
    np.testing.assert_allclose(roof.t(np.array([[1.0, 2.0, 5.0]], np.float32), up), [2.0])
    side = np.array([[1.0, 0.0, 0.0]], np.float32)  # level from the left, under the ridge line
    np.testing.assert_allclose(roof.t(np.array([[-10.0, -1.5, 5.0]], np.float32), side), [8.0])

    # A rise of 6 m over a 3 m box: slopes of 6/4 cut flat at the top (a car's cabin, scaled).
    cabin = Primitive(GABLE, np.array([-4.0, -3.0, 0.0]), np.array([4.0, 0.0, 10.0]), 0, axis=2,
                      rise=6.0)
    np.testing.assert_allclose(cabin.t(above, down), [7.0, 7.0, 7.0, np.inf], rtol=1e-5)
    on_top = np.array([[1.0, -3.0, 5.0]], np.float32)
    np.testing.assert_allclose(cabin.normal(on_top, down), [[0.0, -1.0, 0.0]])
    np.testing.assert_allclose(cabin.t(np.array([[3.5, -10.0, 5.0]], np.float32), down), [9.25],
                               rtol=1e-5)  # on the slope: 6 - 1.5 * 3.5 = 0.75 m over the base


def test_suburb_houses_stand_back_behind_gardens_under_gable_roofs() -> None:
    for seed in range(10):
        rng = np.random.default_rng(seed)
        prims = roadside._house_plot(rng, MaterialTable(), 6.0, 1, 0.0, 30.0, rig.CAMERA_HEIGHT_M)
        walls, roof = prims[0], prims[1]
        assert walls.kind == BOX and roof.kind == GABLE
        assert walls.lo[0] >= 6.0 + roadside.HOUSE_SETBACK_M[0]  # the front garden
        assert roof.hi[1] == walls.lo[1] and roof.lo[1] < walls.lo[1]  # on the walls, above them
        across = 2 - roof.axis  # the eaves overhang the walls
        assert roof.lo[across] < walls.lo[across] and roof.hi[across] > walls.hi[across]


def test_town_row_houses_stand_wall_to_wall_at_the_sidewalk_under_gable_roofs() -> None:
    edge, top, at_walk = 6.0, rig.CAMERA_HEIGHT_M, 0
    for seed in range(20):
        materials = MaterialTable()
        prims = roadside._row_houses(np.random.default_rng(seed), materials, edge, 1, 0.0, 40.0, top)
        building = CITYSCAPES_LABEL_IDS['building']
        walls = [p for p in prims if p.kind == BOX and materials.label[p.material] == building]
        gables = [p for p in prims if p.kind == GABLE and p.hi[1] < top - 4.0]
        # 40 m of houses of 6-14 m, each under a roof and its gables' fill
        assert len(walls) >= 3 and len(gables) == 2 * len(walls)
        walls.sort(key=lambda p: p.lo[2])
        assert walls[0].lo[2] == 0.0 and walls[-1].hi[2] <= 40.0 and walls[-1].hi[2] > 38.0
        for a, b in zip(walls, walls[1:]):
            assert b.lo[2] == pytest.approx(a.hi[2])  # wall to wall
        setbacks = np.array([p.lo[0] - edge for p in walls])
        assert setbacks.min() >= 0.0 and setbacks.max() <= roadside.ROW_HOUSE_YARD_M[1] + 0.3
        at_walk += setbacks.min() <= 0.3
        heights = np.array([top - p.lo[1] for p in walls])  # two or three floors and a plinth
        assert heights.min() >= 2 * roadside.FLOOR_M[0] + 0.3
        assert heights.max() <= 3 * roadside.FLOOR_M[1] + 0.8
    assert 6 <= at_walk <= 18  # about ROW_HOUSE_AT_WALK_SHARE of 20 rows on the sidewalk's edge


def test_windows_have_frames_mullions_sills_and_glass_of_their_own() -> None:
    # a wall facing the road (normal along x) with 1.5 m windows in 3 m bays and floors: the
    # second floor's window is centred at z = 1.5 and 1.65 m above the floor's base
    floor_h, spacing, half = 3.0, 3.0, 0.75
    params = np.array([[floor_h, spacing, 0.5, 0.5]])
    base = np.array([0.5, 0.4, 0.3])
    centre_up = floor_h + 0.55 * floor_h

    def albedo(du: float, dv: float, z0: float = 0.0) -> np.ndarray:
        point = np.array([[6.0, rig.CAMERA_HEIGHT_M - (centre_up + dv), z0 + 1.5 + du]])
        normal = np.array([[-1.0, 0.0, 0.0]])
        return roadside._windows_pattern(point, normal, params, base[None].copy())[0]

    np.testing.assert_allclose(albedo(half + 0.3, 0.0), base)  # the wall between windows
    frame = albedo(half - 0.03, 0.0)
    assert tuple(frame) in (roadside.WINDOW_WHITE_FRAME, roadside.WINDOW_WOOD_FRAME)
    np.testing.assert_allclose(albedo(0.0, 0.0), frame)  # the mullion of a 1.5 m window
    np.testing.assert_allclose(albedo(0.0, half * 0.4), frame)  # the transom
    np.testing.assert_allclose(albedo(0.0, -half - 0.03), roadside.WINDOW_SILL)
    panes = [albedo(0.35, -0.3, z0=spacing * k) for k in range(12)]  # one pane, 12 bays
    assert all(not np.allclose(p, base) and not np.allclose(p, frame) for p in panes)
    brightness = np.array([p.mean() for p in panes])
    assert brightness.max() > 3 * brightness.min()  # dark rooms and mirrored sky
    shaded = albedo(0.35, half - roadside.WINDOW_FRAME_M - 0.05)  # under the lintel
    np.testing.assert_allclose(shaded, panes[0] * 0.5, rtol=1e-6)
    ground = albedo(0.35, -0.3 - floor_h)  # the ground floor's window, 1.35 m up, too
    assert not np.allclose(ground, base)


def test_plaster_facades_are_pale_and_smooth() -> None:
    rng, materials = np.random.default_rng(3), MaterialTable()
    plaster = [roadside._facade_material(rng, materials, plaster=1.0) for _ in range(50)]
    other = [roadside._facade_material(rng, materials, plaster=0.0) for _ in range(50)]
    albedo = materials.column('albedo').astype(np.float64)
    amplitude, texture = materials.column('amplitude'), materials.column('texture')
    low, high = roadside.PLASTER_ALBEDO
    assert np.all(albedo[plaster].max(axis=1) >= low * 0.92)
    assert np.all(albedo[plaster].max(axis=1) <= high * 1.08)
    assert np.all(amplitude[plaster] <= roadside.PLASTER_AMPLITUDE[1] + 1e-6)
    assert np.all(texture[plaster] < textures.NUM_NOISE)  # no bricks, no tiles
    assert np.mean(amplitude[other]) > 2 * np.mean(amplitude[plaster])
    assert np.mean(albedo[other]) < np.mean(albedo[plaster])
    assert all(materials.label[i] == CITYSCAPES_LABEL_IDS['building'] for i in plaster + other)


def test_narrow_streets_run_between_parked_cars_on_both_sides() -> None:
    narrow = [d for d in (_drive(seed) for seed in range(60)) if d.layout.lanes == 1]
    assert 5 <= len(narrow) <= 25  # about NARROW_STREET_SHARE of 60
    both = 0
    for drive in narrow:
        assert not drive.layout.markings and drive.layout.x_left < 0.0 < drive.layout.x_right
        cars = [p for p in drive.static if drive.materials.label[p.material] == CITYSCAPES_LABEL_IDS['car']
                and 0.0 < p.lo[2] < 40.0]
        left = [p.hi[0] for p in cars if p.hi[0] < 0.0]
        right = [p.lo[0] for p in cars if p.lo[0] > 0.0]
        both += bool(left and right and max(left) > -3.5 and min(right) < 3.5)
    assert both >= len(narrow) // 2


def test_a_street_that_ends_shows_a_facade_across_it_and_no_car_drives_through() -> None:
    ends = 0
    for seed in range(40):
        drive = road.make_drive(np.random.default_rng(seed), frames=20)
        across = [p for p in drive.static if p.lo[0] < drive.layout.walk_left - 10.0
                  and p.hi[0] > drive.layout.walk_right + 10.0 and np.isfinite(p.lo[2])]
        if not across:
            continue
        ends += 1
        wall = min(p.lo[2] for p in across)
        last = drive.camera_pose(19)[0][2]
        assert wall - last >= road.STREET_END_M[0] - roadside.STREET_END_WALK_M[1]  # its sidewalk ahead
        facades = [p for p in drive.static if drive.materials.label[p.material] == CITYSCAPES_LABEL_IDS['building']
                   and p.lo[2] >= wall - 4.0 and p.lo[0] < 0.0 < p.hi[0]]
        assert facades  # a building stands across the lane's line
        for mover in drive.movers:
            reach = max(p.hi[2] for p in mover.primitives) + max(mover.speed, 0.0) * 2.0
            assert reach < wall
    assert 5 <= ends <= 20  # about STREET_END_SHARE of 40
