"""Tumor measurements in millimetres along the cord axis (L1).

Definitions (CLINICAL.md §8):

* maximal axial diameter — the largest in-plane caliper width of the lesion in planes
  perpendicular to the cord axis, over all such slabs;
* cranio-caudal extent — the lesion's width along the cord axis;
* raw widths are the range of the voxel centres plus one voxel's extent along the measuring
  direction (what a reader measuring edge to edge on the displayed voxels gets). On oblique,
  anisotropic grids that over-estimates a smooth lesion by 0.5–1 mm, so the reported widths are
  calibrated: an ellipsoid of the raw size is rasterised on the same grid at several sub-voxel
  offsets, measured the same way, and its mean excess is subtracted (``calibrate=True``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from SpinePlannerLib.core.volume import Volume

SUPERIOR = np.array([0.0, 0.0, 1.0])


def voxel_extent_along(volume: Volume, direction) -> float:
    """Length (mm) of one voxel measured along a unit RAS ``direction``:
    ``sqrt(sum_k (d . a_k)^2)`` with ``a_k`` the affine's columns."""
    d = np.asarray(direction, float)
    return float(np.sqrt(np.sum((d @ volume.affine[:3, :3]) ** 2)))


def mask_points_ras(mask: Volume) -> np.ndarray:
    """RAS coordinates (N, 3) of the non-zero voxel centres."""
    return mask.ijk_to_ras(np.argwhere(mask.array > 0))


def cord_axis(cord: Volume | None, *, near_ras=None, radius_mm: float = 30.0) -> np.ndarray:
    """Unit RAS direction of the cord's long axis, pointing superior.

    Principal axis of the cord voxels (within ``radius_mm`` of ``near_ras`` when given, so a
    curved cord gives the local axis). Without a cord mask the scanner's S axis is returned.
    """
    if cord is None or not np.any(cord.array):
        return SUPERIOR.copy()
    pts = mask_points_ras(cord)
    if near_ras is not None:
        near = pts[np.linalg.norm(pts - np.asarray(near_ras, float), axis=1) <= radius_mm]
        if len(near) >= 20:
            pts = near
    if len(pts) < 3:
        return SUPERIOR.copy()
    centred = pts - pts.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    axis = vt[0]
    return axis if axis[2] >= 0 else -axis


def in_plane_basis(axis) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane perpendicular to ``axis`` (first is as close to R as possible)."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    ref = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = ref - axis * np.dot(ref, axis)
    u /= np.linalg.norm(u)
    return u, np.cross(axis, u)


def caliper_width(points: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Range of the projections of ``points`` (N, 3) on each of ``directions`` (M, 3)."""
    proj = points @ directions.T
    return proj.max(axis=0) - proj.min(axis=0)


def _axial_directions(axis, n_directions: int) -> np.ndarray:
    u, v = in_plane_basis(axis)
    ang = np.linspace(0.0, np.pi, n_directions, endpoint=False)
    return np.outer(np.cos(ang), u) + np.outer(np.sin(ang), v)


def _raw_widths(pts: np.ndarray, affine: np.ndarray, axis: np.ndarray, n_directions: int) -> tuple[float, float]:
    """(max axial caliper in one-voxel slabs, extent along axis), voxel centres + one voxel, mm."""
    probe = Volume(np.zeros((1, 1, 1), np.uint8), affine)
    dirs = _axial_directions(axis, n_directions)
    vox = np.array([voxel_extent_along(probe, d) for d in dirs])
    thickness = max(voxel_extent_along(probe, axis), 1e-3)
    along = pts @ axis
    slab = np.floor((along - along.min()) / thickness).astype(int)
    order = np.argsort(slab, kind="stable")
    bounds = np.flatnonzero(np.diff(slab[order])) + 1
    axial = max(float((caliper_width(pts[g], dirs) + vox).max()) for g in np.split(order, bounds))
    return axial, float(along.max() - along.min() + thickness)


def _ellipsoid_points(affine: np.ndarray, centre: np.ndarray, axis: np.ndarray, radial_mm: float,
                      half_length_mm: float) -> np.ndarray:
    """RAS voxel centres of ``affine``'s lattice inside an ellipsoid of revolution about ``axis``."""
    inv = np.linalg.inv(affine)
    reach = max(radial_mm, half_length_mm) + 2.0 * float(np.linalg.norm(affine[:3, :3], axis=0).max())
    c_ijk = inv[:3, :3] @ centre + inv[:3, 3]
    half = np.ceil(reach / np.linalg.norm(affine[:3, :3], axis=0)).astype(int)
    grids = [np.arange(np.floor(c - h), np.ceil(c + h) + 1) for c, h in zip(c_ijk, half, strict=True)]
    ijk = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1).reshape(-1, 3)
    p = ijk @ affine[:3, :3].T + affine[:3, 3] - centre
    along = p @ axis
    radial2 = np.sum(p**2, axis=1) - along**2
    inside = radial2 / radial_mm**2 + along**2 / half_length_mm**2 <= 1.0
    return p[inside] + centre


