"""What the web viewer does to the MRML scene of a plan folder (``scene.mrb``): structure
visibility, 3D opacity, and the points to jump to (tumor, feeders, levels), all in RAS mm.

A structure is a segment of the plan segmentation. Where the scene holds a surface copy of a
segment (a model node of the same name: cord, thecal sac, tumor) the 3D view shows the model and
the segment only in the slice views: model visibility reaches the 3D picture at once, segment
visibility only with the next change. One toggle sets both. Tracts and vessels are model
nodes (``Cord tracts``; ``Vessels``, ``Tumor feeders``, ``Adamkiewicz candidate``,
``Anterior spinal artery``) and their markups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TRACT_NODES = ("Cord tracts",)
VESSEL_NODES = ("Vessels", "Tumor feeders", "Adamkiewicz candidate", "Anterior spinal artery",
                "Feeder entry points", "Adamkiewicz junction")
# 3D opacity of each segment at start: the tumor inside the cord and canal must be visible
START_OPACITY_3D = {"bone": 0.3, "csf": 0.15, "cord": 0.3, "vessels": 0.6, "edema": 0.4, "cyst": 0.5}
STRUCTURE_LABELS = {"tumor": "tumor", "cord": "cord", "csf": "thecal sac", "bone": "vertebrae",
                    "cyst": "cyst", "edema": "edema", "vessels": "vessel voxels",
                    "calcification": "calcification", "sct_disagreement": "sCT disagreement"}


def _nodes_named(scene, names) -> list:
    out = []
    for i in range(scene.GetNumberOfNodes()):
        n = scene.GetNthNode(i)
        if n.IsA("vtkMRMLDisplayableNode") and n.GetName() in names:
            out.append(n)
    return out


def _set_visible(node, visible: bool) -> None:
    for i in range(node.GetNumberOfDisplayNodes()):
        d = node.GetNthDisplayNode(i)
        if d is not None:
            d.SetVisibility(bool(visible))


@dataclass
class SceneControl:
    """Operations on the scene the viewer shows; ``plan`` is the plan.json dict."""

    scene: object
    plan: dict
    segmentation: object = None
    segments: dict = field(default_factory=dict)  # structure name -> segment id
    models: dict = field(default_factory=dict)  # structure name -> its surface model node (3D)

    def __post_init__(self):
        segs = self.scene.GetNodesByClass("vtkMRMLSegmentationNode")
        if segs.GetNumberOfItems():
            self.segmentation = segs.GetItemAsObject(0)
            seg = self.segmentation.GetSegmentation()
            for j in range(seg.GetNumberOfSegments()):
                self.segments[seg.GetNthSegment(j).GetName()] = seg.GetNthSegmentID(j)
            self.segmentation.CreateClosedSurfaceRepresentation()
            disp = self.segmentation.GetDisplayNode()
            for node in _nodes_named(self.scene, tuple(self.segments)):  # surface copies of the segments
                if node.IsA("vtkMRMLModelNode") and node.GetDisplayNode() is not None:
                    self.models[node.GetName()] = node
            for name, seg_id in self.segments.items():
                if disp is not None:
                    disp.SetSegmentOpacity3D(seg_id, START_OPACITY_3D.get(name, 1.0))
                    disp.SetSegmentVisibility3D(seg_id, name not in self.models)
                if name in self.models:
                    self.models[name].GetDisplayNode().SetOpacity(START_OPACITY_3D.get(name, 1.0))
                    self.models[name].GetDisplayNode().SetVisibility(True)

    def structures(self) -> list[str]:
        return [s for s in STRUCTURE_LABELS if s in self.segments]

    def segment_color(self, name: str) -> tuple[int, int, int] | None:
        """Display colour of a structure's segment, 0-255 RGB."""
        if name not in self.segments:
            return None
        c = self.segmentation.GetSegmentation().GetSegment(self.segments[name]).GetColor()
        return tuple(int(round(255 * v)) for v in c)

    def set_structure_visible(self, name: str, visible: bool) -> None:
        disp = self.segmentation.GetDisplayNode() if self.segmentation is not None else None
        if disp is not None and name in self.segments:
            disp.SetSegmentVisibility(self.segments[name], bool(visible))
        if name in self.models:
            self.models[name].GetDisplayNode().SetVisibility(bool(visible))

    def set_group_visible(self, names, visible: bool) -> None:
        for node in _nodes_named(self.scene, names):
            _set_visible(node, visible)

    def set_opacity_3d(self, opacity: float) -> None:
        """Overall 3D opacity (0-1) of the segmentation (multiplies each segment's own)."""
        disp = self.segmentation.GetDisplayNode() if self.segmentation is not None else None
        if disp is not None:
            disp.SetOpacity3D(float(opacity))
        for name, node in self.models.items():
            node.GetDisplayNode().SetOpacity(float(opacity) * START_OPACITY_3D.get(name, 1.0))

    def targets(self) -> dict[str, list[float]]:
        """Jump targets: ``{"tumor": RAS, "feeder #1 T10 right": RAS, "level T10": RAS, ...}`` (mm)."""
        out = {}
        t = self.plan.get("tumor") or {}
        if t.get("centroid_ras"):
            out["tumor"] = list(t["centroid_ras"])
        for f in (self.plan.get("vessels") or {}).get("feeders") or []:
            out[f"feeder #{f.get('rank')} {f.get('level') or ''} {f.get('side') or ''}".strip()] = list(f["entry_ras"])
        ak = (self.plan.get("vessels") or {}).get("adamkiewicz_candidate") or {}
        if ak.get("present") and ak.get("entry_ras"):
            out[f"Adamkiewicz candidate {ak.get('level')} {ak.get('side')}"] = list(ak["entry_ras"])
        for v in (self.plan.get("vertebrae") or {}).get("vertebrae") or []:
            if v.get("centroid_ras") is not None:
                out[f"level {v.get('name')}"] = list(v.get("canal_centre_ras") or v["centroid_ras"])
        return out


def jump_slices(scene, ras) -> None:
    """Move every slice view (axial, sagittal, coronal) through the RAS point (mm)."""
    x, y, z = (float(v) for v in ras)
    nodes = scene.GetNodesByClass("vtkMRMLSliceNode")
    for i in range(nodes.GetNumberOfItems()):
        nodes.GetItemAsObject(i).JumpSliceByCentering(x, y, z)


def aim_camera(camera_node, ras, *, distance_mm: float = 180.0, look=(1.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> None:
    """Point a 3D camera at ``ras`` from ``distance_mm`` away, looking along ``look`` (RAS)."""
    ras = np.asarray(ras, float)
    cam = camera_node.GetCamera()
    cam.SetFocalPoint(*ras)
    cam.SetPosition(*(ras - distance_mm * np.asarray(look, float)))
    cam.SetViewUp(*up)
    cam.SetViewAngle(30.0)
    camera_node.Modified()
