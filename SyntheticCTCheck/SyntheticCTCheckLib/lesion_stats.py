"""Lesion density, visibility and size inside a tumour ROI on one CT-like image (L1).

What is measured, per image (CT or synthetic CT), with the ROI already on the image's grid:

* HU statistics of the ROI voxels: mean, median, 95th percentile, maximum;
* calcified voxels: HU >= ``calcified_hu`` (fraction of the ROI and volume in mL);
* the *hyperdense* part of the lesion: ROI voxels exceeding the surrounding soft tissue
  (median of a shell around the ROI, bone/fat/air excluded) by ``visibility_contrast_hu``,
  after a 3x3x3 median filter and removal of specks;
* visibility: the hyperdense part is at least ``min_visible_volume_mm3``;
* maximal axial diameter (perpendicular to the cord axis) and cranio-caudal extent (along it)
  of the visible lesion, with :mod:`SpinePlannerLib.measurement.lesion` — 0 when not visible, as in the
  published comparison (CT 13.8 x 16 mm vs synthetic CT 0 x 0 mm). The visible lesion is the
  hyperdense part's connected region above half way between the surroundings and its median
  (its perceived border, never below the visibility threshold), inside the ROI or up to
  ``roi_margin_mm`` beyond it (not into vertebrae): an ROI carried from a coarser MRI grid
  loses up to half a voxel at its border.

Coordinates: RAS millimetres; the cord axis is a unit RAS vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import SUPERIOR, lesion_widths_mm

from .calcification import classify_calcification
from .masks import (
    crop_box,
    crop_volume,
    distance_from_mask_mm,
    mm3_to_voxels,
    remove_small_components,
    shell_mask,
)
from .params import ClassCutoffs, LesionParams

FALLBACK_SOFT_TISSUE_HU = 20.0
"""Surrounding-tissue value (HU, between CSF and cord) used when no shell voxel is usable."""


def require_hounsfield(volume: Volume, name: str) -> None:
    """Reject an image that is not in Hounsfield units.

    A CT in HU of a patient always holds negative values (air about -1000 HU, fat about
    -100 HU, and noise around water/CSF at 0 HU). Stored raw detector values without the
    DICOM rescale (typically HU + 1024, unsigned) have none, and normalised images have too
    small a range.

    Raises
    ------
    InputError
        Naming ``name`` and saying how to fix the image.
    """
    arr = volume.array
    lo, hi = float(np.min(arr)), float(np.max(arr))
    if lo >= 0:
        raise InputError(name, f"values range {lo:g}..{hi:g} with nothing below 0: this does not look like "
                         "Hounsfield units (air is about -1000 HU, fat about -100 HU); apply the DICOM rescale "
                         "slope/intercept (often HU = value - 1024) or export the image in HU")
    p_lo, p_hi = np.percentile(arr, [0.5, 99.5])
    if p_hi - p_lo < 100:
        raise InputError(name, f"99 % of the values lie within {p_lo:.3g}..{p_hi:.3g}: too narrow for Hounsfield "
                         "units (a normalised image?); give the CT in HU")


# -- per-image statistics ---------------------------------------------------------------------
@dataclass
class LesionStats:
    """What one image shows inside the lesion ROI (HU, mL, mm)."""

    mean_hu: float
    median_hu: float
    p95_hu: float
    max_hu: float
    roi_volume_ml: float
    calcified_fraction: float
    calcified_volume_ml: float
    surrounding_hu: float | None
    hyperdense_threshold_hu: float
    hyperdense_volume_ml: float
    visible: bool
    size_threshold_hu: float | None
    lesion_axial_diameter_mm: float
    lesion_craniocaudal_mm: float
    calcification_class: str
    class_reason: str
    notes: list[str] = field(default_factory=list)
    hyperdense: Volume | None = field(default=None, repr=False)
    calcified: Volume | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        """The plan.json view (rounded; masks left out)."""
        return {
            "mean_hu": round(self.mean_hu, 1),
            "median_hu": round(self.median_hu, 1),
            "p95_hu": round(self.p95_hu, 1),
            "max_hu": round(self.max_hu, 1),
            "roi_volume_ml": round(self.roi_volume_ml, 3),
            "calcified_fraction": round(self.calcified_fraction, 4),
            "calcified_volume_ml": round(self.calcified_volume_ml, 3),
            "surrounding_hu": None if self.surrounding_hu is None else round(self.surrounding_hu, 1),
            "hyperdense_threshold_hu": round(self.hyperdense_threshold_hu, 1),
            "hyperdense_volume_ml": round(self.hyperdense_volume_ml, 3),
            "visible": bool(self.visible),
            "size_threshold_hu": None if self.size_threshold_hu is None else round(self.size_threshold_hu, 1),
            # a lesion not seen has no size: null (the cohort table counts it as 0 mm, as published)
            "lesion_axial_diameter_mm": round(self.lesion_axial_diameter_mm, 2) if self.visible else None,
            "lesion_craniocaudal_mm": round(self.lesion_craniocaudal_mm, 2) if self.visible else None,
            "calcification_class": self.calcification_class,
            "class_reason": self.class_reason,
            "notes": list(self.notes),
        }


def measure_lesion(image: Volume, roi: Volume, *, axis=SUPERIOR, params: LesionParams | None = None,
                   cutoffs: ClassCutoffs | None = None, exclude_from_surroundings: np.ndarray | None = None,
                   valid: np.ndarray | None = None) -> LesionStats:
    """Density, visibility and size of the lesion in ``roi`` on ``image``.

    Parameters
    ----------
    image : Volume
        CT or synthetic CT in HU (3D).
    roi : Volume
        Lesion mask on ``image``'s grid (non-zero = lesion), e.g. from
        :func:`SpinePlannerLib.core.geometry.resample_mask_like`.
    axis : array (3,)
        Unit RAS direction of the cord (canal) axis: axial diameters are measured in planes
        perpendicular to it, the cranio-caudal extent along it.
    params : LesionParams
    cutoffs : ClassCutoffs
    exclude_from_surroundings : bool array on the image grid, optional
        Voxels never used as surrounding soft tissue (e.g. vertebrae).
    valid : bool array on the image grid, optional
        Voxels where the image has data (False outside a resampled field of view).

    Returns
    -------
    LesionStats (masks ``hyperdense`` and ``calcified`` as Volumes on the image grid).

    Raises
    ------
    ValueError
        When the ROI has no voxel on the image (carry it with ``resample_mask_like`` first).
    """
    params = params or LesionParams()
    cutoffs = cutoffs or ClassCutoffs()
    if not image.same_grid(roi):
        raise ValueError("measure_lesion: roi must be on the image grid (use geometry.resample_mask_like)")
    in_roi = roi.array > 0
    if valid is not None:
        in_roi = in_roi & valid
    if not in_roi.any():
        raise ValueError("measure_lesion: the ROI has no voxel with data on this image")
    notes: list[str] = []
    box = crop_box(in_roi, image.spacing, params.shell_outer_mm + 2.0)
    sub = crop_volume(image, box)
    m = in_roi[box]
    data = sub.array.astype(np.float32)
    values = data[m]
    voxel_ml = image.voxel_volume_ml

    calcified = m & (data >= params.calcified_hu)
    n_calc = int(calcified.sum())

    # surrounding soft tissue: a shell around the ROI, bone/fat/air and missing data excluded
    shell = shell_mask(m, image.spacing, params.shell_inner_mm, params.shell_outer_mm)
    lo, hi = params.soft_tissue_range_hu
    shell &= (data >= lo) & (data <= hi)
    if exclude_from_surroundings is not None:
        shell &= ~exclude_from_surroundings[box]
    if valid is not None:
        shell &= valid[box]
    if int(shell.sum()) >= 10:
        surrounding = float(np.median(data[shell]))
    else:
        surrounding = None
        notes.append(f"too few soft-tissue voxels around the ROI; surrounding tissue taken as "
                     f"{FALLBACK_SOFT_TISSUE_HU:g} HU")
    threshold = (surrounding if surrounding is not None else FALLBACK_SOFT_TISSUE_HU) + params.visibility_contrast_hu

    smooth = ndimage.median_filter(data, size=3, mode="nearest") if params.denoise else data
    bright = smooth >= threshold
    if valid is not None:
        bright &= valid[box]
    hyper = remove_small_components(m & bright, mm3_to_voxels(image, params.min_component_mm3))
    hyper_ml = float(hyper.sum()) * voxel_ml
    visible = bool(hyper.any() and hyper_ml * 1000.0 >= params.min_visible_volume_mm3)
    size_level = None
    if visible:
        # the visible lesion's edge: half way between the surroundings and the hyperdense part's
        # median (what a reader sees as its border), never below the visibility threshold
        ref = surrounding if surrounding is not None else FALLBACK_SOFT_TISSUE_HU
        size_level = max(threshold, ref + 0.5 * (float(np.median(smooth[hyper])) - ref))
        region = m.copy()
        if params.roi_margin_mm > 0:
            region |= distance_from_mask_mm(m, image.spacing) <= params.roi_margin_mm
            if exclude_from_surroundings is not None:
                region &= m | ~exclude_from_surroundings[box]
        raw = data >= size_level  # unfiltered: a median filter would round off the lesion's tips
        if valid is not None:
            raw &= valid[box]
        lab, _ = ndimage.label(region & raw)
        keep = np.unique(lab[hyper & (lab > 0)])
        sized = np.isin(lab, keep[keep > 0]) if keep.size else hyper
        hv = sub.with_array(sized.astype(np.uint8))
        axial, cc = lesion_widths_mm(hv, axis)
    else:
        axial = cc = 0.0

    full_hyper = np.zeros(image.shape3, bool)
    full_hyper[box] = hyper
    full_calc = np.zeros(image.shape3, bool)
    full_calc[box] = calcified
    mean = float(values.mean())
    frac = n_calc / values.size
    cls, reason = classify_calcification(mean, frac, cutoffs)
    return LesionStats(
        mean_hu=mean, median_hu=float(np.median(values)), p95_hu=float(np.percentile(values, 95)),
        max_hu=float(values.max()), roi_volume_ml=values.size * voxel_ml, calcified_fraction=float(frac),
        calcified_volume_ml=n_calc * voxel_ml, surrounding_hu=surrounding, hyperdense_threshold_hu=float(threshold),
        hyperdense_volume_ml=hyper_ml, visible=visible, size_threshold_hu=size_level,
        lesion_axial_diameter_mm=float(axial),
        lesion_craniocaudal_mm=float(cc), calcification_class=cls, class_reason=reason, notes=notes,
        hyperdense=image.with_array(full_hyper.astype(np.uint8), name="hyperdense"),
        calcified=image.with_array(full_calc.astype(np.uint8), name="calcified"))
