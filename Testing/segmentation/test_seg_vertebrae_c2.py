"""C2 as an automatic level anchor on CT (issue 4 item 2): the dens rising from the most cranial
body into the C1 ring names that body C2 (precedence user anchor > C2 > sacrum > last rib), C1
is labelled, and the first rib pair is checked against the count from C2.

There is no cervical CT in ``../shared/data``: the synthetic craniocervical CT of
``synthetic_cervical_ct`` (skull base, C1 ring, C2 with the dens, C3-C7, T1-T2 with ribs) is used,
RAS-aligned and on an oblique anisotropic grid with the spine tilted against it.
"""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
from synthetic_cervical_ct import Z_C2, synthetic_cervical_ct

from SpinePlannerLib.planning.plan_schema import plan_schema
from SpinePlannerLib.segmentation.common import dice
from SpinePlannerLib.segmentation.cord import segment_cord
from SpinePlannerLib.segmentation.params import VertebraeParams
from SpinePlannerLib.segmentation.vertebrae_ct import segment_vertebrae_ct

CERVICAL = ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]


def _dice_by_name(case, res) -> dict[str, float]:
    by_name = {name: idx for idx, name in res.names.items()}
    return {name: dice(res.labels.array == by_name[name], case.truth.array == t)
            for t, name in case.names.items() if name in by_name}


@pytest.fixture(scope="module")
def ras():
    case = synthetic_cervical_ct(spacing=(1.5, 1.5, 1.5))
    return case, segment_vertebrae_ct(case.ct)


@pytest.fixture(scope="module")
def oblique():
    # 0.8 x 0.8 x 2.0 mm voxels, axes P, R, S rotated about three axes (10-15 degrees) against the
    # spine: the working grid's slices cut the spine obliquely
    case = synthetic_cervical_ct(grid="oblique", spacing=(0.8, 0.8, 2.0), grid_angles_deg=(-10.0, -5.0, 15.0))
    return case, segment_vertebrae_ct(case.ct)


@pytest.mark.parametrize("which", ["ras", "oblique"])
def test_c2_names_the_cervical_levels_and_is_reliable(which, request):
    case, res = request.getfixturevalue(which)
    assert res.found and res.method == "C2", (res.method, res.warnings)
    assert res.reliable is True
    names = [res.names[i] for i in sorted(res.names)]
    assert names[:9] == CERVICAL + ["T1", "T2"], names  # T3 may show in the lowest slices when tilted
    anchor = res.anchor
    assert anchor["level"] == "C2" and res.names[anchor["index"]] == "C2"
    assert 8.0 <= anchor["dens_width_mm"] <= 12.0  # drawn 10 mm wide
    assert 12.0 <= anchor["dens_height_mm"] <= 17.0  # drawn rising 15 mm above the body
    assert anchor["c1_ring"] is True and anchor["c1_anterior_arch_depth_mm"] <= 7.0  # 5 mm arch
    c1 = next(v for v in res.vertebrae if v["name"] == "C1")
    assert c1["body_in_field_of_view"] is False  # the atlas has no body
    assert res.anchor_consistency["c2_says"] == "T1" and res.anchor_consistency["agree"] is True
    schema = plan_schema()
    jsonschema.validate(res.summary(), {**schema["properties"]["vertebrae"], "$defs": schema["$defs"]})


@pytest.mark.parametrize("which", ["ras", "oblique"])
def test_vertebrae_match_the_synthetic_truth(which, request):
    case, res = request.getfixturevalue(which)
    scores = _dice_by_name(case, res)
    # measured (RAS / oblique): C1 0.93/0.86, C2 0.95/0.90, C3-C7 0.88-0.93, T1 0.83/0.79, T2 0.84/0.80
    for name in CERVICAL:
        assert scores[name] >= 0.8, (name, scores)
    # ribs within spine_radius_mm of the canal are labelled with their vertebra (the truth has
    # no ribs), which costs T1 and T2 a few per cent
    for name in ("T1", "T2"):
        assert scores[name] >= 0.75, (name, scores)


