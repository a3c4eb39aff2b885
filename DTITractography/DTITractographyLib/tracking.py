"""Streamline tracking in the cord with DIPY, streamlines returned in RAS mm (L1).

Tracking runs in the DWI's *scaled voxel* frame: coordinates ``p = ijk * spacing`` (mm along
the voxel axes), in which the tensor eigenvectors (fitted with voxel-axis gradients) are the
true directions even for anisotropic voxels. Points go to RAS with the DWI affine:
``ras = A @ (p / spacing)``. Shear-free affines only (every NIfTI from a scanner is).

* deterministic: DIPY's EuDX tracker on the exact principal eigenvectors (one "sphere" vertex
  per voxel, so no direction quantisation), trilinear interpolation of neighbouring peaks;
* probabilistic: DIPY's probabilistic tracker on the tensor ODF (spherical harmonics, order 6).

Both stop where the DTI FA (never GFA) falls below ``fa_stop`` or the canal mask ends.
"""

from __future__ import annotations

import numpy as np

from SpinePlannerLib.planning.context import Progress, no_progress

from .params import TrackingParams
from .tensor_fit import TensorMaps

ODF_POWER = 6.0
"""The probabilistic PMF is the tensor ODF raised to this power: the raw ODF is so broad (half
width about 40 degrees at FA 0.8) that streamlines wander out of a 10 mm cord; 6 keeps them in
it while still sampling directions (tuned on the phantoms, where the Setzer fractions of
probabilistic and deterministic tracking then agree)."""


def scaled_voxel_affine(spacing) -> np.ndarray:
    """Affine of the tracking frame: voxel indices -> mm along the voxel axes."""
    a = np.eye(4)
    a[:3, :3] = np.diag(np.asarray(spacing, float))
    return a


def tracking_to_ras(points: np.ndarray, affine, spacing) -> np.ndarray:
    """Tracking-frame points (N, 3) to RAS mm."""
    ijk = np.asarray(points, float) / np.asarray(spacing, float)
    return ijk @ np.asarray(affine, float)[:3, :3].T + np.asarray(affine, float)[:3, 3]


def ras_to_tracking(points_ras: np.ndarray, affine, spacing) -> np.ndarray:
    """RAS mm (N, 3) to tracking-frame points."""
    inv = np.linalg.inv(np.asarray(affine, float))
    ijk = np.asarray(points_ras, float) @ inv[:3, :3].T + inv[:3, 3]
    return ijk * np.asarray(spacing, float)


def seed_points(seed_mask: np.ndarray, spacing, *, per_voxel: int = 1, random_seed: int = 1) -> np.ndarray:
    """Random seed positions (tracking frame, mm), ``per_voxel`` uniformly inside each voxel of
    ``seed_mask``; reproducible for a given ``random_seed``."""
    idx = np.argwhere(np.asarray(seed_mask, bool))
    if len(idx) == 0:
        return np.zeros((0, 3))
    rng = np.random.default_rng(random_seed)
    pts = np.repeat(idx, per_voxel, axis=0).astype(float)
    pts += rng.uniform(-0.5, 0.5, pts.shape)
    return pts * np.asarray(spacing, float)


def _assert_no_shear(affine) -> None:
    lin = np.asarray(affine, float)[:3, :3]
    gram = lin.T @ lin
    off = gram - np.diag(np.diag(gram))
    if np.abs(off).max() > 1e-4 * np.abs(np.diag(gram)).max():
        raise ValueError("the DWI affine has shear (non-orthogonal voxel axes); resample the DWI to a "
                         "regular grid before tracking")


def _stopping_criterion(tensors: TensorMaps, stop_mask: np.ndarray, fa_stop: float):
    from dipy.tracking.stopping_criterion import ThresholdStoppingCriterion

    fa = np.where(np.asarray(stop_mask, bool), tensors.fa, 0.0).astype(np.float64)
    return ThresholdStoppingCriterion(np.ascontiguousarray(fa), float(fa_stop))


class _ExactPeaks:
    """Peaks object for DIPY's EuDX tracker: one peak per voxel pointing at its own vertex."""

    def __init__(self, tensors: TensorMaps, stop_mask: np.ndarray):
        shape = tensors.fa.shape
        n = int(np.prod(shape))
        self.odf_vertices = np.ascontiguousarray(tensors.principal_direction_voxel().reshape(n, 3), dtype=float)
        bad = np.linalg.norm(self.odf_vertices, axis=1) < 0.5
        self.odf_vertices[bad] = (1.0, 0.0, 0.0)
        self.peak_indices = np.arange(n, dtype=np.int32).reshape(shape + (1,))
        values = np.where(np.asarray(stop_mask, bool), tensors.fa, 0.0)
        self.peak_values = np.ascontiguousarray(values[..., None], dtype=float)


