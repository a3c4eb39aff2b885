"""Vessel analysis in the MRML scene (L2): coloured vessel models, feeder markups, entry point.

* :func:`add_vessel_nodes` turns a :class:`~SpinePlannerLib.vessels.analysis.VesselAnalysis`
  into one tube model per role (ordinary vessels, feeders highlighted, anterior spinal artery,
  Adamkiewicz candidate, draining-vein candidates) shown in 3D and as slice intersections, and a
  locked fiducial markups node with one point per feeder entry (``F1`` = highest ranked), all
  under a subject-hierarchy folder.
* :func:`run_vessels` is what the Slicer module's Apply calls: nodes or :class:`Volume` in,
  analysis + nodes out.

The scene is always passed in; nothing here touches the Slicer application or Qt.
"""

from __future__ import annotations

import numpy as np
import vtk

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.mrml.volumes import volume_from_node
from SpinePlannerLib.planning.context import Progress, no_progress
from SpinePlannerLib.vessels.analysis import (
    ROLE_ADAMKIEWICZ,
    ROLE_ASA,
    ROLE_DRAINING,
    ROLE_FEEDER,
    ROLE_VESSEL,
    VesselAnalysis,
    analyze_vessels,
)
from SpinePlannerLib.vessels.params import VesselParams

ROLE_DISPLAY = {
    ROLE_VESSEL: ("Vessels", (0.80, 0.25, 0.25), 0.6),
    ROLE_FEEDER: ("Tumor feeders", (1.00, 0.85, 0.00), 1.0),
    ROLE_ADAMKIEWICZ: ("Adamkiewicz candidate", (0.10, 0.90, 0.90), 1.0),
    ROLE_ASA: ("Anterior spinal artery", (0.20, 0.45, 1.00), 1.0),
    ROLE_DRAINING: ("Draining vein candidates", (0.55, 0.30, 0.85), 1.0),
}
"""Role -> (model name, RGB 0..1, opacity). Feeders are bright yellow to stand out."""

MIN_TUBE_RADIUS_MM = 0.25
CREATED_BY_ATTRIBUTE = "SpinePlanner.createdBy"
"""Node attribute the Slicer module uses to find (and show/hide) what the vessel analysis added."""


def tube_polydata(polylines, radii, *, sides: int = 10) -> vtk.vtkPolyData:
    """Tubes (RAS mm) around polylines, radius varying along each (``radii`` mm per point)."""
    points = vtk.vtkPoints()
    lines = vtk.vtkCellArray()
    radius = vtk.vtkDoubleArray()
    radius.SetName("radius")
    for pts, rr in zip(polylines, radii, strict=True):
        pts = np.asarray(pts, float)
        if len(pts) < 2:
            continue
        start = points.GetNumberOfPoints()
        for p, r in zip(pts, np.asarray(rr, float), strict=True):
            points.InsertNextPoint(*p)
            radius.InsertNextValue(max(float(r), MIN_TUBE_RADIUS_MM))
        lines.InsertNextCell(len(pts))
        for i in range(len(pts)):
            lines.InsertCellPoint(start + i)
    poly = vtk.vtkPolyData()
    poly.SetPoints(points)
    poly.SetLines(lines)
    poly.GetPointData().AddArray(radius)
    poly.GetPointData().SetActiveScalars("radius")
    if poly.GetNumberOfCells() == 0:
        return vtk.vtkPolyData()
    tube = vtk.vtkTubeFilter()
    tube.SetInputData(poly)
    tube.SetNumberOfSides(sides)
    tube.SetVaryRadiusToVaryRadiusByAbsoluteScalar()
    tube.CappingOn()
    tube.Update()
    out = vtk.vtkPolyData()
    out.DeepCopy(tube.GetOutput())
    return out


def _add_model(scene, name: str, poly: vtk.vtkPolyData, color, opacity: float):
    node = scene.AddNewNodeByClass("vtkMRMLModelNode", name)
    node.SetAndObservePolyData(poly)
    node.CreateDefaultDisplayNodes()
    disp = node.GetDisplayNode()
    disp.SetColor(*color)
    disp.SetOpacity(opacity)
    disp.SetScalarVisibility(False)
    disp.SetVisibility2D(True)  # slice intersections
    disp.SetSliceIntersectionThickness(2)
    return node


def _branch_radii(result: VesselAnalysis, bid: int) -> np.ndarray:
    """Skeleton radii rescaled so that their median matches the branch's measured diameter."""
    b = result.graph.branches[bid]
    r = np.asarray(b.radii, float)
    if len(result.branch_diameters) and np.median(r) > 0:
        r = r * (0.5 * float(result.branch_diameters[bid]) / float(np.median(r)))
    return r


