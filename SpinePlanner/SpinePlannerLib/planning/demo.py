"""``spineplan demo``: generate a phantom case and plan it end to end with every stage."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from SpinePlannerLib.planning.pipeline import CaseInputs, run_plan
from SpinePlannerLib.planning.publish import check_out_dir, discard, make_staging


def phantom_case_inputs(case_dir: Path, truth: dict) -> CaseInputs:
    """Planning inputs for a phantom folder written by :func:`phantom.write_phantom`.

    The tumor is given as a seed point (the truth centroid), as a surgeon would click it;
    segmentations are computed, not taken from the ground truth.
    """
    images = {role: str(case_dir / f"{role}.nii.gz") for role in ("t1", "t2", "t1c", "ct", "sct", "angio")
              if (case_dir / f"{role}.nii.gz").exists()}
    has_dwi = (case_dir / "dwi.nii.gz").exists()
    return CaseInputs(
        images=images,
        dwi=str(case_dir / "dwi.nii.gz") if has_dwi else None,
        bval=str(case_dir / "dwi.bval") if has_dwi else None,
        bvec=str(case_dir / "dwi.bvec") if has_dwi else None,
        tumor_seed_ras=tuple(truth["tumor"]["centroid_ras"]),
    )


def phantom_plan_command(case_dir: Path, out_dir: Path) -> str:
    """The exact ``spineplan plan ...`` command line that plans the phantom case in ``case_dir``."""
    truth = json.loads((Path(case_dir) / "truth.json").read_text())
    inputs = phantom_case_inputs(Path(case_dir), truth)
    words = ["spineplan", "plan"]
    for role, path in inputs.images.items():
        words += [f"--{role}", path]
    for key in ("dwi", "bval", "bvec"):
        if getattr(inputs, key):
            words += [f"--{key}", getattr(inputs, key)]
    words += ["--tumor-seed", ",".join(f"{v:.2f}" for v in inputs.tumor_seed_ras), "--out", str(out_dir)]
    return shlex.join(words)


def run_demo(out_dir: Path, *, kind: str = "intramedullary-displacing", seed: int = 0, progress_factory=None) -> dict:
    """Write the phantom to ``out_dir/case`` and its plan to ``out_dir`` (plan.json, scene.mrb, labels/).

    The phantom is generated inside the new folder while it is built beside ``out_dir``; the
    whole folder replaces ``out_dir`` at the end (see :mod:`SpinePlannerLib.planning.publish`).
    """
    from SpinePlannerLib.phantom.case import write_phantom

    out_dir = check_out_dir(out_dir)
    staging = make_staging(out_dir)
    try:
        case_dir = staging / "case"
        progress = progress_factory("phantom") if progress_factory else None
        if progress:
            progress(0.0, f"generating phantom '{kind}'")
        write_phantom(kind, case_dir, seed=seed)
        if progress:
            progress(1.0, "phantom written")
        truth = json.loads((case_dir / "truth.json").read_text())
        inputs = phantom_case_inputs(case_dir, truth)
        return run_plan(inputs, out_dir, progress_factory=progress_factory, staging=staging,
                        extra_plan={"demo": {"phantom_kind": kind, "seed": seed, "truth": "case/truth.json"}})
    finally:
        discard(staging)
