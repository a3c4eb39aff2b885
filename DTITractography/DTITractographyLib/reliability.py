"""Can this acquisition support tractography? (L1)

CLINICAL.md §3: with fewer than about 12-15 gradient directions, slices thicker than about
5 mm or a low SNR, the software says "insufficient for tractography" and gives no
resectability class. The limits are :class:`~DTITractographyLib.params.ReliabilityParams`.

SNR is the median b=0 signal in the cord over the noise sigma, sigma estimated (in order of
preference) from the tensor-fit residuals (needs more than 7 volumes), from the difference of
two b=0 volumes, or from DIPY's local-variance estimator on the b=0 image (least reliable,
biased by anatomy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from SpinePlannerLib.core.dwi_io import B0_THRESHOLD, DiffusionData

from .params import ReliabilityParams
from .tensor_fit import TensorMaps


@dataclass
class Reliability:
    """Verdict on the acquisition, with its evidence."""

    reliable: bool
    reasons: list[str] = field(default_factory=list)
    n_directions: int = 0
    voxel_size_mm: tuple = ()
    snr: float | None = None
    snr_method: str = ""

    def evidence(self) -> dict:
        return {"n_directions": self.n_directions,
                "voxel_size_mm": [round(float(v), 3) for v in self.voxel_size_mm],
                "snr": None if self.snr is None else round(float(self.snr), 1),
                "snr_method": self.snr_method}


def estimate_snr(dwi: DiffusionData, mask: np.ndarray | None, tensors: TensorMaps | None = None) -> tuple[float | None, str]:
    """(SNR, method) of the b=0 signal inside ``mask`` (DWI grid); see module docstring."""
    b0_idx = np.flatnonzero(dwi.bvals <= B0_THRESHOLD)
    data = dwi.volume.array
    b0 = data[..., b0_idx].mean(axis=-1)
    where = ""
    if mask is None or not np.any(mask):
        mask = b0 >= np.percentile(b0, 75)
        where = " in the brightest quarter of the b=0 image (no cord mask)"
    mask = np.asarray(mask, bool)
    signal = float(np.median(b0[mask]))
    if tensors is not None and tensors.noise_sigma:
        return signal / tensors.noise_sigma, "tensor-fit residuals"
    if len(b0_idx) >= 2:
        diff = data[..., b0_idx[0]][mask].astype(float) - data[..., b0_idx[1]][mask].astype(float)
        sigma = float(np.std(diff) / np.sqrt(2.0))
        if sigma > 0:
            return signal / sigma, "difference of two b=0 volumes" + where
    from dipy.denoise.noise_estimate import estimate_sigma

    sigma_map = np.asarray(estimate_sigma(b0[..., None].astype(np.float64), N=0), float)
    sigma = float(np.ravel(sigma_map)[0])
    if sigma <= 0:
        return None, "not estimable"
    return signal / sigma, "local variance of the b=0 image (approximate)" + where


def assess_reliability(dwi: DiffusionData, *, mask: np.ndarray | None = None, tensors: TensorMaps | None = None,
                       params: ReliabilityParams | None = None) -> Reliability:
    """Check directions, voxel size and SNR against ``params``; ``reliable`` is False with the
    reasons when any limit is violated."""
    params = params or ReliabilityParams()
    reasons = []
    n_dir = dwi.n_directions
    if n_dir < params.min_directions:
        reasons.append(f"only {n_dir} gradient directions (tractography needs about {params.min_directions} or more)")
    spacing = dwi.volume.spacing
    if spacing.max() > params.max_voxel_mm:
        reasons.append(f"voxels {spacing.max():.1f} mm thick along one axis (slices thicker than "
                       f"{params.max_voxel_mm:g} mm blur the cord's tracts)")
    snr, method = estimate_snr(dwi, mask, tensors)
    if snr is not None and snr < params.min_snr:
        reasons.append(f"low signal-to-noise ratio (b=0 SNR about {snr:.1f}, below {params.min_snr:g}; "
                       f"estimated from {method})")
    return Reliability(not reasons, reasons, n_dir, tuple(float(s) for s in spacing), snr, method)
