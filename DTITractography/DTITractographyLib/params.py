"""Parameters of the tractography operations: one validated dataclass per operation.

Every threshold here is a documented, adjustable setting tuned on the project's digital
phantoms; none is a published clinical cut-off (CLINICAL.md §3: only the Setzer type
definitions and the "about 12-15 directions / 5 mm slices / low SNR" guidance are published).
The stage reads overrides from ``ctx.params["tractography"]`` as a nested dict, e.g.
``{"tracking": {"seeds_per_voxel": 2}, "setzer": {"entering_type2": 0.1}}``, with
:func:`SpinePlannerLib.core.params.from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from SpinePlannerLib.core.param_checks import (
    check_fraction,
    check_numeric_fields,
    check_positive,
    check_range,
)

STEP_SIZE_RANGE_MM = (0.05, 5.0)
"""Tracking step (mm): below 0.05 mm tracking never ends in practice, above 5 mm it jumps voxels."""

MAX_STREAMLINE_MM = 1000.0
"""Longest streamline (mm): the whole spinal cord is about 450 mm."""

FIT_METHODS = ("WLS", "OLS", "NLLS", "RT")
TRACKING_ALGORITHMS = ("deterministic", "probabilistic")


@dataclass
class TensorFitParams:
    """DWI -> diffusion tensor.

    Attributes
    ----------
    method : str
        ``"WLS"`` weighted least squares (default; DIPY's log-linear model and weights, see
        :func:`~DTITractographyLib.tensor_fit.wls_fit`), ``"OLS"``, ``"NLLS"``, or ``"RT"``
        (DIPY RESTORE, robust to outlier volumes; noise sigma from the WLS residuals).
    canal_margin_mm : float
        The cord (+ tumor) mask is dilated by this many mm to give the fit mask and the canal
        stopping region (includes the partial-volume rim of the cord).
    """

    method: str = "WLS"
    canal_margin_mm: float = 1.5

    def __post_init__(self):
        check_numeric_fields(self)
        self.method = str(self.method).upper()
        if self.method == "RESTORE":
            self.method = "RT"
        if self.method not in FIT_METHODS:
            raise ValueError(f"method must be one of {FIT_METHODS}, got {self.method!r}")
        check_positive("canal_margin_mm", self.canal_margin_mm, allow_zero=True)


@dataclass
class TrackingParams:
    """Streamline tracking in the cord.

    Attributes
    ----------
    algorithm : str
        ``"deterministic"`` (principal tensor direction, trilinear interpolation, EuDX-style) or
        ``"probabilistic"`` (directions drawn from the tensor ODF).
    seeds_per_voxel : int
        Random seeds per DWI voxel of the seed region (the cord mask, or a user ROI).
    step_size_mm : float
        Integration step (mm), 0.05..5 mm.
    max_angle_deg : float
        Largest turn between two steps (degrees).
    fa_stop : float
        Tracking stops where the DTI fractional anisotropy falls below this (never GFA).
    min_length_mm, max_length_mm : float
        Streamlines shorter than ``min_length_mm`` are discarded; tracking stops at ``max_length_mm``
        (at most 1000 mm).
    random_seed : int
        Seed placement and probabilistic sampling are reproducible for a given value (1..2^32-1).
    n_threads : int
        Tracking threads (0 = all cores), 0..1024.
    """

    algorithm: str = "deterministic"
    seeds_per_voxel: int = 1
    step_size_mm: float = 0.5
    max_angle_deg: float = 35.0
    fa_stop: float = 0.2
    min_length_mm: float = 10.0
    max_length_mm: float = 250.0
    random_seed: int = 1
    n_threads: int = 1

    def __post_init__(self):
        check_numeric_fields(self)
        self.algorithm = str(self.algorithm).lower()
        if self.algorithm not in TRACKING_ALGORITHMS:
            raise ValueError(f"algorithm must be one of {TRACKING_ALGORITHMS}, got {self.algorithm!r}")
        if int(self.seeds_per_voxel) != self.seeds_per_voxel or not 1 <= self.seeds_per_voxel <= 64:
            raise ValueError(f"seeds_per_voxel must be an integer 1..64, got {self.seeds_per_voxel}")
        self.seeds_per_voxel = int(self.seeds_per_voxel)
        check_range("step_size_mm", self.step_size_mm, *STEP_SIZE_RANGE_MM)
        if not 0 < self.max_angle_deg <= 90:
            raise ValueError(f"max_angle_deg must be within (0, 90], got {self.max_angle_deg}")
        if not 0 < self.fa_stop < 1:
            raise ValueError(f"fa_stop must be within (0, 1), got {self.fa_stop}")
        check_positive("min_length_mm", self.min_length_mm)
        check_range("max_length_mm", self.max_length_mm, 0.0, MAX_STREAMLINE_MM)
        if self.max_length_mm <= self.min_length_mm:
            raise ValueError("max_length_mm must exceed min_length_mm")
        if self.random_seed < 1:
            raise ValueError("random_seed must be >= 1 (0 means non-reproducible in DIPY)")
        if self.n_threads < 0:
            raise ValueError("n_threads must be >= 0")


@dataclass
class RelationshipParams:
    """Tract-tumor relationship measures (all distances in mm, on the streamlines in RAS).

    Attributes
    ----------
    core_margin_mm : float
        The tumor is eroded by this margin to give its *core*; only a streamline reaching the
        core counts as entering (partial volume at the border does not).
    termination_margin_mm : float
        A streamline end within this distance of the tumor counts as terminating in/at it.
    level_margin_mm : float
        Streamlines whose cranio-caudal extent reaches the tumor's span widened by this margin
        form the denominator of every fraction (the "tumor-level" streamlines).
    footprint_lookahead_mm : float
        A streamline end whose last direction, extrapolated this far, reaches the tumor is in
        the footprint (its course aims at the tumor).
    ring_mm : float
        Width of the peritumoral ring (cord voxels within this distance of the tumor).
    reference_distance_mm : float
        Reference cord: cord voxels farther than this from the tumor.
    """

    core_margin_mm: float = 1.0
    termination_margin_mm: float = 1.5
    level_margin_mm: float = 2.0
    footprint_lookahead_mm: float = 6.0
    ring_mm: float = 3.0
    reference_distance_mm: float = 10.0

    def __post_init__(self):
        check_numeric_fields(self)
        for f in fields(self):
            check_positive(f.name, getattr(self, f.name), allow_zero=True)
        check_positive("ring_mm", self.ring_mm)


@dataclass
class SetzerParams:
    """Setzer type from the relationship fractions (denominator: tumor-level streamlines).

    Rules, applied in order (documented settings tuned on phantoms, not clinical evidence):

    1. fewer than ``min_streamlines`` tumor-level streamlines -> no type (indeterminate);
    2. ``fraction_terminating >= terminating_type3`` -> type 3, tracts end in the lesion
       (encased / infiltrated);
    3. ``fraction_entering >= entering_type2`` -> type 2, some fibers pass through;
    4. otherwise type 1, fibers displaced around the lesion.

    Tuning (deterministic tracking, default settings, phantom seeds 0-3): terminating fraction
    0.10-0.13 displacing, 0.72-0.82 infiltrative, about 0.01 crossing; entering fraction
    <= 0.003 displacing, 0.23-0.27 crossing. Probabilistic tracking: terminating 0.18 displacing,
    0.79-0.84 infiltrative; entering 0.34-0.36 crossing. The thresholds sit between these.

    Attributes
    ----------
    terminating_type3 : float
        Fraction of tumor-level streamlines ending in/at the tumor that means infiltration.
    entering_type2 : float
        Fraction entering the tumor core that means fibers pass through the lesion.
    min_streamlines : int
        Fewer tumor-level streamlines than this give no type.
    """

    terminating_type3: float = 0.25
    entering_type2: float = 0.08
    min_streamlines: int = 20

    def __post_init__(self):
        check_numeric_fields(self)
        check_fraction("terminating_type3", self.terminating_type3)
        check_fraction("entering_type2", self.entering_type2)
        if self.min_streamlines < 1:
            raise ValueError("min_streamlines must be >= 1")


@dataclass
class ReliabilityParams:
    """When the acquisition cannot support tractography (CLINICAL.md §3: fewer than about
    12-15 directions, slices thicker than about 5 mm, low SNR).

    Attributes
    ----------
    min_directions : int
        Fewer distinct diffusion-weighted directions -> unreliable.
    max_voxel_mm : float
        A voxel edge (slice thickness) above this many mm -> unreliable.
    min_snr : float
        Cord b=0 signal over the noise sigma below this -> unreliable.
    """

    min_directions: int = 12
    max_voxel_mm: float = 5.0
    min_snr: float = 10.0

    def __post_init__(self):
        check_numeric_fields(self)
        if self.min_directions < 6:
            raise ValueError("min_directions must be >= 6 (a tensor has 6 unknowns)")
        check_positive("max_voxel_mm", self.max_voxel_mm)
        check_positive("min_snr", self.min_snr, allow_zero=True)


@dataclass
class TractographyParams:
    """All settings of the tractography stage, grouped by operation."""

    fit: TensorFitParams = field(default_factory=TensorFitParams)
    tracking: TrackingParams = field(default_factory=TrackingParams)
    relationship: RelationshipParams = field(default_factory=RelationshipParams)
    setzer: SetzerParams = field(default_factory=SetzerParams)
    reliability: ReliabilityParams = field(default_factory=ReliabilityParams)
