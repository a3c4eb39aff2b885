"""Entry point of the synthetic-CT check for the Slicer module (L2: scene passed explicitly).

The Slicer shell (``SyntheticCTCheck.py``) calls :func:`run_check_on_nodes` with
``slicer.mrmlScene`` and ``{"Segmentations": slicer.modules.segmentations.logic()}``; tests and
scripts pass a headless core's ``scene`` and ``logics``. Linear parent transforms of the input
nodes are applied (a CT the user aligned by hand is taken as aligned; the alignment transform
of an earlier run of this check is ignored and replaced); non-linear ones are refused.
"""

from __future__ import annotations

import numpy as np
import vtk

from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.mrml.volumes import volume_from_node
from SpinePlannerLib.planning.context import Progress, no_progress

from .check import CheckResult, check_synthetic_ct
from .mrml_sct import ALIGNMENT_ROLE, ROLE_ATTRIBUTE, build_sct_nodes
from .params import CheckParams


def is_own_alignment(transform_node) -> bool:
    """True for a CT alignment transform made by an earlier run of this check."""
    return transform_node is not None and transform_node.GetAttribute(ROLE_ATTRIBUTE) == ALIGNMENT_ROLE


def _world_matrix(node) -> np.ndarray:
    parent = node.GetParentTransformNode()
    if is_own_alignment(parent):  # an earlier run's result: start again from the CT's own geometry
        parent = parent.GetParentTransformNode()
    if parent is None:
        return np.eye(4)
    if not parent.IsTransformToWorldLinear():
        raise ValueError(f"{node.GetName()}: its parent transform is not linear; harden it first")
    m = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def volume_in_world(node) -> Volume:
    """A scalar/label map volume node as a RAS :class:`Volume` with its linear parent transform applied."""
    vol = volume_from_node(node)
    vol.affine = _world_matrix(node) @ vol.affine
    return vol


def roi_from_node(node, logics: dict, *, segment_ids: list[str] | None = None, reference_node=None) -> Volume:
    """The tumour ROI as a 0/1 :class:`Volume` from a label map or a segmentation node.

    For a segmentation, ``segment_ids`` (default: all segments) are merged into one mask on
    ``reference_node``'s geometry (default: the segmentation's own).
    """
    if node.IsA("vtkMRMLSegmentationNode"):
        scene = node.GetScene()
        ids = vtk.vtkStringArray()
        for sid in segment_ids or [node.GetSegmentation().GetNthSegmentID(i)
                                   for i in range(node.GetSegmentation().GetNumberOfSegments())]:
            ids.InsertNextValue(sid)
        if ids.GetNumberOfValues() == 0:
            raise ValueError(f"{node.GetName()}: the segmentation has no segment")
        lm = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "sct-check-roi-tmp")
        try:
            if not logics["Segmentations"].ExportSegmentsToLabelmapNode(node, ids, lm, reference_node):
                raise ValueError(f"{node.GetName()}: the segments could not be exported to a label map")
            vol = volume_in_world(lm)
        finally:
            scene.RemoveNode(lm)
    else:
        vol = volume_in_world(node)
    return vol.with_array((vol.array > 0).astype(np.uint8), name="tumor")


def run_check_on_nodes(scene, logics: dict, *, sct_node, roi_node, ct_node=None, roi_segment_ids=None,
                       t2star_node=None, t2star_sequence: str = "gre", vertebrae_node=None, cord_node=None,
                       roi_frame: str = "mri", params: CheckParams | None = None,
                       progress: Progress = no_progress) -> tuple[CheckResult, dict]:
    """Run the check on scene nodes and add its results to ``scene``.

    Parameters
    ----------
    scene : vtkMRMLScene
    logics : dict
        Module logics; ``"Segmentations"`` is required (segment export and the flagged segment).
    sct_node, ct_node : vtkMRMLScalarVolumeNode
        Synthetic CT and CT in HU (CT optional).
    roi_node : vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode or vtkMRMLSegmentationNode
        Tumour ROI (``roi_segment_ids`` selects segments of a segmentation).
    t2star_node : vtkMRMLScalarVolumeNode, optional
        Gradient-echo (T2*) or SWI magnitude image; ``t2star_sequence`` is ``"gre"`` or ``"swi"``.
    vertebrae_node, cord_node : label map nodes, optional
    roi_frame : {"mri", "ct"}
        World frame of the ROI (drawn on the MRI, or on the CT).
    params : CheckParams
    progress : callable(fraction, message)

    Returns
    -------
    (CheckResult, nodes) where nodes holds ``sct_difference`` (diverging color map),
    ``sct_flagged`` (segmentation with the flagged segment, if any), ``sct_ct_transform``
    (CT alignment, when the CT moved) and ``sct_table``.

    Raises
    ------
    InputError, ValueError
        Bad input (see :func:`~SyntheticCTCheckLib.check.check_synthetic_ct`).
    """
    labels = {}
    for key, node in (("vertebrae", vertebrae_node), ("cord", cord_node)):
        if node is not None:
            labels[key] = volume_in_world(node)
    ct = volume_in_world(ct_node) if ct_node is not None else None
    result = check_synthetic_ct(
        volume_in_world(sct_node), roi_from_node(roi_node, logics, segment_ids=roi_segment_ids), ct=ct,
        gre=volume_in_world(t2star_node) if t2star_node is not None else None, gre_sequence=t2star_sequence,
        vertebrae=labels.get("vertebrae"), cord=labels.get("cord"), roi_frame=roi_frame, params=params,
        names={"ct": ct_node.GetName() if ct_node is not None else "CT", "sct": sct_node.GetName(),
               "roi": roi_node.GetName(), "gre": t2star_node.GetName() if t2star_node is not None else "T2*"},
        progress=progress)
    movable_ct = None
    if ct_node is not None and roi_frame == "mri":
        parent = ct_node.GetParentTransformNode()
        if parent is None or is_own_alignment(parent):
            movable_ct = ct_node
    nodes = build_sct_nodes(scene, logics, result, ct_node=movable_ct)
    return result, nodes
