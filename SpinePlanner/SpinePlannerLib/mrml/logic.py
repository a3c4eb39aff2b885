"""Plan a case that lives in a Slicer scene, and put the results back into it (L2).

This is the adapter the Slicer shells (``SpinePlanner.py``, ``DTITractography.py``,
``SyntheticCTCheck.py``) delegate to. Everything is passed in explicitly: the scene, the module
logics and the nodes. Inside Slicer the shells pass ``slicer.mrmlScene`` and the logics of
``slicer.modules``; the tests pass the scene of :func:`~SpinePlannerLib.mrml.headless.create_core`.

Workflow (:func:`plan_in_scene`)

1. :func:`context_from_scene` builds a :class:`~SpinePlannerLib.planning.context.PlanContext` from
   volume nodes by role (linear parent transforms applied), a diffusion-weighted volume node,
   an optional segmentation node and a markups point list whose first point is the tumor seed.
2. The planning stages run (:func:`SpinePlannerLib.planning.pipeline.run_stages`).
3. :func:`SpinePlannerLib.mrml.scene.populate_scene` adds the results to the same scene; the
   input volume nodes are reused (not duplicated) and every node a run creates is tagged with
   the stage that made it, so that a re-run replaces its own earlier results.

Manual edits. Every segment this module writes carries two tags: ``SpinePlanner.generated`` and
``SpinePlanner.maskSHA256`` (hash of its mask on the reference grid at generation time). On a
re-run a generated segment whose mask still has that hash is recomputed; a generated segment
whose mask changed (edited in the Segment Editor) is passed to the stages as a *given* label map
and kept (``ctx.given_labels``; the segmentation stage does not overwrite given labels). With
``replace_edits=True`` every generated segment is recomputed, edited or not. Segments the user
created (no ``SpinePlanner.generated`` tag) are always inputs.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import vtk

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.geometry import resample_mask_like
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.mrml.headless import SlicerCore
from SpinePlannerLib.mrml.scene import (
    STRUCTURE_COLORS,
    Provenance,
    node_ids,
    populate_scene,
    structure_name,
)
from SpinePlannerLib.mrml.volumes import (  # noqa: F401 - node converters re-exported for the Slicer shell
    add_dwi_node,
    add_segmentation_from_masks,
    add_volume_node,
    array_from_image_data,
    dwi_from_node,
    volume_from_scene_node,
    world_affine,
)
from SpinePlannerLib.planning.context import ROLES, PlanContext, Progress, no_progress
from SpinePlannerLib.planning.pipeline import (
    check_seed_inside,
    new_plan,
    publish_staged,
    run_stages,
    write_json_atomic,
    write_labels,
)
from SpinePlannerLib.planning.plan_schema import validate_plan

VOLUME_ROLES = tuple(r for r in ROLES if r != "dwi")
"""Roles of scalar volume nodes (every role except ``dwi``)."""

TAG_GENERATED = "SpinePlanner.generated"
TAG_MASK_HASH = "SpinePlanner.maskSHA256"
ATTR_CREATED_BY = "SpinePlanner.createdBy"
"""Node attribute: the stage (or ``"inputs"``/``"segmentation"``) whose run created the node."""
RESULTS_FOLDER = "SpinePlanner results"
SEGMENTATION_NAME = "SpinePlan segmentation"
MEASUREMENTS_NAME = "SpinePlan measurements"


@dataclass
class SceneInputs:
    """The nodes a plan starts from.

    Attributes
    ----------
    volumes : dict[str, vtkMRMLScalarVolumeNode]
        Role (t1, t2, t1c, stir, ct, sct, angio) -> scalar volume node.
    dwi : vtkMRMLDiffusionWeightedVolumeNode or None
    segmentation : vtkMRMLSegmentationNode or None
        Segments named after structures (``cord``, ``tumor``, ...; case and spaces ignored) are
        label maps of the case; earlier results of this module are recognised by their tags.
    tumor_seed : vtkMRMLMarkupsFiducialNode or None
        Its first defined control point (world RAS, mm) is the tumor seed.
    segment_names : dict[str, str] or None
        structure -> segment name, to use segments named otherwise (e.g. ``{"tumor": "Lesion"}``).
        When given, only these segments are read.
    replace_edits : bool
        Recompute every segment generated earlier, even one edited since (see module docstring).
    """

    volumes: dict = field(default_factory=dict)
    dwi: object = None
    segmentation: object = None
    tumor_seed: object = None
    segment_names: dict | None = None
    replace_edits: bool = False


@dataclass
class SceneResult:
    """What :func:`plan_in_scene` returns.

    Attributes
    ----------
    ctx : PlanContext
        The finished context (plan, label maps, staged export files).
    nodes : dict
        name -> node as returned by ``populate_scene`` (input roles map to the input nodes).
    segmentation : vtkMRMLSegmentationNode or None
        The segmentation holding the results (the input segmentation node when there was one).
    measurements : vtkMRMLTableNode
        One row per reported quantity (section, quantity, value).
    kept_edits : list[str]
        Structures whose edited segments were kept as given.
    """

    ctx: PlanContext
    nodes: dict
    segmentation: object
    measurements: object
    kept_edits: list = field(default_factory=list)

    @property
    def plan(self) -> dict:
        return self.ctx.plan

    def cleanup(self) -> None:
        """Delete the staged export files (call when the result is no longer needed)."""
        if self.ctx.staging_dir is not None:
            shutil.rmtree(self.ctx.staging_dir, ignore_errors=True)
            self.ctx.staging_dir = None


# -- nodes -> L1 objects ----------------------------------------------------------------------
def _node_input_label(node) -> str:
    """What plan.json records as the input 'path' of a node: its file, else its scene name and ID."""
    storage = node.GetStorageNode() if hasattr(node, "GetStorageNode") else None
    if storage is not None and storage.GetFileName():
        return str(storage.GetFileName())
    return f"scene node '{node.GetName()}' ({node.GetID()})"


def seed_from_markups(node, name: str = "tumor seed") -> np.ndarray:
    """World RAS position (mm) of the first defined control point of a markups node."""
    for i in range(node.GetNumberOfControlPoints()):
        if node.GetNthControlPointPositionStatus(i) != node.PositionDefined:
            continue
        pos = [0.0, 0.0, 0.0]
        node.GetNthControlPointPositionWorld(i, pos)
        return np.asarray(pos, float)
    raise InputError(name, f"no point placed in '{node.GetName()}'")


def mask_hash(mask: np.ndarray) -> str:
    """SHA-256 of a binary mask (shape and voxels): detects any edit of a segment."""
    m = np.ascontiguousarray(np.asarray(mask) > 0)
    h = hashlib.sha256(np.asarray(m.shape, np.int64).tobytes())
    h.update(np.packbits(m, axis=None).tobytes())
    return h.hexdigest()


def _segment_tag(segment, key: str) -> str | None:
    value = vtk.reference("")
    return str(value) if segment.GetTag(key, value) else None


def segment_mask_on(seg_node, segment_id: str, reference: Volume, reference_node, logics) -> Volume:
    """One segment as a 0/1 mask on ``reference``'s grid (exported through a temporary label map
    node; carried through world coordinates when Slicer's export grid differs)."""
    scene = seg_node.GetScene()
    before = set(node_ids(scene))
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__spineplanner_export")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        if not logics["Segmentations"].ExportSegmentsToLabelmapNode(seg_node, ids, labelmap, reference_node):
            raise InputError("segmentation", f"could not export segment '{segment_id}' of '{seg_node.GetName()}'")
        if labelmap.GetImageData() is None:
            return reference.with_array(np.zeros(reference.shape3, np.uint8))
        exported = Volume(array_from_image_data(labelmap.GetImageData()) > 0, world_affine(labelmap, "segmentation"))
    finally:  # the temporary label map and whatever the export added for it (display, color table)
        for node_id in reversed(node_ids(scene)):
            if node_id not in before and scene.GetNodeByID(node_id) is not None:
                scene.RemoveNode(scene.GetNodeByID(node_id))
    if exported.same_grid(reference):
        return reference.with_array(exported.array.astype(np.uint8))
    return resample_mask_like(exported.with_array(exported.array.astype(np.uint8)), reference)


