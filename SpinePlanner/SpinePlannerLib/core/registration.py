"""Rigid alignment of one HU image onto another, with a residual in millimetres (L1).

Two images of the same patient from different sessions or scanners (a CT and a synthetic CT, an
angiography and a planning CT) each carry their own scanner world frame. The ``moving`` image is
registered rigidly (Mattes mutual information, SimpleITK) to the ``fixed`` one, which gives the
transform from the moving image's world to the fixed image's world; everything is then measured
in one world frame.

Frames: :attr:`RigidRegistration.moving_to_fixed_ras` is a 4x4 matrix mapping a point in the
moving image's RAS world (mm) to the same anatomical point in the fixed image's RAS world.
ITK works in LPS; the conversion applies ``diag(-1, -1, 1)`` on both sides of the whole matrix.
:func:`moved` carries a volume into the fixed world (same voxels, new affine).

The residual is the mean symmetric distance (mm) between the bone surfaces (HU >= a threshold)
of the two aligned images near the focus. It bounds the misalignment from above: it also
contains any real difference between the two images' bone (e.g. a synthetic CT's modelling
error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from SpinePlannerLib.core.geometry import resample, world_overlap_fraction
from SpinePlannerLib.core.imageio import volume_to_sitk
from SpinePlannerLib.core.param_checks import check_numeric_fields, check_positive
from SpinePlannerLib.core.volume import LPS_TO_RAS, Volume
from SpinePlannerLib.planning.context import Progress, no_progress


def optimizer_stop_note(itk_text: str, iterations: int) -> str:
    """A plain sentence for ITK's optimizer stop condition (its raw text stays out of the plan)."""
    low = itk_text.lower()
    if "step too small" in low or "convergence" in low or "converged" in low:
        return f"the registration converged after {iterations} iterations"
    if "maximum number of iterations" in low or "iteration limit" in low:
        return f"the registration stopped at its iteration limit ({iterations}) before converging: check the alignment"
    return f"the registration stopped after {iterations} iterations"


# ---------------------------------------------------------------- small mask and grid helpers


def crop_volume(volume: Volume, box: tuple[slice, ...]) -> Volume:
    """The sub-volume ``volume.array[box]`` with its affine moved to the box's first voxel."""
    start = np.array([s.start for s in box], float)
    affine = volume.affine.copy()
    affine[:3, 3] = volume.ijk_to_ras(start)
    return Volume(volume.array[box], affine, volume.name, dict(volume.meta))


