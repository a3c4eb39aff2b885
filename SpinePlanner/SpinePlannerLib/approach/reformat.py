"""Cross-sections perpendicular to the spinal axis: masks reformatted onto a straight local grid (L1).

The grid's axes are ``u`` (in-plane, as close to patient Right as possible), ``v = axis x u``
(close to Anterior) and ``w = axis`` (the cord axis, pointing superior), all in RAS mm. Slice
``k`` of every array is the cross-section at ``w = (k - k0) * step_mm`` from the centre. Masks
move through world coordinates (nearest neighbour), so oblique, anisotropic input grids give the
same cross-sections as upright ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.core.geometry import resample
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import in_plane_basis


@dataclass
class AxialStack:
    """Masks on a straight grid across the spine.

    Attributes
    ----------
    arrays : dict[str, np.ndarray]
        ``name -> bool array [iu, iv, k]``.
    affine : np.ndarray
        4x4 ``(iu, iv, k) -> RAS`` mm.
    pixel_mm, step_mm : float
        In-plane pixel size and slice step (mm).
    """

    arrays: dict[str, np.ndarray]
    affine: np.ndarray
    pixel_mm: float
    step_mm: float

    @property
    def n_slices(self) -> int:
        return next(iter(self.arrays.values())).shape[2]

    def slice_centre_ras(self, k: int) -> np.ndarray:
        n = next(iter(self.arrays.values())).shape
        return (self.affine @ np.array([(n[0] - 1) / 2, (n[1] - 1) / 2, k, 1.0]))[:3]

    def offset_mm(self, k: int) -> float:
        """Position of slice ``k`` along the axis, from the stack's centre (mm)."""
        return float((k - (self.n_slices - 1) / 2) * self.step_mm)

    @property
    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit ``u`` (~R), ``v`` (~A), ``w`` (axis) in RAS."""
        m = self.affine[:3, :3]
        return m[:, 0] / self.pixel_mm, m[:, 1] / self.pixel_mm, m[:, 2] / self.step_mm


def axial_stack(masks: dict[str, Volume], centre_ras, axis, *, half_width_mm: float = 30.0,
                half_length_mm: float = 40.0, pixel_mm: float = 0.5, step_mm: float = 1.0) -> AxialStack:
    """Reformat ``masks`` (any grids) onto cross-sections perpendicular to ``axis`` around ``centre_ras``.

    Parameters
    ----------
    masks : dict[str, Volume]
        Binary masks (non-zero = inside); absent structures may be omitted.
    centre_ras : array-like
        Centre of the stack (RAS mm), e.g. the tumor centroid.
    axis : array-like
        Spinal (cord) axis; made unit and pointing superior.
    half_width_mm, half_length_mm : float
        In-plane half width and half length along the axis (mm).
    pixel_mm, step_mm : float
        In-plane pixel and slice step (mm).
    """
    w = np.asarray(axis, float)
    w = w / np.linalg.norm(w)
    if w[2] < 0:
        w = -w
    u, v = in_plane_basis(w)
    if np.dot(np.cross(w, u), v) < 0:  # keep (u, v, w) right-handed
        v = -v
    n_in = int(round(2 * half_width_mm / pixel_mm)) + 1
    n_k = int(round(2 * half_length_mm / step_mm)) + 1
    affine = np.eye(4)
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = u * pixel_mm, v * pixel_mm, w * step_mm
    centre = np.asarray(centre_ras, float)
    affine[:3, 3] = centre - affine[:3, :3] @ np.array([(n_in - 1) / 2, (n_in - 1) / 2, (n_k - 1) / 2])
    shape = (n_in, n_in, n_k)
    arrays = {name: resample(m.with_array((m.array > 0).astype(np.float32)), affine, shape, order=0) > 0.5
              for name, m in masks.items() if m is not None}
    return AxialStack(arrays, affine, float(pixel_mm), float(step_mm))