def labels_from_segmentation(seg_node, reference: Volume, reference_node, logics, *,
                             segment_names: dict | None = None, replace_edits: bool = False,
                             recompute_generated: bool = True):
    """Read a segmentation node into label maps on ``reference``'s grid.

    Returns ``(labels, edited)``: structure -> mask of every segment that is an input of the
    plan (user-created segments and edited generated ones), and the structures among them that
    are edited results of an earlier run. Unedited generated segments (and, with
    ``replace_edits``, edited ones too) are left out so that the stages recompute them; with
    ``recompute_generated=False`` (the segmentation stage does not run) every segment is an input.
    """
    segmentation = seg_node.GetSegmentation()
    wanted = None
    if segment_names:
        wanted = {name.strip().lower(): structure for structure, name in segment_names.items() if name}
    labels, edited = {}, []
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        seg_id = segmentation.GetNthSegmentID(i)
        if wanted is not None:
            structure = wanted.get(segment.GetName().strip().lower())
            if structure is None:
                continue
        else:
            structure = structure_name(segment.GetName())
        generated = _segment_tag(segment, TAG_GENERATED)
        if generated is not None and generated != "1":
            continue  # a derived display segment written by a stage result, not a structure
        mask = segment_mask_on(seg_node, seg_id, reference, reference_node, logics)
        if not np.any(mask.array):
            continue
        if generated == "1" and recompute_generated:
            if replace_edits or _segment_tag(segment, TAG_MASK_HASH) == mask_hash(mask.array):
                continue  # an earlier result: recompute it
            edited.append(structure)
        mask.name = structure
        labels[structure] = mask
    return labels, edited


