"""Volume, label map and segmentation nodes <-> :class:`Volume` (L2).

MRML image data is stored ``[k, j, i]`` (VTK's x fastest) with the geometry in the node's
IJKToRAS matrix; :class:`Volume` is ``[i, j, k]`` with the same matrix as ``affine``.
"""

from __future__ import annotations

import numpy as np
import vtk
from vtk.util import numpy_support

from .volume import Volume


def _matrix_to_numpy(m: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def numpy_to_vtk_matrix(a) -> vtk.vtkMatrix4x4:
    """4x4 numpy array to vtkMatrix4x4."""
    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(a[r][c]))
    return m


def image_data_from_array(array: np.ndarray) -> vtk.vtkImageData:
    """``[i, j, k]`` (or ``[i, j, k, c]``) array to vtkImageData with unit spacing at the origin."""
    arr = np.asarray(array)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    ncomp = arr.shape[3] if arr.ndim == 4 else 1
    # VTK wants x fastest: Fortran order over (i, j, k)
    flat = np.ascontiguousarray(np.transpose(arr, (2, 1, 0, 3) if arr.ndim == 4 else (2, 1, 0))).reshape(-1, ncomp)
    image = vtk.vtkImageData()
    image.SetDimensions(*[int(s) for s in arr.shape[:3]])
    vtk_arr = numpy_support.numpy_to_vtk(flat if ncomp > 1 else flat[:, 0], deep=True)
    vtk_arr.SetNumberOfComponents(ncomp)
    image.GetPointData().SetScalars(vtk_arr)
    return image


def array_from_image_data(image: vtk.vtkImageData) -> np.ndarray:
    """vtkImageData scalars to an ``[i, j, k]`` (or ``[i, j, k, c]``) numpy array (copy)."""
    dims = image.GetDimensions()
    scalars = image.GetPointData().GetScalars()
    arr = numpy_support.vtk_to_numpy(scalars)
    ncomp = scalars.GetNumberOfComponents()
    if ncomp > 1:
        return np.transpose(arr.reshape(dims[2], dims[1], dims[0], ncomp), (2, 1, 0, 3)).copy()
    return np.transpose(arr.reshape(dims[2], dims[1], dims[0]), (2, 1, 0)).copy()


def set_node_geometry(node, affine) -> None:
    """Set a volume node's IJKToRAS matrix from a 4x4 affine."""
    node.SetIJKToRASMatrix(numpy_to_vtk_matrix(affine))


def node_affine(node) -> np.ndarray:
    """A volume node's IJKToRAS matrix as a 4x4 numpy array."""
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return _matrix_to_numpy(m)


def add_volume_node(scene, volume: Volume, *, name: str | None = None, labelmap: bool = False,
                    node_class: str | None = None):
    """Add ``volume`` to ``scene`` as a scalar (or label map) volume node with display node."""
    cls = node_class or ("vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode")
    node = scene.AddNewNodeByClass(cls, name or volume.name or "Volume")
    update_volume_node(node, volume)
    node.CreateDefaultDisplayNodes()
    return node


def update_volume_node(node, volume: Volume) -> None:
    """Replace a volume node's voxels and geometry."""
    set_node_geometry(node, volume.affine)
    node.SetAndObserveImageData(image_data_from_array(volume.array))


def volume_from_node(node) -> Volume:
    """A scalar/label map volume node as :class:`Volume` (RAS; parent transforms not applied)."""
    return Volume(array_from_image_data(node.GetImageData()), node_affine(node), node.GetName())


def add_segmentation_from_masks(scene, logics: dict, reference_node, masks: dict[str, Volume],
                                colors: dict[str, tuple] | None = None, *, name: str = "Segmentation",
                                closed_surface: bool = True):
    """Build a segmentation node with one named segment per binary mask.

    Masks must be on ``reference_node``'s grid. Colors are RGB 0..1 by segment name.
    """
    seg_logic = logics["Segmentations"]
    seg_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    seg_node.CreateDefaultDisplayNodes()
    if reference_node is not None:
        seg_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_node)
    for seg_name, mask in masks.items():
        if not np.any(mask.array):
            continue
        lm = add_volume_node(scene, mask.with_array((mask.array > 0).astype(np.uint8)), name=seg_name, labelmap=True)
        seg_logic.ImportLabelmapToSegmentationNode(lm, seg_node)
        segmentation = seg_node.GetSegmentation()
        seg = segmentation.GetNthSegment(segmentation.GetNumberOfSegments() - 1)
        seg.SetName(seg_name)
        if colors and seg_name in colors:
            seg.SetColor(*colors[seg_name])
        scene.RemoveNode(lm)
    if closed_surface:
        seg_node.CreateClosedSurfaceRepresentation()
    return seg_node
