"""Centerline graph of a vessel segmentation: skeleton -> branches between junctions (L1).

The binary segmentation (isotropic working grid) is thinned with ``skimage.morphology.skeletonize``
(3D), skeleton voxels are linked with 26-connectivity, voxels with three or more neighbours form
junction clusters, and the chains between clusters or free ends are the branches. Each branch
carries its ordered centreline points in RAS mm and the lumen radius along it (distance
transform of the segmentation, mm). Short terminal spurs are pruned and degree-2 junctions merged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

HALF_OFFSETS = np.array([o for o in np.ndindex(3, 3, 3) if o > (1, 1, 1)]) - 1
"""The 13 neighbour offsets that, with their negatives, make the 26-neighbourhood."""


@dataclass
class Node:
    """A junction (``kind == "junction"``) or a free vessel end (``"end"``).

    ``ras`` in mm; ``branches`` lists the incident branch ids.
    """

    ras: np.ndarray
    kind: str
    branches: list = field(default_factory=list)


@dataclass
class Branch:
    """A vessel segment between two nodes.

    Attributes
    ----------
    nodes : (int, int)
        Node ids at ``points[0]`` and ``points[-1]``.
    points : np.ndarray (n, 3)
        Ordered centreline points, RAS mm.
    radii : np.ndarray (n,)
        Lumen radius (mm) at each point.
    """

    nodes: tuple[int, int]
    points: np.ndarray
    radii: np.ndarray

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum()) if len(self.points) > 1 else 0.0

    def diameter_mm(self, *, trim_mm: float = 1.0) -> float:
        """Median lumen diameter (mm), ignoring ``trim_mm`` at each end (junction blobs, tapering ends)."""
        if len(self.points) < 3:
            return float(2.0 * np.median(self.radii))
        s = arclength(self.points)
        inner = (s >= trim_mm) & (s <= s[-1] - trim_mm)
        r = self.radii[inner] if np.count_nonzero(inner) >= 2 else self.radii
        return float(2.0 * np.median(r))

    def oriented_from(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """Points and radii ordered starting at ``node``."""
        if self.nodes[0] == node:
            return self.points, self.radii
        return self.points[::-1], self.radii[::-1]

    def other(self, node: int) -> int:
        return self.nodes[1] if self.nodes[0] == node else self.nodes[0]


@dataclass
class VesselGraph:
    """Nodes and branches (ids are list positions)."""

    nodes: list[Node]
    branches: list[Branch]

    def degree(self, node: int) -> int:
        return len(self.nodes[node].branches)

    @property
    def total_length_mm(self) -> float:
        return float(sum(b.length_mm for b in self.branches))

    def components(self, exclude_branches=()) -> np.ndarray:
        """Connected-component id of every branch (branches in ``exclude_branches`` get -1).

        Two branches are connected when they share a node, not counting excluded branches.
        """
        exclude = set(exclude_branches)
        ids = [b for b in range(len(self.branches)) if b not in exclude]
        comp = -np.ones(len(self.branches), int)
        if not ids:
            return comp
        rows, cols = [], []
        for n, node in enumerate(self.nodes):
            inc = [b for b in node.branches if b not in exclude]
            for b in inc:
                rows.append(b)
                cols.append(len(self.branches) + n)
        size = len(self.branches) + len(self.nodes)
        adj = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(size, size))
        _, lab = connected_components(adj, directed=False)
        comp[ids] = lab[ids]
        # renumber 0..k-1
        _, comp_ids = np.unique(comp[ids], return_inverse=True)
        comp[ids] = comp_ids
        return comp


def arclength(points: np.ndarray) -> np.ndarray:
    """Cumulative length (mm) along a polyline, starting at 0."""
    if len(points) < 2:
        return np.zeros(len(points))
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])


def point_at_distance(points: np.ndarray, distance_mm: float) -> np.ndarray:
    """Point (RAS) at arclength ``distance_mm`` along a polyline (its end when shorter)."""
    s = arclength(points)
    if s[-1] <= distance_mm or len(points) < 2:
        return points[-1].copy()
    i = int(np.searchsorted(s, distance_mm))
    t = (distance_mm - s[i - 1]) / max(s[i] - s[i - 1], 1e-9)
    return points[i - 1] + t * (points[i] - points[i - 1])


def _skeleton_edges(coords: np.ndarray, shape) -> np.ndarray:
    """Undirected 26-neighbour edges (E, 2) between skeleton voxels given as sorted C-order coords."""
    lin = np.ravel_multi_index(coords.T, shape)
    edges = []
    for off in HALF_OFFSETS:
        nb = coords + off
        ok = np.all((nb >= 0) & (nb < np.asarray(shape)), axis=1)
        src = np.flatnonzero(ok)
        nlin = np.ravel_multi_index(nb[ok].T, shape)
        pos = np.searchsorted(lin, nlin)
        pos = np.minimum(pos, len(lin) - 1)
        hit = lin[pos] == nlin
        edges.append(np.stack([src[hit], pos[hit]], axis=1))
    return np.concatenate(edges) if edges else np.zeros((0, 2), int)


def _components(n: int, edges: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Component labels (-1 for non-members) of the subgraph induced on ``members`` (bool, n)."""
    keep = members[edges[:, 0]] & members[edges[:, 1]]
    e = edges[keep]
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, lab = connected_components(adj, directed=False)
    lab = np.where(members, lab, -1)
    return lab


