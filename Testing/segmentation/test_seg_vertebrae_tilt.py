"""A tilted spine (patient flexion/extension, gantry tilt) on CT (issue 4 item 2): the vertebra
engine fits the spine's mean axis to a first canal pass and labels on a working grid turned to
follow it, so the C2 anchor, the posterior arches and the bodies work as on an upright spine;
everything reported stays in RAS. The last rib must not name a cervical scan.

Synthetic CTs: the craniocervical CT of ``synthetic_cervical_ct`` tilted about R (flexion /
extension) and A (lateral lean), and the lumbosacral CT of ``test_seg_vertebrae_sacrum``
resampled with the spine tilted 12 degrees.
"""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from synthetic_cervical_ct import synthetic_cervical_ct
from test_seg_vertebrae_sacrum import synthetic_lumbosacral_ct

from SpinePlannerLib.core.geometry import resample
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.plan_schema import plan_schema
from SpinePlannerLib.segmentation.common import dice
from SpinePlannerLib.segmentation.params import VertebraeParams
from SpinePlannerLib.segmentation.vertebrae_ct import _last_rib_doubt, segment_vertebrae_ct

CERVICAL = ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
TILTS = [(-12.0, 0.0, 0.0), (12.0, 0.0, 0.0), (-15.0, 0.0, 0.0), (15.0, 0.0, 0.0), (0.0, 10.0, 0.0),
         (0.0, -10.0, 0.0)]


@pytest.fixture(scope="module", params=TILTS, ids=lambda t: f"tilt{t[0]:+g}x{t[1]:+g}y")
def tilted(request):
    case = synthetic_cervical_ct(spacing=(1.5, 1.5, 1.5), tilt_deg=request.param)
    return request.param, case, segment_vertebrae_ct(case.ct)


def test_tilted_cervical_spine_is_named_from_c2_with_dice_0_8(tilted):
    tilt, case, res = tilted
    assert res.found and res.method == "C2", (tilt, res.method, res.warnings)
    assert res.reliable is True
    names = [res.names[i] for i in sorted(res.names)]
    assert names[:9] == CERVICAL + ["T1", "T2"], names  # T3 may show in the lowest slices
    by_name = {name: idx for idx, name in res.names.items()}
    scores = {name: dice(res.labels.array == by_name[name], case.truth.array == t)
              for t, name in case.names.items() if name in CERVICAL}
    assert min(scores.values()) >= 0.8, {k: round(v, 2) for k, v in scores.items()}


def test_tilted_spine_is_labelled_on_a_grid_along_its_axis_and_reported_in_ras(tilted):
    tilt, case, res = tilted
    plan = res.summary()
    jsonschema.validate({"vertebrae": plan}, {**plan_schema(), "required": []})
    assert plan["working_grid_realigned"] is True
    built = float(np.degrees(np.arccos(case.to_world[2, 2])))  # anatomical z against S
    assert abs(plan["working_axis_tilt_deg"] - built) <= 5.0, (plan["working_axis_tilt_deg"], built)  # deg; lordosis
    assert plan["working_axis_ras"][2] > 0.9
    # centroids and body ranges in RAS (mm): C4 as drawn, carried into the world
    c4 = next(v for v in res.vertebrae if v["name"] == "C4")
    truth = case.truth.ijk_to_ras(np.argwhere(case.truth.array == 4))
    assert np.linalg.norm(np.asarray(c4["centroid_ras"]) - truth.mean(axis=0)) <= 3.0
    lo, hi = c4["body_s_range_mm"]
    assert truth[:, 2].min() - 3.0 <= lo < hi <= truth[:, 2].max() + 3.0
    assert 10.0 <= hi - lo <= 20.0  # mm: body 14 mm along the axis (+ up to a disc), cos(15 deg)


def test_upright_spine_keeps_the_axial_working_grid():
    case = synthetic_cervical_ct(spacing=(1.5, 1.5, 1.5))
    res = segment_vertebrae_ct(case.ct)
    plan = res.summary()
    assert plan["working_grid_realigned"] is False and plan["working_axis_tilt_deg"] <= 3.0


def test_without_realignment_a_tilted_cervical_scan_is_never_named_from_the_last_rib():
    # the tilt that once named this scan T3...L1 from the last rib
    case = synthetic_cervical_ct(spacing=(1.5, 1.5, 1.5), tilt_deg=(-12.0, 0.0, 0.0))
    res = segment_vertebrae_ct(case.ct, params=VertebraeParams(axis_realign_deg=90.0))
    assert res.summary()["working_grid_realigned"] is False
    assert res.method != "last rib", (res.method, res.names)
    names = [res.names[i] for i in sorted(res.names)]
    assert not any(n[0] in "TLS" for n in names[:7]), names


def test_tilted_lumbosacral_spine_is_named_from_the_sacrum():
    straight = synthetic_lumbosacral_ct()
    # tilt the spine 12 degrees about R (flexion) around the volume centre, then resample onto a
    # RAS-aligned 1.5 mm grid covering the tilted field of view (air outside)
    rot = np.eye(4)
    rot[:3, :3] = Rotation.from_euler("x", 12.0, degrees=True).as_matrix()
    centre = straight.ijk_to_ras((np.asarray(straight.shape3) - 1) / 2.0)
    move = np.eye(4)
    move[:3, 3] = centre - rot[:3, :3] @ centre
    tilted = Volume(straight.array, move @ rot @ straight.affine)
    n = np.asarray(tilted.shape3) - 1
    corners = tilted.ijk_to_ras(np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], float))
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    aff = np.diag([1.5, 1.5, 1.5, 1.0])
    aff[:3, 3] = lo
    shape = tuple(int(v) for v in np.floor((hi - lo) / 1.5) + 1)
    ct = Volume(resample(tilted, aff, shape, order=1, cval=-1000.0), aff)
    res = segment_vertebrae_ct(ct)
    assert res.found and res.method == "sacrum", (res.method, res.warnings)
    names = [res.names[i] for i in sorted(res.names)]
    assert names[-8:] == ["T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"], names
    assert res.anchor_consistency["agree"] is True
    assert res.summary()["working_grid_realigned"] is True
    assert abs(res.summary()["working_axis_tilt_deg"] - 12.0) <= 3.0  # deg


def test_last_rib_with_one_small_rib_free_vertebra_below_is_doubted():
    order = [4, 3, 2, 1, 0]  # cranial to caudal; 4..1 bear ribs, 0 is rib-free
    ribs = {s: {-1, 1} for s in (4, 3, 2, 1)}
    heights = {s: 20.0 for s in range(5)}  # mm
    refuse, reason = _last_rib_doubt(order, ribs, 1, heights, None)
    assert refuse is False and "need not be lumbar" in reason
    assert _last_rib_doubt(order, ribs, 1, {**heights, 0: 26.0}, None) is None  # taller: lumbar-like
    two_free = {s: {-1, 1} for s in (4, 3, 2)}
    assert _last_rib_doubt(order, two_free, 2, heights, None) is None
    assert _last_rib_doubt(order, ribs, 1, heights, {"anchored": True})[0] is True  # a dens: cervical
