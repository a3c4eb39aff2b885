"""Settings of the approach section (SINS from imaging, Bilsky grade, approach advisor).

None of these cut-offs is published as part of SINS or the Bilsky scale: they turn the scales'
words ("lytic", "deformation of the thecal sac", "collapse") into measurements on segmentations,
and are shown in the plan beside every result they decide. Units are in the field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from SpinePlannerLib.core.param_checks import check_fraction, check_positive, check_range


@dataclass
class BoneQualityParams:
    """Lesion density on CT relative to the normal bone of neighbouring vertebrae (SINS bone lesion)."""

    lytic_loss_fraction: float = 0.5
    """A lesion voxel is lytic when it has lost this share of the normal bone's density above soft
    tissue: HU < soft + (1 - fraction) x (normal - soft), ``normal`` the neighbours' median bone HU."""
    soft_tissue_hu: float = 40.0
    """Soft-tissue density that fully lytic bone falls to (HU)."""
    blastic_rise_hu: float = 200.0
    """A lesion voxel is blastic when its HU is this far above the neighbours' median bone HU."""
    dominant_fraction: float = 0.7
    """Lytic (blastic) when at least this fraction of the lesion's bone voxels is lytic (blastic);
    otherwise mixed when both kinds reach ``minor_fraction``."""
    minor_fraction: float = 0.15
    """Share of each kind needed to call a lesion mixed."""
    bone_margin_mm: float = 2.0
    """The lesion's bone part: tumor voxels within this distance of the involved vertebra."""

    def __post_init__(self):
        check_fraction("lytic_loss_fraction", self.lytic_loss_fraction)
        check_range("soft_tissue_hu", self.soft_tissue_hu, -100.0, 100.0)
        check_range("blastic_rise_hu", self.blastic_rise_hu, 10.0, 2000.0)
        check_fraction("dominant_fraction", self.dominant_fraction)
        check_fraction("minor_fraction", self.minor_fraction)
        check_range("bone_margin_mm", self.bone_margin_mm, 0.0, 10.0)


@dataclass
class CollapseParams:
    """Vertebral body height loss against the adjacent levels (SINS collapse)."""

    collapse_min_fraction: float = 0.15
    """Height loss (1 - height / neighbours' height) from which a body counts as collapsed;
    below it the height is within the variation between normal neighbours."""
    involved_body_fraction: float = 0.5
    """SINS: "no collapse with > 50 % of the body involved" (published cut-off)."""
    canal_radius_mm: float = 7.0
    """Body voxels lie farther than this in front of the canal centre (splits body from arch)."""

    def __post_init__(self):
        check_range("collapse_min_fraction", self.collapse_min_fraction, 0.01, 0.5)
        check_fraction("involved_body_fraction", self.involved_body_fraction)
        check_range("canal_radius_mm", self.canal_radius_mm, 2.0, 20.0)


@dataclass
class AlignmentParams:
    """Segmental alignment from the vertebral bodies (SINS alignment)."""

    translation_mm: float = 4.0
    """Body centroid offset from the line through its neighbours counted as translation/subluxation
    (White and Panjabi's radiographic instability criteria use 3.5 mm cervical, 4.5 mm lumbar)."""
    kyphosis_excess_deg: float = 10.0
    """Kyphosis across the lesion exceeding that of the adjacent normal segments by this much."""
    scoliosis_deg: float = 10.0
    """Coronal angle across the lesion counted as scoliosis (the usual Cobb >= 10 deg definition)."""

    def __post_init__(self):
        check_range("translation_mm", self.translation_mm, 0.5, 30.0)
        check_range("kyphosis_excess_deg", self.kyphosis_excess_deg, 1.0, 90.0)
        check_range("scoliosis_deg", self.scoliosis_deg, 1.0, 90.0)


@dataclass
class PosterolateralParams:
    """Tumor in the pedicles, facets and costovertebral joints (SINS posterolateral involvement)."""

    zone_front_mm: float = 9.0
    """The posterolateral zone reaches this far in front of the canal centre (pedicle base)."""
    zone_back_mm: float = 12.0
    """... and this far behind it (facet joints)."""
    canal_half_width_mm: float = 7.0
    """... lateral to this distance from the canal centre."""
    zone_lateral_mm: float = 30.0
    """... up to this distance (transverse process base, rib head)."""
    min_involved_ml: float = 0.1
    """Tumor volume in one side's zone that counts as involvement."""

    def __post_init__(self):
        for name in ("zone_front_mm", "zone_back_mm", "canal_half_width_mm", "zone_lateral_mm"):
            check_range(name, getattr(self, name), 1.0, 60.0)
        check_range("min_involved_ml", self.min_involved_ml, 0.001, 10.0)
        if self.zone_lateral_mm <= self.canal_half_width_mm:
            raise ValueError("zone_lateral_mm must exceed canal_half_width_mm")


