"""SpinePlanner: spinal tumor surgery planning in 3D Slicer (thin shell over SpinePlannerLib).

The module collects the case's images by role, a tumor seed point and an optional
segmentation, runs the planning stages of ``SpinePlannerLib`` (segmentation, tumor measurement,
tractography, synthetic-CT check, vessels) and shows the results in the scene. Everything below
is GUI plumbing; the computation lives in ``SpinePlannerLib`` and runs headless too
(``spineplan`` command).
"""

import collections.abc
import dataclasses
import importlib
import logging
import os
import pathlib
from typing import Annotated, Optional

import slicer
import vtk
from slicer import (
    vtkMRMLDiffusionWeightedVolumeNode,
    vtkMRMLMarkupsFiducialNode,
    vtkMRMLScalarVolumeNode,
    vtkMRMLSegmentationNode,
    vtkMRMLTableNode,
)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper, parameterPack
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

VOLUME_ROLES = ("t2", "t1", "t1c", "stir", "ct", "sct", "angio")
"""Scalar volume roles, in the order that picks the reference grid (then ``dwi``)."""

ANATOMICAL_ROLES = ("t2", "t1", "t1c", "ct")

PHANTOM_SAMPLE_CATEGORY = "Spine tumor phantoms"
PHANTOM_SAMPLE_KINDS = (
    "intramedullary-displacing",
    "intramedullary-infiltrative",
    "intramedullary-crossing",
    "idem-calcified",
    "idem-soft",
    "idem-faint",
    "extradural-lytic",
    "intramedullary-cystic",
)
"""Phantom kinds offered in the Sample Data module (= ``SpinePlannerLib.phantom.case.PHANTOM_KINDS``;
a static test keeps them equal)."""


#
# SpinePlanner
#


class SpinePlanner(ScriptedLoadableModule):
    """Module description shown in Slicer (see ScriptedLoadableModule)."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Spine Tumor Planner")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Surgical Planning")]
        self.parent.dependencies = []
        self.parent.contributors = ["SpineTumorPlanner developers"]
        self.parent.helpText = _("""
Plan the resection of a spinal tumor from the case's MRI, CT, synthetic CT, diffusion MRI and
angiography: segment the cord, thecal sac, vertebrae and the tumor (from one seed point), measure
the tumor and classify its compartment, relate the cord tracts to the tumor (DTI), check whether a
synthetic CT misses a calcified lesion, and map the vessels feeding the tumor.
Every statement comes with the numbers behind it; thresholds are documented settings, not evidence.
Results are decision support for a neurosurgeon, never a diagnosis.
""")
        self.parent.acknowledgementText = _("""
Built on 3D Slicer, DIPY, SimpleITK, scikit-image and nibabel. The digital spine-tumor phantom
(Sample Data, category "Spine tumor phantoms") is generated locally by the extension.
""")
        slicer.app.connect("startupCompleted()", registerSampleData)


#
# Shared shell helpers (also used by the DTITractography and SyntheticCTCheck modules)
#


def moduleLogics() -> dict:
    """The module logics the Lib's L2 functions take (the same names as in the headless core)."""
    return {
        "Colors": slicer.modules.colors.logic(),
        "Volumes": slicer.modules.volumes.logic(),
        "Segmentations": slicer.modules.segmentations.logic(),
        "Markups": slicer.modules.markups.logic(),
        "Models": slicer.modules.models.logic(),
        "SubjectHierarchy": slicer.modules.subjecthierarchy.logic(),
    }


def ensureDependencies(requester: str = "SpinePlanner") -> None:
    """Install the Python packages the Lib needs, at the point of use (never at import or setup).

    Slicer >= 5.11: ``slicer.packaging.pip_ensure`` (asks before installing). Older Slicer: the
    missing packages are listed and installed with ``slicer.util.pip_install`` after the user
    confirms. numpy, scipy and SimpleITK are never reinstalled (Slicer bundles them).
    """
    from SpinePlannerLib.gui.dependencies import SLICER_REQUIREMENTS, missing_requirements

    if (slicer.app.majorVersion, slicer.app.minorVersion) >= (5, 11):
        try:
            packaging = importlib.import_module("slicer.packaging")
        except ImportError:
            packaging = None
        if packaging is not None and hasattr(packaging, "pip_ensure"):
            packaging.pip_ensure(list(SLICER_REQUIREMENTS), requester=requester)
            return
    missing = missing_requirements(SLICER_REQUIREMENTS)
    if not missing:
        return
    question = _("{requester} needs these Python packages, which are not installed yet:\n\n{packages}\n\n"
                 "Install them now? (This may take a few minutes.)").format(requester=requester,
                                                                            packages="\n".join(missing))
    if not slicer.util.confirmOkCancelDisplay(question):
        raise RuntimeError(_("Required Python packages are not installed: {packages}").format(
            packages=", ".join(missing)))
    slicer.util.pip_install(" ".join(missing))


