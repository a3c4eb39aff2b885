"""Tractography results as MRML nodes (L2: the scene is passed in explicitly).

* streamlines -> a model node of polylines in RAS, colored by direction (RGB point array
  ``direction_rgb``, direct color mapping) or by FA; a ``vtkMRMLFiberBundleNode`` instead when
  SlicerDMRI has registered that class in the scene;
* FA, MD, AD, RD -> scalar volume nodes on the DWI grid;
* the tensor field -> a ``vtkMRMLDiffusionTensorVolumeNode`` (tensors in RAS, identity
  measurement frame).
"""

from __future__ import annotations

import numpy as np
import vtk
from vtk.util import numpy_support

from SpinePlannerLib.mrml.volumes import add_volume_node, set_node_geometry

from .streamline_io import streamlines_to_polydata
from .tensor_fit import TensorMaps

FIBER_BUNDLE_CLASS = "vtkMRMLFiberBundleNode"
COLOR_MODES = ("direction", "fa", "solid")
TUBE_RADIUS_MM = 0.25
"""Radius of the optional tube rendering of the streamlines (mm)."""


def add_tract_model(scene, streamlines, *, name: str = "Cord tracts", point_fa=None, dps: dict | None = None,
                    color_by: str = "direction", tubes: bool = False, use_fiber_bundle: bool | None = None):
    """Add streamlines (RAS mm) to ``scene``.

    Parameters
    ----------
    streamlines : list of (n, 3) arrays
    point_fa : list of (n,) arrays, optional
        FA per point (adds the ``FA`` point array; needed for ``color_by="fa"``).
    dps : dict, optional
        Per-streamline values, added as cell arrays.
    color_by : str
        ``direction`` (RGB of the local tangent), ``fa`` (rainbow 0..1) or ``solid``.
    tubes : bool
        Replace the polylines by tubes of :data:`TUBE_RADIUS_MM` (a surface model, for 3D
        printing or AR; the files written by ``streamline_io`` always keep the polylines).
    use_fiber_bundle : bool, optional
        Force or forbid a SlicerDMRI fiber bundle node; default: when the class is registered.

    Returns
    -------
    The model (or fiber bundle) node.
    """
    if color_by not in COLOR_MODES:
        raise ValueError(f"color_by must be one of {COLOR_MODES}")
    if color_by == "fa" and point_fa is None:
        raise ValueError("color_by='fa' needs point_fa")
    poly = streamlines_to_polydata(streamlines, point_data={"FA": point_fa} if point_fa is not None else None,
                                   cell_data=dps, space=None)
    if tubes:
        tube = vtk.vtkTubeFilter()
        tube.SetInputData(poly)
        tube.SetRadius(TUBE_RADIUS_MM)
        tube.SetNumberOfSides(6)
        tube.CappingOn()
        tube.Update()
        poly = tube.GetOutput()
    if use_fiber_bundle is None:
        use_fiber_bundle = bool(scene.IsNodeClassRegistered(FIBER_BUNDLE_CLASS))
    cls = FIBER_BUNDLE_CLASS if use_fiber_bundle else "vtkMRMLModelNode"
    node = scene.AddNewNodeByClass(cls, name)
    node.SetAndObservePolyData(poly)
    node.CreateDefaultDisplayNodes()
    if use_fiber_bundle:
        return node
    display = node.GetDisplayNode()
    display.SetLineWidth(2.0)
    if color_by == "direction":
        display.SetActiveScalarName("direction_rgb")
        display.SetScalarRangeFlag(display.UseDirectMapping)
        display.SetScalarVisibility(True)
    elif color_by == "fa":
        display.SetActiveScalarName("FA")
        display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeRainbow")
        display.SetScalarRangeFlag(display.UseManualScalarRange)
        display.SetScalarRange(0.0, 1.0)
        display.SetScalarVisibility(True)
    else:
        display.SetColor(0.9, 0.8, 0.2)
        display.SetScalarVisibility(False)
    return node


def add_tensor_volume(scene, tensors: TensorMaps, *, name: str = "DTI"):
    """Add the tensor field as a diffusion tensor volume node (tensors in RAS, mm^2/s)."""
    d = tensors.tensor_ras().astype(np.float32)
    shape = d.shape[:3]
    image = vtk.vtkImageData()
    image.SetDimensions(*[int(x) for x in shape])
    flat = np.ascontiguousarray(np.transpose(d.reshape(shape + (9,)), (2, 1, 0, 3))).reshape(-1, 9)
    arr = numpy_support.numpy_to_vtk(flat, deep=True, array_type=vtk.VTK_FLOAT)
    arr.SetNumberOfComponents(9)
    arr.SetName("tensors")
    image.GetPointData().SetTensors(arr)
    node = scene.AddNewNodeByClass("vtkMRMLDiffusionTensorVolumeNode", name)
    set_node_geometry(node, tensors.affine)
    identity = vtk.vtkMatrix4x4()
    node.SetMeasurementFrameMatrix(identity)
    node.SetAndObserveImageData(image)
    node.CreateDefaultDisplayNodes()
    return node


def add_dti_maps(scene, tensors: TensorMaps, *, prefix: str = "DTI ") -> dict:
    """Add FA, MD, AD, RD (scalar volumes, DWI grid) and the tensor volume; returns name -> node."""
    nodes = {}
    for key in ("fa", "md", "ad", "rd"):
        nodes[f"dti_{key}"] = add_volume_node(scene, tensors.scalar_volume(key), name=f"{prefix}{key.upper()}")
    nodes["dti_tensor"] = add_tensor_volume(scene, tensors, name=f"{prefix}tensor")
    return nodes


def build_tractography_nodes(scene, result, *, color_by: str = "direction", tubes: bool = False) -> dict:
    """All nodes of a :class:`~DTITractographyLib.analysis.TractographyResult`; returns name -> node."""
    nodes = add_dti_maps(scene, result.tensors)
    if result.streamlines:
        nodes["tracts"] = add_tract_model(scene, result.streamlines, point_fa=result.point_fa(),
                                          dps=result.per_streamline() or None, color_by=color_by, tubes=tubes)
    return nodes


def add_tractography_result(core, result, nodes: dict) -> None:
    """Scene content of the planning stage's result (``result.analysis``): the DTI maps and the
    tract model, added to ``nodes``. Called once per plan by the scene assembly."""
    if result.analysis is not None:
        nodes.update(build_tractography_nodes(core.scene, result.analysis))
