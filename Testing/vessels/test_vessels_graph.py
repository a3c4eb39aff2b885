"""Centreline graph of vessel segmentations: topology, lengths and radii on known tube shapes."""

from __future__ import annotations

import numpy as np

from SpinePlannerLib.vessels.graph import bridge_gaps, skeleton_graph, vessel_graph

SPACING = 0.5  # mm, isotropic


def tube_mask(shape, segments, radius_mm):
    """Binary mask of the union of capsules (segments in voxel index coordinates, radius in mm)."""
    idx = np.indices(shape).reshape(3, -1).T.astype(float)
    inside = np.zeros(len(idx), bool)
    for a, b in segments:
        a, b = np.asarray(a, float), np.asarray(b, float)
        ab = b - a
        t = np.clip(((idx - a) @ ab) / (ab @ ab), 0.0, 1.0)
        d = np.linalg.norm(idx - (a + t[:, None] * ab), axis=1) * SPACING
        inside |= d <= radius_mm
    return inside.reshape(shape)


def affine():
    a = np.eye(4)
    a[:3, :3] *= SPACING
    return a


def test_y_shaped_tube_gives_three_branches_meeting_at_one_junction():
    shape = (40, 60, 30)
    c = (20, 30, 15)
    mask = tube_mask(shape, [((20, 2, 15), c), (c, (5, 56, 15)), (c, (35, 56, 15))], radius_mm=1.2)
    g = vessel_graph(mask, affine(), SPACING, prune_length_mm=2.0)
    junctions = [n for n in g.nodes if n.kind == "junction"]
    assert len(g.branches) == 3 and len(junctions) == 1
    # the junction lies near the true branch point (within 1.5 mm)
    assert np.linalg.norm(junctions[0].ras - np.array(c) * SPACING) < 1.5
    # total centreline length: 14 + 2 x 28.2 mm of axis, minus up to one radius at each free end
    true_len = (28 + 2 * np.hypot(15, 26)) * SPACING
    assert abs(g.total_length_mm - true_len) < 3.0


def test_straight_tube_length_and_radius():
    shape = (20, 80, 20)
    mask = tube_mask(shape, [((10, 5, 10), (10, 74, 10))], radius_mm=1.5)
    g = vessel_graph(mask, affine(), SPACING, prune_length_mm=2.0)
    assert len(g.branches) == 1
    b = g.branches[0]
    assert abs(b.length_mm - 69 * SPACING) < 2.0  # the skeleton may stop a radius short of each cap
    assert abs(b.diameter_mm() - 3.0) < 0.6  # distance-transform radius on a 0.5 mm grid


def test_short_spurs_are_pruned_but_protected_ones_kept():
    shape = (30, 80, 30)
    trunk = ((15, 5, 15), (15, 74, 15))
    spur = ((15, 40, 15), (15, 40, 19))  # 2 mm side bump on a 1.5 mm-radius vessel
    mask = tube_mask(shape, [trunk, spur], radius_mm=1.5)
    g = vessel_graph(mask, affine(), SPACING, prune_length_mm=2.0)
    assert len(g.branches) == 1
    kept = vessel_graph(mask, affine(), SPACING, prune_length_mm=2.0, protect=lambda end, junction: True)
    assert len(kept.branches) >= len(g.branches)


def test_gap_in_a_vessel_is_bridged_only_when_ahead_and_short():
    shape = (20, 100, 20)
    mask = tube_mask(shape, [((10, 5, 10), (10, 45, 10)), ((10, 51, 10), (10, 94, 10))], radius_mm=1.0)
    g = vessel_graph(mask, affine(), SPACING, prune_length_mm=2.0)
    assert len(g.branches) == 2  # a 3 mm gap (+ cap retraction) splits the vessel
    bridged = bridge_gaps(g, max_gap_mm=5.0)
    assert len(bridged.branches) == 1
    assert abs(bridged.total_length_mm - g.total_length_mm) > 2.0  # the gap is now part of the vessel
    not_bridged = bridge_gaps(g, max_gap_mm=1.0)
    assert len(not_bridged.branches) == 2


def test_graph_points_are_in_world_coordinates_of_an_oblique_grid():
    shape = (20, 60, 20)
    a = np.eye(4)
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # j axis points to -R
    a[:3, :3] = rot * SPACING
    a[:3, 3] = [10.0, -20.0, 5.0]
    skel = np.zeros(shape, bool)
    skel[10, 5:55, 10] = True
    g = skeleton_graph(skel, np.ones(shape), a)
    p = g.branches[0].points
    assert np.allclose(p[:, 1], -20.0 + 10 * SPACING) and np.allclose(p[:, 2], 5.0 + 10 * SPACING)
    assert np.isclose(np.ptp(p[:, 0]), 49 * SPACING)
