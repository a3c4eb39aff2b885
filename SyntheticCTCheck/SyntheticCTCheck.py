"""SyntheticCTCheck: does an MRI-derived synthetic CT show what the real CT shows? (3D Slicer shell)

Thin shell over ``SyntheticCTCheckLib`` (:func:`SyntheticCTCheckLib.logic.run_check_on_nodes`):
the lesion ROI drawn where the lesion is visible is carried to CT and synthetic CT; per image the
check reports visibility, diameters and mean HU, classifies calcification with adjustable
cut-offs, compares bone, and adds the CT - sCT difference (diverging color map) and the flagged
region as a segment.
"""

import html
import logging
from typing import Annotated

import qt
import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper, parameterPack
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
)

from SpinePlanner import ParameterNodeWidget, StageProgress, ensureDependencies, moduleLogics, toLibParameters

STAGE = "synthetic_ct_check"
"""Nodes this module adds carry ``SpinePlanner.createdBy = "synthetic_ct_check"`` (replaced on re-run)."""


#
# SyntheticCTCheck
#


class SyntheticCTCheck(ScriptedLoadableModule):
    """Module description shown in Slicer (see ScriptedLoadableModule)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Synthetic CT Check")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Surgical Planning")]
        self.parent.dependencies = ["SpinePlanner"]
        self.parent.contributors = ["SpineTumorPlanner developers"]
        self.parent.helpText = _("""
Check a synthetic CT computed from MRI against the real CT in the lesion and in bone. A densely
calcified intradural tumor (e.g. a meningioma) can be invisible on synthetic CT although the CT
shows it clearly; calcification changes the surgical approach. The lesion ROI comes from the image
where the lesion is visible. Calcification classes use adjustable cut-offs: no single HU cut-off
is supported by the literature.
""")
        self.parent.acknowledgementText = _("""