def skeleton_graph(skeleton: np.ndarray, radius_mm: np.ndarray, affine) -> VesselGraph:
    """Build the branch graph of a 3D skeleton.

    Parameters
    ----------
    skeleton : bool array
        One-voxel-thin centrelines (working grid).
    radius_mm : float array, same shape
        Lumen radius (mm) at each voxel (e.g. distance transform of the segmentation).
    affine : array (4, 4)
        ``ijk -> RAS`` of the grid.
    """
    affine = np.asarray(affine, float)
    coords = np.argwhere(skeleton)
    n = len(coords)
    if n == 0:
        return VesselGraph([], [])
    edges = _skeleton_edges(coords, skeleton.shape)
    nbrs: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        nbrs[a].append(int(b))
        nbrs[b].append(int(a))
    degree = np.array([len(x) for x in nbrs])
    is_junction = degree >= 3
    ras = coords @ affine[:3, :3].T + affine[:3, 3]
    rad = radius_mm[tuple(coords.T)].astype(float)

    nodes: list[Node] = []
    junction_label = _components(n, edges, is_junction)
    cluster_node: dict[int, int] = {}
    for lab in np.unique(junction_label[is_junction]):
        members = np.flatnonzero(junction_label == lab)
        cluster_node[int(lab)] = len(nodes)
        nodes.append(Node(ras[members].mean(axis=0), "junction"))
    node_radius = {nid: float(rad[junction_label == lab].max()) for lab, nid in cluster_node.items()}

    branch_label = _components(n, edges, ~is_junction)
    order_all = np.argsort(branch_label, kind="stable")
    bounds = np.searchsorted(branch_label[order_all], np.arange(branch_label.max() + 2))
    branches: list[Branch] = []
    for lab in range(branch_label.max() + 1):
        members = order_all[bounds[lab]:bounds[lab + 1]]
        if len(members) == 0:
            continue
        path = _order_chain(members, nbrs, is_junction)
        ends = []
        for end_voxel in (path[0], path[-1]):
            ends.append([cluster_node[int(junction_label[v])] for v in nbrs[end_voxel] if is_junction[v]])
        start_nodes, stop_nodes = ends
        if len(path) == 1 and len(start_nodes) >= 2:
            start_nodes, stop_nodes = start_nodes[:1], start_nodes[1:2]
        pts = [ras[path]]
        rr = [rad[path]]
        if start_nodes:
            a = start_nodes[0]
            pts.insert(0, nodes[a].ras[None])
            rr.insert(0, [node_radius[a]])
        else:
            a = len(nodes)
            nodes.append(Node(ras[path[0]].copy(), "end"))
        if stop_nodes:
            b = stop_nodes[0]
            pts.append(nodes[b].ras[None])
            rr.append([node_radius[b]])
        else:
            b = len(nodes)
            nodes.append(Node(ras[path[-1]].copy(), "end"))
        bid = len(branches)
        branches.append(Branch((a, b), np.concatenate(pts), np.concatenate(rr).astype(float)))
        nodes[a].branches.append(bid)
        nodes[b].branches.append(bid)
    # junction clusters that touch each other only through zero-length links stay separate nodes;
    # clusters without branches are dropped by compaction
    return _compact(VesselGraph(nodes, branches))


def _order_chain(members: np.ndarray, nbrs, is_junction) -> list[int]:
    """Order the voxels of a chain (a path or a cycle) from one end to the other."""
    member_set = set(int(m) for m in members)
    inner = {m: [v for v in nbrs[m] if v in member_set] for m in member_set}
    start = next((m for m in members if len(inner[int(m)]) <= 1), members[0])
    start = int(start)
    path = [start]
    seen = {start}
    cur = start
    while True:
        nxt = [v for v in inner[cur] if v not in seen]
        if not nxt:
            break
        cur = nxt[0]
        path.append(cur)
        seen.add(cur)
    return path


