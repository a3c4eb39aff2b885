"""DWI + cord/tumor masks -> tensors, streamlines, relationship, Setzer verdict (L1).

:func:`analyze` is the one entry point shared by the planning stage (``stage.py``) and the
Slicer logic (``logic.py``). Masks come on any grid (normally the anatomical reference grid)
and are carried to the DWI grid through world coordinates; the cord mask is dilated by
``fit.canal_margin_mm`` to give the fit mask and the canal stopping region.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.dwi_io import DiffusionData
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.geometry import resample_mask_like, world_overlap_fraction
from SpinePlannerLib.core.params import to_dict
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import dilate_mm
from SpinePlannerLib.planning.context import Progress, no_progress

from .classify import SetzerResult, classify_setzer, indeterminate
from .params import TractographyParams
from .relationship import RegionDiffusion, Relationship, region_diffusion, relate
from .reliability import Reliability, assess_reliability
from .tensor_fit import TensorMaps, check_gradient_scheme, fit_tensors
from .tracking import track

NOT_INTRAMEDULLARY = ("intradural_extramedullary", "extradural")
"""Compartments for which no Setzer type is given."""


@dataclass
class DwiMasks:
    """Masks on the DWI grid (``Volume`` of uint8 0/1)."""

    seed: Volume
    canal: Volume
    tumor: Volume | None


@dataclass
class TractographyResult:
    """Everything one tractography run produced (streamlines in RAS mm)."""

    params: TractographyParams
    reliability: Reliability
    tensors: TensorMaps
    masks: DwiMasks
    streamlines: list = field(default_factory=list)
    relationship: Relationship | None = None
    diffusion: RegionDiffusion | None = None
    setzer: SetzerResult | None = None
    seconds: dict = field(default_factory=dict)
    _point_fa: list | None = field(default=None, repr=False)

    def point_fa(self) -> list[np.ndarray]:
        """FA sampled (trilinear) at every streamline point (computed once)."""
        if self._point_fa is None or len(self._point_fa) != len(self.streamlines):
            self._point_fa = sample_at_points(self.tensors.scalar_volume("fa"), self.streamlines)
        return self._point_fa

    def per_streamline(self) -> dict[str, np.ndarray]:
        """Per-streamline relationship flags/measures (empty without a tumor)."""
        return self.relationship.per_streamline.as_dps() if self.relationship is not None else {}

    def section(self) -> dict:
        """The plan.json ``tractography`` section."""
        def r(x, nd=3):
            return None if x is None or not np.isfinite(x) else round(float(x), nd)

        rel = self.relationship
        dif = self.diffusion
        s = self.setzer or indeterminate("not classified")
        out = {
            "reliable": bool(self.reliability.reliable),
            "reasons": list(self.reliability.reasons),
            "n_streamlines": len(self.streamlines),
            "fraction_entering_tumor": r(rel.fraction_entering) if rel else None,
            "fraction_terminating_in_tumor": r(rel.fraction_terminating) if rel else None,
            "fa_tumor": r(dif.fa_tumor) if dif else None,
            "fa_peritumoral": r(dif.fa_peritumoral) if dif else None,
            "fa_cord_reference": r(dif.fa_cord_reference) if dif else None,
            "md_tumor": r(dif.md_tumor, 7) if dif else None,
            "setzer_type": s.setzer_type,
            "pattern": s.pattern,
            "resectability": s.resectability,
            "confidence": s.confidence,
            "rule": s.rule,
            "evidence": {
                "acquisition": self.reliability.evidence(),
                "relationship": rel.summary() if rel else None,
                "md_peritumoral": r(dif.md_peritumoral, 7) if dif else None,
                "md_cord_reference": r(dif.md_cord_reference, 7) if dif else None,
                "region_voxels": dif.n_voxels if dif else None,
            },
            "per_level": list(rel.per_level) if rel else [],
            "method": {
                "tensor_fit": self.tensors.method,
                "tracking": self.params.tracking.algorithm,
                "stopping": f"DTI FA < {self.params.tracking.fa_stop:g} or outside the canal mask",
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            },
            "parameters": to_dict(self.params),
        }
        return out


def unavailable_section(reliability: Reliability, reason: str, params: TractographyParams | None = None) -> dict:
    """The plan section when no tracking could be attempted (e.g. no cord mask): the acquisition
    verdict (``reliable``/``reasons``), no streamlines, and no type with ``reason`` as wording."""
    s = indeterminate(reason)
    params = params or TractographyParams()
    return {
        "reliable": bool(reliability.reliable), "reasons": list(reliability.reasons), "n_streamlines": 0,
        "fraction_entering_tumor": None, "fraction_terminating_in_tumor": None, "fa_tumor": None,
        "fa_peritumoral": None, "fa_cord_reference": None, "md_tumor": None, "setzer_type": None,
        "pattern": s.pattern, "resectability": s.resectability, "confidence": None, "rule": s.rule,
        "evidence": {"acquisition": reliability.evidence(), "not_tracked": reason}, "per_level": [],
        "parameters": to_dict(params),
    }


def sample_at_points(volume: Volume, streamlines) -> list[np.ndarray]:
    """Trilinear samples of a 3D volume at each streamline's RAS points."""
    if not streamlines:
        return []
    lengths = [len(s) for s in streamlines]
    ijk = volume.ras_to_ijk(np.concatenate([np.asarray(s, float) for s in streamlines]))
    values = ndimage.map_coordinates(volume.array, ijk.T, order=1, mode="nearest").astype(np.float32)
    return np.split(values, np.cumsum(lengths)[:-1])