def distance_from_mask_mm(mask: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm) of every voxel centre to the nearest voxel of ``mask`` (0 inside).

    Exact for grids with orthogonal axes (any rotation, anisotropic spacing)."""
    return ndimage.distance_transform_edt(~mask, sampling=np.asarray(spacing, float))


def moved(volume: Volume, transform_ras) -> Volume:
    """``volume`` expressed in another world frame: same voxels, affine ``transform_ras @ affine``."""
    return Volume(volume.array, np.asarray(transform_ras, float) @ volume.affine, volume.name, dict(volume.meta))


def crop_around(volume: Volume, center_ras, radius_mm: float) -> Volume:
    """The part of ``volume`` within an index box covering a ball of ``radius_mm`` around ``center_ras``."""
    ijk = volume.ras_to_ijk(np.asarray(center_ras, float))
    half = np.ceil(radius_mm / volume.spacing).astype(int) + 1
    lo = np.clip(np.floor(ijk).astype(int) - half, 0, np.asarray(volume.shape3) - 1)
    hi = np.clip(np.ceil(ijk).astype(int) + half + 1, lo + 1, volume.shape3)
    return crop_volume(volume, tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True)))


REACH_MARGIN_MM = 30.0
"""How far (mm) beyond the moving region's bounding box the fixed image is kept for the
metric: more than any misalignment rigid registration is meant to correct plus the smoothing
kernels (3 sigma of at most 2 mm)."""


def reachable_part(fixed: Volume, moving_part: Volume, *, margin_mm: float = REACH_MARGIN_MM) -> Volume:
    """The index box of ``fixed`` covering ``moving_part``'s field of view (world bounding box)
    plus ``margin_mm``: the only voxels the metric can sample. ``fixed`` itself when that box
    is the whole image (then the registration is exactly as without cropping; otherwise the
    mutual-information histogram range is that of the box, which is what the metric sees)."""
    lo, hi = moving_part.bounds_ras()
    corners = np.array([[a, b, c] for a in (lo[0] - margin_mm, hi[0] + margin_mm)
                        for b in (lo[1] - margin_mm, hi[1] + margin_mm) for c in (lo[2] - margin_mm, hi[2] + margin_mm)])
    ijk = fixed.ras_to_ijk(corners)
    start = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, np.asarray(fixed.shape3) - 1)
    stop = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, start + 1, fixed.shape3)
    if np.all(start == 0) and np.all(stop == np.asarray(fixed.shape3)):
        return fixed
    return crop_volume(fixed, tuple(slice(int(a), int(b)) for a, b in zip(start, stop, strict=True)))


def extra_shrink(metric_image: Volume, other: Volume) -> int:
    """Integer factor by which every level's shrink factor is multiplied so that the metric's
    finest sampling grid is not finer than the coarser image (``floor(other's finest voxel /
    metric image's coarsest voxel)``, at least 1): a 0.5 mm CT registered to a 1 mm synthetic
    CT is sampled at 1 mm. 1 (no change) when the voxel sizes are within a factor of 2."""
    return max(1, int(np.floor(float(np.min(other.spacing)) / float(np.max(metric_image.spacing)) + 1e-6)))


# ---------------------------------------------------------------- parameters and result

@dataclass
class RigidRegistrationParams:
    """Rigid alignment of one HU image onto another (Mattes mutual information, SimpleITK).

    Attributes
    ----------
    trust_headers : bool
        Skip registration and use the image headers as they are (scanner coordinates already
        agree, or the user aligned the images). Default False.
    same_grid_tol_mm : float
        Images whose grids (shape and affine) agree within this tolerance (mm) are taken as
        aligned and not registered.
    focus_radius_mm : float
        The metric is evaluated within this radius (mm) of the focus (e.g. the lesion centroid),
        so the vertebrae next to it drive the alignment (the spine flexes between sessions).
        0 = whole overlap.
    histogram_bins : int
        Mattes mutual information histogram bins.
    sampling_fraction : float
        Fraction of the metric image's voxels sampled for the metric (0 < f <= 1).
    max_iterations : int
        Optimiser iterations per resolution level.
    shrink_factors : tuple of int
        Multi-resolution shrink factors (coarse to fine), multiplied by :func:`extra_shrink`
        when the metric image's voxels are less than half the other image's.
    smoothing_sigmas_mm : tuple of float
        Gaussian smoothing per level (mm), same length as ``shrink_factors``.
    residual_bone_hu : float
        Bone threshold (HU) for the residual: mean distance (mm) between the bone surfaces of
        the two images after alignment.
    residual_warn_mm : float
        A residual above this (mm) raises a warning flag.
    seed : int
        Seed of the metric's random sampling (0 = SimpleITK's wall clock: not reproducible).
    threads : int
        Registration threads; 1 (default) gives exactly reproducible results (a multi-threaded
        metric sums in a schedule-dependent order) and costs little on the focus neighbourhood.
    """

    trust_headers: bool = False
    same_grid_tol_mm: float = 1e-3
    focus_radius_mm: float = 50.0
    histogram_bins: int = 50
    sampling_fraction: float = 0.2
    max_iterations: int = 100
    shrink_factors: tuple = (4, 2, 1)
    smoothing_sigmas_mm: tuple = (2.0, 1.0, 0.0)
    residual_bone_hu: float = 250.0
    residual_warn_mm: float = 2.0
    seed: int = 1
    threads: int = 1

    def __post_init__(self):
        check_numeric_fields(self)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        self.shrink_factors = tuple(int(s) for s in self.shrink_factors)
        self.smoothing_sigmas_mm = tuple(float(s) for s in self.smoothing_sigmas_mm)
        if len(self.shrink_factors) != len(self.smoothing_sigmas_mm) or not self.shrink_factors:
            raise ValueError("shrink_factors and smoothing_sigmas_mm must be non-empty and of equal length")
        if any(s < 1 for s in self.shrink_factors):
            raise ValueError(f"shrink_factors must be >= 1, got {self.shrink_factors}")
        if not 0 < self.sampling_fraction <= 1:
            raise ValueError(f"sampling_fraction must be in (0, 1], got {self.sampling_fraction}")
        if self.histogram_bins < 8:
            raise ValueError(f"histogram_bins must be >= 8, got {self.histogram_bins}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")
        check_positive("focus_radius_mm", self.focus_radius_mm, allow_zero=True)
        check_positive("same_grid_tol_mm", self.same_grid_tol_mm)
        check_positive("residual_warn_mm", self.residual_warn_mm)


@dataclass
class RigidRegistration:
    """How the moving image was brought onto the fixed image's world frame.

    Attributes
    ----------
    method : str
        ``"identical grid"``, ``"headers"`` (trusted, not registered) or
        ``"rigid mutual information"``.
    moving_to_fixed_ras : np.ndarray (4, 4)
        Moving image RAS (mm) -> fixed image RAS (mm).
    residual_mm, initial_residual_mm : float or None
        Mean bone-surface distance after / before registration (None when either image has no
        bone near the focus).
    metric, initial_metric : float or None
        Mattes mutual information after / before (more negative = better aligned).
    iterations : int
        Optimiser iterations over all levels.
    notes : list of str
    focus_ras : np.ndarray (3,) or None
        Focus in the fixed world (mm).
    """

    TRANSFORM_KEY: ClassVar[str] = "moving_to_fixed_ras"
    RESIDUAL_DEFINITION: ClassVar[str] = "mean symmetric distance between the bone surfaces of the two images near the focus"

    method: str
    moving_to_fixed_ras: np.ndarray
    residual_mm: float | None = None
    initial_residual_mm: float | None = None
    metric: float | None = None
    initial_metric: float | None = None
    iterations: int = 0
    notes: list[str] = field(default_factory=list)
    focus_ras: np.ndarray | None = None

    @property
    def translation_mm(self) -> float:
        """Displacement (mm) the transform applies at the focus (at the RAS origin without one)."""
        p = np.zeros(3) if self.focus_ras is None else np.asarray(self.focus_ras, float)
        m = self.moving_to_fixed_ras
        return float(np.linalg.norm(m[:3, :3] @ p + m[:3, 3] - p))

    @property
    def rotation_deg(self) -> float:
        """Rotation angle (degrees) of the transform."""
        r = self.moving_to_fixed_ras[:3, :3]
        c = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
        return float(np.degrees(np.arccos(c)))

    def as_dict(self) -> dict:
        rnd = lambda v, n=3: None if v is None else round(float(v), n)  # noqa: E731
        return {
            "method": self.method,
            "residual_mm": rnd(self.residual_mm, 2),
            "initial_residual_mm": rnd(self.initial_residual_mm, 2),
            "residual_definition": self.RESIDUAL_DEFINITION,
            "metric_mattes_mi": rnd(self.metric, 4),
            "initial_metric_mattes_mi": rnd(self.initial_metric, 4),
            "rotation_deg": round(self.rotation_deg, 2),
            "translation_mm": round(self.translation_mm, 2),
            self.TRANSFORM_KEY: [[round(float(v), 6) for v in row] for row in self.moving_to_fixed_ras],
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- residual

def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def bone_surface_distance_mm(a: Volume, b: Volume, *, bone_hu: float, center_ras=None,
                             radius_mm: float = 0.0, step: int = 1) -> float | None:
    """Mean symmetric distance (mm) between the bone surfaces of ``a`` and ``b``.

    Both volumes must be in the same world frame. ``b`` is resampled onto the grid of ``a``
    (cropped to ``radius_mm`` around ``center_ras`` when both are given, and keeping every
    ``step``-th voxel along each axis); only the region covered by both images counts. Returns
    None when either has no bone there.
    """
    if center_ras is not None and radius_mm > 0:
        a = crop_around(a, center_ras, radius_mm)
    if step > 1:  # every ``step``-th voxel of ``a`` (a grid no finer than ``b``'s, see extra_shrink)
        affine = a.affine.copy()
        affine[:3, :3] *= step
        a = Volume(a.array[::step, ::step, ::step], affine, a.name, dict(a.meta))
    s = resample(b, a.affine, a.shape3, order=1, cval=np.nan)
    cover = np.isfinite(s)
    ma = (a.array >= bone_hu) & cover
    mb = np.nan_to_num(s, nan=-1e4) >= bone_hu
    sa, sb = _surface(ma), _surface(mb)
    if sa.sum() < 10 or sb.sum() < 10:
        return None
    da = distance_from_mask_mm(sb, a.spacing)[sa]
    db = distance_from_mask_mm(sa, a.spacing)[sb]
    return float(np.concatenate([da, db]).mean())


# ---------------------------------------------------------------- registration

def _itk_affine(transform: sitk.Euler3DTransform) -> np.ndarray:
    """4x4 LPS matrix of an ITK matrix-offset transform (x -> R (x - c) + c + t)."""
    r = np.asarray(transform.GetMatrix(), float).reshape(3, 3)
    c = np.asarray(transform.GetCenter(), float)
    t = np.asarray(transform.GetTranslation(), float)
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = t + c - r @ c
    return m


def _float_image(volume: Volume) -> sitk.Image:
    return volume_to_sitk(volume.with_array(volume.array.astype(np.float32)))


def _metric_setup(reg: sitk.ImageRegistrationMethod, params: RigidRegistrationParams) -> None:
    reg.SetNumberOfThreads(params.threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=params.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(params.sampling_fraction, params.seed)
    reg.SetInterpolator(sitk.sitkLinear)


def _evaluate(fixed: sitk.Image, moving: sitk.Image, transform, params: RigidRegistrationParams) -> float:
    reg = sitk.ImageRegistrationMethod()
    _metric_setup(reg, params)
    reg.SetInitialTransform(transform, inPlace=False)
    return float(reg.MetricEvaluate(fixed, moving))


def register_rigid(moving: Volume, fixed: Volume, *, params: RigidRegistrationParams | None = None,
                   focus_ras=None, names: tuple[str, str] = ("moving image", "fixed image"),
                   progress: Progress = no_progress) -> RigidRegistration:
    """Rigidly align ``moving`` to ``fixed`` (mutual information) unless they already agree.

    Parameters
    ----------
    moving, fixed : Volume
        Images in HU, each in its own RAS world frame (mm).
    params : RigidRegistrationParams
    focus_ras : array (3,), optional
        The region of interest's centre in the fixed image's world (mm): the metric is computed
        within ``params.focus_radius_mm`` of it and rotations are about it.
    names : (str, str)
        How messages and notes call the moving and the fixed image (e.g. ``("CT", "synthetic CT")``).
    progress : callable(fraction, message)

    Returns
    -------
    RigidRegistration
        ``moving_to_fixed_ras`` maps moving RAS (mm) to fixed RAS (mm).

    Raises
    ------
    ValueError
        When the images do not overlap in world coordinates, or the optimiser fails.
    """
    params = params or RigidRegistrationParams()
    mname, fname = names
    if world_overlap_fraction(moving, fixed) <= 0.0:
        raise ValueError(f"{mname} and {fname} do not overlap in world coordinates")
    focus = None if focus_ras is None else np.asarray(focus_ras, float)
    radius = params.focus_radius_mm if focus is not None else 0.0

    shrink = extra_shrink(moving, fixed)

    def residual(transform_ras):
        return bone_surface_distance_mm(moved(moving, transform_ras), fixed, bone_hu=params.residual_bone_hu,
                                        center_ras=focus, radius_mm=radius, step=shrink)

    identity = np.eye(4)
    if moving.same_grid(fixed, tol_mm=params.same_grid_tol_mm):
        r = residual(identity)
        return RigidRegistration("identical grid", identity, r, r,
                                 notes=[f"{mname} and {fname} share one grid: registration skipped"])
    if params.trust_headers:
        r = residual(identity)
        return RigidRegistration("headers", identity, r, r, notes=["headers trusted: registration skipped"])

    progress(0.05, "rigid registration (mutual information)")
    # ITK maps points of its fixed image into its moving image: the ITK fixed image is ``moving``
    # (cropped around the focus), so the optimised transform is moving world -> fixed world.
    moving_part = crop_around(moving, focus, radius + 10.0) if radius > 0 else moving
    itk_fixed = _float_image(moving_part)
    itk_moving = _float_image(reachable_part(fixed, moving_part))
    lps_center = (LPS_TO_RAS[:3, :3] @ (focus if focus is not None else fixed.ijk_to_ras(
        (np.asarray(fixed.shape3) - 1) / 2.0)))
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(float(v) for v in lps_center))
    # the metric's values are reported at the finest level's sampling (see extra_shrink)
    itk_eval = sitk.Shrink(itk_fixed, [shrink] * 3) if shrink > 1 else itk_fixed
    initial_metric = _evaluate(itk_eval, itk_moving, transform, params)

    reg = sitk.ImageRegistrationMethod()
    _metric_setup(reg, params)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-4,
                                                 numberOfIterations=params.max_iterations,
                                                 relaxationFactor=0.7, gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([f * shrink for f in params.shrink_factors])
    reg.SetSmoothingSigmasPerLevel(list(params.smoothing_sigmas_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(transform, inPlace=True)
    iterations = [0]

    def on_iteration():
        iterations[0] += 1

    reg.AddCommand(sitk.sitkIterationEvent, on_iteration)
    try:
        reg.Execute(itk_fixed, itk_moving)
    except RuntimeError as exc:
        raise ValueError(f"rigid registration of {mname} to {fname} failed: {str(exc).splitlines()[0]}") from None
    progress(0.8, "registration residual")
    final_metric = _evaluate(itk_eval, itk_moving, transform, params)
    m_ras = LPS_TO_RAS @ _itk_affine(transform) @ LPS_TO_RAS
    result = RigidRegistration("rigid mutual information", m_ras, residual(m_ras), residual(identity),
                               final_metric, initial_metric, iterations[0],
                               notes=[optimizer_stop_note(reg.GetOptimizerStopConditionDescription(), iterations[0])],
                               focus_ras=focus)
    # Mattes MI is minimised (more negative = better aligned); never return a worse alignment
    if final_metric > initial_metric + 1e-6 and (result.residual_mm is None or result.initial_residual_mm is None
                                                 or result.residual_mm >= result.initial_residual_mm):
        return RigidRegistration("headers", identity, result.initial_residual_mm, result.initial_residual_mm,
                                 initial_metric, initial_metric, iterations[0],
                                 notes=["registration did not improve the alignment; headers kept"])
    return result