@dataclass
class BilskyParams:
    """Epidural spinal cord compression grade from the tumor, thecal sac and cord masks."""

    sac_indentation_mm: float = 1.0
    """Thecal sac deformed when its outline, seen from the cord centre, lies this much inside the
    reference outline in some direction, ..."""
    sac_deformation_fraction: float = 0.1
    """... or its cross-section is this much smaller than at reference levels, or its solidity
    (area / convex hull area) drops by ``solidity_drop``."""
    solidity_drop: float = 0.05
    cord_abutment_mm: float = 1.0
    """Tumor within this distance of the cord (no CSF layer left between them) abuts the cord."""
    cord_compression_fraction: float = 0.1
    """Cord compressed when its cross-section is this much smaller than at reference levels, or
    its minor/major axis ratio drops by ``cord_flattening``."""
    cord_flattening: float = 0.2
    csf_ring_mm: float = 1.5
    """CSF counts as visible around the cord in a direction when present within this distance."""
    csf_visible_min_fraction: float = 0.1
    """Grade 2 (CSF still visible) when at least this share of the directions around the cord
    shows CSF; grade 3 below."""
    epidural_band_mm: float = 5.0
    """Epidural tumor is tumor outside the sac and bone within this distance of the sac (the
    epidural space; tumor deeper in a lytic body is intraosseous)."""
    min_epidural_mm2: float = 2.0
    """Smallest epidural tumor cross-section counted (mm^2)."""
    reference_gap_mm: float = 10.0
    """Reference cross-sections lie farther than this from the tumor along the axis."""

    def __post_init__(self):
        check_range("sac_indentation_mm", self.sac_indentation_mm, 0.1, 10.0)
        check_fraction("sac_deformation_fraction", self.sac_deformation_fraction)
        check_fraction("solidity_drop", self.solidity_drop)
        check_range("cord_abutment_mm", self.cord_abutment_mm, 0.0, 5.0)
        check_fraction("cord_compression_fraction", self.cord_compression_fraction)
        check_fraction("cord_flattening", self.cord_flattening)
        check_range("csf_ring_mm", self.csf_ring_mm, 0.25, 5.0)
        check_fraction("csf_visible_min_fraction", self.csf_visible_min_fraction)
        check_range("epidural_band_mm", self.epidural_band_mm, 1.0, 20.0)
        check_positive("min_epidural_mm2", self.min_epidural_mm2)
        check_range("reference_gap_mm", self.reference_gap_mm, 0.0, 100.0)


@dataclass
class ApproachParams:
    """All settings of the approach section."""

    bone_quality: BoneQualityParams = field(default_factory=BoneQualityParams)
    collapse: CollapseParams = field(default_factory=CollapseParams)
    alignment: AlignmentParams = field(default_factory=AlignmentParams)
    posterolateral: PosterolateralParams = field(default_factory=PosterolateralParams)
    bilsky: BilskyParams = field(default_factory=BilskyParams)
    exposure_margin_mm: float = 5.0
    """Bone exposure reaches this far beyond each tumor pole (laminectomy/laminoplasty levels)."""
    trajectory_clearance_mm: float = 3.0
    """Structures within this distance of a planned trajectory are listed."""

    def __post_init__(self):
        check_range("exposure_margin_mm", self.exposure_margin_mm, 0.0, 50.0)
        check_range("trajectory_clearance_mm", self.trajectory_clearance_mm, 0.5, 20.0)


PAIN_VALUES = ("none", "occasional", "mechanical")


@dataclass
class ClinicalInputs:
    """What imaging cannot give (``--pain``, ``--myelopathy``, ``--histology``; the module's fields)."""

    pain: str | None = None
    """SINS pain: ``none``, ``occasional`` (not mechanical) or ``mechanical``; None = not given."""
    myelopathy: bool | None = None
    """NOMS neurologic: clinical myelopathy; None = not given."""
    histology: str | None = None
    """Primary tumor histology (free text matched against the radiosensitivity lists), e.g. ``"renal cell"``."""

    def __post_init__(self):
        if self.pain is not None and self.pain not in PAIN_VALUES:
            raise ValueError(f"pain must be one of {', '.join(PAIN_VALUES)}, got {self.pain!r}")
        if self.myelopathy is not None and not isinstance(self.myelopathy, bool):
            raise ValueError(f"myelopathy must be true or false, got {self.myelopathy!r}")
        if self.histology is not None and (not isinstance(self.histology, str) or len(self.histology) > 200):
            raise ValueError("histology must be a text of at most 200 characters")
