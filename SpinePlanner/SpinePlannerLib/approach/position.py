"""Where the tumor sits in the spinal canal's cross-section: relative to the cord (intramedullary
corridor), to the dentate ligament and side (IDEM), and how far it reaches laterally (foramen,
transverse foramen) (L1).

Frame: the cross-section of largest tumor area perpendicular to the cord axis, from
:func:`~.reformat.axial_stack`; ``lateral_mm`` is along ``u`` (patient right positive) and
``dorsal_mm`` along ``-v`` (posterior positive), both from the centre of the cord (united with an
intramedullary tumor, which expands it).
"""

from __future__ import annotations

import numpy as np

from SpinePlannerLib.approach.reformat import axial_stack
from SpinePlannerLib.core.volume import Volume

DENTATE_MARGIN_MM = 2.0
"""A tumor centre within this distance of the cord's coronal mid-plane is lateral (at the dentate
ligament); beyond it dorsal or ventral (setting: the ligament is not segmented)."""


def tumor_position(tumor: Volume, cord: Volume | None, axis, *, sac: Volume | None = None,
                   midline_fraction: float = 0.35, ventral_fraction: float = 0.2) -> dict:
    """The tumor's position in the cross-section of its largest area.

    Returns ``lateral_mm``, ``dorsal_mm`` (tumor centre from cord centre), ``cord_radius_mm``
    (equivalent radius of cord united with tumor), ``side`` (left/right/midline), ``sector``
    (dorsal-midline / dorsolateral / ventral / central, for the myelotomy corridor), ``dentate``
    (dorsal / ventral / lateral), ``depth_from_dorsal_surface_mm`` (pia to tumor along the corridor),
    ``max_lateral_extent_mm`` (farthest tumor point from the canal centre line, mm) and the
    section's RAS centre and in-plane axes.
    """
    if cord is None or not np.any(cord.array):
        return {"available": False, "reason": "no cord segmentation"}
    t_pts = tumor.ijk_to_ras(np.argwhere(tumor.array > 0))
    if len(t_pts) == 0:
        return {"available": False, "reason": "no tumor"}
    masks = {"tumor": tumor, "cord": cord, **({"sac": sac} if sac is not None else {})}
    ext = float(np.ptp(t_pts @ (np.asarray(axis, float) / np.linalg.norm(axis))))
    stack = axial_stack(masks, t_pts.mean(axis=0), axis, half_width_mm=35.0, half_length_mm=ext / 2 + 2.0)
    t, c = stack.arrays["tumor"], stack.arrays["cord"]
    k = int(np.argmax(t.sum(axis=(0, 1))))
    tk, ck = t[:, :, k], c[:, :, k] | t[:, :, k]
    px = stack.pixel_mm
    if not ck.any():
        return {"available": False, "reason": "no cord at the tumor's largest cross-section"}
    pc = np.argwhere(ck).mean(axis=0)
    pt = np.argwhere(tk).mean(axis=0)
    lateral, dorsal = (pt[0] - pc[0]) * px, -(pt[1] - pc[1]) * px
    radius = float(np.sqrt(ck.sum() * px * px / np.pi))
    side = "midline" if abs(lateral) < 0.15 * radius else ("right" if lateral > 0 else "left")
    if dorsal < -ventral_fraction * radius:
        sector = "ventral"
    elif abs(lateral) >= midline_fraction * radius:
        sector = "dorsolateral"
    elif dorsal > ventral_fraction * radius:
        sector = "dorsal-midline"
    else:
        sector = "central"
    dentate = "dorsal" if dorsal > DENTATE_MARGIN_MM else "ventral" if dorsal < -DENTATE_MARGIN_MM else "lateral"
    # pia-to-tumor depth along the corridor line (midline, or the tumor's side for dorsolateral)
    col = int(round(pc[0] + (np.sign(lateral) * 0.6 * radius / px if sector == "dorsolateral" else 0.0)))
    col = int(np.clip(col, 0, ck.shape[0] - 1))
    rows_c, rows_t = np.flatnonzero(ck[col]), np.flatnonzero(tk[col])
    depth = float((rows_t.min() - rows_c.min()) * px) if len(rows_c) and len(rows_t) else None
    centre_line = pc[0]
    t_all = np.argwhere(t)
    lat_ext = float(np.abs(t_all[:, 0] - centre_line).max() * px) if len(t_all) else 0.0
    u, v, w = stack.axes
    centre_ras = stack.affine @ np.array([pc[0], pc[1], k, 1.0])
    return {"available": True, "lateral_mm": round(float(lateral), 2), "dorsal_mm": round(float(dorsal), 2),
            "cord_radius_mm": round(radius, 2), "side": side, "sector": sector, "dentate": dentate,
            "depth_from_dorsal_surface_mm": None if depth is None else round(max(depth, 0.0), 2),
            "max_lateral_extent_mm": round(lat_ext, 1), "section_centre_ras": [round(float(x), 2) for x in centre_ras[:3]],
            "right_ras": [round(float(x), 4) for x in u], "anterior_ras": [round(float(x), 4) for x in v],
            "axis_ras": [round(float(x), 4) for x in w]}
