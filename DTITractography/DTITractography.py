"""DTITractography: cord tractography and the Setzer tract-tumor relationship in 3D Slicer.

Thin shell over ``DTITractographyLib`` (:func:`DTITractographyLib.logic.run_tractography`):
DWI -> tensors -> fiber tracking in the cord -> how the tracts relate to the tumor (Setzer type
1 displaced, 2 partly through, 3 encased), with an acquisition-quality check that withholds the
type when the data cannot support it.
"""

import html
import logging
import pathlib
from typing import Annotated

import slicer
from slicer import vtkMRMLDiffusionWeightedVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper, parameterPack
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
)

from SpinePlanner import ParameterNodeWidget, StageProgress, ensureDependencies, moduleLogics, toLibParameters

STAGE = "tractography"
"""Nodes this module adds carry ``SpinePlanner.createdBy = "tractography"`` (replaced on re-run)."""


#
# DTITractography
#


class DTITractography(ScriptedLoadableModule):
    """Module description shown in Slicer (see ScriptedLoadableModule)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Spine DTI Tractography")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Surgical Planning")]
        self.parent.dependencies = ["SpinePlanner"]
        self.parent.contributors = ["SpineTumorPlanner developers"]
        self.parent.helpText = _("""
Fit diffusion tensors in the spinal cord, track the cord's fibers and classify how they relate to
an intramedullary tumor (Setzer et al. 2010): type 1 fibers displaced around the lesion (a cleavage
plane is likely), type 2 some fibers pass through it, type 3 fibers encased (infiltration).
With fewer than about 12-15 gradient directions, thick slices or low SNR the module says the
acquisition is insufficient and gives no type. The rule thresholds are documented settings.
""")
        self.parent.acknowledgementText = _("""
