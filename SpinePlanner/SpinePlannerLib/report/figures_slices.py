"""Slice pictures through the tumor: anatomy with outlines, CT vs synthetic CT, FA with tracts.

Planes are sampled in RAS through the tumor centroid (so oblique grids show upright):
axial in radiological convention (patient right on the picture's left, anterior up), sagittal
with anterior on the left and superior up, coronal seen from the front. Pixels 0.4 mm.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from .mplfig import edge_letters, new_figure, png_bytes, scale_bar
from .planfolder import COLORS, STRUCTURE_NAMES, PlanFolder, plane_points, sample_plane

PIXEL_MM = 0.4
# name -> (u, v, (left, right, top, bottom) letters): u to the picture's right, v up
PLANES = {
    "axial": ((-1, 0, 0), (0, 1, 0), ("R", "L", "A", "P")),
    "sagittal": ((0, -1, 0), (0, 0, 1), ("A", "P", "S", "I")),
    "coronal": ((-1, 0, 0), (0, 0, 1), ("R", "L", "S", "I")),
}
HU_WINDOW = (-250.0, 1250.0)  # display window for CT and synthetic CT, HU


def _window(img: np.ndarray) -> tuple[float, float]:
    finite = img[np.isfinite(img)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [1, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


def _panel(ax, img, half_u, half_v, plane, *, cmap="gray", vmin=None, vmax=None):
    ext = (-half_u, half_u, -half_v, half_v)
    im = ax.imshow(np.nan_to_num(img, nan=vmin if vmin is not None else 0.0), cmap=cmap, vmin=vmin, vmax=vmax,
                   extent=ext, interpolation="nearest", origin="upper")
    ax.set_xticks([])
    ax.set_yticks([])
    edge_letters(ax, half_u, half_v, *PLANES[plane][2])
    scale_bar(ax, 10, (half_u, half_v))
    return im


def _outline(ax, mask, half_u, half_v, color, lw=1.2):
    if not np.any(mask):
        return False
    rows, cols = mask.shape
    x = np.linspace(-half_u, half_u, cols)
    y = np.linspace(half_v, -half_v, rows)
    ax.contour(x, y, mask.astype(float), levels=[0.5], colors=[color], linewidths=lw)
    return True


def _plane(folder: PlanFolder, plane: str, half_u: float, half_v: float):
    u, v, _ = PLANES[plane]
    return plane_points(folder.tumor_centre_ras(), u, v, half_u, half_v, PIXEL_MM)


def _vertebra_names(ax, lab_img, names, half_u, half_v, *, with_outline: bool):
    """Outline each vertebra and write its level name at its centre in the picture."""
    rows, cols = lab_img.shape
    for value in sorted(int(x) for x in np.unique(lab_img) if x > 0):
        m = lab_img == value
        if m.sum() < 30:
            continue
        if with_outline:
            _outline(ax, m, half_u, half_v, COLORS["bone"], lw=0.8)
        r, c = np.argwhere(m).mean(axis=0)
        x, y = -half_u + 2 * half_u * c / (cols - 1), half_v - 2 * half_v * r / (rows - 1)
        ax.text(x, y, names.get(value, str(value)), color="black", fontsize=7, ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.15", "fc": COLORS["bone"], "ec": "none", "alpha": 0.85})


def anatomy_figure(folder: PlanFolder) -> bytes | None:
    """Axial and sagittal slices through the tumor, outlines of tumor, cord, thecal sac, cyst/edema,
    vertebrae with level names, on the reference image."""
    if folder.tumor_centre_ras() is None:
        return None
    ref = folder.image(folder.plan.get("reference_role") or "") or folder.label("cord") or folder.label("tumor")
    fig, axes = new_figure(7.2, 4.6, ncols=2, gridspec_kw={"width_ratios": [1, 0.8]})
    handles = {}
    for ax, plane, (hu, hv) in zip(axes, ("axial", "sagittal"), ((30.0, 30.0), (30.0, 55.0)), strict=True):
        pts = _plane(folder, plane, hu, hv)
        img = sample_plane(ref, pts) if ref is not None else np.zeros(pts.shape[:2])
        _panel(ax, img, hu, hv, plane, vmin=_window(img)[0], vmax=_window(img)[1])
        vert = folder.label("vertebrae")
        if vert is not None:
            _vertebra_names(ax, sample_plane(vert, pts, order=0, cval=0), folder.level_names(), hu, hv,
                            with_outline=True)
            handles["vertebrae (level names)"] = COLORS["bone"]
        for name in ("csf", "cord", "cyst", "edema", "tumor"):
            lab = folder.label(name)
            if lab is not None and _outline(ax, sample_plane(lab, pts, order=0, cval=0) > 0, hu, hv, COLORS[name]):
                handles[STRUCTURE_NAMES[name]] = COLORS[name]
        c = folder.tumor_centre_ras()
        ax.set_title(f"{plane} through the tumor centre ({'S' if plane == 'axial' else 'R'} = "
                     f"{c[2] if plane == 'axial' else c[0]:.1f} mm)")
    fig.legend([Line2D([], [], color=col, lw=2) for col in handles.values()], list(handles), loc="lower center",
               ncol=min(6, len(handles)), frameon=False, fontsize=7)
    fig.subplots_adjust(bottom=0.1, wspace=0.05)
    return png_bytes(fig)


def ct_sct_figure(folder: PlanFolder) -> bytes | None:
    """CT and synthetic CT side by side (axial at the tumor centre), tumor outline, mean HU in the titles."""
    ct, sct = folder.image("ct"), folder.image("sct")
    section = folder.plan.get("synthetic_ct_check") or {}
    if sct is None or folder.tumor_centre_ras() is None or not section:
        return None
    hu, hv = 30.0, 30.0
    pts = _plane(folder, "axial", hu, hv)
    tumor = folder.label("tumor")
    tmask = sample_plane(tumor, pts, order=0, cval=0) > 0 if tumor is not None else None
    panels = [("ct", ct, "CT"), ("sct", sct, "synthetic CT")]
    panels = [p for p in panels if p[1] is not None]
    fig, axes = new_figure(3.6 * len(panels), 3.9, ncols=len(panels))
    im = None
    for ax, (key, vol, title) in zip(axes, panels, strict=True):
        img = sample_plane(vol, pts, cval=-1024.0)
        im = _panel(ax, img, hu, hv, "axial", vmin=HU_WINDOW[0], vmax=HU_WINDOW[1])
        if tmask is not None:
            _outline(ax, tmask, hu, hv, COLORS["tumor"])
        stats = section.get(key) or {}
        size = ("not visible" if not stats.get("visible") else
                f"{stats.get('lesion_axial_diameter_mm')} × {stats.get('lesion_craniocaudal_mm')} mm")
        ax.set_title(f"{title}: mean {stats.get('mean_hu', float('nan')):.0f} HU, "
                     f"class {stats.get('calcification_class', '?')}\nlesion {size}")
    cb = fig.colorbar(im, ax=list(axes), fraction=0.03, pad=0.02)
    cb.set_label("HU")
    return png_bytes(fig)


def _tract_segments(streamlines, centre, normal, half_thickness_mm, u, v):
    """2D segments (mm in the plane) of streamline steps within ``half_thickness_mm`` of the plane,
    coloured by direction (|R|, |A|, |S| -> red, green, blue)."""
    segs, cols = [], []
    for s in streamlines:
        if len(s) < 2:
            continue
        d = (s - centre) @ normal
        near = np.abs(d[:-1]) <= half_thickness_mm
        if not np.any(near):
            continue
        a, b = s[:-1][near], s[1:][near]
        step = b - a
        n = np.linalg.norm(step, axis=1, keepdims=True)
        colour = np.abs(step) / np.maximum(n, 1e-9)
        pa = np.stack([(a - centre) @ u, (a - centre) @ v], axis=1)
        pb = np.stack([(b - centre) @ u, (b - centre) @ v], axis=1)
        segs.append(np.stack([pa, pb], axis=1))
        cols.append(colour)
    if not segs:
        return None, None
    return np.concatenate(segs), np.concatenate(cols)


def fa_tracts_figure(folder: PlanFolder) -> bytes | None:
    """FA map (coronal and sagittal through the tumor) with the tracts within 1 mm of each plane."""
    fa = folder.fa_map()
    centre = folder.tumor_centre_ras()
    if fa is None or centre is None:
        return None
    streamlines = folder.streamlines()[::3]  # every third: the FA stays readable under the lines
    tumor = folder.label("tumor")
    fig, axes = new_figure(6.4, 5.0, ncols=2)
    im = None
    hu, hv = 15.0, 45.0
    for ax, plane in zip(axes, ("coronal", "sagittal"), strict=True):
        u, v = (np.asarray(x, float) for x in PLANES[plane][:2])
        pts = plane_points(centre, u, v, hu, hv, PIXEL_MM)
        im = _panel(ax, sample_plane(fa, pts, cval=0.0), hu, hv, plane, cmap="gray", vmin=0.0, vmax=1.0)
        segs, cols = _tract_segments(streamlines, centre, np.cross(u, v), 1.0, u, v)
        if segs is not None:
            ax.add_collection(LineCollection(segs, colors=np.c_[cols, np.full(len(cols), 0.6)], linewidths=0.35))
        if tumor is not None:
            _outline(ax, sample_plane(tumor, pts, order=0, cval=0) > 0, hu, hv, COLORS["tumor"], lw=1.5)
        ax.set_xlim(-hu, hu)
        ax.set_ylim(-hv, hv)
        ax.set_title(f"FA, {plane}, tracts ±1 mm (1 in 3)")
    cb = fig.colorbar(im, ax=list(axes), fraction=0.04, pad=0.02)
    cb.set_label("FA (unitless)")
    fig.text(0.5, 0.01, "tract colour: red R-L, green A-P, blue S-I; tumor outlined in red", ha="center", fontsize=7)
    return png_bytes(fig)
