"""Diffusion MRI input: 4D NIfTI + FSL bval/bvec, or NRRD DWI, with gradients in world RAS.

FSL convention: bvecs are given along the image's voxel axes; when the voxel-to-world affine
has a positive determinant, FSL's voxel frame has its x axis flipped relative to the stored i
axis. World (RAS) gradient directions are therefore ``R @ (flip * bvec)`` where ``R`` is the
rotation part of the affine (polar decomposition, so shears and anisotropic voxels are fine).
NRRD DWI gradients are given in the NRRD ``space`` through the ``measurement frame``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import read_volume, volume_from_sitk
from SpinePlannerLib.core.volume import Volume

B0_THRESHOLD = 50.0
"""b-values (s/mm^2) at or below this are treated as non-diffusion-weighted (b0)."""


@dataclass
class DiffusionData:
    """A DWI series with its gradient table in world coordinates.

    Attributes
    ----------
    volume : Volume
        4D image ``[i, j, k, n]`` with its ``ijk -> RAS`` affine.
    bvals : np.ndarray (n,)
        b-values in s/mm^2.
    bvecs_ras : np.ndarray (n, 3)
        Unit gradient directions in RAS world coordinates (zero rows for b0 volumes).
    """

    volume: Volume
    bvals: np.ndarray
    bvecs_ras: np.ndarray

    @property
    def n_directions(self) -> int:
        """Number of distinct diffusion-weighted directions (antipodal pairs count once)."""
        dw = self.bvecs_ras[self.bvals > B0_THRESHOLD]
        if len(dw) == 0:
            return 0
        unique: list[np.ndarray] = []
        for v in dw:
            if not any(abs(float(np.dot(v, u))) > np.cos(np.deg2rad(1.0)) for u in unique):
                unique.append(v)
        return len(unique)

    def bvecs_voxel(self) -> np.ndarray:
        """Gradient directions expressed along the voxel axes (i, j, k) — what DIPY's
        ``gradient_table`` expects together with data indexed ``[i, j, k]``."""
        rot = rotation_of(self.volume.affine)
        return self.bvecs_ras @ rot  # R^T v for each row


def rotation_of(affine) -> np.ndarray:
    """Closest rotation (or rotoreflection) to the 3x3 part of ``affine`` (polar decomposition)."""
    u, _, vt = np.linalg.svd(np.asarray(affine, float)[:3, :3])
    return u @ vt


def unit_rows(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; rows shorter than 1e-6 (b0 volumes) become zero."""
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    out = np.zeros_like(vecs)
    ok = norms[:, 0] > 1e-6
    out[ok] = vecs[ok] / norms[ok]
    return out


def fsl_bvecs_to_ras(bvecs: np.ndarray, affine) -> np.ndarray:
    """FSL bvecs (n, 3) along voxel axes to unit RAS world directions (see module docstring)."""
    v = np.asarray(bvecs, float).copy()
    if np.linalg.det(np.asarray(affine, float)[:3, :3]) > 0:
        v[:, 0] *= -1.0
    return unit_rows(v @ rotation_of(affine).T)


def ras_to_fsl_bvecs(bvecs_ras: np.ndarray, affine) -> np.ndarray:
    """Inverse of :func:`fsl_bvecs_to_ras` (used to write phantom and exported gradient files)."""
    v = np.asarray(bvecs_ras, float) @ rotation_of(affine)
    if np.linalg.det(np.asarray(affine, float)[:3, :3]) > 0:
        v[:, 0] *= -1.0
    return v


