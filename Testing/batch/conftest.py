"""Session fixtures of the batch tests: the small cohort (``batchcases``) and one batch of it planned
on a local Dask cluster of two worker processes."""

from __future__ import annotations

import pytest
from batchcases import write_cohort_csv


@pytest.fixture(scope="session")
def cohort_cases(tmp_path_factory):
    """``cases.csv`` with three planable cases (p1..p3: ct, sct, tumor_seg) and a broken one (missing CT)."""
    return write_cohort_csv(tmp_path_factory.mktemp("batch-cases"))


@pytest.fixture(scope="session")
def local_batch(cohort_cases, tmp_path_factory):
    """``(exit code, out folder)`` of the cohort planned on a LocalCluster of two worker processes."""
    from SpinePlannerLib.cli.main import main

    out = tmp_path_factory.mktemp("batch-local") / "out"
    rc = main(["--quiet", "batch", str(cohort_cases), "--out", str(out), "--workers", "2", "--threads-per-case", "1",
                "--no-scene"])
    return rc, out