def context_from_scene(inputs: SceneInputs, logics: dict, *,
                       recompute_generated: bool = True) -> tuple[PlanContext, dict, list]:
    """Build the planning context from nodes (``recompute_generated``: the segmentation stage
    will run, so unedited earlier results are left to it; see :func:`labels_from_segmentation`).

    Returns ``(ctx, reference_nodes, kept_edits)`` where ``reference_nodes`` maps the roles of
    ``ctx.volumes`` to their nodes (``None`` for volumes derived here).
    Raises :class:`InputError` naming the input on bad input (as the CLI does).
    """
    ctx = PlanContext()
    role_nodes: dict = {}
    for role, node in (inputs.volumes or {}).items():
        if node is None:
            continue
        if role not in VOLUME_ROLES:
            raise InputError(role, f"unknown image role; expected one of {', '.join(VOLUME_ROLES)}")
        ctx.volumes[role] = volume_from_scene_node(node, role)
        ctx.inputs[role] = _node_input_label(node)
        role_nodes[role] = node
    if inputs.dwi is not None:
        ctx.dwi = dwi_from_node(inputs.dwi)
        ctx.inputs["dwi"] = _node_input_label(inputs.dwi)
    if ctx.reference is None and ctx.dwi is not None:
        # A b=0 image is T2-weighted: it gives the label-map grid when no anatomical image is given.
        b0 = ctx.dwi.volume.array[..., ctx.dwi.bvals <= 50.0].mean(axis=-1).astype(np.float32)
        ctx.volumes["t2"] = ctx.dwi.volume.with_array(b0, name="t2")
        role_nodes["t2"] = None
        ctx.warn("no anatomical image given: the mean b=0 image of the DWI is the reference grid")
    if not ctx.volumes and ctx.dwi is None:
        raise InputError("inputs", "no image selected (need at least one of " + ", ".join(ROLES) + ")")
    ref, ref_role = ctx.reference, ctx.reference_role
    kept: list = []
    if inputs.segmentation is not None:
        if ref is None:
            raise InputError("segmentation", "needs an anatomical image (t2, t1, t1c or ct)")
        labels, kept = labels_from_segmentation(
            inputs.segmentation, ref, role_nodes.get(ref_role), logics,
            segment_names=inputs.segment_names, replace_edits=inputs.replace_edits,
            recompute_generated=recompute_generated)
        ctx.labels.update(labels)
        ctx.given_labels.update(labels)
        if labels:
            ctx.inputs["segmentation"] = _node_input_label(inputs.segmentation)
    if inputs.tumor_seed is not None:
        seed = seed_from_markups(inputs.tumor_seed)
        if ref is None:
            raise InputError("tumor seed", "needs an anatomical image (t2, t1, t1c or ct)")
        check_seed_inside(seed, ref, ref_role, "tumor seed")
        ctx.tumor_seed_ras = seed
    return ctx, role_nodes, kept


