"""Write meshes: STL (binary) and OBJ per structure, one glTF 2.0 binary scene (.glb) with
names and colours, and the printable spine + tumor + cord model (one STL per disjoint part).

glTF is metres, +Y up by its specification: meshes keep their mm vertices in the declared
patient frame (LPS or RAS) and one root node ``patient_to_gltf`` scales by 0.001 and turns the
patient's superior axis to +Y, anterior to +Z; the frame is recorded in the scene's ``extras``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from SpinePlannerLib.export.colors import rgb_255
from SpinePlannerLib.export.meshes import StructureMesh


def patient_to_gltf(frame: str) -> np.ndarray:
    """4x4 from patient mm (LPS or RAS) to glTF metres (+Y = superior, +Z = anterior)."""
    # glTF +Z faces the viewer (anterior), +Y is up (superior), +X = Y x Z = left: a rotation
    ras_to_gltf = np.array([[-1.0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    m = ras_to_gltf if frame == "RAS" else ras_to_gltf @ np.diag([-1.0, -1.0, 1.0, 1.0])
    return np.diag([0.001, 0.001, 0.001, 1.0]) @ m


def write_stl_obj(mesh: StructureMesh, folder: Path, formats: tuple[str, ...]) -> list[Path]:
    """``<key>.stl`` and/or ``<key>.obj`` in ``folder`` (mm, the mesh's frame)."""
    tm = mesh.trimesh()
    written = []
    for fmt in formats:
        path = Path(folder) / f"{mesh.structure.key}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        tm.export(str(path), file_type=fmt)
        written.append(path)
    return written


def write_glb(meshes: list[StructureMesh], path: Path) -> Path:
    """One glTF 2.0 binary scene: a node per structure named by its label, PBR base colour from
    the scene colour (opaque tumor/cord, 60 % alpha for bone and vertebrae)."""
    import trimesh
    from trimesh.visual.material import PBRMaterial

    if not meshes:
        raise ValueError("no mesh to write")
    frame = meshes[0].frame
    scene = trimesh.Scene()
    root = "patient_to_gltf"
    scene.graph.update(frame_to=root, frame_from=scene.graph.base_frame, matrix=patient_to_gltf(frame))
    for m in meshes:
        tm = m.trimesh()
        alpha = 153 if m.structure.key == "bone" or m.structure.key.startswith("vertebra_") else 255
        material = PBRMaterial(name=m.structure.key, baseColorFactor=[*rgb_255(m.structure.color), alpha],
                               alphaMode="BLEND" if alpha < 255 else "OPAQUE", doubleSided=False)
        tm.visual = trimesh.visual.TextureVisuals(material=material)
        tm.metadata["name"] = m.structure.label
        scene.add_geometry(tm, node_name=m.structure.key, geom_name=m.structure.key, parent_node_name=root)
    scene.metadata["extras"] = {"mesh_frame": f"{frame} mm", "root_node": "patient_to_gltf (mm -> m, superior -> +Y)"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(trimesh.exchange.gltf.export_glb(scene))
    return path


def write_printable(parts: list[StructureMesh], folder: Path) -> list[Path]:
    """The printable model as one binary STL per part (``print/spine.stl``, ``cord.stl``,
    ``tumor.stl``): disjoint closed shells in the same mm coordinates, which multi-material
    slicers load as one assembled object (one file would merge the touching shells' vertices)."""
    written = []
    for part in parts:
        path = Path(folder) / f"{part.structure.key}.stl"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.trimesh().export(str(path), file_type="stl")
        written.append(path)
    return written
