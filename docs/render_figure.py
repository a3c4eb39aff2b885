"""Render a 3D overview of a planned case (scene.mrb) to PNG, offscreen (VTK EGL).

Used to make the README picture:  python docs/render_figure.py demo_out/scene.mrb docs/demo.png
Not installed, not part of the tests (offscreen OpenGL is not available on every machine).
"""

from __future__ import annotations

import sys

import vtk

from SpinePlannerLib.mrml.headless import load_scene_from_mrb

SEGMENT_STYLE = {  # name: (rgb, opacity)
    "bone": ((0.93, 0.9, 0.82), 0.18),
    "csf": ((0.55, 0.8, 1.0), 0.08),
    "cord": ((1.0, 0.85, 0.5), 0.2),
    "tumor": ((1.0, 0.1, 0.1), 1.0),
}
MODEL_STYLE = {"Cord tracts": 0.12, "Vessels": 0.6, "Tumor feeders": 1.0, "Anterior spinal artery": 1.0}


def _actor(poly, rgb=None, opacity=1.0, scalars=False):
    mapper = vtk.vtkPolyDataMapper()
    mapper.SetInputData(poly)
    mapper.SetScalarVisibility(bool(scalars))
    if scalars:  # per-point RGB (e.g. tract direction colours), not a lookup table
        mapper.SetColorModeToDirectScalars()
    actor = vtk.vtkActor()
    actor.SetMapper(mapper)
    if rgb is not None:
        actor.GetProperty().SetColor(*rgb)
    actor.GetProperty().SetOpacity(opacity)
    return actor


def render(mrb: str, png: str, size=(900, 1100)) -> None:
    scene = load_scene_from_mrb(mrb).scene
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(0.08, 0.09, 0.12)
    renderer.SetUseDepthPeeling(True)
    seg = scene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
    if seg is not None:
        seg.CreateClosedSurfaceRepresentation()
        segmentation = seg.GetSegmentation()
        for i in range(segmentation.GetNumberOfSegments()):
            seg_id = segmentation.GetNthSegmentID(i)
            name = segmentation.GetSegment(seg_id).GetName()
            if name not in SEGMENT_STYLE:
                continue
            poly = vtk.vtkPolyData()
            seg.GetClosedSurfaceRepresentation(seg_id, poly)
            rgb, opacity = SEGMENT_STYLE[name]
            renderer.AddActor(_actor(poly, rgb, opacity))
    for name, opacity in MODEL_STYLE.items():
        node = scene.GetFirstNodeByName(name)
        if node is None or node.GetPolyData() is None:
            continue
        display = node.GetDisplayNode()
        rgb = display.GetColor() if display is not None else (1, 1, 1)
        tube = node.GetPolyData()
        renderer.AddActor(_actor(tube, rgb, opacity, scalars=name == "Cord tracts"))
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetMultiSamples(0)  # translucent surfaces vanish with multisampling
    window.SetAlphaBitPlanes(1)
    window.AddRenderer(renderer)
    window.SetSize(*size)
    camera = renderer.GetActiveCamera()
    renderer.ResetCamera()
    camera.SetViewUp(0, 0, 1)
    focal = camera.GetFocalPoint()
    camera.SetPosition(focal[0] - 170, focal[1] - 90, focal[2] + 25)  # left-posterior oblique
    renderer.ResetCamera()
    camera.Zoom(1.4)
    window.Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.Update()
    writer = vtk.vtkPNGWriter()
    writer.SetFileName(png)
    writer.SetInputConnection(grab.GetOutputPort())
    writer.Write()


if __name__ == "__main__":
    render(sys.argv[1], sys.argv[2])
