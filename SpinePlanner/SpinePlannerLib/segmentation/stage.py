"""Stage ``segmentation``: cord, thecal sac (CSF), tumor from a seed, bone and vertebrae with levels.

Order: a first cord/thecal-sac pass (context for the tumor), the tumor from ``--tumor-seed``
(on T1c, T2, STIR, T1 or CT; on CT first when the seed lies outside the thecal sac), the final
cord with the tumor taken out, cysts and edema next to the tumor when the contrasts support them
(:mod:`~SpinePlannerLib.segmentation.cyst_edema`: T2 and T1 for fluid, T1c for edema), then bone
and vertebrae on CT (without a CT: vertebral bodies on T1, else T2, along the cord,
:mod:`~SpinePlannerLib.segmentation.vertebrae_mri`); each step is a function below, filling one
:class:`_Run`. Every label map is carried onto the reference grid through world coordinates.
User-supplied label maps (``--cord-seg``, ``--tumor-seg``) are never overwritten. Not found is
said with the reason.

The stage is pure: it reads the context and returns a :class:`SegmentationResult` (label maps,
the vertebrae with their level names and per-level records, the cord centreline, the plan
records); its scene nodes are made by :mod:`SpinePlannerLib.mrml.segmentation`.

Engines are selectable per structure (``ctx.params["segmentation"]``: ``cord_engine`` /
``tumor_engine`` = ``"classical"`` or ``"monai"``); the MONAI network (:mod:`monai_engine`, run
out of process) replaces the classical label maps of the structures that ask for it.
Settings: :class:`~SpinePlannerLib.segmentation.params.SegmentationParams` (``--params`` section), e.g.
``{"anchor": {"level": "L1", "ras": [r, a, s]}, "background_seeds_ras": [[r, a, s]]}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.geometry import resample_like, resample_mask_like
from SpinePlannerLib.core.params import from_dict
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import PlanContext, Progress, StageResult, StageSkipped, no_progress
from SpinePlannerLib.segmentation.common import convex_per_axial_slice, labels_to_grid
from SpinePlannerLib.segmentation.cord import contrast_family, segment_cord
from SpinePlannerLib.segmentation.cyst_edema import segment_cyst_edema
from SpinePlannerLib.segmentation.params import SegmentationParams
from SpinePlannerLib.segmentation.tumor import disc_barrier, grow_tumor
from SpinePlannerLib.segmentation.vertebrae_ct import VertebraeResult, segment_vertebrae_ct
from SpinePlannerLib.segmentation.vertebrae_mri import centreline_from_mask, segment_vertebrae_mri

CORD_ROLE_ORDER = ("t2", "stir", "t1", "t1c", "ct", "sct")
"""Image used for the cord: CSF-bright T2 first, then T1-weighted, then CT."""

TUMOR_ROLES_INTRADURAL = ("t1c", "t2", "stir", "t1", "ct")
TUMOR_ROLES_EXTRADURAL = ("ct", "t1c", "t1", "t2", "stir")
"""Image used for the tumor: contrast T1 or T2 for a seed inside the thecal sac; CT first for a
seed outside it (bone lesions: CT shows the cortex the lesion is confined by), then T1 before T2
(marrow replacement is dark against fatty marrow and fat on T1; on T2 it can match fat and disc)."""

VERTEBRA_MRI_ROLES = ("t1", "t2")
"""Without a CT, vertebral bodies are found on T1 (marrow bright, discs dark) if given, else T2."""

def _sub(progress: Progress, lo: float, hi: float) -> Progress:
    return lambda f, m: progress(lo + (hi - lo) * float(f), m)


def _first(ctx: PlanContext, roles) -> str | None:
    return next((r for r in roles if r in ctx.volumes), None)


def _to_ref(mask: Volume, ref: Volume, name: str) -> Volume:
    out = resample_mask_like(mask, ref)
    out.name = name
    return out


def _round_list(values, nd: int = 2) -> list:
    return [round(float(v), nd) for v in values]


def _seed_in_sac(sac: Volume | None, seed_ras, *, slab_mm: float = 1.5) -> bool | None:
    """True when the seed lies within the thecal sac's outline: inside the convex hull (in the
    axial plane) of the sac voxels within ``slab_mm`` of the seed's S coordinate. A tumor at
    the rim of the sac that displaces the CSF is not enclosed by CSF but lies within this hull.
    None without a sac."""
    if sac is None:
        return None
    from scipy.spatial import ConvexHull, Delaunay

    pts = sac.ijk_to_ras(np.argwhere(sac.array > 0))
    near = pts[np.abs(pts[:, 2] - float(seed_ras[2])) <= slab_mm][:, :2]
    if len(near) < 4 or np.linalg.matrix_rank(near - near.mean(axis=0)) < 2:
        return False
    hull = near[ConvexHull(near).vertices]  # same hull; triangulating thousands of grid points is slow
    return bool(Delaunay(hull).find_simplex(np.asarray(seed_ras[:2], float)[None, :])[0] >= 0)


@dataclass
class SegmentationResult(StageResult):
    """Result of the ``segmentation`` stage (label maps in ``labels``, on the reference grid).

    Attributes
    ----------
    reference_role : str or None
    engines : dict
        structure -> engine used (``classical`` or ``monai``).
    tumor_record, cord_record, cyst_record, edema_record : dict
        ``plan["segmentation"]`` records of each structure (method, image, evidence, volumes).
    monai_record : dict or None
        The MONAI run (structures, model, what it replaced), when an engine asked for it.
    vertebrae : VertebraeResult or None
        Bone and vertebrae on CT, or vertebral bodies on MRI, with level names and per-level
        records (``body_s_range_mm``, RAS S mm); None when there was no image to search.
    vertebrae_record : dict
        ``plan["vertebrae"]``: the vertebrae summary, the image, per-level cord centres.
    cord_centerline_ras : np.ndarray or None
        The cord centreline decimated to about one point per 5 mm (N, 3; RAS mm), None when the
        cord was not found.
    tumor_source : str or None
        How the tumor was obtained (``plan["tumor"]["source"]``) when this stage made it.
    outputs : list[str]
        Structures with a label map after this stage (given or segmented).
    """

    reference_role: str | None = None
    engines: dict = field(default_factory=dict)
    tumor_record: dict = field(default_factory=dict)
    cord_record: dict = field(default_factory=dict)
    cyst_record: dict = field(default_factory=dict)
    edema_record: dict = field(default_factory=dict)
    monai_record: dict | None = None
    vertebrae: VertebraeResult | None = None
    vertebrae_record: dict = field(default_factory=dict)
    cord_centerline_ras: np.ndarray | None = None
    tumor_source: str | None = None
    outputs: list = field(default_factory=list)

    @property
    def level_names(self) -> dict[int, str]:
        """Vertebral level index (value in ``labels["vertebrae"]``) -> name; empty when none."""
        return dict(sorted(self.vertebrae.names.items())) if self.vertebrae is not None else {}

    @property
    def vertebrae_reason(self) -> str:
        return self.vertebrae_record.get("reason", "no vertebrae labelled")

    def to_plan(self) -> dict[str, dict]:
        section = {"reference_role": self.reference_role, "engines": dict(self.engines),
                   "tumor": self.tumor_record, "cord": self.cord_record,
                   "cyst": self.cyst_record, "edema": self.edema_record,
                   "vertebrae": {"found": self.vertebrae_record["found"],
                                 "method": self.vertebrae_record["method"]},
                   "outputs": list(self.outputs)}
        if self.monai_record is not None:
            section["monai"] = self.monai_record
        out = {"segmentation": section, "vertebrae": self.vertebrae_record}
        if self.tumor_source is not None:
            out["tumor"] = {"source": self.tumor_source}
        return out


@dataclass
class _Run:
    """The working state of one segmentation run (the steps below fill it in order)."""

    ctx: PlanContext
    params: object
    ref: Volume
    progress: Progress
    labels: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    cord_role: str | None = None
    first: object = None  # first cord pass (CordResult)
    final: object = None  # cord pass with the tumor taken out
    early_vert: object = None  # MRI vertebral bodies found for the disc barrier, reused for the levels
    tumor_ref: Volume | None = None
    tumor_record: dict = field(default_factory=dict)
    tumor_source: str | None = None
    cord_record: dict = field(default_factory=dict)
    centerline: np.ndarray | None = None
    records: dict = field(default_factory=dict)  # cyst, edema, monai records
    engines: dict = field(default_factory=dict)
    vertebrae: object = None
    vertebrae_record: dict = field(default_factory=dict)

    @property
    def sac_first(self) -> Volume | None:
        return self.first.csf if self.first is not None and self.first.found else None

    def label(self, name: str) -> Volume | None:
        """A label map made by this run, else the context's; None when absent or empty."""
        v = self.labels[name] if name in self.labels else self.ctx.labels.get(name)
        return None if v is None or not np.any(v.array) else v

    def given(self, name: str) -> bool:
        return name in self.ctx.given_labels

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def result(self) -> SegmentationResult:
        outputs = sorted(k for k in ("cord", "csf", "tumor", "bone", "vertebrae", "cyst", "edema")
                         if k in self.labels or k in self.ctx.labels)
        return SegmentationResult(
            labels=self.labels, warnings=self.warnings, reference_role=self.ctx.reference_role,
            engines=self.engines, tumor_record=self.tumor_record, cord_record=self.cord_record,
            cyst_record=self.records.get("cyst", {}), edema_record=self.records.get("edema", {}),
            monai_record=self.records.get("monai"), vertebrae=self.vertebrae,
            vertebrae_record=self.vertebrae_record, cord_centerline_ras=self.centerline,
            tumor_source=self.tumor_source, outputs=outputs)


