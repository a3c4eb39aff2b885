"""scene.mrb is written the way Slicer writes bundles (a folder named after the bundle holding
``<name>.mrml``) and reloads from relative and absolute paths in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from faultcases import write_tiny_case

from SpinePlannerLib.cli.main import main

LOADER = """
import os, sys
from SpinePlannerLib.mrml.headless import load_scene_from_mrb
cwd = os.getcwd()
for path in (sys.argv[1], os.path.abspath(sys.argv[1]), sys.argv[1]):
    scene = load_scene_from_mrb(path).scene
    node = scene.GetFirstNodeByName("t2")
    assert node is not None and node.GetImageData().GetDimensions() == (24, 20, 14), path
    assert scene.GetFirstNodeByName("SpinePlan segmentation") is not None
    assert os.getcwd() == cwd
print("loaded", scene.GetNumberOfNodes())
"""


def test_scene_bundle_layout_and_relative_load_in_a_fresh_process(tmp_path):
    write_tiny_case(tmp_path / "case")
    assert main(["--quiet", "plan", "--t2", str(tmp_path / "case/t2.nii.gz"), "--tumor-seg",
                 str(tmp_path / "case/tumor.nii.gz"), "--out", str(tmp_path / "out")]) == 0
    names = zipfile.ZipFile(tmp_path / "out/scene.mrb").namelist()
    assert {n.split("/")[0] for n in names} == {"scene"}
    assert [n for n in names if n.endswith(".mrml")] == ["scene/scene.mrml"]
    proc = subprocess.run([sys.executable, "-c", LOADER, "out/scene.mrb"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("loaded")
