"""`spineplan batch` on a LocalCluster: three small cases plus a broken one; records, cohort tables,
the `sct-cohort` view of the batch, and `--resume`."""

from __future__ import annotations

import csv
import json
import os
import shutil

import pytest

from SpinePlannerLib.cli.main import main
from SpinePlannerLib.planning.batch.tables import key_results
from SpinePlannerLib.planning.plan_schema import validate_plan
from SyntheticCTCheckLib.cohort import case_row, summary_table

PLANNED = ("p1", "p2", "p3")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_broken_case_is_recorded_failed_and_the_others_are_planned(local_batch):
    rc, out = local_batch
    assert rc == 3  # finished, some cases failed
    batch = json.loads((out / "batch.json").read_text())
    status = {e["case"]: e for e in batch["cases"]}
    assert [e["case"] for e in batch["cases"]] == [*PLANNED, "broken"]
    assert batch["finished"] and batch["counts"]["done"] == 3 and batch["counts"]["failed"] == 1
    assert status["broken"]["status"] == "failed"
    assert "bad input" in status["broken"]["reason"] and "no_such_ct.nii.gz" in status["broken"]["reason"]
    assert not (out / "broken").exists()
    assert batch["cluster"]["scheduler"] == "local" and batch["cluster"]["workers"] == 2
    for cid in PLANNED:
        assert status[cid]["status"] == "done" and status[cid]["seconds"] > 0 and status[cid]["peak_rss_mb"] > 50
    rows = {r["case"]: r for r in _rows(out / "batch.csv")}
    assert rows["broken"]["status"] == "failed" and rows["p1"]["status"] == "done"
    assert [p.name for p in out.iterdir() if ".staging" in p.name] == []


def test_each_plan_is_complete_and_records_its_inputs_hash(local_batch):
    _, out = local_batch
    batch = json.loads((out / "batch.json").read_text())
    for e in batch["cases"][:3]:
        plan = json.loads((out / e["case"] / "plan.json").read_text())
        validate_plan(plan)
        assert plan["inputs_hash"] == e["inputs_hash"]
        assert plan["stages"]["synthetic_ct_check"]["status"] == "done"
        assert (out / e["case"] / "labels" / "tumor.nii.gz").is_file()
        assert e["results"] == key_results(plan)


def test_cohort_tables_are_the_sct_cohort_tables_of_the_plans(local_batch):
    _, out = local_batch
    plans = {cid: json.loads((out / cid / "plan.json").read_text()) for cid in PLANNED}
    expected = [case_row(cid, p["synthetic_ct_check"]) for cid, p in plans.items()]
    table, _ = summary_table(expected)
    got = _rows(out / "cohort" / "sct_cohort_cases.csv")
    assert [r["case"] for r in got] == list(PLANNED)
    for g, e in zip(got, expected, strict=True):
        assert float(g["ct_mean_hu"]) == pytest.approx(e["ct_mean_hu"]) and g["ct_class"] == e["ct_class"]
    summary = _rows(out / "cohort" / "sct_cohort_summary.csv")
    assert [r["measure"] for r in summary] == [r["measure"] for r in table]
    assert summary[0]["real_ct"] == table[0]["real_ct"] and summary[3]["p_wilcoxon"] == table[3]["p_wilcoxon"]
    cohort = json.loads((out / "cohort" / "cohort.json").read_text())
    assert cohort["n_cases"] == 3
    assert sum(cohort["counts"]["compartment"].values()) == 3
    assert cohort["counts"]["sct_disagreement"] == {
        str(k): v for k, v in _count(p["synthetic_ct_check"]["disagreement"] for p in plans.values()).items()}


def _count(values):
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def test_sct_cohort_of_a_batch_folder_is_a_view_of_its_tables(local_batch, tmp_path):
    _, out = local_batch
    assert main(["--quiet", "sct-cohort", str(out), "--out", str(tmp_path)]) == 0
    for name in ("sct_cohort_cases.csv", "sct_cohort_summary.csv"):
        assert (tmp_path / name).read_text() == (out / "cohort" / name).read_text()