def _to_grid(mask: Volume, like: Volume) -> Volume:
    if mask.same_grid(like):
        return like.with_array((mask.array > 0).astype(np.uint8), name=mask.name)
    return resample_mask_like(mask, like)


def prepare_masks(dwi: DiffusionData, cord: Volume, tumor: Volume | None = None, *, canal_margin_mm: float = 1.5,
                  seed_roi: Volume | None = None) -> DwiMasks:
    """Seed, canal (fit + stopping) and tumor masks on the DWI grid.

    The canal is ``dilate(cord | tumor, canal_margin_mm)`` built on the mask's own (finer)
    grid, then resampled. Seeds are the cord (or ``seed_roi``) on the DWI grid.

    Raises
    ------
    InputError
        The cord mask is empty or does not overlap the DWI in world coordinates.
    """
    ref = dwi.volume.with_array(np.zeros(dwi.volume.shape3, np.uint8), name="dwi_grid")
    if cord is None or not np.any(cord.array):
        raise InputError("cord segmentation", "the cord mask is empty; tractography needs the cord (seed and fit region)")
    if world_overlap_fraction(cord, ref) <= 0.0:
        raise InputError("cord segmentation", "the cord mask does not overlap the DWI in world (RAS) coordinates; "
                         "check that both come from the same subject and session")
    cord_b = cord.with_array(cord.array > 0)
    if tumor is not None and np.any(tumor.array):
        tumor_on_cord = _to_grid(tumor, cord)
        cord_b = cord.with_array(cord_b.array | (tumor_on_cord.array > 0))
    canal_ref = cord.with_array(dilate_mm(cord_b, canal_margin_mm).astype(np.uint8), name="canal")
    canal = _to_grid(canal_ref, ref)
    if not canal.array.any():
        raise InputError("cord segmentation", "the cord mask covers no voxel of the DWI grid (no overlap in world "
                         "coordinates, or the cord is far thinner than a DWI voxel)")
    seed_src = seed_roi if seed_roi is not None else cord
    seed = _to_grid(seed_src, ref)
    if not seed.array.any():
        # a cord thinner than the DWI voxels: fall back to the canal
        seed = canal.with_array(canal.array.copy(), name="seed")
    seed.array &= canal.array
    tumor_dwi = _to_grid(tumor, ref) if tumor is not None and np.any(tumor.array) else None
    return DwiMasks(seed, canal, tumor_dwi)