def test_without_a_dens_c2_does_not_anchor_and_says_why():
    case = synthetic_cervical_ct(spacing=(1.5, 1.5, 1.5), dens=False)
    res = segment_vertebrae_ct(case.ct)
    assert res.found and res.method != "C2"
    assert res.method == "unanchored"  # no sacrum; T2, the lowest, bears ribs: no last rib
    assert res.reliable is False
    assert any("C2-like" in w and "no dens" in w and "ring" in w for w in res.warnings), res.warnings


@pytest.mark.parametrize("z_top_mm", [Z_C2 - 8.0, Z_C2 + 10.0])
def test_field_of_view_cut_below_c2_or_through_its_body_is_not_anchored_by_c2(z_top_mm):
    case = synthetic_cervical_ct(spacing=(1.5, 1.5, 1.5), z_top_mm=z_top_mm)
    res = segment_vertebrae_ct(case.ct)
    assert res.found and res.method == "unanchored", (res.method, res.names)
    assert not any(v["name"] in ("C1", "C2") for v in res.vertebrae)


def test_a_dens_cut_by_the_field_of_view_is_too_short_and_warns():
    case = synthetic_cervical_ct(spacing=(1.5, 1.5, 1.5), z_top_mm=Z_C2 + 22.0)  # 7 mm of dens
    res = segment_vertebrae_ct(case.ct)
    assert res.method == "unanchored"
    assert any("C2-like" in w and "no dens" in w for w in res.warnings), res.warnings


def test_user_anchor_wins_over_c2(ras):
    case, res = ras
    c4 = next(v for v in res.vertebrae if v["name"] == "C4")
    params = VertebraeParams(anchor_level="C5", anchor_ras=tuple(c4["centroid_ras"]))
    user = segment_vertebrae_ct(case.ct, params=params)
    assert user.method == "user anchor" and user.reliable is True
    names = [user.names[i] for i in sorted(user.names)]
    assert names[:3] == ["C2", "C3", "C4"]  # the user's (wrong) naming, shifted by one
    assert user.anchor_consistency["c2_agrees"] is True  # C2 is still reported


def test_c2_anchor_can_be_switched_off(ras):
    case, _ = ras
    res = segment_vertebrae_ct(case.ct, params=VertebraeParams(c2_anchor=False))
    assert res.method == "unanchored"
    assert not any("C2" in w for w in res.warnings)


def test_cervical_rib_on_c7_disagrees_with_the_count_from_c2():
    case = synthetic_cervical_ct(spacing=(1.5, 1.5, 1.5), cervical_rib=True)
    res = segment_vertebrae_ct(case.ct)
    assert res.method == "C2"  # the count from C2 still names the levels
    assert [res.names[i] for i in sorted(res.names)][:9] == CERVICAL + ["T1", "T2"]
    assert res.anchor_consistency == {"c2_says": "C7", "first_rib_says": "T1", "c2_agrees": False,
                                      "agree": False}
    assert any("first rib disagree" in w and "cervical rib" in w for w in res.warnings), res.warnings


def test_ct_canal_stops_at_the_foramen_magnum(ras):
    case, _ = ras
    res = segment_cord(case.ct, contrast="ct")
    assert res.found, res.reason
    pts = case.ct.ijk_to_ras(np.argwhere(res.canal.array > 0))
    anat_z = (np.linalg.inv(case.to_world) @ np.c_[pts, np.ones(len(pts))].T)[2]
    z_fm = Z_C2 + 37.0
    # followed through C1 (ring 165-179 mm) and not into the posterior fossa above the foramen
    assert Z_C2 + 25.0 <= anat_z.max() <= z_fm + 6.0, anat_z.max()


def test_c2_parameters_are_validated():
    with pytest.raises(ValueError, match="dens_width_mm"):
        VertebraeParams(dens_width_mm=(14.0, 6.0))
    with pytest.raises(ValueError, match="dens_min_height_mm"):
        VertebraeParams(dens_min_height_mm=0.5)