# -- results -> scene -------------------------------------------------------------------------
def _remove_node(scene, node) -> None:
    if node is None or node.GetScene() is None:
        return
    extra = []
    for getter, count in (("GetNthDisplayNode", "GetNumberOfDisplayNodes"),
                          ("GetNthStorageNode", "GetNumberOfStorageNodes")):
        if hasattr(node, count):
            extra += [getattr(node, getter)(i) for i in range(getattr(node, count)())]
    scene.RemoveNode(node)
    for n in extra:
        if n is not None and n.GetScene() is not None:
            scene.RemoveNode(n)


def remove_previous_results(scene, stages: set[str], *, keep=()) -> int:
    """Remove nodes an earlier run created for ``stages`` (by their ``createdBy`` attribute)."""
    keep_ids = {n.GetID() for n in keep if n is not None}
    doomed = []
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        if node.GetAttribute(ATTR_CREATED_BY) in stages and node.GetID() not in keep_ids:
            doomed.append(node)
    for node in doomed:
        _remove_node(scene, node)
    return len(doomed)


def _remove_orphans(scene, before: set[str]) -> None:
    """Remove display nodes and color tables added since ``before`` that nothing uses any more
    (left behind by temporary label maps while segments were imported)."""
    new = [scene.GetNodeByID(i) for i in node_ids(scene) if i not in before]
    for node in new:
        if node is not None and node.IsA("vtkMRMLDisplayNode") and node.GetDisplayableNode() is None:
            scene.RemoveNode(node)
    used_colors = set()
    for i in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(i)
        if node.IsA("vtkMRMLDisplayNode") and node.GetColorNodeID():
            used_colors.add(node.GetColorNodeID())
    for node in new:
        if (node is not None and node.GetScene() is not None and node.IsA("vtkMRMLColorTableNode")
                and node.GetID() not in used_colors and node.GetName().endswith("_ColorTable")):
            scene.RemoveNode(node)


def _merge_segments(target, source, *, skip: set[str]) -> None:
    """Copy ``source``'s segments into ``target`` (same-name segments replaced), except ``skip``."""
    tseg, sseg = target.GetSegmentation(), source.GetSegmentation()
    for i in range(sseg.GetNumberOfSegments()):
        seg_id = sseg.GetNthSegmentID(i)
        name = sseg.GetSegment(seg_id).GetName()
        if structure_name(name) in skip:
            continue
        for j in reversed(range(tseg.GetNumberOfSegments())):
            if structure_name(tseg.GetNthSegment(j).GetName()) == structure_name(name):
                tseg.RemoveSegment(tseg.GetNthSegmentID(j))
        tseg.CopySegmentFromSegmentation(sseg, seg_id)


def _tag_generated_segments(seg_node, ctx: PlanContext, created_by: dict[str, str], reference_node,
                            logics: dict) -> None:
    """Tag result segments: for structures the hash of the mask *as stored in the segmentation*
    (read back through the same export a later run uses, so an unedited segment always matches),
    for segments a stage builder added the stage's name."""
    segmentation = seg_node.GetSegmentation()
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        structure = structure_name(segment.GetName())
        if structure in ctx.given_labels:
            continue
        if structure in ctx.labels:
            stored = segment_mask_on(seg_node, segmentation.GetNthSegmentID(i), ctx.reference, reference_node, logics)
            segment.SetTag(TAG_GENERATED, "1")
            segment.SetTag(TAG_MASK_HASH, mask_hash(stored.array))
        elif _segment_tag(segment, TAG_GENERATED) is None:
            segment.SetTag(TAG_GENERATED, created_by.get(structure, "derived"))


def _flatten(prefix: str, value, rows: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, rows)
    elif isinstance(value, list | tuple):
        if len(value) <= 4 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            rows.append((prefix, ", ".join(f"{v:.4g}" for v in value)))
        elif all(isinstance(v, str) for v in value) and value:
            rows.append((prefix, "; ".join(value)))
    elif isinstance(value, float):
        rows.append((prefix, f"{value:.4g}"))
    elif value is not None:
        rows.append((prefix, str(value)))


SUMMARY_SECTIONS = ("summary", "tumor", "cord", "vertebrae", "tractography", "synthetic_ct_check", "vessels")


