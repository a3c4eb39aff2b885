"""The sacrum as an automatic level anchor on CT (issue 4 item 2): the lowest mobile vertebra
above it is L5 (5 lumbar vertebrae assumed, flagged), precedence user anchor > sacrum > last rib,
and the agreement of the sacrum with the last rib when both are seen.

The real TotalSegmentator CT (``example_ct.nii.gz``: lumbar spine, sacrum and pelvis, last rib at
the top) shows both anchors; ``example_ct_sm.nii.gz`` (T11-L2) is its last 30 slices
(``example_ct[:, :, 82:112]``, same affine) and has no sacrum. A synthetic CT (bodies, discs, a
sacrum with alae and iliac wings, rib-bearing vertebrae above) checks the counting, the
disagreement warning (6 rib-free vertebrae above the sacrum) and a tilted lumbosacral disc.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.segmentation.params import VertebraeParams
from SpinePlannerLib.segmentation.vertebrae_ct import segment_vertebrae_ct

SP = 1.5  # mm


def synthetic_lumbosacral_ct(n_lumbar: int = 5, n_ribbed: int = 2, iliac: bool = True,
                             ls_tilt_deg: float = 0.0) -> Volume:
    """RAS CT (HU, 1.5 mm): sacrum (+ iliac wings), ``n_lumbar`` rib-free vertebrae and
    ``n_ribbed`` rib-bearing vertebrae above, caudal to cranial. ``ls_tilt_deg`` tilts the
    lumbosacral disc (the sacrum's top and L5's lower endplate) in the sagittal plane, anterior end
    caudal (sacral slope), about the body centre."""
    body_h, disc_h, sac_h = 26.0, 9.0, 60.0
    z_top = sac_h + (n_lumbar + n_ribbed) * (body_h + disc_h) - 8.0
    x = np.arange(-150.0, 150.0 + 1e-6, SP)
    y = np.arange(-120.0, 80.0 + 1e-6, SP)
    z = np.arange(0.0, z_top, SP)
    X, Y = np.meshgrid(x, y, indexing="ij")
    inside = (X / 140.0) ** 2 + ((Y + 10.0) / 100.0) ** 2 <= 1.0
    cy = -40.0  # canal centre (A, mm)
    r_canal = np.hypot(X, Y - cy)
    bcy = cy + 29.0  # body centre
    r_body = np.hypot(X, Y - bcy)
    arch = (r_canal >= 8.0) & (r_canal <= 14.0) & (Y <= bcy - 14.0)
    spinous = (np.abs(X) <= 3.0) & (Y < cy - 12.0) & (Y > cy - 38.0)
    alae = ((X / 52.0) ** 2 + ((Y - (cy + 6.0)) / 12.0) ** 2 <= 1.0) & (np.abs(X) >= 24.0)
    sac_back = ((X / 30.0) ** 2 + ((Y - (cy - 2.0)) / 16.0) ** 2 <= 1.0) & (Y <= cy)
    sacrum = ((r_body <= 18.0) | alae | sac_back | (r_canal <= 13.0)) & (r_canal > 8.0)
    sacrum_rim = sacrum & ~ndimage.binary_erosion(sacrum, iterations=2)
    ilium = (np.abs(X) >= 55.0) & (np.abs(X) <= 125.0) & (np.abs(Y - (cy + 10.0 + 0.35 * (np.abs(X) - 55.0))) <= 5.0)
    ilium |= (np.abs(X) >= 54.5) & (np.abs(X) <= 70.0) & (Y >= cy - 8.0) & (Y <= cy + 30.0)
    ribs = np.zeros_like(inside)
    for s in (-1, 1):
        xs = s * X
        ribs |= (xs >= 10.0) & (xs <= 125.0) & (np.abs(Y - (cy - 5.0 + 0.45 * (xs - 10.0))) <= 4.0)
    # mm: the L5/S1 planes across the body, lower anteriorly (posterior elements stay axial)
    ls_off = np.where(r_body <= 18.0, np.tan(np.radians(ls_tilt_deg)) * (bcy - Y), 0.0)
    levels, z0 = [], sac_h + disc_h
    for i in range(n_lumbar + n_ribbed):
        levels.append((z0, z0 + body_h, i >= n_lumbar))
        z0 += body_h + disc_h
    ct = np.empty((x.size, y.size, z.size), np.float32)
    for k, zk in enumerate(z):
        sl = np.where(inside, 40.0, -1000.0).astype(np.float32)
        sac_here = zk < sac_h + ls_off
        sl[sacrum & sac_here] = 250.0
        sl[sacrum_rim & sac_here] = 500.0
        if iliac and zk < sac_h + 20.0:
            sl[ilium] = 450.0
        for n, (a, b, ribbed) in enumerate(levels):
            if n == 0 and ls_tilt_deg:  # L5 above the tilted lumbosacral disc
                above = zk >= a + ls_off
                if zk <= b:
                    sl[(r_body <= 18.0) & above] = 200.0
                    sl[(r_body <= 18.0) & (r_body > 15.5) & above] = 500.0
                    sl[(r_body <= 18.0) & ~above & ~sac_here] = 70.0
                if a + 3.0 <= zk <= b + 2.0:
                    sl[arch | spinous] = 450.0
                if b < zk < b + disc_h:
                    sl[r_body <= 18.0] = 70.0
                continue
            if a <= zk <= b:
                sl[r_body <= 18.0] = 200.0
                sl[(r_body <= 18.0) & (r_body > 15.5)] = 500.0
                if a + 3.0 <= zk <= b + 2.0:
                    sl[arch | spinous] = 450.0
                if ribbed and abs(zk - (a + b) / 2) <= 4.0:
                    sl[ribs] = 450.0
            elif b < zk < b + disc_h:
                sl[r_body <= 18.0] = 70.0
        sl[r_canal < 8.0] = 15.0
        ct[:, :, k] = sl
    affine = np.diag([SP, SP, SP, 1.0])
    affine[:3, 3] = [x[0], y[0], z[0]]
    return Volume(ct, affine)


@pytest.fixture(scope="module")
def synthetic():
    return segment_vertebrae_ct(synthetic_lumbosacral_ct())


def _caudal_names(res, n):
    return [res.names[i] for i in sorted(res.names)][-n:]


def test_synthetic_sacrum_names_l5_and_agrees_with_the_last_rib(synthetic):
    res = synthetic
    assert res.found and res.method == "sacrum", (res.method, res.warnings)
    assert res.reliable is False  # an assumption to confirm (transitional anatomy exists)
    assert res.anchor["level"] == "S1" and "no lumbosacral transitional vertebra" in res.anchor["assumption"]
    assert res.anchor["height_mm"] >= 35.0
    assert _caudal_names(res, 8) == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert res.anchor_consistency == {"sacrum_says": "T12", "last_rib_says": "T12", "agree": True}
    assert res.summary()["anchor_consistency"]["agree"] is True
    assert any("5 lumbar vertebrae" in w for w in res.warnings)
    assert not any("disagree" in w for w in res.warnings)


def test_synthetic_six_lumbar_vertebrae_disagree_and_warn():
    res = segment_vertebrae_ct(synthetic_lumbosacral_ct(n_lumbar=6))
    assert res.method == "sacrum"  # the sacrum takes precedence over the last rib
    assert _caudal_names(res, 2) == ["L5", "S1"]
    assert res.anchor_consistency == {"sacrum_says": "T11", "last_rib_says": "T12", "agree": False}
    assert any("disagree" in w and "transitional" in w for w in res.warnings)


def test_tilted_lumbosacral_disc_is_found_and_l5_named():
    # a 35 degree sacral slope: on axial slices the L5/S1 disc covers only part of the body at
    # any level; scored on tilted planes it separates L5 from the sacrum
    res = segment_vertebrae_ct(synthetic_lumbosacral_ct(ls_tilt_deg=35.0))
    assert res.method == "sacrum"
    assert _caudal_names(res, 8) == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert res.anchor_consistency["agree"] is True
    l5s1 = res.discs[0]
    assert -40.0 <= l5s1["tilt_deg"] <= -30.0, l5s1  # built at -35 degrees (5 degree steps)
    assert abs(l5s1["centre_ras"][2] - 64.5) <= 3.0  # mm: disc centre at the body's centre line
    assert all(abs(d["tilt_deg"]) <= 5.0 for d in res.discs[1:])  # the other discs are axial
    l5 = next(v for v in res.vertebrae if v["name"] == "L5")
    assert 23.0 <= np.diff(l5["body_s_range_mm"])[0] <= 30.0  # mm, body built 26 mm (endplate to endplate)


def test_without_iliac_bone_no_sacrum_and_the_last_rib_names(synthetic):
    res = segment_vertebrae_ct(synthetic_lumbosacral_ct(iliac=False))
    assert res.method == "last rib" and res.anchor_consistency is None
    assert "anchor_consistency" not in res.summary()
    off = segment_vertebrae_ct(synthetic_lumbosacral_ct(), params=VertebraeParams(sacrum_anchor=False))
    assert off.method == "last rib"


def test_user_anchor_overrides_the_sacrum(synthetic):
    res = synthetic
    l3 = next(v for v in res.vertebrae if v["name"] == "L3")
    user = segment_vertebrae_ct(synthetic_lumbosacral_ct(),
                                params=VertebraeParams(anchor_level="L4", anchor_ras=tuple(l3["centroid_ras"])))
    assert user.method == "user anchor" and user.reliable is True
    assert _caudal_names(user, 3) == ["L5", "S1", "S2"]  # shifted by one from the sacrum's naming
    assert user.anchor_consistency["agree"] is True  # still reported


def test_real_ct_sacrum_anchor_agrees_with_the_last_rib(shared_data):
    ct = read_volume(shared_data / "totalsegmentator" / "example_ct.nii.gz")
    res = segment_vertebrae_ct(ct)
    assert res.found and res.method == "sacrum", (res.method, res.warnings)
    assert res.reliable is False
    names = [res.names[i] for i in sorted(res.names)]
    assert names[-2:] == ["L5", "S1"] and "T12" in names
    assert res.anchor_consistency == {"sacrum_says": "T12", "last_rib_says": "T12", "agree": True}
    s1 = next(v for v in res.vertebrae if v["name"] == "S1")
    assert s1["body_s_range_mm"][0] < 215.0  # the sacrum runs to the caudal end of the tracked canal


def test_real_ct_without_sacrum_keeps_the_last_rib(shared_data):
    ct = read_volume(shared_data / "totalsegmentator" / "example_ct_sm.nii.gz")  # T11-L2
    res = segment_vertebrae_ct(ct)
    assert res.method == "last rib" and res.anchor_consistency is None


def test_sacrum_parameters_are_validated():
    with pytest.raises(ValueError, match="sacrum_iliac_range_mm"):
        VertebraeParams(sacrum_iliac_range_mm=(80.0, 50.0))
    with pytest.raises(ValueError, match="sacrum_min_fraction"):
        VertebraeParams(sacrum_min_fraction=1.5)