def run(ctx: PlanContext, progress: Progress) -> SegmentationResult:
    try:
        params = from_dict(SegmentationParams, ctx.params.get("segmentation"), where="segmentation")
    except ValueError as exc:
        raise InputError("segmentation parameters", str(exc)) from None
    ref = ctx.reference
    if ref is None:
        raise StageSkipped("no anatomical image (t2, t1, t1c, stir or ct) to segment")
    s = _Run(ctx, params, ref, progress, engines={"cord": params.cord_engine, "tumor": params.tumor_engine})
    _first_cord_pass(s)
    _tumor_step(s)
    _final_cord_step(s)
    progress(0.71, "cyst and edema next to the tumor")
    _cyst_and_edema(s, s.label("tumor"), s.first if s.cord_role in ("t2", "stir") else None)
    _vertebrae_step(s)
    if "monai" in (params.cord_engine, params.tumor_engine):
        progress(0.95, "MONAI engine")
        _apply_monai_engine(s, _sub(progress, 0.95, 0.99))
    progress(1.0, "segmentation done")
    return s.result()


# -- 1. cord and thecal sac, first pass --------------------------------------------------------
def _first_cord_pass(s: _Run) -> None:
    s.cord_role = _first(s.ctx, CORD_ROLE_ORDER)
    if s.cord_role is not None:
        s.progress(0.02, f"cord on {s.cord_role}")
        s.first = segment_cord(s.ctx.volumes[s.cord_role], contrast=contrast_family(s.cord_role),
                               params=s.params.cord, progress=_sub(s.progress, 0.02, 0.3))