def measurement_rows(plan: dict, sections=SUMMARY_SECTIONS) -> list[tuple[str, str, str]]:
    """``(section, quantity, value)`` rows of the plan's result sections (numbers as text)."""
    rows = []
    for section in sections:
        flat: list = []
        _flatten("", plan.get(section) or {}, flat)
        rows += [(section, quantity, value) for quantity, value in flat]
    for name, record in (plan.get("stages") or {}).items():
        text = record.get("status", "")
        if record.get("reason"):
            text += f": {record['reason']}"
        rows.append(("stages", name, text))
    return rows


def update_measurements_table(scene, plan: dict, table=None, *, name: str = MEASUREMENTS_NAME):
    """Write :func:`measurement_rows` into a ``vtkMRMLTableNode`` (created as ``name`` when ``table``
    is None or no longer in the scene)."""
    if table is None or table.GetScene() is None:
        table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table.RemoveAllColumns()
    for title in ("Section", "Quantity", "Value"):
        column = vtk.vtkStringArray()
        column.SetName(title)
        table.AddColumn(column)
    for r, row in enumerate(measurement_rows(plan)):
        table.AddEmptyRow()
        for c, text in enumerate(row):
            table.SetCellText(r, c, text)
    table.SetUseColumnTitleAsColumnHeader(True)
    table.SetAttribute(ATTR_CREATED_BY, "measurements")
    return table


def _results_folder(scene, nodes) -> None:
    """Put created nodes into a subject hierarchy folder (skipped when the scene has no hierarchy)."""
    from slicer import vtkMRMLSubjectHierarchyNode

    sh = vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if sh is None:
        return
    folder = sh.GetItemChildWithName(sh.GetSceneItemID(), RESULTS_FOLDER)
    if not folder:
        folder = sh.CreateFolderItem(sh.GetSceneItemID(), RESULTS_FOLDER)
    for node in nodes:
        item = sh.GetItemByDataNode(node)
        if item and sh.GetItemParent(item) == sh.GetSceneItemID():
            sh.SetItemParent(item, folder)


def _result_segmentation(scene, ctx: PlanContext, nodes: dict, target, provenance: Provenance, reference_node,
                         logics: dict):
    """The segmentation holding the results: the input segmentation ``target`` with the new
    segments merged in (given structures kept), else the new one, renamed. Segments get their
    colours and generation tags. Returns it (None when there is none)."""
    new_seg = nodes.get("segmentation")
    if new_seg is not None:
        if target is not None and target is not new_seg:
            _merge_segments(target, new_seg, skip=set(ctx.given_labels))
            _remove_node(scene, new_seg)
            nodes["segmentation"] = target
        else:
            target = new_seg
            target.SetName(SEGMENTATION_NAME)
    if target is not None:
        for structure in set(ctx.labels) - ctx.given_labels:
            _set_segment_color(target, structure)
        _tag_generated_segments(target, ctx, provenance.segments, reference_node, logics)
    return target


def _tag_created_nodes(scene, before: set[str], nodes: dict, provenance: Provenance, *, skip=()) -> list:
    """Set ``createdBy`` on every data node added since ``before`` (except ``skip``): the stage
    whose result made it, ``inputs`` for input volumes, else ``segmentation``. Returns the nodes."""
    populated = {node.GetID(): ("inputs" if key in VOLUME_ROLES or key == "dwi_b0" else "segmentation")
                 for key, node in nodes.items() if hasattr(node, "GetID")}
    skip_ids = {n.GetID() for n in skip if n is not None}
    results = []
    for node_id in node_ids(scene):
        node = scene.GetNodeByID(node_id)
        if node_id in before or node is None or node_id in skip_ids:
            continue
        if node.IsA("vtkMRMLDisplayNode") or node.IsA("vtkMRMLStorageNode"):
            continue
        node.SetAttribute(ATTR_CREATED_BY, provenance.nodes.get(node_id) or populated.get(node_id, "segmentation"))
        results.append(node)
    return results