def lesion_widths_mm(mask: Volume, axis, *, n_directions: int = 90, calibrate: bool = True,
                     n_offsets: int = 6) -> tuple[float, float]:
    """(maximal axial diameter, cranio-caudal extent) of a mask in mm, see the module notes.

    Parameters
    ----------
    mask : Volume
        Binary mask on any grid (oblique, anisotropic).
    axis : array (3,)
        Cord axis, unit RAS direction.
    calibrate : bool
        Remove the rasterisation excess measured on ellipsoids of the raw size on this grid.
    """
    pts = mask_points_ras(mask)
    if len(pts) == 0:
        return 0.0, 0.0
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    axial, cc = _raw_widths(pts, mask.affine, axis, n_directions)
    if not calibrate or len(pts) < 8:
        return axial, cc
    rng = np.random.default_rng(0)  # deterministic offsets: the same mask always measures the same
    centre = pts.mean(axis=0)
    excess = []
    for _ in range(n_offsets):
        shift = mask.affine[:3, :3] @ rng.uniform(-0.5, 0.5, 3)
        sim = _ellipsoid_points(mask.affine, centre + shift, axis, axial / 2.0, cc / 2.0)
        if len(sim) < 8:
            continue
        sa, sc = _raw_widths(sim, mask.affine, axis, n_directions)
        excess.append((sa - axial, sc - cc))
    if not excess:
        return axial, cc
    ea, ec = np.mean(excess, axis=0)
    return max(axial - float(ea), 0.0), max(cc - float(ec), 0.0)


def max_axial_diameter_mm(mask: Volume, axis, *, n_directions: int = 90, calibrate: bool = True) -> float:
    """Largest caliper diameter (mm) in one-voxel slabs perpendicular to ``axis``."""
    return lesion_widths_mm(mask, axis, n_directions=n_directions, calibrate=calibrate)[0]


def extent_along_mm(mask: Volume, axis, *, calibrate: bool = True) -> float:
    """Width (mm) of the mask along ``axis`` (cranio-caudal extent when ``axis`` is the cord axis)."""
    return lesion_widths_mm(mask, axis, calibrate=calibrate)[1]


def dilate_mm(mask: Volume, radius_mm: float) -> np.ndarray:
    """Binary dilation by a ball of ``radius_mm`` (anisotropic voxels handled)."""
    sp = mask.spacing
    r = np.maximum(np.ceil(radius_mm / sp).astype(int), 0)
    zz = np.meshgrid(*[np.arange(-k, k + 1) * s for k, s in zip(r, sp, strict=True)], indexing="ij")
    ball = (zz[0] ** 2 + zz[1] ** 2 + zz[2] ** 2) <= radius_mm**2 + 1e-9
    return ndimage.binary_dilation(mask.array > 0, structure=ball)