def test_summary_page_links_each_planned_case(local_batch):
    _, out = local_batch
    page = (out / "index.html").read_text()
    for cid in PLANNED:
        assert f'href="{cid}/plan.json"' in page
    assert "broken" in page and "no_such_ct.nii.gz" in page and "published validation layout" in page


def test_resume_reuses_current_plans_and_replans_a_changed_case(local_batch, cohort_cases, tmp_path):
    _, first = local_batch
    out = tmp_path / "out"
    shutil.copytree(first, out)
    args = ["--quiet", "batch", str(cohort_cases), "--out", str(out), "--no-scene", "--resume"]
    assert main(args) == 3
    status = {e["case"]: e["status"] for e in json.loads((out / "batch.json").read_text())["cases"]}
    assert status == {"p1": "reused", "p2": "reused", "p3": "reused", "broken": "failed"}
    before = (out / "p1" / "plan.json").read_text()
    sct = cohort_cases.parent / "p2" / "sct.nii.gz"
    st = sct.stat()
    os.utime(sct, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a newer input: p2's plan is stale
    try:
        assert main(args) == 3
    finally:
        os.utime(sct, ns=(st.st_atime_ns, st.st_mtime_ns))
    status = {e["case"]: e["status"] for e in json.loads((out / "batch.json").read_text())["cases"]}
    assert status == {"p1": "reused", "p2": "done", "p3": "reused", "broken": "failed"}
    assert (out / "p1" / "plan.json").read_text() == before


def test_a_case_over_its_memory_limit_is_recorded_failed_with_the_limit(cohort_cases, tmp_path):
    one = tmp_path / "one.csv"
    lines = cohort_cases.read_text().splitlines()
    one.write_text(lines[0] + "\n" + lines[1].replace("p1/", f"{cohort_cases.parent}/p1/") + "\n")
    # 200 MiB: an idle worker fits, planning (SimpleITK, VTK, the images) does not
    assert main(["--quiet", "batch", str(one), "--out", str(tmp_path / "out"), "--no-scene", "--workers", "1",
                 "--memory-limit", "200MiB", "--retries", "0"]) == 3
    (entry,) = json.loads((tmp_path / "out" / "batch.json").read_text())["cases"]
    assert entry["status"] == "failed" and "worker process died" in entry["reason"]
    assert "memory limit 0.2 GiB" in entry["reason"]
    assert not (tmp_path / "out" / "p1").exists()


def test_a_folder_of_case_folders_and_a_dicom_study_are_planned_like_the_csv(local_batch, cohort_cases, tmp_path):
    import pydicom
    from dicom_writer import write_mr_series

    from SpinePlannerLib.core.imageio import read_volume

    _, first = local_batch
    cases = tmp_path / "cases"
    (cases / "f1").mkdir(parents=True)
    for src, role in (("ct", "ct"), ("sct", "sct"), ("roi", "tumor_seg")):
        shutil.copy2(cohort_cases.parent / "p1" / f"{src}.nii.gz", cases / "f1" / f"{role}.nii.gz")
    for path in write_mr_series(read_volume(cohort_cases.parent / "p2" / "ct.nii.gz"), cases / "d1" / "series3"):
        ds = pydicom.dcmread(path)
        ds.Modality, ds.SeriesDescription = "CT", "Spine 1.0 B60f"
        ds.save_as(path, enforce_file_format=True)
    out = tmp_path / "out"
    assert main(["--quiet", "batch", str(cases), "--out", str(out), "--no-scene", "--workers", "1",
                 "--threads-per-case", "1"]) == 0
    batch = {e["case"]: e for e in json.loads((out / "batch.json").read_text())["cases"]}
    assert batch["d1"]["status"] == "done" and any("used as ct" in n for n in batch["d1"]["notes"])
    d1 = json.loads((out / "d1" / "plan.json").read_text())
    assert d1["reference_role"] == "ct" and d1["inputs"]["ct"].endswith("series3")
    f1 = json.loads((out / "f1" / "plan.json").read_text())
    p1 = json.loads((first / "p1" / "plan.json").read_text())
    for section in ("tumor", "synthetic_ct_check"):  # same files under other names: the same plan
        assert f1[section] == p1[section]