def tensor_odf_sh(tensors: TensorMaps, mask: np.ndarray, *, sh_order: int = 6):
    """Tensor ODF ``(u^T D^-1 u)^(-3/2)`` raised to :data:`ODF_POWER` (voxel-axis frame) on
    DIPY's default sphere, fitted with spherical harmonics of order ``sh_order``.

    Returns ``(coefficients [i, j, k, n], sphere)``.
    """
    from dipy.data import default_sphere
    from dipy.reconst.shm import sf_to_sh

    sphere = default_sphere
    mask = np.asarray(mask, bool) & (tensors.evals[..., 2] > 0)
    ev = tensors.evals[mask]
    vecs = tensors.evecs[mask]
    proj = np.einsum("nij,vi->nvj", vecs, sphere.vertices)  # components along eigenvectors
    quad = np.sum(proj**2 / np.maximum(ev[:, None, :], 1e-12), axis=-1)
    odf = quad ** (-1.5 * ODF_POWER)
    odf /= odf.max(axis=1, keepdims=True)
    coeffs = sf_to_sh(odf, sphere, sh_order_max=sh_order, basis_type="descoteaux07", legacy=False)
    out = np.zeros(mask.shape + (coeffs.shape[-1],), np.float64)
    out[mask] = coeffs
    return out, sphere


def track(tensors: TensorMaps, seed_mask: np.ndarray, stop_mask: np.ndarray, *,
          params: TrackingParams | None = None, seeds_ras: np.ndarray | None = None,
          progress: Progress = no_progress) -> list[np.ndarray]:
    """Track streamlines from seeds in ``seed_mask`` (or at ``seeds_ras``) through the cord.

    Parameters
    ----------
    tensors : TensorMaps
        Tensor fit on the DWI grid.
    seed_mask : np.ndarray of bool [i, j, k]
        Seed region on the DWI grid (the cord, or a user ROI); ``params.seeds_per_voxel`` each.
    stop_mask : np.ndarray of bool [i, j, k]
        Canal region; tracking stops where it ends or where FA < ``params.fa_stop``.
    seeds_ras : np.ndarray (N, 3), optional
        Explicit seed points in RAS mm, used instead of ``seed_mask``.

    Returns
    -------
    list of np.ndarray (n_points, 3) float32
        Streamlines in RAS mm, at least ``params.min_length_mm`` long.
    """
    from dipy.tracking.tracker import eudx_tracking, probabilistic_tracking

    params = params or TrackingParams()
    _assert_no_shear(tensors.affine)
    spacing = tensors.spacing
    frame = scaled_voxel_affine(spacing)
    if seeds_ras is not None:
        seeds = ras_to_tracking(np.asarray(seeds_ras, float).reshape(-1, 3), tensors.affine, spacing)
    else:
        seeds = seed_points(seed_mask, spacing, per_voxel=params.seeds_per_voxel,
                            random_seed=params.random_seed)
    if len(seeds) == 0:
        return []
    progress(0.05, f"tracking from {len(seeds)} seeds ({params.algorithm})")
    sc = _stopping_criterion(tensors, stop_mask, params.fa_stop)
    common = dict(affine=frame, min_len=params.min_length_mm, max_len=params.max_length_mm,
                  step_size=params.step_size_mm, voxel_size=spacing, max_angle=params.max_angle_deg,
                  nbr_threads=params.n_threads, random_seed=params.random_seed)
    if params.algorithm == "deterministic":
        tractogram = eudx_tracking(np.ascontiguousarray(seeds), sc, pam=_ExactPeaks(tensors, stop_mask),
                                   pmf_threshold=params.fa_stop, **common)
    else:
        sh, sphere = tensor_odf_sh(tensors, stop_mask)
        tractogram = probabilistic_tracking(np.ascontiguousarray(seeds), sc, sh=sh, sphere=sphere,
                                            basis_type="descoteaux07", legacy=False, pmf_threshold=0.1,
                                            **common)
    progress(0.9, "streamlines to RAS")
    out = []
    for s in tractogram:
        s = np.asarray(s, float)
        if len(s) < 2:
            continue
        if np.sum(np.linalg.norm(np.diff(s, axis=0), axis=1)) < params.min_length_mm:
            continue
        out.append(tracking_to_ras(s, tensors.affine, spacing).astype(np.float32))
    progress(1.0, f"{len(out)} streamlines")
    return out
