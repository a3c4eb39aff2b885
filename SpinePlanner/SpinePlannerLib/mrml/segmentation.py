"""Scene nodes of the segmentation stage's result (L2): the cord centreline curve, the vertebral
level colour table, the segments' terminology tags and closed-surface models of cord, CSF and
tumor. Called once per plan by :func:`SpinePlannerLib.mrml.scene.populate_scene` after the
segmentation and the label maps have been added (``nodes["segmentation"]``,
``nodes["vertebrae"]``)."""

from __future__ import annotations

import numpy as np
import vtk

TERMINOLOGY = {
    "cord": ("SCT^123037004^Anatomical Structure", "SCT^2748008^Spinal cord"),
    "csf": ("SCT^123037004^Anatomical Structure", "SCT^65216001^Cerebrospinal fluid"),
    "bone": ("SCT^123037004^Anatomical Structure", "SCT^272673000^Bone"),
    "tumor": ("SCT^49755003^Morphologically Altered Structure", "SCT^108369006^Neoplasm"),
    "edema": ("SCT^49755003^Morphologically Altered Structure", "SCT^79654002^Edema"),
    "cyst": ("SCT^49755003^Morphologically Altered Structure", "SCT^441457006^Cyst"),
}
"""DICOM/SNOMED codes of the segments (category, type) for Slicer's terminology tag."""

TERMINOLOGY_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
SURFACE_STRUCTURES = ("cord", "csf", "tumor")
"""Structures exported as closed-surface models."""


def add_segmentation_result(core, result, nodes: dict) -> None:
    """All scene content of a :class:`~SpinePlannerLib.segmentation.stage.SegmentationResult`."""
    if result.cord_centerline_ras is not None:
        nodes["cord_centerline"] = add_centerline(core.scene, result.cord_centerline_ras)
    if result.vertebrae is not None and result.vertebrae.found:
        table = add_level_colors(core.scene, nodes.get("vertebrae"), result.vertebrae.names)
        if table is not None:
            nodes["vertebral_levels_colors"] = table
    folder = tag_segments_and_add_models(core, nodes.get("segmentation"))
    if folder is not None:
        nodes["segmentation_models_folder"] = folder


def add_centerline(scene, points) -> object:
    """A locked markups curve ``cord centerline`` through ``points`` (N, 3; RAS mm)."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsCurveNode", "cord centerline")
    node.CreateDefaultDisplayNodes()
    for p in np.asarray(points, float):
        node.AddControlPoint(vtk.vtkVector3d(*[float(c) for c in p]), "")
    node.SetLocked(True)
    return node


def add_level_colors(scene, labelmap_node, names: dict[int, str]):
    """A colour table naming each vertebral level index, shown by ``labelmap_node``; None without it."""
    if labelmap_node is None:
        return None
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", "vertebral levels")
    table.SetTypeToUser()
    n = max(names) + 1 if names else 1
    table.SetNumberOfColors(n)
    table.SetColor(0, "background", 0.0, 0.0, 0.0, 0.0)
    rng = np.random.default_rng(7)
    for idx in range(1, n):
        r, g, b = 0.55 + 0.45 * rng.random(3)
        table.SetColor(idx, names.get(idx, f"V{idx}"), float(r), float(g), float(b), 1.0)
    display = labelmap_node.GetDisplayNode()
    if display is not None:
        display.SetAndObserveColorNodeID(table.GetID())
    return table


def tag_segments_and_add_models(core, seg_node):
    """Terminology tags on the known segments and closed-surface models of cord, CSF and tumor
    (under a subject-hierarchy folder, whose item ID is returned; None when nothing was exported)."""
    if seg_node is None:
        return None
    segmentation = seg_node.GetSegmentation()
    ids = []
    for name, (category, kind) in TERMINOLOGY.items():
        sid = segmentation.GetSegmentIdBySegmentName(name)
        if not sid:
            continue
        segment = segmentation.GetSegment(sid)
        segment.SetTag("TerminologyEntry", f"{TERMINOLOGY_CONTEXT}~{category}~{kind}~^^~"
                                           "Anatomic codes - DICOM master list~^^~^^")
        if name in SURFACE_STRUCTURES:
            ids.append(sid)
    if not ids:
        return None
    seg_node.CreateClosedSurfaceRepresentation()
    sh = core.scene.GetSubjectHierarchyNode()
    folder = sh.CreateFolderItem(sh.GetSceneItemID(), "segmentation models")
    arr = vtk.vtkStringArray()
    for sid in ids:
        arr.InsertNextValue(sid)
    core.logics["Segmentations"].ExportSegmentsToModels(seg_node, arr, folder)
    return folder
