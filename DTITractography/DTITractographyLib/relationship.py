"""Tract-tumor relationship measured on RAS streamlines (L1).

Every measure is computed from the streamlines (RAS mm) and the tumor / cord masks on the
anatomical reference grid, through a signed distance to the tumor surface sampled by trilinear
interpolation (positive outside, negative inside, mm; voxel-centre distance maps, accurate to
about half a reference voxel). Directions along the cord use the local cord axis
(:func:`SpinePlannerLib.measurement.lesion.cord_axis`) near the tumor.

Definitions (settings in :class:`~DTITractographyLib.params.RelationshipParams`):

* **tumor-level** streamlines: their extent along the cord axis reaches the tumor's
  cranio-caudal span widened by ``level_margin_mm``; they are the denominator of the fractions;
* **entering**: some point lies deeper than ``core_margin_mm`` inside the tumor (its core);
* **terminating**: an end point lies within ``termination_margin_mm`` of the tumor (or inside);
* **passing around**: tumor-level, not entering, not terminating, spanning the whole tumor;
  reported with their minimal distance to the tumor and their lateral displacement (largest
  in-plane shift beside the tumor relative to the same streamline above/below it);
* **footprint**: an end whose last direction, extrapolated ``footprint_lookahead_mm``, reaches
  the tumor (the streamline's course aims at it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.geometry import mask_centroid_ras, resample
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import cord_axis, in_plane_basis, voxel_extent_along

from .params import RelationshipParams

FAR_MM = 1.0e3
"""Signed distance given to points outside the reference grid (mm)."""
DISPLACEMENT_REFERENCE_MM = 10.0
"""Lateral displacement is measured against the streamline's mean in-plane position within
this distance (mm) above and below the tumor's span (beyond ``level_margin_mm``)."""


@dataclass
class SignedDistance:
    """Signed distance (mm) to a mask's surface on its grid, sampled at RAS points."""

    volume: Volume

    @classmethod
    def from_mask(cls, mask: Volume) -> SignedDistance:
        m = mask.array > 0
        sp = mask.spacing
        outside = ndimage.distance_transform_edt(~m, sampling=sp) if m.any() else np.full(m.shape, FAR_MM)
        inside = ndimage.distance_transform_edt(m, sampling=sp)
        # voxel-centre distances; shift by half a voxel so that 0 lies on the voxel faces
        half = 0.5 * float(np.mean(sp))
        sd = np.where(m, -(inside - half), outside - half).astype(np.float32)
        return cls(mask.with_array(sd, name="signed_distance"))

    def __call__(self, points_ras: np.ndarray) -> np.ndarray:
        ijk = self.volume.ras_to_ijk(np.asarray(points_ras, float).reshape(-1, 3))
        return ndimage.map_coordinates(self.volume.array, ijk.T, order=1, mode="constant", cval=FAR_MM)


@dataclass
class StreamlineRelations:
    """Per-streamline relationship flags and measures (arrays of length n_streamlines)."""

    tumor_level: np.ndarray
    entering: np.ndarray
    terminating: np.ndarray
    passing_around: np.ndarray
    footprint: np.ndarray
    min_distance_mm: np.ndarray
    lateral_displacement_mm: np.ndarray

    def as_dps(self) -> dict[str, np.ndarray]:
        """Data per streamline for TRX/VTP export (float32)."""
        return {k: np.asarray(v, np.float32) for k, v in self.__dict__.items()}


