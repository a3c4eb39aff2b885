"""Rigid alignment of a CT to a synthetic CT, with a residual in millimetres (L1).

The synthetic CT is computed from an MRI of the same session as the MRI that carries the
tumour ROI, so it shares that MRI's world frame. The CT comes from another session: it is
registered rigidly (Mattes mutual information, SimpleITK) to the synthetic CT, which gives the
transform from CT world to MRI world. Everything is then measured in one world frame.

Frames: the result's ``ct_to_sct_ras`` is a 4x4 matrix mapping a point in the CT's RAS world
(mm) to the same anatomical point in the synthetic CT's (= MRI's) RAS world. ITK works in LPS;
the conversion applies ``diag(-1, -1, 1)`` on both sides of the whole matrix.

The residual is the mean symmetric distance (mm) between the bone surfaces (HU >= a
threshold) of the CT and the aligned synthetic CT near the lesion. It bounds the misalignment
from above: it also contains the synthetic CT's own bone-modelling error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from SpinePlannerLib.context import Progress, no_progress
from SpinePlannerLib.geometry import resample, world_overlap_fraction
from SpinePlannerLib.imageio import volume_to_sitk
from SpinePlannerLib.volume import LPS_TO_RAS, Volume

from .masks import crop_volume, distance_from_mask_mm
from .params import RegistrationParams


@dataclass
class RegistrationResult:
    """How the CT was brought onto the synthetic CT's world frame.

    Attributes
    ----------
    method : str
        ``"identical grid"``, ``"headers"`` (trusted, not registered) or
        ``"rigid mutual information"``.
    ct_to_sct_ras : np.ndarray (4, 4)
        CT RAS (mm) -> synthetic CT / MRI RAS (mm).
    residual_mm, initial_residual_mm : float or None
        Mean bone-surface distance after / before registration (None when either image has no
        bone near the lesion).
    """

    method: str
    ct_to_sct_ras: np.ndarray
    residual_mm: float | None = None
    initial_residual_mm: float | None = None
    metric: float | None = None
    initial_metric: float | None = None
    iterations: int = 0
    notes: list[str] = field(default_factory=list)
    focus_ras: np.ndarray | None = None

    @property
    def translation_mm(self) -> float:
        """Displacement (mm) the transform applies at the lesion centre (at the RAS origin without one)."""
        p = np.zeros(3) if self.focus_ras is None else np.asarray(self.focus_ras, float)
        return float(np.linalg.norm(self.ct_to_sct_ras[:3, :3] @ p + self.ct_to_sct_ras[:3, 3] - p))

    @property
    def rotation_deg(self) -> float:
        """Rotation angle (degrees) of the transform."""
        r = self.ct_to_sct_ras[:3, :3]
        c = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
        return float(np.degrees(np.arccos(c)))

    def as_dict(self) -> dict:
        rnd = lambda v, n=3: None if v is None else round(float(v), n)  # noqa: E731
        return {
            "method": self.method,
            "residual_mm": rnd(self.residual_mm, 2),
            "initial_residual_mm": rnd(self.initial_residual_mm, 2),
            "residual_definition": "mean symmetric distance between CT and synthetic-CT bone surfaces near the lesion",
            "metric_mattes_mi": rnd(self.metric, 4),
            "initial_metric_mattes_mi": rnd(self.initial_metric, 4),
            "rotation_deg": round(self.rotation_deg, 2),
            "translation_mm": round(self.translation_mm, 2),
            "ct_to_sct_ras": [[round(float(v), 6) for v in row] for row in self.ct_to_sct_ras],
            "notes": list(self.notes),
        }


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


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def bone_surface_distance_mm(ct: Volume, sct: Volume, *, bone_hu: float, center_ras=None,
                             radius_mm: float = 0.0) -> float | None:
    """Mean symmetric distance (mm) between the bone surfaces of ``ct`` and ``sct``.

    Both volumes must be in the same world frame. The synthetic CT is resampled onto the
    CT grid (cropped to ``radius_mm`` around ``center_ras`` when both are given); only the
    region covered by both images counts. Returns None when either has no bone there.
    """
    if center_ras is not None and radius_mm > 0:
        ct = crop_around(ct, center_ras, radius_mm)
    s = resample(sct, ct.affine, ct.shape3, order=1, cval=np.nan)
    cover = np.isfinite(s)
    a = (ct.array >= bone_hu) & cover
    b = np.nan_to_num(s, nan=-1e4) >= bone_hu
    sa, sb = _surface(a), _surface(b)
    if sa.sum() < 10 or sb.sum() < 10:
        return None
    da = distance_from_mask_mm(sb, ct.spacing)[sa]
    db = distance_from_mask_mm(sa, ct.spacing)[sb]
    return float(np.concatenate([da, db]).mean())


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


def _metric_setup(reg: sitk.ImageRegistrationMethod, params: RegistrationParams) -> None:
    reg.SetNumberOfThreads(params.threads)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=params.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(params.sampling_fraction, params.seed)
    reg.SetInterpolator(sitk.sitkLinear)


def _evaluate(fixed: sitk.Image, moving: sitk.Image, transform, params: RegistrationParams) -> float:
    reg = sitk.ImageRegistrationMethod()
    _metric_setup(reg, params)
    reg.SetInitialTransform(transform, inPlace=False)
    return float(reg.MetricEvaluate(fixed, moving))


def register_ct_to_sct(ct: Volume, sct: Volume, *, params: RegistrationParams | None = None, focus_ras=None,
                       progress: Progress = no_progress) -> RegistrationResult:
    """Rigidly align ``ct`` to ``sct`` (mutual information) unless they already agree.

    Parameters
    ----------
    ct, sct : Volume
        CT and synthetic CT in HU, each in its own RAS world frame (mm).
    params : RegistrationParams
    focus_ras : array (3,), optional
        The lesion centre in the synthetic CT's world (mm): the metric is computed within
        ``params.focus_radius_mm`` of it and rotations are about it.
    progress : callable(fraction, message)

    Returns
    -------
    RegistrationResult

    Raises
    ------
    ValueError
        When the images do not overlap in world coordinates.
    """
    params = params or RegistrationParams()
    if world_overlap_fraction(ct, sct) <= 0.0:
        raise ValueError("CT and synthetic CT do not overlap in world coordinates")
    focus = None if focus_ras is None else np.asarray(focus_ras, float)
    radius = params.focus_radius_mm if focus is not None else 0.0

    def residual(transform_ras):
        return bone_surface_distance_mm(moved(ct, transform_ras), sct, bone_hu=params.residual_bone_hu,
                                        center_ras=focus, radius_mm=radius)

    identity = np.eye(4)
    if ct.same_grid(sct, tol_mm=params.same_grid_tol_mm):
        r = residual(identity)
        return RegistrationResult("identical grid", identity, r, r,
                                  notes=["CT and synthetic CT share one grid: registration skipped"])
    if params.trust_headers:
        r = residual(identity)
        return RegistrationResult("headers", identity, r, r, notes=["headers trusted: registration skipped"])

    progress(0.05, "rigid registration (mutual information)")
    fixed_vol = crop_around(ct, focus, radius + 10.0) if radius > 0 else ct
    fixed = _float_image(fixed_vol)
    moving = _float_image(sct)
    lps_center = (LPS_TO_RAS[:3, :3] @ (focus if focus is not None else sct.ijk_to_ras(
        (np.asarray(sct.shape3) - 1) / 2.0)))
    transform = sitk.Euler3DTransform()
    transform.SetCenter(tuple(float(v) for v in lps_center))
    initial_metric = _evaluate(fixed, moving, transform, params)

    reg = sitk.ImageRegistrationMethod()
    _metric_setup(reg, params)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-4,
                                                 numberOfIterations=params.max_iterations,
                                                 relaxationFactor=0.7, gradientMagnitudeTolerance=1e-8)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel(list(params.shrink_factors))
    reg.SetSmoothingSigmasPerLevel(list(params.smoothing_sigmas_mm))
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(transform, inPlace=True)
    iterations = [0]

    def on_iteration():
        iterations[0] += 1

    reg.AddCommand(sitk.sitkIterationEvent, on_iteration)
    try:
        reg.Execute(fixed, moving)
    except RuntimeError as exc:
        raise ValueError(f"rigid registration of CT to synthetic CT failed: {str(exc).splitlines()[0]}") from None
    progress(0.8, "registration residual")
    final_metric = _evaluate(fixed, moving, transform, params)
    m_ras = LPS_TO_RAS @ _itk_affine(transform) @ LPS_TO_RAS
    result = RegistrationResult("rigid mutual information", m_ras, residual(m_ras), residual(identity),
                                final_metric, initial_metric, iterations[0],
                                notes=[f"optimizer: {reg.GetOptimizerStopConditionDescription()[:160]}"],
                                focus_ras=focus)
    # Mattes MI is minimised (more negative = better aligned); never return a worse alignment
    if final_metric > initial_metric + 1e-6 and (result.residual_mm is None or result.initial_residual_mm is None
                                                 or result.residual_mm >= result.initial_residual_mm):
        return RegistrationResult("headers", identity, result.initial_residual_mm, result.initial_residual_mm,
                                  initial_metric, initial_metric, iterations[0],
                                  notes=["registration did not improve the alignment; headers kept"])
    return result