def add_vessel_nodes(scene, result: VesselAnalysis, *, folder_name: str = "Vessels") -> dict:
    """Add models by role and feeder markups for ``result`` to ``scene``.

    Returns ``{"vessels_<role>": model node, ..., "feeder_entries": markups node}`` (only what
    exists).
    """
    nodes: dict = {}
    if result.graph is None or not result.graph.branches:
        return nodes
    roles = np.asarray(result.branch_roles) if len(result.branch_roles) else np.full(len(result.graph.branches), 1)
    for code, (name, color, opacity) in ROLE_DISPLAY.items():
        ids = [int(b) for b in np.flatnonzero(roles == code)]
        lines = [result.graph.branches[b].points for b in ids]
        radii = [_branch_radii(result, b) for b in ids]
        if code == ROLE_FEEDER:  # feeders seen only as a stub of their parent: draw stub + hidden part
            for f in result.feeders:
                if f.stub and f.path is not None:
                    lines.append(f.path)
                    radii.append(np.full(len(f.path), 0.5 * f.diameter_mm))
        if not lines:
            continue
        poly = tube_polydata(lines, radii)
        nodes[f"vessels_{name.lower().replace(' ', '_')}"] = _add_model(scene, name, poly, color, opacity)
    if result.feeders:
        mk = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Feeder entry points")
        mk.CreateDefaultDisplayNodes()
        for rank, f in enumerate(result.feeders, start=1):
            i = mk.AddControlPoint([float(v) for v in f.entry_ras], f"F{rank}")
            mk.SetNthControlPointDescription(
                i, f"{f.diameter_mm:.1f} mm; {f.level or 'level ?'} {f.side or ''}; parent {f.parent or 'unknown'}")
            mk.SetNthControlPointLocked(i, True)
        mk.SetLocked(True)
        mk.GetDisplayNode().SetSelectedColor(*ROLE_DISPLAY[ROLE_FEEDER][1])
        nodes["feeder_entries"] = mk
    aka = result.adamkiewicz
    if aka.get("present") and aka.get("entry_ras") is not None:
        mk = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Adamkiewicz junction")
        mk.CreateDefaultDisplayNodes()
        mk.AddControlPoint([float(v) for v in aka["entry_ras"]], "AKA")
        mk.SetLocked(True)
        mk.GetDisplayNode().SetSelectedColor(*ROLE_DISPLAY[ROLE_ADAMKIEWICZ][1])
        nodes["adamkiewicz_junction"] = mk
    for node in nodes.values():
        node.SetAttribute(CREATED_BY_ATTRIBUTE, "vessels")
    _group(scene, folder_name, list(nodes.values()))
    return nodes


def _group(scene, folder_name: str, members) -> None:
    """Put ``members`` under a subject-hierarchy folder (skipped when no hierarchy node exists)."""
    try:
        from slicer import vtkMRMLSubjectHierarchyNode
    except ImportError:  # pragma: no cover - slicer-core always has it
        return
    sh = vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if sh is None or not members:
        return
    folder = sh.CreateFolderItem(sh.GetSceneItemID(), folder_name)
    for node in members:
        item = sh.GetItemByDataNode(node)
        if item:
            sh.SetItemParent(item, folder)


def _as_volume(core, obj, what: str, *, reference=None) -> Volume | None:
    """A Volume from a Volume, a scalar/label map volume node or a segmentation node (all segments)."""
    if obj is None or isinstance(obj, Volume):
        return obj
    if obj.IsA("vtkMRMLSegmentationNode"):
        lm = core.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{what} (temporary)")
        try:
            logic = core.logics["Segmentations"]
            ok = (logic.ExportVisibleSegmentsToLabelmapNode(obj, lm, reference) if reference is not None
                  else logic.ExportAllSegmentsToLabelmapNode(obj, lm))
            if not ok:
                raise ValueError(f"{what}: could not export the segmentation to a label map")
            return volume_from_node(lm)
        finally:
            core.scene.RemoveNode(lm)
    if obj.IsA("vtkMRMLVolumeNode"):
        if obj.GetParentTransformNode() is not None:
            raise ValueError(f"{what}: harden the transform of node {obj.GetName()!r} before the vessel analysis")
        return volume_from_node(obj)
    raise ValueError(f"{what}: expected a Volume, a volume node or a segmentation node, got {obj.GetClassName()}")


def run_vessels(core, angio, tumor_mask=None, params: VesselParams | dict | None = None,
                progress: Progress = no_progress, *, cord=None, vertebrae=None, level_names: dict | None = None,
                add_nodes: bool = True) -> tuple[VesselAnalysis, dict]:
    """Analyse an angiogram and show the result in ``core.scene``.

    Parameters
    ----------
    core
        Object with ``.scene`` (and ``.logics["Segmentations"]`` for segmentation inputs): the
        headless core, or the Slicer shell's equivalent wrapping ``slicer.mrmlScene``.
    angio : Volume or vtkMRMLScalarVolumeNode
        CT angiography (HU) or MR angiography.
    tumor_mask, cord : Volume, label map/scalar volume node, segmentation node, or None
        Registered to the angiogram (same world frame).
    params : VesselParams, dict of overrides, or None (defaults)
    progress : callable(fraction, message)
    vertebrae, level_names
        Level label map and ``{"1": "T9", ...}`` to name levels (optional).
    add_nodes : bool
        Add the models and markups (:func:`add_vessel_nodes`).

    Returns
    -------
    (VesselAnalysis, nodes) — ``result.to_plan()`` is the plan.json ``vessels`` section.
    """
    if not isinstance(params, VesselParams):
        params = VesselParams.from_dict(params)
    angio_node = None if isinstance(angio, Volume) else angio
    angio_vol = _as_volume(core, angio, "angiography")
    if angio_vol is None:
        raise ValueError("angiography: no image given")
    result = analyze_vessels(
        angio_vol,
        tumor=_as_volume(core, tumor_mask, "tumor", reference=angio_node),
        cord=_as_volume(core, cord, "cord", reference=angio_node),
        vertebrae=_as_volume(core, vertebrae, "vertebrae"),
        level_names=level_names, params=params, progress=progress)
    nodes = add_vessel_nodes(core.scene, result) if add_nodes and result.detectable else {}
    return result, nodes


def add_vessel_result(core, result, nodes: dict) -> None:
    """Scene content of the planning stage's result (``result.analysis``), added to ``nodes``
    (nothing when no vessel is detectable)."""
    if result.analysis.detectable:
        nodes.update(add_vessel_nodes(core.scene, result.analysis))