# -- 2. tumor from the seed --------------------------------------------------------------------
def _tumor_step(s: _Run) -> None:
    if s.given("tumor"):
        s.tumor_ref = s.label("tumor")
        s.tumor_record = {"source": "given label map"}
    elif s.ctx.tumor_seed_ras is not None:
        _tumor_from_seed(s, np.asarray(s.ctx.tumor_seed_ras, float))
    else:
        s.tumor_record = {"source": "none", "reason": "no --tumor-seed or --tumor-seg given"}


def _tumor_from_seed(s: _Run, seed: np.ndarray) -> None:
    """Grow the tumor from the seed on the image the seed's compartment calls for; the record
    says which image, why, and the region's statistics."""
    ctx, params, sac_first = s.ctx, s.params, s.sac_first
    inside = _seed_in_sac(sac_first, seed)
    roles = TUMOR_ROLES_EXTRADURAL if inside is False else TUMOR_ROLES_INTRADURAL
    candidates = [r for r in roles if r in ctx.volumes and ctx.volumes[r].contains_ras(seed)]
    if not candidates:
        raise InputError("tumor seed", f"point {np.round(seed, 2).tolist()} lies outside every image")
    role = candidates[0]
    vol = ctx.volumes[role]
    allowed = forbidden = None
    if sac_first is not None:
        if inside:
            allowed = resample_mask_like(convex_per_axial_slice(sac_first), vol)
        else:
            forbidden = resample_mask_like(sac_first, vol)
    levels = _cord_csf_levels(s.first) if role == s.cord_role and inside else ()
    auto_bg = _cord_background_seeds(s.first, seed) if inside else []
    barrier, barrier_info = None, None
    if inside is False and contrast_family(role) != "ct" and params.tumor.disc_barrier:
        s.progress(0.31, "intervertebral discs next to the seed (MRI vertebral bodies)")
        barrier, s.early_vert, barrier_info = _disc_barrier_on_mri(ctx, params, s.first, seed, vol)
    s.progress(0.32, f"tumor from the seed on {role}")
    result = grow_tumor(vol, seed, params=params.tumor, ct=contrast_family(role) == "ct", allowed=allowed,
                        forbidden=forbidden, foreground_seeds_ras=params.foreground_seeds_ras,
                        background_seeds_ras=[*params.background_seeds_ras, *auto_bg], tissue_levels=levels,
                        barrier=barrier, progress=_sub(s.progress, 0.32, 0.45))
    role, result, note = _dense_lesion_on_ct(s, seed, role, result, inside, auto_bg)
    tumor_ref = _to_ref(result.mask, s.ref, "tumor")
    if not np.any(tumor_ref.array):
        raise InputError("tumor seed", "the region grown from the seed is empty on the reference grid")
    s.labels["tumor"] = s.tumor_ref = tumor_ref
    for w in result.warnings:
        s.warn(f"tumor: {w}")
    s.tumor_record = {
        "source": "seed",
        "method": "classical region growing (seed statistics, half-maximum borders)",
        "seed_ras": _round_list(seed),
        "image": role,
        "image_choice": note or ("contrast T1 or T2 for a seed in the thecal sac" if inside
                                 else "CT first for a seed outside the thecal sac"),
        "seed_in_thecal_sac": inside,
        "constraint": ("inside the thecal sac" if inside else "outside the thecal sac" if inside is False
                       else "none (no thecal sac found)"),
        "foreground_seeds": len(params.foreground_seeds_ras),
        "background_seeds": len(params.background_seeds_ras),
        "volume_ml": round(float(np.count_nonzero(tumor_ref.array) * s.ref.voxel_volume_ml), 3),
        "stats": {k: (round(v, 4) if isinstance(v, float) else
                      [round(x, 4) for x in v] if isinstance(v, list) else v)
                  for k, v in result.stats.items()},
        "warnings": list(result.warnings),
    }
    if barrier_info is not None:
        s.tumor_record["disc_barrier"] = barrier_info
    s.tumor_source = "segmentation from seed"


