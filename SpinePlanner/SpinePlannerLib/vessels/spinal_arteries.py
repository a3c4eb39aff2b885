"""Anterior spinal artery and artery of Adamkiewicz candidates on the vessel graph (L1).

* Anterior spinal artery (ASA): branches running along the cord axis (within
  ``asa_max_angle_deg``) on the anterior cord surface: points within ``asa_max_gap_mm`` of the
  cord and ``asa_max_lateral_mm`` of the midsagittal plane, anterior of the cord centre.
* Artery of Adamkiewicz: the dominant radiculomedullary branch that joins the ASA with a hairpin
  turn: at the junction, the branch and the *descending* ASA both leave downwards, so the angle
  between their directions is small (below ``hairpin_max_angle_deg``). Among hairpin joins, the
  widest is the candidate.

These are geometric criteria (documented settings), not a validated classifier: the report says
"candidate" and the surgeon confirms on the angiogram (and, before embolization, on DSA).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.vessels.anatomy import CordFrame
from SpinePlannerLib.vessels.graph import VesselGraph, point_at_distance
from SpinePlannerLib.vessels.params import VesselParams


def branch_tangent(graph: VesselGraph, branch: int, node: int, length_mm: float) -> np.ndarray:
    """Unit direction of ``branch`` leaving ``node``, measured over ``length_mm`` (chord)."""
    pts, _ = graph.branches[branch].oriented_from(node)
    far = point_at_distance(pts, length_mm)
    d = far - pts[0]
    n = np.linalg.norm(d)
    return d / n if n > 1e-9 else d


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    c = float(np.clip(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12), -1.0, 1.0))
    return float(np.degrees(np.arccos(c)))


def find_anterior_spinal_artery(graph: VesselGraph, frame: CordFrame, cord_distance: Callable[[np.ndarray], np.ndarray],
                                params: VesselParams) -> tuple[list[int], float]:
    """Branch ids forming the ASA candidate and its total length (mm).

    ``cord_distance(points_ras)`` returns the distance (mm) of each point from the cord (0 inside).
    A branch qualifies when at least 60 % of its length lies in the anterior midline band next to
    the cord and the chord of that part is within ``asa_max_angle_deg`` of the cord axis.
    """
    chosen = []
    cos_max = np.cos(np.radians(params.asa_max_angle_deg))
    for bid, b in enumerate(graph.branches):
        if len(b.points) < 2:
            continue
        loc = frame.local(b.points)
        dist = cord_distance(b.points)
        ok = (loc[:, 1] > 0) & (np.abs(loc[:, 0]) <= params.asa_max_lateral_mm) & (dist <= params.asa_max_gap_mm)
        seg_len = np.linalg.norm(np.diff(b.points, axis=0), axis=1)
        seg_ok = ok[:-1] & ok[1:]
        if seg_len.sum() <= 0 or seg_len[seg_ok].sum() < 0.6 * seg_len.sum():
            continue
        sel = b.points[ok]
        chord = sel[-1] - sel[0]
        n = np.linalg.norm(chord)
        if n < 1e-6:
            continue
        axis = frame.axis_at(sel.mean(axis=0))
        if abs(np.dot(chord / n, axis)) >= cos_max:
            chosen.append(bid)
    total = float(sum(graph.branches[b].length_mm for b in chosen))
    if total < params.asa_min_length_mm:
        return [], total
    return chosen, total


@dataclass
class HairpinJoin:
    """A branch joining the ASA at ``node``; ``angle_deg`` to the descending ASA (small = hairpin)."""

    branch: int
    node: int
    angle_deg: float
    diameter_mm: float


def asa_joins(graph: VesselGraph, asa: list[int], frame: CordFrame, diameters, params: VesselParams) -> list[HairpinJoin]:
    """Every non-ASA branch meeting the ASA, with its angle to the descending ASA limb."""
    asa_set = set(asa)
    joins = []
    nodes = {n for b in asa for n in graph.branches[b].nodes}
    for nid in nodes:
        node = graph.nodes[nid]
        asa_here = [b for b in node.branches if b in asa_set]
        others = [b for b in node.branches if b not in asa_set]
        if not others or not asa_here:
            continue
        axis = frame.axis_at(node.ras)
        tangents = [branch_tangent(graph, b, nid, params.tangent_length_mm) for b in asa_here]
        down = [t for t in tangents if np.dot(t, axis) < 0]
        if down:
            t_desc = min(down, key=lambda t: float(np.dot(t, axis)))
        else:  # ASA ends here from above only: its continuation would run downwards
            t_desc = -axis
        for b in others:
            t = branch_tangent(graph, b, nid, params.tangent_length_mm)
            joins.append(HairpinJoin(b, nid, _angle_deg(t, t_desc), float(diameters[b])))
    return joins


def asa_line_ends(graph: VesselGraph, asa: list[int], frame: CordFrame, cord_distance, diameters,
                  params: VesselParams) -> list[HairpinJoin]:
    """Branches whose free end lies on the anterior spinal artery's course where the ASA itself is
    not seen (e.g. interrupted next to a tumor): their angle is measured against the caudal cord
    axis, i.e. against where the descending ASA would run."""
    asa_set = set(asa)
    out = []
    for bid, b in enumerate(graph.branches):
        if bid in asa_set or len(b.points) < 2:
            continue
        for nid in b.nodes:
            node = graph.nodes[nid]
            if node.kind != "end" or len(node.branches) != 1:
                continue
            loc = frame.local(node.ras)[0]
            on_line = (loc[1] > 0 and abs(loc[0]) <= params.asa_max_lateral_mm
                       and float(cord_distance(node.ras[None])[0]) <= params.asa_max_gap_mm)
            if not on_line:
                continue
            axis = frame.axis_at(node.ras)
            t = branch_tangent(graph, bid, nid, params.tangent_length_mm)
            outward = -t  # direction of travel into the end
            out.append(HairpinJoin(bid, nid, _angle_deg(outward, -axis), float(diameters[bid])))
    return out


def adamkiewicz_candidate(joins: list[HairpinJoin], params: VesselParams) -> HairpinJoin | None:
    """The widest join whose angle to the descending ASA is below ``hairpin_max_angle_deg``."""
    hairpins = [j for j in joins if j.angle_deg < params.hairpin_max_angle_deg]
    if not hairpins:
        return None
    return max(hairpins, key=lambda j: (j.diameter_mm, -j.angle_deg))
