"""The planning context and the typed stage results (L1: no MRML here).

A stage is a function ``run(ctx: PlanContext, progress) -> StageResult`` registered in
:mod:`SpinePlannerLib.planning.registry`. It reads the case's inputs (``ctx.volumes``,
``ctx.dwi``, ``ctx.labels``, ``ctx.tumor_seed_ras``, ``ctx.params``) and the typed results of
earlier stages (``ctx.results[name]``), changes nothing, and returns its own result: a
dataclass derived from :class:`StageResult` holding what later stages and the writers read
(masks, levels, compartment, cord, the algorithm results), its new label maps on the reference
grid (``labels``), its warnings, its plan.json sections (``to_plan()``) and its export files
(``write_exports(folder)``). :func:`SpinePlannerLib.planning.pipeline.apply_result` records a
result in the context; the MRML layer (:mod:`SpinePlannerLib.mrml.scene`) turns the results
into scene nodes in one pass.
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

    The message is recorded as the stage's ``reason`` with status ``skipped``. ``result``, when
    given, is a partial :class:`StageResult` whose plan sections are still reported (e.g. the
    acquisition quality of a DWI that could not be tracked); it gets no scene nodes.
    """

    def __init__(self, reason: str, result: StageResult | None = None):
        super().__init__(reason)
        self.result = result


@dataclass
class StageResult:
    """What every stage returns (subclassed per stage with the stage's typed fields).

    Attributes
    ----------
    labels : dict[str, Volume]
        New label maps on the reference grid (structure -> 0/1 mask; ``vertebrae`` holds level
        indices); they replace same-named maps of the context.
    warnings : list[str]
        Plain-text warnings for the surgeon, in the order they arose.
    """

    labels: dict[str, Volume] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_plan(self) -> dict[str, dict]:
        """plan.json sections of this result: section name -> keys merged into that section."""
        return {}

    def write_exports(self, folder: Path) -> dict[str, str]:  # noqa: ARG002 - overridden by stages with files
        """Write this result's export files under ``folder``; returns key -> path relative to it."""
        return {}


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
        The plan.json document under construction (written from the results, read by no stage).
    results : dict[str, StageResult]
        stage name -> typed result of every stage that finished (in stage order).
    exports : dict[str, str]
        plan ``outputs`` key -> export file path relative to the output folder.
    tracebacks : dict[str, str]
        stage name -> traceback of a failed stage (for the log, not the plan).
    """

    inputs: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, Volume] = field(default_factory=dict)
    dwi: DiffusionData | None = None
    labels: dict[str, Volume] = field(default_factory=dict)
    given_labels: set[str] = field(default_factory=set)
    tumor_seed_ras: np.ndarray | None = None
    plan: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    results: dict[str, StageResult] = field(default_factory=dict)
    staging_dir: Path | None = None
    exports: dict[str, str] = field(default_factory=dict)
    tracebacks: dict[str, str] = field(default_factory=dict)

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

    def result(self, name: str) -> StageResult | None:
        """The result of stage ``name`` when it finished, else None."""
        return self.results.get(name)

    def label(self, name: str) -> Volume | None:
        """A label map if present and non-empty."""
        v = self.labels.get(name)
        if v is None or not np.any(v.array):
            return None
        return v
