"""Vertebral levels at the lumbosacral junction of the real TotalSegmentator CT (issue 4 item 2).

``example_ct.nii.gz`` (3 mm, lumbar spine + sacrum, last rib at the top) has a strongly tilted
L5/S1 disc (lumbosacral angle) that axial slices hardly show, and a dark band inside the L4 body
that an axial disc score takes for a disc. The engine must keep one label per vertebra: T11 (arch
only), T12, L1, L2, L3, L4, L5 and the sacrum (S1), named alike from the sacrum and the last rib.

Reference: ``example_ct_sm.nii.gz`` is exactly ``example_ct[:, :, 82:112]`` (the LAST 30 slices,
with the same affine, i.e. not shifted; the data README's "first 30 slices" is wrong), so
``example_seg.nii.gz`` (TotalSegmentator labels, a model output) labels example_ct's slices
k 82-111 (L2 cut at k 82, L1, T12, T11).
"""

from __future__ import annotations

import numpy as np
import pytest

from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.segmentation.common import dice
from SpinePlannerLib.segmentation.params import VertebraeParams
from SpinePlannerLib.segmentation.vertebrae_ct import segment_vertebrae_ct

TOTALSEG_LABELS = {"L2": 30, "L1": 31, "T12": 32}
SM_SLICES = slice(82, 112)  # example_ct_sm = example_ct[:, :, 82:112]


@pytest.fixture(scope="module")
def real(shared_data):
    d = shared_data / "totalsegmentator"
    ct = read_volume(d / "example_ct.nii.gz")
    sm = read_volume(d / "example_ct_sm.nii.gz")
    seg = read_volume(d / "example_seg.nii.gz")
    return ct, sm, seg, segment_vertebrae_ct(ct)


def _ordered_names(res):
    return [res.names[i] for i in sorted(res.names)]  # cranial to caudal


def _record(res, name):
    return next(v for v in res.vertebrae if v["name"] == name)


def test_reference_is_the_last_30_slices_of_the_full_ct(real):
    ct, sm, seg, _ = real
    assert sm.array.shape == (122, 101, 30) and ct.array.shape == (122, 101, 112)
    assert np.array_equal(ct.array[:, :, SM_SLICES], sm.array)  # fails loudly if the data change
    assert np.allclose(sm.affine, ct.affine)  # same affine: not shifted to k = 82
    assert seg.array.shape == sm.array.shape


def test_levels_overlapping_the_reference_are_named_right(real):
    ct, _, seg, res = real
    assert res.found, res.reason
    window = res.labels.array[:, :, SM_SLICES]
    for name, value in TOTALSEG_LABELS.items():
        truth = seg.array == value
        idx, counts = np.unique(window[truth], return_counts=True)
        best = int(idx[idx > 0][np.argmax(counts[idx > 0])])
        assert res.names[best] == name, (name, res.names[best])
        score = dice(window == best, truth)
        assert score >= 0.8, (name, round(score, 3))  # L2 is cut at k 82: compared within the window


def test_one_label_per_vertebra_from_t11_to_the_sacrum(real):
    _, _, _, res = real
    assert _ordered_names(res) == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"], res.names
    for name in ("T12", "L1", "L2", "L3", "L4", "L5", "S1"):
        assert _record(res, name)["body_in_field_of_view"], name
    # the sacrum lies below L5, L5 below L4, ... (body ranges, RAS S mm)
    lows = [_record(res, n)["body_s_range_mm"][0] for n in ("S1", "L5", "L4", "L3", "L2", "L1", "T12")]
    assert lows == sorted(lows)


def test_no_body_shorter_than_0_6_pitch(real):
    _, _, _, res = real
    s = [d["centre_ras"][2] for d in res.discs]
    assert len(s) == 6  # L5/S1 ... T12/L1
    gaps = np.diff(s)
    pitch = float(np.median(gaps))
    assert 30.0 <= pitch <= 40.0  # mm: lumbar vertebral pitch on this CT (about 35 mm)
    assert gaps.min() >= 0.6 * pitch, gaps
    heights = [np.diff(_record(res, n)["body_s_range_mm"])[0] for n in ("L5", "L4", "L3", "L2", "L1")]
    assert min(heights) >= 0.6 * pitch, heights


def test_tilted_lumbosacral_disc_separates_l5_from_the_sacrum(real):
    _, _, _, res = real
    l5s1, l4l5 = res.discs[0], res.discs[1]
    # read on sagittal slices i 55-63: L5/S1 at k 44-48 (S 226-238 mm) at the body's mid-depth,
    # L4/L5 at k 55-57 (S 259-265 mm); 3 mm slices, +-1 slice of tolerance
    assert 223.0 <= l5s1["centre_ras"][2] <= 241.0, l5s1
    assert 256.0 <= l4l5["centre_ras"][2] <= 268.0, l4l5
    assert l5s1["tilt_deg"] < 0  # anterior end caudal (sacral slope)
    l5 = res.labels.array == next(i for i, n in res.names.items() if n == "L5")
    s1 = res.labels.array == next(i for i, n in res.names.items() if n == "S1")
    assert l5.sum() * 27e-3 >= 20.0 and s1.sum() * 27e-3 >= 40.0  # mL (3 mm voxels): both real pieces


def test_sacrum_and_last_rib_agree(real):
    _, _, _, res = real
    assert res.method == "sacrum" and res.reliable is False
    assert res.anchor_consistency == {"sacrum_says": "T12", "last_rib_says": "T12", "agree": True}
    assert set(_record(res, "T12")["ribs"]) == {"left", "right"}
    assert not any("lumbosacral disc may have been missed" in w for w in res.warnings)
    assert res.summary()["discs"] == res.discs


def test_disc_selection_parameters_are_validated():
    with pytest.raises(ValueError, match="disc_tilt_max_deg"):
        VertebraeParams(disc_tilt_max_deg=75.0)
    with pytest.raises(ValueError, match="disc_regularity_weight"):
        VertebraeParams(disc_regularity_weight=-1.0)
    with pytest.raises(ValueError, match="min_edge_body_pitch"):
        VertebraeParams(min_edge_body_pitch=3.0)


def test_no_c2_like_warning_on_a_thoracolumbar_scan(real):
    """The arch at the top of a thoracolumbar field of view (its body cut off) is not a C1 ring:
    the canal runs on to the edge of the data, so nothing C2-like is reported."""
    ct, sm, _seg, res = real
    for r in (res, segment_vertebrae_ct(sm)):
        assert r.method in ("sacrum", "last rib")
        assert not [w for w in r.warnings if "C2" in w or "C1" in w], r.warnings