def _dense_lesion_on_ct(s: _Run, seed, role: str, result, inside, auto_bg):
    """When the MR barely separates the tumor from a neighbour and the lesion is dense on CT, the
    region grown on CT replaces it. Returns ``(role, result, note)`` (note empty when kept)."""
    ctx, params, sac_first = s.ctx, s.params, s.sac_first
    if not (result.stats.get("low_contrast_smoothing_mm") and role != "ct" and "ct" in ctx.volumes
            and ctx.volumes["ct"].contains_ras(seed)):
        return role, result, ""
    ct_vol = ctx.volumes["ct"]
    ct_res = grow_tumor(ct_vol, seed, params=params.tumor, ct=True,
                        allowed=resample_mask_like(convex_per_axial_slice(sac_first), ct_vol)
                        if (inside and sac_first is not None) else None,
                        foreground_seeds_ras=params.foreground_seeds_ras,
                        background_seeds_ras=[*params.background_seeds_ras, *auto_bg])
    if ct_res.stats["seed_median"] >= params.tumor.ct_dense_hu and not ct_res.stats["reached_search_limit"]:
        note = (f"{role} separates the tumor from a neighbouring tissue by less than "
                f"{params.tumor.low_contrast_sd} noise SDs; the lesion is dense on CT "
                f"({ct_res.stats['seed_median']:.0f} HU), so CT was used")
        return "ct", ct_res, note
    return role, result, ""


