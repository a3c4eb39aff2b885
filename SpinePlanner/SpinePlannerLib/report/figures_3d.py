"""3D views of the plan: vertebrae, thecal sac, cord, tumor, tracts coloured by direction, vessels
with feeders highlighted; seen from the left and from behind.

Rendered offscreen with VTK (EGL through Mesa: ``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow``,
set here unless the caller chose another window class) in parallel projection, so one scale bar
holds for the whole picture; level names, the orientation marker (R/A/S arrows) and the scale
bar are drawn over the rendering from the same camera. When no offscreen OpenGL works, the
picture falls back to coloured projections of the label maps (and says so in its title).
Surfaces: marching cubes on each label map smoothed with sigma 0.6 voxel; coordinates RAS mm.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import ndimage

from .mplfig import new_figure, png_bytes
from .planfolder import COLORS, PlanFolder

VIEW_PX = (620, 820)  # width, height of one rendered view (pixels)
# name -> (direction the camera looks along, view up), RAS
VIEWS = {"from the left": ((1.0, 0.0, 0.0), (0.0, 0.0, 1.0)),
         "from behind": ((0.0, 1.0, 0.0), (0.0, 0.0, 1.0))}
SURFACES = (("bone", 0.15), ("csf", 0.12), ("cord", 0.2), ("cyst", 0.6), ("edema", 0.35), ("tumor", 1.0))


def _mesh(mask_vol, value=None, sigma=0.6):
    """(vertices RAS mm (n, 3), triangles (m, 3)) of a label map (or of ``== value``)."""
    from skimage.measure import marching_cubes

    m = (mask_vol.array == value) if value is not None else (mask_vol.array > 0)
    if m.sum() < 8:
        return None
    f = ndimage.gaussian_filter(np.pad(m, 2).astype(np.float32), sigma)
    verts, faces, _, _ = marching_cubes(f, 0.5)
    return mask_vol.ijk_to_ras(verts - 2), faces


def _polydata(verts, faces=None, lines=None, colors=None):
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray

    pd = vtk.vtkPolyData()
    pts = vtk.vtkPoints()
    pts.SetData(numpy_to_vtk(np.ascontiguousarray(verts, dtype=np.float64), deep=True))
    pd.SetPoints(pts)
    cells = vtk.vtkCellArray()
    if faces is not None:
        conn = np.hstack([np.full((len(faces), 1), 3), faces]).astype(np.int64).ravel()
        cells.ImportLegacyFormat(numpy_to_vtkIdTypeArray(conn, deep=True))
        pd.SetPolys(cells)
    if lines is not None:
        conn = np.concatenate([np.r_[len(ln), ln] for ln in lines]).astype(np.int64)
        cells.ImportLegacyFormat(numpy_to_vtkIdTypeArray(conn, deep=True))
        pd.SetLines(cells)
    if colors is not None:
        arr = numpy_to_vtk(np.ascontiguousarray(colors, dtype=np.uint8), deep=True)
        arr.SetName("rgb")
        pd.GetPointData().SetScalars(arr)
    return pd


def _actor(pd, color=None, opacity=1.0, *, normals=True):
    import vtk

    if normals and pd.GetNumberOfPolys():
        nf = vtk.vtkPolyDataNormals()
        nf.SetInputData(pd)
        nf.Update()
        pd = nf.GetOutput()
    mapper = vtk.vtkPolyDataMapper()
    mapper.SetInputData(pd)
    mapper.SetScalarVisibility(color is None)
    actor = vtk.vtkActor()
    actor.SetMapper(mapper)
    if color is not None:
        actor.GetProperty().SetColor(*color)
    actor.GetProperty().SetOpacity(opacity)
    return actor


def _tract_actor(streamlines, *, centre=None, look=None):
    """Tracts (every 4th) coloured by direction; with ``look``, only those behind ``centre`` (the far
    half as seen from the camera), so the tumor they are displaced around stays visible."""
    pts, lines, cols, n = [], [], [], 0
    for s in streamlines[::4]:
        if len(s) < 2 or (look is not None and float(np.mean((s - centre) @ look)) < 0):
            continue
        d = np.gradient(s, axis=0)
        d = np.abs(d) / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
        pts.append(s)
        cols.append((255 * d).astype(np.uint8))
        lines.append(np.arange(n, n + len(s)))
        n += len(s)
    if not pts:
        return None
    return _actor(_polydata(np.concatenate(pts), lines=lines, colors=np.concatenate(cols)), normals=False)


def _vessel_actors(folder: PlanFolder):
    import vtk

    actors = []
    for b in folder.centerlines():
        line = vtk.vtkTubeFilter()
        line.SetInputData(_polydata(b["points_ras"], lines=[np.arange(len(b["points_ras"]))]))
        line.SetRadius(max(0.3, 0.5 * (b["diameter_mm"] or 1.0)))
        line.SetNumberOfSides(10)
        line.CappingOn()
        line.Update()
        role = b["role"] if b["role"] in COLORS else "vessel"
        actors.append(_actor(line.GetOutput(), COLORS[role]))
    return actors


def _scene_actors(folder: PlanFolder) -> list:
    actors = []
    for name, opacity in SURFACES:
        lab = folder.label(name)
        mesh = _mesh(lab) if lab is not None else None
        if mesh is not None:
            actors.append(_actor(_polydata(*mesh), COLORS[name], opacity))
    return actors + _vessel_actors(folder)


def _camera_frame(look, up):
    look, up = np.asarray(look, float), np.asarray(up, float)
    right = np.cross(look, up)
    return look, up, right / np.linalg.norm(right)


def _bounds(folder: PlanFolder) -> tuple[np.ndarray, np.ndarray]:
    pts = []
    for name in ("bone", "csf", "cord", "tumor"):
        lab = folder.label(name)
        if lab is not None and np.any(lab.array):
            idx = np.argwhere(lab.array > 0)
            pts.append(lab.ijk_to_ras(np.r_[idx.min(0)[None], idx.max(0)[None]]))
    if not pts:
        c = folder.tumor_centre_ras()
        return c - 40, c + 40
    allp = np.concatenate(pts)
    return allp.min(0), allp.max(0)


def render_views(folder: PlanFolder) -> tuple[list[np.ndarray], dict]:
    """RGB images (H, W, 3) of each view in :data:`VIEWS` and the camera geometry used."""
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    lo, hi = _bounds(folder)
    centre = (lo + hi) / 2
    half_h = 0.55 * float(hi[2] - lo[2]) + 5.0  # parallel scale: half the picture height, mm
    win = vtk.vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetMultiSamples(0)  # translucent surfaces vanish with multisampling on
    win.SetSize(*VIEW_PX)
    ren = vtk.vtkRenderer()
    ren.SetBackground(1, 1, 1)
    ren.SetUseDepthPeeling(1)
    win.AddRenderer(ren)
    for a in _scene_actors(folder):
        ren.AddActor(a)
    images = []
    cam = ren.GetActiveCamera()
    cam.ParallelProjectionOn()
    tumor_c = folder.tumor_centre_ras()
    for look, up in VIEWS.values():
        look = np.asarray(look)
        tracts = _tract_actor(folder.streamlines(), centre=tumor_c if tumor_c is not None else centre, look=look)
        if tracts is not None:
            ren.AddActor(tracts)
        cam.SetFocalPoint(*centre)
        cam.SetPosition(*(centre - 400 * look))
        cam.SetViewUp(*up)
        cam.SetParallelScale(half_h)
        ren.ResetCameraClippingRange()
        win.Render()
        grab = vtk.vtkWindowToImageFilter()
        grab.SetInput(win)
        grab.ReadFrontBufferOff()
        grab.Update()
        img = grab.GetOutput()
        w, h, _ = img.GetDimensions()
        arr = vtk_to_numpy(img.GetPointData().GetScalars()).reshape(h, w, -1)[::-1, :, :3]
        images.append(arr.copy())
        if tracts is not None:
            ren.RemoveActor(tracts)
    win.Finalize()
    return images, {"centre": centre, "half_h_mm": half_h, "px": VIEW_PX}


def _project(p, centre, look, up, half_h, px):
    """RAS point -> pixel (x right, y down) in a parallel view."""
    _, up, right = _camera_frame(look, up)
    mm_per_px = 2 * half_h / px[1]
    d = np.asarray(p, float) - centre
    return px[0] / 2 + d @ right / mm_per_px, px[1] / 2 - d @ up / mm_per_px


def _overlay(ax, folder, look, up, geom):
    """Level names, an R/A/S orientation marker and a 20 mm scale bar over one view."""
    centre, half_h, px = geom["centre"], geom["half_h_mm"], geom["px"]
    for v in (folder.plan.get("vertebrae") or {}).get("vertebrae") or []:
        if v.get("centroid_ras") is not None:
            _, y = _project(v["centroid_ras"], centre, look, up, half_h, px)
            ax.text(18, y, v.get("name", ""), fontsize=7, ha="center", va="center", color="k",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.6", "alpha": 0.8})
    _, upv, right = _camera_frame(look, up)
    ox, oy = 55, px[1] - 55
    for axis, name, col in (((1, 0, 0), "R", "tab:red"), ((0, 1, 0), "A", "tab:green"), ((0, 0, 1), "S", "tab:blue")):
        dx, dy = 35 * np.dot(axis, right), -35 * np.dot(axis, upv)
        if abs(dx) + abs(dy) < 3:
            ax.plot(ox, oy, "o", color=col, ms=4)
            ax.text(ox + 6, oy - 6, f"{name} (toward viewer)" if np.dot(axis, look) < 0 else f"{name} (away)",
                    fontsize=6, color=col)
            continue
        ax.annotate("", (ox + dx, oy + dy), (ox, oy), arrowprops={"arrowstyle": "->", "color": col, "lw": 1.5})
        ax.text(ox + 1.3 * dx, oy + 1.3 * dy, name, color=col, fontsize=8, fontweight="bold", ha="center", va="center")
    bar_px = 20.0 / (2 * half_h / px[1])
    x1, y = px[0] - 20, px[1] - 25
    ax.plot([x1 - bar_px, x1], [y, y], color="k", lw=2.5, solid_capstyle="butt")
    ax.text(x1 - bar_px / 2, y - 8, "20 mm", ha="center", va="bottom", fontsize=7)


def _legend(fig, folder):
    from matplotlib.lines import Line2D

    items = [(COLORS[n], label) for n, label in (("bone", "vertebrae"), ("csf", "thecal sac"), ("cord", "cord"),
                                                  ("tumor", "tumor"))]
    if folder.streamlines():
        items.append(((0.1, 0.1, 0.9), "tracts behind the tumor (colour = direction)"))
    if folder.centerlines():
        items += [(COLORS["vessel"], "vessels"), (COLORS["feeder"], "feeding/draining candidates"),
                  (COLORS["adamkiewicz"], "Adamkiewicz candidate")]
    fig.legend([Line2D([], [], color=c, lw=3) for c, _ in items], [t for _, t in items], loc="lower center",
               ncol=4, frameon=False, fontsize=7)


def _projection_images(folder: PlanFolder) -> list[np.ndarray]:
    """Fallback without OpenGL: label maps resampled onto a RAS box and projected (painter's order)."""
    lo, hi = _bounds(folder)
    step = 0.6
    axes_ = [np.arange(lo[i] - 3, hi[i] + 3, step) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes_, indexing="ij"), axis=-1)
    from .planfolder import sample_plane

    images = []
    for look, _ in VIEWS.values():
        axis = int(np.argmax(np.abs(look)))
        img = np.ones(tuple(len(a) for i, a in enumerate(axes_) if i != axis)[::-1] + (3,))
        for name, _op in SURFACES:
            lab = folder.label(name)
            if lab is None:
                continue
            proj = np.any(sample_plane(lab, grid, order=0, cval=0) > 0, axis=axis).T[::-1]
            img[proj] = COLORS[name]
        images.append((255 * (img if axis == 1 else img[:, ::-1])).astype(np.uint8))
    return images


def view_3d_figure(folder: PlanFolder) -> tuple[bytes | None, str]:
    """The two-view 3D picture (PNG) and how it was made (``"VTK offscreen (EGL)"`` or the fallback)."""
    if folder.tumor_centre_ras() is None and folder.label("cord") is None:
        return None, "nothing to show (no tumor, no cord)"
    try:
        images, geom = render_views(folder)
        method = f"VTK offscreen rendering ({os.environ.get('VTK_DEFAULT_OPENGL_WINDOW')})"
    except Exception as exc:  # no offscreen OpenGL here: projections of the label maps instead
        images, geom = _projection_images(folder), None
        method = f"projections of the label maps (no offscreen OpenGL: {type(exc).__name__})"
    fig, axes = new_figure(7.0, 5.4, ncols=len(images))
    for ax, img, (title, (look, up)) in zip(axes, images, VIEWS.items(), strict=True):
        ax.imshow(img, interpolation="bilinear")
        if geom is not None:
            _overlay(ax, folder, look, up, geom)
        ax.set_title(title)
        ax.axis("off")
    _legend(fig, folder)
    fig.subplots_adjust(bottom=0.1, wspace=0.02)
    return png_bytes(fig), method
