"""Scene content of the ``approach`` stage (L2): the planned trajectory as a markups line (entry ->
target, RAS mm) and its two points as fiducials, locked, for navigation."""

from __future__ import annotations

from SpinePlannerLib.mrml.vessels import CREATED_BY_ATTRIBUTE

TRAJECTORY_COLOR = (0.1, 0.9, 0.3)


def add_approach_result(core, result, nodes: dict) -> None:
    """Add the trajectory of ``result`` (an ``ApproachResult``) to ``core.scene`` and ``nodes``."""
    traj = result.trajectory
    if not traj:
        return
    scene = core.scene
    line = scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", "Planned trajectory")
    line.CreateDefaultDisplayNodes()
    line.AddControlPoint([float(v) for v in traj["entry_ras"]], "entry")
    line.AddControlPoint([float(v) for v in traj["target_ras"]], "target")
    line.SetDescription(f"{traj.get('corridor', '')}; {traj['length_mm']} mm; entry at {traj['entry_basis']}")
    line.SetLocked(True)
    line.GetDisplayNode().SetSelectedColor(*TRAJECTORY_COLOR)
    points = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Trajectory entry and target")
    points.CreateDefaultDisplayNodes()
    points.AddControlPoint([float(v) for v in traj["entry_ras"]], "entry")
    points.AddControlPoint([float(v) for v in traj["target_ras"]], "target")
    points.SetLocked(True)
    points.GetDisplayNode().SetSelectedColor(*TRAJECTORY_COLOR)
    for key, node in (("trajectory_line", line), ("trajectory_points", points)):
        node.SetAttribute(CREATED_BY_ATTRIBUTE, "approach")
        nodes[key] = node
