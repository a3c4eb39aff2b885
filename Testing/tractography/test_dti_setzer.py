"""Setzer tract-tumor classification: the three reference scenarios on synthetic oblique DWIs
(and on the project's phantoms when available), the rule boundaries, and the relationship
measures behind them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from DTITractographyLib.analysis import analyze
from DTITractographyLib.classify import classify_setzer
from DTITractographyLib.params import SetzerParams, TractographyParams
from DTITractographyLib.synthetic import make_synthetic_cord


@pytest.fixture(scope="module")
def results():
    out = {}
    for kind in ("displacing", "infiltrative", "crossing"):
        case = make_synthetic_cord(kind)
        out[kind] = (case, analyze(case.dwi, case.cord, case.tumor))
    return out


def test_displacing_tumor_is_setzer_type_1(results):
    _, r = results["displacing"]
    s = r.section()
    assert s["reliable"] is True
    assert s["setzer_type"] == 1 and s["pattern"] == "displaced"
    assert s["fraction_entering_tumor"] < 0.02
    assert "cleavage plane likely" in s["resectability"]
    assert 0.5 <= s["confidence"] <= 1.0
    # the passing fibers are pushed aside by about the tumor radius (3 mm) and keep their FA
    assert s["evidence"]["relationship"]["max_lateral_displacement_mm"] > 1.0
    assert s["fa_peritumoral"] > 0.6
    assert s["fa_tumor"] < 0.2


def test_infiltrative_tumor_is_setzer_type_3(results):
    _, r = results["infiltrative"]
    s = r.section()
    assert s["setzer_type"] == 3 and s["pattern"] == "encased"
    assert s["fraction_terminating_in_tumor"] > 0.3
    assert "no cleavage plane expected" in s["resectability"]
    assert s["evidence"]["relationship"]["max_lateral_displacement_mm"] < 1.0


def test_tumor_crossed_by_fibers_with_lowered_fa_is_setzer_type_2(results):
    _, r = results["crossing"]
    s = r.section()
    assert s["setzer_type"] == 2 and s["pattern"] == "crossing"
    assert s["fraction_entering_tumor"] > 0.1
    assert s["fraction_terminating_in_tumor"] < 0.05
    # FA inside is lowered (synthetic 0.37) but above the stopping threshold
    assert 0.25 < s["fa_tumor"] < 0.5 < s["fa_cord_reference"]


def test_tumor_md_is_the_synthetic_isotropic_diffusivity(results):
    _, r = results["infiltrative"]
    assert r.section()["md_tumor"] == pytest.approx(1.1e-3, rel=0.1)


def test_per_streamline_flags_agree_with_the_fractions(results):
    _, r = results["crossing"]
    rel = r.relationship
    ps = rel.per_streamline
    level = ps.tumor_level
    assert rel.fraction_entering == pytest.approx(np.count_nonzero(ps.entering & level) / level.sum())
    assert np.all(ps.min_distance_mm[ps.entering] < -TractographyParams().relationship.core_margin_mm)
    assert not np.any(ps.passing_around & ps.entering)


def test_classification_rules_at_their_thresholds():
    p = SetzerParams(terminating_type3=0.2, entering_type2=0.1, min_streamlines=20)
    assert classify_setzer(n_tumor_level=500, fraction_entering=0.0, fraction_terminating=0.2, params=p).setzer_type == 3
    assert classify_setzer(n_tumor_level=500, fraction_entering=0.1, fraction_terminating=0.19,
                           params=p).setzer_type == 2
    low = classify_setzer(n_tumor_level=500, fraction_entering=0.099, fraction_terminating=0.19, params=p)
    assert low.setzer_type == 1 and low.confidence < 0.55  # at the boundary: barely above 0.5
    clear = classify_setzer(n_tumor_level=500, fraction_entering=0.0, fraction_terminating=0.0, params=p)
    assert clear.confidence == 1.0
    few = classify_setzer(n_tumor_level=19, fraction_entering=0.0, fraction_terminating=0.0, params=p)
    assert few.setzer_type is None and few.pattern == "indeterminate" and few.confidence is None
    weak = classify_setzer(n_tumor_level=25, fraction_entering=0.0, fraction_terminating=0.0, params=p)
    assert weak.setzer_type == 1 and weak.confidence == pytest.approx(0.5, abs=0.01)


def test_cord_without_tumor_gives_streamlines_but_no_type():
    case = make_synthetic_cord("straight")
    s = analyze(case.dwi, case.cord, None).section()
    assert s["n_streamlines"] > 100 and s["setzer_type"] is None and s["pattern"] == "indeterminate"
    assert s["fraction_entering_tumor"] is None


# -- the project's phantoms (oblique DWI grid different from the anatomical grid) -------------
PHANTOM_EXPECTED = {"intramedullary-displacing": {1}, "intramedullary-infiltrative": {3, 2},
                    "intramedullary-crossing": {2, 3}}


@pytest.mark.parametrize("kind", sorted(PHANTOM_EXPECTED))
def test_phantom_tracts_give_the_expected_setzer_type(request, kind):
    pytest.importorskip("SpinePlannerLib.phantom.case")
    phantom_dir = request.getfixturevalue("phantom_dir")
    from SpinePlannerLib.core.dwi_io import read_dwi
    from SpinePlannerLib.core.imageio import read_volume

    case = phantom_dir(kind)
    dwi = read_dwi(case / "dwi.nii.gz", case / "dwi.bval", case / "dwi.bvec")
    cord = read_volume(case / "labels" / "cord.nii.gz")
    tumor = read_volume(case / "labels" / "tumor.nii.gz")
    assert not np.allclose(dwi.volume.affine, cord.affine, atol=1e-3)  # different grids
    s = analyze(dwi, cord, tumor).section()
    truth = json.loads((case / "truth.json").read_text())
    expected = truth.get("tractography", {}).get("setzer_type", truth.get("setzer_type"))
    assert s["reliable"] is True, s["reasons"]
    assert s["setzer_type"] in PHANTOM_EXPECTED[kind], s
    if expected is not None and kind == "intramedullary-displacing":
        assert s["setzer_type"] == expected
