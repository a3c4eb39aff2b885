"""`--level-anchor` and `--params` reach the segmentation stage: levels are named from the anchor."""

from __future__ import annotations

import json

import numpy as np

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.core.geometry import mask_centroid_ras
from SpinePlannerLib.core.imageio import read_volume


def test_level_anchor_names_the_vertebrae_on_ct(phantom_dir, tmp_path):
    case = phantom_dir("extradural-lytic")
    truth = json.loads((case / "truth.json").read_text())
    vertebrae = read_volume(case / "labels" / "vertebrae.nii.gz")
    index = next(int(k) for k, v in truth["levels"].items() if v == "T11")
    centre = mask_centroid_ras(vertebrae.with_array((vertebrae.array == index).astype(np.uint8)))
    out = tmp_path / "out"
    code = main(["--quiet", "plan", "--t2", str(case / "t2.nii.gz"), "--ct", str(case / "ct.nii.gz"),
                 "--level-anchor", "t11," + ",".join(f"{c:.2f}" for c in centre), "--out", str(out), "--no-scene"])
    assert code == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["parameters"]["segmentation"]["anchor"]["level"] == "T11"
    vert = plan["vertebrae"]
    assert vert["method"] == "user anchor"
    assert vert["reliable"] is True
    assert sorted(vert["levels"].values()) == sorted(truth["levels"].values())
    # the named vertebra is where the anchor point is
    labels = read_volume(out / "labels" / "vertebrae.nii.gz")
    named = {v: int(k) for k, v in vert["levels"].items()}
    ijk = np.round(labels.ras_to_ijk(centre)).astype(int)
    assert labels.array[tuple(ijk)] == named["T11"]
