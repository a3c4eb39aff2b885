"""The ordered list of planning stages.

Each entry names a function ``run(ctx: PlanContext, progress) -> None`` by import path, so a
module is imported only when its stage runs (heavy dependencies stay lazy). A stage that lacks
inputs raises :class:`~SpinePlannerLib.context.StageSkipped` with the reason; any other
exception marks it ``failed`` (reason recorded) and planning continues with the next stage.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    name: str
    target: str  # "package.module:function"
    description: str

    def load(self):
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


STAGES: tuple[StageSpec, ...] = (
    StageSpec("tumor_measurement", "SpinePlannerLib.measure_stage:run",
              "tumor volume, centroid, diameters along the cord axis, compartment"),
)


def stage_names() -> list[str]:
    return [s.name for s in STAGES]
