"""Scene content of the synthetic-CT check (L2): difference volume, flagged segment, table.

Every function takes the scene (and, for segmentations, the module logics) explicitly:
inside Slicer the module passes ``slicer.mrmlScene`` and
``{"Segmentations": slicer.modules.segmentations.logic()}``; headless code passes a
:class:`SpinePlannerLib.mrml.headless.SlicerCore`'s ``scene`` and ``logics``.
"""

from __future__ import annotations

import numpy as np
import vtk

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.mrml.volumes import add_segmentation_from_masks, add_volume_node, numpy_to_vtk_matrix

SLICER_DIVERGING_ID = "vtkMRMLColorTableNodeFileDivergingBlueRed.txt"
"""Slicer's own diverging table (present in the desktop application, not in slicer-core)."""
OWN_DIVERGING_NAME = "SpinePlan diverging blue-white-red"
DIFFERENCE_NODE_NAME = "CT minus synthetic CT (HU)"
FLAGGED_SEGMENT_NAME = "synthetic CT disagreement"
FLAGGED_COLOR = (1.0, 0.5, 0.0)
ROLE_ATTRIBUTE = "SpinePlanner.role"
ALIGNMENT_ROLE = "sct_ct_alignment"
"""Attribute value marking the CT alignment transform this module made (replaced on a re-run)."""


def diverging_color_node(scene):
    """A blue-white-red color table centred on zero: Slicer's if loaded, else one built here."""
    node = scene.GetNodeByID(SLICER_DIVERGING_ID)
    if node is not None:
        return node
    node = scene.GetFirstNodeByName(OWN_DIVERGING_NAME)
    if node is not None and node.IsA("vtkMRMLColorTableNode"):
        return node
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", OWN_DIVERGING_NAME)
    node.SetTypeToUser()
    n = 256
    node.SetNumberOfColors(n)
    node.GetLookupTable().SetTableRange(0, n - 1)
    for i in range(n):
        t = i / (n - 1) * 2.0 - 1.0  # -1 (blue: synthetic CT brighter) .. +1 (red: CT brighter)
        if t < 0:
            rgb = (1.0 + t * 0.8, 1.0 + t * 0.6, 1.0)
        else:
            rgb = (1.0, 1.0 - t * 0.6, 1.0 - t * 0.8)
        node.SetColor(i, f"{t:+.2f}", *rgb, 1.0)
    node.SetAttribute("Category", "SpinePlanner")
    return node


def add_difference_volume(scene, difference: Volume, *, range_hu: float | None = None,
                          name: str = DIFFERENCE_NODE_NAME):
    """Add CT - synthetic CT as a scalar volume with a diverging color map centred on 0 HU.

    ``range_hu`` is the half-width of the window (default: the 99.5th percentile of the
    absolute difference, at least 200 HU). Red = CT brighter (e.g. calcification the
    synthetic CT misses), blue = synthetic CT brighter.
    """
    node = add_volume_node(scene, difference.with_array(difference.array.astype(np.float32)), name=name)
    if range_hu is None:
        nz = np.abs(difference.array[difference.array != 0])
        range_hu = max(200.0, float(np.percentile(nz, 99.5))) if nz.size else 200.0
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(diverging_color_node(scene).GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevel(2.0 * float(range_hu), 0.0)
    node.SetAttribute(ROLE_ATTRIBUTE, "sct_difference")
    return node


def add_flagged_segment(scene, logics: dict, flagged: Volume, *, reference_node=None,
                        name: str = "Synthetic CT check"):
    """The flagged region as a segment (orange) of a new segmentation node; None when empty."""
    if flagged is None or not np.any(flagged.array):
        return None
    return add_segmentation_from_masks(scene, logics, reference_node, {FLAGGED_SEGMENT_NAME: flagged},
                                       {FLAGGED_SEGMENT_NAME: FLAGGED_COLOR}, name=name)


def add_ct_alignment_transform(scene, ct_to_frame_ras, *, ct_node=None, name: str = "CT to MRI (rigid)"):
    """A linear transform node carrying the CT onto the MRI frame; observed by ``ct_node`` if given.

    Returns None for an identity transform (nothing to show)."""
    m = np.asarray(ct_to_frame_ras, float)
    if np.allclose(m, np.eye(4), atol=1e-9):
        return None
    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    node.SetMatrixTransformToParent(numpy_to_vtk_matrix(m))
    node.SetAttribute(ROLE_ATTRIBUTE, ALIGNMENT_ROLE)
    if ct_node is not None:
        ct_node.SetAndObserveTransformNodeID(node.GetID())
    return node


TABLE_ROWS = (
    ("mean HU", "mean_hu"), ("median HU", "median_hu"), ("95th percentile HU", "p95_hu"), ("max HU", "max_hu"),
    ("calcified volume (mL)", "calcified_volume_ml"), ("calcified fraction", "calcified_fraction"),
    ("visible", "visible"), ("axial diameter (mm)", "lesion_axial_diameter_mm"),
    ("cranio-caudal extent (mm)", "lesion_craniocaudal_mm"), ("calcification class", "calcification_class"),
    ("class rule", "class_reason"),
)


def add_result_table(scene, section: dict, *, name: str = "Synthetic CT check"):
    """A table node: one row per measure, columns CT and synthetic CT (plus bone and flags rows)."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    cols = [vtk.vtkStringArray() for _ in range(3)]
    for col, title in zip(cols, ("measure", "CT", "synthetic CT"), strict=True):
        col.SetName(title)
        table.AddColumn(col)
    ct = section.get("ct") or {}
    sct = section.get("sct") or {}

    def row(label, a, b):
        table.InsertNextBlankRow()
        r = table.GetNumberOfRows() - 1
        for c, v in enumerate((label, a, b)):
            table.SetValue(r, c, vtk.vtkVariant("" if v is None else str(v)))

    for label, key in TABLE_ROWS:
        row(label, ct.get(key), sct.get(key))
    bone = section.get("bone") or {}
    row("bone MAE / bias (HU)", "", f"{bone.get('mae_hu')} / {bone.get('bias_hu')}")
    reg = section.get("registration") or {}
    row("registration", reg.get("method"), f"residual {reg.get('residual_mm')} mm")
    row("disagreement", "", str(section.get("disagreement")))
    for flag in section.get("flags", []):
        row(f"[{flag['severity']}] {flag['code']}", "", flag["message"])
    row("verdict", "", section.get("verdict"))
    node.Modified()
    return node


def build_sct_nodes(scene, logics: dict, result, *, ct_node=None) -> dict:
    """All scene content of one :class:`~SyntheticCTCheckLib.check.CheckResult`; returns the nodes by key."""
    nodes: dict = {}
    ref = None
    if result.difference is not None:
        nodes["sct_difference"] = ref = add_difference_volume(scene, result.difference)
    segment = add_flagged_segment(scene, logics, result.flagged, reference_node=ref)
    if segment is not None:
        nodes["sct_flagged"] = segment
    transform = add_ct_alignment_transform(scene, result.ct_to_roi_frame_ras, ct_node=ct_node)
    if transform is not None:
        nodes["sct_ct_transform"] = transform
    nodes["sct_table"] = add_result_table(scene, result.section)
    return nodes


def add_sct_result(core, result, nodes: dict) -> None:
    """Scene content of the planning stage's result (``result.check``), added to ``nodes``; the
    CT alignment transform is applied to the CT node when the ROI lies on the MRI's grid."""
    ct_node = nodes.get("ct") if result.roi_frame == "mri" else None
    nodes.update(build_sct_nodes(core.scene, core.logics, result.check, ct_node=ct_node))
