"""Slicer-facing logic of DTITractography (L2: scene and nodes passed in explicitly).

The module shell (``DTITractography.py``) calls :func:`run_tractography` from Apply with
``slicer.mrmlScene``; tests and the CLI pass the scene of a headless core. Inputs may be MRML
nodes or plain L1 objects:

* DWI: a ``vtkMRMLDiffusionWeightedVolumeNode`` or a :class:`DiffusionData`;
* cord / tumor / seed ROI: a label map (or scalar) volume node, a ``(segmentation node,
  segment name or id)`` pair, or a :class:`Volume` mask.

Parent transforms of input nodes are not applied (harden them first); every output is in RAS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import vtk

from SpinePlannerLib.core.dwi_io import DiffusionData
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.mrml.volumes import (
    add_dwi_node as mrml_add_dwi_node,
)
from SpinePlannerLib.mrml.volumes import (
    dwi_from_node,
    volume_from_node,
)
from SpinePlannerLib.planning.context import Progress, no_progress

from .analysis import TractographyResult, analyze
from .mrml_tract_files import write_tract_files
from .mrml_tracts import build_tractography_nodes
from .params import TractographyParams


@dataclass
class TractographyRun:
    """What :func:`run_tractography` returns: the L1 result, the nodes added, the files written."""

    result: TractographyResult
    nodes: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)

    @property
    def section(self) -> dict:
        """The plan.json-style summary (reliable, setzer_type, fractions, FA/MD, wording)."""
        return self.result.section()


def _scene_of(scene_or_core):
    return getattr(scene_or_core, "scene", scene_or_core)


def diffusion_data_from_node(node) -> DiffusionData:
    """A ``vtkMRMLDiffusionWeightedVolumeNode`` as validated :class:`DiffusionData` (gradients in
    world RAS through the measurement frame and any linear parent transform)."""
    return dwi_from_node(node, node.GetName())


def add_dwi_node(scene_or_core, dwi: DiffusionData, *, name: str = "DWI"):
    """Add :class:`DiffusionData` as a ``vtkMRMLDiffusionWeightedVolumeNode`` (gradients in RAS)."""
    return mrml_add_dwi_node(_scene_of(scene_or_core), dwi, name=name)


def mask_from_input(value, *, name: str) -> Volume | None:
    """A mask input (see module docstring) as a :class:`Volume`; None stays None."""
    if value is None or isinstance(value, Volume):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        seg_node, segment = value
        return _mask_from_segment(seg_node, segment, name=name)
    if hasattr(value, "GetImageData") and hasattr(value, "GetIJKToRASMatrix"):
        vol = volume_from_node(value)
        vol.name = name
        return vol.with_array((vol.array > 0).astype(np.uint8))
    raise InputError(name, f"unsupported mask input of type {type(value).__name__}")


def _mask_from_segment(seg_node, segment: str, *, name: str) -> Volume:
    from slicer import vtkSlicerSegmentationsModuleLogic

    segmentation = seg_node.GetSegmentation()
    seg_id = segmentation.GetSegmentIdBySegmentName(segment) or segment
    if segmentation.GetSegment(seg_id) is None:
        raise InputError(name, f"segment {segment!r} not found in {seg_node.GetName()}")
    scene = seg_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{name} (temporary)")
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(seg_id)
        if not vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(seg_node, ids, labelmap, None):
            raise InputError(name, f"segment {segment!r} could not be exported to a label map")
        vol = volume_from_node(labelmap)
    finally:
        scene.RemoveNode(labelmap)
    vol.name = name
    return vol.with_array((vol.array > 0).astype(np.uint8))


def run_tractography(scene_or_core, dwi, cord_mask, tumor_mask=None, params: TractographyParams | None = None,
                     progress: Progress = no_progress, *, seed_roi=None, vertebrae=None, level_names=None,
                     output_dir=None, add_nodes: bool = True, color_by: str = "direction",
                     tubes: bool = False) -> TractographyRun:
    """Fit tensors, track, relate to the tumor, classify, and put the results into the scene.

    Parameters
    ----------
    scene_or_core : vtkMRMLScene or headless core (``.scene``)
    dwi : vtkMRMLDiffusionWeightedVolumeNode or DiffusionData
    cord_mask, tumor_mask, seed_roi : mask inputs (see module docstring); tumor and ROI optional
    params : TractographyParams or None (defaults)
    progress : ``progress(fraction, message)``
    vertebrae, level_names : optional level map (Volume or node) and index -> name
    output_dir : folder for ``cord_tracts.trx/.tck/.vtp``; nothing written when None
    add_nodes : add FA/MD/AD/RD, tensor and tract nodes to the scene
    color_by, tubes : tract display (``direction``, ``fa`` or ``solid``)

    Raises
    ------
    InputError
        Unusable inputs (fewer than 6 directions, masks not overlapping the DWI, ...).
    """
    scene = _scene_of(scene_or_core)
    params = params if params is not None else TractographyParams()
    data = dwi if isinstance(dwi, DiffusionData) else diffusion_data_from_node(dwi)
    cord = mask_from_input(cord_mask, name="cord")
    if cord is None:
        raise InputError("cord", "a cord mask is required")
    tumor = mask_from_input(tumor_mask, name="tumor")
    roi = mask_from_input(seed_roi, name="seed ROI")
    levels = vertebrae if vertebrae is None or isinstance(vertebrae, Volume) else volume_from_node(vertebrae)
    result = analyze(data, cord, tumor, params=params, vertebrae=levels, level_names=level_names, seed_roi=roi,
                     progress=lambda f, m: progress(0.9 * f, m))
    run = TractographyRun(result)
    if add_nodes:
        progress(0.92, "adding results to the scene")
        run.nodes = build_tractography_nodes(scene, result, color_by=color_by, tubes=tubes)
    if output_dir is not None:
        progress(0.96, "writing TRX, TCK and VTP")
        run.files = write_tract_files(result, Path(output_dir))
    progress(1.0, "done")
    return run
