"""Tumor feeders and their parent segmental arteries on the vessel graph (L1).

Feeder candidates are branches with a free end within ``feeder_margin_mm`` of the tumor surface
(vessels are not followed inside the tumor). For each: the entry point on the tumor surface (RAS
mm, where the centreline crosses the surface, else the surface point nearest its end), diameter,
length from its upstream junction to the entry, contact length with the tumor, vertebral level
and side of its parent segmental artery. Candidates with entry points closer than
``merge_distance_mm`` are one feeder (the widest is kept). Ranking: widest first, then the
longest contact. A single-phase angiogram cannot tell feeding arteries from draining veins, so
they are reported as feeding/draining candidates.

Segmental trees are the connected parts of the vessel graph once the anterior spinal artery is
removed (thick vessels such as the aorta are already masked): each is one segmental artery with
its branches; its root is its point farthest from the cord (towards the aorta), whose level and
side name it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.vessels.anatomy import CordFrame, LevelMap, side_of
from SpinePlannerLib.vessels.graph import VesselGraph, arclength
from SpinePlannerLib.vessels.params import VesselParams


@dataclass
class SegmentalTree:
    """A segmental artery with its branches (``branches`` ids), named by its root."""

    index: int
    branches: list[int]
    root_ras: np.ndarray
    level: str | None
    side: str | None
    from_asa_only: bool = False

    @property
    def name(self) -> str:
        """E.g. ``"T11 left segmental artery"`` (``"segmental artery #2"`` without a level)."""
        if self.from_asa_only:
            return "anterior spinal artery"
        parts = [self.level] if self.level else []
        if self.side:
            parts.append(self.side)
        parts.append("segmental artery")
        if not self.level:
            parts.append(f"#{self.index + 1}")
        return " ".join(parts)


def _tree_side(graph: VesselGraph, members: list[int], frame: CordFrame | None, *, min_offset_mm: float = 5.0):
    """Side on which most of a tree's length lies (points more than ``min_offset_mm`` from the
    midline). The root is not used: a right segmental artery arises from the left-sided aorta."""
    if frame is None:
        return None
    right = left = 0.0
    for b in members:
        pts = graph.branches[b].points
        if len(pts) < 2:
            continue
        x = frame.local(0.5 * (pts[1:] + pts[:-1]))[:, 0]
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        right += float(seg[x > min_offset_mm].sum())
        left += float(seg[x < -min_offset_mm].sum())
    if right == left == 0.0:
        return None
    return "right" if right > left else "left"


def segmental_trees(graph: VesselGraph, asa: list[int], frame: CordFrame | None, levels: LevelMap | None,
                    *, lateral_min_mm: float = 8.0) -> tuple[list[SegmentalTree], np.ndarray]:
    """Split the graph without the ASA into segmental trees. Returns (trees, tree id per branch; -1 for ASA)."""
    comp = graph.components(exclude_branches=asa)
    trees = []
    asa_nodes = {n for b in asa for n in graph.branches[b].nodes}
    for cid in range(int(comp.max()) + 1 if comp.size and comp.max() >= 0 else 0):
        members = [int(b) for b in np.flatnonzero(comp == cid)]
        pts = np.concatenate([graph.branches[b].points for b in members])
        if frame is not None:
            loc = frame.local(pts)
            radial = np.hypot(loc[:, 0], loc[:, 1])
            root = pts[int(np.argmax(radial))]
            lateral = float(radial.max())
        else:
            root = pts[0]
            lateral = np.inf
        touches_asa = any(n in asa_nodes for b in members for n in graph.branches[b].nodes)
        from_asa_only = touches_asa and lateral < lateral_min_mm + (frame.radius_at(root) if frame is not None else 0.0)
        trees.append(SegmentalTree(cid, members, root, levels.level_of(root) if levels else None,
                                   _tree_side(graph, members, frame), from_asa_only))
    return trees, comp


@dataclass
class Feeder:
    """A feeding (or draining) vessel of the tumor. Coordinates RAS mm."""

    branch: int
    entry_ras: np.ndarray
    diameter_mm: float
    length_mm: float
    contact_mm: float
    tree: int
    level: str | None = None
    side: str | None = None
    parent: str | None = None
    entry_level: str | None = None
    path: np.ndarray | None = None  # (n, 3) RAS from the parent vessel to the entry point
    stub: bool = False  # seen only as a short protrusion of its parent towards the tumor
    kind: str = "feeding_or_draining_candidate"

    def as_plan(self, rank: int) -> dict:
        return {
            "rank": rank,
            "entry_ras": [round(float(v), 2) for v in self.entry_ras],
            "diameter_mm": round(float(self.diameter_mm), 2),
            "length_mm": round(float(self.length_mm), 1),
            "contact_mm": round(float(self.contact_mm), 1),
            "level": self.level,
            "entry_level": self.entry_level,
            "side": self.side,
            "parent": self.parent,
            "kind": self.kind,
        }


def _surface_point(end: np.ndarray, nearest_tumor_point: Callable[[np.ndarray], np.ndarray], half_voxel: float) -> np.ndarray:
    """Tumor surface point next to ``end``: the nearest tumor voxel centre moved half a voxel towards ``end``."""
    q = nearest_tumor_point(end[None])[0]
    d = end - q
    n = np.linalg.norm(d)
    return q + (half_voxel * d / n if n > 1e-9 else 0.0)


def _visible_gap_mm(end: np.ndarray, target: np.ndarray, masked: Callable[[np.ndarray], np.ndarray],
                    signed_distance: Callable[[np.ndarray], np.ndarray], step_mm: float = 0.2) -> float:
    """Length (mm) of the straight path from ``end`` to ``target`` that runs outside the tumor
    and outside masked bone (where a vessel would have been seen)."""
    length = float(np.linalg.norm(target - end))
    n = max(2, int(np.ceil(length / step_mm)) + 1)
    pts = end + np.linspace(0.0, 1.0, n)[:, None] * (target - end)
    visible = (signed_distance(pts) > 0) & (masked(pts) == 0)
    return length * float(np.mean(visible))


def end_reaches_tumor(end: np.ndarray, signed_distance, nearest_tumor_point, params: VesselParams, *,
                      half_voxel_mm: float, masked=None) -> tuple[bool, np.ndarray | None]:
    """Whether a free vessel end counts as reaching the tumor: within ``feeder_margin_mm`` of its
    surface, or within ``feeder_margin_mm + bone_gap_mm`` with at most ``feeder_margin_mm`` of the
    way outside masked bone (a vessel entering a vertebral tumor through the cortex).
    Returns (reaches, surface point when reached through bone else None)."""
    d = float(signed_distance(end[None])[0])
    if d <= params.feeder_margin_mm:
        return True, None
    if masked is None or d > params.feeder_margin_mm + params.bone_gap_mm:
        return False, None
    target = _surface_point(end, nearest_tumor_point, half_voxel_mm)
    if _visible_gap_mm(end, target, masked, signed_distance) <= params.feeder_margin_mm:
        return True, target
    return False, None


def find_feeders(graph: VesselGraph, diameters, signed_distance: Callable[[np.ndarray], np.ndarray],
                 nearest_tumor_point: Callable[[np.ndarray], np.ndarray], params: VesselParams, *,
                 half_voxel_mm: float, exclude=(), masked: Callable[[np.ndarray], np.ndarray] | None = None,
                 truncated: Callable[[np.ndarray], bool] | None = None) -> list[Feeder]:
    """Feeder candidates (unranked, unnamed): branches with a free end at the tumor surface.

    ``signed_distance(points)`` is the distance (mm) of RAS points to the tumor surface, negative
    inside; ``nearest_tumor_point(points)`` the nearest tumor voxel centre (RAS); ``masked(points)``
    is non-zero in masked bone (ends hidden by bone up to ``bone_gap_mm`` further count);
    ``truncated(end)`` is True for ends that are cut by the analysis, not by anatomy (at a masked
    thick vessel such as the aorta, or at the edge of the analysed region): they are not feeders.
    """
    exclude = set(exclude)
    found = []
    for bid, b in enumerate(graph.branches):
        if bid in exclude or len(b.points) < 2:
            continue
        for end_pos, nid in ((0, b.nodes[0]), (1, b.nodes[1])):
            node = graph.nodes[nid]
            if node.kind != "end" or len(node.branches) != 1:
                continue
            if truncated is not None and truncated(node.ras):
                continue
            other = graph.nodes[b.nodes[1 - end_pos]]
            pts, _ = b.oriented_from(b.nodes[1 - end_pos]) if b.nodes[0] != b.nodes[1] else (b.points, b.radii)
            # pts runs from the upstream node to the tumor end
            sd = signed_distance(pts)
            reaches, target = end_reaches_tumor(pts[-1], signed_distance, nearest_tumor_point, params,
                                                half_voxel_mm=half_voxel_mm, masked=masked)
            if not reaches:
                continue
            via_bone = target is not None
            if other.kind == "end" and sd[0] <= params.feeder_margin_mm and sd[0] - sd[-1] < 1.0:
                continue  # a fragment lying along the tumor surface, not a vessel coming to it
            s = arclength(pts)
            inside = np.flatnonzero(sd <= 0)
            if via_bone:
                entry = target
                length = s[-1] + float(np.linalg.norm(entry - pts[-1]))
                path = np.vstack([pts, entry])
            elif inside.size and inside[0] > 0:
                i = int(inside[0])
                t = sd[i - 1] / max(sd[i - 1] - sd[i], 1e-9)
                entry = pts[i - 1] + t * (pts[i] - pts[i - 1])
                length = s[i - 1] + t * (s[i] - s[i - 1])
                path = np.vstack([pts[:i], entry])
            else:
                entry = _surface_point(pts[-1], nearest_tumor_point, half_voxel_mm)
                length = s[-1] + float(np.linalg.norm(entry - pts[-1]))
                path = np.vstack([pts, entry])
            if length < params.feeder_min_length_mm:
                continue
            seg_len = np.diff(s)
            near = (sd[:-1] <= params.feeder_margin_mm) & (sd[1:] <= params.feeder_margin_mm)
            contact = float(seg_len[near].sum())
            found.append(Feeder(bid, entry, float(diameters[bid]), float(length), contact, -1, path=path))
    return found


def find_stub_feeders(voxels_ras: np.ndarray, branch_of: np.ndarray, foot_ras: np.ndarray, diameters,
                      signed_distance, nearest_tumor_point, params: VesselParams, *, spacing_mm: float,
                      grid_index: np.ndarray, grid_shape, masked=None, exclude=(),
                      graph: VesselGraph | None = None) -> list[Feeder]:
    """Feeders seen only as a short protrusion of a passing vessel towards the tumor.

    A vessel that sends a short branch into a vertebral tumor through the cortex shows, outside
    the bone mask, only a stub of a few voxels that the skeleton absorbs into its parent. Lumen
    voxels lying more than one voxel outside their branch's radius (``voxels_ras`` with their
    branch ``branch_of`` and nearest centreline point ``foot_ras``) are grouped (26-connected,
    ``grid_index`` on a grid of ``grid_shape``); a group whose tip reaches the tumor (see
    :func:`end_reaches_tumor`) while pointing at it and protruding at least 1.5 voxels beyond
    the vessel wall is a feeder. Its diameter is the group's volume over its protrusion length.
    A protrusion at the free end of its own branch (given ``graph``) is that branch's last
    millimetres, not a side branch: the branch itself is then the feeder.
    """
    from scipy import ndimage

    exclude = set(exclude)
    h = spacing_mm
    if len(voxels_ras) == 0:
        return []
    radius = 0.5 * np.asarray(diameters, float)[branch_of]
    off = np.linalg.norm(voxels_ras - foot_ras, axis=1)
    sd = signed_distance(voxels_ras)
    # a stub is short: voxels far from every centreline belong to lumen without a skeleton
    cand = (off > radius + 0.5 * h) & (off <= radius + params.feeder_margin_mm + 2.0 * h)
    cand &= sd <= params.feeder_margin_mm + params.bone_gap_mm
    cand &= ~np.isin(branch_of, list(exclude))
    if not np.any(cand):
        return []
    mask = np.zeros(tuple(grid_shape), bool)
    mask[tuple(grid_index[cand].T)] = True
    lab, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    labels_of = lab[tuple(grid_index[cand].T)]
    idx = np.flatnonzero(cand)
    found = []
    for group in range(1, n + 1):
        members = idx[labels_of == group]
        if len(members) < 2:
            continue
        tip_i = members[np.argmin(sd[members] - 1e-3 * off[members])]  # nearest the tumor, then furthest out
        tip, base, bid = voxels_ras[tip_i], foot_ras[tip_i], int(branch_of[tip_i])
        protrusion = float(np.linalg.norm(tip - base))
        if protrusion < radius[tip_i] + 1.5 * h:
            continue
        reaches, target = end_reaches_tumor(tip, signed_distance, nearest_tumor_point, params,
                                            half_voxel_mm=0.5 * h, masked=masked)
        if not reaches:
            continue
        entry = target if target is not None else _surface_point(tip, nearest_tumor_point, 0.5 * h)
        a, b = tip - base, entry - base
        if float(np.dot(a, b)) < 0.5 * float(np.linalg.norm(a) * np.linalg.norm(b)):
            continue
        if graph is not None:
            br = graph.branches[bid]
            free = [n for n in br.nodes if graph.nodes[n].kind == "end"
                    and np.linalg.norm(graph.nodes[n].ras - base) <= radius[tip_i] + 3 * h]
            if free:  # the branch's own end, bent towards the tumor: the branch is the feeder
                pts, _ = br.oriented_from(br.other(free[0]))
                path = np.vstack([pts, tip, entry])
                length = float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())
                found.append(Feeder(bid, entry, float(diameters[bid]), length, 0.0, -1, path=path))
                continue
        stub_len = max(protrusion - radius[tip_i], h)
        diameter = min(2.0 * np.sqrt(len(members) * h**3 / stub_len / np.pi), float(diameters[bid]))
        length = protrusion + float(np.linalg.norm(entry - tip))
        found.append(Feeder(bid, entry, diameter, length, 0.0, -1, path=np.vstack([base, tip, entry]), stub=True))
    return found


def merge_and_rank(feeders: list[Feeder], *, merge_distance_mm: float) -> list[Feeder]:
    """Keep one feeder per entry region (the widest), ranked widest first, then longest contact."""
    ordered = sorted(feeders, key=lambda f: (-round(f.diameter_mm, 1), -f.contact_mm, f.length_mm))
    kept: list[Feeder] = []
    for f in ordered:
        if all(np.linalg.norm(f.entry_ras - k.entry_ras) >= merge_distance_mm for k in kept):
            kept.append(f)
    return kept


def name_feeders(feeders: list[Feeder], trees: list[SegmentalTree], tree_of_branch: np.ndarray,
                 frame: CordFrame | None, levels: LevelMap | None) -> None:
    """Fill level, side and parent of each feeder from its segmental tree (in place).

    The level is that of the parent segmental artery (the one to catheterise); ``entry_level``
    is the level of the entry point. The side is the parent's side, else the entry point's.
    """
    for f in feeders:
        tid = int(tree_of_branch[f.branch])
        f.tree = tid
        tree = trees[tid] if tid >= 0 else None
        f.entry_level = levels.level_of(f.entry_ras) if levels else None
        if tree is not None and not tree.from_asa_only and (f.stub or len(tree.branches) > 1):
            f.level = tree.level or f.entry_level
            f.side = tree.side or side_of(frame, f.entry_ras)
            f.parent = tree.name
        else:  # not connected to a segmental artery in the image
            f.level = f.entry_level
            f.side = side_of(frame, f.entry_ras)
            f.parent = "anterior spinal artery" if tree is not None and tree.from_asa_only else None
