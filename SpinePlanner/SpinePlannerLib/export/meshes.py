"""Closed, smoothed surface meshes of the plan's structures for 3D printing and AR.

Surface: marching cubes (scikit-image, Lewiner) at the 0.5 level of the zero-padded binary
mask, in voxel indices, mapped through the reference affine to RAS mm, then to LPS mm by
default (``diag(-1, -1, 1)``; ``frame="RAS"`` keeps RAS). Smoothing: Taubin (trimesh
``filter_taubin``, lambda 0.5, mu -0.53, 20 iterations), which keeps the enclosed volume within
about 1.5 % of the label map's on structures 3 mm and thicker. Structures thinner than 3 voxels
(vessels) are not smoothed (smoothing would shrink them further) and still lose 25-40 % of their
label-map volume: marching cubes cuts the corners of a 1-2 voxel tube. Faces are wound outward
(positive volume).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.core.volume import LPS_TO_RAS
from SpinePlannerLib.export.structures import Structure

TAUBIN = {"lamb": 0.5, "nu": 0.53, "iterations": 20}
"""trimesh.smoothing.filter_taubin settings (trimesh's ``nu`` is the magnitude of mu = -0.53)."""

FRAMES = ("LPS", "RAS")


@dataclass
class StructureMesh:
    """A triangle mesh (vertices (N, 3) in ``frame`` mm, faces (M, 3)) of one structure."""

    structure: Structure
    vertices: np.ndarray
    faces: np.ndarray
    frame: str

    def trimesh(self):
        import trimesh

        return trimesh.Trimesh(self.vertices, self.faces, process=False)


def mask_mesh(mask: np.ndarray, affine_ras: np.ndarray, *, frame: str = "LPS", smooth: bool = True):
    """(vertices, faces) of the closed surface of a boolean ``[i, j, k]`` mask, in ``frame`` mm."""
    import trimesh
    from skimage.measure import marching_cubes

    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {FRAMES}, got {frame!r}")
    if not np.any(mask):
        raise ValueError("empty mask: no surface")
    lo = np.argwhere(mask).min(axis=0)
    hi = np.argwhere(mask).max(axis=0) + 1
    crop = np.pad(np.asarray(mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32), 1)
    verts, faces, _, _ = marching_cubes(crop, 0.5)
    ijk = verts - 1.0 + lo
    affine = np.asarray(affine_ras, float)
    if frame == "LPS":
        affine = LPS_TO_RAS @ affine
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    mesh = trimesh.Trimesh(world, faces, process=True)
    if mesh.volume < 0:
        mesh.invert()
    if smooth:
        trimesh.smoothing.filter_taubin(mesh, **TAUBIN)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def is_thin(mask: np.ndarray, *, voxels: float = 3.0) -> bool:
    """True when no voxel of ``mask`` lies deeper than ``voxels / 2`` inside it (in voxel units)."""
    from scipy.ndimage import distance_transform_edt

    return float(distance_transform_edt(np.pad(mask, 1)).max()) < voxels / 2


def structure_meshes(masks: list[tuple[Structure, np.ndarray]], affine_ras: np.ndarray, *,
                     frame: str = "LPS") -> list[StructureMesh]:
    """One :class:`StructureMesh` per non-empty structure (thin ones unsmoothed)."""
    return [StructureMesh(s, *mask_mesh(m, affine_ras, frame=frame, smooth=not is_thin(m)), frame)
            for s, m in masks if np.any(m)]


PRINT_PARTS = ("tumor", "cord", "spine")
"""The printable model's parts, in precedence order where they overlap (tumor over cord over bone)."""


def printable_masks(masks: list[tuple[Structure, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    """Disjoint tumor / cord / spine masks (spine = all bone or vertebrae), each voxel in one
    part only, so the shells of a multi-material print touch but never overlap."""
    by_key = {s.key: m for s, m in masks}
    spine = by_key.get("bone")
    vertebrae = [m for s, m in masks if s.key.startswith("vertebra_")]
    if spine is None and vertebrae:
        spine = np.logical_or.reduce(vertebrae)
    parts, taken = [], None
    for name, m in (("tumor", by_key.get("tumor")), ("cord", by_key.get("cord")), ("spine", spine)):
        if m is None or not np.any(m):
            continue
        m = m & ~taken if taken is not None else m.copy()
        taken = m if taken is None else taken | m
        if np.any(m):
            parts.append((name, m))
    return parts