Tensor fitting and tracking use DIPY. The Setzer classification follows Setzer et al. 2010.
""")


# BEGIN PARAMETER MIRRORS (mirror the Lib dataclasses field by field; Testing/test_slicer_static_parameters.py checks)


@parameterPack
class TensorFitParamsPack:
    """Mirror of :class:`DTITractographyLib.params.TensorFitParams` (same fields, types and defaults)."""

    method: Annotated[str, Choice(["WLS", "OLS", "NLLS", "RT"])] = "WLS"
    canal_margin_mm: float = 1.5


@parameterPack
class TrackingParamsPack:
    """Mirror of :class:`DTITractographyLib.params.TrackingParams` (same fields, types and defaults)."""

    algorithm: Annotated[str, Choice(["deterministic", "probabilistic"])] = "deterministic"
    seeds_per_voxel: int = 1
    step_size_mm: float = 0.5
    max_angle_deg: float = 35.0
    fa_stop: float = 0.2
    min_length_mm: float = 10.0
    max_length_mm: float = 250.0
    random_seed: int = 1
    n_threads: int = 1


@parameterPack
class RelationshipParamsPack:
    """Mirror of :class:`DTITractographyLib.params.RelationshipParams` (same fields, types and defaults)."""

    core_margin_mm: float = 1.0
    termination_margin_mm: float = 1.5
    level_margin_mm: float = 2.0
    footprint_lookahead_mm: float = 6.0
    ring_mm: float = 3.0
    reference_distance_mm: float = 10.0


@parameterPack
class SetzerParamsPack:
    """Mirror of :class:`DTITractographyLib.params.SetzerParams` (same fields, types and defaults)."""

    terminating_type3: float = 0.25
    entering_type2: float = 0.08
    min_streamlines: int = 20


@parameterPack
class ReliabilityParamsPack:
    """Mirror of :class:`DTITractographyLib.params.ReliabilityParams` (same fields, types and defaults)."""

    min_directions: int = 12
    max_voxel_mm: float = 5.0
    min_snr: float = 10.0


@parameterPack
class TractographyParamsPack:
    """Mirror of :class:`DTITractographyLib.params.TractographyParams` (same fields, types and defaults)."""

    fit: TensorFitParamsPack
    tracking: TrackingParamsPack
    relationship: RelationshipParamsPack
    setzer: SetzerParamsPack
    reliability: ReliabilityParamsPack


PARAMETER_MIRRORS = {
    "TensorFitParamsPack": "DTITractographyLib.params.TensorFitParams",
    "TrackingParamsPack": "DTITractographyLib.params.TrackingParams",
    "RelationshipParamsPack": "DTITractographyLib.params.RelationshipParams",
    "SetzerParamsPack": "DTITractographyLib.params.SetzerParams",
    "ReliabilityParamsPack": "DTITractographyLib.params.ReliabilityParams",
    "TractographyParamsPack": "DTITractographyLib.params.TractographyParams",
}
"""Parameter pack -> the Lib dataclass it mirrors (checked by the static tests)."""
# END PARAMETER MIRRORS


@parameterNodeWrapper
class DTITractographyParameterNode:
    """Inputs (DWI, segmentation with the cord, tumor and optional seed-region segments), display
    and export options, and the settings (``params`` mirrors ``DTITractographyLib.params.TractographyParams``)."""

    dwi: vtkMRMLDiffusionWeightedVolumeNode
    segmentation: vtkMRMLSegmentationNode
    cordSegment: str = "cord"
    tumorSegment: str = "tumor"
    seedSegment: str = ""
    colorBy: Annotated[str, Choice(["direction", "fa", "solid"])] = "direction"
    tubes: bool = False
    outputFolder: pathlib.Path
    measurements: vtkMRMLTableNode
    params: TractographyParamsPack


#
# DTITractographyWidget
#


class DTITractographyWidget(ParameterNodeWidget):
    """GUI: widgets bound to the parameter node through ``SlicerParameterName`` (see the .ui)."""

    uiName = "DTITractography"

    def createLogic(self):
        return DTITractographyLogic()

    def connectWidgets(self) -> None:
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)

    def initializeParameterNode(self) -> None:
        ParameterNodeWidget.initializeParameterNode(self)
        if self._parameterNode is not None and self._parameterNode.dwi is None:
            self._parameterNode.dwi = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLDiffusionWeightedVolumeNode")

    def updateGui(self) -> None:
        ok, message = self.logic.validateInputs(self._parameterNode)
        self.ui.applyButton.enabled = ok
        self.ui.applyButton.toolTip = message if not ok else _("Fit tensors, track the cord and classify the "
                                                               "tract-tumor relationship")

    def onApplyButton(self) -> None:
        """Run the tractography (reads the parameter node only)."""
        with slicer.util.tryWithErrorDisplay(_("Tractography failed."), waitCursor=True):
            ensureDependencies("DTITractography")
            progress = StageProgress(self.ui.progressBar, self.ui.statusLabel, [STAGE])
            run = self.logic.process(self._parameterNode, progress=progress(STAGE))
            progress.done(_("Done."))
            self.ui.resultsLabel.text = tractographyHtml(run.section)
            self.ui.resultsTableView.setMRMLTableNode(self._parameterNode.measurements)


def tractographyHtml(section: dict) -> str:
    """Reliability (with its reasons) first, then the Setzer type with the rule that gave it."""
    lines = []
    reliable = section.get("reliable")
    if reliable is not None:
        lines.append(_("<b>Acquisition reliable for tractography:</b> {answer}").format(
            answer=_("yes") if reliable else _("no")))
    lines += [f"&nbsp;&nbsp;- {html.escape(str(reason))}" for reason in section.get("reasons") or []]
    setzerType = section.get("setzer_type")
    lines.append(_("<b>Setzer type:</b> {type}").format(
        type=html.escape(str(setzerType)) if setzerType is not None else _("none (not determinable)")))
    for key, label in (("pattern", _("Pattern")), ("resectability", _("Resectability")),
                       ("confidence", _("Confidence")), ("rule", _("Rule"))):
        if section.get(key) not in (None, ""):
            lines.append(f"<b>{label}:</b> {html.escape(str(section[key]))}")
    if section.get("n_streamlines") is not None:
        lines.append(_("{n} streamlines").format(n=section["n_streamlines"]))
    return "<br>".join(lines)


#
# DTITractographyLogic
#


class DTITractographyLogic(ScriptedLoadableModuleLogic):
    """Thin adapter: parameter node -> :func:`DTITractographyLib.logic.run_tractography`."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return DTITractographyParameterNode(super().getParameterNode())

    @staticmethod
    def _hasSegment(segmentationNode, name: str) -> bool:
        return bool(segmentationNode.GetSegmentation().GetSegmentIdBySegmentName(name))

    def validateInputs(self, pn):
        """Whether the parameter node can be processed: ``(ok, message)``."""
        if pn is None:
            return False, _("No parameter node.")
        if pn.dwi is None:
            return False, _("Select a diffusion-weighted volume.")
        if pn.segmentation is None:
            return False, _("Select the segmentation with the cord (and tumor) segments.")
        for what, name, required in (("cord", pn.cordSegment, True), ("tumor", pn.tumorSegment, False),
                                     ("seed", pn.seedSegment, False)):
            name = name.strip()
            if (required or name) and not self._hasSegment(pn.segmentation, name):
                return False, _("The segmentation has no {what} segment named '{name}'.").format(what=what, name=name)
        try:
            toLibParameters(pn.params, PARAMETER_MIRRORS)
        except (ValueError, TypeError) as exc:
            return False, _("Invalid setting: {error}").format(error=exc)
        return True, ""

    def process(self, pn, *, progress=None):
        """Track the cord of ``pn`` into ``slicer.mrmlScene`` (earlier results of this module are
        replaced); returns the Lib's ``TractographyRun``."""
        ok, message = self.validateInputs(pn)
        if not ok:
            raise ValueError(message)
        from DTITractographyLib.logic import run_tractography
        from SpinePlannerLib.mrml.logic import (
            ATTR_CREATED_BY,
            remove_previous_results,
            update_measurements_table,
        )

        scene = slicer.mrmlScene
        remove_previous_results(scene, {STAGE}, keep=(pn.measurements,))
        outputFolder = pn.outputFolder if str(pn.outputFolder) not in ("", ".") else None
        run = run_tractography(
            scene, pn.dwi, (pn.segmentation, pn.cordSegment.strip()),
            (pn.segmentation, pn.tumorSegment.strip()) if pn.tumorSegment.strip() else None,
            params=toLibParameters(pn.params, PARAMETER_MIRRORS),
            progress=progress or (lambda fraction, message: None),
            seed_roi=(pn.segmentation, pn.seedSegment.strip()) if pn.seedSegment.strip() else None,
            output_dir=outputFolder, color_by=pn.colorBy, tubes=pn.tubes)
        for node in run.nodes.values():
            node.SetAttribute(ATTR_CREATED_BY, STAGE)
        pn.measurements = update_measurements_table(scene, {STAGE: run.section}, pn.measurements,
                                                    name="Tractography measurements")
        logging.info("DTITractography: Setzer type %s, reliable %s", run.section.get("setzer_type"),
                     run.section.get("reliable"))
        return run


