"""DWI -> diffusion tensors with DIPY, and the scalar maps FA, MD, AD, RD (L1).

Frames: the DWI array is indexed ``[i, j, k]``; DIPY fits it with the gradient directions
expressed along the voxel axes (``DiffusionData.bvecs_voxel()``, i.e. ``R^T g_RAS`` with ``R``
the rotation of the DWI affine). Eigenvectors therefore come out in that orthonormal voxel-axis
frame; :meth:`TensorMaps.principal_direction_ras` and :meth:`TensorMaps.tensor_ras` rotate
them back into RAS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.core.dwi_io import B0_THRESHOLD, DiffusionData, rotation_of
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import Progress, no_progress

from .params import TensorFitParams

MIN_DIRECTIONS_FOR_TENSOR = 6


@dataclass
class TensorMaps:
    """Tensor fit results on the DWI grid.

    Attributes
    ----------
    affine : np.ndarray (4, 4)
        DWI ``ijk -> RAS`` (mm).
    mask : np.ndarray of bool [i, j, k]
        Voxels that were fitted.
    evals : np.ndarray [i, j, k, 3]
        Eigenvalues (mm^2/s), descending; zero outside the mask.
    evecs : np.ndarray [i, j, k, 3, 3]
        Eigenvectors as columns, in the voxel-axis frame (see module docstring).
    fa, md, ad, rd : np.ndarray [i, j, k] float32
        Fractional anisotropy (0..1), mean / axial / radial diffusivity (mm^2/s).
    s0 : np.ndarray [i, j, k] float32
        Mean b=0 signal.
    noise_sigma : float or None
        Noise standard deviation estimated from the fit residuals (signal units), when the
        acquisition has more volumes than tensor unknowns.
    method : str
    """

    affine: np.ndarray
    mask: np.ndarray
    evals: np.ndarray
    evecs: np.ndarray
    fa: np.ndarray
    md: np.ndarray
    ad: np.ndarray
    rd: np.ndarray
    s0: np.ndarray
    noise_sigma: float | None
    method: str

    @property
    def rotation(self) -> np.ndarray:
        """Rotation (or rotoreflection) from the voxel-axis frame to RAS."""
        return rotation_of(self.affine)

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def principal_direction_voxel(self) -> np.ndarray:
        """Unit principal eigenvectors ``[i, j, k, 3]`` in the voxel-axis frame."""
        return np.ascontiguousarray(self.evecs[..., :, 0])

    def principal_direction_ras(self) -> np.ndarray:
        """Unit principal eigenvectors ``[i, j, k, 3]`` in RAS (sign arbitrary)."""
        return self.principal_direction_voxel() @ self.rotation.T

    def tensor_ras(self) -> np.ndarray:
        """Diffusion tensors ``[i, j, k, 3, 3]`` in RAS (mm^2/s): ``R V diag(evals) V^T R^T``."""
        v = np.einsum("ab,...bc->...ac", self.rotation, self.evecs)
        return np.einsum("...ab,...b,...cb->...ac", v, self.evals, v)

    def scalar_volume(self, name: str) -> Volume:
        """``fa``, ``md``, ``ad``, ``rd`` or ``s0`` as a :class:`Volume` on the DWI grid."""
        if name not in ("fa", "md", "ad", "rd", "s0"):
            raise ValueError(f"unknown map {name!r}")
        units = {"fa": "", "s0": "signal"}.get(name, "mm^2/s")
        return Volume(getattr(self, name).astype(np.float32), self.affine.copy(), name.upper(), {"units": units})


def check_gradient_scheme(dwi: DiffusionData) -> None:
    """Raise :class:`InputError` when no tensor can be fitted (fewer than 6 directions)."""
    n = dwi.n_directions
    if n < MIN_DIRECTIONS_FOR_TENSOR:
        raise InputError("dwi", f"only {n} distinct gradient direction(s); a diffusion tensor needs at "
                         f"least {MIN_DIRECTIONS_FOR_TENSOR} (and tractography about 12 or more)")
    if len(dwi.bvals) != dwi.volume.array.shape[3] or len(dwi.bvecs_ras) != len(dwi.bvals):
        raise InputError("bval/bvec", f"{len(dwi.bvals)} b-values and {len(dwi.bvecs_ras)} directions for "
                         f"{dwi.volume.array.shape[3]} volumes")


def gradient_table_voxel(dwi: DiffusionData):
    """DIPY gradient table with directions along the DWI voxel axes."""
    from dipy.core.gradients import gradient_table

    bvecs = dwi.bvecs_voxel()
    bvecs[dwi.bvals <= B0_THRESHOLD] = 0.0
    return gradient_table(np.asarray(dwi.bvals, float), bvecs=bvecs, b0_threshold=B0_THRESHOLD)


def residual_noise_sigma(data: np.ndarray, predicted: np.ndarray, n_params: int = 7) -> float | None:
    """Pooled noise standard deviation from fit residuals ``data - predicted`` (N, n_volumes).

    Returns None when the number of volumes does not exceed ``n_params`` (no degrees of freedom).
    """
    n_vol = data.shape[-1]
    dof = n_vol - n_params
    if dof < 1 or data.shape[0] == 0:
        return None
    res = (data - predicted).astype(float)
    # median-based pooling is robust to a few outlier voxels
    per_voxel = np.sum(res**2, axis=-1) / dof
    return float(np.sqrt(np.median(per_voxel)))


def wls_fit(gtab, signals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least-squares tensor fit of ``signals`` (N, n_volumes) with DIPY's log-linear
    model (``dti.design_matrix``, OLS-predicted signals as weights, Chung et al. 2006, exactly
    as ``dti.wls_fit_tensor``) and DIPY's eigen-decomposition (``dti.eig_from_lo_tri``).

    The weighted normal equations ``(X^T W X) b = X^T W y`` are solved as a batch of 7x7
    systems instead of DIPY's per-voxel pseudo-inverse of the 7 x n_volumes weighted design
    (same solution for a full-rank design, several times faster).

    Returns
    -------
    evals (N, 3) mm^2/s descending, evecs (N, 3, 3) columns, predicted signals (N, n_volumes).
    """
    from dipy.reconst import dti

    x = dti.design_matrix(gtab)
    y = np.log(np.maximum(signals, dti.MIN_POSITIVE_SIGNAL))
    beta_ols = y @ np.linalg.pinv(x).T
    w2 = np.exp(2.0 * (beta_ols @ x.T))  # squared OLS-predicted signals: the WLS weights
    outer = (x[:, :, None] * x[:, None, :]).reshape(len(x), -1)  # rows x_k x_k^T, flattened
    lhs = (w2 @ outer).reshape(-1, x.shape[1], x.shape[1])
    rhs = (w2 * y) @ x
    beta = np.linalg.solve(lhs, rhs[..., None])[..., 0]
    eig = dti.eig_from_lo_tri(beta, min_diffusivity=1e-6 / -x.min())
    predicted = np.exp(beta @ x.T)
    return eig[:, :3], eig[:, 3:].reshape(-1, 3, 3), predicted