@dataclass
class Relationship:
    """Tract-tumor relationship summary (see module docstring)."""

    n_streamlines: int
    n_tumor_level: int
    fraction_entering: float | None
    fraction_terminating: float | None
    fraction_passing_around: float | None
    fraction_footprint: float | None
    median_min_distance_around_mm: float | None
    max_lateral_displacement_mm: float | None
    per_streamline: StreamlineRelations
    per_level: list = field(default_factory=list)
    tumor_span_mm: tuple[float, float] = (0.0, 0.0)
    axis_ras: np.ndarray | None = None

    def summary(self) -> dict:
        def r(x, nd=3):
            return None if x is None or not np.isfinite(x) else round(float(x), nd)

        return {
            "n_streamlines": self.n_streamlines,
            "n_tumor_level": self.n_tumor_level,
            "fraction_entering_tumor": r(self.fraction_entering),
            "fraction_terminating_in_tumor": r(self.fraction_terminating),
            "fraction_passing_around": r(self.fraction_passing_around),
            "fraction_footprint": r(self.fraction_footprint),
            "median_min_distance_around_mm": r(self.median_min_distance_around_mm, 2),
            "max_lateral_displacement_mm": r(self.max_lateral_displacement_mm, 2),
        }


def _concat(streamlines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(s) for s in streamlines], int)
    pts = np.concatenate(streamlines).astype(float) if len(streamlines) else np.zeros((0, 3))
    owner = np.repeat(np.arange(len(streamlines)), lengths)
    return pts, owner