# -- 3. final cord with the tumor taken out ----------------------------------------------------
def _final_cord_step(s: _Run) -> None:
    first, tumor_ref, ctx = s.first, s.tumor_ref, s.ctx
    final = first
    if first is not None and first.found and tumor_ref is not None:
        s.progress(0.47, "cord without the tumor")
        final = segment_cord(ctx.volumes[s.cord_role], contrast=contrast_family(s.cord_role), params=s.params.cord,
                             tumor=tumor_ref, tumor_value=first.metrics.get("cord_median"),
                             progress=_sub(s.progress, 0.47, 0.7))
        if not final.found:  # the tumor made the ring unreadable: keep the first pass minus the tumor
            final = first
            final.cord = final.cord.with_array(
                (final.cord.array > 0) & ~(resample_mask_like(tumor_ref, final.cord).array > 0))
    s.final = final
    record: dict = {"image": s.cord_role}
    if final is None:
        record.update(found=False, reason="no MRI or CT to find the cord on")
    else:
        record.update(final.summary())
    found = final is not None and final.found
    if s.given("cord"):
        record.update(source="given label map", found=True)
    elif found:
        cord_ref = _to_ref(final.cord, s.ref, "cord")
        if tumor_ref is not None:  # interpolation must not put tumor voxels back into the cord
            cord_ref.array[tumor_ref.array > 0] = 0
        s.labels["cord"] = cord_ref
        record["source"] = "segmentation"
        if final.approximate:
            s.warn("cord: approximated from the bony canal on CT (CT does not separate cord from CSF)")
    else:
        s.warn(f"cord not found: {record.get('reason', '')}")
    if found and not s.given("csf"):
        csf = _to_ref(final.csf, s.ref, "csf")
        if tumor_ref is not None and s.tumor_record.get("seed_in_thecal_sac"):
            csf.array = (csf.array > 0) | (tumor_ref.array > 0)
            csf.array = csf.array.astype(np.uint8)
        s.labels["csf"] = csf
    if found:
        pts = final.centerline_ras
        step = max(1, int(round(len(pts) / max(2, int(_length(pts) / 5.0)))))
        record["centerline_ras"] = [_round_list(p) for p in pts[::step]]
        record["centerline_length_mm"] = round(_length(pts), 1)
        s.centerline = np.asarray(pts[::step])
    s.cord_record = record


# -- 4. bone and vertebrae (CT), else vertebral bodies (MRI) -----------------------------------
def _vertebrae_step(s: _Run) -> None:
    ctx = s.ctx
    ct_role = _first(ctx, ("ct",))
    mri_role = _first(ctx, VERTEBRA_MRI_ROLES) if ct_role is None else None
    vr = None
    if ct_role is not None:
        s.progress(0.72, "bone and vertebrae on CT")
        vr = segment_vertebrae_ct(ctx.volumes[ct_role], params=s.params.vertebrae, cord_params=s.params.cord,
                                  progress=_sub(s.progress, 0.72, 0.95))
    elif mri_role is not None:
        s.progress(0.72, f"vertebral bodies on {mri_role}")
        # bodies found along the first-pass cord for the disc barrier are reused; a failed search
        # is retried along the final (tumor-free) cord
        reuse = s.early_vert is not None and s.early_vert.found
        vr = s.early_vert if reuse else _vertebrae_on_mri(ctx, s.params, mri_role, s.final,
                                                         _sub(s.progress, 0.72, 0.95), cord=s.label("cord"),
                                                         sac=s.label("csf"))
    if vr is None:
        s.vertebrae_record = {"found": False, "reason": "no CT, T1 or T2 image to find the vertebrae on",
                              "levels": {}, "method": "none", "anchor": None, "reliable": False,
                              "vertebrae": [], "warnings": []}
        return
    record = vr.summary()
    record["image"] = ct_role or mri_role
    if mri_role is not None:
        record["structures"] = "vertebral bodies only (posterior elements are not segmented on MRI)"
        if not vr.found:
            record["reason"] = f"no CT; {vr.reason}"
    if vr.bone is not None and not s.given("bone"):
        s.labels["bone"] = _to_ref(vr.bone, s.ref, "bone")
    if vr.found:
        vertebrae = labels_to_grid(vr.labels.array, vr.labels, s.ref)
        vertebrae.name = "vertebrae"
        s.labels["vertebrae"] = vertebrae
        if s.tumor_ref is not None and s.tumor_record.get("seed_in_thecal_sac") is False:
            _vertebrae_keep_lesion(vertebrae, s.tumor_ref, s.label("csf"))
        _cord_per_level(s.label("cord"), record)
    for w in vr.warnings:
        s.warn(f"vertebrae: {w}")
    if not vr.found:
        s.warn(f"vertebrae not labelled: {record['reason']}")
    s.vertebrae, s.vertebrae_record = vr, record


CYST_EDEMA_T2_ROLES = ("t2", "stir")