def classify_compartment(tumor: Volume, *, cord: Volume | None = None, thecal_sac: Volume | None = None,
                         bone: Volume | None = None, shell_mm: float = 1.5,
                         intramedullary_shell_cord_fraction: float = 0.6,
                         extradural_outside_fraction: float = 0.5) -> tuple[str, dict]:
    """Tumor compartment from overlap with cord, thecal sac (cord + CSF) and bone.

    All masks must share the tumor's grid. Returns ``(compartment, evidence)`` where
    compartment is one of ``intramedullary``, ``intradural_extramedullary``, ``extradural``,
    ``unknown``. Rules (documented settings, not published thresholds):

    * more than ``extradural_outside_fraction`` of the tumor outside the thecal sac -> extradural;
    * otherwise, of the thin shell around the tumor that lies inside the sac, the cord's share
      above ``intramedullary_shell_cord_fraction`` -> intramedullary (the tumor is surrounded by
      cord), else intradural extramedullary.
    """
    t = tumor.array > 0
    n = int(t.sum())
    if n == 0:
        return "unknown", {"reason": "empty tumor mask"}
    if cord is None and thecal_sac is None:
        return "unknown", {"reason": "no cord or thecal sac segmentation to relate the tumor to"}
    cord_a = cord.array > 0 if cord is not None else np.zeros_like(t)
    sac = thecal_sac.array > 0 if thecal_sac is not None else None
    evidence: dict = {}
    if sac is not None:
        sac_full = sac | cord_a
        outside = float(np.count_nonzero(t & ~sac_full)) / n
        evidence["fraction_outside_thecal_sac"] = round(outside, 3)
        if bone is not None:
            evidence["fraction_in_bone"] = round(float(np.count_nonzero(t & (bone.array > 0))) / n, 3)
        if outside > extradural_outside_fraction:
            return "extradural", evidence
    shell = dilate_mm(tumor, shell_mm) & ~t
    if sac is not None:
        shell &= (sac | cord_a)
    n_shell = int(shell.sum())
    if n_shell == 0:
        return "unknown", {**evidence, "reason": "no thecal-sac voxels around the tumor"}
    cord_share = float(np.count_nonzero(shell & cord_a)) / n_shell
    evidence["shell_cord_fraction"] = round(cord_share, 3)
    if cord is None:
        return "unknown", {**evidence, "reason": "no cord segmentation"}
    if cord_share > intramedullary_shell_cord_fraction:
        return "intramedullary", evidence
    return "intradural_extramedullary", evidence


# -- levels, canal occupancy, cord compression (segmentation issue) ---------------------------------
def slab_areas_mm2(mask: Volume, axis, *, origin_ras=None) -> dict[int, float]:
    """Cross-sectional area (mm^2) of ``mask`` in slabs perpendicular to ``axis``.

    Slabs are one voxel extent thick along ``axis`` and numbered from ``origin_ras`` (the slab
    containing it is 0); area = voxel volume x count / slab thickness.
    """
    pts = mask_points_ras(mask)
    if len(pts) == 0:
        return {}
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    thick = max(voxel_extent_along(mask, axis), 1e-3)
    o = np.zeros(3) if origin_ras is None else np.asarray(origin_ras, float)
    idx = np.floor((pts - o) @ axis / thick + 0.5).astype(int)
    vals, counts = np.unique(idx, return_counts=True)
    vox_mm3 = mask.voxel_volume_ml * 1000.0
    return {int(v): float(c * vox_mm3 / thick) for v, c in zip(vals, counts, strict=True)}


