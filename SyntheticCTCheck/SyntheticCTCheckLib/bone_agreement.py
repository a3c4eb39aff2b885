"""Agreement of a synthetic CT with the CT in bone: MAE and Bland-Altman bias (L1).

Shows that a synthetic CT can be fine in bone (what it was trained and validated on) yet
wrong in an intradural lesion. Differences are synthetic CT minus CT, in HU, over the
voxel pairs of a bone mask: the vertebra segmentation when there is one, else CT voxels
above a bone threshold; voxels near the lesion are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.core.volume import Volume

from .masks import crop_box, distance_from_mask_mm
from .params import BoneParams


@dataclass
class BoneAgreement:
    """Bland-Altman summary of synthetic CT - CT in bone (HU).

    ``mae_hu`` mean absolute difference; ``bias_hu`` mean difference (negative: synthetic CT
    darker); ``loa_hu`` 95 % limits of agreement (bias +- 1.96 SD). All None when too few
    bone voxels (``reason`` says why).
    """

    mae_hu: float | None
    bias_hu: float | None
    sd_hu: float | None
    loa_hu: tuple[float, float] | None
    n_voxels: int
    source: str
    reason: str = ""

    def as_dict(self) -> dict:
        r = lambda v: None if v is None else round(float(v), 1)  # noqa: E731
        return {
            "mae_hu": r(self.mae_hu),
            "bias_hu": r(self.bias_hu),
            "sd_hu": r(self.sd_hu),
            "loa_hu": None if self.loa_hu is None else [r(self.loa_hu[0]), r(self.loa_hu[1])],
            "n_voxels": int(self.n_voxels),
            "source": self.source,
            "difference": "synthetic CT - CT",
            "reason": self.reason,
        }


def bone_agreement(ct: Volume, sct_on_ct: np.ndarray, *, vertebrae: np.ndarray | None = None,
                   lesion: np.ndarray | None = None, params: BoneParams | None = None) -> BoneAgreement:
    """MAE and Bland-Altman bias of the synthetic CT against the CT in bone.

    Parameters
    ----------
    ct : Volume
        CT in HU.
    sct_on_ct : np.ndarray
        Synthetic CT (HU) sampled on ``ct``'s grid in the same world frame; NaN where it has
        no data.
    vertebrae : array on ``ct``'s grid, optional
        Vertebra label map (non-zero = bone). Without it, bone is ``CT >= params.bone_hu``.
    lesion : bool array on ``ct``'s grid, optional
        Lesion ROI; voxels within ``params.exclude_lesion_margin_mm`` of it are excluded.
    params : BoneParams
    """
    params = params or BoneParams()
    if sct_on_ct.shape != ct.shape3:
        raise ValueError(f"sct_on_ct has shape {sct_on_ct.shape}, CT grid is {ct.shape3}")
    if vertebrae is not None and np.any(vertebrae):
        mask = vertebrae > 0
        source = "vertebra segmentation"
    else:
        mask = ct.array >= params.bone_hu
        source = f"CT >= {params.bone_hu:g} HU"
    mask = mask & np.isfinite(sct_on_ct)
    if lesion is not None and np.any(lesion):
        box = crop_box(lesion, ct.spacing, params.exclude_lesion_margin_mm + 1.0)
        near = distance_from_mask_mm(lesion[box] > 0, ct.spacing) <= params.exclude_lesion_margin_mm
        mask[box] &= ~near
    n = int(mask.sum())
    if n < params.min_voxels:
        return BoneAgreement(None, None, None, None, n, source,
                             reason=f"only {n} bone voxels covered by both images (need {params.min_voxels})")
    diff = sct_on_ct[mask].astype(np.float64) - ct.array[mask].astype(np.float64)
    bias = float(diff.mean())
    sd = float(diff.std(ddof=1))
    return BoneAgreement(float(np.abs(diff).mean()), bias, sd, (bias - 1.96 * sd, bias + 1.96 * sd), n, source)
