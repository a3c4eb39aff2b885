"""Small analytic CT / synthetic-CT cases on arbitrary (oblique) grids, for tests and self-tests (L1).

The anatomy is defined in RAS millimetres and sampled at the voxel centres of any grid, so the
same case can be drawn on oblique, anisotropic grids of different resolution and moved by a
known rigid transform. Around the RAS origin: a spinal canal along S (radius 9 mm, CSF 5 HU)
with a cord (radius 3.5 mm, 35 HU) displaced to the left, a bony ring (9-14 mm, 700 HU)
interrupted by 6 mm discs every 25 mm and a slanted spinous process (so that a rigid
registration is well posed), soft tissue (40 HU) around it, fat further out and an intradural-extramedullary lesion: an ellipsoid centred at R = +2 mm with semi-axes
(``axial_mm`` / 2, ``axial_mm`` / 2, ``cc_mm`` / 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.core.volume import Volume

LESION_CENTER = np.array([2.0, 0.0, 0.0])
CANAL_RADIUS_MM = 10.0
BONE_OUTER_RADIUS_MM = 15.0


def rotation_matrix(angles_deg) -> np.ndarray:
    """Rotation about R, then A, then S by the given angles (degrees)."""
    ax, ay, az = np.radians(np.asarray(angles_deg, float))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid(angles_deg=(0, 0, 0), translation_mm=(0, 0, 0), center=(0, 0, 0)) -> np.ndarray:
    """4x4 RAS rigid transform rotating about ``center`` then translating."""
    r = rotation_matrix(angles_deg)
    c = np.asarray(center, float)
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = c - r @ c + np.asarray(translation_mm, float)
    return m


def grid_affine(*, spacing=(1.0, 1.0, 1.0), shape=(40, 40, 40), angles_deg=(0, 0, 0), center=(0, 0, 0),
                axis_order=(0, 1, 2)) -> np.ndarray:
    """``ijk -> RAS`` affine of a grid centred on ``center`` with rotated, permuted axes."""
    r = rotation_matrix(angles_deg)[:, list(axis_order)]
    a = np.eye(4)
    a[:3, :3] = r @ np.diag(np.asarray(spacing, float))
    a[:3, 3] = np.asarray(center, float) - a[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    return a


@dataclass
class Tissues:
    """HU values of the analytic anatomy."""

    lesion: float = 550.0
    cord: float = 35.0
    csf: float = 5.0
    bone: float = 700.0
    soft: float = 40.0
    fat: float = -100.0


def anatomy_ras(points: np.ndarray, tissues: Tissues, *, axial_mm: float = 8.0, cc_mm: float = 14.0,
                lesion_center=LESION_CENTER) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HU at RAS points (N, 3), plus the lesion and bone masks at those points."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    r = np.hypot(x, y)
    hu = np.full(len(points), tissues.fat, np.float32)
    hu[r < 20] = tissues.soft
    disc = np.abs(np.mod(z - 12.5, 25.0) - 12.5) >= 9.5  # 6 mm discs centred at z = 12.5 + 25 k
    spinous = (y < -14) & (y > -24) & (np.abs(x - 0.1 * (y + 14)) < 3) & ~disc
    ring = (r >= CANAL_RADIUS_MM) & (r < BONE_OUTER_RADIUS_MM)
    bone = (ring | spinous) & ~disc
    hu[bone] = tissues.bone
    hu[disc & ring] = tissues.soft + 40.0
    hu[r < CANAL_RADIUS_MM] = tissues.csf
    hu[np.hypot(x + 6.0, y) < 3.0] = tissues.cord
    c = np.asarray(lesion_center, float)
    q = ((x - c[0]) / (axial_mm / 2)) ** 2 + ((y - c[1]) / (axial_mm / 2)) ** 2 + ((z - c[2]) / (cc_mm / 2)) ** 2
    lesion = q <= 1.0
    hu[lesion] = tissues.lesion
    return hu, lesion, bone


def sample_case(affine, shape, tissues: Tissues | None = None, *, world_to_anatomy=None, noise_hu: float = 8.0,
                seed: int = 0, supersample: int = 2, **kw) -> tuple[Volume, Volume, Volume]:
    """Image (HU, partial-volume averaged), lesion mask and bone mask on a grid.

    ``world_to_anatomy`` (4x4) maps the grid's world frame to the anatomy frame (a patient
    positioned differently in another session).
    """
    tissues = tissues or Tissues()
    shape = tuple(int(s) for s in shape)
    m = np.eye(4) if world_to_anatomy is None else np.asarray(world_to_anatomy, float)
    ijk = np.indices(shape).reshape(3, -1).T.astype(float)
    offs = (np.arange(supersample) + 0.5) / supersample - 0.5
    acc = np.zeros(len(ijk), np.float32)
    for dx in offs:
        for dy in offs:
            for dz in offs:
                pts = (ijk + [dx, dy, dz]) @ affine[:3, :3].T + affine[:3, 3]
                hu, _, _ = anatomy_ras(pts @ m[:3, :3].T + m[:3, 3], tissues, **kw)
                acc += hu
    acc /= supersample**3
    centres = ijk @ affine[:3, :3].T + affine[:3, 3]
    _, lesion, bone = anatomy_ras(centres @ m[:3, :3].T + m[:3, 3], tissues, **kw)
    rng = np.random.default_rng(seed)
    img = acc.reshape(shape) + rng.normal(0.0, noise_hu, shape).astype(np.float32) if noise_hu > 0 else acc.reshape(shape)
    return (Volume(img.astype(np.float32), affine, "image", {"units": "HU"}),
            Volume(lesion.reshape(shape).astype(np.uint8), affine, "lesion"),
            Volume(bone.reshape(shape).astype(np.uint8), affine, "bone"))


def make_case(*, ct_lesion_hu: float = 550.0, sct_lesion_hu: float = 12.0, sct_bone_hu: float = 650.0,
              axial_mm: float = 13.8, cc_mm: float = 16.0, motion=None, ct_spacing=(0.7, 0.7, 1.0),
              ct_shape=(56, 56, 44), mr_spacing=(1.0, 0.9, 1.1), mr_shape=(40, 44, 40), seed: int = 0) -> dict:
    """A CT / synthetic-CT pair with the tumour ROI on the MRI grid.

    The CT grid is oblique (RAS-like axis order); the MRI grid (synthetic CT and ROI) is
    oblique with a permuted axis order (i along S). ``motion`` (4x4, default a 3-4 degree,
    2 mm rigid shift) maps the MRI world to the anatomy (= CT world), so the true
    ``ct_to_sct_ras`` is ``inv(motion)``.

    Returns a dict with ``ct``, ``sct``, ``roi`` (MRI grid), ``ct_lesion`` and ``ct_bone``
    (CT grid truth masks) and ``motion``.
    """
    motion = rigid((3, -2, 4), (1.5, -1.0, 2.0)) if motion is None else np.asarray(motion, float)
    a_ct = grid_affine(spacing=ct_spacing, shape=ct_shape, angles_deg=(8, -5, 12))
    a_mr = grid_affine(spacing=mr_spacing, shape=mr_shape, angles_deg=(-6, 4, -10), axis_order=(2, 0, 1))
    kw = {"axial_mm": axial_mm, "cc_mm": cc_mm}
    ct, ct_lesion, ct_bone = sample_case(a_ct, ct_shape, Tissues(lesion=ct_lesion_hu), seed=seed, **kw)
    sct, roi, _ = sample_case(a_mr, mr_shape, Tissues(lesion=sct_lesion_hu, bone=sct_bone_hu),
                              world_to_anatomy=motion, seed=seed + 1, **kw)
    ct.name, sct.name, roi.name = "ct", "sct", "tumor"
    return {"ct": ct, "sct": sct, "roi": roi, "ct_lesion": ct_lesion, "ct_bone": ct_bone, "motion": motion}
