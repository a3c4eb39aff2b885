"""The ordered list of planning stages.

Each entry names a function ``run(ctx: PlanContext, progress) -> None`` by import path, so a
module is imported only when its stage runs (heavy dependencies stay lazy). A stage that lacks
inputs raises :class:`~SpinePlannerLib.planning.context.StageSkipped` with the reason; any other
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
    StageSpec("segmentation", "SpinePlannerLib.segmentation.stage:run",
              "cord, CSF/thecal sac, vertebrae with levels, tumor from a seed"),
    StageSpec("tumor_measurement", "SpinePlannerLib.measurement.stage:run",
              "tumor volume, centroid, diameters along the cord axis, compartment"),
    StageSpec("tractography", "DTITractographyLib.stage:run",
              "DTI fit, cord fiber tracking, Setzer tract-tumor relationship"),
    StageSpec("synthetic_ct_check", "SyntheticCTCheckLib.stage:run",
              "synthetic CT vs CT in the lesion (calcification) and in bone"),
    StageSpec("vessels", "SpinePlannerLib.vessels.stage:run",
              "vessel tree from angiography, tumor feeders, Adamkiewicz candidate"),
)


def stage_names() -> list[str]:
    return [s.name for s in STAGES]