Registration uses SimpleITK. The published synthetic-CT comparison this check reproduces is
summarised in the extension's documentation (CLINICAL.md section 4).
""")


# BEGIN PARAMETER MIRRORS (mirror the Lib dataclasses field by field; Testing/test_slicer_static_parameters.py checks)


@parameterPack
class RegistrationParamsPack:
    """Mirror of :class:`SyntheticCTCheckLib.params.RegistrationParams` (same fields, types and defaults)."""

    trust_headers: bool = False
    same_grid_tol_mm: float = 0.001
    focus_radius_mm: float = 50.0
    histogram_bins: int = 50
    sampling_fraction: float = 0.2
    max_iterations: int = 100
    shrink_factors: tuple[int, int, int] = (4, 2, 1)
    smoothing_sigmas_mm: tuple[float, float, float] = (2.0, 1.0, 0.0)
    residual_bone_hu: float = 250.0
    residual_warn_mm: float = 2.0
    seed: int = 1
    threads: int = 1


@parameterPack
class LesionParamsPack:
    """Mirror of :class:`SyntheticCTCheckLib.params.LesionParams` (same fields, types and defaults)."""

    calcified_hu: float = 130.0
    visibility_contrast_hu: float = 60.0
    min_visible_volume_mm3: float = 20.0
    min_component_mm3: float = 3.0
    shell_inner_mm: float = 1.0
    shell_outer_mm: float = 4.0
    soft_tissue_range_hu: tuple[float, float] = (-50.0, 150.0)
    denoise: bool = True
    roi_margin_mm: float = 1.0


@parameterPack
class ClassCutoffsPack:
    """Mirror of :class:`SyntheticCTCheckLib.params.ClassCutoffs` (same fields, types and defaults)."""

    faint_mean_hu: float = 90.0
    partial_mean_hu: float = 200.0
    dense_mean_hu: float = 400.0
    faint_fraction: float = 0.05
    partial_fraction: float = 0.3


@parameterPack
class BoneParamsPack:
    """Mirror of :class:`SyntheticCTCheckLib.params.BoneParams` (same fields, types and defaults)."""

    bone_hu: float = 200.0
    exclude_lesion_margin_mm: float = 3.0
    min_voxels: int = 50
    mae_warn_hu: float = 150.0


@parameterPack
class VoidParamsPack:
    """Mirror of :class:`SyntheticCTCheckLib.params.VoidParams` (same fields, types and defaults)."""

    void_ratio: float = 0.3
    min_void_volume_mm3: float = 5.0
    min_component_mm3: float = 1.0
    shell_inner_mm: float = 1.0
    shell_outer_mm: float = 4.0


@parameterPack
class FlagParamsPack:
    """Mirror of :class:`SyntheticCTCheckLib.params.FlagParams` (same fields, types and defaults)."""

    density_difference_hu: float = 100.0
    critical_difference_hu: float = 300.0
    min_calcified_volume_ml: float = 0.01


@parameterPack
class CheckParamsPack:
    """Mirror of :class:`SyntheticCTCheckLib.params.CheckParams` (same fields, types and defaults)."""

    registration: RegistrationParamsPack
    lesion: LesionParamsPack
    classes: ClassCutoffsPack
    bone: BoneParamsPack
    voids: VoidParamsPack
    flags: FlagParamsPack


PARAMETER_MIRRORS = {
    "RegistrationParamsPack": "SyntheticCTCheckLib.params.RegistrationParams",
    "LesionParamsPack": "SyntheticCTCheckLib.params.LesionParams",
    "ClassCutoffsPack": "SyntheticCTCheckLib.params.ClassCutoffs",
    "BoneParamsPack": "SyntheticCTCheckLib.params.BoneParams",
    "VoidParamsPack": "SyntheticCTCheckLib.params.VoidParams",
    "FlagParamsPack": "SyntheticCTCheckLib.params.FlagParams",
    "CheckParamsPack": "SyntheticCTCheckLib.params.CheckParams",
}
"""Parameter pack -> the Lib dataclass it mirrors (checked by the static tests)."""
# END PARAMETER MIRRORS


@parameterNodeWrapper
class SyntheticCTCheckParameterNode:
    """Inputs (CT, synthetic CT, segmentation holding the lesion ROI, optional T2*/SWI MRI), the
    outputs of the last run, and the settings (``params`` mirrors
    ``SyntheticCTCheckLib.params.CheckParams``)."""

    ct: vtkMRMLScalarVolumeNode
    sct: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    lesionSegment: str = "tumor"
    roiFrame: Annotated[str, Choice(["mri", "ct"])] = "mri"
    t2star: vtkMRMLScalarVolumeNode
    t2starSequence: Annotated[str, Choice(["gre", "swi"])] = "gre"
    difference: vtkMRMLScalarVolumeNode
    measurements: vtkMRMLTableNode
    params: CheckParamsPack


#
# SyntheticCTCheckWidget
#


class SyntheticCTCheckWidget(ParameterNodeWidget):
    """GUI: widgets bound to the parameter node through ``SlicerParameterName`` (see the .ui)."""

    uiName = "SyntheticCTCheck"

    def createLogic(self):
        return SyntheticCTCheckLogic()

    def connectWidgets(self) -> None:
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)

    def updateGui(self) -> None:
        ok, message = self.logic.validateInputs(self._parameterNode)
        self.ui.applyButton.enabled = ok
        self.ui.applyButton.toolTip = message if not ok else _("Compare the synthetic CT with the CT")

    def onApplyButton(self) -> None:
        """Run the synthetic-CT check (reads the parameter node only)."""
        with slicer.util.tryWithErrorDisplay(_("Synthetic CT check failed."), waitCursor=True):
            ensureDependencies("SyntheticCTCheck")
            progress = StageProgress(self.ui.progressBar, self.ui.statusLabel, [STAGE])
            section = self.logic.process(self._parameterNode, progress=progress(STAGE))
            progress.done(_("Done."))
            self.ui.resultsLabel.text = checkHtml(section)
            self.ui.resultsTableView.setMRMLTableNode(self._parameterNode.measurements)
            self.ui.flagsListWidget.clear()
            for text in flagTexts(section):
                self.ui.flagsListWidget.addItem(qt.QListWidgetItem(text))
            self.logic.showDifference(self._parameterNode)


def flagTexts(section: dict) -> list:
    """One line per flag of the check: ``[severity] message``."""
    texts = []
    for flag in section.get("flags") or []:
        if isinstance(flag, dict):
            texts.append(f"[{flag.get('severity', '')}] {flag.get('message', flag.get('code', ''))}")
        else:
            texts.append(str(flag))
    return texts


def checkHtml(section: dict) -> str:
    """Verdict, approach hint, reliability and the lesion numbers per image."""
    lines = []
    for key, label in (("verdict", _("Verdict")), ("approach_hint", _("Approach hint"))):
        if section.get(key):
            lines.append(f"<b>{label}:</b> {html.escape(str(section[key]))}")
    if section.get("reliable") is not None:
        lines.append(_("<b>Reliable:</b> {answer}").format(answer=_("yes") if section["reliable"] else _("no")))
    lines += [f"&nbsp;&nbsp;- {html.escape(str(reason))}" for reason in section.get("reasons") or []]
    for image in ("ct", "sct"):
        stats = section.get(image)
        if isinstance(stats, dict):
            shown = ", ".join(f"{k} {v}" for k, v in stats.items() if isinstance(v, int | float | str | bool))
            lines.append(f"<b>{image.upper()}:</b> {html.escape(shown)}")
    if not section.get("flags"):
        lines.append(_("No flags."))
    return "<br>".join(lines)


#
# SyntheticCTCheckLogic
#


class SyntheticCTCheckLogic(ScriptedLoadableModuleLogic):
    """Thin adapter: parameter node -> :func:`SyntheticCTCheckLib.logic.run_check_on_nodes`."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SyntheticCTCheckParameterNode(super().getParameterNode())

    def validateInputs(self, pn):
        """Whether the parameter node can be processed: ``(ok, message)``."""
        if pn is None:
            return False, _("No parameter node.")
        if pn.sct is None:
            return False, _("Select the synthetic CT.")
        if pn.ct is None and pn.t2star is None:
            return False, _("Select the CT (or a T2*/SWI MRI) to compare the synthetic CT with.")
        if pn.ct is not None and pn.ct is pn.sct:
            return False, _("CT and synthetic CT must be different volumes.")
        if pn.segmentation is None:
            return False, _("Select the segmentation holding the lesion ROI.")
        if not pn.segmentation.GetSegmentation().GetSegmentIdBySegmentName(pn.lesionSegment.strip()):
            return False, _("The segmentation has no segment named '{name}'.").format(name=pn.lesionSegment)
        try:
            toLibParameters(pn.params, PARAMETER_MIRRORS)
        except (ValueError, TypeError) as exc:
            return False, _("Invalid setting: {error}").format(error=exc)
        return True, ""

    def process(self, pn, *, progress=None) -> dict:
        """Check the synthetic CT of ``pn``; results go into ``slicer.mrmlScene`` (earlier results
        of this module are replaced). Returns the plan.json ``synthetic_ct_check`` section."""
        ok, message = self.validateInputs(pn)
        if not ok:
            raise ValueError(message)
        from SpinePlannerLib.mrml.logic import ATTR_CREATED_BY, remove_previous_results
        from SyntheticCTCheckLib.logic import run_check_on_nodes

        scene = slicer.mrmlScene
        remove_previous_results(scene, {STAGE})
        segmentId = pn.segmentation.GetSegmentation().GetSegmentIdBySegmentName(pn.lesionSegment.strip())
        result, nodes = run_check_on_nodes(
            scene, moduleLogics(), sct_node=pn.sct, roi_node=pn.segmentation, ct_node=pn.ct,
            roi_segment_ids=[segmentId], t2star_node=pn.t2star, t2star_sequence=pn.t2starSequence,
            roi_frame=pn.roiFrame, params=toLibParameters(pn.params, PARAMETER_MIRRORS),
            progress=progress or (lambda fraction, message: None))
        for node in nodes.values():
            node.SetAttribute(ATTR_CREATED_BY, STAGE)
        pn.difference = nodes.get("sct_difference")
        pn.measurements = nodes.get("sct_table")
        logging.info("SyntheticCTCheck: %s", result.section.get("verdict"))
        return result.section

    @staticmethod
    def showDifference(pn) -> None:
        """CT in the background, the CT - sCT difference (diverging color map) on top."""
        background = pn.ct or pn.sct
        if pn.difference is not None:
            slicer.util.setSliceViewerLayers(background=background, foreground=pn.difference,
                                             foregroundOpacity=0.5, fit=True)
        else:
            slicer.util.setSliceViewerLayers(background=background, fit=True)