def _plainValue(value):
    """Parameter-node containers (observed lists, dicts) as plain Python values."""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return tuple(_plainValue(v) for v in value)
    if isinstance(value, collections.abc.Mapping):
        return {k: _plainValue(v) for k, v in value.items()}
    if isinstance(value, collections.abc.MutableSequence):
        return [_plainValue(v) for v in value]
    return value


def toLibParameters(pack, mirrors: dict):
    """The Lib dataclass a parameter pack mirrors, built field by field in one call.

    ``mirrors`` maps pack class names to Lib dataclass paths (the module's ``PARAMETER_MIRRORS``);
    nested packs become nested dataclasses. The dataclass validates itself (``ValueError``).
    """
    packType = next(c for c in type(pack).__mro__ if c.__name__ in mirrors)
    moduleName, _dot, className = mirrors[packType.__name__].rpartition(".")
    libClass = getattr(importlib.import_module(moduleName), className)
    values = {}
    for f in dataclasses.fields(libClass):
        value = getattr(pack, f.name)
        values[f.name] = toLibParameters(value, mirrors) if hasattr(value, "allParameters") else _plainValue(value)
    return libClass(**values)


class StageProgress:
    """Turns the Lib's ``progress(fraction, message)`` callbacks into a progress bar.

    Used as ``progress_factory``: calling it with a stage name returns that stage's callback.
    This is the only place where ``processEvents`` runs (never inside the Lib).
    """

    def __init__(self, progressBar, statusLabel, stageNames):
        self.progressBar = progressBar
        self.statusLabel = statusLabel
        self.stageNames = list(stageNames)
        self.progressBar.value = 0

    def __call__(self, stageName):
        index = self.stageNames.index(stageName) if stageName in self.stageNames else len(self.stageNames) - 1

        def progress(fraction, message):
            fraction = min(max(float(fraction), 0.0), 1.0)
            self.progressBar.value = int(round(100.0 * (index + fraction) / max(len(self.stageNames), 1)))
            self.statusLabel.text = f"{stageName}: {message}"
            slicer.app.processEvents()

        return progress

    def done(self, message):
        self.progressBar.value = 100
        self.statusLabel.text = message


class ParameterNodeWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Slicer's scripted-module widget template, shared by the extension's three modules.

    Loads ``Resources/UI/<uiName>.ui``, binds its widgets to the parameter node with
    ``connectGui`` (``SlicerParameterName`` properties in the .ui), follows scene close and module
    enter/exit, and calls :meth:`updateGui` whenever the parameter node changes. Subclasses set
    ``uiName``, implement :meth:`createLogic`, :meth:`connectWidgets` and :meth:`updateGui`.
    """

    uiName = ""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath(f"UI/{self.uiName}.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = self.createLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.connectWidgets()
        self.initializeParameterNode()

    def createLogic(self):
        raise NotImplementedError

    def connectWidgets(self) -> None:
        """Connect buttons to their handlers (bound parameters need no connection)."""

    def updateGui(self) -> None:
        """Update what is not bound to a parameter (button states, tooltips) from the parameter node."""

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._onParameterNodeModified()

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        if self._parameterNode is not None:
            self.updateGui()


def resultsHtml(plan: dict, sections=()) -> str:
    """Stage statuses, warnings and the headline numbers of ``plan`` as rich text."""
    import html

    lines = []
    for name, record in (plan.get("stages") or {}).items():
        reason = f" ({html.escape(record.get('reason', ''))})" if record.get("reason") else ""
        lines.append(f"<b>{html.escape(name)}</b>: {html.escape(record.get('status', ''))}{reason}")
    tumor = plan.get("tumor") or {}
    if "volume_ml" in tumor and (not sections or "tumor" in sections):
        lines.append(_("Tumor: {volume} mL, axial {axial} mm x cranio-caudal {cc} mm, {compartment}").format(
            volume=tumor.get("volume_ml"), axial=tumor.get("max_axial_diameter_mm"),
            cc=tumor.get("craniocaudal_extent_mm"), compartment=html.escape(str(tumor.get("compartment")))))
    for warning in plan.get("warnings") or []:
        lines.append(f"<span style='color:#b35900'>&#9888; {html.escape(warning)}</span>")
    return "<br>".join(lines) or _("No results yet.")


#
# Register sample data sets in Sample Data module
#


def registerSampleData():
    """Offer the digital spine-tumor phantom kinds in the Sample Data module.

    The phantom is generated on this computer, not downloaded: each entry has a custom loader
    (:func:`loadPhantomSample`) that generates the case into Slicer's cache with SHA-256 digests
    computed at generation (``SHA256SUMS`` beside the files), verifies them on every later load
    (a damaged or outdated cache is regenerated) and loads the images, the DWI and a tumor seed.
    The ``uris`` below only identify the generator; nothing is fetched from them.
    """
    import SampleData

    iconPath = os.path.join(os.path.dirname(__file__), "Resources", "Icons", "SpinePlanner.png")
    for kind in PHANTOM_SAMPLE_KINDS:
        SampleData.SampleDataLogic.registerCustomSampleDataSource(
            category=PHANTOM_SAMPLE_CATEGORY,
            sampleName=f"SpinePhantom-{kind}",
            uris=f"spineplan-phantom:{kind}?seed=0",
            fileNames=f"SpinePhantom-{kind}-seed0",
            nodeNames=f"SpinePhantom-{kind}",
            thumbnailFileName=iconPath,
            customDownloader=loadPhantomSample,
        )


def loadPhantomSample(source):
    """Sample Data loader: generate/verify the phantom case and load it into the scene."""
    kind = source.sampleName.removeprefix("SpinePhantom-")
    with slicer.util.tryWithErrorDisplay(_("Could not load the spine tumor phantom."), waitCursor=True):
        ensureDependencies("SpinePlanner sample data")
        SpinePlannerLogic().loadPhantom(kind)


#
# Parameter node
#


# BEGIN PARAMETER MIRRORS (mirror the Lib dataclasses field by field; Testing/test_slicer_static_parameters.py checks)


@parameterPack
class CordParamsPack:
    """Mirror of :class:`SpinePlannerLib.segmentation.params.CordParams` (same fields, types and defaults)."""

    working_spacing_mm: float = 0.8
    max_anisotropy: float = 1.6
    cord_area_mm2: tuple[float, float] = (12.0, 260.0)
    min_length_mm: float = 12.0
    min_track_fraction: float = 0.6
    min_contrast: float = 0.15
    boundary_fraction: float = 0.5
    sac_fraction: float = 0.5
    max_sac_radius_mm: float = 11.0
    bone_hu: float = 180.0
    ct_cord_fraction: float = 0.35
    smoothing_mm: float = 0.4


@parameterPack
class TumorParamsPack:
    """Mirror of :class:`SpinePlannerLib.segmentation.params.TumorParams` (same fields, types and defaults)."""

    seed_radius_mm: float = 2.5
    tolerance_sd: float = 2.5
    max_radius_mm: float = 45.0
    opening_mm: float = 1.5
    reconstruction_steps: int = 1
    smoothing_mm: float = 0.3
    low_contrast_sd: float = 2.0
    low_contrast_smoothing_mm: float = 1.0
    ct_dense_hu: float = 80.0
    background_fraction: float = 0.04
    leak_cut_max_mm: float = 6.0
    leak_cut_step_mm: float = 0.5
    disc_barrier: bool = True


@parameterPack
class VertebraeParamsPack:
    """Mirror of :class:`SpinePlannerLib.segmentation.params.VertebraeParams` (same fields, types and defaults)."""

    working_spacing_mm: float = 1.5
    axis_realign_deg: float = 5.0
    bone_hu: float = 200.0
    cancellous_hu: float = 120.0
    spine_radius_mm: float = 55.0
    body_half_width_mm: float = 25.0
    body_depth_mm: float = 70.0
    footprint_hu: float = 90.0
    endplate_hu: float = 150.0
    disc_contrast_hu: float = 50.0
    endplate_window_mm: float = 6.0
    min_disc_score: float = 0.1
    disc_peak_fraction: float = 0.5
    disc_tilt_max_deg: float = 40.0
    disc_tilt_step_deg: float = 5.0
    disc_regularity_weight: float = 2.0
    min_edge_body_pitch: float = 0.6
    disc_box_smoothing_mm: float = 9.0
    disc_search_mm: tuple[float, float] = (15.0, 45.0)
    min_body_height_mm: float = 9.0
    arch_depth_mm: float = 12.0
    arch_half_width_mm: float = 8.0
    arch_marker_half_width_mm: float = 10.0
    min_arch_mm: float = 5.0
    anchor_level: Optional[str] = None  # noqa: UP045 - parameterNodeWrapper needs typing.Optional
    anchor_ras: Optional[tuple[float, float, float]] = None  # noqa: UP045 - parameterNodeWrapper needs typing.Optional
    auto_anchor: bool = True
    sacrum_anchor: bool = True
    sacrum_min_height_mm: float = 35.0
    sacrum_ala_half_width_mm: float = 40.0
    sacrum_iliac_range_mm: tuple[float, float] = (55.0, 160.0)
    sacrum_min_fraction: float = 0.5
    c2_anchor: bool = True
    dens_width_mm: tuple[float, float] = (6.0, 14.0)
    dens_min_height_mm: float = 8.0
    c1_gap_contrast_hu: float = 80.0
    c1_arch_max_depth_mm: float = 10.0
    c1_lateral_mass_mm: float = 25.0
    c2_max_canal_above_mm: float = 30.0


@parameterPack
class VertebraeMRIParamsPack:
    """Mirror of :class:`SpinePlannerLib.segmentation.params.VertebraeMRIParams` (same fields, types and defaults)."""

    working_spacing_mm: float = 1.0
    max_anisotropy: float = 2.0
    centerline_smoothing_mm: float = 10.0
    default_sac_front_mm: float = 7.0
    band_offset_mm: float = 5.0
    band_depth_mm: float = 10.0
    band_half_width_mm: float = 5.0
    level_window_mm: float = 40.0
    disc_search_mm: tuple[float, float] = (12.0, 45.0)
    min_periodicity: float = 0.3
    min_disc_contrast: float = 0.1
    min_body_height_mm: float = 8.0
    smoothing_mm: float = 1.0
    marrow_tolerance_sd: float = 3.0
    marrow_tolerance_fraction: float = 0.15
    body_max_half_width_mm: float = 30.0
    body_max_depth_mm: float = 45.0
    sac_margin_mm: float = 1.0
    opening_mm: float = 2.0
    cortex_mm: float = 1.0
    replaced_marrow_contrast: float = 0.25


@parameterPack
class CystEdemaParamsPack:
    """Mirror of :class:`SpinePlannerLib.segmentation.params.CystEdemaParams` (same fields, types and defaults)."""

    smoothing_mm: float = 0.3
    fluid_fraction_t2: float = 0.7
    fluid_fraction_t1: float = 0.5
    edema_fraction_t2: float = 0.25
    min_enhancement: float = 0.25
    enhancing_fraction: float = 0.5
    adjoin_mm: float = 2.5
    min_cyst_ml: float = 0.03
    min_edema_ml: float = 0.05
    edema_core_mm: float = 1.0
    regrow_steps: int = 2
    search_mm: float = 60.0


@parameterPack
class SegmentationParamsPack:
    """Mirror of :class:`SpinePlannerLib.segmentation.params.SegmentationParams` (same fields, types and defaults)."""

    cord_engine: Annotated[str, Choice(["classical", "monai"])] = "classical"
    tumor_engine: Annotated[str, Choice(["classical", "monai"])] = "classical"
    model_path: Optional[str] = None  # noqa: UP045 - parameterNodeWrapper needs typing.Optional
    python: Optional[str] = None  # noqa: UP045 - parameterNodeWrapper needs typing.Optional
    device: str = "auto"
    foreground_seeds_ras: list[tuple[float, float, float]] = []
    background_seeds_ras: list[tuple[float, float, float]] = []
    cord: CordParamsPack
    tumor: TumorParamsPack
    vertebrae: VertebraeParamsPack
    vertebrae_mri: VertebraeMRIParamsPack
    cyst_edema: CystEdemaParamsPack


@parameterPack
class VesselParamsPack:
    """Mirror of :class:`SpinePlannerLib.vessels.params.VesselParams` (same fields, types and defaults)."""

    modality: Annotated[str, Choice(["auto", "ct", "mr"])] = "auto"
    working_spacing_mm: float = 0.0
    min_working_spacing_mm: float = 0.5
    max_working_voxels: int = 6000000
    roi_margin_mm: float = 30.0
    roi_axial_margin_mm: float = 60.0
    scale_min_mm: float = 0.3
    scale_max_mm: float = 1.6
    n_scales: int = 4
    lumen_min_hu: float = 120.0
    bone_min_hu: float = 700.0
    max_vessel_radius_mm: float = 3.0
    bone_rim_mm: float = 1.25
    bone_tumor_interface_mm: float = 1.5
    soft_tissue_hu: float = 40.0
    vesselness_high: float = 20.0
    vesselness_low: float = 10.0
    min_component_mm3: float = 2.0
    prune_length_mm: float = 2.0
    bridge_gap_mm: float = 5.0
    min_vessel_length_mm: float = 30.0
    max_spacing_mm: float = 1.0
    max_analysable_spacing_mm: float = 2.0
    feeder_margin_mm: float = 3.0
    tumor_exclusion_mm: float = 1.0
    bone_gap_mm: float = 4.0
    merge_distance_mm: float = 3.0
    feeder_min_length_mm: float = 1.5
    asa_max_gap_mm: float = 3.0
    asa_max_lateral_mm: float = 3.0
    asa_max_angle_deg: float = 35.0
    asa_min_length_mm: float = 10.0
    hairpin_max_angle_deg: float = 70.0
    tangent_length_mm: float = 4.0
    register_to_ct: bool = True


@parameterPack
class ClinicalInputsPack:
    """Mirror of :class:`SpinePlannerLib.approach.params.ClinicalInputs` (same fields, types and defaults)."""

    pain: Annotated[Optional[str], Choice(["none", "occasional", "mechanical"])] = None  # noqa: UP045 - parameterNodeWrapper needs typing.Optional
    myelopathy: Optional[bool] = None  # noqa: UP045 - parameterNodeWrapper needs typing.Optional
    histology: Optional[str] = None  # noqa: UP045 - parameterNodeWrapper needs typing.Optional


@parameterPack
class BoneQualityParamsPack:
    """Mirror of :class:`SpinePlannerLib.approach.params.BoneQualityParams` (same fields, types and defaults)."""

    lytic_loss_fraction: float = 0.5
    soft_tissue_hu: float = 40.0
    blastic_rise_hu: float = 200.0
    dominant_fraction: float = 0.7
    minor_fraction: float = 0.15
    bone_margin_mm: float = 2.0


@parameterPack
class CollapseParamsPack:
    """Mirror of :class:`SpinePlannerLib.approach.params.CollapseParams` (same fields, types and defaults)."""

    collapse_min_fraction: float = 0.15
    involved_body_fraction: float = 0.5
    canal_radius_mm: float = 7.0


@parameterPack
class AlignmentParamsPack:
    """Mirror of :class:`SpinePlannerLib.approach.params.AlignmentParams` (same fields, types and defaults)."""

    translation_mm: float = 4.0
    kyphosis_excess_deg: float = 10.0
    scoliosis_deg: float = 10.0


@parameterPack
class PosterolateralParamsPack:
    """Mirror of :class:`SpinePlannerLib.approach.params.PosterolateralParams` (same fields, types and defaults)."""

    zone_front_mm: float = 9.0
    zone_back_mm: float = 12.0
    canal_half_width_mm: float = 7.0
    zone_lateral_mm: float = 30.0
    min_involved_ml: float = 0.1


@parameterPack
class BilskyParamsPack:
    """Mirror of :class:`SpinePlannerLib.approach.params.BilskyParams` (same fields, types and defaults)."""

    sac_indentation_mm: float = 1.0
    sac_deformation_fraction: float = 0.1
    solidity_drop: float = 0.05
    cord_abutment_mm: float = 1.0
    cord_compression_fraction: float = 0.1
    cord_flattening: float = 0.2
    csf_ring_mm: float = 1.5
    csf_visible_min_fraction: float = 0.1
    epidural_band_mm: float = 5.0
    min_epidural_mm2: float = 2.0
    reference_gap_mm: float = 10.0


@parameterPack
class ApproachParamsPack:
    """Mirror of :class:`SpinePlannerLib.approach.params.ApproachParams` (same fields, types and defaults)."""

    bone_quality: BoneQualityParamsPack
    collapse: CollapseParamsPack
    alignment: AlignmentParamsPack
    posterolateral: PosterolateralParamsPack
    bilsky: BilskyParamsPack
    exposure_margin_mm: float = 5.0
    trajectory_clearance_mm: float = 3.0


PARAMETER_MIRRORS = {
    "CordParamsPack": "SpinePlannerLib.segmentation.params.CordParams",
    "TumorParamsPack": "SpinePlannerLib.segmentation.params.TumorParams",
    "VertebraeParamsPack": "SpinePlannerLib.segmentation.params.VertebraeParams",
    "VertebraeMRIParamsPack": "SpinePlannerLib.segmentation.params.VertebraeMRIParams",
    "CystEdemaParamsPack": "SpinePlannerLib.segmentation.params.CystEdemaParams",
    "SegmentationParamsPack": "SpinePlannerLib.segmentation.params.SegmentationParams",
    "VesselParamsPack": "SpinePlannerLib.vessels.params.VesselParams",
    "ClinicalInputsPack": "SpinePlannerLib.approach.params.ClinicalInputs",
    "BoneQualityParamsPack": "SpinePlannerLib.approach.params.BoneQualityParams",
    "CollapseParamsPack": "SpinePlannerLib.approach.params.CollapseParams",
    "AlignmentParamsPack": "SpinePlannerLib.approach.params.AlignmentParams",
    "PosterolateralParamsPack": "SpinePlannerLib.approach.params.PosterolateralParams",
    "BilskyParamsPack": "SpinePlannerLib.approach.params.BilskyParams",
    "ApproachParamsPack": "SpinePlannerLib.approach.params.ApproachParams",
}
"""Parameter pack -> the Lib dataclass it mirrors (checked by the static tests)."""
# END PARAMETER MIRRORS


@parameterNodeWrapper
class SpinePlannerParameterNode:
    """The module's state, saved with the scene. Inputs by role, the tumor seed, the result
    segmentation and the settings of the segmentation and vessel stages (parameter packs that
    mirror the Lib dataclasses)."""

    t2: vtkMRMLScalarVolumeNode
    t1: vtkMRMLScalarVolumeNode
    t1c: vtkMRMLScalarVolumeNode
    stir: vtkMRMLScalarVolumeNode
    ct: vtkMRMLScalarVolumeNode
    sct: vtkMRMLScalarVolumeNode
    angio: vtkMRMLScalarVolumeNode
    dwi: vtkMRMLDiffusionWeightedVolumeNode
    tumorSeed: vtkMRMLMarkupsFiducialNode
    segmentation: vtkMRMLSegmentationNode
    replaceEdits: bool = False
    measurements: vtkMRMLTableNode
    showVessels: bool = True
    exportFolder: pathlib.Path
    exportDeidentify: bool = False
    segmentationParams: SegmentationParamsPack
    vesselParams: VesselParamsPack
    clinicalInputs: ClinicalInputsPack
    approachParams: ApproachParamsPack


#
# SpinePlannerWidget
#


class SpinePlannerWidget(ParameterNodeWidget):
    """GUI: widgets bound to the parameter node through ``SlicerParameterName`` (see the .ui)."""

    uiName = "SpinePlanner"

    def createLogic(self):
        return SpinePlannerLogic()

    def connectWidgets(self) -> None:
        self.ui.tumorSeedPlaceWidget.placeMultipleMarkups = slicer.qSlicerMarkupsPlaceWidget.ForcePlaceSingleMarkup
        self.ui.tumorSeedPlaceWidget.buttonsVisible = False
        self.ui.tumorSeedPlaceWidget.placeButton().show()
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegmentButton)
        self.ui.editSegmentationButton.connect("clicked(bool)", self.onEditSegmentationButton)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.exportNavigationButton.connect("clicked(bool)", self.onExportNavigationButton)

    def updateGui(self) -> None:
        """Button states, the seed place widget and vessel visibility follow the parameter node."""
        pn = self._parameterNode
        self.ui.tumorSeedPlaceWidget.setCurrentNode(pn.tumorSeed)
        ok, message = self.logic.validateInputs(pn)
        self.ui.applyButton.enabled = ok
        self.ui.applyButton.toolTip = message if not ok else _("Run every planning stage the inputs allow")
        canSegment, segmentMessage = self.logic.validateInputs(pn, needAnatomical=True)
        self.ui.segmentButton.enabled = canSegment
        self.ui.segmentButton.toolTip = segmentMessage if not canSegment else _(
            "Segment cord, thecal sac, vertebrae and the tumor (from the seed), then measure the tumor")
        self.ui.editSegmentationButton.enabled = pn.segmentation is not None
        self.ui.exportButton.enabled = self.logic.lastResult is not None and self.logic.exportFolderIsSet(pn)
        self.ui.exportNavigationButton.enabled = self.ui.exportButton.enabled
        self.logic.showVesselModels(pn.showVessels)

    def _run(self, stages) -> None:
        with slicer.util.tryWithErrorDisplay(_("Planning failed."), waitCursor=True):
            ensureDependencies("SpinePlanner")
            from SpinePlannerLib.planning.registry import stage_names

            progress = StageProgress(self.ui.progressBar, self.ui.statusLabel, [*(stages or stage_names()), "scene"])
            result = self.logic.process(self._parameterNode, stages=stages, progressFactory=progress)
            progress.done(_("Done."))
            self.ui.resultsLabel.text = resultsHtml(result.plan)
            self.ui.resultsTableView.setMRMLTableNode(result.measurements)
            self.logic.showResults(self._parameterNode, result)
            self.updateGui()

    def onApplyButton(self) -> None:
        """Run every planning stage (reads the parameter node only)."""
        self._run(None)

    def onSegmentButton(self) -> None:
        """Run the segmentation and the tumor measurement (reads the parameter node only)."""
        self._run(["segmentation", "tumor_measurement"])

    def onEditSegmentationButton(self) -> None:
        """Open the Segment Editor on the result segmentation, with the reference image as source."""
        pn = self._parameterNode
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.SegmentEditorWidget.editor
        editor.setSegmentationNode(pn.segmentation)
        source = self.logic.referenceVolume(pn)
        if source is not None:
            if hasattr(editor, "setSourceVolumeNode"):
                editor.setSourceVolumeNode(source)
            else:  # Slicer < 5.4
                editor.setMasterVolumeNode(source)

    def onExportButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            path = self.logic.export(self._parameterNode)
            self.ui.statusLabel.text = _("Plan written to {path}").format(path=path)

    def onExportNavigationButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=True):
            manifest = self.logic.exportForNavigation(self._parameterNode)
            self.ui.statusLabel.text = _("Navigation export written to {out}").format(out=manifest.get("out", ""))


#
# SpinePlannerLogic
#


class SpinePlannerLogic(ScriptedLoadableModuleLogic):
    """Thin adapter: reads the parameter node, calls ``SpinePlannerLib.mrml.logic`` with
    ``slicer.mrmlScene`` and the module logics, and keeps the last result for export."""

    lastResult = None

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SpinePlannerParameterNode(super().getParameterNode())

    @staticmethod
    def referenceVolume(pn):
        """The input whose grid the label maps use (first of t2, t1, t1c, ct, stir, sct, angio)."""
        for role in (*ANATOMICAL_ROLES, "stir", "sct", "angio"):
            if getattr(pn, role) is not None:
                return getattr(pn, role)
        return None

    def exportForNavigation(self, pn) -> dict:
        """Write the plan (:meth:`export`), then its DICOM objects and meshes into ``<folder>/export``
        through :mod:`SpinePlannerLib.export.slicer_bridge`; returns the export manifest."""
        from SpinePlannerLib.export.slicer_bridge import export_from_scene

        plan_json = self.export(pn)
        return export_from_scene(plan_json.parent, self.referenceVolume(pn), deidentify=pn.exportDeidentify,
                                 dicom_database=getattr(slicer, "dicomDatabase", None))

    @staticmethod
    def exportFolderIsSet(pn) -> bool:
        return pn.exportFolder is not None and str(pn.exportFolder) not in ("", ".")

    def validateInputs(self, pn, *, needAnatomical: bool = False):
        """Whether the parameter node can be planned: ``(ok, message)``."""
        volumes = [role for role in VOLUME_ROLES if getattr(pn, role) is not None]
        if not volumes and pn.dwi is None:
            return False, _("Select at least one input image.")
        anatomical = [role for role in volumes if role in ANATOMICAL_ROLES]
        if needAnatomical and not anatomical:
            return False, _("Segmentation needs a T2, T1, contrast T1 or CT image.")
        if pn.tumorSeed is not None and pn.tumorSeed.GetNumberOfDefinedControlPoints() > 0 and not volumes:
            return False, _("The tumor seed needs an anatomical image (T2, T1, contrast T1 or CT).")
        for pack in (pn.segmentationParams, pn.vesselParams, pn.clinicalInputs, pn.approachParams):
            try:
                toLibParameters(pack, PARAMETER_MIRRORS)
            except (ValueError, TypeError) as exc:
                return False, _("Invalid setting: {error}").format(error=exc)
        return True, ""

    def sceneInputs(self, pn):
        from SpinePlannerLib.mrml.logic import SceneInputs

        return SceneInputs(
            volumes={role: getattr(pn, role) for role in VOLUME_ROLES if getattr(pn, role) is not None},
            dwi=pn.dwi, segmentation=pn.segmentation, replace_edits=pn.replaceEdits,
            tumor_seed=pn.tumorSeed if pn.tumorSeed is not None and pn.tumorSeed.GetNumberOfDefinedControlPoints()
            else None)

    def process(self, pn, *, stages=None, progressFactory=None):
        """Plan the case of the parameter node into ``slicer.mrmlScene``; returns the Lib's
        ``SceneResult`` and stores the result segmentation and measurement table in ``pn``."""
        ok, message = self.validateInputs(pn)
        if not ok:
            raise ValueError(message)
        from SpinePlannerLib.mrml.logic import plan_in_scene

        params = {
            "segmentation": toLibParameters(pn.segmentationParams, PARAMETER_MIRRORS),
            "vessels": toLibParameters(pn.vesselParams, PARAMETER_MIRRORS),
            "clinical": toLibParameters(pn.clinicalInputs, PARAMETER_MIRRORS),
            "approach": toLibParameters(pn.approachParams, PARAMETER_MIRRORS),
        }
        if self.lastResult is not None:
            self.lastResult.cleanup()
            SpinePlannerLogic.lastResult = None
        result = plan_in_scene(slicer.mrmlScene, self.sceneInputs(pn), logics=moduleLogics(),
                               app_logic=slicer.app.applicationLogic(), params=params, only=stages,
                               progress_factory=progressFactory, measurements=pn.measurements)
        SpinePlannerLogic.lastResult = result
        pn.segmentation = result.segmentation
        pn.measurements = result.measurements
        logging.info("SpinePlanner: %s", {k: v["status"] for k, v in result.plan["stages"].items()})
        return result

    def showResults(self, pn, result) -> None:
        """Reference image in the slice views, the segmentation as surfaces in 3D."""
        reference = self.referenceVolume(pn)
        if reference is not None:
            slicer.util.setSliceViewerLayers(background=reference, fit=True)
        if result.segmentation is not None:
            result.segmentation.CreateClosedSurfaceRepresentation()
        self.showVesselModels(pn.showVessels)

    @staticmethod
    def showVesselModels(visible: bool) -> None:
        """Show or hide the nodes the vessels stage added (models colored by role, feeder points)."""
        from_lib = "SpinePlanner.createdBy"
        for node in slicer.util.getNodesByClass("vtkMRMLDisplayableNode"):
            if node.GetAttribute(from_lib) == "vessels" and node.GetDisplayNode() is not None:
                node.GetDisplayNode().SetVisibility(bool(visible))

    def export(self, pn) -> pathlib.Path:
        """Write plan.json, labels/ and the stages' export files of the last run to the export folder."""
        if self.lastResult is None:
            raise ValueError(_("Plan the case first."))
        if not self.exportFolderIsSet(pn):
            raise ValueError(_("Choose an export folder."))
        from SpinePlannerLib.mrml.logic import export_plan

        return export_plan(self.lastResult, pn.exportFolder)

    def loadPhantom(self, kind: str, seed: int = 0):
        """Generate (or reuse, verified by checksum) a phantom case, load it and select it as input."""
        from SpinePlannerLib.mrml.logic import load_phantom_sample

        cacheDir = pathlib.Path(slicer.mrmlScene.GetCacheManager().GetRemoteCacheDirectory()) / "SpineTumorPhantoms"
        inputs = load_phantom_sample(slicer.mrmlScene, moduleLogics(), cacheDir, kind, seed=seed)
        pn = self.getParameterNode()
        for role in VOLUME_ROLES:
            setattr(pn, role, inputs.volumes.get(role))
        pn.dwi = inputs.dwi
        pn.tumorSeed = inputs.tumor_seed
        reference = self.referenceVolume(pn)
        if reference is not None:
            slicer.util.setSliceViewerLayers(background=reference, fit=True)
        return inputs