def plan_in_scene(scene, inputs: SceneInputs, *, logics: dict, app_logic=None, params: dict | None = None,
                  only: list[str] | None = None, progress_factory=None, measurements=None) -> SceneResult:
    """Plan the case held by ``inputs`` and add the results to ``scene``.

    Parameters
    ----------
    scene : vtkMRMLScene
        ``slicer.mrmlScene`` in Slicer, a headless core's scene in tests.
    inputs : SceneInputs
    logics : dict
        Module logics by name (``Segmentations``, ``Markups``, ``Models``, ``Volumes``,
        ``SubjectHierarchy``, ``Colors``), as in :class:`~SpinePlannerLib.mrml.headless.SlicerCore`.
    app_logic : vtkSlicerApplicationLogic, optional
    params : dict, optional
        Stage section -> settings: the section's parameter dataclass (e.g. ``VesselParams()``)
        or a dict of overrides (:mod:`SpinePlannerLib.planning.params_file`); validated and
        placed in ``ctx.params`` as plain dicts.
    only : list of str, optional
        Stage names to run (default: all).
    progress_factory : callable, optional
        ``progress_factory(stage_name) -> progress(fraction, message)``; also called with
        ``"scene"`` while the results are added.
    measurements : vtkMRMLTableNode, optional
        Table to overwrite with the measurements (created when None).

    Raises
    ------
    InputError
        Bad input (names the input), before anything is added to the scene.
    """
    ctx, role_nodes, kept = context_from_scene(
        inputs, logics, recompute_generated=only is None or "segmentation" in only)
    from SpinePlannerLib.planning.params_file import validate_stage_params

    ctx.params = validate_stage_params(dict(params or {}), name="settings")
    ctx.plan = new_plan(ctx)
    ctx.staging_dir = Path(tempfile.mkdtemp(prefix="spineplanner-"))
    try:
        run_stages(ctx, progress_factory=progress_factory, only=only)
    except Exception:
        shutil.rmtree(ctx.staging_dir, ignore_errors=True)
        raise
    for structure in kept:
        ctx.warn(f"{structure}: the edited segment was kept (tick 'replace edits' to recompute it)")
    progress: Progress = progress_factory("scene") if progress_factory else no_progress
    ran = set(ctx.plan.get("stages", {}))
    target = inputs.segmentation
    remove_previous_results(scene, ran | {"inputs"}, keep=(target, measurements))

    provenance = Provenance()
    before = set(node_ids(scene))
    core = SlicerCore(scene, app_logic, logics)
    nodes = populate_scene(core, ctx, existing={r: n for r, n in role_nodes.items() if n is not None},
                           progress=progress, provenance=provenance)
    progress(0.8, "merging the segmentation")

    target = _result_segmentation(scene, ctx, nodes, target, provenance, role_nodes.get(ctx.reference_role), logics)
    from SpinePlannerLib.report.summary import build_summary

    ctx.plan["summary"] = build_summary(ctx.plan)
    table = update_measurements_table(scene, ctx.plan, measurements)
    _remove_orphans(scene, before)
    for role, original in role_nodes.items():
        if original is None and hasattr(nodes.get(role), "SetName"):  # derived reference (DWI b=0)
            nodes[role].SetName("dwi b0 (reference grid)")
    results = _tag_created_nodes(scene, before, nodes, provenance, skip=(target, table))
    if target is not None and target is not inputs.segmentation:
        target.SetAttribute(ATTR_CREATED_BY, "result-segmentation")
        results.append(target)
    _results_folder(scene, [*results, table])
    progress(1.0, "results added to the scene")
    return SceneResult(ctx=ctx, nodes=nodes, segmentation=target, measurements=table, kept_edits=list(kept))


def _set_segment_color(seg_node, structure: str) -> None:
    color = STRUCTURE_COLORS.get(structure)
    if color is None:
        return
    s = seg_node.GetSegmentation()
    for i in range(s.GetNumberOfSegments()):
        if structure_name(s.GetNthSegment(i).GetName()) == structure:
            s.GetNthSegment(i).SetColor(*color)


