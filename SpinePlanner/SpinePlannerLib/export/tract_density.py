"""Tract density on the reference grid, for systems that cannot read tract objects: the number
of streamlines crossing each voxel (each streamline counted once per voxel), written as a
derived series, and the voxels crossed by at least one streamline as a SEG/RTSTRUCT structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from SpinePlannerLib.core.volume import Volume

TRACT_FILES = ("cord_tracts.tck", "cord_tracts.trx")


def read_streamlines(tracts_dir: Path) -> list[np.ndarray] | None:
    """Streamlines (each (N, 3), RAS mm) of the plan's ``tracts/`` folder, or None when absent.

    Reads the TCK with nibabel (points in RAS mm, as MRtrix3 writes them)."""
    path = Path(tracts_dir) / TRACT_FILES[0]
    if not path.is_file():
        return None
    import nibabel as nib

    return [np.asarray(s, float) for s in nib.streamlines.load(str(path)).streamlines]


def _densify(points: np.ndarray, step: float) -> np.ndarray:
    """Points along the polyline, at most ``step`` apart (in the units of ``points``)."""
    if len(points) < 2:
        return points
    seg = np.diff(points, axis=0)
    n = np.maximum(1, np.ceil(np.linalg.norm(seg, axis=1) / step).astype(int))
    parts = [points[i] + seg[i] * (np.arange(n[i])[:, None] / n[i]) for i in range(len(seg))]
    return np.vstack([*parts, points[-1:]])


def tract_density(streamlines: list[np.ndarray], reference: Volume) -> np.ndarray:
    """Streamline count per voxel (int32 ``[i, j, k]`` on ``reference``'s grid).

    Each streamline is sampled every 0.25 voxel (in voxel indices) and counted once in every
    voxel it passes through; points outside the grid are ignored.
    """
    shape = np.asarray(reference.shape3)
    counts = np.zeros(reference.shape3, np.int32)
    for s in streamlines:
        ijk = _densify(reference.ras_to_ijk(s), 0.25)
        vox = np.rint(ijk).astype(int)
        vox = vox[np.all((vox >= 0) & (vox < shape), axis=1)]
        if len(vox):
            flat = np.unique(np.ravel_multi_index(vox.T, reference.shape3))
            counts.ravel()[flat] += 1
    return counts
