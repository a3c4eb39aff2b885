"""Vessel analysis on synthetic CT angiograms with exactly known vessels (oblique, anisotropic grids).

The synthetic case (``SpinePlannerLib.vessels.synthetic``) has vertebral bodies and arches
(cortex 900 HU, cancellous 250 HU), a contrast aorta, segmental arteries (2 mm), a tumor with
feeders of 1.2 mm whose entry points on the tumor surface are known, an anterior spinal artery
(0.9 mm) and an artery of Adamkiewicz joining it with a hairpin.
"""

from __future__ import annotations

import numpy as np
import pytest

from SpinePlannerLib.core.params import from_dict
from SpinePlannerLib.vessels.analysis import NOT_DETECTABLE, ROLE_ASA, ROLE_FEEDER, analyze_vessels
from SpinePlannerLib.vessels.params import VesselParams
from SpinePlannerLib.vessels.synthetic import oblique_grid, synthetic_cta

ENTRY_TOLERANCE_MM = 2.0


def match_feeders(found: list[dict], truth: list[dict], tol_mm: float = ENTRY_TOLERANCE_MM):
    """Greedy one-to-one matching of entry points; returns (pairs, recall, precision)."""
    pairs, used = [], set()
    for t in truth:
        te = np.asarray(t["entry_ras"], float)
        best, best_d = None, np.inf
        for i, f in enumerate(found):
            d = float(np.linalg.norm(np.asarray(f["entry_ras"]) - te))
            if i not in used and d < best_d:
                best, best_d = i, d
        if best is not None and best_d < tol_mm:
            used.add(best)
            pairs.append((t, found[best], best_d))
    recall = len(pairs) / max(len(truth), 1)
    precision = len(pairs) / max(len(found), 1) if found else 0.0
    return pairs, recall, precision


def analyse(case, **params):
    return analyze_vessels(case.angio, tumor=case.tumor, cord=case.cord, vertebrae=case.vertebrae,
                           level_names=case.levels, params=VesselParams(**params))


@pytest.fixture(scope="module")
def grid():
    return oblique_grid()


@pytest.fixture(scope="module")
def default_case(grid):
    return synthetic_cta(*grid, seed=1)


@pytest.fixture(scope="module")
def default_result(default_case):
    return analyse(default_case)


@pytest.fixture(scope="module")
def shared_case(grid):
    """Tumor on the left, fed from the segmental artery that gives the Adamkiewicz artery, and a
    calcified blob (600 HU, 8 mm) on the right."""
    return synthetic_cta(*grid, seed=2, tumor_side=-1, feeder_levels=(0, 1), aka_level=0, calcified_blob=True)


@pytest.fixture(scope="module")
def shared_result(shared_case):
    return analyse(shared_case)


def test_feeders_found_with_entry_error_below_2mm(default_case, default_result):
    plan = default_result.to_plan()
    assert plan["detectable"] is True
    pairs, recall, precision = match_feeders(plan["feeders"], default_case.truth["feeders"])
    assert recall >= 0.9 and precision >= 0.8, plan["feeders"]
    for truth, found, err in pairs:
        assert err < ENTRY_TOLERANCE_MM
        assert found["level"] == truth["level"]
        assert found["side"] == truth["side"]
        assert found["parent"] == truth["parent"]


def test_feeder_diameter_from_partial_volume_within_0_3mm(default_case, default_result):
    """1.2 mm feeders on a 0.6 x 0.6 x 0.8 mm grid: the partial-volume integral recovers the width."""
    for f in default_result.to_plan()["feeders"]:
        assert abs(f["diameter_mm"] - 1.2) < 0.3


def test_segmental_artery_diameter_within_0_3mm(default_result):
    """2.0 mm segmental arteries (branches with no feeder/ASA role, longer than 30 mm)."""
    g = default_result.graph
    diam = [default_result.branch_diameters[i] for i, b in enumerate(g.branches)
            if b.length_mm > 30 and default_result.branch_roles[i] == 1 and default_result.branch_diameters[i] > 1.6]
    assert len(diam) >= 3
    assert np.all(np.abs(np.array(diam) - 2.0) < 0.3), diam


def test_adamkiewicz_hairpin_candidate_at_its_level_and_side(default_case, default_result):
    aka = default_result.to_plan()["adamkiewicz_candidate"]
    truth = default_case.truth["adamkiewicz"]
    assert aka["present"] is True
    assert aka["level"] == truth["level"] and aka["side"] == truth["side"]
    assert aka["hairpin_angle_deg"] < 70.0
    assert default_result.to_plan()["anterior_spinal_artery"]["present"] is True