def _cyst_and_edema(s: _Run, tumor: Volume | None, t2_cord_result) -> None:
    """Cyst and edema segments next to the tumor (:mod:`seg_cyst_edema`), on the reference grid.

    Cysts need T2 (or STIR) and a T1 (T1 or T1c); edema needs T1c. Fluid voxels are not solid
    tumor: a tumor grown from the seed loses its cyst voxels, and, when it was grown on another
    image than the T1c, its non-enhancing part (the solid tumor is the enhancing part where T1c
    shows enhancement). A given tumor label map is never changed.
    """
    ctx, ref = s.ctx, s.ref
    if tumor is None or not np.any(tumor.array):
        why = "no tumor (no --tumor-seed or --tumor-seg given)"
        s.records["cyst"] = {"segmented": False, "reason": why}
        s.records["edema"] = {"segmented": False, "reason": why}
        return
    t2_role = _first(ctx, CYST_EDEMA_T2_ROLES)

    def on_ref(role):
        if role not in ctx.volumes:
            return None
        vol = ctx.volumes[role]
        return vol if vol.same_grid(ref) else resample_like(vol, ref)

    levels = _cord_csf_levels(t2_cord_result)
    tumor_record = s.tumor_record
    result = segment_cyst_edema(
        tumor, cord=s.label("cord"), sac=s.label("csf"), t2=on_ref(t2_role) if t2_role else None,
        t1=on_ref("t1"), t1c=on_ref("t1c"), csf_level_t2=levels[1] if len(levels) == 2 else None,
        tumor_on_t1c=tumor_record.get("image") == "t1c", params=s.params.cyst_edema)
    s.records["cyst"], s.records["edema"] = result.cyst_info, result.edema_info
    if result.cyst is not None and not s.given("cyst"):
        s.labels["cyst"] = result.cyst
    if result.edema is not None and not s.given("edema"):
        s.labels["edema"] = result.edema
    info = dict(result.tumor_info)
    if result.solid_tumor is not None and tumor_record.get("source") == "seed" and np.any(result.solid_tumor.array) \
            and not np.array_equal(result.solid_tumor.array > 0, tumor.array > 0):
        before = float(np.count_nonzero(tumor.array) * ref.voxel_volume_ml)
        s.labels["tumor"] = result.solid_tumor
        tumor_record["volume_ml"] = round(float(np.count_nonzero(result.solid_tumor.array) * ref.voxel_volume_ml), 3)
        info.update(applied=True, grown_volume_ml=round(before, 3))
    else:
        info["applied"] = False
    if info.get("enhances") is not None or result.cyst is not None:
        tumor_record["solid_part"] = info
    _swollen_cord(s, result.cyst, result.edema)


def _swollen_cord(s: _Run, cyst: Volume | None, edema: Volume | None) -> None:
    """Edema is cord tissue and cysts lie within the cord: the segmented cord gains the edema
    (the cord engine's T2 rule takes T2-bright edema for CSF) and the segmented thecal sac (cord +
    CSF) gains both. Given label maps are never changed; the cord volume in the plan is updated."""
    ref, record = s.ref, s.cord_record
    extra = [m.array > 0 for m in (cyst, edema) if m is not None]
    if not extra:
        return
    if edema is not None and not s.given("cord") and "cord" in s.labels:
        cord = s.labels["cord"]
        added = (edema.array > 0) & ~(cord.array > 0)
        cord.array = ((cord.array > 0) | (edema.array > 0)).astype(np.uint8)
        added_ml = float(np.count_nonzero(added) * ref.voxel_volume_ml)
        record["includes_edema"] = True
        record["edema_added_ml"] = round(added_ml, 3)
        if "cord_volume_ml" in record:
            record["cord_volume_ml"] = round(record["cord_volume_ml"] + added_ml, 3)
    if not s.given("csf") and "csf" in s.labels:
        sac = s.labels["csf"]
        inside = np.logical_or.reduce([sac.array > 0, *extra])
        cord = s.labels.get("cord", s.ctx.labels.get("cord"))
        if cord is not None:
            inside |= cord.array > 0
        sac.array = inside.astype(np.uint8)


