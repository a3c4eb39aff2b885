"""Charts and projections: HU histograms of the lesion (CT, synthetic CT), FA along the cord, and
the vessel tree projected from behind and from the left with the feeders labelled.

Histograms sample the images at the RAS centres of the tumor voxels (label map grid); the
synthetic CT through ``synthetic_ct_check.registration.ct_to_sct_ras`` when present.
FA along the cord: FA at the cord centerline points (``segmentation.cord.centerline_ras``),
interpolated every 1 mm of height (S, mm).
"""

from __future__ import annotations

import numpy as np

from .mplfig import new_figure, png_bytes
from .planfolder import COLORS, PlanFolder, sample_plane


def _tumor_points(folder: PlanFolder) -> np.ndarray | None:
    tumor = folder.label("tumor")
    if tumor is None or not np.any(tumor.array):
        return None
    return tumor.ijk_to_ras(np.argwhere(tumor.array > 0))


def lesion_hu_values(folder: PlanFolder) -> dict[str, np.ndarray]:
    """HU of CT and synthetic CT at the tumor voxel centres (NaN outside an image dropped)."""
    pts = _tumor_points(folder)
    out = {}
    if pts is None:
        return out
    reg = ((folder.plan.get("synthetic_ct_check") or {}).get("registration") or {}).get("ct_to_sct_ras")
    for role in ("ct", "sct"):
        vol = folder.image(role)
        if vol is None:
            continue
        p = pts
        if role == "sct" and reg is not None:
            m = np.asarray(reg, float)
            p = pts @ m[:3, :3].T + m[:3, 3]
        vals = sample_plane(vol, p[None, :, :])[0]
        out[role] = vals[np.isfinite(vals)]
    return out


def hu_histogram_figure(folder: PlanFolder) -> bytes | None:
    values = lesion_hu_values(folder)
    if not values:
        return None
    cut = ((folder.plan.get("synthetic_ct_check") or {}).get("settings") or {}).get("calcified_hu")
    fig, (ax,) = new_figure(5.0, 2.6)
    lo = min(float(v.min()) for v in values.values() if v.size)
    hi = max(float(v.max()) for v in values.values() if v.size)
    bins = np.linspace(min(lo, -100.0), max(hi, 200.0), 60)
    for role, colour, name in (("ct", "0.2", "CT"), ("sct", "tab:orange", "synthetic CT")):
        if role in values and values[role].size:
            v = values[role]
            ax.hist(v, bins=bins, histtype="step", lw=1.5, color=colour,
                    label=f"{name}: mean {v.mean():.0f} HU (n = {v.size} voxels)")
    if cut is not None:
        ax.axvline(cut, color="k", ls=":", lw=1)
        ax.text(cut, 0.5, f" calcified ≥ {cut:g} HU (setting)", fontsize=7, va="center", rotation=90,
                transform=ax.get_xaxis_transform())
    ax.set_xlabel("HU in the tumor region")
    ax.set_ylabel("voxels")
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    ax.set_title("Lesion density on CT and synthetic CT")
    return png_bytes(fig)


def fa_profile(folder: PlanFolder) -> tuple[np.ndarray, np.ndarray] | None:
    """(S mm, FA) along the cord centerline, every 1 mm of height."""
    fa = folder.fa_map()
    line = ((folder.plan.get("segmentation") or {}).get("cord") or {}).get("centerline_ras")
    if fa is None or not line or len(line) < 2:
        return None
    pts = np.asarray(line, float)
    pts = pts[np.argsort(pts[:, 2])]
    s = np.arange(np.ceil(pts[0, 2]), np.floor(pts[-1, 2]) + 1e-6, 1.0)
    dense = np.stack([np.interp(s, pts[:, 2], pts[:, i]) for i in range(3)], axis=1)
    values = sample_plane(fa, dense[None, :, :])[0]
    keep = np.isfinite(values) & (values > 0)
    return s[keep], values[keep]


