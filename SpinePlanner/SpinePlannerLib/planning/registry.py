"""The ordered list of planning stages.

Each entry names a function ``run(ctx: PlanContext, progress) -> StageResult`` by import path, so
a module is imported only when its stage runs (heavy dependencies stay lazy). A stage that lacks
inputs raises :class:`~SpinePlannerLib.planning.context.StageSkipped` with the reason; any other
exception marks it ``failed`` (reason recorded) and planning continues with the next stage.

``scene`` names the MRML function ``add(core, result, nodes) -> None`` (L2, in an ``mrml``
module) that turns the stage's result into scene nodes; the planning code never imports it, the
scene assembly (:mod:`SpinePlannerLib.mrml.scene`) does, once per plan.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    name: str
    target: str  # "package.module:function"
    description: str
    scene: str = ""  # "package.module:function" adding the result's scene nodes; "" when none

    def load(self):
        return _load(self.target)

    def load_scene(self):
        """The stage's scene function, or None when its result has no scene nodes of its own."""
        return _load(self.scene) if self.scene else None


def _load(target: str):
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


STAGES: tuple[StageSpec, ...] = (
    StageSpec("segmentation", "SpinePlannerLib.segmentation.stage:run",
              "cord, CSF/thecal sac, vertebrae with levels, tumor from a seed",
              "SpinePlannerLib.mrml.segmentation:add_segmentation_result"),
    StageSpec("tumor_measurement", "SpinePlannerLib.measurement.stage:run",
              "tumor volume, centroid, diameters along the cord axis, compartment"),
    StageSpec("tractography", "SpinePlannerLib.planning.tractography_stage:run",
              "DTI fit, cord fiber tracking, Setzer tract-tumor relationship",
              "DTITractographyLib.mrml_tracts:add_tractography_result"),
    StageSpec("synthetic_ct_check", "SpinePlannerLib.planning.synthetic_ct_stage:run",
              "synthetic CT vs CT in the lesion (calcification) and in bone",
              "SyntheticCTCheckLib.mrml_sct:add_sct_result"),
    StageSpec("vessels", "SpinePlannerLib.vessels.stage:run",
              "vessel tree from angiography, tumor feeders, Adamkiewicz candidate",
              "SpinePlannerLib.mrml.vessels:add_vessel_result"),
    StageSpec("approach", "SpinePlannerLib.approach.stage:run",
              "SINS and Bilsky grade from imaging, NOMS, compartment-specific approach and trajectory",
              "SpinePlannerLib.mrml.approach:add_approach_result"),
)


STAGE_BY_NAME = {s.name: s for s in STAGES}


def stage_names() -> list[str]:
    return [s.name for s in STAGES]