def fit_tensors(dwi: DiffusionData, mask: np.ndarray, *, params: TensorFitParams | None = None,
                progress: Progress = no_progress) -> TensorMaps:
    """Fit a diffusion tensor in every voxel of ``mask`` with DIPY.

    Parameters
    ----------
    dwi : DiffusionData
        4D DWI with gradients in RAS.
    mask : np.ndarray of bool [i, j, k]
        Fit mask on the DWI grid (cord + canal resampled from the anatomy).
    params : TensorFitParams
        ``method`` WLS (default), OLS, NLLS or RT (RESTORE).

    Raises
    ------
    InputError
        Fewer than 6 gradient directions, or a mask without any voxel.
    """
    from dipy.reconst.dti import TensorModel

    params = params or TensorFitParams()
    check_gradient_scheme(dwi)
    mask = np.asarray(mask, bool)
    if mask.shape != dwi.volume.shape3:
        raise ValueError(f"mask shape {mask.shape} differs from the DWI grid {dwi.volume.shape3}")
    if not mask.any():
        raise InputError("cord segmentation", "the cord mask covers no voxel of the DWI")
    gtab = gradient_table_voxel(dwi)
    data = dwi.volume.array
    b0 = data[..., gtab.b0s_mask].mean(axis=-1).astype(np.float32)
    vox = data[mask].astype(np.float64)
    progress(0.1, f"fitting {int(mask.sum())} tensors ({params.method})")
    ev, vecs, predicted = wls_fit(gtab, vox)
    sigma = residual_noise_sigma(vox, predicted)
    if params.method != "WLS":
        kwargs = {}
        if params.method == "RT":
            if sigma is None:
                raise InputError("dwi", "robust (RESTORE) fitting needs more volumes than the 7 tensor "
                                 "unknowns to estimate the noise; use WLS")
            kwargs["sigma"] = sigma
        dipy_method = {"RT": "RESTORE"}.get(params.method, params.method)
        fit = TensorModel(gtab, fit_method=dipy_method, **kwargs).fit(vox)
        ev, vecs = fit.evals, fit.evecs
    progress(0.8, "tensor maps")
    shape = mask.shape
    evals = np.zeros(shape + (3,), np.float64)
    evecs = np.zeros(shape + (3, 3), np.float64)
    ev = np.clip(np.nan_to_num(ev), 0.0, None)
    evals[mask] = ev
    evecs[mask] = np.nan_to_num(vecs)
    maps = {}
    md = ev.mean(axis=-1)
    ad = ev[:, 0]
    rd = ev[:, 1:].mean(axis=-1)
    num = np.sqrt(((ev - md[:, None]) ** 2).sum(axis=-1))
    den = np.sqrt((ev**2).sum(axis=-1))
    fa = np.where(den > 0, np.sqrt(1.5) * num / np.maximum(den, 1e-30), 0.0)
    for name, values in (("fa", np.clip(fa, 0.0, 1.0)), ("md", md), ("ad", ad), ("rd", rd)):
        full = np.zeros(shape, np.float32)
        full[mask] = values
        maps[name] = full
    progress(1.0, "tensors fitted")
    return TensorMaps(dwi.volume.affine.copy(), mask, evals, evecs, maps["fa"], maps["md"], maps["ad"],
                      maps["rd"], b0, sigma, params.method)