def _compact(graph: VesselGraph) -> VesselGraph:
    """Drop nodes without branches and renumber."""
    used = sorted({n for b in graph.branches for n in b.nodes})
    remap = {old: new for new, old in enumerate(used)}
    nodes = [Node(graph.nodes[i].ras, graph.nodes[i].kind, []) for i in used]
    branches = []
    for b in graph.branches:
        nb = Branch((remap[b.nodes[0]], remap[b.nodes[1]]), b.points, b.radii)
        bid = len(branches)
        branches.append(nb)
        nodes[nb.nodes[0]].branches.append(bid)
        if nb.nodes[1] != nb.nodes[0]:
            nodes[nb.nodes[1]].branches.append(bid)
    return VesselGraph(nodes, branches)


def _merge_degree_two(graph: VesselGraph) -> VesselGraph:
    """Join the two branches of every junction left with exactly two (distinct) branches."""
    nodes = [Node(n.ras, n.kind, list(n.branches)) for n in graph.nodes]
    branches: dict[int, Branch] = dict(enumerate(graph.branches))
    next_id = len(graph.branches)
    changed = True
    while changed:
        changed = False
        for nid, node in enumerate(nodes):
            if node.kind != "junction" or len(node.branches) != 2 or node.branches[0] == node.branches[1]:
                continue
            b1, b2 = (branches[i] for i in node.branches)
            if b1.other(nid) == nid or b2.other(nid) == nid:
                continue
            p1, r1 = b1.oriented_from(b1.other(nid))  # ends at nid
            p2, r2 = b2.oriented_from(nid)  # starts at nid
            merged = Branch((b1.other(nid), b2.other(nid)), np.concatenate([p1, p2[1:]]),
                            np.concatenate([r1, r2[1:]]))
            old = list(node.branches)
            for o in old:
                del branches[o]
            for end in merged.nodes:
                nodes[end].branches = [b for b in nodes[end].branches if b not in old]
            node.branches = []
            branches[next_id] = merged
            for end in set(merged.nodes):
                nodes[end].branches.append(next_id)
            next_id += 1
            changed = True
    g = VesselGraph(nodes, [])
    remap = {}
    for old_id in sorted(branches):
        remap[old_id] = len(g.branches)
        g.branches.append(branches[old_id])
    for nd in nodes:
        nd.branches = [remap[b] for b in nd.branches]
    return _compact(g)


def prune_spurs(graph: VesselGraph, *, min_length_mm: float, radius_factor: float = 1.5,
                iterations: int = 3, protect=None) -> VesselGraph:
    """Remove terminal branches shorter than ``max(min_length_mm, radius_factor * r_junction)``
    (skeleton spurs of thick vessels), isolated branches shorter than ``min_length_mm``, and
    merge junctions left with two branches.

    ``protect(end_ras, junction_ras) -> bool`` keeps a short terminal branch anyway (e.g. a
    stub of a vessel that enters bone towards a tumor)."""
    for _ in range(iterations):
        drop = set()
        for bid, b in enumerate(graph.branches):
            a, c = b.nodes
            kinds = (graph.nodes[a].kind, graph.nodes[c].kind)
            length = b.length_mm
            if kinds == ("end", "end"):
                if length < min_length_mm:
                    drop.add(bid)
                continue
            if "end" in kinds:
                j = a if kinds[0] == "junction" else c
                r_j = max(float(b.radii[0] if j == a else b.radii[-1]), 0.0)
                # do not prune every branch of a junction (keep the longest)
                if length < max(min_length_mm, radius_factor * r_j):
                    end = c if j == a else a
                    if protect is None or not protect(graph.nodes[end].ras, graph.nodes[j].ras):
                        drop.add(bid)
            elif a == c and length < max(min_length_mm, 4 * float(b.radii.max())):
                drop.add(bid)  # tiny loop at a junction
        if not drop:
            break
        keep = [b for i, b in enumerate(graph.branches) if i not in drop]
        nodes = [Node(n.ras, n.kind, []) for n in graph.nodes]
        graph = _compact(VesselGraph(nodes, keep))
        graph = _merge_degree_two(graph)
    # a junction left with one branch is a free end now
    for nd in graph.nodes:
        if nd.kind == "junction" and len(nd.branches) == 1:
            nd.kind = "end"
    return graph


