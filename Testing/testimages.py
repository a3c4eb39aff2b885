"""Small synthetic volumes with awkward geometry for foundation tests (not installed)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from SpinePlannerLib.core.volume import Volume


def oblique_affine(*, spacing=(0.7, 1.3, 2.9), order="PSR", angles_deg=(12.0, -7.0, 21.0),
                   origin=(13.5, -41.25, 77.125)) -> np.ndarray:
    """An oblique, anisotropic ``ijk -> RAS`` affine whose voxel axes point roughly along
    ``order`` (e.g. PSR: i -> posterior, j -> superior, k -> right), rotated by Euler angles."""
    axes = {"R": [1, 0, 0], "L": [-1, 0, 0], "A": [0, 1, 0], "P": [0, -1, 0], "S": [0, 0, 1], "I": [0, 0, -1]}
    base = np.array([axes[c] for c in order], float).T  # columns = axis directions
    rot = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    a = np.eye(4)
    a[:3, :3] = rot @ base @ np.diag(spacing)
    a[:3, 3] = origin
    return a


def blob_volume(affine, shape=(24, 20, 14), *, center_ras=None, radius_mm=6.0, seed=0, name="blob") -> Volume:
    """Float volume with a bright ball of ``radius_mm`` at ``center_ras`` (default: grid centre) plus noise."""
    rng = np.random.default_rng(seed)
    vol = Volume(np.zeros(shape, np.float32), affine, name)
    if center_ras is None:
        center_ras = vol.ijk_to_ras((np.asarray(shape) - 1) / 2.0)
    ijk = np.indices(shape).reshape(3, -1).T
    d = np.linalg.norm(vol.ijk_to_ras(ijk) - np.asarray(center_ras), axis=1).reshape(shape)
    vol.array = (100.0 * (d <= radius_mm) + rng.normal(0, 1.0, shape)).astype(np.float32)
    return vol


def ball_mask(affine, shape, center_ras, radius_mm, name="mask") -> Volume:
    vol = Volume(np.zeros(shape, np.uint8), affine, name)
    ijk = np.indices(shape).reshape(3, -1).T
    d = np.linalg.norm(vol.ijk_to_ras(ijk) - np.asarray(center_ras), axis=1).reshape(shape)
    vol.array = (d <= radius_mm).astype(np.uint8)
    return vol


def corner_positions(volume: Volume) -> np.ndarray:
    n = np.asarray(volume.shape3) - 1
    corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], float)
    return volume.ijk_to_ras(corners)


def assert_same_world_image(a: Volume, b: Volume, *, tol_mm: float = 1e-4, value_tol: float = 0.0) -> None:
    """Same set of voxel-centre corners in RAS and the same value at the same RAS position.

    Readers may legitimately store the voxels in another axis order (DICOM sorts slices along
    row x column; Slicer may flip to a positive determinant), so compare in world space.
    """
    from SpinePlannerLib.core.geometry import resample_like

    ca = np.array(sorted(map(tuple, np.round(corner_positions(a), 6))))
    cb = np.array(sorted(map(tuple, np.round(corner_positions(b), 6))))
    assert np.max(np.abs(ca - cb)) < tol_mm, f"corner positions differ by {np.max(np.abs(ca - cb)):.3g} mm"
    diff = np.abs(resample_like(b, a, order=0).array.astype(float) - a.array.astype(float))
    assert diff.max() <= value_tol, f"values differ by up to {diff.max():.3g}"