def analyze(dwi: DiffusionData, cord: Volume, tumor: Volume | None = None, *,
            params: TractographyParams | None = None, vertebrae: Volume | None = None,
            level_names: dict[int, str] | None = None, seed_roi: Volume | None = None,
            compartment: str | None = None, progress: Progress = no_progress) -> TractographyResult:
    """Run fit, reliability gate, tracking, relationship and classification.

    Parameters
    ----------
    dwi : DiffusionData
    cord : Volume
        Cord mask (any grid overlapping the DWI in RAS; normally the anatomical grid).
    tumor : Volume, optional
        Tumor mask; without it no relationship or type is given.
    params : TractographyParams
    vertebrae, level_names : optional
        Vertebral level index map on ``tumor``'s grid and index -> name, for per-level counts.
    seed_roi : Volume, optional
        User seed region instead of the cord.
    compartment : str, optional
        Tumor compartment (``plan["tumor"]["compartment"]``). Setzer types describe
        intramedullary tumors: for ``intradural_extramedullary`` or ``extradural`` the
        relationship is measured but no type is given.

    Raises
    ------
    InputError
        Fewer than 6 gradient directions, masks not overlapping the DWI.
    """
    params = params or TractographyParams()
    seconds = {}
    t0 = time.perf_counter()
    check_gradient_scheme(dwi)
    masks = prepare_masks(dwi, cord, tumor, canal_margin_mm=params.fit.canal_margin_mm, seed_roi=seed_roi)
    progress(0.05, "fitting tensors")
    tensors = fit_tensors(dwi, masks.canal.array > 0, params=params.fit,
                          progress=lambda f, m: progress(0.05 + 0.25 * f, m))
    seconds["tensor_fit"] = time.perf_counter() - t0
    reliability = assess_reliability(dwi, mask=masks.seed.array > 0, tensors=tensors, params=params.reliability)
    result = TractographyResult(params, reliability, tensors, masks, seconds=seconds)

    has_tumor = tumor is not None and np.any(tumor.array)
    cord_on_tumor_grid = _to_grid(cord, tumor) if has_tumor else None
    if has_tumor:
        result.diffusion = region_diffusion(tensors.scalar_volume("fa"), tensors.scalar_volume("md"), masks.canal,
                                            tumor, cord_on_tumor_grid, params=params.relationship)
    if not reliability.reliable:
        result.setzer = indeterminate("acquisition insufficient for tractography (" + "; ".join(reliability.reasons)
                                      + ")")
        progress(1.0, "acquisition insufficient for tractography")
        return result

    t1 = time.perf_counter()
    result.streamlines = track(tensors, masks.seed.array > 0, masks.canal.array > 0, params=params.tracking,
                               progress=lambda f, m: progress(0.3 + 0.5 * f, m))
    seconds["tracking"] = time.perf_counter() - t1
    if not has_tumor:
        result.setzer = indeterminate("no tumor segmentation, so no tract-tumor relationship")
        progress(1.0, "tracking done (no tumor)")
        return result

    t2 = time.perf_counter()
    progress(0.85, "tract-tumor relationship")
    rel = relate(result.streamlines, tumor, cord=cord_on_tumor_grid, params=params.relationship,
                 vertebrae=vertebrae, level_names=level_names)
    result.relationship = rel
    dif = result.diffusion
    evidence = {"fraction_footprint": rel.fraction_footprint, "fraction_passing_around": rel.fraction_passing_around,
                "fa_tumor": dif.fa_tumor, "fa_cord_reference": dif.fa_cord_reference}
    if compartment in NOT_INTRAMEDULLARY:
        result.setzer = indeterminate(f"the tumor is {compartment.replace('_', ' ')}; Setzer types describe "
                                      "intramedullary tumors (tract displacement is reported as evidence)", evidence)
    else:
        result.setzer = classify_setzer(n_tumor_level=rel.n_tumor_level, fraction_entering=rel.fraction_entering,
                                        fraction_terminating=rel.fraction_terminating, params=params.setzer,
                                        evidence=evidence)
    seconds["relationship"] = time.perf_counter() - t2
    progress(1.0, f"Setzer type {result.setzer.setzer_type}")
    return result
