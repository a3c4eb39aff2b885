"""Calcification class from HU, and MRI signal voids that suggest calcification (L1).

* :func:`classify_calcification` turns the ROI's mean HU and calcified fraction into one of
  ``none / faint / partial / dense`` with the rule that fired, so the report can show the
  cut-offs next to the class (no single cut-off is supported by the literature).
* :func:`detect_signal_voids` looks for signal voids inside the lesion on a gradient-echo (T2*)
  or susceptibility-weighted image. Calcium (and blood products) shorten T2* and appear dark;
  a void inside the lesion means "MRI suggests calcification", so a synthetic CT that shows
  none can be flagged before any CT exists. CT remains the reference; phase images (SWI) would
  separate calcium (diamagnetic) from haemosiderin (paramagnetic), which is not done here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.core.geometry import resample_mask_like
from SpinePlannerLib.core.volume import Volume

from .masks import crop_box, mm3_to_voxels, padded, remove_small_components, shell_mask
from .params import CLASSES, ClassCutoffs, VoidParams


def classify_calcification(mean_hu: float, calcified_fraction: float,
                           cutoffs: ClassCutoffs | None = None) -> tuple[str, str]:
    """Calcification class and the rule that produced it.

    Parameters
    ----------
    mean_hu : float
        Mean HU in the lesion ROI.
    calcified_fraction : float
        Fraction (0..1) of ROI voxels at or above the calcified threshold.
    cutoffs : ClassCutoffs

    Returns
    -------
    (class, reason) : the highest class either rule reaches, and a sentence naming the
    values and the cut-offs that decided it.
    """
    c = cutoffs or ClassCutoffs()
    by_mean = 0
    for level, cut in ((1, c.faint_mean_hu), (2, c.partial_mean_hu), (3, c.dense_mean_hu)):
        if mean_hu >= cut:
            by_mean = level
    by_frac = 0
    for level, cut in ((1, c.faint_fraction), (2, c.partial_fraction)):
        if calcified_fraction >= cut:
            by_frac = level
    level = max(by_mean, by_frac)
    name = CLASSES[level]
    mean_txt = f"mean {mean_hu:.0f} HU"
    frac_txt = f"calcified fraction {100 * calcified_fraction:.1f} %"
    if level == 0:
        reason = (f"{mean_txt} < {c.faint_mean_hu:g} HU and {frac_txt} < {100 * c.faint_fraction:g} %")
    elif by_mean >= by_frac:
        cut = (c.faint_mean_hu, c.partial_mean_hu, c.dense_mean_hu)[level - 1]
        reason = f"{mean_txt} >= {cut:g} HU ({name} cut-off)"
    else:
        cut = (c.faint_fraction, c.partial_fraction)[level - 1]
        reason = f"{frac_txt} >= {100 * cut:g} % ({name} cut-off)"
    return name, reason


def class_rank(name: str) -> int:
    """0 for none ... 3 for dense."""
    return CLASSES.index(name)


@dataclass
class VoidResult:
    """Signal voids inside the lesion on a T2*/SWI image."""

    suggests_calcification: bool
    void_volume_mm3: float
    void_fraction: float
    reference_signal: float | None
    void_threshold: float | None
    sequence: str
    mask: Volume | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "sequence": self.sequence,
            "suggests_calcification": bool(self.suggests_calcification),
            "void_volume_mm3": round(self.void_volume_mm3, 1),
            "void_fraction": round(self.void_fraction, 4),
            "reference_signal": None if self.reference_signal is None else round(self.reference_signal, 3),
            "void_threshold": None if self.void_threshold is None else round(self.void_threshold, 3),
            "reason": self.reason,
        }


def detect_signal_voids(image: Volume, roi: Volume, *, params: VoidParams | None = None,
                        sequence: str = "gre") -> VoidResult:
    """Signal voids inside the lesion on a gradient-echo (T2*) or SWI magnitude image.

    Parameters
    ----------
    image : Volume
        T2*-weighted gradient-echo or SWI magnitude image (any grid, RAS).
    roi : Volume
        Lesion mask on any grid overlapping ``image``; carried to ``image``'s grid through
        world coordinates.
    params : VoidParams
    sequence : str
        ``"gre"`` or ``"swi"``, reported as given.

    Returns
    -------
    VoidResult
        ``suggests_calcification`` when the voids (voxels darker than ``void_ratio`` times the
        median of the surrounding shell, specks removed) reach ``min_void_volume_mm3``.

    Raises
    ------
    ValueError
        When the ROI covers no voxel of ``image``.
    """
    params = params or VoidParams()
    roi_g = resample_mask_like(padded(roi), image)
    m_full = roi_g.array > 0
    if not m_full.any():
        raise ValueError("the lesion ROI covers no voxel of the gradient-echo/SWI image")
    box = crop_box(m_full, image.spacing, params.shell_outer_mm + 2.0)
    data = image.array[box].astype(np.float32)
    m = m_full[box]
    shell = shell_mask(m, image.spacing, params.shell_inner_mm, params.shell_outer_mm)
    shell &= data > 0
    if int(shell.sum()) < 10:
        return VoidResult(False, 0.0, 0.0, None, None, sequence,
                          reason="too few voxels around the lesion to define the surrounding signal")
    reference = float(np.median(data[shell]))
    if reference <= 0:
        return VoidResult(False, 0.0, 0.0, reference, None, sequence,
                          reason="surrounding signal is zero; the image cannot show voids")
    threshold = params.void_ratio * reference
    voids = remove_small_components(m & (data < threshold), mm3_to_voxels(image, params.min_component_mm3))
    vol_mm3 = float(voids.sum()) * image.voxel_volume_ml * 1000.0
    frac = float(voids.sum()) / float(m.sum())
    suggests = vol_mm3 > 0 and vol_mm3 >= params.min_void_volume_mm3
    full = np.zeros(image.shape3, np.uint8)
    full[box] = voids
    reason = (f"{vol_mm3:.0f} mm^3 ({100 * frac:.1f} % of the lesion) below {params.void_ratio:g} x the surrounding "
              f"signal; voids of at least {params.min_void_volume_mm3:g} mm^3 suggest calcification "
              "(or blood products)")
    return VoidResult(bool(suggests), vol_mm3, frac, reference, threshold, sequence,
                      mask=image.with_array(full, name="signal_voids"), reason=reason)
