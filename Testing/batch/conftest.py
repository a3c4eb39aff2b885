"""Fixtures of the batch tests: a small cohort of analytic CT / synthetic-CT cases (a few seconds each
to plan without a scene), a broken case, and one batch of them planned on a local Dask cluster."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# (CT lesion HU, synthetic-CT lesion HU): two calcified lesions the sCT misses, one soft lesion it shows
COHORT = ((550.0, 12.0), (300.0, 25.0), (40.0, 35.0))


def worker_env() -> dict[str, str]:
    """Environment for processes the tests start: the packages of this checkout importable."""
    paths = [str(REPO / d) for d in ("SpinePlanner", "DTITractography", "SyntheticCTCheck")]
    old = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths + ([old] if old else []))}


def spineplan_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "SpinePlannerLib.cli", *args]


@pytest.fixture(scope="session")
def cohort_cases(tmp_path_factory) -> Path:
    """``cases.csv`` with three planable cases (p1..p3: ct, sct, tumor_seg) and a broken one (missing CT)."""
    from SpinePlannerLib.core.imageio import write_volume
    from SyntheticCTCheckLib.synthetic_cases import make_case

    root = tmp_path_factory.mktemp("batch-cases")
    lines = ["case,ct,sct,tumor_seg"]
    for n, (ct_hu, sct_hu) in enumerate(COHORT, start=1):
        c = make_case(ct_lesion_hu=ct_hu, sct_lesion_hu=sct_hu, axial_mm=12.0, cc_mm=16.0, seed=n,
                      ct_spacing=(0.9, 0.9, 1.0), ct_shape=(44, 44, 40))
        for key in ("ct", "sct", "roi"):
            write_volume(c[key], root / f"p{n}" / f"{key}.nii.gz")
        lines.append(f"p{n},p{n}/ct.nii.gz,p{n}/sct.nii.gz,p{n}/roi.nii.gz")
    lines.append("broken,p1/no_such_ct.nii.gz,p1/sct.nii.gz,p1/roi.nii.gz")
    (root / "cases.csv").write_text("\n".join(lines) + "\n")
    return root / "cases.csv"


@pytest.fixture(scope="session")
def local_batch(cohort_cases, tmp_path_factory):
    """``(exit code, out folder)`` of the cohort planned on a LocalCluster of two worker processes."""
    from SpinePlannerLib.cli.main import main

    out = tmp_path_factory.mktemp("batch-local") / "out"
    rc = main(["--quiet", "batch", str(cohort_cases), "--out", str(out), "--workers", "2", "--no-scene"])
    return rc, out