def bridge_gaps(graph: VesselGraph, *, max_gap_mm: float, max_angle_deg: float = 40.0, tangent_mm: float = 3.0,
                skip=None) -> VesselGraph:
    """Reconnect vessels interrupted by a short gap (thin vessels fall below the thresholds where
    partial volume and noise dim them).

    A free end is joined by a straight segment to the nearest point of another branch lying
    within ``max_gap_mm`` ahead of it (within ``max_angle_deg`` of the end's outward direction,
    measured over ``tangent_mm``); the target branch is split there (a new junction) unless the
    point is one of its ends. ``skip(end_ras) -> bool`` leaves chosen ends alone (e.g. ends at
    the tumor surface, which must stay free to be recognised as feeders).
    """
    from scipy.spatial import cKDTree

    nodes = [Node(n.ras, n.kind, []) for n in graph.nodes]
    branches = list(graph.branches)
    cos_max = np.cos(np.radians(max_angle_deg))
    ends = [i for i, n in enumerate(graph.nodes) if n.kind == "end" and len(n.branches) == 1]
    done = False
    for nid in ends:
        incident = [i for i, b in enumerate(branches) if nid in b.nodes]
        if len(incident) != 1:  # already joined by an earlier bridge
            continue
        bid = incident[0]
        b = branches[bid]
        e = nodes[nid].ras
        if skip is not None and skip(e):
            continue
        pts, rr = b.oriented_from(nid)
        back = point_at_distance(pts, min(tangent_mm, 0.5 * max(b.length_mm, 1e-6)))
        out = e - back
        if np.linalg.norm(out) < 1e-6:
            continue
        out /= np.linalg.norm(out)
        all_pts, owner, index = [], [], []
        for cid, c in enumerate(branches):
            if cid == bid:
                continue
            all_pts.append(c.points)
            owner.append(np.full(len(c.points), cid))
            index.append(np.arange(len(c.points)))
        if not all_pts:
            break
        tree = cKDTree(np.concatenate(all_pts))
        owner, index = np.concatenate(owner), np.concatenate(index)
        best, best_score = None, np.inf
        for k in tree.query_ball_point(e, max_gap_mm):
            v = tree.data[k] - e
            d = float(np.linalg.norm(v))
            if d > 0.5 and float(np.dot(v, out)) < cos_max * d:
                continue
            if d < best_score:
                best, best_score = k, d
        if best is None:
            continue
        cid, i = int(owner[best]), int(index[best])
        c = branches[cid]
        if i <= 1 or i >= len(c.points) - 2:
            target = c.nodes[0] if i <= 1 else c.nodes[1]
        else:
            target = len(nodes)
            nodes.append(Node(c.points[i].copy(), "junction"))
            branches[cid] = Branch((c.nodes[0], target), c.points[: i + 1], c.radii[: i + 1])
            branches.append(Branch((target, c.nodes[1]), c.points[i:], c.radii[i:]))
        q = nodes[target].ras
        r_e = float(rr[0])
        r_q = float(c.radii[min(i, len(c.radii) - 1)])
        branches.append(Branch((nid, target), np.stack([e, q]), np.array([r_e, min(r_e, r_q)])))
        nodes[nid].kind = "junction"
        nodes[target].kind = "junction"
        done = True
    if not done:
        return graph
    merged = _merge_degree_two(_compact(VesselGraph(nodes, branches)))
    for nd in merged.nodes:
        if nd.kind == "junction" and len(nd.branches) == 1:
            nd.kind = "end"
    return merged


def remove_branches(graph: VesselGraph, drop) -> VesselGraph:
    """The graph without the branches ``drop`` (junctions left with two branches are merged,
    with one branch become free ends)."""
    drop = set(int(b) for b in drop)
    if not drop:
        return graph
    keep = [b for i, b in enumerate(graph.branches) if i not in drop]
    nodes = [Node(n.ras, n.kind, []) for n in graph.nodes]
    graph = _merge_degree_two(_compact(VesselGraph(nodes, keep)))
    for nd in graph.nodes:
        if nd.kind == "junction" and len(nd.branches) == 1:
            nd.kind = "end"
    return graph


def vessel_graph(segmentation: np.ndarray, affine, spacing_mm: float, *, prune_length_mm: float,
                 protect=None) -> VesselGraph:
    """Skeletonise a binary vessel segmentation (isotropic grid) and return its pruned graph.

    Radii are the Euclidean distance (mm) from each skeleton voxel to the nearest background
    voxel centre minus half a voxel (the boundary lies half-way between voxel centres).
    """
    from skimage.morphology import skeletonize

    if not np.any(segmentation):
        return VesselGraph([], [])
    seg = np.asarray(segmentation, bool)
    skel = skeletonize(seg).astype(bool)
    dist = ndimage.distance_transform_edt(seg) * spacing_mm
    radius = np.maximum(dist - 0.5 * spacing_mm, 0.5 * spacing_mm)
    graph = skeleton_graph(skel, radius, affine)
    for nd in graph.nodes:  # clusters with a single branch are ends
        if nd.kind == "junction" and len(nd.branches) == 1:
            nd.kind = "end"
    return prune_spurs(graph, min_length_mm=prune_length_mm, protect=protect)
