"""Parameters of the segmentation engines (one plain dataclass per operation).

Every threshold below is a documented, user-adjustable setting chosen on the project's phantoms
and the real test images (``../shared/data``); none of them is a published value. Stages read
overrides from ``ctx.params["segmentation"]`` with :func:`SpinePlannerLib.core.params.from_dict`
(``{"anchor": {...}}`` short form: :meth:`SegmentationParams.expand_shorthands`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from SpinePlannerLib.core.param_checks import check_min_max, check_numeric_fields, check_range

CONTRASTS = ("t2", "t1", "ct")
"""Image contrasts the classical cord engine knows: CSF bright (t2, stir), CSF dark (t1, t1c),
and CT (cord inside the bony canal)."""

ENGINES = ("classical", "monai")

LEVEL_NAMES = (
    [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
    + [f"S{i}" for i in range(1, 6)]
)
"""Vertebral levels from cranial to caudal (C1 ... S5); the sacrum is treated as S1 downwards."""


@dataclass
class CordParams:
    """Spinal cord and thecal sac (CSF) segmentation on MRI or CT.

    Attributes
    ----------
    working_spacing_mm : float
        Isotropic spacing (mm) of the working grid used when the image is anisotropic (ratio of
        largest to smallest voxel size above ``max_anisotropy``); otherwise the image's own grid is
        used after an exact axis permutation.
    max_anisotropy : float
        Largest voxel-size ratio segmented without resampling.
    cord_area_mm2 : tuple of float
        Plausible cross-sectional area (mm^2) of the cord in one axial slice (min, max). Holes of
        other sizes are not cord candidates.
    min_length_mm : float
        The cord must be followed over at least this cranio-caudal length (mm) to count as found.
    min_track_fraction : float
        MRI: the cord must be seen directly (CSF ring closed) in at least this fraction of the
        slices between the ends of the tracked chain; scattered dark holes are not a cord.
    min_contrast : float
        Smallest accepted ratio ``(CSF - cord) / (CSF + cord)`` of median intensities (MRI; for CT
        the HU difference canal-vs-bone is used instead). Below it the contrast does not separate
        the cord and the result is "not found".
    boundary_fraction : float
        Cord/CSF border placed at ``cord + f * (CSF - cord)`` of the local median intensities
        (0.5 = half-maximum, the partial-volume-unbiased border).
    sac_fraction : float
        Outer thecal-sac border at ``outside + f * (CSF - outside)`` (local medians).
    max_sac_radius_mm : float
        Largest distance (mm) of a thecal-sac voxel from the cord centre in its slice.
    bone_hu : float
        CT: bone threshold (HU) used to find the bony canal.
    ct_cord_fraction : float
        CT: the cord is approximated as the canal's central part with this fraction of the canal
        area (documented setting; CT does not separate cord from CSF reliably).
    smoothing_mm : float
        Gaussian pre-smoothing (sigma, mm).
    """

    working_spacing_mm: float = 0.8
    max_anisotropy: float = 1.6
    cord_area_mm2: tuple[float, float] = (12.0, 260.0)
    min_length_mm: float = 12.0
    min_track_fraction: float = 0.6
    min_contrast: float = 0.15
    boundary_fraction: float = 0.5
    sac_fraction: float = 0.5
    max_sac_radius_mm: float = 11.0
    bone_hu: float = 180.0
    ct_cord_fraction: float = 0.35
    smoothing_mm: float = 0.4

    def __post_init__(self):
        check_numeric_fields(self)
        check_range("working_spacing_mm", self.working_spacing_mm, 0.2, 3.0)
        check_range("max_anisotropy", self.max_anisotropy, 1.0, 10.0)
        check_min_max("cord_area_mm2", self.cord_area_mm2)
        check_range("min_length_mm", self.min_length_mm, 0.0, 500.0)
        check_range("min_contrast", self.min_contrast, 0.0, 1.0)
        check_range("min_track_fraction", self.min_track_fraction, 0.0, 1.0)
        check_range("boundary_fraction", self.boundary_fraction, 0.05, 0.95)
        check_range("sac_fraction", self.sac_fraction, 0.05, 0.95)
        check_range("max_sac_radius_mm", self.max_sac_radius_mm, 3.0, 40.0)
        check_range("bone_hu", self.bone_hu, 50.0, 1500.0)
        check_range("ct_cord_fraction", self.ct_cord_fraction, 0.05, 1.0)
        check_range("smoothing_mm", self.smoothing_mm, 0.0, 3.0)


@dataclass
class TumorParams:
    """Tumor from one seed point (region growing constrained by the seed's intensity statistics).

    Attributes
    ----------
    seed_radius_mm : float
        Radius (mm) of the ball around the seed whose intensities define the tumor's statistics.
    tolerance_sd : float
        First region: seed median +- ``tolerance_sd`` robust standard deviations; the final range
        reaches half-way to the nearest darker and brighter neighbouring tissue levels but is
        never narrower than this.
    max_radius_mm : float
        The tumor is confined to a ball of this radius (mm) around the seed.
    opening_mm : float
        Radius (mm) of the morphological opening that cuts thin leaks (noise bridges into a
        neighbour of similar intensity); the border it shaves off is restored by a short
        reconstruction inside the accepted voxels.
    reconstruction_steps : int
        Voxel layers (face-connected) the opened region may grow back into the accepted voxels.
    smoothing_mm : float
        Gaussian pre-smoothing (sigma, mm).
    low_contrast_sd, low_contrast_smoothing_mm : float
        When a known bordering tissue (cord, CSF) lies within ``low_contrast_sd`` noise SDs of the
        seed's intensity, the region is grown again on an image smoothed with this sigma (mm).
    ct_dense_hu : float
        When the MR contrast is low and a CT is given, the tumor is taken from the CT if its seed
        is at least this dense (HU; cord and CSF are below about 45 HU).
    background_fraction : float
        A seed whose intensity is below this fraction of the image's robust range (1st..99th
        percentile) on MRI, or below -500 HU on CT, lies in background (air): an input error.
    leak_cut_max_mm, leak_cut_step_mm : float
        A region reaching ``max_radius_mm`` has leaked into a tissue of the same signal: it is
        opened with balls of radius growing by ``leak_cut_step_mm`` (mm) up to ``leak_cut_max_mm``
        (mm) until the seed's part no longer reaches that limit, and cut there (0 disables).
        Documented setting: 6 mm cuts necks up to 12 mm wide, below the bodies of thoracolumbar
        vertebrae (at least about 25 mm across) that a bone lesion fills.
    disc_barrier : bool
        For a seed outside the thecal sac grown on MRI, the intervertebral discs next to the
        seed's vertebra (found by the MRI vertebral-body engine along the cord) are a barrier the
        tumor does not cross (metastases respect the disc; their signal is the disc's on T1 and
        T2). False lets the region cross (e.g. an infection).
    """

    seed_radius_mm: float = 2.5
    tolerance_sd: float = 2.5
    max_radius_mm: float = 45.0
    opening_mm: float = 1.5
    reconstruction_steps: int = 1
    smoothing_mm: float = 0.3
    low_contrast_sd: float = 2.0
    low_contrast_smoothing_mm: float = 1.0
    ct_dense_hu: float = 80.0
    background_fraction: float = 0.04
    leak_cut_max_mm: float = 6.0
    leak_cut_step_mm: float = 0.5
    disc_barrier: bool = True

    def __post_init__(self):
        check_numeric_fields(self)
        check_range("seed_radius_mm", self.seed_radius_mm, 0.5, 20.0)
        check_range("tolerance_sd", self.tolerance_sd, 0.1, 20.0)
        check_range("max_radius_mm", self.max_radius_mm, 3.0, 200.0)
        check_range("opening_mm", self.opening_mm, 0.0, 5.0)
        check_range("reconstruction_steps", self.reconstruction_steps, 0, 10)
        check_range("smoothing_mm", self.smoothing_mm, 0.0, 3.0)
        check_range("low_contrast_sd", self.low_contrast_sd, 0.0, 20.0)
        check_range("low_contrast_smoothing_mm", self.low_contrast_smoothing_mm, 0.0, 5.0)
        check_range("background_fraction", self.background_fraction, 0.0, 0.5)
        check_range("leak_cut_max_mm", self.leak_cut_max_mm, 0.0, 20.0)
        check_range("leak_cut_step_mm", self.leak_cut_step_mm, 0.1, 5.0)


@dataclass
class VertebraeParams:
    """Bone, vertebrae and level names (CT; MRI bodies where noted).

    Attributes
    ----------
    working_spacing_mm : float
        Images finer than this (mm) are resampled to it for vertebra labelling (speed).
    axis_realign_deg : float
        When the spine's mean axis (principal direction of the canal centres of a first canal
        pass, mm) deviates by more than this angle (degrees: patient flexion/extension, gantry
        tilt) both from S and from the slice axis of the RAS-aligned working grid, and the
        tracked canal spans at least 120 mm, the CT is resampled (linear, -1000 HU outside the
        field of view) onto a working grid whose slice axis follows the spine's axis and the
        vertebrae are labelled there; 90 never realigns (documented setting: below it the
        disc planes' own tilt copes).
    bone_hu : float
        Cortical bone threshold (HU).
    cancellous_hu : float
        Cancellous bone threshold (HU); voxels above it, closed over one voxel and hole-filled
        per axial slice, form the bone mask with everything above ``bone_hu``.
    spine_radius_mm : float
        Bone within this in-plane distance (mm) of the canal centre belongs to the spine; bone
        connected to it beyond this distance is treated as rib.
    body_half_width_mm, body_depth_mm : float
        Box in front of the canal (half width left-right, depth anterior; mm) holding the bodies.
    footprint_hu : float
        Body footprint: box voxels whose mean over 30 mm cranio-caudally exceeds this (HU).
    endplate_hu : float
        Bright endplate level (HU) on both sides of a disc.
    disc_contrast_hu : float
        A disc voxel is darker than both endplate neighbours by at least this (HU).
    endplate_window_mm : float
        Endplates are looked for within this distance (mm) above and below a disc voxel.
    min_disc_score : float
        Smallest fraction of the body footprint showing the disc pattern for a disc.
    disc_peak_fraction : float
        Disc candidates are the peaks of the disc score reaching at least this fraction of the
        median height of its peaks (and ``min_disc_score``); the regular set among them is kept
        (documented setting).
    disc_tilt_max_deg : float
        Disc planes are scored tilted in the sagittal plane (anterior end up or down) by up to
        this angle (degrees) from the axial plane of the canal-following box, for discs that are
        not axial (the lumbosacral disc, 30-40 degrees in a lordotic spine); 0 scores axial
        planes only (documented setting).
    disc_tilt_step_deg : float
        Step (degrees) between scored tilts.
    disc_regularity_weight : float
        Weight of the spacing penalty when the disc set is chosen among the candidates: the set
        maximises the candidates' scores above the candidate threshold (relative to the median
        peak height, at most 1 each) minus this weight times ``ln(gap / pitch)**2`` per gap
        between consecutive discs, ``pitch`` being the period of the candidates' positions (a peak
        inside a body, splitting it into two short parts, costs more than it earns; documented
        setting, not a published value).
    min_edge_body_pitch : float
        A disc leaving less than this many vertebral pitches (the median gap between the chosen
        discs) of tracked canal beyond it, at either end, is not kept: the sliver is left to its
        neighbour (at the caudal end it is typically the rudimentary S1/S2 disc inside the
        sacrum; documented setting).
    disc_box_smoothing_mm : float
        Gaussian smoothing (sigma, mm, cranio-caudal) of the canal centre line that the disc box
        follows, so that a jump of the tracked centre (e.g. at the lumbosacral junction) does
        not shear the box (documented setting).
    disc_search_mm : tuple of float
        (min, max) vertebral pitch (mm): discs closer than the minimum are one disc.
    min_body_height_mm : float
        Shortest vertebral body kept between two discs (mm); half of it at the field's edge.
    arch_depth_mm, arch_half_width_mm : float
        Region behind the canal (depth, half width; mm) where laminae are looked for.
    arch_marker_half_width_mm : float
        Half width (mm) of the posterior half of the ring around the canal that seeds an arch.
    min_arch_mm : float
        Shortest run of lamina bone (mm) counted as one posterior arch (except at the edges).
    anchor_level : str or None
        A level the user names for one vertebra (e.g. ``"L1"``), with ``anchor_ras``.
    anchor_ras : tuple of float or None
        RAS (mm) point inside the named vertebra.
    auto_anchor : bool
        Try automatic anchoring without a user anchor: C2 (CT), else the sacrum (the vertebra
        above it = L5), else the lowest vertebra bearing ribs on both sides (= T12).
    sacrum_anchor : bool
        Look for the sacrum as an automatic anchor (CT; takes precedence over the last rib).
    sacrum_min_height_mm : float
        The bone below the lowest disc is the sacrum only when it runs at least this far (mm)
        caudally without a disc gap (longer than any lumbar body).
    sacrum_ala_half_width_mm : float
        In-plane half width (mm, both sides of the canal centre) that the bone mass fused to the
        body must reach in a sacral slice (the alae; lumbar bodies are about 25 mm).
    sacrum_iliac_range_mm : tuple of float
        (min, max) lateral distance (mm) from the canal centre where iliac bone (sacroiliac joint
        and wing) must be found on both sides in a sacral slice.
    sacrum_min_fraction : float
        Smallest fraction of the slices below the lowest disc showing both the alae and iliac
        bone on both sides.
    c2_anchor : bool
        Look for C2 (the axis: the dens rising from the most cranial body into the C1 ring) as an
        automatic anchor (CT; takes precedence over the sacrum and the last rib) and label C1.
    dens_width_mm : tuple of float
        (min, max) left-right width (mm) of the narrow bony column rising from the most cranial
        body slot that counts as the dens (adult dens about 8-11 mm wide; lower cervical bodies
        are 15 mm or wider; documented setting, not a published cut-off).
    dens_min_height_mm : float
        Shortest run (mm) of that narrow column above the body for a dens (the adult dens rises
        about 15 mm; documented setting).
    c1_gap_contrast_hu : float
        When the bone of the dens and of the C1 anterior arch touch on the working grid, the
        atlanto-dental joint must still show as a dip of at least this much (HU) below the lower
        of the two bone peaks along the antero-posterior line (documented setting).
    c1_arch_max_depth_mm : float
        Largest antero-posterior thickness (mm) of the bone in front of the dens that counts as
        the C1 anterior arch (C1 has no body; a vertebral body is 15 mm deep or more; documented
        setting).
    c1_lateral_mass_mm : float
        The C1 lateral masses are looked for within this distance (mm) beyond the dens's left
        and right borders, past a soft-tissue gap (documented setting).
    c2_max_canal_above_mm : float
        The bony canal may continue at most this far (mm) above the top of the dens (the C1 ring
        and the foramen magnum); a canal running further means the column is not the dens
        (documented setting).
    """

    working_spacing_mm: float = 1.5
    axis_realign_deg: float = 5.0
    bone_hu: float = 200.0
    cancellous_hu: float = 120.0
    spine_radius_mm: float = 55.0
    body_half_width_mm: float = 25.0
    body_depth_mm: float = 70.0
    footprint_hu: float = 90.0
    endplate_hu: float = 150.0
    disc_contrast_hu: float = 50.0
    endplate_window_mm: float = 6.0
    min_disc_score: float = 0.1
    disc_peak_fraction: float = 0.5
    disc_tilt_max_deg: float = 40.0
    disc_tilt_step_deg: float = 5.0
    disc_regularity_weight: float = 2.0
    min_edge_body_pitch: float = 0.6
    disc_box_smoothing_mm: float = 9.0
    disc_search_mm: tuple[float, float] = (15.0, 45.0)
    min_body_height_mm: float = 9.0
    arch_depth_mm: float = 12.0
    arch_half_width_mm: float = 8.0
    arch_marker_half_width_mm: float = 10.0
    min_arch_mm: float = 5.0
    anchor_level: str | None = None
    anchor_ras: tuple[float, float, float] | None = None
    auto_anchor: bool = True
    sacrum_anchor: bool = True
    sacrum_min_height_mm: float = 35.0
    sacrum_ala_half_width_mm: float = 40.0
    sacrum_iliac_range_mm: tuple[float, float] = (55.0, 160.0)
    sacrum_min_fraction: float = 0.5
    c2_anchor: bool = True
    dens_width_mm: tuple[float, float] = (6.0, 14.0)
    dens_min_height_mm: float = 8.0
    c1_gap_contrast_hu: float = 80.0
    c1_arch_max_depth_mm: float = 10.0
    c1_lateral_mass_mm: float = 25.0
    c2_max_canal_above_mm: float = 30.0

    def __post_init__(self):
        check_numeric_fields(self)
        check_range("working_spacing_mm", self.working_spacing_mm, 0.3, 5.0)
        check_range("axis_realign_deg", self.axis_realign_deg, 0.0, 90.0)
        check_range("sacrum_min_height_mm", self.sacrum_min_height_mm, 5.0, 200.0)
        check_range("sacrum_ala_half_width_mm", self.sacrum_ala_half_width_mm, 10.0, 150.0)
        self.sacrum_iliac_range_mm = check_min_max("sacrum_iliac_range_mm", self.sacrum_iliac_range_mm)
        check_range("sacrum_min_fraction", self.sacrum_min_fraction, 0.0, 1.0)
        self.dens_width_mm = check_min_max("dens_width_mm", self.dens_width_mm)
        check_range("dens_min_height_mm", self.dens_min_height_mm, 2.0, 40.0)
        check_range("c1_gap_contrast_hu", self.c1_gap_contrast_hu, 0.0, 1000.0)
        check_range("c1_arch_max_depth_mm", self.c1_arch_max_depth_mm, 2.0, 30.0)
        check_range("c1_lateral_mass_mm", self.c1_lateral_mass_mm, 5.0, 60.0)
        check_range("c2_max_canal_above_mm", self.c2_max_canal_above_mm, 0.0, 100.0)
        check_range("bone_hu", self.bone_hu, 50.0, 2000.0)
        check_range("cancellous_hu", self.cancellous_hu, 0.0, self.bone_hu)
        check_range("spine_radius_mm", self.spine_radius_mm, 20.0, 150.0)
        check_range("body_half_width_mm", self.body_half_width_mm, 5.0, 60.0)
        check_range("body_depth_mm", self.body_depth_mm, 20.0, 150.0)
        check_range("endplate_window_mm", self.endplate_window_mm, 1.0, 20.0)
        check_range("min_disc_score", self.min_disc_score, 0.0, 1.0)
        check_range("disc_peak_fraction", self.disc_peak_fraction, 0.0, 1.0)
        check_range("disc_tilt_max_deg", self.disc_tilt_max_deg, 0.0, 60.0)
        check_range("disc_tilt_step_deg", self.disc_tilt_step_deg, 0.5, 30.0)
        check_range("disc_regularity_weight", self.disc_regularity_weight, 0.0, 20.0)
        check_range("min_edge_body_pitch", self.min_edge_body_pitch, 0.0, 2.0)
        check_range("disc_box_smoothing_mm", self.disc_box_smoothing_mm, 0.0, 50.0)
        check_min_max("disc_search_mm", self.disc_search_mm)
        check_range("min_body_height_mm", self.min_body_height_mm, 1.0, 60.0)
        check_range("arch_depth_mm", self.arch_depth_mm, 2.0, 40.0)
        check_range("arch_half_width_mm", self.arch_half_width_mm, 2.0, 30.0)
        check_range("arch_marker_half_width_mm", self.arch_marker_half_width_mm, 2.0, 40.0)
        check_range("min_arch_mm", self.min_arch_mm, 0.0, 40.0)
        if self.anchor_level is not None:
            if str(self.anchor_level).upper() not in LEVEL_NAMES:
                raise ValueError(f"anchor level {self.anchor_level!r} is not one of C1..S5")
            self.anchor_level = str(self.anchor_level).upper()
            if self.anchor_ras is None:
                raise ValueError("anchor_level needs anchor_ras (a RAS point in mm inside that vertebra)")
        if self.anchor_ras is not None:
            if len(self.anchor_ras) != 3:
                raise ValueError(f"anchor_ras must be three numbers R, A, S (mm), got {self.anchor_ras}")
            self.anchor_ras = tuple(float(v) for v in self.anchor_ras)
            if self.anchor_level is None:
                raise ValueError("anchor_ras needs anchor_level (e.g. 'L1')")


@dataclass
class VertebraeMRIParams:
    """Vertebral bodies and levels on MRI (T1 or T2) when there is no CT.

    The user anchor (``VertebraeParams.anchor_level`` / ``anchor_ras``) is shared with the CT
    engine; the settings here only concern finding the bodies (:mod:`seg_vertebrae_mri`).

    Attributes
    ----------
    working_spacing_mm : float
        Isotropic spacing (mm) of the working grid when the image is more anisotropic than
        ``max_anisotropy`` or finer than 0.75 of it (otherwise an exact axis permutation of the
        image is used).
    max_anisotropy : float
        Largest voxel-size ratio used without resampling.
    centerline_smoothing_mm : float
        Gaussian smoothing (sigma, mm) of the cord centreline that the profile follows.
    default_sac_front_mm : float
        Distance (mm) from the cord centre to the front of the thecal sac when no sac mask is
        given.
    band_offset_mm, band_depth_mm : float
        The sampling band starts ``band_offset_mm`` anterior of the thecal sac's front and is
        ``band_depth_mm`` deep (mm), i.e. inside the vertebral body column.
    band_half_width_mm : float
        Half width (mm, left-right) of the sampling band.
    level_window_mm : float
        Length (mm) of the running median along the cord that gives the local marrow level.
    disc_search_mm : tuple of float
        (min, max) vertebral pitch (mm) searched in the profile's autocorrelation; discs closer
        than 0.6 pitch are one disc.
    min_periodicity : float
        Smallest autocorrelation of the disc profile at the vertebral pitch; below it the profile
        shows no periodic body/disc pattern and the bodies are "not found".
    min_disc_contrast : float
        Smallest disc prominence, as relative deviation ``|I - marrow| / marrow`` of the band's
        median intensity from the local marrow level.
    min_body_height_mm : float
        Shortest body kept between two discs (mm); half of it at the field's edge.
    smoothing_mm : float
        Gaussian smoothing (sigma, mm) of the image on which the body outline and marrow region
        are found (noisy marrow texture); voxels within this distance of that region that are
        marrow-like on the unsmoothed image are added back (the smoothing moves borders inwards).
    marrow_tolerance_sd : float
        Marrow voxels lie within this many robust standard deviations of the body's median.
    marrow_tolerance_fraction : float
        ... but the window is never narrower than this fraction of the body's median intensity.
    body_max_half_width_mm, body_max_depth_mm : float
        A body lies within this left-right half width of the cord axis and this depth (mm)
        anterior of the thecal sac's front.
    sac_margin_mm : float
        Body voxels lie at least this far (mm) anterior of the thecal sac's front.
    opening_mm : float
        Radius (mm) of the opening that cuts thin marrow-like bridges (pedicles, rib heads,
        partial-volume voxels across the cortex); the border it shaves off is given back by a
        geodesic dilation of the same reach inside the marrow-like voxels.
    cortex_mm : float
        The marrow region is grown by this thickness (mm) for the cortical shell, dark on T1 and
        T2 and not separable from its surroundings on MRI.
    replaced_marrow_contrast : float
        A body-length plateau of the band profile whose level differs from the neighbouring
        bodies' marrow by more than this fraction (relative) is a body whose marrow is replaced
        (e.g. by a lytic metastasis): it counts as a body between its discs and its outline is
        taken from the neighbouring bodies (documented setting, not a published threshold).
    """

    working_spacing_mm: float = 1.0
    max_anisotropy: float = 2.0
    centerline_smoothing_mm: float = 10.0
    default_sac_front_mm: float = 7.0
    band_offset_mm: float = 5.0
    band_depth_mm: float = 10.0
    band_half_width_mm: float = 5.0
    level_window_mm: float = 40.0
    disc_search_mm: tuple[float, float] = (12.0, 45.0)
    min_periodicity: float = 0.3
    min_disc_contrast: float = 0.1
    min_body_height_mm: float = 8.0
    smoothing_mm: float = 1.0
    marrow_tolerance_sd: float = 3.0
    marrow_tolerance_fraction: float = 0.15
    body_max_half_width_mm: float = 30.0
    body_max_depth_mm: float = 45.0
    sac_margin_mm: float = 1.0
    opening_mm: float = 2.0
    cortex_mm: float = 1.0
    replaced_marrow_contrast: float = 0.25

    def __post_init__(self):
        check_numeric_fields(self)
        check_range("working_spacing_mm", self.working_spacing_mm, 0.3, 3.0)
        check_range("max_anisotropy", self.max_anisotropy, 1.0, 10.0)
        check_range("centerline_smoothing_mm", self.centerline_smoothing_mm, 0.0, 30.0)
        check_range("default_sac_front_mm", self.default_sac_front_mm, 0.0, 30.0)
        check_range("band_offset_mm", self.band_offset_mm, 0.0, 30.0)
        check_range("band_depth_mm", self.band_depth_mm, 2.0, 40.0)
        check_range("band_half_width_mm", self.band_half_width_mm, 1.0, 20.0)
        check_range("level_window_mm", self.level_window_mm, 10.0, 200.0)
        check_min_max("disc_search_mm", self.disc_search_mm)
        check_range("min_periodicity", self.min_periodicity, 0.0, 1.0)
        check_range("min_disc_contrast", self.min_disc_contrast, 0.0, 5.0)
        check_range("min_body_height_mm", self.min_body_height_mm, 1.0, 60.0)
        check_range("smoothing_mm", self.smoothing_mm, 0.0, 5.0)
        check_range("marrow_tolerance_sd", self.marrow_tolerance_sd, 0.5, 20.0)
        check_range("marrow_tolerance_fraction", self.marrow_tolerance_fraction, 0.0, 1.0)
        check_range("body_max_half_width_mm", self.body_max_half_width_mm, 5.0, 80.0)
        check_range("body_max_depth_mm", self.body_max_depth_mm, 10.0, 120.0)
        check_range("sac_margin_mm", self.sac_margin_mm, 0.0, 10.0)
        check_range("opening_mm", self.opening_mm, 0.0, 5.0)
        check_range("cortex_mm", self.cortex_mm, 0.0, 5.0)
        check_range("replaced_marrow_contrast", self.replaced_marrow_contrast, 0.05, 5.0)


@dataclass
class CystEdemaParams:
    """Cyst and edema segments next to an intradural tumor (:mod:`seg_cyst_edema`).

    Intensity levels are measured on the case itself: the normal cord (histogram mode inside the
    cord mask) and the CSF (the cord pass's CSF median on T2; the median of the T2-defined CSF on
    T1/T1c). Every value below is a documented setting chosen on the project's phantoms, not a
    published threshold.

    Attributes
    ----------
    smoothing_mm : float
        Gaussian smoothing (sigma, mm) of T2, T1 and T1c before the intensity rules.
    fluid_fraction_t2 : float
        Fluid on T2: at least ``cord + f * (CSF - cord)`` (cysts are CSF-bright).
    fluid_fraction_t1 : float
        Fluid on T1 (or T1c): at most ``CSF + f * (cord - CSF)`` (cysts are CSF-dark).
    edema_fraction_t2 : float
        Edema on T2: at least ``cord + f * (CSF - cord)`` and below the fluid level.
    min_enhancement : float
        The tumor enhances when its 90th-percentile T1c exceeds the cord's level by this fraction
        of the cord's level; without enhancement edema is not separated from tumor.
    enhancing_fraction : float
        Enhancing voxels: T1c at least ``cord + f * (tumor - cord)`` (0.5: half-maximum).
    adjoin_mm : float
        A cyst or edema region must come within this distance (mm) of the tumor (edema: of the
        tumor or a cyst).
    min_cyst_ml, min_edema_ml : float
        Smallest volumes (mL) reported as a cyst (each region) or as edema (in total).
    edema_core_mm : float
        Edema is first found this far (mm) inside edema-like tissue and away from the solid
        tumor, where partial-volume voxels of the cord surface and of the tumor's border cannot
        mimic it, then grown back ``regrow_steps`` voxel layers into edema-like voxels.
    regrow_steps : int
        Voxel layers (face-connected) the edema core grows back.
    search_mm : float
        Only the region within this distance (mm) of the tumor's bounding box is examined; a
        fluid region reaching its faces is the subarachnoid space, not a cyst.
    """

    smoothing_mm: float = 0.3
    fluid_fraction_t2: float = 0.7
    fluid_fraction_t1: float = 0.5
    edema_fraction_t2: float = 0.25
    min_enhancement: float = 0.25
    enhancing_fraction: float = 0.5
    adjoin_mm: float = 2.5
    min_cyst_ml: float = 0.03
    min_edema_ml: float = 0.05
    edema_core_mm: float = 1.0
    regrow_steps: int = 2
    search_mm: float = 60.0

    def __post_init__(self):
        check_numeric_fields(self)
        check_range("smoothing_mm", self.smoothing_mm, 0.0, 3.0)
        check_range("fluid_fraction_t2", self.fluid_fraction_t2, 0.3, 0.95)
        check_range("fluid_fraction_t1", self.fluid_fraction_t1, 0.05, 0.9)
        check_range("edema_fraction_t2", self.edema_fraction_t2, 0.05, self.fluid_fraction_t2)
        check_range("min_enhancement", self.min_enhancement, 0.0, 5.0)
        check_range("enhancing_fraction", self.enhancing_fraction, 0.1, 0.9)
        check_range("adjoin_mm", self.adjoin_mm, 0.0, 20.0)
        check_range("min_cyst_ml", self.min_cyst_ml, 0.0, 50.0)
        check_range("min_edema_ml", self.min_edema_ml, 0.0, 50.0)
        check_range("edema_core_mm", self.edema_core_mm, 0.0, 5.0)
        check_range("regrow_steps", self.regrow_steps, 0, 10)
        check_range("search_mm", self.search_mm, 5.0, 300.0)


@dataclass
class SegmentationParams:
    """What the segmentation stage runs and with which engine.

    Attributes
    ----------
    cord_engine, tumor_engine : str
        ``"classical"`` (default) or ``"monai"`` (needs the ``ml`` extra in ``python``).
    model_path : str or None
        TorchScript file or MONAI bundle directory for the MONAI engine (:mod:`monai_engine`);
        default the project's own phantom-trained network (``monai_engine.PHANTOM_MODEL``).
    python : str or None
        Interpreter that runs the out-of-process inference (default: the current one).
    device : str
        ``"auto"`` (GPU when present), ``"cpu"`` or ``"cuda"``.
    foreground_seeds_ras, background_seeds_ras : list of RAS points (mm)
        Extra tumor seeds ("grow from seeds" refinement).
    cord, tumor, vertebrae : the engines' own parameters.
    vertebrae_mri : VertebraeMRIParams
        Vertebral bodies on MRI (used when there is no CT; the anchor is ``vertebrae``'s).
    cyst_edema : CystEdemaParams
        Cyst and edema segments next to the tumor.
    """

    cord_engine: str = "classical"
    tumor_engine: str = "classical"
    model_path: str | None = None
    python: str | None = None
    device: str = "auto"
    foreground_seeds_ras: list = field(default_factory=list)
    background_seeds_ras: list = field(default_factory=list)
    cord: CordParams = field(default_factory=CordParams)
    tumor: TumorParams = field(default_factory=TumorParams)
    vertebrae: VertebraeParams = field(default_factory=VertebraeParams)
    vertebrae_mri: VertebraeMRIParams = field(default_factory=VertebraeMRIParams)
    cyst_edema: CystEdemaParams = field(default_factory=CystEdemaParams)

    def __post_init__(self):
        check_numeric_fields(self)
        for name in ("cord_engine", "tumor_engine"):
            if getattr(self, name) not in ENGINES:
                raise ValueError(f"{name} must be one of {ENGINES}, got {getattr(self, name)!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("foreground_seeds_ras", "background_seeds_ras"):
            pts = getattr(self, name)
            for p in pts:
                if len(p) != 3:
                    raise ValueError(f"{name}: every seed must be three numbers R, A, S (mm), got {p}")

    @classmethod
    def expand_shorthands(cls, data: dict) -> dict:
        """``{"anchor": {"level": "L1", "ras": [r, a, s]}}`` (the user-named vertebra, as
        ``--level-anchor`` writes it) -> ``vertebrae.anchor_level`` / ``vertebrae.anchor_ras``."""
        if "anchor" not in data:
            return data
        data = dict(data)
        anchor = data.pop("anchor") or {}
        if not isinstance(anchor, dict) or set(anchor) - {"level", "ras"}:
            raise ValueError(f"anchor must be {{'level': 'L1', 'ras': [r, a, s]}}, got {anchor!r}")
        vertebrae = dict(data.get("vertebrae") or {})
        vertebrae.setdefault("anchor_level", anchor.get("level"))
        vertebrae.setdefault("anchor_ras", anchor.get("ras"))
        data["vertebrae"] = vertebrae
        return data
