"""Analytic cross-section models of cord, thecal sac, epidural tumor and vertebrae for approach tests.

Everything is drawn in a local spine frame (``r`` ~ right, ``a`` ~ anterior, ``s`` along the cord,
mm) turned by ``tilt_deg`` in the sagittal plane, and sampled on an oblique, anisotropic voxel grid,
so the grades must come from cross-sections perpendicular to the cord, not from voxel slices.
"""

from __future__ import annotations

import numpy as np

from SpinePlannerLib.core.volume import Volume


def rotation(tilt_deg: float) -> np.ndarray:
    """Columns: the local r, a, s axes in RAS (s tilted towards A by ``tilt_deg``)."""
    t = np.deg2rad(tilt_deg)
    r = np.array([1.0, 0.0, 0.0])
    s = np.array([0.0, np.sin(t), np.cos(t)])
    a = np.cross(s, r)
    return np.stack([r, a, s], axis=1)


def grid(*, half_mm=(32.0, 32.0, 45.0), spacing=(0.5, 0.6, 1.0), oblique_deg: float = 7.0):
    """An oblique, anisotropic grid (affine, shape) covering the local box, and its voxel centres in RAS."""
    t = np.deg2rad(oblique_deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])
    shape = tuple(int(2 * h / s) for h, s in zip(half_mm, spacing, strict=True))
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(spacing)
    affine[:3, 3] = -affine[:3, :3] @ (np.array(shape) - 1) / 2
    ijk = np.indices(shape).reshape(3, -1).T
    ras = ijk @ affine[:3, :3].T + affine[:3, 3]
    return affine, shape, ras


def local(ras: np.ndarray, tilt_deg: float) -> np.ndarray:
    return ras @ rotation(tilt_deg)


def compression_case(tumor_front_a: float | None, *, no_csf: bool = False, tilt_deg: float = 10.0,
                     tumor_half_s: float = 8.0) -> dict[str, Volume]:
    """Cord (ellipse 5 x 4 mm), sac (circle 8 mm) and an anterior epidural tumor whose posterior
    surface reaches ``a = tumor_front_a`` (mm in front of the cord centre; None = no tumor).
    The tumor replaces what it overlaps; ``no_csf`` shrinks the sac onto the cord at the tumor."""
    affine, shape, ras = grid()
    p = local(ras, tilt_deg)
    r, a, s = p[:, 0], p[:, 1], p[:, 2]
    cord = (r / 5.0) ** 2 + (a / 4.0) ** 2 <= 1.0
    sac = r ** 2 + a ** 2 <= 8.0 ** 2
    tumor = np.zeros_like(cord)
    if tumor_front_a is not None:
        ra, rs = 7.0, tumor_half_s
        centre_a = tumor_front_a + ra
        tumor = (r / 9.0) ** 2 + ((a - centre_a) / ra) ** 2 + (s / rs) ** 2 <= 1.0
        if no_csf:
            at_tumor = np.abs(s) <= rs
            hug = cord  # CSF obliterated: the sac clings to the cord
            sac = np.where(at_tumor, hug, sac)
        cord &= ~tumor
        sac &= ~tumor
    out = {}
    for name, m in (("cord", cord), ("sac", sac | cord), ("tumor", tumor)):
        out[name] = Volume(m.reshape(shape).astype(np.uint8), affine, name)
    out["axis"] = rotation(tilt_deg)[:, 2]
    return out
