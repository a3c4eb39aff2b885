"""Test helper for the batch tests: a small cohort of analytic CT / synthetic-CT cases (a few seconds
each to plan without a scene) and the environment of the processes the tests start."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COHORT = ((550.0, 12.0), (300.0, 25.0), (40.0, 35.0))
"""(CT lesion HU, synthetic-CT lesion HU): two calcified lesions the sCT misses, one soft lesion it shows."""


def worker_env() -> dict[str, str]:
    """Environment for processes the tests start: the packages of this checkout importable."""
    paths = [str(REPO / d) for d in ("SpinePlanner", "DTITractography", "SyntheticCTCheck")]
    old = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths + ([old] if old else []))}


def spineplan_cmd(*args: str) -> list[str]:
    """The ``spineplan`` command line run with this interpreter."""
    return [sys.executable, "-m", "SpinePlannerLib.cli", *args]


def write_cohort_csv(root: Path) -> Path:
    """``root/cases.csv``: cases p1..p3 (ct, sct, tumor_seg on 44x44x40 grids) and ``broken`` (missing CT)."""
    from SpinePlannerLib.core.imageio import write_volume
    from SyntheticCTCheckLib.synthetic_cases import make_case

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
