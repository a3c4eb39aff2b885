"""Out-of-process MONAI inference: the child's JSON-line protocol, the relay of its progress, the
agreement with in-process inference, and one-line errors for bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from SpinePlannerLib.core.errors import InputError  # noqa: E402
from SpinePlannerLib.core.imageio import read_volume  # noqa: E402
from SpinePlannerLib.segmentation.monai import engine as me  # noqa: E402

UNSEEN_SEED = 11
KIND = "intramedullary-displacing"


def _child(args, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(me.MODELS_DIR.parents[3]), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "SpinePlannerLib.segmentation.monai.worker", *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)


def test_child_streams_json_lines_and_writes_masks(phantom_dir, tmp_path):
    case = phantom_dir(KIND, UNSEEN_SEED)
    out = tmp_path / "out"
    proc = _child(["--model", str(me.PHANTOM_MODEL), "--input", f"t2={case / 't2.nii.gz'}", "--output-dir", str(out),
                   "--structures", "cord,tumor", "--device", "cpu", "--threads", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]  # every stdout line is one JSON object
    kinds = [m["type"] for m in lines]
    assert kinds[-1] == "result" and set(kinds[:-1]) == {"progress"}
    fractions = [m["fraction"] for m in lines[:-1]]
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(m["message"], str) and m["message"] for m in lines[:-1])
    result = lines[-1]
    assert set(result["outputs"]) == {"cord", "tumor"}
    t2 = read_volume(case / "t2.nii.gz")
    for name, path in result["outputs"].items():
        mask = read_volume(path)
        assert mask.same_grid(t2)  # back on the input grid, < 1e-4 mm
        assert int(mask.array.sum()) == result["voxels"][name] > 0
    labels = read_volume(result["labelmap"])
    assert set(np.unique(labels.array)) <= set(result["labels"].values())


def test_run_out_of_process_relays_progress_and_matches_in_process(phantom_dir, tmp_path):
    case = phantom_dir(KIND, UNSEEN_SEED)
    seen = []
    result = me.run_out_of_process(me.PHANTOM_MODEL, case / "t2.nii.gz", output_dir=tmp_path, device="cpu", threads=1,
                                   progress=lambda f, m: seen.append((f, m)))
    assert len(seen) >= 4 and seen[-1][0] == 1.0
    assert any("window" in m for _, m in seen)
    t2 = read_volume(case / "t2.nii.gz")
    torch.set_num_threads(1)
    here = me.segment_with_model(t2, me.PHANTOM_MODEL, structures=("cord", "tumor"), device="cpu")
    for name in ("cord", "tumor"):
        there = read_volume(result["outputs"][name]).array
        differ = np.count_nonzero(there != here[name].array)
        assert differ <= 0.001 * max(int(here[name].array.sum()), 1), f"{name}: {differ} voxels differ"


def test_bad_model_path_is_an_input_error_in_child_and_parent(phantom_dir, tmp_path):
    case = phantom_dir(KIND, UNSEEN_SEED)
    missing = tmp_path / "no_such_model.ts"
    proc = _child(["--model", str(missing), "--input", str(case / "t2.nii.gz"), "--output-dir", str(tmp_path)], tmp_path)
    assert proc.returncode == 2
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["type"] == "error" and last["kind"] == "input" and "not found" in last["problem"]
    with pytest.raises(InputError, match="model not found"):
        me.run_out_of_process(missing, case / "t2.nii.gz", output_dir=tmp_path)


def test_unknown_structure_and_unreadable_image_are_input_errors(tmp_path):
    bad_image = tmp_path / "t2.nii.gz"
    bad_image.write_text("not an image")
    with pytest.raises(InputError, match="not a readable image"):
        me.run_out_of_process(me.PHANTOM_MODEL, bad_image, output_dir=tmp_path)
    with pytest.raises(InputError, match="does not segment vessels"):
        me.run_out_of_process(me.PHANTOM_MODEL, bad_image, output_dir=tmp_path, structures=("vessels",))