def test_right_angle_radiculomedullary_join_is_not_a_hairpin(default_result):
    """The synthetic case has one ordinary T-shaped join onto the anterior spinal artery."""
    from SpinePlannerLib.vessels.anatomy import CordFrame
    from SpinePlannerLib.vessels.spinal_arteries import asa_joins

    r = default_result
    frame = CordFrame.straight([0, 0, 0])
    joins = asa_joins(r.graph, r.asa_branches, frame, r.branch_diameters, VesselParams())
    angles = sorted(j.angle_deg for j in joins)
    assert len(angles) >= 2
    assert angles[0] < 70.0 and angles[-1] > 75.0, angles


def test_no_embolization_warning_when_feeders_use_other_segmentals(default_result):
    assert not [w for w in default_result.warnings if "embolization" in w]


def test_feeder_sharing_adamkiewicz_segmental_raises_embolization_warning(shared_case, shared_result):
    plan = shared_result.to_plan()
    assert shared_case.truth["adamkiewicz"]["shares_segmental_with_feeder"] is True
    _, recall, precision = match_feeders(plan["feeders"], shared_case.truth["feeders"])
    assert recall >= 0.9 and precision >= 0.8
    risky = [w for w in plan["warnings"] if "embolization risk" in w]
    assert len(risky) == 1
    assert "T12 left segmental artery" in risky[0]


def test_calcified_blob_and_bone_are_not_vessels(shared_case, shared_result):
    case, result = shared_case, shared_result
    pts = np.concatenate([b.points for b in result.graph.branches])
    blob_center = np.array([24.0, -16.0, 2.0])  # local frame = RAS here (blob opposite the tumor)
    assert np.min(np.linalg.norm(pts - blob_center, axis=1)) > 4.0 + 1.0
    vert = case.vertebrae
    ijk = np.rint(vert.ras_to_ijk(pts)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.asarray(vert.shape3)), axis=1)
    in_bone = vert.array[tuple(ijk[inside].T)] > 0
    assert np.count_nonzero(in_bone) / len(pts) < 0.01


def test_non_contrast_ct_is_reported_not_detectable(grid):
    case = synthetic_cta(*grid, seed=4, contrast=False)
    plan = analyse(case).to_plan()
    assert plan["detectable"] is False
    assert plan["reason"].startswith(NOT_DETECTABLE)
    assert "40 HU" in plan["reason"]
    assert plan["feeders"] == [] and plan["n_branches"] == 0


def test_results_do_not_depend_on_grid_orientation(default_result):
    """Same anatomy on another oblique grid (other axis order, spacing, rotation): same findings in RAS."""
    affine, shape = oblique_grid(spacing=(0.7, 0.55, 0.65), angles_deg=(-8.0, 5.0, 170.0))
    other = synthetic_cta(affine, shape, seed=5)
    a = default_result.to_plan()
    b = analyse(other).to_plan()
    assert len(a["feeders"]) == len(b["feeders"]) == 2
    for fa in a["feeders"]:
        d = min(np.linalg.norm(np.subtract(fa["entry_ras"], fb["entry_ras"])) for fb in b["feeders"])
        assert d < 1.5
    assert a["adamkiewicz_candidate"]["level"] == b["adamkiewicz_candidate"]["level"]


def test_role_map_marks_feeders_and_anterior_spinal_artery(default_case, default_result):
    vol = default_result.role_volume()
    from SpinePlannerLib.vessels.vesselness import mask_to_grid

    truth_feeder = mask_to_grid(default_case.vessels.with_array(default_case.vessels.array == 2), default_result.grid)
    found = vol.array == ROLE_FEEDER
    overlap = np.count_nonzero(found & truth_feeder) / max(np.count_nonzero(truth_feeder), 1)
    assert overlap > 0.6
    assert np.any(vol.array == ROLE_ASA)


def test_without_tumor_feeders_are_not_assessed(default_case):
    result = analyze_vessels(default_case.angio, cord=default_case.cord)
    plan = result.to_plan()
    assert plan["detectable"] is True and plan["feeders"] == [] and plan["tumor_assessed"] is False
    assert any("no tumor segmentation" in w for w in plan["warnings"])


@pytest.mark.parametrize("bad", [dict(modality="pet"), dict(scale_min_mm=2.0, scale_max_mm=1.0),
                                 dict(vesselness_low=50.0, vesselness_high=40.0), dict(feeder_margin_mm=0.0),
                                 dict(bone_min_hu=100.0), dict(n_scales=0), dict(hairpin_max_angle_deg=200.0)])
def test_invalid_parameters_are_rejected(bad):
    with pytest.raises(ValueError):
        VesselParams(**bad)


def test_unknown_parameter_override_is_named():
    with pytest.raises(ValueError, match="feeder_margin"):
        from_dict(VesselParams, {"feeder_margin": 3.0})