# -- export -----------------------------------------------------------------------------------
def export_plan(result: SceneResult, folder) -> Path:
    """Write ``plan.json``, ``labels/<structure>.nii.gz`` and the stages' export files to
    ``folder`` (built beside it and moved into place; ``plan.json`` last). Returns plan.json's path."""
    folder = Path(folder)
    if not str(folder) or folder == Path("."):
        raise InputError("export folder", "choose a folder to export to")
    ctx = result.ctx
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.staging-", dir=folder.parent))
    try:
        if ctx.staging_dir is not None and Path(ctx.staging_dir).is_dir():
            shutil.copytree(ctx.staging_dir, staging, dirs_exist_ok=True)
        labels = write_labels(ctx, staging / "labels")
        plan = dict(ctx.plan)
        plan["outputs"] = {"plan": "plan.json", "labels": labels, **ctx.exports}
        validate_plan(plan)
        write_json_atomic(plan, staging / "plan.json")
        publish_staged(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / "plan.json"


# -- loading a case into a scene (sample data, tests) -------------------------------------------
def add_case_to_scene(scene, ctx: PlanContext, logics: dict | None = None, *, prefix: str = "") -> SceneInputs:
    """Add a loaded case (:func:`SpinePlannerLib.planning.pipeline.load_case`) to ``scene`` as input nodes.

    Volumes become scalar volume nodes named ``<prefix><role>``, the DWI a diffusion-weighted
    volume node, the tumor seed a one-point markups node and given label maps a segmentation
    (needs ``logics``). Returns the :class:`SceneInputs` that plan this case.
    """
    inputs = SceneInputs()
    for role, vol in ctx.volumes.items():
        inputs.volumes[role] = add_volume_node(scene, vol, name=f"{prefix}{role}")
    if ctx.dwi is not None:
        inputs.dwi = add_dwi_node(scene, ctx.dwi, name=f"{prefix}dwi")
    if ctx.tumor_seed_ras is not None:
        seed = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", f"{prefix}tumor seed")
        seed.CreateDefaultDisplayNodes()
        seed.AddControlPoint(vtk.vtkVector3d(*[float(c) for c in ctx.tumor_seed_ras]), "tumor seed")
        inputs.tumor_seed = seed
    masks = {k: v for k, v in ctx.labels.items() if np.any(v.array)}
    if masks:
        if logics is None:
            raise ValueError("given label maps need the Segmentations logic (pass logics)")
        ref_node = inputs.volumes.get(ctx.reference_role)
        before = set(node_ids(scene))
        inputs.segmentation = add_segmentation_from_masks(scene, logics, ref_node, masks, STRUCTURE_COLORS,
                                                          name=f"{prefix}segmentation")
        _remove_orphans(scene, before)
    return inputs


def load_phantom_sample(scene, logics: dict, cache_dir, kind: str, *, seed: int = 0,
                        prefix: str | None = None) -> SceneInputs:
    """Generate (or reuse, after checksum verification) a phantom case in ``cache_dir`` and add
    it to ``scene`` like sample data: images by role, the DWI, and the tumor seed at the
    tumor's centroid as a surgeon would click it (the ground-truth label maps are not loaded).
    See :mod:`SpinePlannerLib.phantom.sample` for how the files are checksummed."""
    import json

    from SpinePlannerLib.phantom.sample import ensure_phantom_case
    from SpinePlannerLib.planning.demo import phantom_case_inputs
    from SpinePlannerLib.planning.pipeline import load_case

    case = ensure_phantom_case(kind, cache_dir, seed=seed)
    truth = json.loads((case.folder / "truth.json").read_text())
    ctx = load_case(phantom_case_inputs(case.folder, truth))
    return add_case_to_scene(scene, ctx, logics, prefix=f"{kind} " if prefix is None else prefix)


def add_phantom_to_scene(scene, case, logics: dict | None = None, *, labels=(), tumor_seed: bool = True,
                         prefix: str = "") -> SceneInputs:
    """Add an in-memory phantom case (:func:`SpinePlannerLib.phantom.case.generate_phantom`) to ``scene``.

    ``labels`` names ground-truth label maps to add as segments (e.g. ``("cord", "tumor")``; they
    are binarised); ``tumor_seed`` adds the tumor seed at the true tumor centroid.
    """
    ctx = PlanContext(volumes=dict(case.volumes), dwi=case.dwi)
    for name in labels:
        lab = case.labels[name]
        ctx.labels[name] = lab.with_array((lab.array > 0).astype(np.uint8), name=name)
    if tumor_seed:
        ctx.tumor_seed_ras = np.asarray(case.truth["tumor"]["centroid_ras"], float)
    return add_case_to_scene(scene, ctx, logics, prefix=prefix)
