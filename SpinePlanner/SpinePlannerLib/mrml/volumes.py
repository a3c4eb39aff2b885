"""Volume, label map and segmentation nodes <-> :class:`Volume` (L2).

MRML image data is stored ``[k, j, i]`` (VTK's x fastest) with the geometry in the node's
IJKToRAS matrix; :class:`Volume` is ``[i, j, k]`` with the same matrix as ``affine``.
"""

from __future__ import annotations

import numpy as np
import vtk
from vtk.util import numpy_support

from SpinePlannerLib.core.dwi_io import DiffusionData, unit_rows, validate_dwi
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.volume import Volume


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
                    node_class: str | None = None, display: bool = True):
    """Add ``volume`` to ``scene`` as a scalar (or label map) volume node, with display nodes
    unless ``display`` is False (temporary nodes)."""
    cls = node_class or ("vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode")
    node = scene.AddNewNodeByClass(cls, name or volume.name or "Volume")
    update_volume_node(node, volume)
    if display:
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
        lm = add_volume_node(scene, mask.with_array((mask.array > 0).astype(np.uint8)), name=seg_name, labelmap=True,
                             display=False)
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


# -- nodes in world space (linear parent transforms applied) ------------------------------------
def world_affine(node, name: str) -> np.ndarray:
    """IJK -> world RAS of a volume node, including a linear parent transform."""
    affine = node_affine(node)
    transform = node.GetParentTransformNode()
    if transform is not None:
        if not transform.IsTransformToWorldLinear():
            raise InputError(name, f"node '{node.GetName()}' is under a non-linear transform; harden the "
                                   "transform (Data module) before planning")
        m = vtk.vtkMatrix4x4()
        transform.GetMatrixTransformToWorld(m)
        affine = _matrix_to_numpy(m) @ affine
    return affine


def volume_from_scene_node(node, name: str) -> Volume:
    """A scalar volume node as a 3D :class:`Volume` in world RAS (linear parent transform applied).

    Raises :class:`InputError` naming ``name`` for a node without voxels, with several components
    or with NaN/infinite voxels.
    """
    image = node.GetImageData()
    if image is None or image.GetNumberOfPoints() == 0:
        raise InputError(name, f"node '{node.GetName()}' has no image data")
    if image.GetNumberOfScalarComponents() != 1:
        raise InputError(name, f"node '{node.GetName()}' has {image.GetNumberOfScalarComponents()} components per "
                               "voxel; a scalar volume is expected")
    arr = array_from_image_data(image)
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise InputError(name, f"node '{node.GetName()}' contains NaN/infinite voxels; fix or mask them first")
    return Volume(arr, world_affine(node, name), name)


def dwi_from_node(node, name: str = "dwi") -> DiffusionData:
    """A ``vtkMRMLDiffusionWeightedVolumeNode`` as :class:`DiffusionData` (gradients in world RAS).

    Slicer stores gradients in the measurement frame and the measurement-frame-to-RAS matrix on
    the node; the RAS directions are ``MF @ g`` (then the linear parent transform's rotation).
    """
    image = node.GetImageData()
    if image is None or image.GetNumberOfPoints() == 0:
        raise InputError(name, f"node '{node.GetName()}' has no image data")
    arr = array_from_image_data(image)
    if arr.ndim != 4 or arr.shape[3] < 2:
        raise InputError(name, f"node '{node.GetName()}' is not a diffusion series (needs one component per gradient)")
    grads_vtk, bvals_vtk = node.GetDiffusionGradients(), node.GetBValues()
    if grads_vtk is None or bvals_vtk is None:
        raise InputError(name, f"node '{node.GetName()}' has no gradient table")
    grads = numpy_support.vtk_to_numpy(grads_vtk).reshape(-1, 3).astype(float)
    bvals = numpy_support.vtk_to_numpy(bvals_vtk).astype(float).ravel()
    if len(grads) != arr.shape[3] or len(bvals) != arr.shape[3]:
        raise InputError(name, f"{len(grads)} gradients / {len(bvals)} b-values for {arr.shape[3]} volumes")
    mf = vtk.vtkMatrix4x4()
    node.GetMeasurementFrameMatrix(mf)
    to_ras = _matrix_to_numpy(mf)[:3, :3]
    affine = world_affine(node, name)
    transform = node.GetParentTransformNode()
    if transform is not None:  # gradients rotate with the image
        m = vtk.vtkMatrix4x4()
        transform.GetMatrixTransformToWorld(m)
        u, _, vt = np.linalg.svd(_matrix_to_numpy(m)[:3, :3])
        to_ras = (u @ vt) @ to_ras
    vol = Volume(arr.astype(np.float32, copy=False), affine, name)
    if not np.all(np.isfinite(vol.array)):
        raise InputError(name, f"node '{node.GetName()}' contains NaN/infinite voxels")
    return validate_dwi(DiffusionData(vol, bvals, unit_rows(grads @ to_ras.T)), name)


def add_dwi_node(scene, dwi: DiffusionData, *, name: str = "dwi"):
    """Add ``dwi`` as a ``vtkMRMLDiffusionWeightedVolumeNode`` (gradients in RAS, identity
    measurement frame) with a display node."""
    node = scene.AddNewNodeByClass("vtkMRMLDiffusionWeightedVolumeNode", name)
    set_node_geometry(node, dwi.volume.affine)
    node.SetAndObserveImageData(image_data_from_array(dwi.volume.array.astype(np.float32, copy=False)))
    # Slicer accepts only unit (or zero) gradient vectors
    grads = numpy_support.numpy_to_vtk(np.ascontiguousarray(unit_rows(np.asarray(dwi.bvecs_ras, float))), deep=True)
    grads.SetNumberOfComponents(3)
    node.SetDiffusionGradients(grads)
    node.SetBValues(numpy_support.numpy_to_vtk(np.ascontiguousarray(dwi.bvals, dtype=float), deep=True))
    identity = vtk.vtkMatrix4x4()
    node.SetMeasurementFrameMatrix(identity)
    node.CreateDefaultDisplayNodes()
    return node
