"""Assemble the Slicer scene of a plan and write it as a ``.mrb`` bundle (L2).

One pass over the finished context: the input volumes, the DWI's b=0 image, the label maps (as
one segmentation, and ``vertebrae`` as a label map volume), then the nodes of each stage's typed
result (``ctx.results``) by the stage's scene function (``StageSpec.scene`` in
:mod:`SpinePlannerLib.planning.registry`), in stage order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.imageio import atomic_path
from SpinePlannerLib.mrml.headless import create_core
from SpinePlannerLib.mrml.volumes import add_segmentation_from_masks, add_volume_node
from SpinePlannerLib.planning.context import PlanContext, Progress, no_progress
from SpinePlannerLib.planning.registry import STAGE_BY_NAME

STRUCTURE_COLORS = {
    "cord": (1.0, 0.9, 0.6),
    "csf": (0.55, 0.8, 1.0),
    "tumor": (0.9, 0.2, 0.2),
    "calcification": (1.0, 1.0, 1.0),
    "bone": (0.95, 0.9, 0.8),
    "vessels": (0.8, 0.1, 0.1),
    "edema": (0.5, 0.9, 0.3),
    "cyst": (0.3, 0.5, 1.0),
}
"""Display colours (RGB 0..1) of the segments Slicer shows."""

NON_SEGMENT_LABELS = {"vertebrae"}
"""Label maps holding indices rather than 0/1 masks; added as label map volumes."""


@dataclass
class Provenance:
    """Which stage's result created what, filled by :func:`populate_scene` when asked.

    Attributes
    ----------
    nodes : dict[str, str]
        node ID -> stage name, for every node a stage's scene function added.
    segments : dict[str, str]
        structure name -> stage name, for segments a stage's scene function added to
        ``nodes["segmentation"]``.
    """

    nodes: dict[str, str] = field(default_factory=dict)
    segments: dict[str, str] = field(default_factory=dict)


def node_ids(scene) -> list[str]:
    return [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]


def structure_name(segment_name: str) -> str:
    """Segment name -> structure name (``"Tumor"`` -> ``tumor``, ``"thecal sac"`` -> ``thecal_sac``)."""
    return "_".join(segment_name.strip().lower().split())


def segment_structures(seg_node) -> list[str]:
    """Structure names of the segments of ``seg_node`` (empty for None)."""
    if seg_node is None:
        return []
    s = seg_node.GetSegmentation()
    return [structure_name(s.GetNthSegment(i).GetName()) for i in range(s.GetNumberOfSegments())]


def add_result_nodes(core, ctx: PlanContext, nodes: dict, provenance: Provenance | None = None) -> None:
    """Add the scene nodes of every finished stage's result, in stage order (one pass)."""
    for name, result in ctx.results.items():
        spec = STAGE_BY_NAME.get(name)
        add = spec.load_scene() if spec is not None else None
        if add is None:
            continue
        if provenance is None:
            add(core, result, nodes)
            continue
        before, segments_before = set(node_ids(core.scene)), set(segment_structures(nodes.get("segmentation")))
        try:
            add(core, result, nodes)
        finally:
            for node_id in node_ids(core.scene):
                if node_id not in before:
                    provenance.nodes.setdefault(node_id, name)
            for structure in set(segment_structures(nodes.get("segmentation"))) - segments_before:
                provenance.segments.setdefault(structure, name)


def populate_scene(core, ctx: PlanContext, *, existing: dict | None = None,
                   progress: Progress = no_progress, provenance: Provenance | None = None) -> dict:
    """Add the case's volumes, label maps, segmentation and stage results to ``core.scene``.

    ``existing`` maps roles to volume nodes already in the scene holding those inputs (the
    Slicer module's input nodes): they are used as they are instead of being added again.
    ``provenance``, when given, records which stage's result created each node and segment.
    Returns ``nodes``: name -> node (roles, ``segmentation``, and what the stage results add).
    """
    scene = core.scene
    nodes: dict = dict(existing or {})
    scene.StartState(scene.BatchProcessState)
    try:
        for role, vol in ctx.volumes.items():
            if role not in nodes:
                nodes[role] = add_volume_node(scene, vol, name=role)
        progress(0.3, "volumes added")
        if ctx.dwi is not None:
            b0 = ctx.dwi.volume.array[..., ctx.dwi.bvals <= 50].mean(axis=-1)
            nodes["dwi_b0"] = add_volume_node(scene, ctx.dwi.volume.with_array(b0.astype(np.float32)), name="dwi_b0")
        ref_node = nodes.get(ctx.reference_role) if ctx.reference_role else None
        masks = {k: v for k, v in ctx.labels.items() if k not in NON_SEGMENT_LABELS and np.any(v.array)}
        if masks:
            nodes["segmentation"] = add_segmentation_from_masks(
                scene, core.logics, ref_node, masks, STRUCTURE_COLORS, name="SpinePlan segmentation")
        for name in NON_SEGMENT_LABELS & set(ctx.labels):
            nodes[name] = add_volume_node(scene, ctx.labels[name], name=name, labelmap=True)
        progress(0.6, "segmentation added")
        add_result_nodes(core, ctx, nodes, provenance)
    finally:
        scene.EndState(scene.BatchProcessState)
    return nodes


def build_scene(ctx: PlanContext, path: Path, *, progress: Progress = no_progress) -> None:
    """Populate a fresh headless scene for ``ctx`` and write it to ``path`` (``.mrb``) atomically."""
    core = create_core()
    populate_scene(core, ctx, progress=progress)
    tmp = atomic_path(Path(path).with_suffix(".mrb"))
    tmp.unlink()  # WriteToMRB wants to create the file itself
    try:
        if not core.scene.WriteToMRB(str(tmp)):
            raise RuntimeError("Slicer could not write the scene bundle")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    progress(1.0, "scene written")
