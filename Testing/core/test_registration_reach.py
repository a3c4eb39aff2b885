"""Rigid registration reads only the part of the fixed image its metric can reach: the moving
region's bounding box plus a margin (a 512 x 512 x 600 CT is not copied, smoothed per level and
scanned for its histogram range in full)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.registration import REACH_MARGIN_MM, crop_volume, reachable_part, register_rigid
from SpinePlannerLib.core.volume import Volume, affine_from_ras_geometry


def _rotation(deg_x: float, deg_z: float) -> np.ndarray:
    ax, az = np.radians(deg_x), np.radians(deg_z)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ rx


def _bones(shape, spacing, direction, origin) -> Volume:
    """HU image: soft tissue with a few bright bony blocks and a rod, deterministic."""
    arr = np.full(shape, 40.0, np.float32)
    idx = np.indices(shape).astype(float)
    for c, r, hu in (((20, 22, 25), (6, 5, 8), 900), ((38, 30, 18), (4, 7, 5), 700), ((28, 40, 36), (5, 4, 6), 1100)):
        arr[sum(((idx[a] - c[a]) / r[a]) ** 2 for a in range(3)) <= 1] = hu
    arr[10:14, 10:50, 30:33] = 500
    arr = ndimage.gaussian_filter(arr, 0.7)
    return Volume(arr, affine_from_ras_geometry(origin, spacing, direction))


def test_reachable_part_is_the_whole_image_when_the_margin_covers_it():
    fixed = _bones((56, 56, 50), (1.0, 1.0, 1.0), np.eye(3), (0, 0, 0))
    moving = crop_volume(fixed, (slice(10, 40), slice(10, 40), slice(10, 40)))
    assert reachable_part(fixed, moving) is fixed


def test_reachable_part_covers_the_moving_region_plus_the_margin_on_an_oblique_grid():
    shape, spacing, direction = (300, 280, 260), np.array([0.9, 0.8, 1.1]), _rotation(12, -20)
    origin = -(direction * spacing) @ ((np.asarray(shape) - 1) / 2.0)  # centred on the RAS origin
    big = Volume(np.arange(np.prod(shape), dtype=np.int32).reshape(shape),
                 affine_from_ras_geometry(origin, spacing, direction))
    moving = Volume(np.zeros((40, 40, 40), np.float32), affine_from_ras_geometry((-20, -15, -10), (1, 1, 1), np.eye(3)))
    part = reachable_part(big, moving)
    assert part.array.size < big.array.size
    # the part sits where it was in the big image (same voxels, moved origin)
    start = np.rint(big.ras_to_ijk(part.origin)).astype(int)
    assert np.allclose(big.ras_to_ijk(part.origin), start, atol=1e-9)
    assert np.array_equal(part.array, big.array[tuple(slice(s, s + n) for s, n in zip(start, part.shape3, strict=True))])
    # every point of the moving box grown by the margin is inside the part
    lo, hi = moving.bounds_ras()
    grown = np.array([[a, b, c] for a in (lo[0] - REACH_MARGIN_MM, hi[0] + REACH_MARGIN_MM)
                      for b in (lo[1] - REACH_MARGIN_MM, hi[1] + REACH_MARGIN_MM)
                      for c in (lo[2] - REACH_MARGIN_MM, hi[2] + REACH_MARGIN_MM)])
    ijk = part.ras_to_ijk(grown)
    assert np.all(ijk >= -1e-6) and np.all(ijk <= np.asarray(part.shape3) - 1 + 1e-6)


def test_registration_in_a_large_field_recovers_the_motion_as_in_the_small_one():
    small = _bones((56, 56, 50), (1.0, 1.0, 1.0), np.eye(3), (-28, -28, -25))
    # the same anatomy in a 3x larger field (air around it), sharing its voxel centres
    big_arr = np.full((168, 168, 150), -1000.0, np.float32)
    big_arr[56:112, 56:112, 50:100] = small.array
    big = Volume(big_arr, affine_from_ras_geometry(small.ijk_to_ras([-56, -56, -50]), (1, 1, 1), np.eye(3)))
    motion = np.eye(4)
    motion[:3, :3] = _rotation(2.0, 1.5)
    motion[:3, 3] = (1.5, -1.0, 0.8)
    moving = Volume(small.array.copy(), np.linalg.inv(motion) @ small.affine)  # its world differs by ``motion``
    focus = small.ijk_to_ras([28, 28, 25])
    r_small = register_rigid(moving, small, focus_ras=focus)
    r_big = register_rigid(moving, big, focus_ras=focus)
    assert r_small.method == r_big.method == "rigid mutual information"
    for r in (r_small, r_big):
        err = r.moving_to_fixed_ras @ np.append(focus, 1.0) - motion @ np.append(focus, 1.0)
        assert np.linalg.norm(err[:3]) < 0.3
    assert np.allclose(r_small.moving_to_fixed_ras[:3, :3], r_big.moving_to_fixed_ras[:3, :3], atol=5e-3)


def test_bone_surface_distance_on_every_second_voxel_is_close_to_the_full_one():
    from SpinePlannerLib.core.registration import bone_surface_distance_mm

    fine = _bones((112, 112, 100), (0.5, 0.5, 0.5), np.eye(3), (-28, -28, -25))
    shifted = Volume(fine.array, fine.affine.copy())
    shifted.affine[:3, 3] += (0.0, 1.0, 0.0)  # bone 1 mm apart along A
    full = bone_surface_distance_mm(fine, shifted, bone_hu=250.0)
    half = bone_surface_distance_mm(fine, shifted, bone_hu=250.0, step=2)
    assert full is not None and half is not None
    assert abs(half - full) < 0.25
    assert bone_surface_distance_mm(fine, fine, bone_hu=250.0, step=2) == 0.0