def _vertebrae_on_mri(ctx: PlanContext, params, role: str, cord_result, progress: Progress, *,
                      cord: Volume | None = None, sac: Volume | None = None):
    """Vertebral bodies on the MRI ``role`` along the cord centreline of the cord pass (or of the
    cord label map ``cord``, with its thecal sac ``sac``), with the thecal sac in front of which
    they lie."""

    centreline = None
    if cord_result is not None and cord_result.found and len(cord_result.centerline_ras) >= 2:
        centreline, sac = cord_result.centerline_ras, cord_result.csf
    elif cord is not None and np.any(cord.array):
        centreline = centreline_from_mask(cord)
    if centreline is None or len(centreline) < 2:
        why = cord_result.reason if cord_result is not None and not cord_result.found else "no cord segmentation"
        return VertebraeResult(False, f"vertebral bodies not found on MRI: they are searched in front of the "
                                      f"thecal sac along the cord, and the cord was not found ({why})")
    v = params.vertebrae
    return segment_vertebrae_mri(ctx.volumes[role], contrast=contrast_family(role), centerline_ras=centreline,
                                 sac=sac, params=params.vertebrae_mri, anchor_level=v.anchor_level,
                                 anchor_ras=v.anchor_ras, progress=progress)


def _disc_barrier_on_mri(ctx: PlanContext, params, cord_result, seed, vol: Volume):
    """Disc slabs next to an extradural seed's vertebra, for a tumor grown on MRI
    (:func:`seg_tumor.disc_barrier` from the MRI vertebral bodies along the first-pass cord).

    Returns ``(barrier or None, the vertebral-body result or None, plan record)``; the bodies are
    reused for the vertebrae when there is no CT.
    """
    role = _first(ctx, VERTEBRA_MRI_ROLES)
    if role is None or cord_result is None or not cord_result.found:
        return None, None, {"applied": False, "reason": "no T1/T2 image or no cord to find the discs along"}
    vr = _vertebrae_on_mri(ctx, params, role, cord_result, no_progress)
    if not vr.found:
        return None, vr, {"applied": False, "reason": vr.reason}
    mask, slabs = disc_barrier(vol, cord_result.centerline_ras, vr.vertebrae, seed,
                               radius_mm=params.tumor.max_radius_mm + 5.0)
    if not slabs:
        return None, vr, {"applied": False, "image": role, "reason": "no disc next to the seed's vertebra"}
    return mask, vr, {"applied": True, "image": role, "disc_s_ranges_mm": slabs}


def _cord_background_seeds(cord_result, seed_ras, *, distances_mm=(15.0, 25.0)) -> list:
    """Points on the first-pass cord centreline ``distances_mm`` above and below the seed.

    Used as background seeds: when the region grown from the tumor seed leaks along the cord
    (tumor and cord of similar signal), it is split at the narrowest constriction between the
    tumor and these cord points, as a user would do with "grow from seeds".
    """
    if cord_result is None or not cord_result.found or len(cord_result.centerline_ras) < 2:
        return []
    pts = np.asarray(cord_result.centerline_ras)
    ds = pts[:, 2] - float(seed_ras[2])
    out = []
    for d in distances_mm:
        for sign in (-1.0, 1.0):
            j = int(np.argmin(np.abs(ds - sign * d)))
            if abs(ds[j] - sign * d) <= 3.0:
                out.append(pts[j].tolist())
    return out


def _cord_csf_levels(cord_result) -> tuple:
    """Median cord and CSF intensities of the first cord pass (image units), the tissues an
    intradural tumor borders; () when the cord was not found or the image is a CT."""
    if cord_result is None or not cord_result.found or cord_result.contrast == "ct":
        return ()
    m = cord_result.metrics
    return tuple(float(m[k]) for k in ("cord_median", "csf_median") if k in m)


def _vertebrae_keep_lesion(vertebrae: Volume, tumor: Volume, sac: Volume | None, *, canal_margin_mm: float = 2.0) -> None:
    """Give each vertebra the bone lesion inside its outline (a lytic lesion is part of the
    vertebra it destroys): tumor voxels within a level's per-slice convex hull, not already
    labelled and not in the canal (the thecal sac plus ``canal_margin_mm``), take that level."""
    from SpinePlannerLib.measurement.lesion import dilate_mm

    lesion = tumor.array > 0
    if sac is not None:
        lesion &= ~dilate_mm(sac, canal_margin_mm)
    free = lesion & (vertebrae.array == 0)
    for idx in np.unique(vertebrae.array[vertebrae.array > 0]):
        if not free.any():
            break
        hull = convex_per_axial_slice(vertebrae.with_array((vertebrae.array == idx).astype(np.uint8))).array > 0
        take = free & hull
        vertebrae.array[take] = idx
        free &= ~take