def fa_profile_figure(folder: PlanFolder) -> bytes | None:
    prof = fa_profile(folder)
    if prof is None or prof[0].size < 3:
        return None
    s, fa = prof
    fig, (ax,) = new_figure(5.0, 2.6)
    ax.plot(s, fa, color="tab:blue", lw=1.2)
    t = folder.plan.get("tumor") or {}
    c, cc = t.get("centroid_ras"), t.get("craniocaudal_extent_mm")
    if c is not None and cc:
        ax.axvspan(c[2] - cc / 2, c[2] + cc / 2, color=COLORS["tumor"], alpha=0.2, label="tumor (cranio-caudal extent)")
    for v in (folder.plan.get("vertebrae") or {}).get("vertebrae") or []:
        rng = v.get("body_s_range_mm")
        if rng:
            ax.axvline(rng[1], color="0.6", lw=0.6)
            ax.text(np.mean(rng), 0.98, v.get("name", ""), transform=ax.get_xaxis_transform(), ha="center",
                    va="top", fontsize=7, color="0.3")
    ref = (folder.plan.get("tractography") or {}).get("fa_cord_reference")
    if ref is not None:
        ax.axhline(ref, color="tab:green", ls="--", lw=0.8, label=f"cord reference FA {ref:.2f}")
    ax.set_xlabel("height along the cord, S (mm); vertebral bodies labelled")
    ax.set_ylabel("FA on the centerline")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    ax.set_title("FA along the cord")
    return png_bytes(fig)


def _feeder_label(f: dict) -> str:
    side = {"left": "L", "right": "R"}.get(f.get("side") or "", "")
    return f"#{f.get('rank', '?')} {f.get('level') or '?'} {side} Ø{f.get('diameter_mm', 0):.1f} mm".replace("  ", " ")


def vessel_tree_figure(folder: PlanFolder) -> bytes | None:
    """Centerlines seen from behind (R right) and from the left (A left), coloured by role, with the
    tumor's silhouette, the feeder entry points labelled by rank and the Adamkiewicz candidate."""
    v = folder.plan.get("vessels") or {}
    branches = folder.centerlines()
    if not v.get("detectable") or not branches:
        return None
    tumor_pts = _tumor_points(folder)
    fig, axes = new_figure(7.0, 5.0, ncols=2)
    views = (("from behind", 0, "R →", (1.0, 1.0)), ("from the left", 1, "← A", (-1.0, 1.0)))
    for ax, (title, axis, xlabel, (sx, _)) in zip(axes, views, strict=True):
        for b in branches:
            p = b["points_ras"]
            role = b["role"] if b["role"] in COLORS else "vessel"
            ax.plot(sx * p[:, axis], p[:, 2], color=COLORS[role], lw=0.6 + 1.2 * (b["diameter_mm"] or 1.0),
                    solid_capstyle="round", zorder=3 if role != "vessel" else 2)
        if tumor_pts is not None:
            ax.scatter(sx * tumor_pts[::3, axis], tumor_pts[::3, 2], s=2, color=COLORS["tumor"], alpha=0.25,
                       lw=0, zorder=1)
        for f in v.get("feeders") or []:
            e = f["entry_ras"]
            ax.plot(sx * e[axis], e[2], "o", ms=5, mfc=COLORS["feeder"], mec="k", zorder=4)
            ax.annotate(_feeder_label(f), (sx * e[axis], e[2]), xytext=(12, 6 + 9 * (f.get("rank", 1) - 1)),
                        textcoords="offset points", fontsize=6.5, arrowprops={"arrowstyle": "-", "lw": 0.5},
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "0.5", "lw": 0.5})
        ak = v.get("adamkiewicz_candidate") or {}
        if ak.get("present") and ak.get("entry_ras"):
            e = ak["entry_ras"]
            ax.plot(sx * e[axis], e[2], "D", ms=5, mfc=COLORS["adamkiewicz"], mec="k", zorder=4)
            ax.annotate(f"Adamkiewicz? {ak.get('level')} {ak.get('side')}", (sx * e[axis], e[2]),
                        xytext=(-70, -14), textcoords="offset points", fontsize=6.5,
                        arrowprops={"arrowstyle": "-", "lw": 0.5})
        ax.set_aspect("equal")
        ax.set_title(f"vessels {title}")
        ax.set_xlabel(f"{xlabel} (mm)")
        ax.set_ylabel("S (mm)")
    from matplotlib.lines import Line2D

    roles = [("vessel", "vessel"), ("feeder", "feeding/draining candidate"), ("adamkiewicz", "Adamkiewicz candidate"),
             ("anterior_spinal", "anterior spinal artery"), ("tumor", "tumor")]
    fig.legend([Line2D([], [], color=COLORS[k], lw=2) for k, _ in roles], [t for _, t in roles], loc="lower center",
               ncol=5, frameon=False, fontsize=7)
    fig.subplots_adjust(bottom=0.14)
    return png_bytes(fig)