def levels_spanned(tumor: Volume, vertebrae: list[dict], *, margin_mm: float = 0.0) -> list[str]:
    """Names of the vertebrae whose body cranio-caudal range (``body_s_range_mm``, RAS S) overlaps
    the tumor's S range (voxel centres +- half a voxel, widened by ``margin_mm`` at each pole, e.g.
    the bone exposure beyond the tumor), cranial first (CLINICAL.md section 8)."""
    pts = mask_points_ras(tumor)
    if len(pts) == 0:
        return []
    half = voxel_extent_along(tumor, SUPERIOR) / 2.0 + margin_mm
    lo, hi = pts[:, 2].min() - half, pts[:, 2].max() + half
    out = []
    for v in sorted(vertebrae, key=lambda v: -np.mean(v.get("body_s_range_mm", [0, 0]))):
        rng = v.get("body_s_range_mm")
        if rng is not None and rng[0] <= hi and rng[1] >= lo:
            out.append(v["name"])
    return out


def canal_occupancy(tumor: Volume, sac: Volume, axis) -> dict:
    """Tumor cross-section over canal cross-section at the slab of largest tumor area.

    The canal is approximated by the thecal sac (cord + CSF) united with the tumor, both on the
    tumor's grid: exact for intradural tumors; for extradural ones it is the share of the
    compressed canal the tumor takes (the bony canal would be larger). Returns the fraction,
    both areas (mm^2) and the slab's position along ``axis`` (mm from the tumor centroid).
    """
    t_pts = mask_points_ras(tumor)
    if len(t_pts) == 0:
        return {"fraction": None, "reason": "empty tumor mask"}
    centroid = t_pts.mean(axis=0)
    union = tumor.with_array(((tumor.array > 0) | (sac.array > 0)).astype(np.uint8))
    inside = tumor.with_array(((tumor.array > 0) & (union.array > 0)).astype(np.uint8))
    t_area = slab_areas_mm2(inside, axis, origin_ras=centroid)
    c_area = slab_areas_mm2(union, axis, origin_ras=centroid)
    worst = max(t_area, key=t_area.get)
    thick = voxel_extent_along(tumor, np.asarray(axis, float) / np.linalg.norm(axis))
    frac = t_area[worst] / c_area[worst] if c_area.get(worst) else None
    return {"fraction": round(float(frac), 3) if frac is not None else None,
            "tumor_area_mm2": round(t_area[worst], 1), "canal_area_mm2": round(c_area.get(worst, 0.0), 1),
            "slab_offset_mm": round(worst * thick, 1), "canal_basis": "thecal sac (cord + CSF) united with the tumor"}


def cord_compression(cord: Volume, tumor: Volume, axis, *, reference_gap_mm: float = 10.0) -> dict:
    """Cord cross-section at the worst slab within the tumor's cranio-caudal range against the
    median cord cross-section of slabs farther than ``reference_gap_mm`` from the tumor.

    Returns ``area_ratio`` (worst / reference; 1 = no compression), both areas (mm^2) and the
    worst slab's offset along ``axis`` (mm from the tumor centroid).
    """
    t_pts = mask_points_ras(tumor)
    if len(t_pts) == 0 or not np.any(cord.array):
        return {"area_ratio": None, "reason": "no tumor or no cord"}
    centroid = t_pts.mean(axis=0)
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    thick = voxel_extent_along(cord, axis)
    t_slabs = slab_areas_mm2(tumor, axis, origin_ras=centroid)
    c_slabs = slab_areas_mm2(cord, axis, origin_ras=centroid)
    t_lo, t_hi = min(t_slabs), max(t_slabs)
    gap = int(np.ceil(reference_gap_mm / thick))
    ref = [a for s, a in c_slabs.items() if s < t_lo - gap or s > t_hi + gap]
    inside = {s: c_slabs.get(s, 0.0) for s in range(t_lo, t_hi + 1)}
    if len(ref) < 3:
        return {"area_ratio": None, "reason": f"fewer than 3 cord slabs more than {reference_gap_mm} mm from the tumor"}
    ref_area = float(np.median(ref))
    worst = min(inside, key=inside.get)
    return {"area_ratio": round(inside[worst] / ref_area, 3), "worst_area_mm2": round(inside[worst], 1),
            "reference_area_mm2": round(ref_area, 1), "slab_offset_mm": round(worst * thick, 1)}
