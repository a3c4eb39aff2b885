"""Vessel analysis of an angiogram: tree, tumor feeders, spinal arteries, honest limits (L1).

:func:`analyze_vessels` chains the steps of :mod:`vessels_vesselness`, :mod:`vessels_graph`,
:mod:`vessels_spinal_arteries` and :mod:`vessels_feeders`:

1. region of interest around the tumor (the whole field without one), isotropic working grid;
2. CT: bone, metal and thick bright masses masked (MR: intensities rescaled, no bone masking);
3. multiscale bright-tube vesselness on bright voxels, hysteresis, lumen grown from it;
4. skeleton -> branch graph with lumen radius; branch diameters from the partial-volume
   integral of the lumen (robust for vessels of 1-3 voxels);
5. anterior spinal artery, Adamkiewicz candidate, segmental trees, feeders, warnings.

The image is reported as not showing vessels when the centreline length found is below
``min_vessel_length_mm`` (e.g. a non-contrast CT: blood is about 40 HU, below the lumen
threshold), and as too coarse when its voxels exceed ``max_spacing_mm``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from SpinePlannerLib.core.geometry import world_overlap_fraction
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import cord_axis
from SpinePlannerLib.planning.context import Progress, no_progress
from SpinePlannerLib.vessels.anatomy import CordFrame, LevelMap, side_of
from SpinePlannerLib.vessels.feeders import (
    Feeder,
    SegmentalTree,
    end_reaches_tumor,
    find_feeders,
    find_stub_feeders,
    merge_and_rank,
    name_feeders,
    segmental_trees,
)
from SpinePlannerLib.vessels.graph import VesselGraph, arclength, bridge_gaps, remove_branches, vessel_graph
from SpinePlannerLib.vessels.params import VesselParams
from SpinePlannerLib.vessels.spinal_arteries import (
    adamkiewicz_candidate,
    asa_joins,
    asa_line_ends,
    find_anterior_spinal_artery,
)
from SpinePlannerLib.vessels.vesselness import (
    FULL_CONNECTIVITY,
    MASK_BONE,
    MASK_THICK,
    WorkingGrid,
    bone_and_mass_mask,
    choose_spacing,
    grow_lumen,
    hysteresis,
    is_ct,
    mask_to_grid,
    mr_to_pseudo_hu,
    multiscale_vesselness,
    remove_small_components,
    resample_to_grid,
    roi_box_ras,
    scales_for,
    working_grid_for,
)

ROLE_VESSEL, ROLE_FEEDER, ROLE_ADAMKIEWICZ, ROLE_ASA, ROLE_DRAINING = 1, 2, 3, 4, 5
ROLE_NAMES = {ROLE_VESSEL: "vessel", ROLE_FEEDER: "feeder", ROLE_ADAMKIEWICZ: "adamkiewicz",
              ROLE_ASA: "anterior_spinal_artery", ROLE_DRAINING: "draining_vein"}
"""Role codes of the vessel label map (the same codes as the phantom's ``labels/vessels``)."""

NOT_DETECTABLE = "vessels not detectable on this image"


@dataclass
class VesselAnalysis:
    """Result of :func:`analyze_vessels`. Coordinates RAS mm; arrays on ``grid``.

    Attributes
    ----------
    detectable : bool
        False when the image shows no contrast-filled vessels (``reason`` says why).
    reason : str
    modality : str
        ``"ct"`` or ``"mr"``.
    grid : WorkingGrid or None
    graph : VesselGraph or None
    branch_roles : np.ndarray (n_branches,) of role codes (see ``ROLE_NAMES``)
    branch_diameters : np.ndarray (n_branches,) mm
    feeders : list of Feeder (ranked)
    asa_branches : list of int
    adamkiewicz : dict (present, level, side, branch, hairpin_angle_deg, ...)
    trees : list of SegmentalTree
    role_map : np.ndarray uint8 on ``grid`` (0 background, role codes on the lumen)
    warnings : list of str
    timings : dict step -> seconds
    """

    detectable: bool
    reason: str
    modality: str
    grid: WorkingGrid | None = None
    graph: VesselGraph | None = None
    branch_roles: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    branch_diameters: np.ndarray = field(default_factory=lambda: np.zeros(0))
    feeders: list[Feeder] = field(default_factory=list)
    asa_branches: list[int] = field(default_factory=list)
    asa_length_mm: float = 0.0
    adamkiewicz: dict = field(default_factory=lambda: {"present": False, "level": None, "side": None})
    trees: list[SegmentalTree] = field(default_factory=list)
    role_map: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    spacing_mm: float = 0.0
    tumor_assessed: bool = False

    @property
    def n_branches(self) -> int:
        return 0 if self.graph is None else len(self.graph.branches)

    def role_volume(self) -> Volume | None:
        """The role label map as a Volume on the working grid."""
        if self.role_map is None or self.grid is None:
            return None
        return self.grid.volume(self.role_map, "vessels")

    def to_plan(self) -> dict:
        """The plan.json ``vessels`` section."""
        aka = {k: self.adamkiewicz.get(k) for k in ("present", "level", "side")}
        for k in ("entry_ras", "diameter_mm", "hairpin_angle_deg", "hairpin_confirmed", "parent", "reason"):
            if self.adamkiewicz.get(k) is not None:
                aka[k] = self.adamkiewicz[k]
        out = {
            "detectable": bool(self.detectable),
            "reason": self.reason,
            "n_branches": int(self.n_branches),
            "feeders": [f.as_plan(i + 1) for i, f in enumerate(self.feeders)],
            "adamkiewicz_candidate": aka,
            "warnings": list(self.warnings),
            "modality": self.modality,
            "working_spacing_mm": round(float(self.spacing_mm), 3),
            "tumor_assessed": bool(self.tumor_assessed),
            "total_length_mm": round(float(self.graph.total_length_mm), 1) if self.graph is not None else 0.0,
            "anterior_spinal_artery": {"present": bool(self.asa_branches),
                                       "length_mm": round(float(self.asa_length_mm), 1)},
            "phase": "single (feeding and draining vessels not separated)",
        }
        return out


def _sampler(grid: WorkingGrid, array: np.ndarray, outside: float):
    """``f(points_ras) -> values`` of ``array`` at the nearest working-grid voxel."""
    shape = np.asarray(grid.shape)

    def sample(points: np.ndarray) -> np.ndarray:
        ijk = np.rint(grid.ras_to_ijk(np.atleast_2d(points))).astype(int)
        ok = np.all((ijk >= 0) & (ijk < shape), axis=1)
        out = np.full(len(ijk), outside, float)
        out[ok] = array[tuple(ijk[ok].T)]
        return out

    return sample


def _box_around(mask: np.ndarray, pad: int) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of ``mask`` grown by ``pad`` voxels (clipped to the array)."""
    idx = np.argwhere(mask)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, np.asarray(mask.shape))
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _distance_samplers(grid: WorkingGrid, mask: np.ndarray, pad_mm: float):
    """Distance fields of ``mask`` computed in its bounding box grown by ``pad_mm``.

    Returns ``(signed, nearest)``: ``signed(points)`` is the distance (mm) to the mask surface
    (negative inside; +inf beyond the box), ``nearest(points)`` the RAS centre of the nearest mask
    voxel.
    """
    h = grid.spacing_mm
    box = _box_around(mask, int(np.ceil(pad_mm / h)) + 1)
    sub = mask[box]
    offset = np.array([b.start for b in box])
    inside = ndimage.distance_transform_edt(sub) * h
    outside, idx = ndimage.distance_transform_edt(~sub, return_indices=True)
    signed_sub = np.where(sub, -(inside - 0.5 * h), outside * h - 0.5 * h).astype(np.float32)
    full = np.full(grid.shape, np.inf, np.float32)
    full[box] = signed_sub
    idx = idx.astype(np.int32)
    shape = np.asarray(sub.shape)

    def nearest(points):
        ijk = np.rint(grid.ras_to_ijk(np.atleast_2d(points))).astype(int) - offset
        ijk = np.clip(ijk, 0, shape - 1)
        q = idx[:, ijk[:, 0], ijk[:, 1], ijk[:, 2]].T + offset
        return grid.ijk_to_ras(q)

    return _sampler(grid, full, np.inf), nearest


def _branch_lookup(graph: VesselGraph, step_mm: float):
    """KD-tree over densely resampled branch points: (tree, branch id, arclength, branch length)."""
    pts, ids, arc = [], [], []
    for bid, b in enumerate(graph.branches):
        s = arclength(b.points)
        n = max(2, int(np.ceil(s[-1] / step_mm)) + 1) if len(b.points) > 1 else 1
        si = np.linspace(0.0, s[-1], n)
        if len(b.points) > 1:
            p = np.stack([np.interp(si, s, b.points[:, d]) for d in range(3)], axis=1)
        else:
            p = b.points[:1]
            si = np.zeros(1)
        pts.append(p)
        ids.append(np.full(len(p), bid))
        arc.append(si)
    return cKDTree(np.concatenate(pts)), np.concatenate(ids), np.concatenate(arc)


def branch_diameters(graph: VesselGraph, grid: WorkingGrid, hu: np.ndarray, lumen: np.ndarray, excluded: np.ndarray,
                     *, lumen_hu: float, fallback_bg_hu: float) -> np.ndarray:
    """Mean lumen diameter (mm) of each branch from the partial-volume integral of its lumen.

    The lumen fraction of a voxel is ``(I - bg) / (lumen_hu - bg)`` clipped to [0, 1], with bg
    the median of a shell 2-4 voxels outside the lumen near that branch; summed over the
    voxels nearest to the branch (junction ends trimmed) it gives the cross-section area A, and
    d = 2 sqrt(A / pi). Branches too short to trim fall back to twice the median skeleton radius.
    """
    h = grid.spacing_mm
    nb = len(graph.branches)
    fallback = np.array([b.diameter_mm() for b in graph.branches])
    if nb == 0:
        return fallback
    tree, ids, arc = _branch_lookup(graph, 0.5 * h)
    lengths = np.array([b.length_mm for b in graph.branches])
    near = ndimage.binary_dilation(lumen, structure=FULL_CONNECTIVITY) & ~excluded
    outer = ndimage.binary_dilation(lumen, structure=FULL_CONNECTIVITY, iterations=4)
    inner = ndimage.binary_dilation(lumen, structure=FULL_CONNECTIVITY, iterations=2)
    shell = outer & ~inner & ~excluded
    vox = np.argwhere(near)
    dist, k = tree.query(grid.ijk_to_ras(vox))
    bid, s = ids[k], arc[k]
    shell_vox = np.argwhere(shell)
    bg = np.full(nb, fallback_bg_hu)
    if len(shell_vox):
        _, ks = tree.query(grid.ijk_to_ras(shell_vox))
        sb = ids[ks]
        vals = hu[tuple(shell_vox.T)]
        order = np.argsort(sb, kind="stable")
        bounds = np.searchsorted(sb[order], np.arange(nb + 1))
        for b in range(nb):
            sel = vals[order[bounds[b]:bounds[b + 1]]]
            if len(sel) >= 10:
                bg[b] = float(np.median(sel))
    denom = np.maximum(lumen_hu - bg, 50.0)
    frac = np.clip((hu[tuple(vox.T)] - bg[bid]) / denom[bid], 0.0, 1.0)
    rad_fb = 0.5 * fallback
    trim = 1.0 + rad_fb
    usable = (s >= trim[bid]) & (s <= lengths[bid] - trim[bid])
    area_sum = np.bincount(bid[usable], weights=frac[usable], minlength=nb) * h**3
    eff_len = lengths - 2 * trim
    out = fallback.copy()
    ok = eff_len >= 1.0
    out[ok] = 2.0 * np.sqrt(area_sum[ok] / eff_len[ok] / np.pi)
    out[ok & (area_sum <= 0)] = fallback[ok & (area_sum <= 0)]
    return out


def _lumen_reference(hu: np.ndarray, lumen: np.ndarray, spacing_mm: float, default: float) -> float:
    """Intensity of a pure lumen voxel: median of voxels at least 1.5 voxels deep in the lumen."""
    depth = ndimage.distance_transform_edt(lumen)
    deep = depth >= 2.0
    if np.count_nonzero(deep) >= 20:
        return float(np.median(hu[deep]))
    if np.any(lumen):
        return float(np.percentile(hu[lumen], 95))
    return default


def _role_map(graph: VesselGraph, grid: WorkingGrid, lumen: np.ndarray, roles: np.ndarray) -> np.ndarray:
    out = np.zeros(grid.shape, np.uint8)
    if graph is None or not graph.branches:
        return out
    tree, ids, _ = _branch_lookup(graph, 0.5 * grid.spacing_mm)
    vox = np.argwhere(lumen)
    _, k = tree.query(grid.ijk_to_ras(vox))
    out[tuple(vox.T)] = roles[ids[k]].astype(np.uint8)
    return out


def _reaches_laterally(trees: list[SegmentalTree], tree_of: np.ndarray, branch: int) -> bool:
    """True when the branch belongs to a tree with a segmental root (not the ASA's own twigs)."""
    tid = int(tree_of[branch])
    return tid >= 0 and not trees[tid].from_asa_only and len(trees[tid].branches) > 1


def _resolution_warning(angio: Volume, params: VesselParams) -> str | None:
    worst = float(angio.spacing.max())
    if worst > params.max_spacing_mm:
        return (f"voxel size up to {worst:.2f} mm is too coarse for vessels of about 1 mm (spinal feeders and "
                f"radiculomedullary arteries are often < 1 mm); only vessels wider than about {2 * worst:.1f} mm can "
                "be resolved: a dedicated CTA/MRA/DSA is needed")
    return None


@dataclass
class _Region:
    """The analysed region: isotropic working grid (spacing ``h`` mm), the angiogram on it in
    (pseudo-)HU, and the tumor and cord masks carried onto it."""

    grid: WorkingGrid
    h: float
    hu: np.ndarray
    tumor_ok: bool
    tumor_w: np.ndarray
    cord_ok: bool
    cord_w: np.ndarray | None
    axis: np.ndarray


def _working_region(angio: Volume, tumor: Volume | None, cord: Volume | None, params: VesselParams, modality: str,
                    res_warning: str | None, warnings: list[str], progress: Progress) -> _Region:
    """Working grid around the tumor (the whole image without one), resampled image and masks."""
    tumor_ok = tumor is not None and np.any(tumor.array) and world_overlap_fraction(tumor, angio) > 0
    if tumor is not None and np.any(tumor.array) and not tumor_ok:
        warnings.append("the tumor lies outside the angiography field of view: feeders not assessed")
    if tumor is None or not np.any(tumor.array):
        warnings.append("no tumor segmentation: feeders not assessed")
    cord_ok = cord is not None and np.any(cord.array)
    axis = cord_axis(cord) if cord_ok else np.array([0.0, 0.0, 1.0])
    roi = None
    if tumor_ok:
        idx = np.argwhere(tumor.array > 0)
        pts = tumor.ijk_to_ras(idx[:: max(1, len(idx) // 20000)])
        roi = roi_box_ras(pts, lateral_margin_mm=params.roi_margin_mm, axial_margin_mm=params.roi_axial_margin_mm,
                          axis=axis)
    progress(0.05, "working grid")
    try:
        h = choose_spacing(angio, roi, requested_mm=params.working_spacing_mm, min_mm=params.min_working_spacing_mm,
                           max_voxels=params.max_working_voxels)
        grid = working_grid_for(angio, spacing_mm=h, roi_corners_ras=roi)
    except ValueError:
        tumor_ok = False
        warnings.append("the tumor region does not overlap the angiography: feeders not assessed")
        h = choose_spacing(angio, None, requested_mm=params.working_spacing_mm, min_mm=params.min_working_spacing_mm,
                           max_voxels=params.max_working_voxels)
        grid = working_grid_for(angio, spacing_mm=h)
    if h > params.max_spacing_mm and not res_warning:
        warnings.append(f"the analysed region was resampled to {h:.2f} mm voxels to fit max_working_voxels: "
                        "vessels of about 1 mm may be missed")
    low_value = -1000.0 if modality == "ct" else float(np.min(angio.array))
    hu = resample_to_grid(angio, grid, order=1, cval=low_value)
    if modality == "mr":
        hu = mr_to_pseudo_hu(hu, soft_tissue_hu=params.soft_tissue_hu)
    tumor_w = mask_to_grid(tumor, grid) if tumor_ok else np.zeros(grid.shape, bool)
    if tumor_ok and not np.any(tumor_w):
        tumor_ok = False
        warnings.append("the tumor covers no voxel of the analysed region: feeders not assessed")
    cord_w = mask_to_grid(cord, grid) if cord_ok else None
    return _Region(grid, h, hu, tumor_ok, tumor_w, cord_ok, cord_w, axis)


def _masking(region: _Region, modality: str, params: VesselParams):
    """Bone/thick-mass codes, the tumor core kept out of the search, and the image the vesselness
    filter sees. Returns ``(mask_codes, core, excluded, excluded_all, filtered)``."""
    grid, h, hu, tumor_w, tumor_ok = region.grid, region.h, region.hu, region.tumor_w, region.tumor_ok
    core = tumor_w.copy()
    if tumor_ok and params.tumor_exclusion_mm > 0:
        box = _box_around(tumor_w, int(np.ceil(params.tumor_exclusion_mm / h)) + 1)
        core[box] = ndimage.distance_transform_edt(~tumor_w[box]) * h <= params.tumor_exclusion_mm
    if modality == "ct":
        mask_codes = bone_and_mass_mask(hu, h, lumen_min_hu=params.lumen_min_hu, bone_min_hu=params.bone_min_hu,
                                      max_vessel_radius_mm=params.max_vessel_radius_mm, rim_mm=params.bone_rim_mm,
                                      keep=tumor_w if tumor_ok else None,
                                      interface_mm=params.bone_tumor_interface_mm)
    else:
        mask_codes = np.zeros(grid.shape, np.uint8)
    excluded = mask_codes > 0
    excluded_all = excluded | core
    filt = hu.copy()
    filt[excluded] = params.soft_tissue_hu
    filt[core] = np.minimum(filt[core], params.soft_tissue_hu)
    np.clip(filt, params.soft_tissue_hu - 150.0, params.bone_min_hu, out=filt)
    return mask_codes, core, excluded, excluded_all, filt


def _centreline_graph(region: _Region, vness: np.ndarray, bright: np.ndarray, mask_codes: np.ndarray,
                      core: np.ndarray, modality: str, params: VesselParams):
    """Vessel lumen and its centreline graph (stubs towards the tumor protected from pruning,
    bone-hugging ridges removed, gaps bridged).

    Returns ``(graph, lumen, truncated, tumor_reach)``: ``truncated(end)`` tells a vessel end cut by
    the analysis; ``tumor_reach`` is ``(signed_distance, nearest_tumor_point, masked_at)`` (None without a tumor).
    """
    grid, h, hu, tumor_w, tumor_ok = region.grid, region.h, region.hu, region.tumor_w, region.tumor_ok
    seg = hysteresis(vness, params.vesselness_low, params.vesselness_high)
    seg = remove_small_components(seg, int(np.ceil(params.min_component_mm3 / h**3)))
    lumen = grow_lumen(seg, bright, steps=int(round(params.max_vessel_radius_mm / h)))
    # a thick bright mass cuts the vessels ending at it (the aorta), but not where it is the tumor
    # itself (calcified or enhancing): a vessel ending there reaches the tumor, as a feeder does
    cutting = (mask_codes == MASK_THICK) & ~core
    near_thick = _sampler(grid, ndimage.binary_dilation(cutting, structure=FULL_CONNECTIVITY, iterations=2), 0)
    edge = np.asarray(grid.shape) - 1

    def truncated(end):
        """A vessel end cut by the analysis: at a masked thick vessel (not the tumor) or the region's edge."""
        ijk = grid.ras_to_ijk(end)
        return bool(near_thick(end[None])[0] > 0 or np.any(ijk < 1.5) or np.any(ijk > edge - 1.5))

    protect = tumor_reach = None
    if tumor_ok:
        sd, nearest_tumor_point = _distance_samplers(grid, tumor_w,
                                                     params.feeder_margin_mm + params.bone_gap_mm + 2.0)
        masked_at = _sampler(grid, mask_codes == MASK_BONE, 0.0) if modality == "ct" else None
        tumor_reach = (sd, nearest_tumor_point, masked_at)

        def protect(end, junction):
            """Keep short stubs heading for the tumor (a feeder mostly hidden by bone)."""
            if truncated(end):
                return False
            reaches, target = end_reaches_tumor(end, sd, nearest_tumor_point, params, half_voxel_mm=0.5 * h,
                                                masked=masked_at)
            if not reaches:
                return False
            goal = target if target is not None else nearest_tumor_point(end[None])[0]
            a, b = end - junction, goal - junction
            return float(np.dot(a, b)) >= 0.5 * float(np.linalg.norm(a) * np.linalg.norm(b))

    graph = vessel_graph(lumen, grid.affine, h, prune_length_mm=params.prune_length_mm, protect=protect)
    if modality == "ct" and graph.branches:
        # thin "vessels" that run along the bone surface for most of their length are partial-volume
        # ridges at bone edges (e.g. around a vertebral end plate), not vessels
        cortex_mm = _sampler(grid, (ndimage.distance_transform_edt(hu < params.bone_min_hu) * h).astype(np.float32),
                             np.inf)
        reach = params.bone_rim_mm + 0.4
        hugging = [i for i, b in enumerate(graph.branches)
                   if np.mean(cortex_mm(b.points) <= reach) >= 0.8 and b.diameter_mm() < 1.5]
        graph = remove_branches(graph, hugging)
    if params.bridge_gap_mm > 0 and graph.branches:
        def keep_free(end):
            """Ends cut by the analysis, or at the tumor (feeders), stay free."""
            return truncated(end) or (tumor_ok and float(sd(end[None])[0]) <= params.feeder_margin_mm + 1.0)

        graph = bridge_gaps(graph, max_gap_mm=params.bridge_gap_mm, tangent_mm=params.tangent_length_mm,
                            skip=keep_free)
    return graph, lumen, truncated, tumor_reach


def _adamkiewicz(graph: VesselGraph, asa: list[int], frame, cord_dist, diam, trees: list[SegmentalTree],
                 tree_of: np.ndarray, roles: np.ndarray, params: VesselParams) -> dict:
    """The Adamkiewicz candidate (the ``adamkiewicz`` section); marks its branch in ``roles``."""
    trees_pre, tree_pre = trees, tree_of
    aka = {"present": False, "level": None, "side": None}
    if asa:
        joins = asa_joins(graph, asa, frame, diam, params)
        line_ends = [j for j in asa_line_ends(graph, asa, frame, cord_dist, diam, params)
                     if _reaches_laterally(trees_pre, tree_pre, j.branch)]
        cand = adamkiewicz_candidate(joins + line_ends, params)
        hairpin_seen = cand is not None
        if cand is None and line_ends:  # the ASA is interrupted where it joins: hairpin not measurable
            cand = max(line_ends, key=lambda j: j.diameter_mm)
        if cand is not None:
            tid = int(tree_of[cand.branch])
            tree = trees[tid] if tid >= 0 else None
            roles[cand.branch] = ROLE_ADAMKIEWICZ
            aka = {"present": True,
                   "level": tree.level if tree else None,
                   "side": (tree.side if tree and tree.side else side_of(frame, graph.nodes[cand.node].ras)),
                   "entry_ras": [round(float(v), 2) for v in graph.nodes[cand.node].ras],
                   "diameter_mm": round(cand.diameter_mm, 2),
                   "hairpin_angle_deg": round(cand.angle_deg, 1),
                   "hairpin_confirmed": hairpin_seen,
                   "parent": tree.name if tree and not tree.from_asa_only else None,
                   "branch": cand.branch, "tree": tid}
            if not hairpin_seen:
                aka["reason"] = ("radiculomedullary artery reaching the anterior spinal artery's course where the "
                                 "latter is not seen: hairpin turn not confirmed")
        else:
            aka["reason"] = (f"no branch joins the anterior spinal artery with a hairpin turn (< "
                             f"{params.hairpin_max_angle_deg:.0f} degrees) in the analysed region")
    elif frame is not None:
        aka["reason"] = "no anterior spinal artery candidate found on the anterior cord surface"
    else:
        aka["reason"] = "no spinal cord segmentation"
    return aka


def _assess_feeders(result: VesselAnalysis, region: _Region, lumen: np.ndarray, diam, tumor_reach, truncated,
                    trees: list[SegmentalTree], tree_of: np.ndarray, side_frame, levels, roles: np.ndarray,
                    params: VesselParams) -> None:
    """Tumor feeders (ranked, named by segmental artery) into ``result``; embolization-risk warnings."""
    graph, grid, h, warnings, aka = result.graph, region.grid, region.h, result.warnings, result.adamkiewicz
    asa = result.asa_branches
    sd, nearest_tumor_point, masked_at = tumor_reach
    result.tumor_assessed = True
    spinal = list(asa) + ([aka["branch"]] if aka.get("present") else [])
    cands = find_feeders(graph, diam, sd, nearest_tumor_point, params, half_voxel_mm=0.5 * h, exclude=spinal,
                         masked=masked_at, truncated=truncated)
    kd, ids, _ = _branch_lookup(graph, 0.5 * h)
    vox = np.argwhere(lumen)
    vox_ras = grid.ijk_to_ras(vox)
    _, k = kd.query(vox_ras)
    cands += find_stub_feeders(vox_ras, ids[k], kd.data[k], diam, sd, nearest_tumor_point, params, spacing_mm=h,
                               grid_index=vox, grid_shape=grid.shape, masked=masked_at, exclude=spinal,
                               graph=graph)
    feeders = merge_and_rank(cands, merge_distance_mm=params.merge_distance_mm)
    name_feeders(feeders, trees, tree_of, side_frame, levels)
    for f in feeders:
        if roles[f.branch] == ROLE_VESSEL and not f.stub:
            roles[f.branch] = ROLE_FEEDER
    result.feeders = feeders
    if not feeders:
        warnings.append("no vessel found ending at the tumor surface (within "
                        f"{params.feeder_margin_mm:.1f} mm): no feeder identified")
    if aka.get("present"):
        for rank, f in enumerate(feeders, start=1):
            if f.tree >= 0 and f.tree == aka.get("tree"):
                warnings.append(
                    f"embolization risk: feeder {rank} ({f.parent or 'unnamed segmental artery'}) shares its "
                    "segmental artery with the Adamkiewicz candidate; embolizing it may infarct the spinal cord "
                    "(confirm on selective DSA)")


def analyze_vessels(angio: Volume, *, tumor: Volume | None = None, cord: Volume | None = None,
                    vertebrae: Volume | None = None, level_names: dict | None = None,
                    params: VesselParams | None = None, progress: Progress = no_progress) -> VesselAnalysis:
    """Vessel tree, tumor feeders, anterior spinal artery and Adamkiewicz candidate.

    Parameters
    ----------
    angio : Volume
        CT angiography (HU) or contrast MR angiography / 3D rotational angiography, RAS, any grid.
    tumor, cord : Volume or None
        Binary masks on any grid in the same world frame (registered).
    vertebrae : Volume or None
        Label map of vertebral level indices; ``level_names`` maps ``"1"`` -> ``"T9"``...
    params : VesselParams
    progress : callable(fraction, message)

    Returns
    -------
    VesselAnalysis
    """
    params = params or VesselParams()
    if angio.array.ndim != 3:
        raise ValueError(f"angiography must be a 3D image, got {angio.array.ndim}D")
    if not np.all(np.isfinite(angio.array)):
        raise ValueError("angiography contains NaN/infinite voxels")
    timings: dict = {}
    t0 = time.perf_counter()
    warnings: list[str] = []
    modality = params.modality if params.modality != "auto" else ("ct" if is_ct(angio) else "mr")
    worst = float(angio.spacing.max())
    if worst > params.max_analysable_spacing_mm:
        reason = (f"{NOT_DETECTABLE}: voxel size up to {worst:.2f} mm is too coarse for the vessels that matter "
                  "(spinal feeders and radiculomedullary arteries are about 1 mm; at this size partial volume hides "
                  f"them and blurs cortical bone into the contrast range); the analysis needs voxels of at most "
                  f"{params.max_analysable_spacing_mm:.1f} mm (dedicated CTA/MRA/DSA)")
        timings["total"] = time.perf_counter() - t0
        progress(1.0, "voxels too coarse for vessel analysis")
        return VesselAnalysis(detectable=False, reason=reason, modality=modality, warnings=warnings, timings=timings)

    res_warning = _resolution_warning(angio, params)
    if res_warning:
        warnings.append(res_warning)
    region = _working_region(angio, tumor, cord, params, modality, res_warning, warnings, progress)
    grid, h, hu, cord_ok, cord_w, axis = region.grid, region.h, region.hu, region.cord_ok, region.cord_w, region.axis
    timings["resample"] = time.perf_counter() - t0

    progress(0.2, "bone and mass masking" if modality == "ct" else "intensity normalisation")
    t = time.perf_counter()
    mask_codes, core, excluded, excluded_all, filt = _masking(region, modality, params)
    timings["masking"] = time.perf_counter() - t

    progress(0.35, "multiscale vesselness")
    t = time.perf_counter()
    bright = (hu >= params.lumen_min_hu) & ~excluded_all
    scales = scales_for(h, params.scale_min_mm, params.scale_max_mm, params.n_scales)
    vness, _ = multiscale_vesselness(filt, bright, spacing_mm=h, scales_mm=scales)
    timings["vesselness"] = time.perf_counter() - t

    progress(0.5, "segmentation and centrelines")
    t = time.perf_counter()
    graph, lumen, truncated, tumor_reach = _centreline_graph(region, vness, bright, mask_codes, core, modality, params)
    timings["graph"] = time.perf_counter() - t

    result = VesselAnalysis(detectable=True, reason="", modality=modality, grid=grid, graph=graph, warnings=warnings,
                            timings=timings, spacing_mm=h)
    total = graph.total_length_mm
    if total < params.min_vessel_length_mm:
        why = (f"{NOT_DETECTABLE}: no contrast-filled vessel found (centreline length {total:.0f} mm of tubular "
               f"structures brighter than {params.lumen_min_hu:.0f} HU outside bone; blood without contrast is about "
               "40 HU)" if modality == "ct" else
               f"{NOT_DETECTABLE}: no bright tubular structure found (centreline length {total:.0f} mm)")
        if res_warning:
            why += f"; {res_warning}"
        result.detectable = False
        result.reason = why
        result.graph = VesselGraph([], [])
        result.role_map = np.zeros(grid.shape, np.uint8)
        timings["total"] = time.perf_counter() - t0
        progress(1.0, "no vessels detectable")
        return result

    progress(0.7, "diameters, spinal arteries and feeders")
    t = time.perf_counter()
    lumen_ref = _lumen_reference(hu, lumen, h, 400.0)
    diam = branch_diameters(graph, grid, hu, lumen, excluded_all, lumen_hu=lumen_ref,
                            fallback_bg_hu=params.soft_tissue_hu)
    result.branch_diameters = diam
    frame = CordFrame.from_mask(cord) if cord_ok else None
    levels = LevelMap.from_labels(vertebrae, level_names, axis=axis)
    roles = np.full(len(graph.branches), ROLE_VESSEL, int)
    asa: list[int] = []
    cord_dist = None
    if frame is not None and cord_w is not None and np.any(cord_w):
        signed_cord, _ = _distance_samplers(grid, cord_w, params.asa_max_gap_mm + 2.0)

        def cord_dist(points):
            return np.maximum(signed_cord(points), 0.0)

        asa, asa_len = find_anterior_spinal_artery(graph, frame, cord_dist, params)
        result.asa_length_mm = asa_len
    else:
        warnings.append("no spinal cord segmentation: anterior spinal artery and Adamkiewicz artery not searched")
    result.asa_branches = asa
    roles[asa] = ROLE_ASA
    side_frame = frame
    if side_frame is None and levels is not None:
        side_frame = CordFrame.straight(levels.centroids.mean(axis=0), levels.axis)
    trees, tree_of = segmental_trees(graph, asa, side_frame, levels)
    result.trees = trees
    result.adamkiewicz = _adamkiewicz(graph, asa, frame, cord_dist, diam, trees, tree_of, roles, params)

    if region.tumor_ok:
        _assess_feeders(result, region, lumen, diam, tumor_reach, truncated, trees, tree_of, side_frame, levels, roles,
                        params)
    result.branch_roles = roles
    result.role_map = _role_map(graph, grid, lumen, roles)
    timings["analysis"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    progress(1.0, f"{len(graph.branches)} branches, {len(result.feeders)} feeder(s)")
    return result
