"""`spineplan plan --export` runs the export after planning; a bad format is refused before
anything is written; the Slicer module's bridge exports a plan whose images are scene nodes."""

from __future__ import annotations

import json
import shutil

import pydicom
import pytest
from helpers_export import dice

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.export.plan_folder import load_plan_folder


def test_plan_with_export_writes_the_export(phantom_dir, tmp_path, capsys):
    case = phantom_dir("intramedullary-displacing", 0)
    seed = ",".join(str(v) for v in json.loads((case / "truth.json").read_text())["tumor"]["centroid_ras"])
    out = tmp_path / "plan"
    assert main(["--quiet", "plan", "--t2", str(case / "t2.nii.gz"), "--tumor-seed", seed, "--no-scene",
                 "--out", str(out), "--export", "stl"]) == 0
    manifest = json.loads((out / "export" / "manifest.json").read_text())
    assert manifest["dicom"] == [] and (out / "export" / "meshes" / "tumor.stl").is_file()
    assert "export written to" in capsys.readouterr().out


def test_plan_with_a_bad_export_format_writes_nothing(phantom_dir, tmp_path, capsys):
    case = phantom_dir("intramedullary-displacing", 0)
    out = tmp_path / "plan"
    assert main(["--quiet", "plan", "--t2", str(case / "t2.nii.gz"), "--out", str(out), "--export", "dicomm"]) == 2
    assert "dicomm" in capsys.readouterr().err and not out.exists()


def test_slicer_bridge_exports_a_plan_whose_images_are_scene_nodes(nifti_plan, core, tmp_path):
    pytest.importorskip("slicer")
    from SpinePlannerLib.export.slicer_bridge import export_from_scene
    from SpinePlannerLib.mrml.volumes import add_volume_node

    plan = tmp_path / "plan"
    shutil.copytree(nifti_plan, plan)
    data = json.loads((plan / "plan.json").read_text())
    reference = load_plan_folder(nifti_plan).reference
    data["inputs"]["t2"] = "scene node 't2' (vtkMRMLScalarVolumeNode1)"  # what the module records
    (plan / "plan.json").write_text(json.dumps(data))
    node = add_volume_node(core.scene, reference, name="t2")
    manifest = export_from_scene(plan, node, formats=("dicom",), out=tmp_path / "export")
    assert any(r["what"] == "SEG" for r in manifest["dicom"])
    import highdicom as hd

    from SpinePlannerLib.export.seg import seg_to_masks

    masks = seg_to_masks(hd.seg.segread(tmp_path / "export" / "dicom" / "seg.dcm"), reference.affine, reference.shape3)
    pf = load_plan_folder(nifti_plan)
    assert dice(masks["tumor"], pf.mask("tumor")) >= 0.98 and dice(masks["cord"], pf.mask("cord")) >= 0.98
    assert pydicom.dcmread(tmp_path / "export" / "dicom" / "reference" / "IMG0001.dcm").Modality == "MR"