def read_bvals_bvecs(bval_path, bvec_path, n_volumes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read FSL bval/bvec text files. bvec may be 3 rows x n or n rows x 3."""
    try:
        bvals = np.loadtxt(bval_path, dtype=float).ravel()
    except (OSError, ValueError) as exc:
        raise InputError("bval", f"cannot read b-values from {bval_path} ({exc})") from None
    try:
        bvecs = np.loadtxt(bvec_path, dtype=float, ndmin=2)
    except (OSError, ValueError) as exc:
        raise InputError("bvec", f"cannot read gradient directions from {bvec_path} ({exc})") from None
    if bvecs.shape[0] == 3 and bvecs.shape[1] != 3:
        bvecs = bvecs.T
    elif bvecs.shape == (3, 3):
        pass  # ambiguous but symmetric in meaning only if one layout; assume one row per volume
    if bvecs.ndim != 2 or bvecs.shape[1] != 3:
        raise InputError("bvec", f"expected 3 rows or 3 columns, got shape {bvecs.shape}")
    if len(bvals) != n_volumes:
        raise InputError("bval", f"has {len(bvals)} values but the DWI has {n_volumes} volumes")
    if len(bvecs) != n_volumes:
        raise InputError("bvec", f"has {len(bvecs)} directions but the DWI has {n_volumes} volumes")
    return bvals, bvecs


def validate_dwi(dwi: DiffusionData, name: str) -> DiffusionData:
    """Reject unusable gradient tables and b0 volumes with an :class:`InputError` naming the input."""
    if dwi.bvals.min() < 0:
        raise InputError("bval", "negative b-values")
    dw = dwi.bvals > B0_THRESHOLD
    if not np.any(dw):
        if dwi.bvals.max() > 0:
            raise InputError("bval", f"largest b-value is {dwi.bvals.max():g}: looks like the wrong unit "
                             "(expected s/mm^2, e.g. 800, not 0.8 ms/um^2)")
        raise InputError("bval", "no diffusion-weighted volumes (all b-values are 0)")
    if not np.any(~dw):
        raise InputError("bval", "no b=0 volume; tensor fitting needs at least one")
    b0 = dwi.volume.array[..., ~dw]
    if not np.any(b0 > 0):
        raise InputError(name, "the b=0 volume(s) are all zero")
    norms = np.linalg.norm(dwi.bvecs_ras[dw], axis=1)
    if np.any(norms < 0.5):
        raise InputError("bvec", "diffusion-weighted volume(s) with a zero gradient direction")
    return dwi


def read_dwi(dwi_path, bval_path=None, bvec_path=None) -> DiffusionData:
    """Read a DWI: 4D NIfTI with FSL bval/bvec, or a NRRD DWI (gradients in its header)."""
    p = Path(dwi_path)
    if p.exists() and p.suffix.lower() in (".nrrd", ".nhdr") and bval_path is None:
        return validate_dwi(_read_nrrd_dwi(p), "dwi")
    vol = read_volume(p, "dwi", allow_4d=True)
    if vol.array.ndim != 4 or vol.array.shape[3] < 2:
        raise InputError("dwi", f"expected a 4D diffusion series, got a 3D image of shape {vol.shape3}")
    if bval_path is None or bvec_path is None:
        raise InputError("dwi", "a NIfTI DWI needs its b-values and gradient directions (bval and bvec files)")
    bvals, bvecs = read_bvals_bvecs(bval_path, bvec_path, vol.array.shape[3])
    vol.array = vol.array.astype(np.float32, copy=False)
    return validate_dwi(DiffusionData(vol, bvals, fsl_bvecs_to_ras(bvecs, vol.affine)), "dwi")


def _read_nrrd_dwi(path: Path) -> DiffusionData:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError("dwi", f"not a readable NRRD ({str(exc).splitlines()[0][:120]})") from None
    keys = {k: image.GetMetaData(k) for k in image.GetMetaDataKeys()}
    if "DWMRI_b-value" not in keys:
        raise InputError("dwi", "NRRD has no DWMRI_b-value key: not a DWI NRRD")
    vol = volume_from_sitk(image, "dwi")
    if vol.array.ndim != 4:
        raise InputError("dwi", "NRRD DWI must have a vector (list) axis of gradient volumes")
    vol.array = vol.array.astype(np.float32, copy=False)
    bmax = float(keys["DWMRI_b-value"])
    n = vol.array.shape[3]
    grads = np.zeros((n, 3))
    for i in range(n):
        g = keys.get(f"DWMRI_gradient_{i:04d}")
        if g is None:
            raise InputError("dwi", f"NRRD DWI lacks DWMRI_gradient_{i:04d}")
        grads[i] = [float(x) for x in g.split()]
    mf = np.eye(3)
    mf_text = keys.get("NRRD_measurement frame")
    if mf_text:
        nums = [float(x) for x in mf_text.replace("(", " ").replace(")", " ").replace(",", " ").split()]
        if len(nums) == 9:
            mf = np.array(nums).reshape(3, 3).T  # NRRD lists column vectors
    space = keys.get("NRRD_space", "left-posterior-superior").lower()
    g_space = grads @ mf.T
    if space.startswith("left-posterior"):
        g_space = g_space * np.array([-1.0, -1.0, 1.0])
    norms = np.linalg.norm(grads, axis=1)
    bvals = bmax * norms**2
    return DiffusionData(vol, bvals, unit_rows(g_space))
