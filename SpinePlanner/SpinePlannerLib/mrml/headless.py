"""A headless Slicer application core built from slicer-core (L2).

Inside the Slicer desktop the shells pass ``slicer.mrmlScene``; the CLI and the tests call
:func:`create_core` to get a scene with the same logics Slicer registers for the modules we use
(colors, volumes, segmentations with closed-surface converter rules, markups, models, subject
hierarchy, terminologies where available).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field

_converters_registered = False


def quiet_vtk_output() -> None:
    """Route VTK/MRML info and warning text to a string buffer instead of the terminal."""
    import vtk

    window = vtk.vtkStringOutputWindow()
    vtk.vtkOutputWindow.SetInstance(window)
    # MRML also logs through vtkLogger (loguru) straight to stderr
    vtk.vtkLogger.SetStderrVerbosity(vtk.vtkLogger.VERBOSITY_ERROR)


def register_segmentation_converters() -> None:
    """Register labelmap <-> closed-surface conversion rules (idempotent).

    slicer-core does not register them on import; without them closed-surface
    representations silently fail to build.
    """
    global _converters_registered
    if _converters_registered:
        return
    from slicer import (
        vtkBinaryLabelmapToClosedSurfaceConversionRule,
        vtkClosedSurfaceToBinaryLabelmapConversionRule,
        vtkSegmentationConverterFactory,
    )

    factory = vtkSegmentationConverterFactory.GetInstance()
    factory.RegisterConverterRule(vtkBinaryLabelmapToClosedSurfaceConversionRule())
    factory.RegisterConverterRule(vtkClosedSurfaceToBinaryLabelmapConversionRule())
    _converters_registered = True


@dataclass
class SlicerCore:
    """Scene + application logic + module logics of a headless Slicer.

    Attributes
    ----------
    scene : vtkMRMLScene
    app_logic : vtkSlicerApplicationLogic
    logics : dict[str, vtkSlicerModuleLogic]
        By module name: ``Colors``, ``Volumes``, ``Segmentations``, ``Markups``, ``Models``,
        ``SubjectHierarchy``. Kept here so Python holds references to them.
    """

    scene: object
    app_logic: object
    logics: dict = field(default_factory=dict)
    _keep: list = field(default_factory=list)

    def logic(self, name: str):
        return self.logics[name]


def attach_io_managers(scene) -> list:
    """Give ``scene`` the cache and data-IO managers that ``ReadFromMRB`` needs; returns
    the objects that must stay referenced while the scene lives."""
    from slicer import vtkCacheManager, vtkDataIOManager

    cache = vtkCacheManager()
    folder = tempfile.mkdtemp(prefix="spineplan-cache-")
    cache.SetRemoteCacheDirectory(folder)
    weakref.finalize(cache, shutil.rmtree, folder, True)  # removed with the scene (or at exit)
    dio = vtkDataIOManager()
    dio.SetCacheManager(cache)
    scene.SetCacheManager(cache)
    scene.SetDataIOManager(dio)
    return [cache, dio]


def create_core(*, quiet: bool = True) -> SlicerCore:
    """Build a headless Slicer application core.

    Parameters
    ----------
    quiet : bool
        Send VTK's informational output (e.g. zip progress when writing .mrb) to a buffer.
    """
    from slicer import (
        vtkMRMLScene,
        vtkSlicerApplicationLogic,
        vtkSlicerMarkupsLogic,
        vtkSlicerModelsLogic,
        vtkSlicerSegmentationsModuleLogic,
        vtkSlicerSubjectHierarchyModuleLogic,
        vtkSlicerVolumesLogic,
    )
    from vtkmodules.vtkCommonCore import vtkCollection

    if quiet:
        quiet_vtk_output()
    register_segmentation_converters()
    scene = vtkMRMLScene()
    app = vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    colors = app.GetColorLogic()
    colors.SetMRMLScene(scene)
    colors.AddDefaultColorNodes()
    app.SetSliceLogics(vtkCollection())
    app.SetViewLogics(vtkCollection())
    core = SlicerCore(scene, app)
    core.logics["Colors"] = colors
    app.SetModuleLogic("Colors", colors)
    for name, logic in (
        ("SubjectHierarchy", vtkSlicerSubjectHierarchyModuleLogic()),
        ("Volumes", vtkSlicerVolumesLogic()),
        ("Segmentations", vtkSlicerSegmentationsModuleLogic()),
        ("Markups", vtkSlicerMarkupsLogic()),
        ("Models", vtkSlicerModelsLogic()),
    ):
        logic.SetMRMLApplicationLogic(app)
        logic.SetMRMLScene(scene)
        app.SetModuleLogic(name, logic)
        core.logics[name] = logic
    core._keep.extend(attach_io_managers(scene))
    return core


def load_scene_from_mrb(path) -> SlicerCore:
    """A fresh headless core with the scene read from a ``.mrb`` bundle."""
    core = create_core()
    path = os.path.abspath(path)  # the scene reader changes the working directory
    cwd = os.getcwd()
    try:
        ok = core.scene.ReadFromMRB(path)
    finally:
        os.chdir(cwd)
    if not ok:
        raise RuntimeError(f"could not read Slicer scene bundle {path}")
    return core
