"""Stage ``vessels``: vessel tree, tumor feeders and spinal arteries from the angiography.

Reads ``ctx.volumes["angio"]``; when a planning CT (``ctx.volumes["ct"]``) is given and the
angiography is not on its grid, the angiography is first registered rigidly to the CT (mutual
information around the tumor; ``register_to_ct = False`` trusts the headers instead) and analysed
in the CT's world frame (``plan["vessels"]["registration"]``). Also reads the tumor, cord and
vertebra label maps of earlier stages and the segmentation result's level names; returns a
:class:`VesselResult`: ``plan["vessels"]``, the role label map ``labels/vessels.nii.gz`` (1 vessel, 2 feeder,
3 Adamkiewicz candidate, 4 anterior spinal artery, 5 draining vein) on the reference grid, and
``vessels/`` exports: the role map on the fine working grid, the centreline graph (JSON, RAS mm)
and the feeder entry points as a Slicer markups file. Parameter overrides come from
``ctx.params["vessels"]`` (fields of :class:`~SpinePlannerLib.vessels.params.VesselParams`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.geometry import resample
from SpinePlannerLib.core.imageio import write_volume
from SpinePlannerLib.core.registration import RigidRegistrationParams, moved, register_rigid
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import PlanContext, Progress, StageResult, StageSkipped
from SpinePlannerLib.vessels.analysis import ROLE_NAMES, VesselAnalysis, analyze_vessels
from SpinePlannerLib.vessels.params import VesselParams
from SpinePlannerLib.vessels.vesselness import box_around_voxels

EXPORT_DIR = "vessels"
THIN_LABEL_FRACTION = 0.3
"""A reference-grid voxel gets a vessel role when at least this fraction of it is that vessel:
below 0.5 so that ~1 mm vessels survive on a coarser planning grid (documented setting)."""


def roles_on_grid(roles: Volume, reference: Volume, *, min_fraction: float = THIN_LABEL_FRACTION) -> Volume:
    """Carry a role label map onto ``reference`` through world coordinates.

    Each role's indicator is resampled linearly; a voxel takes the highest-coded role covering at
    least ``min_fraction`` of it (feeders and spinal arteries win over ordinary vessels).
    """
    out = np.zeros(reference.shape3, np.uint8)
    idx = np.argwhere(roles.array > 0)
    if idx.size == 0:
        return reference.with_array(out, name="vessels")
    # only the reference voxels around the vessels are resampled (the reference may be a large CTA)
    found = box_around_voxels(roles, idx, reference.affine, reference.shape3)
    if found is None:
        return reference.with_array(out, name="vessels")
    lo, hi, sub_affine, sub_shape = found
    sub = np.zeros(sub_shape, np.uint8)
    for code in sorted(int(c) for c in np.unique(roles.array) if c > 0):
        frac = resample(roles.with_array((roles.array == code).astype(np.float32)), sub_affine, sub_shape, order=1)
        sub[frac >= min_fraction] = code
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = sub
    return reference.with_array(out, name="vessels")


def centerlines_document(result: VesselAnalysis) -> dict:
    """The vessel graph as plain JSON (RAS mm): branches with role, diameter, points and radii."""
    graph = result.graph
    branches = []
    if graph is not None:
        for bid, b in enumerate(graph.branches):
            role = int(result.branch_roles[bid]) if len(result.branch_roles) else 1
            branches.append({
                "id": bid,
                "role": ROLE_NAMES.get(role, "vessel"),
                "nodes": [int(n) for n in b.nodes],
                "diameter_mm": round(float(result.branch_diameters[bid]), 3) if len(result.branch_diameters) else None,
                "length_mm": round(b.length_mm, 3),
                "points_ras": np.round(b.points, 4).tolist(),
                "radii_mm": np.round(b.radii, 4).tolist(),
            })
    nodes = [] if graph is None else [{"id": i, "kind": n.kind, "ras": np.round(n.ras, 4).tolist()}
                                      for i, n in enumerate(graph.nodes)]
    return {"coordinate_system": "RAS", "units": "mm", "nodes": nodes, "branches": branches}


def feeder_markups_document(result: VesselAnalysis) -> dict:
    """Feeder entry points as a Slicer markups (fiducial) JSON document, RAS coordinates."""
    points = []
    for rank, f in enumerate(result.feeders, start=1):
        desc = f"{f.diameter_mm:.1f} mm, {f.level or 'level ?'} {f.side or ''}, parent {f.parent or 'unknown'}".strip()
        points.append({"id": str(rank), "label": f"F{rank}", "description": desc,
                       "position": [round(float(v), 4) for v in f.entry_ras],
                       "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
                       "selected": True, "locked": True, "visibility": True, "positionStatus": "defined"})
    return {
        "@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
                   "markups-schema-v1.0.3.json#",
        "markups": [{"type": "Fiducial", "coordinateSystem": "RAS", "coordinateUnits": "mm", "locked": True,
                     "labelFormat": "F%d", "controlPoints": points}],
    }


def label_centroid_ras(label: Volume | None) -> np.ndarray | None:
    """Centroid (RAS mm) of the non-zero voxels of ``label``; None without label or voxels."""
    if label is None:
        return None
    idx = np.argwhere(label.array.reshape(label.shape3 + (-1,)).any(axis=-1))
    return None if idx.size == 0 else label.ijk_to_ras(idx.mean(axis=0))


def align_angio(angio: Volume, ct: Volume | None, *, register: bool, focus_ras=None,
                progress: Progress = lambda f, m: None) -> tuple[Volume, dict]:
    """The angiography in the planning CT's world frame, and the ``registration`` plan record.

    Without a CT the headers are trusted. With one, the angiography is registered rigidly to it
    (:func:`~SpinePlannerLib.core.registration.register_rigid`, focus ``focus_ras`` in the CT's
    world) unless the grids agree within 1e-3 mm or ``register`` is False (headers trusted; the
    bone-surface residual is still measured). Raises ValueError when registration fails.
    """
    if ct is None:
        return angio, {"method": "headers (no CT to register to)", "residual_mm": None, "rotation_deg": 0.0,
                       "translation_mm": 0.0, "notes": ["no CT given: angiography taken in its own world frame"]}
    reg = register_rigid(angio, ct, params=RigidRegistrationParams(trust_headers=not register, same_grid_tol_mm=1e-3),
                         focus_ras=focus_ras, names=("angiography", "CT"), progress=progress)
    d = reg.as_dict()
    record = {k: d[k] for k in ("method", "residual_mm", "initial_residual_mm", "rotation_deg", "translation_mm",
                                "notes")}
    record["angio_to_ct_ras"] = d["moving_to_fixed_ras"]
    aligned = angio if reg.method != "rigid mutual information" else moved(angio, reg.moving_to_fixed_ras)
    return aligned, record


@dataclass
class VesselResult(StageResult):
    """Result of the ``vessels`` stage.

    Attributes
    ----------
    analysis : VesselAnalysis
        Vessel graph (RAS mm, in the planning CT's world frame), roles, feeders, spinal arteries.
    registration : dict
        How the angiography was put in the CT's frame (the plan's ``registration`` record).
    """

    analysis: VesselAnalysis | None = None
    registration: dict = field(default_factory=dict)

    def to_plan(self) -> dict[str, dict]:
        return {"vessels": {**self.analysis.to_plan(), "registration": self.registration}}

    def write_exports(self, folder: Path) -> dict[str, str]:
        """The role map on the fine working grid, the centreline graph and the feeder entry
        points under ``folder/vessels/`` (nothing when no vessel is detectable)."""
        result = self.analysis
        if not result.detectable:
            return {}
        out = Path(folder) / EXPORT_DIR
        out.mkdir(parents=True, exist_ok=True)
        exports = {}
        role_vol = result.role_volume()
        if role_vol is not None and np.any(role_vol.array):
            write_volume(role_vol, out / "vessel_roles.nii.gz")
            exports["vessel_roles"] = f"{EXPORT_DIR}/vessel_roles.nii.gz"
        (out / "centerlines.json").write_text(json.dumps(centerlines_document(result)))
        exports["vessel_centerlines"] = f"{EXPORT_DIR}/centerlines.json"
        if result.feeders:
            (out / "feeder_entries.mrk.json").write_text(json.dumps(feeder_markups_document(result), indent=1))
            exports["feeder_entries"] = f"{EXPORT_DIR}/feeder_entries.mrk.json"
        return exports


def level_names(ctx: PlanContext) -> dict[str, str] | None:
    """``{"1": "T9", ...}`` from the segmentation result (as :func:`analyze_vessels` takes them)."""
    seg = ctx.result("segmentation")
    if seg is None:
        return None
    return {str(k): v for k, v in seg.level_names.items()}


def run(ctx: PlanContext, progress: Progress) -> VesselResult:
    angio = ctx.volumes.get("angio")
    if angio is None:
        raise StageSkipped("no angiography given (--angio)")
    try:
        params = VesselParams.from_dict(ctx.params.get("vessels"))
    except (TypeError, ValueError) as exc:
        raise InputError("vessels parameters", str(exc)) from None
    tumor = ctx.label("tumor")
    try:
        angio, registration = align_angio(angio, ctx.volumes.get("ct"), register=params.register_to_ct,
                                          focus_ras=label_centroid_ras(tumor),
                                          progress=lambda f, m: progress(0.2 * f, m))
    except ValueError as exc:
        raise InputError("angiography registration to the CT", str(exc)) from None
    analysis = analyze_vessels(angio, tumor=tumor, cord=ctx.label("cord"),
                               vertebrae=ctx.label("vertebrae"), level_names=level_names(ctx), params=params,
                               progress=lambda f, m: progress(0.2 + 0.7 * f, m))
    result = VesselResult(analysis=analysis, registration=registration)
    if not analysis.detectable:
        result.warnings.append(analysis.reason)
    result.warnings += [f"vessels: {w}" for w in analysis.warnings]
    progress(0.92, "vessel label map")
    role_vol = analysis.role_volume()
    if ctx.reference is not None and role_vol is not None and np.any(role_vol.array) and "vessels" not in ctx.given_labels:
        result.labels["vessels"] = roles_on_grid(role_vol, ctx.reference)
    progress(1.0, f"vessels: {analysis.n_branches} branches, {len(analysis.feeders)} feeder(s)")
    return result
