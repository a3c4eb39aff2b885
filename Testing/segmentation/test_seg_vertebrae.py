"""Bone, vertebrae and level names on CT: the real TotalSegmentator CT (T11-L2, 3 mm) and the
phantom CT (T9-L1), anchored by the last rib or by a user-named level; unanchored otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.params import from_dict
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.segmentation.common import dice, labels_to_grid
from SpinePlannerLib.segmentation.params import SegmentationParams, VertebraeParams
from SpinePlannerLib.segmentation.vertebrae_ct import segment_vertebrae_ct

TOTALSEG_LABELS = {"L2": 30, "L1": 31, "T12": 32, "T11": 33}


@pytest.fixture(scope="module")
def real_ct(shared_data):
    ct = read_volume(shared_data / "totalsegmentator" / "example_ct_sm.nii.gz")
    seg = read_volume(shared_data / "totalsegmentator" / "example_seg.nii.gz")
    return ct, seg, segment_vertebrae_ct(ct)


def _by_name(result):
    return {name: result.labels.array == idx for idx, name in result.names.items()}


def test_real_ct_vertebrae_match_reference_levels(real_ct):
    ct, seg, res = real_ct
    assert res.found, res.reason
    masks = _by_name(res)
    for name, value in TOTALSEG_LABELS.items():
        assert name in masks, f"{name} not labelled: {res.names}"
        assert dice(masks[name], seg.array == value) >= 0.8, name


def test_real_ct_named_from_the_last_rib_and_flagged(real_ct):
    _, _, res = real_ct
    assert res.method == "last rib"
    assert res.reliable is False  # an assumption (12 rib pairs) the surgeon must confirm
    assert any("12 rib pairs" in w for w in res.warnings)
    t12 = next(v for v in res.vertebrae if v["name"] == "T12")
    assert set(t12["ribs"]) == {"left", "right"}
    assert all(not v["ribs"] for v in res.vertebrae if v["name"] in ("L1", "L2"))
    # T11's body lies above the field of view: only its posterior elements are labelled
    t11 = next(v for v in res.vertebrae if v["name"] == "T11")
    assert t11["body_in_field_of_view"] is False


def test_user_anchor_names_levels_and_is_reliable(real_ct, shared_data):
    ct, seg, _ = real_ct
    l1_centroid = seg.ijk_to_ras(np.argwhere(seg.array == 31).mean(axis=0))
    res = segment_vertebrae_ct(ct, params=VertebraeParams(anchor_level="L1", anchor_ras=tuple(l1_centroid)))
    assert res.method == "user anchor" and res.reliable is True
    assert dice(_by_name(res)["T12"], seg.array == 32) >= 0.8
    # the anchor drives the names: calling the same vertebra L2 shifts every name by one
    shifted = segment_vertebrae_ct(ct, params=VertebraeParams(anchor_level="L2", anchor_ras=tuple(l1_centroid)))
    assert dice(_by_name(shifted)["L3"], seg.array == 30) >= 0.8


def test_field_without_ribs_stays_unanchored(real_ct):
    ct, _, _ = real_ct
    lower = Volume(ct.array[:, :, :15].copy(), ct.affine)  # L1-L2 only: no rib attaches there
    res = segment_vertebrae_ct(lower)
    assert res.found
    assert res.method == "unanchored" and res.reliable is False
    assert all(name.startswith("V") for name in res.names.values())
    assert any("not anchored" in w for w in res.warnings)


def test_body_ranges_and_cord_position_are_reported(real_ct):
    _, seg, res = real_ct
    l1 = next(v for v in res.vertebrae if v["name"] == "L1")
    truth = seg.ijk_to_ras(np.argwhere(seg.array == 31))
    lo, hi = l1["body_s_range_mm"]
    assert lo >= truth[:, 2].min() - 6.0 and hi <= truth[:, 2].max() + 6.0
    cord = seg.ijk_to_ras(np.argwhere(seg.array == 79))
    near = cord[np.abs(cord[:, 2] - (lo + hi) / 2) < 6.0].mean(axis=0)
    assert np.linalg.norm(np.asarray(l1["canal_centre_ras"])[:2] - near[:2]) < 4.0  # mm, 3 mm voxels


def test_phantom_ct_levels_named_t9_to_l1(phantom_dir):
    case = phantom_dir("idem-soft")
    ct = read_volume(case / "ct.nii.gz")
    truth = read_volume(case / "labels" / "vertebrae.nii.gz")
    res = segment_vertebrae_ct(ct)
    assert res.method == "last rib"
    assert list(res.names.values()) == ["T9", "T10", "T11", "T12", "L1"]
    on_t2 = labels_to_grid(res.labels.array, res.labels, truth)
    for idx in range(1, 6):  # the phantom's labels 1..5 are T9..L1
        assert dice(on_t2.array == idx, truth.array == idx) >= 0.8, res.names[idx]
    # body ranges (RAS S, endplate to endplate) against the analytic bodies; levels spanned
    # depend on them (a range running into the disc adds a level)
    ranges = json.loads((case / "truth.json").read_text())["level_body_ranges_ras_s_mm"]
    for v in res.vertebrae:
        if v.get("body_s_range_mm") and not v.get("body_cut_by_field_of_view"):
            assert np.allclose(v["body_s_range_mm"], ranges[v["name"]], atol=2.0), (v["name"], v["body_s_range_mm"])


def test_anchor_parameters_are_validated():
    with pytest.raises(ValueError, match="anchor_ras"):
        VertebraeParams(anchor_level="L1")
    with pytest.raises(ValueError, match="C1..S5"):
        VertebraeParams(anchor_level="L9", anchor_ras=(0, 0, 0))
    p = from_dict(SegmentationParams, {"anchor": {"level": "t12", "ras": [1, 2, 3]}})
    assert p.vertebrae.anchor_level == "T12" and p.vertebrae.anchor_ras == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="unknown parameter"):
        from_dict(SegmentationParams, {"cord": {"no_such_setting": 1}})