#
# SpinePlannerTest
#


class SpinePlannerTest(ScriptedLoadableModuleTest):
    """Self-test on the digital phantom: plans it in the Slicer scene and checks the results."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_PlanPhantomInScene()
        self.setUp()
        self.test_EditedSegmentIsKept()

    def _loadPhantom(self, kind="intramedullary-displacing"):
        """Generate a phantom in memory, add its images, DWI and tumor seed, select them as inputs."""
        ensureDependencies("SpinePlanner self-test")
        from SpinePlannerLib.mrml.logic import add_phantom_to_scene
        from SpinePlannerLib.phantom.case import generate_phantom

        case = generate_phantom(kind, seed=0)
        inputs = add_phantom_to_scene(slicer.mrmlScene, case, moduleLogics())
        pn = SpinePlannerLogic().getParameterNode()
        for role in VOLUME_ROLES:
            setattr(pn, role, inputs.volumes.get(role))
        pn.dwi = inputs.dwi
        pn.tumorSeed = inputs.tumor_seed
        pn.segmentation = None
        pn.replaceEdits = False
        return pn, case.truth

    def test_PlanPhantomInScene(self):
        self.delayDisplay("Generating the phantom")
        pn, truth = self._loadPhantom()
        logic = SpinePlannerLogic()
        ok, message = logic.validateInputs(pn)
        self.assertTrue(ok, message)
        self.delayDisplay("Planning")
        result = logic.process(pn, stages=["segmentation", "tumor_measurement"])
        self.assertEqual(result.plan["stages"]["segmentation"]["status"], "done")
        self.assertIsNotNone(pn.segmentation)
        segmentation = pn.segmentation.GetSegmentation()
        names = {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}
        self.assertIn("tumor", names)
        self.assertIn("cord", names)
        measured = result.plan["tumor"]["volume_ml"]
        expected = truth["tumor"]["volume_ml"]
        self.assertLess(abs(measured - expected) / expected, 0.35, f"tumor {measured} mL vs truth {expected} mL")
        self.assertGreater(pn.measurements.GetNumberOfRows(), 3)
        self.delayDisplay("Test passed")

    def test_EditedSegmentIsKept(self):
        """A tumor segment edited in the Segment Editor survives a re-run (unless replace edits)."""
        import numpy as np

        self.delayDisplay("Planning, editing the tumor segment, planning again")
        pn, _truth = self._loadPhantom()
        logic = SpinePlannerLogic()
        logic.process(pn, stages=["segmentation", "tumor_measurement"])
        reference = logic.referenceVolume(pn)
        tumorId = pn.segmentation.GetSegmentation().GetSegmentIdBySegmentName("tumor")
        generated = int(np.count_nonzero(slicer.util.arrayFromSegmentBinaryLabelmap(pn.segmentation, tumorId, reference)))
        # the "edit": replace the tumor by a 3x3x3-voxel cube around the seed
        rasToIjk = vtk.vtkMatrix4x4()
        reference.GetRASToIJKMatrix(rasToIjk)
        seed = [0.0, 0.0, 0.0]
        pn.tumorSeed.GetNthControlPointPositionWorld(0, seed)
        i, j, k = (int(round(v)) for v in rasToIjk.MultiplyPoint([*seed, 1.0])[:3])
        edited = np.zeros(slicer.util.arrayFromVolume(reference).shape, np.uint8)
        edited[k - 1:k + 2, j - 1:j + 2, i - 1:i + 2] = 1
        slicer.util.updateSegmentBinaryLabelmapFromArray(edited, pn.segmentation, tumorId, reference)

        result = logic.process(pn, stages=["segmentation", "tumor_measurement"])
        after = slicer.util.arrayFromSegmentBinaryLabelmap(pn.segmentation, tumorId, reference)
        self.assertIn("tumor", result.kept_edits)
        self.assertEqual(int(np.count_nonzero(after)), 27)
        self.assertNotEqual(generated, 27)

        pn.replaceEdits = True
        result = logic.process(pn, stages=["segmentation", "tumor_measurement"])
        tumorId = pn.segmentation.GetSegmentation().GetSegmentIdBySegmentName("tumor")
        after = slicer.util.arrayFromSegmentBinaryLabelmap(pn.segmentation, tumorId, reference)
        self.assertEqual(result.kept_edits, [])
        self.assertEqual(int(np.count_nonzero(after)), generated)
        self.delayDisplay("Test passed")
