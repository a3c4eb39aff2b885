"""The MONAI engine: the project's own phantom-trained network, run out of process.

Tests that need torch/monai skip cleanly when the current interpreter lacks them (the ``ml``
extra is optional); the metadata and the "not available" path are tested everywhere."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from SpinePlannerLib.context import PlanContext
from SpinePlannerLib.imageio import read_volume
from SpinePlannerLib.monai_infer import resolve_model
from SpinePlannerLib.seg_common import dice
from SpinePlannerLib.seg_monai import DEFAULT_MODEL, apply_monai_engine, ml_available, run_monai_model
from SpinePlannerLib.seg_params import SegmentationParams


@pytest.fixture(scope="module")
def ml():
    ok, why = ml_available()
    if not ok:
        pytest.skip(why)
    return True


def test_project_model_is_small_and_describes_itself():
    assert DEFAULT_MODEL.is_file()
    assert DEFAULT_MODEL.stat().st_size < 20 * 1024 * 1024
    _, meta = resolve_model(DEFAULT_MODEL)  # read from the TorchScript archive without torch
    assert meta["labels"] == {"0": "background", "1": "cord", "2": "csf", "3": "tumor"}
    assert meta["spacing_mm"] > 0 and len(meta["roi_size"]) == 3
    assert "phantom" in meta["note"]


def test_missing_ml_extra_is_reported_and_classical_results_kept():
    params = SegmentationParams(cord_engine="monai", python="/nonexistent/python3")
    ctx = PlanContext()
    ctx.plan = {"warnings": []}
    section = {"engines": {"cord": "monai", "tumor": "classical"}, "cord": {}}
    apply_monai_engine(ctx, params, section)
    assert section["monai"]["ran"] is False and "could not run" in section["monai"]["reason"]
    assert any("MONAI engine not run" in w for w in ctx.plan["warnings"])


def test_monai_cord_on_phantom_t2(ml, phantom_dir):
    case = phantom_dir("idem-soft")
    t2 = read_volume(case / "t2.nii.gz")
    seen = []
    res = run_monai_model(t2, DEFAULT_MODEL, progress=lambda f, m: seen.append(f))
    assert res.labels.same_grid(t2)
    assert res.names[1] == "cord"
    truth = read_volume(case / "labels" / "cord.nii.gz")
    assert dice(res.labels.array == 1, truth.array) >= 0.7
    assert seen and max(seen) > 0.9  # progress streamed from the inference process


def test_monai_bundle_folder_runs(ml, phantom_dir, tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "configs").mkdir()
    shutil.copy(DEFAULT_MODEL, bundle / "models" / "model.ts")
    (bundle / "configs" / "metadata.json").write_text(json.dumps({"network_data_format": {"outputs": {"pred": {
        "channel_def": {"0": "background", "1": "cord", "2": "csf", "3": "tumor"}}}}}))
    t2 = read_volume(phantom_dir("idem-soft") / "t2.nii.gz")
    res = run_monai_model(t2, bundle, python=sys.executable)
    assert res.names[3] == "tumor"
    assert np.any(res.labels.array == 1)


def test_stage_with_monai_cord_engine(ml, phantom_dir):
    from segcases import plan_phantom

    case = phantom_dir("idem-soft")
    ctx, _ = plan_phantom(case, roles=("t2",), params={"segmentation": {"cord_engine": "monai"}})
    seg = ctx.plan["segmentation"]
    assert seg["monai"]["ran"] is True and "cord" in seg["monai"]["replaced"]
    assert seg["engines"]["cord"] == "monai" and seg["engines"]["tumor"] == "classical"
    truth = read_volume(case / "labels" / "cord.nii.gz")
    assert dice(ctx.labels["cord"].array, truth.array) >= 0.7