#
# DTITractographyTest
#


class DTITractographyTest(ScriptedLoadableModuleTest):
    """Self-test on the digital phantom (intramedullary tumor displacing the tracts)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_DisplacingPhantom()

    def test_DisplacingPhantom(self):
        """Tracts displaced around an intramedullary tumor: the phantom's expected Setzer type."""
        self.delayDisplay("Generating the phantom")
        ensureDependencies("DTITractography self-test")
        from SpinePlannerLib.mrml.logic import add_phantom_to_scene
        from SpinePlannerLib.phantom.case import generate_phantom

        case = generate_phantom("intramedullary-displacing", seed=0)
        inputs = add_phantom_to_scene(slicer.mrmlScene, case, moduleLogics(), labels=("cord", "tumor"),
                                      tumor_seed=False)
        logic = DTITractographyLogic()
        pn = logic.getParameterNode()
        pn.dwi = inputs.dwi
        pn.segmentation = inputs.segmentation
        pn.cordSegment, pn.tumorSegment, pn.seedSegment = "cord", "tumor", ""
        ok, message = logic.validateInputs(pn)
        self.assertTrue(ok, message)
        self.delayDisplay("Tracking")
        run = logic.process(pn)
        section = run.section
        self.assertTrue(section["reliable"], section["reasons"])
        self.assertGreater(section["n_streamlines"], 0)
        self.assertEqual(section["setzer_type"], case.truth["expected"]["setzer_type"])
        self.assertIn("tracts", run.nodes)
        self.assertGreater(pn.measurements.GetNumberOfRows(), 3)
        self.delayDisplay("Test passed")