def _apply_monai_engine(s: _Run, progress: Progress) -> None:
    """Replace the label maps of the structures whose engine is ``"monai"`` (cord -> cord and
    csf; tumor -> tumor) by a MONAI network's, run out of process by :mod:`monai_engine` on the
    reference image. User-given label maps are kept; a failed run is reported and the classical
    results stay. A missing model or missing torch/monai is the user's choice gone wrong:
    :class:`InputError`."""
    import sys
    import tempfile
    from pathlib import Path

    from SpinePlannerLib.core.imageio import read_volume, write_volume
    from SpinePlannerLib.segmentation.monai import engine as monai_engine

    ctx, params = s.ctx, s.params
    wanted = [k for k, e in (("cord", params.cord_engine), ("tumor", params.tumor_engine)) if e == "monai"]
    structures = (("cord", "csf") if "cord" in wanted else ()) + (("tumor",) if "tumor" in wanted else ())
    model = Path(params.model_path) if params.model_path else monai_engine.PHANTOM_MODEL
    info: dict = {"structures": list(structures), "model": str(model), "ran": False}
    s.records["monai"] = info
    ref = s.ref
    roles = list(monai_engine.load_model_spec(model).channels)  # the images the network takes, in order
    missing = [r for r in roles if r not in ctx.volumes]
    if missing:
        raise InputError("params", f"segmentation model {model.name} needs the image role(s) "
                                     f"{', '.join(missing)}, which were not given")
    with tempfile.TemporaryDirectory(prefix="spineplan-monai-") as tmp:
        images = []
        for role in roles:
            images.append(Path(tmp) / f"{role}.nii.gz")
            write_volume(ctx.volumes[role], images[-1])
        try:
            result = monai_engine.run_out_of_process(
                model, *images, output_dir=Path(tmp) / "out", roles=roles, structures=structures,
                device=params.device, python=params.python or sys.executable, progress=progress)
        except RuntimeError as exc:
            info["reason"] = str(exc).splitlines()[0]
            s.warn(f"MONAI engine failed ({info['reason']}); classical results kept")
            return
        masks = {name: read_volume(path) for name, path in result.get("outputs", {}).items()}
    replaced = []
    for name, mask in masks.items():
        if s.given(name) or not np.any(mask.array):
            continue
        s.labels[name] = _to_ref(mask, ref, name)
        replaced.append(name)
    info.update(ran=True, replaced=replaced, device=result.get("device"), seconds=result.get("seconds"),
                labels=result.get("labels"))
    tumor = s.label("tumor")
    if "csf" in replaced and tumor is not None and (
            "tumor" in replaced or s.tumor_record.get("seed_in_thecal_sac")):
        # the network's CSF excludes the tumor; the thecal sac holds an intradural tumor
        csf = s.labels["csf"]
        s.labels["csf"] = csf.with_array(((csf.array > 0) | (tumor.array > 0)).astype(np.uint8))
    if "cord" in replaced:
        s.engines["cord"] = "monai"
        s.cord_record.update(found=True, method="monai", source="monai", approximate=False,
                             reason=f"MONAI network {model.name}")
    if "tumor" in replaced:
        s.engines["tumor"] = "monai"
        s.tumor_record = {"source": "monai", "method": f"MONAI network {model.name} (no seed needed)",
                          "volume_ml": round(float(np.count_nonzero(s.labels["tumor"].array) * ref.voxel_volume_ml), 3)}
        s.tumor_source = "segmentation (MONAI)"


def _length(points) -> float:
    pts = np.asarray(points, float)
    return float(np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1))) if len(pts) > 1 else 0.0


def _cord_per_level(cord: Volume | None, vert_section: dict) -> None:
    """Add to each vertebra the cord's (or the canal's) centre at mid-body, RAS mm."""
    pts = None
    if cord is not None:
        pts = cord.ijk_to_ras(np.argwhere(cord.array > 0))
    for v in vert_section["vertebrae"]:
        rng = v.get("body_s_range_mm")
        if rng is None:
            continue
        if pts is not None and len(pts):
            mid = (rng[0] + rng[1]) / 2.0
            sel = pts[np.abs(pts[:, 2] - mid) <= max(2.0, (rng[1] - rng[0]) / 4.0)]
            if len(sel):
                v["cord_centre_ras"] = _round_list(sel.mean(axis=0))
                continue
        if "canal_centre_ras" in v:
            v["cord_centre_ras"] = v["canal_centre_ras"]
            v["cord_centre_from"] = "bony canal"
