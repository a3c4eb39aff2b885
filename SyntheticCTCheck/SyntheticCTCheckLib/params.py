"""Settings of the synthetic-CT check, one plain dataclass per operation (L1).

Every threshold here is a *documented setting*, not published evidence, except where a source
is named. The literature supports no single HU cut-off for a "hard" (calcified) intradural
tumour (laminoplasty group 766 HU vs unilateral group 260 HU, p = 0.129), so the calcification
class is always reported together with the cut-offs that produced it.

Units: Hounsfield units (HU) for CT values, millimetres (mm) for lengths, mm^3 or mL for volumes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from SpinePlannerLib.core.param_checks import check_numeric_fields, check_positive
from SpinePlannerLib.core.params import flat_field_owners
from SpinePlannerLib.core.registration import RigidRegistrationParams

CLASSES = ("none", "faint", "partial", "dense")
"""Calcification classes, in increasing order."""


@dataclass
class RegistrationParams(RigidRegistrationParams):
    """Rigid alignment of the CT to the synthetic CT (Mattes mutual information, SimpleITK).

    Attributes
    ----------
    trust_headers : bool
        Skip registration and use the image headers as they are (scanner coordinates already
        agree, or the user aligned the images). Default False.
    same_grid_tol_mm : float
        Images whose grids (shape and affine) agree within this tolerance (mm) are taken as
        aligned and not registered (e.g. a synthetic CT already resampled onto the CT).
    focus_radius_mm : float
        The metric is evaluated within this radius (mm) of the lesion ROI centroid, so the
        vertebrae next to the lesion drive the alignment (the spine flexes between sessions).
        0 = whole overlap.
    histogram_bins : int
        Mattes mutual information histogram bins.
    sampling_fraction : float
        Fraction of the fixed-image voxels sampled for the metric (0 < f <= 1).
    max_iterations : int
        Optimiser iterations per resolution level.
    shrink_factors : tuple of int
        Multi-resolution shrink factors (coarse to fine).
    smoothing_sigmas_mm : tuple of float
        Gaussian smoothing per level (mm), same length as ``shrink_factors``.
    residual_bone_hu : float
        Bone threshold (HU) for the residual: mean distance (mm) between the bone surfaces of
        CT and synthetic CT after alignment.
    residual_warn_mm : float
        A residual above this (mm) raises a warning flag.
    seed : int
        Seed of the metric's random sampling (0 = SimpleITK's wall clock: not reproducible).
    threads : int
        Registration threads; 1 (default) gives exactly reproducible results (a multi-threaded
        metric sums in a schedule-dependent order) and costs little on the lesion's
        neighbourhood.

    Fields, defaults and validation: :class:`SpinePlannerLib.core.registration.RigidRegistrationParams`.
    """


@dataclass
class LesionParams:
    """Density, visibility and size of the lesion inside the ROI, per image.

    Attributes
    ----------
    calcified_hu : float
        Voxels at or above this value (HU) count as calcified. Default 130 HU: the threshold of
        the Agatston coronary-calcium score, used here as a *convention* for "calcium-dense",
        not as a validated cut-off for spinal tumours.
    visibility_contrast_hu : float
        A voxel of the ROI is *hyperdense* when it exceeds the surrounding soft tissue (median
        of a shell around the ROI) by at least this much (HU). Default 60 HU (setting).
    min_visible_volume_mm3 : float
        The lesion is *visible* when its hyperdense part (after removing specks smaller than
        ``min_component_mm3``) has at least this volume (mm^3). Default 20 mm^3 (setting,
        about a 2.7 mm cube), below which a reader would not call a lesion depicted.
    min_component_mm3 : float
        Hyperdense connected components smaller than this (mm^3) are noise specks, ignored.
    shell_inner_mm, shell_outer_mm : float
        The surrounding-tissue shell spans these distances (mm) from the ROI border.
    soft_tissue_range_hu : tuple of float
        Only shell voxels within this range (HU) count as soft tissue (excludes fat, air, bone).
    denoise : bool
        Median-filter (3x3x3 voxels) the image before finding the hyperdense part; the HU
        statistics always use the unfiltered voxels.
    roi_margin_mm : float
        For its diameters, the visible lesion may extend this far (mm) beyond the ROI when
        connected to the hyperdense voxels inside it (never into vertebra voxels): an ROI
        carried from a coarser MRI grid loses up to half a voxel at its border, and the
        visible lesion is measured on the image itself. Default 1 mm; 0 keeps it inside.
    """

    calcified_hu: float = 130.0
    visibility_contrast_hu: float = 60.0
    min_visible_volume_mm3: float = 20.0
    min_component_mm3: float = 3.0
    shell_inner_mm: float = 1.0
    shell_outer_mm: float = 4.0
    soft_tissue_range_hu: tuple = (-50.0, 150.0)
    denoise: bool = True
    roi_margin_mm: float = 1.0

    def __post_init__(self):
        check_numeric_fields(self)
        check_positive("roi_margin_mm", self.roi_margin_mm, allow_zero=True)
        check_positive("visibility_contrast_hu", self.visibility_contrast_hu)
        check_positive("min_visible_volume_mm3", self.min_visible_volume_mm3, allow_zero=True)
        check_positive("min_component_mm3", self.min_component_mm3, allow_zero=True)
        check_positive("shell_inner_mm", self.shell_inner_mm, allow_zero=True)
        if self.shell_outer_mm <= self.shell_inner_mm:
            raise ValueError(f"shell_outer_mm ({self.shell_outer_mm}) must exceed shell_inner_mm ({self.shell_inner_mm})")
        lo, hi = (float(v) for v in self.soft_tissue_range_hu)
        if hi <= lo:
            raise ValueError(f"soft_tissue_range_hu must be (low, high) with low < high, got {self.soft_tissue_range_hu}")
        self.soft_tissue_range_hu = (lo, hi)


@dataclass
class ClassCutoffs:
    """Calcification class cut-offs (none / faint / partial / dense); adjustable, shown with the class.

    The class is the highest one reached by either rule:

    * mean HU in the ROI: ``>= faint_mean_hu`` faint, ``>= partial_mean_hu`` partial,
      ``>= dense_mean_hu`` dense;
    * calcified fraction (voxels ``>= calcified_hu``): ``>= faint_fraction`` faint,
      ``>= partial_fraction`` partial (a focal calcification in a soft tumour).

    Defaults (settings, not evidence): 90 / 200 / 400 HU and 5 % / 30 %. Published anchors:
    a densely calcified meningioma 550.8 HU, a barely calcified one 113 HU, soft tumours
    about 40 HU; the 766 vs 260 HU group means were not significantly different.
    """

    faint_mean_hu: float = 90.0
    partial_mean_hu: float = 200.0
    dense_mean_hu: float = 400.0
    faint_fraction: float = 0.05
    partial_fraction: float = 0.30

    def __post_init__(self):
        check_numeric_fields(self)
        if not self.faint_mean_hu < self.partial_mean_hu < self.dense_mean_hu:
            raise ValueError("cut-offs must increase: faint_mean_hu < partial_mean_hu < dense_mean_hu, got "
                             f"{self.faint_mean_hu}, {self.partial_mean_hu}, {self.dense_mean_hu}")
        if not 0 < self.faint_fraction < self.partial_fraction <= 1:
            raise ValueError("fractions must satisfy 0 < faint_fraction < partial_fraction <= 1, got "
                             f"{self.faint_fraction}, {self.partial_fraction}")

    def describe(self) -> str:
        """One line stating the rule, e.g. for the report next to the class."""
        return (f"mean HU >= {self.faint_mean_hu:g} faint, >= {self.partial_mean_hu:g} partial, "
                f">= {self.dense_mean_hu:g} dense; or calcified fraction >= {100 * self.faint_fraction:g} % faint, "
                f">= {100 * self.partial_fraction:g} % partial")


@dataclass
class BoneParams:
    """Agreement of synthetic CT with CT in bone (MAE and Bland-Altman bias).

    Attributes
    ----------
    bone_hu : float
        Without a vertebra segmentation, bone = CT voxels at or above this (HU). Default 200 HU
        (setting; cancellous bone is roughly 150-400 HU, cortical > 700 HU).
    exclude_lesion_margin_mm : float
        Voxels within this distance (mm) of the lesion ROI are excluded, so a calcified lesion
        never counts as bone.
    min_voxels : int
        Fewer bone voxels than this: no agreement is reported (``mae_hu`` null).
    mae_warn_hu : float
        A bone MAE above this (HU) raises a warning flag (setting).
    """

    bone_hu: float = 200.0
    exclude_lesion_margin_mm: float = 3.0
    min_voxels: int = 50
    mae_warn_hu: float = 150.0

    def __post_init__(self):
        check_numeric_fields(self)
        check_positive("exclude_lesion_margin_mm", self.exclude_lesion_margin_mm, allow_zero=True)
        check_positive("mae_warn_hu", self.mae_warn_hu)
        if self.min_voxels < 1:
            raise ValueError(f"min_voxels must be >= 1, got {self.min_voxels}")


@dataclass
class VoidParams:
    """Signal voids inside the lesion on a gradient-echo (T2*) or susceptibility-weighted MRI.

    Attributes
    ----------
    void_ratio : float
        A lesion voxel is a void when its signal is below this fraction of the surrounding
        tissue (median of a shell around the ROI). Default 0.3 (setting): calcium "blooms" as a near-black
        spot, while a soft tumour keeps about half the signal of the CSF around it.
    min_void_volume_mm3 : float
        Voids (after removing specks below ``min_component_mm3``) of at least this total
        volume (mm^3) make the MRI "suggest calcification". Default 5 mm^3 (setting).
    min_component_mm3 : float
        Void components smaller than this (mm^3) are ignored (noise).
    shell_inner_mm, shell_outer_mm : float
        Distances (mm) of the reference shell from the ROI border.
    """

    void_ratio: float = 0.3
    min_void_volume_mm3: float = 5.0
    min_component_mm3: float = 1.0
    shell_inner_mm: float = 1.0
    shell_outer_mm: float = 4.0

    def __post_init__(self):
        check_numeric_fields(self)
        if not 0 < self.void_ratio < 1:
            raise ValueError(f"void_ratio must be in (0, 1), got {self.void_ratio}")
        check_positive("min_void_volume_mm3", self.min_void_volume_mm3, allow_zero=True)
        check_positive("min_component_mm3", self.min_component_mm3, allow_zero=True)
        if self.shell_outer_mm <= self.shell_inner_mm:
            raise ValueError("shell_outer_mm must exceed shell_inner_mm")


@dataclass
class FlagParams:
    """When a difference between CT and synthetic CT is flagged.

    Attributes
    ----------
    density_difference_hu : float
        Mean-HU difference in the ROI (CT - sCT, either sign) from which the synthetic CT
        "under-/over-estimates lesion density" (warning). Default 100 HU (setting).
    critical_difference_hu : float
        From this difference (HU) the flag is critical. Default 300 HU (setting).
    min_calcified_volume_ml : float
        Calcified volume (mL) from which calcification counts as "present". Default 0.01 mL.
    """

    density_difference_hu: float = 100.0
    critical_difference_hu: float = 300.0
    min_calcified_volume_ml: float = 0.01

    def __post_init__(self):
        check_numeric_fields(self)
        check_positive("density_difference_hu", self.density_difference_hu)
        if self.critical_difference_hu < self.density_difference_hu:
            raise ValueError("critical_difference_hu must be >= density_difference_hu")
        check_positive("min_calcified_volume_ml", self.min_calcified_volume_ml, allow_zero=True)


@dataclass
class CheckParams:
    """All settings of one synthetic-CT check, grouped by operation.

    :func:`SpinePlannerLib.core.params.from_dict` accepts nested groups
    (``{"lesion": {"calcified_hu": 150}}``), dotted names (``"lesion.calcified_hu"``) and flat field
    names (``{"calcified_hu": 150}``, see :meth:`expand_shorthands`);
    :func:`SpinePlannerLib.core.params.to_flat_dict` gives the dotted flat view.
    """

    registration: RegistrationParams = field(default_factory=RegistrationParams)
    lesion: LesionParams = field(default_factory=LesionParams)
    classes: ClassCutoffs = field(default_factory=ClassCutoffs)
    bone: BoneParams = field(default_factory=BoneParams)
    voids: VoidParams = field(default_factory=VoidParams)
    flags: FlagParams = field(default_factory=FlagParams)

    @classmethod
    def expand_shorthands(cls, data: dict) -> dict:
        """A flat field name (``{"calcified_hu": 150}``) stands for the one group that has it;
        a name that two groups have is refused as ambiguous."""
        owners = flat_field_owners(cls)
        groups = {f.name for f in dataclasses.fields(cls)}
        out: dict = {}
        for key, value in data.items():
            if key in groups or "." in key or key not in owners:
                out[key] = value
            elif len(owners[key]) > 1:
                raise ValueError(f"parameter {key!r} is ambiguous; give it as "
                                 f"{{'{owners[key][0]}': {{'{key}': ...}}}}")
            else:
                out[f"{owners[key][0]}.{key}"] = value
        return out
