"""Parameters of the vessel analysis (feeders, anterior spinal artery, Adamkiewicz candidate).

One flat dataclass so that the Slicer shell's parameter node can mirror it field by field.
Every threshold below is a documented *setting* chosen for contrast CT angiography and the
project's phantom; none is a published cut-off. Intensities are Hounsfield units for CT; an MR
angiogram is first rescaled to a pseudo-HU scale (see :mod:`vessels_vesselness`).
"""

from __future__ import annotations

from dataclasses import dataclass

from SpinePlannerLib.core.param_checks import check_numeric_fields, check_positive

MODALITIES = ("auto", "ct", "mr")


@dataclass
class VesselParams:
    """Settings of :func:`SpinePlannerLib.vessels.analysis.analyze_vessels`.

    Attributes
    ----------
    modality : str
        ``"auto"`` (CT when the image says HU, holds air below -500 HU, or fat below -50 HU around
        a soft-tissue median), ``"ct"`` (bone and metal masking on) or ``"mr"`` (no bone
        masking; intensities rescaled).
    working_spacing_mm : float
        Isotropic voxel size (mm) of the working grid; 0 = automatic: the finest angio spacing,
        but not finer than ``min_working_spacing_mm`` and coarsened until the region of interest
        fits in ``max_working_voxels``.
    min_working_spacing_mm : float
        Finest automatic working spacing (mm).
    max_working_voxels : int
        Largest working grid (voxels); bigger regions are resampled coarser (with a warning when
        that makes the grid too coarse for small vessels).
    roi_margin_mm : float
        Margin (mm) around the tumor's bounding box, perpendicular to the cord axis, of the
        region analysed (the whole image when no tumor is given).
    roi_axial_margin_mm : float
        Margin (mm) along the cranio-caudal direction (the Adamkiewicz artery may be a few
        levels away from the tumor).
    scale_min_mm, scale_max_mm : float
        Smallest and largest Gaussian scale (mm) of the multiscale vesselness; a bright tube of
        radius r responds best near sigma = r / 2 .. r / sqrt(2). Scales below half the working
        spacing are raised to it.
    n_scales : int
        Number of scales (geometric series between the two).
    lumen_min_hu : float
        Lowest intensity (HU) a contrast-filled lumen voxel may have (non-contrast blood is about
        40 HU, arterial contrast 250-600 HU, but partial volume dims ~1 mm vessels on 0.7-0.8 mm
        voxels to about 200 HU); also the threshold of "bright" structures.
    bone_min_hu : float
        Voxels at or above this (HU) are cortical bone or metal (masked with their filled
        interior); contrast lumen rarely exceeds it.
    max_vessel_radius_mm : float
        Bright structures thicker than twice this radius (mm) are treated as bone, calcified or
        enhancing masses (or the aorta) and masked (morphological opening by a ball).
    bone_rim_mm : float
        Partial-volume rim (mm) masked around bone and thick masses (vessels closer than this to
        cortical bone lose that part).
    bone_tumor_interface_mm : float
        Voxels within this distance (mm) of both the tumor and cortical bone are masked: the thin
        bone left between a vertebral lesion and the cortex is as bright as contrast.
    soft_tissue_hu : float
        Intensity (HU) written into masked bone/tumor before the vesselness filter, so that their
        edges do not respond.
    vesselness_high, vesselness_low : float
        Hysteresis thresholds on the scale-normalised tubularity (HU-equivalent; a bright tube of
        contrast C responds with about C / 4 at its best scale).
    min_component_mm3 : float
        Connected vessel pieces smaller than this (mm^3) are dropped as noise.
    prune_length_mm : float
        Terminal skeleton spurs shorter than this (mm) are pruned.
    bridge_gap_mm : float
        Free vessel ends are reconnected to a vessel lying at most this far (mm) ahead of them
        (thin vessels break where partial volume dims them); 0 disables it.
    min_vessel_length_mm : float
        Total centerline length (mm) below which the image is reported as showing no vessels.
    max_spacing_mm : float
        Largest voxel edge (mm) considered fine enough for the ~1 mm vessels that matter
        (feeders, radiculomedullary arteries); coarser images get a warning.
    max_analysable_spacing_mm : float
        Largest voxel edge (mm) at which the analysis runs at all: beyond it ~1-2 mm vessels are
        lost to partial volume and cortical bone blurs below ``bone_min_hu`` (it can no longer be
        told from contrast), so the image is reported as not showing the vessels that matter.
    feeder_margin_mm : float
        A free vessel end within this distance (mm) of the tumor surface is a feeder candidate
        (the lumen stops ``tumor_exclusion_mm`` short of the surface and a skeleton end about a
        radius short of the lumen's end).
    tumor_exclusion_mm : float
        Vessels are not searched inside the tumor grown by this (mm): vessels inside a tumor and
        calcified or enhancing tumor tissue (its visible edge may exceed the segmentation by a
        voxel) are not analysed. Feeders then end this far from the surface (< feeder_margin_mm).
    bone_gap_mm : float
        A vessel ending within ``feeder_margin_mm + bone_gap_mm`` of the tumor is a feeder too when
        at most ``feeder_margin_mm`` of the way lies outside masked bone (vessels of vertebral
        tumors enter through the cortex, which the bone mask hides).
    merge_distance_mm : float
        Feeder candidates whose entry points are closer than this (mm) are one feeder.
    feeder_min_length_mm : float
        Feeder candidates shorter than this (mm) are ignored (skeleton artefacts at the surface).
    asa_max_gap_mm : float
        Largest distance (mm) from the cord surface of an anterior spinal artery point.
    asa_max_lateral_mm : float
        Largest distance (mm) from the cord's midsagittal plane of an anterior spinal artery point.
    asa_max_angle_deg : float
        Largest angle (degrees) between an anterior spinal artery segment and the cord axis.
    asa_min_length_mm : float
        Shortest anterior spinal artery candidate (mm).
    hairpin_max_angle_deg : float
        A radiculomedullary branch joins the anterior spinal artery with a hairpin when the angle
        between it and the descending anterior spinal artery, both leaving the junction, is
        below this (degrees).
    tangent_length_mm : float
        Length (mm) over which branch directions at a junction are measured.
    register_to_ct : bool
        When a planning CT is given and the angiography is not on its grid, register the
        angiography rigidly to the CT (mutual information around the tumor, see
        :func:`SpinePlannerLib.core.registration.register_rigid`) before the analysis. False =
        trust the image headers (both scanners' frames already agree, or the user aligned them).
    """

    modality: str = "auto"
    working_spacing_mm: float = 0.0
    min_working_spacing_mm: float = 0.5
    max_working_voxels: int = 6_000_000
    roi_margin_mm: float = 30.0
    roi_axial_margin_mm: float = 60.0
    scale_min_mm: float = 0.3
    scale_max_mm: float = 1.6
    n_scales: int = 4
    lumen_min_hu: float = 120.0
    bone_min_hu: float = 700.0
    max_vessel_radius_mm: float = 3.0
    bone_rim_mm: float = 1.25
    bone_tumor_interface_mm: float = 1.5
    soft_tissue_hu: float = 40.0
    vesselness_high: float = 20.0
    vesselness_low: float = 10.0
    min_component_mm3: float = 2.0
    prune_length_mm: float = 2.0
    bridge_gap_mm: float = 5.0
    min_vessel_length_mm: float = 30.0
    max_spacing_mm: float = 1.0
    max_analysable_spacing_mm: float = 2.0
    feeder_margin_mm: float = 3.0
    tumor_exclusion_mm: float = 1.0
    bone_gap_mm: float = 4.0
    merge_distance_mm: float = 3.0
    feeder_min_length_mm: float = 1.5
    asa_max_gap_mm: float = 3.0
    asa_max_lateral_mm: float = 3.0
    asa_max_angle_deg: float = 35.0
    asa_min_length_mm: float = 10.0
    hairpin_max_angle_deg: float = 70.0
    tangent_length_mm: float = 4.0
    register_to_ct: bool = True

    def __post_init__(self):
        check_numeric_fields(self)
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        positive = ("min_working_spacing_mm", "roi_margin_mm", "roi_axial_margin_mm", "scale_min_mm", "scale_max_mm",
                    "max_vessel_radius_mm", "vesselness_high", "vesselness_low", "max_spacing_mm",
                    "max_analysable_spacing_mm", "feeder_margin_mm", "merge_distance_mm", "asa_max_gap_mm",
                    "asa_max_lateral_mm", "asa_min_length_mm", "tangent_length_mm")
        for name in positive:
            check_positive(name, getattr(self, name))
        non_negative = ("working_spacing_mm", "bone_rim_mm", "bone_tumor_interface_mm", "bridge_gap_mm",
                        "min_component_mm3", "prune_length_mm", "min_vessel_length_mm", "tumor_exclusion_mm",
                        "feeder_min_length_mm", "bone_gap_mm")
        for name in non_negative:
            check_positive(name, getattr(self, name), allow_zero=True)
        if self.scale_max_mm < self.scale_min_mm:
            raise ValueError(f"scale_max_mm ({self.scale_max_mm}) must be >= scale_min_mm ({self.scale_min_mm})")
        if self.n_scales < 1:
            raise ValueError(f"n_scales must be >= 1, got {self.n_scales}")
        if self.vesselness_low > self.vesselness_high:
            raise ValueError(f"vesselness_low ({self.vesselness_low}) must be <= vesselness_high ({self.vesselness_high})")
        if self.bone_min_hu <= self.lumen_min_hu:
            raise ValueError(f"bone_min_hu ({self.bone_min_hu}) must exceed lumen_min_hu ({self.lumen_min_hu})")
        if self.max_working_voxels < 1000:
            raise ValueError(f"max_working_voxels must be >= 1000, got {self.max_working_voxels}")
        for name in ("asa_max_angle_deg", "hairpin_max_angle_deg"):
            if not 0 < getattr(self, name) < 180:
                raise ValueError(f"{name} must be within (0, 180) degrees, got {getattr(self, name)}")
