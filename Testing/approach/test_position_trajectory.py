"""Tumor position in the canal cross-section and the planned trajectory (RAS mm), on analytic masks."""

import numpy as np
import pytest
from spine_masks import grid, local

from SpinePlannerLib.approach.position import tumor_position
from SpinePlannerLib.approach.trajectory import plan_trajectory
from SpinePlannerLib.core.volume import Volume


def masks(tumor_centre_ra, tumor_r=2.5, tilt=10.0):
    affine, shape, ras = grid()
    p = local(ras, tilt)
    r, a, s = p[:, 0], p[:, 1], p[:, 2]
    cord = (r / 5.0) ** 2 + (a / 4.0) ** 2 <= 1.0
    tr, ta = tumor_centre_ra
    tumor = (r - tr) ** 2 + (a - ta) ** 2 + s ** 2 <= tumor_r ** 2
    mk = lambda m: Volume(m.reshape(shape).astype(np.uint8), affine)  # noqa: E731
    axis = np.array([0.0, np.sin(np.deg2rad(tilt)), np.cos(np.deg2rad(tilt))])
    return mk(tumor), mk(cord | tumor), axis


@pytest.mark.parametrize(("centre", "sector", "side"), [((0.0, -2.5), "dorsal-midline", "midline"),
                                                         ((0.0, 0.0), "central", "midline"),
                                                         ((-3.0, -1.0), "dorsolateral", "left"),
                                                         ((3.0, -1.0), "dorsolateral", "right"),
                                                         ((0.0, 2.5), "ventral", "midline")])
def test_sector_and_side_in_the_cord_cross_section(centre, sector, side):
    tumor, cord, axis = masks(centre, tumor_r=1.8)
    pos = tumor_position(tumor, cord, axis)
    assert (pos["sector"], pos["side"]) == (sector, side), pos
    assert pos["lateral_mm"] == pytest.approx(centre[0], abs=0.6)
    assert pos["dorsal_mm"] == pytest.approx(-centre[1], abs=0.6)
    assert np.asarray(pos["anterior_ras"]) @ np.array([0, np.cos(np.deg2rad(10)), -np.sin(np.deg2rad(10))]) > 0.99


def test_trajectory_stops_at_the_bone_and_lists_structures_near_it():
    affine, shape, ras = grid()
    bone = (ras[:, 1] <= -15) & (ras[:, 1] >= -22) & (np.abs(ras[:, 0]) <= 10) & (np.abs(ras[:, 2]) <= 10)
    vessel = (np.hypot(ras[:, 0] - 2.0, ras[:, 1] + 8.0) <= 0.8)  # a vertical vessel 2 mm right of the path
    mk = lambda m: Volume(m.reshape(shape).astype(np.uint8), affine)  # noqa: E731
    tr = plan_trajectory([0, 0, 0], [0, -1, 0], bone=mk(bone), structures={"vessel": mk(vessel)}, clearance_mm=3.0)
    assert tr["entry_basis"] == "posterior bone surface"
    assert tr["entry_ras"][1] == pytest.approx(-24.0, abs=1.0)  # bone ends at A = -22, plus 2 mm
    assert tr["direction_ras"] == pytest.approx([0, 1, 0])
    assert tr["structures_within_clearance_mm"]["vessel"] == pytest.approx(1.2, abs=0.6)
    far = plan_trajectory([0, 0, 0], [0, -1, 0], bone=mk(bone), structures={"vessel": mk(vessel)}, clearance_mm=0.5)
    assert "vessel" not in far["structures_within_clearance_mm"]