def _end_rays(streamlines: list[np.ndarray], starts: np.ndarray, ends: np.ndarray, pts: np.ndarray,
              back_mm: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """End points (2n, 3) and unit outward directions of travel at both ends of every
    streamline, the direction taken over the last ``back_mm`` (or the whole streamline)."""
    lengths = ends - starts + 1
    step = np.array([np.linalg.norm(s[1] - s[0]) if len(s) > 1 else 1.0 for s in streamlines])
    k = np.clip(np.ceil(back_mm / np.maximum(step, 1e-6)).astype(int), 1, lengths - 1)
    p_end = np.concatenate([pts[starts], pts[ends]])
    p_back = np.concatenate([pts[starts + k], pts[ends - k]])
    d = p_end - p_back
    n = np.linalg.norm(d, axis=1, keepdims=True)
    return p_end, np.where(n > 0, d / np.maximum(n, 1e-12), 0.0)


def relate(streamlines: list[np.ndarray], tumor: Volume, *, cord: Volume | None = None,
           params: RelationshipParams | None = None, vertebrae: Volume | None = None,
           level_names: dict[int, str] | None = None) -> Relationship:
    """Relate streamlines (RAS mm) to the tumor mask (see module docstring).

    Parameters
    ----------
    streamlines : list of (n, 3) arrays
        RAS mm.
    tumor : Volume
        Tumor mask on the reference grid (non-empty).
    cord : Volume, optional
        Cord mask on the same grid (gives the local cord axis; scanner S otherwise).
    vertebrae : Volume, optional
        Vertebral level index map on the same grid, for the per-level table; ``level_names``
        maps index -> name (e.g. ``{3: "C5"}``).
    """
    params = params or RelationshipParams()
    if not np.any(tumor.array):
        raise ValueError("tumor mask is empty")
    sd = SignedDistance.from_mask(tumor)
    centre = mask_centroid_ras(tumor)
    axis = cord_axis(cord, near_ras=centre)
    u, v = in_plane_basis(axis)
    tumor_pts = tumor.ijk_to_ras(np.argwhere(tumor.array > 0))
    t_tumor = (tumor_pts - centre) @ axis
    half_vox = 0.5 * voxel_extent_along(tumor, axis)
    t_lo, t_hi = float(t_tumor.min() - half_vox), float(t_tumor.max() + half_vox)

    n = len(streamlines)
    empty = np.zeros(n, bool)
    rel = StreamlineRelations(empty.copy(), empty.copy(), empty.copy(), empty.copy(), empty.copy(),
                              np.full(n, np.nan), np.full(n, np.nan))
    if n == 0:
        return Relationship(0, 0, None, None, None, None, None, None, rel, [], (t_lo, t_hi), axis)

    pts, owner = _concat(streamlines)
    dist = sd(pts)
    t = (pts - centre) @ axis
    t_min = ndimage.minimum(t, owner, np.arange(n))
    t_max = ndimage.maximum(t, owner, np.arange(n))
    m = params.level_margin_mm
    rel.tumor_level = (np.asarray(t_max) >= t_lo - m) & (np.asarray(t_min) <= t_hi + m)
    rel.min_distance_mm = np.asarray(ndimage.minimum(dist, owner, np.arange(n)), float)
    rel.entering = rel.min_distance_mm < -params.core_margin_mm

    starts = np.cumsum([0] + [len(s) for s in streamlines[:-1]])
    ends = starts + np.array([len(s) for s in streamlines]) - 1
    rel.terminating = (dist[starts] <= params.termination_margin_mm) | (dist[ends] <= params.termination_margin_mm)

    # footprint: extrapolate both ends along their last direction
    foot = np.zeros(n, bool)
    steps = np.arange(0.5, params.footprint_lookahead_mm + 1e-9, 0.5)
    if len(steps):
        p_end, d_end = _end_rays(streamlines, starts, ends, pts)
        rays = p_end[:, None, :] + steps[None, :, None] * d_end[:, None, :]
        hits = (sd(rays.reshape(-1, 3)).reshape(len(p_end), len(steps)) <= 0.0).any(axis=1)
        foot = hits[:n] | hits[n:]
    rel.footprint = foot | rel.terminating

    # passing around: spans the tumor on both sides without entering or terminating
    spans = (np.asarray(t_min) <= t_lo) & (np.asarray(t_max) >= t_hi)
    rel.passing_around = rel.tumor_level & spans & ~rel.entering & ~rel.terminating
    inplane = np.column_stack([(pts - centre) @ u, (pts - centre) @ v])
    beside = (t >= t_lo) & (t <= t_hi)
    ref_win = DISPLACEMENT_REFERENCE_MM
    above = (t > t_hi + m) & (t <= t_hi + m + ref_win)
    below = (t < t_lo - m) & (t >= t_lo - m - ref_win)
    ref_pts = (above | below) & rel.passing_around[owner]
    counts = np.bincount(owner[ref_pts], minlength=n)
    ref_mean = np.column_stack([np.bincount(owner[ref_pts], weights=inplane[ref_pts, c], minlength=n)
                                for c in range(2)]) / np.maximum(counts, 1)[:, None]
    bes = beside & rel.passing_around[owner] & (counts[owner] > 0)
    if bes.any():
        shift = np.linalg.norm(inplane[bes] - ref_mean[owner[bes]], axis=1)
        disp = np.full(n, -np.inf)
        np.maximum.at(disp, owner[bes], shift)
        rel.lateral_displacement_mm = np.where(np.isfinite(disp), disp, np.nan)

    level = rel.tumor_level
    n_level = int(level.sum())

    def frac(mask):
        return float(np.count_nonzero(mask & level)) / n_level if n_level else None

    around = rel.passing_around
    med_dist = float(np.median(rel.min_distance_mm[around])) if around.any() else None
    disp = rel.lateral_displacement_mm[around]
    max_disp = float(np.nanmax(disp)) if np.any(np.isfinite(disp)) else None
    per_level = []
    if vertebrae is not None and np.any(vertebrae.array):
        per_level = _per_level(vertebrae, level_names, centre, axis, np.asarray(t_min), np.asarray(t_max), rel,
                               dist, owner, starts, ends, t, params.core_margin_mm, params.termination_margin_mm)
    return Relationship(n, n_level, frac(rel.entering), frac(rel.terminating), frac(rel.passing_around),
                        frac(rel.footprint), med_dist, max_disp, rel, per_level, (t_lo, t_hi), axis)


def _per_level(vertebrae: Volume, names, centre, axis, t_min, t_max, rel: StreamlineRelations, dist, owner,
               starts, ends, t, core_margin_mm: float, termination_margin_mm: float) -> list[dict]:
    """Counts per vertebral level (its cranio-caudal range along the cord axis): streamlines
    crossing it, entering the tumor core within it, and ending at the tumor within it."""
    out = []
    arr = vertebrae.array
    n = len(starts)
    end_t = np.concatenate([t[starts], t[ends]])
    end_at_tumor = np.concatenate([dist[starts], dist[ends]]) <= termination_margin_mm
    end_owner = np.concatenate([np.arange(n), np.arange(n)])
    in_core = dist < -core_margin_mm
    for lab in (int(x) for x in np.unique(arr) if x > 0):
        tv = (vertebrae.ijk_to_ras(np.argwhere(arr == lab)) - centre) @ axis
        lo, hi = float(tv.min()), float(tv.max())
        entering = np.unique(owner[in_core & (t >= lo) & (t <= hi)])
        terminating = np.unique(end_owner[end_at_tumor & (end_t >= lo) & (end_t <= hi)])
        out.append({
            "level": (names or {}).get(lab, str(lab)),
            "n_streamlines": int(np.count_nonzero((t_max >= lo) & (t_min <= hi))),
            "n_entering_tumor": int(len(entering)),
            "n_terminating_in_tumor": int(len(terminating)),
        })
    return out


@dataclass
class RegionDiffusion:
    """Mean FA and MD (mm^2/s) in the tumor, a peritumoral ring and reference cord."""

    fa_tumor: float | None
    fa_peritumoral: float | None
    fa_cord_reference: float | None
    md_tumor: float | None
    md_peritumoral: float | None
    md_cord_reference: float | None
    n_voxels: dict


def _masked_sample(map_vol: Volume, fit_mask: Volume, reference: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Normalised-convolution sample of a map (defined inside ``fit_mask``) on the reference grid:
    trilinear of ``map * mask`` over trilinear of ``mask``; returns (values, weight)."""
    m = fit_mask.array.astype(np.float32)
    num = resample(map_vol.with_array(map_vol.array * m), reference.affine, reference.shape3, order=1)
    den = resample(fit_mask.with_array(m), reference.affine, reference.shape3, order=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0)
    return val, den


def region_diffusion(fa: Volume, md: Volume, fit_mask: Volume, tumor: Volume, cord: Volume | None, *,
                     params: RelationshipParams | None = None) -> RegionDiffusion:
    """FA/MD means in the tumor core (whole tumor if the core is empty), a ring of cord within
    ``ring_mm`` around it, and cord farther than ``reference_distance_mm`` (maps on the DWI grid,
    masks on the reference grid; sampled where the fit mask weight is at least 0.5)."""
    params = params or RelationshipParams()
    t = tumor.array > 0
    sp = tumor.spacing
    dist_out = ndimage.distance_transform_edt(~t, sampling=sp)
    dist_in = ndimage.distance_transform_edt(t, sampling=sp)
    core = t & (dist_in > params.core_margin_mm)
    if not core.any():
        core = t
    cord_a = (cord.array > 0) if cord is not None else np.zeros_like(t)
    ring = cord_a & ~t & (dist_out <= params.ring_mm)
    ref = cord_a & ~t & (dist_out > params.reference_distance_mm)
    fa_s, w = _masked_sample(fa, fit_mask, tumor)
    md_s, _ = _masked_sample(md, fit_mask, tumor)
    ok = w >= 0.5
    out = {}
    counts = {}
    for name, region in (("tumor", core), ("peritumoral", ring), ("cord_reference", ref)):
        sel = region & ok
        counts[name] = int(sel.sum())
        out[f"fa_{name}"] = float(fa_s[sel].mean()) if sel.any() else None
        out[f"md_{name}"] = float(md_s[sel].mean()) if sel.any() else None
    return RegionDiffusion(out["fa_tumor"], out["fa_peritumoral"], out["fa_cord_reference"], out["md_tumor"],
                           out["md_peritumoral"], out["md_cord_reference"], counts)
