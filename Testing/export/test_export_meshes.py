"""Meshes: closed and watertight, volume within 3 % of the label map's, vertices on the label
map's surface in LPS (default) or RAS mm; a glTF scene with names and colours; a printable
spine + tumor + cord model of disjoint shells."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.ndimage import distance_transform_edt, map_coordinates

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.core.volume import LPS_TO_RAS
from SpinePlannerLib.export.colors import rgb_255
from SpinePlannerLib.export.mesh_files import patient_to_gltf
from SpinePlannerLib.export.plan_folder import load_plan_folder

THICK = ("tumor", "cord", "csf", "bone", "vertebra_T10")


@pytest.fixture(scope="module")
def meshes(nifti_plan, tmp_path_factory):
    root = tmp_path_factory.mktemp("exp-mesh")
    assert main(["--quiet", "export", str(nifti_plan), "--format", "stl,obj,gltf", "--out", str(root / "lps")]) == 0
    assert main(["--quiet", "export", str(nifti_plan), "--format", "stl", "--mesh-frame", "RAS",
                 "--out", str(root / "ras")]) == 0
    return root, load_plan_folder(nifti_plan)


def _signed_distance_mm(mask, spacing):
    """Distance (mm) of every voxel centre to the 0.5 boundary: + outside, - inside."""
    out = distance_transform_edt(~mask, sampling=spacing)
    inside = distance_transform_edt(mask, sampling=spacing)
    return np.where(mask, -inside + 0.5 * min(spacing), out - 0.5 * min(spacing))


@pytest.mark.parametrize("key", THICK)
def test_mesh_is_watertight_with_the_label_volume_on_its_surface(meshes, key):
    root, pf = meshes
    mask = pf.mask(key)
    label_ml = mask.sum() * pf.reference.voxel_volume_ml
    for fmt in ("stl", "obj"):
        mesh = trimesh.load(root / "lps" / "meshes" / f"{key}.{fmt}", force="mesh")
        assert mesh.is_watertight and mesh.is_winding_consistent, (key, fmt)
        assert mesh.volume > 0
        assert abs(mesh.volume / 1000 - label_ml) / label_ml < 0.03, (key, fmt, mesh.volume / 1000, label_ml)
    lps = trimesh.load(root / "lps" / "meshes" / f"{key}.stl").vertices
    ijk = pf.reference.ras_to_ijk(lps @ LPS_TO_RAS[:3, :3].T)
    dist = map_coordinates(_signed_distance_mm(mask, pf.reference.spacing), ijk.T, order=1)
    assert np.median(np.abs(dist)) < 0.5 and np.percentile(np.abs(dist), 95) < max(pf.reference.spacing)
    ras = trimesh.load(root / "ras" / "meshes" / f"{key}.stl").vertices
    assert np.allclose(ras, lps * [-1, -1, 1], atol=1e-3)


def test_gltf_scene_names_colours_and_frame(meshes):
    root, pf = meshes
    scene = trimesh.load(root / "lps" / "meshes" / "plan.glb")
    keys = {s.key for s, _ in pf.masks}
    assert keys <= set(scene.graph.nodes)
    matrix, _ = scene.graph.get("patient_to_gltf")
    assert np.allclose(matrix, patient_to_gltf("LPS"))
    by_key = {s.key: s for s, _ in pf.masks}
    for key in ("tumor", "cord"):
        geom = scene.geometry[key]
        colour = np.asarray(geom.visual.material.baseColorFactor)[:3]
        assert np.allclose(colour, rgb_255(by_key[key].color), atol=1)
        stl = trimesh.load(root / "lps" / "meshes" / f"{key}.stl")
        assert np.abs(np.sort(geom.vertices, axis=0) - np.sort(stl.vertices, axis=0)).max() < 1e-3
    up = patient_to_gltf("LPS")[:3, :3] @ [0, 0, 1.0]  # superior is +Y in glTF
    assert np.allclose(up / np.linalg.norm(up), [0, 1, 0])


def test_printable_model_has_disjoint_watertight_parts(meshes):
    root, pf = meshes
    parts = {p.stem: trimesh.load(p) for p in (root / "lps" / "meshes" / "print").glob("*.stl")}
    assert set(parts) == {"spine", "cord", "tumor"}
    assert all(m.is_watertight and m.volume > 0 for m in parts.values())
    union = pf.mask("bone") | pf.mask("cord") | pf.mask("tumor")
    union_ml = union.sum() * pf.reference.voxel_volume_ml
    # overlapping parts would add up to more than the union
    assert abs(sum(m.volume for m in parts.values()) / 1000 - union_ml) / union_ml < 0.03
