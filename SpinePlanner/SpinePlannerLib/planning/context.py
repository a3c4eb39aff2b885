"""The planning context every stage reads from and writes to (L1: no MRML here).

A stage is a function ``run(ctx: PlanContext, progress) -> None`` registered in
:mod:`SpinePlannerLib.planning.registry`. It reads inputs (``ctx.volumes``, ``ctx.dwi``, ``ctx.labels``),
writes its plan section (``ctx.plan[section] = {...}``), adds label maps on the reference grid
(``ctx.labels[name] = Volume``), appends plain-text warnings (``ctx.warn(...)``), registers
MRML builders (``ctx.scene_builders.append(fn)``; ``fn(core, ctx, nodes)`` runs when the scene
is assembled, ``nodes`` maps role/structure names to the nodes already added) and writes extra
export files under ``ctx.staging_dir`` (moved into the output folder atomically at the end).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.dwi_io import DiffusionData
from SpinePlannerLib.core.volume import Volume

Progress = Callable[[float, str], None]
"""``progress(fraction 0..1, message)``; stages call it at most a few times per second."""


def no_progress(fraction: float, message: str) -> None:  # noqa: ARG001 - signature of Progress
    """A progress callback that ignores everything."""


class StageSkipped(Exception):
    """Raised by a stage that finds, once running, that its inputs cannot support it.

    The message is recorded as the stage's ``reason`` with status ``skipped``.
    """


REFERENCE_ROLE_ORDER = ("t2", "t1", "t1c", "ct")
"""The reference grid for ``labels/`` is the first given of these roles (then stir, sct, angio)."""

ROLES = ("t1", "t2", "t1c", "stir", "ct", "sct", "dwi", "angio", "swi", "gre")
"""Image roles: MRI (t1, t2, t1c contrast T1, stir, swi susceptibility-weighted, gre T2* gradient echo),
ct, sct (MRI-derived synthetic CT), dwi (diffusion), angio (CT/MR angiography)."""


@dataclass
class PlanContext:
    """Everything known about one case while planning.

    Attributes
    ----------
    inputs : dict[str, str]
        role -> path as given (also ``bval``, ``bvec``, ``tumor_seg``, ``cord_seg``).
    volumes : dict[str, Volume]
        role -> 3D volume in RAS (t1, t2, t1c, stir, ct, sct, angio).
    dwi : DiffusionData or None
    labels : dict[str, Volume]
        structure -> label map on the reference grid (0/1 masks; ``vertebrae`` holds level
        indices, names in ``plan["vertebrae"]["levels"]``).
    tumor_seed_ras : np.ndarray or None
        One RAS point (mm) inside the tumor, from ``--tumor-seed``.
    plan : dict
        The plan.json document under construction.
    """

    inputs: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    dwi: DiffusionData | None = None
    labels: dict[str, Volume] = field(default_factory=dict)
    given_labels: set[str] = field(default_factory=set)
    tumor_seed_ras: np.ndarray | None = None
    plan: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    scene_builders: list = field(default_factory=list)
    staging_dir: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def reference_role(self) -> str | None:
        for role in (*REFERENCE_ROLE_ORDER, "stir", "sct", "angio"):
            if role in self.volumes:
                return role
        return None

    @property
    def reference(self) -> Volume | None:
        """The grid of every ``labels/`` output (first given of t2, t1, t1c, ct, ...)."""
        role = self.reference_role
        return self.volumes[role] if role else None

    def warn(self, text: str) -> None:
        """Add a plan-level warning (shown to the surgeon in the report)."""
        self.plan.setdefault("warnings", [])
        if text not in self.plan["warnings"]:
            self.plan["warnings"].append(text)

    def label(self, name: str) -> Volume | None:
        """A label map if present and non-empty."""
        v = self.labels.get(name)
        if v is None or not np.any(v.array):
            return None
        return v
