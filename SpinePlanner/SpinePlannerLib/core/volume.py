"""The image container shared by every algorithm: a numpy array plus its ijk -> RAS affine.

Conventions (all L1 code follows them):

* ``Volume.array`` is indexed ``[i, j, k]`` (first index fastest in the file, as nibabel does).
* ``Volume.affine`` is a 4x4 matrix mapping homogeneous voxel indices ``(i, j, k, 1)`` to
  patient coordinates in **RAS millimetres** (Slicer's world frame). It may be oblique,
  anisotropic and in any axis order (PSR, LAS, ...): never assume a diagonal affine.
* Voxel centres sit at integer indices.

Slicer's ``arrayFromVolume`` is indexed ``[k, j, i]``; the MRML adapters transpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Homogeneous flip between LPS (ITK, DICOM) and RAS (Slicer, NIfTI world); it is its own inverse."""


@dataclass
class Volume:
    """A 3D (or 4D, last axis = volumes/channels) image in RAS millimetres.

    Attributes
    ----------
    array : np.ndarray
        Voxel values indexed ``[i, j, k]`` (``[i, j, k, t]`` for 4D).
    affine : np.ndarray
        4x4 ``ijk -> RAS`` (mm).
    name : str
        Human-readable name (role or structure).
    meta : dict
        Free-form metadata (e.g. ``{"units": "HU"}``).
    """

    array: np.ndarray
    affine: np.ndarray
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.affine = np.asarray(self.affine, dtype=float)
        if self.affine.shape != (4, 4):
            raise ValueError(f"{self.name or 'volume'}: affine must be 4x4, got {self.affine.shape}")
        if self.array.ndim not in (3, 4):
            raise ValueError(f"{self.name or 'volume'}: expected a 3D or 4D array, got {self.array.ndim}D")
        if abs(np.linalg.det(self.affine[:3, :3])) < 1e-12:
            raise ValueError(f"{self.name or 'volume'}: affine is singular")

    # -- geometry -----------------------------------------------------------------------------
    @property
    def shape3(self) -> tuple[int, int, int]:
        """Spatial shape ``(ni, nj, nk)``."""
        return tuple(int(s) for s in self.array.shape[:3])

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along i, j, k in mm (column norms of the affine)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def direction(self) -> np.ndarray:
        """3x3 matrix whose columns are the unit RAS directions of the i, j, k axes."""
        return self.affine[:3, :3] / self.spacing

    @property
    def origin(self) -> np.ndarray:
        """RAS position (mm) of the centre of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel in mL (1 mL = 1000 mm^3)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])) / 1000.0)

    def ijk_to_ras(self, ijk) -> np.ndarray:
        """Map voxel indices (N, 3) or (3,) to RAS mm."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def ras_to_ijk(self, ras) -> np.ndarray:
        """Map RAS mm points (N, 3) or (3,) to continuous voxel indices."""
        ras = np.asarray(ras, dtype=float)
        inv = np.linalg.inv(self.affine)
        return ras @ inv[:3, :3].T + inv[:3, 3]

    def contains_ras(self, ras, *, margin_voxels: float = 0.5) -> bool:
        """True when the RAS point lies inside the image (voxel centres +- ``margin_voxels``)."""
        ijk = self.ras_to_ijk(ras)
        hi = np.asarray(self.shape3) - 1 + margin_voxels
        return bool(np.all(ijk >= -margin_voxels) and np.all(ijk <= hi))

    def bounds_ras(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned RAS bounding box (min, max) of the voxel centres, mm."""
        n = np.asarray(self.shape3) - 1
        corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], float)
        ras = self.ijk_to_ras(corners)
        return ras.min(axis=0), ras.max(axis=0)

    def with_array(self, array: np.ndarray, name: str | None = None, **meta) -> Volume:
        """A new volume on the same grid with another array."""
        return Volume(array, self.affine.copy(), name if name is not None else self.name, {**self.meta, **meta})

    def same_grid(self, other: Volume, *, tol_mm: float = 1e-4) -> bool:
        """True when both volumes share shape and affine (within ``tol_mm``)."""
        return self.shape3 == other.shape3 and bool(np.allclose(self.affine, other.affine, atol=tol_mm))


def affine_from_ras_geometry(origin, spacing, direction) -> np.ndarray:
    """Build a 4x4 ``ijk -> RAS`` affine from origin (mm), spacing (mm) and a 3x3 direction matrix
    whose columns are the unit RAS directions of i, j, k."""
    a = np.eye(4)
    a[:3, :3] = np.asarray(direction, float) @ np.diag(np.asarray(spacing, float))
    a[:3, 3] = np.asarray(origin, float)
    return a


def lps_geometry_to_affine(origin_lps, spacing, direction_lps) -> np.ndarray:
    """ITK/SimpleITK/DICOM geometry (LPS) to a 4x4 ``ijk -> RAS`` affine.

    The flip ``diag(-1, -1, 1)`` is applied to the whole direction matrix and the origin.
    """
    a_lps = affine_from_ras_geometry(origin_lps, spacing, np.asarray(direction_lps, float).reshape(3, 3))
    return LPS_TO_RAS @ a_lps


def affine_to_lps_geometry(affine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`lps_geometry_to_affine`: returns (origin_lps, spacing, direction_lps 3x3)."""
    a_lps = LPS_TO_RAS @ np.asarray(affine, float)
    spacing = np.linalg.norm(a_lps[:3, :3], axis=0)
    return a_lps[:3, 3].copy(), spacing, a_lps[:3, :3] / spacing
