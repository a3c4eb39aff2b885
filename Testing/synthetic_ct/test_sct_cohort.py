"""Cohort mode: per-case table and paired statistics in the published table's layout."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.imageio import write_volume
from SyntheticCTCheckLib.cohort import SUMMARY_COLUMNS, format_p, main_cohort, paired_tests, read_cases
from SyntheticCTCheckLib.synthetic_cases import make_case

# (CT lesion HU, synthetic-CT lesion HU, axial mm, cranio-caudal mm): four calcified meningioma-like
# lesions the synthetic CT misses, one soft lesion it shows as it is
COHORT = ((550.0, 12.0, 13.8, 16.0), (420.0, 20.0, 10.0, 18.0), (300.0, 25.0, 9.0, 14.0),
          (113.0, 15.0, 12.0, 20.0), (40.0, 35.0, 11.0, 15.0))


@pytest.fixture(scope="module")
def cohort_csv(tmp_path_factory):
    root = tmp_path_factory.mktemp("sct-cohort")
    lines = ["case,ct,sct,roi"]
    for n, (ct_hu, sct_hu, ax, cc) in enumerate(COHORT, start=1):
        c = make_case(ct_lesion_hu=ct_hu, sct_lesion_hu=sct_hu, axial_mm=ax, cc_mm=cc, seed=n,
                      ct_spacing=(0.9, 0.9, 1.0), ct_shape=(44, 44, 40))  # coarser than the default: fast
        folder = root / f"p{n}"
        for key in ("ct", "sct", "roi"):
            write_volume(c[key], folder / f"{key}.nii.gz")
        lines.append(f"p{n},p{n}/ct.nii.gz,p{n}/sct.nii.gz,p{n}/roi.nii.gz")
    path = root / "cases.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def cohort(cohort_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("sct-cohort-out")
    return main_cohort(cohort_csv, out), out


def test_summary_has_the_published_layout(cohort):
    result, out = cohort
    with (out / "sct_cohort_summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == SUMMARY_COLUMNS
    assert [r["measure"] for r in rows] == ["tumor visible", "mean axial diameter (mm)",
                                            "mean sagittal diameter (mm)", "mean HU in tumor ROI"]
    assert rows[0]["real_ct"] == "4/5" and rows[0]["synthetic_ct"] == "0/5"  # the soft lesion is not hyperdense
    assert rows[0]["p_paired_t"] == "-"
    assert rows[1]["real_ct"].endswith(" mm") and rows[1]["synthetic_ct"] == "0.0 mm"
    data = json.loads((out / "sct_cohort.json").read_text())
    assert data["n_cases"] == 5 and len(data["cases"]) == 5
    assert [r["measure"] for r in data["table"]] == [r["measure"] for r in rows]


def test_p_values_are_the_paired_tests_of_the_per_case_table(cohort):
    result, out = cohort
    with (out / "sct_cohort_cases.csv").open() as f:
        cases = list(csv.DictReader(f))
    assert [c["case"] for c in cases] == ["p1", "p2", "p3", "p4", "p5"]
    ct = np.array([float(c["ct_mean_hu"]) for c in cases])
    sct = np.array([float(c["sct_mean_hu"]) for c in cases])
    hu_row = result["table"][3]
    assert hu_row["p_paired_t_value"] == pytest.approx(stats.ttest_rel(ct, sct).pvalue, rel=1e-6)
    assert hu_row["p_wilcoxon_value"] == pytest.approx(0.0625, abs=1e-9)  # n = 5, all CT > sCT
    assert hu_row["real_ct_value"] == pytest.approx(ct.mean(), abs=0.1)
    axial = result["table"][1]
    ct_ax = np.array([float(c["ct_axial_mm"]) for c in cases])
    assert axial["real_ct_value"] == pytest.approx(ct_ax.mean(), abs=0.01)
    assert ct_ax[0] == pytest.approx(13.8, abs=1.2)
    assert any("Wilcoxon" in n for n in result["notes"])


def test_paired_tests_handle_degenerate_differences():
    assert paired_tests([1.0, 2.0], [1.0, 2.0])[:2] == (None, None)
    p_t, p_w, notes = paired_tests([5.0, 6.0, 7.0], [4.0, 5.0, 6.0])
    assert p_t is None and p_w is not None and "zero variance" in notes[0]
    assert format_p(0.0004) == "< 0.001" and format_p(0.0341) == "0.034" and format_p(None) == "-"


def test_cases_table_errors_name_the_table_and_line(tmp_path):
    bad = tmp_path / "cases.csv"
    bad.write_text("case,ct,sct\np1,a.nii.gz,b.nii.gz\n")
    with pytest.raises(InputError, match="missing column"):
        read_cases(bad)
    bad.write_text("case,ct,sct,roi\np1,a.nii.gz,,c.nii.gz\n")
    with pytest.raises(InputError, match="line 2"):
        read_cases(bad)
    bad.write_text("case,ct,sct,roi\np1,missing.nii.gz,b.nii.gz,c.nii.gz\n")
    with pytest.raises(InputError, match="file not found"):
        main_cohort(bad, tmp_path / "out")


def test_spineplan_sct_cohort_command(cohort_csv, tmp_path, capsys):
    from SpinePlannerLib.cli.main import main

    two = tmp_path / "two.csv"  # the first two cases, paths made absolute
    lines = cohort_csv.read_text().splitlines()[:3]
    two.write_text("\n".join([lines[0]] + [",".join([r.split(",")[0]] + [str(cohort_csv.parent / p) for p in
                                                                          r.split(",")[1:]]) for r in lines[1:]]) + "\n")
    assert main(["--quiet", "sct-cohort", str(two), "--out", str(tmp_path / "out"), "--calcified-hu", "150"]) == 0
    out = capsys.readouterr().out
    assert "tumor visible" in out and "2/2" in out and "0/2" in out
    data = json.loads((tmp_path / "out" / "sct_cohort.json").read_text())
    assert data["settings"]["lesion.calcified_hu"] == 150.0
    bad = tmp_path / "bad.csv"
    bad.write_text("case,ct\np1,a.nii.gz\n")
    assert main(["--quiet", "sct-cohort", str(bad), "--out", str(tmp_path / "out2")]) == 2
    assert "missing column" in capsys.readouterr().err