#
# SyntheticCTCheckTest
#


class SyntheticCTCheckTest(ScriptedLoadableModuleTest):
    """Self-test on the calcified-meningioma phantom: the synthetic CT must be flagged."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_CalcifiedMeningiomaIsFlagged()

    def test_CalcifiedMeningiomaIsFlagged(self):
        """A densely calcified meningioma the synthetic CT misses is flagged as a disagreement."""
        self.delayDisplay("Generating the phantom")
        ensureDependencies("SyntheticCTCheck self-test")
        from SpinePlannerLib.mrml.logic import add_phantom_to_scene
        from SpinePlannerLib.phantom.case import generate_phantom

        case = generate_phantom("idem-calcified", seed=0)
        inputs = add_phantom_to_scene(slicer.mrmlScene, case, moduleLogics(), labels=("tumor",), tumor_seed=False)
        logic = SyntheticCTCheckLogic()
        pn = logic.getParameterNode()
        pn.ct, pn.sct = inputs.volumes["ct"], inputs.volumes["sct"]
        pn.segmentation = inputs.segmentation
        pn.lesionSegment = "tumor"
        pn.roiFrame = "mri"
        ok, message = logic.validateInputs(pn)
        self.assertTrue(ok, message)
        self.delayDisplay("Checking")
        section = logic.process(pn)
        self.assertEqual(section["disagreement"], case.truth["expected"]["sct_disagreement"])
        self.assertTrue(section["disagreement"])
        self.assertTrue(flagTexts(section))
        self.assertIsNotNone(pn.difference)
        self.assertIsNotNone(pn.measurements)
        self.delayDisplay("Test passed")
