"""Helpers for the segmentation tests (not a test module): run the segmentation and tumor
measurement stages on a phantom case folder and read its truth."""

from __future__ import annotations

import json
from pathlib import Path

from SpinePlannerLib.planning.pipeline import CaseInputs, load_case, new_plan, run_stages


def plan_phantom(case_dir: Path, roles=("t2", "ct"), *, seed_ras=None, params: dict | None = None):
    """Load ``roles`` of a phantom case with its truth tumor centroid as the seed, run the
    ``segmentation`` and ``tumor_measurement`` stages; returns ``(ctx, truth)``."""
    case_dir = Path(case_dir)
    truth = json.loads((case_dir / "truth.json").read_text())
    images = {r: str(case_dir / f"{r}.nii.gz") for r in roles if (case_dir / f"{r}.nii.gz").exists()}
    seed = tuple(truth["tumor"]["centroid_ras"]) if seed_ras is None else tuple(seed_ras)
    ctx = load_case(CaseInputs(images=images, tumor_seed_ras=seed))
    ctx.plan = new_plan(ctx)
    if params:
        ctx.params.update(params)
    run_stages(ctx, only=["segmentation", "tumor_measurement"])
    return ctx, truth
