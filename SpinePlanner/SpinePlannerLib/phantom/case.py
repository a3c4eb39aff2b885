"""Digital spine-tumor phantom: the built-in demo case, the sample data and the test bed (L1).

A thoracolumbar segment (T9–L1, ribs on T9–T12 with the last rib on T12) is defined by
analytic shapes in millimetres (:mod:`phantom_anatomy`) and rasterised with partial volume
(``s^3`` sub-samples per voxel, :mod:`phantom_raster`) onto several oblique grids:

=============  ==========================================================================
file           content
=============  ==========================================================================
t2.nii.gz      T2-weighted MRI, 0.9 x 1.5 x 0.9 mm (P, S, R axes, tilted), the reference grid
t1.nii.gz      T1-weighted MRI, the same voxel centres stored in R-A-S order
t1c.nii.gz     only ``intramedullary-cystic``: contrast-enhanced T1 (gadolinium) on the T1 grid
ct.nii.gz      CT in HU (int16), 1 mm, axes L-P-S, its own tilt
sct.nii.gz     synthetic CT on the CT grid: bone close to CT, soft tissue 10–40 HU, no calcification
angio.nii.gz   CT angiography (int16 HU), 0.8 mm isotropic, arteries about 370–400 HU
dwi.nii.gz     DWI, 1.25 x 1.25 x 2.5 mm, axes L-A-S tilted (negative determinant),
               3 b0 + 32 directions at b = 800 s/mm^2, Rician noise (cord b0 SNR about 24);
               ``dwi.bval`` / ``dwi.bvec`` in FSL layout (voxel-axis bvecs, 3 rows)
labels/        on the T2 grid (uint8): cord, csf (thecal sac), vertebrae (1..5 = T9..L1),
               tumor, calcification, vessels (1 other, 2 feeder, 3 Adamkiewicz, 4 ASA,
               5 draining vein), bone (every bone incl. ribs); ``intramedullary-cystic`` also
               cyst (the polar cysts) and edema (the cord label includes the edematous cord)
truth.json     the analytic ground truth and the verdicts the planner is expected to reach
=============  ==========================================================================

MR intensities are relative (T2: CSF about 1.0; T1: fat about 1.0); DWI signal is in scanner-like
units (CSF b0 about 1000). Generation is deterministic per (kind, seed).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.dwi_io import DiffusionData, ras_to_fsl_bvecs
from SpinePlannerLib.core.geometry import resample_mask_like
from SpinePlannerLib.core.imageio import write_text_atomic, write_volume
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement.lesion import max_axial_diameter_mm
from SpinePlannerLib.phantom.anatomy import (
    AKA,
    AORTA,
    ASA,
    CANC0,
    CORD,
    CORT0,
    CSF,
    CYST,
    CYSTIC,
    DISC,
    EDEMA,
    EPIFAT,
    FAT,
    FEEDER,
    KIND_INFO,
    LUNG,
    LYTIC,
    MUSCLE,
    N_MATERIALS,
    RIB_CANC,
    RIB_CORT,
    TUMOR,
    VEIN,
    VESSEL,
    VESSEL_LABEL,
    PhantomAnatomy,
    build_anatomy,
)
from SpinePlannerLib.phantom.raster import Lattice, grid_affine, polyline_length, rotation_xyz

PHANTOM_KINDS: tuple[str, ...] = ("intramedullary-displacing", "intramedullary-infiltrative", "intramedullary-crossing",
                                  "idem-calcified", "idem-soft", "idem-faint", "extradural-lytic",
                                  "intramedullary-cystic")

B_VALUE = 800.0  # s/mm^2
N_DIRECTIONS = 32
DWI_SCALE = 1000.0  # CSF b0 signal
CORD_TENSOR = (1.6e-3, 0.4e-3)  # axial, radial diffusivity (mm^2/s) of cord white matter: FA 0.71
MR_NOISE_SIGMA = 0.04  # relative to the brightest tissue (1.0): SNR 25
CT_NOISE_HU, SCT_NOISE_HU, CTA_NOISE_HU = 10.0, 6.0, 14.0

# per-kind tumor properties: T1, T2, CT, sCT, CTA, DWI S0 (relative), axial and radial diffusivity,
# whether the tumor tensor follows the cord fiber field, and the CT / sCT ROI-mean targets (HU)
TUMOR_PROPS = {
    "intramedullary-displacing": dict(t1=0.45, t2=0.72, ct=35, sct=28, cta=70, s0=0.7, lpar=1.7e-3, lperp=1.4e-3,
                                      follow=True),
    "intramedullary-infiltrative": dict(t1=0.45, t2=0.75, ct=33, sct=28, cta=45, s0=0.75, lpar=1.85e-3,
                                        lperp=1.475e-3, follow=True),
    "intramedullary-crossing": dict(t1=0.45, t2=0.65, ct=35, sct=28, cta=55, s0=0.6, lpar=1.7e-3, lperp=0.95e-3,
                                    follow=True),
    "idem-calcified": dict(t1=0.4, t2=0.3, ct=550, sct=12, cta=550, s0=0.3, lpar=0.8e-3, lperp=0.8e-3,
                           ct_target=550.0, sct_target=12.0),
    "idem-soft": dict(t1=0.45, t2=0.7, ct=40, sct=35, cta=90, s0=0.6, lpar=1.0e-3, lperp=1.0e-3,
                      ct_target=40.0, sct_target=35.0),
    "idem-faint": dict(t1=0.45, t2=0.55, ct=113, sct=20, cta=113, s0=0.5, lpar=0.9e-3, lperp=0.9e-3,
                       ct_target=113.0, sct_target=20.0),
    "extradural-lytic": dict(t1=0.4, t2=0.75, ct=35, sct=40, cta=130, s0=0.6, lpar=1.1e-3, lperp=1.1e-3),
    # enhancing nodule (T1c 0.95); its T2 is close to the edema's, so only the T1c separates them
    "intramedullary-cystic": dict(t1=0.45, t2=0.72, t1c=0.95, ct=35, sct=28, cta=80, s0=0.7, lpar=1.7e-3,
                                  lperp=1.4e-3, follow=True),
}

FLUID_PROPS = {
    # T1, T1c, T2, CT, sCT, CTA (relative MR, HU), DWI S0, axial and radial diffusivity (mm^2/s)
    # polar cyst: fluid like CSF (slightly proteinaceous), not enhancing, free water diffusion
    "cyst": dict(t1=0.17, t1c=0.17, t2=0.95, ct=8, sct=10, cta=10, s0=0.95, lpar=2.9e-3, lperp=2.9e-3),
    # cord edema: T2 between cord (0.45) and CSF (1.0), T1 a little below the cord's, no enhancement;
    # diffusion along the cord, higher than in the normal cord
    "edema": dict(t1=0.48, t1c=0.48, t2=0.68, ct=30, sct=27, cta=36, s0=0.6, lpar=1.9e-3, lperp=0.75e-3),
}
"""Signals of the ``intramedullary-cystic`` kind's cyst and edema materials (CSF: T2 1.0, T1 0.15)."""


@dataclass
class GridSpec:
    """An image grid: centre in spine-local mm, spacing (mm), shape, axis order, tilt (deg)."""

    center_local: tuple[float, float, float]
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    axes: str
    tilt_deg: tuple[float, float, float]
    supersample: int

    def affine(self, anat: PhantomAnatomy) -> np.ndarray:
        center = anat.frame.local_to_world(np.asarray(self.center_local, float))[0]
        return grid_affine(center, self.spacing, self.shape, self.axes, rotation_xyz(*self.tilt_deg))


GRIDS = {
    "t2": GridSpec((0.0, 5.0, 0.0), (0.9, 1.5, 0.9), (78, 84, 78), "PSR", (4.0, -3.0, 0.0), 2),
    "ct": GridSpec((0.0, 10.0, 0.0), (1.0, 1.0, 1.0), (82, 82, 128), "LPS", (-3.0, 0.0, 2.0), 2),
    "angio": GridSpec((-2.0, 17.0, 0.0), (0.8, 0.8, 0.8), (70, 85, 155), "RAS", (2.0, -2.0, 0.0), 2),
    "dwi": GridSpec((0.0, 0.0, 0.0), (1.25, 1.25, 2.5), (40, 40, 48), "LAS", (8.0, 4.0, 0.0), 2),
}


@dataclass
class PhantomCase:
    """One generated case.

    Attributes
    ----------
    kind, seed : the generator inputs.
    volumes : dict role -> Volume (``t1``, ``t2``, ``ct``, ``sct``, ``angio``; ``t1c`` for the cystic kind), RAS affines.
    dwi : DiffusionData with gradients in world RAS.
    labels : dict name -> uint8 Volume on the T2 grid (see the module docstring).
    truth : the ``truth.json`` document (deterministic: no timings in it).
    seconds : wall-clock generation time (s), for information.
    """

    kind: str
    seed: int
    volumes: dict[str, Volume] = field(default_factory=dict)
    dwi: DiffusionData | None = None
    labels: dict[str, Volume] = field(default_factory=dict)
    truth: dict = field(default_factory=dict)
    seconds: float = 0.0


# -- material tables -----------------------------------------------------------------------------
def _tables(kind: str, n_levels: int) -> dict[str, np.ndarray]:
    t = {k: np.zeros(N_MATERIALS, np.float32) for k in ("t1", "t2", "ct", "sct", "cta")}

    def put(mats, t1, t2, ct, sct, cta):
        for m in np.atleast_1d(mats):
            t["t1"][m], t["t2"][m], t["ct"][m], t["sct"][m], t["cta"][m] = t1, t2, ct, sct, cta

    put([FAT, EPIFAT], 1.0, 0.7, -100, -95, -100)
    put(LUNG, 0.03, 0.03, -850, -800, -850)
    put(MUSCLE, 0.35, 0.3, 50, 45, 60)
    put(AORTA, 0.08, 0.05, 40, 35, 400)
    put(DISC, 0.35, 0.75, 80, 75, 85)
    put(CSF, 0.15, 1.0, 10, 12, 12)
    put(CORD, 0.55, 0.45, 35, 30, 38)
    cort = [CORT0 + i for i in range(1, n_levels + 1)] + [RIB_CORT]
    canc = [CANC0 + i for i in range(1, n_levels + 1)] + [RIB_CANC]
    put(cort, 0.05, 0.04, 1150, 1110, 1150)
    put(canc, 0.7, 0.5, 250, 246, 255)
    put(VESSEL, 0.15, 0.1, 40, 35, 400)
    put(FEEDER, 0.15, 0.1, 40, 35, 380)
    put(AKA, 0.15, 0.1, 40, 35, 390)
    put(ASA, 0.15, 0.1, 40, 35, 370)
    put(VEIN, 0.2, 0.15, 40, 35, 230)
    p = TUMOR_PROPS[kind]
    put([TUMOR, LYTIC], p["t1"], p["t2"], p["ct"], p["sct"], p["cta"])
    for mat, f in ((CYST, FLUID_PROPS["cyst"]), (EDEMA, FLUID_PROPS["edema"])):
        put(mat, f["t1"], f["t2"], f["ct"], f["sct"], f["cta"])
    if "t1c" in p:  # gadolinium: the tumor and the veins enhance; fluid and edema do not
        t["t1c"] = t["t1"].copy()
        t["t1c"][[TUMOR, LYTIC]] = p["t1c"]
        t["t1c"][VEIN] = 0.6
        t["t1c"][[CYST, EDEMA]] = FLUID_PROPS["cyst"]["t1c"], FLUID_PROPS["edema"]["t1c"]
    return t


def _dwi_table(kind: str, n_levels: int):
    """Per-material S0 (relative), axial and radial diffusivity (mm^2/s)."""
    s0 = np.zeros(N_MATERIALS)
    lpar = np.full(N_MATERIALS, 1.0e-3)
    lperp = np.full(N_MATERIALS, 1.0e-3)

    def put(mats, a, b, c):
        for m in np.atleast_1d(mats):
            s0[m], lpar[m], lperp[m] = a, b, c

    put([FAT, EPIFAT], 0.05, 0.3e-3, 0.3e-3)  # fat-suppressed
    put(LUNG, 0.01, 1.0e-3, 1.0e-3)
    put(MUSCLE, 0.25, 2.0e-3, 1.2e-3)
    put([AORTA, VESSEL, FEEDER, AKA, ASA, VEIN], 0.03, 1.5e-3, 1.5e-3)
    put(DISC, 0.5, 1.5e-3, 1.5e-3)
    put(CSF, 1.0, 3.0e-3, 3.0e-3)
    put(CORD, 0.45, *CORD_TENSOR)
    put([CANC0 + i for i in range(1, n_levels + 1)] + [RIB_CANC], 0.1, 0.4e-3, 0.4e-3)
    p = TUMOR_PROPS[kind]
    put([TUMOR, LYTIC], p["s0"], p["lpar"], p["lperp"])
    for mat, f in ((CYST, FLUID_PROPS["cyst"]), (EDEMA, FLUID_PROPS["edema"])):
        put(mat, f["s0"], f["lpar"], f["lperp"])
    return s0, lpar, lperp


def gradient_table() -> tuple[np.ndarray, np.ndarray]:
    """3 b0 + ``N_DIRECTIONS`` golden-spiral directions on a hemisphere (world RAS)."""
    n = N_DIRECTIONS
    i = np.arange(n)
    z = 1.0 - (i + 0.5) / n
    r = np.sqrt(1.0 - z * z)
    phi = i * np.pi * (3.0 - np.sqrt(5.0))
    dirs = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    zero = np.zeros((1, 3))
    bvecs = np.concatenate([zero, dirs[: n // 2], zero, dirs[n // 2:], zero])
    bvals = np.where(np.linalg.norm(bvecs, axis=1) > 0, B_VALUE, 0.0)
    return bvals, bvecs


# -- rendering ---------------------------------------------------------------------------------------
def _rasterise(anat: PhantomAnatomy, spec: GridSpec) -> tuple[Lattice, np.ndarray]:
    lat = Lattice(spec.affine(anat), spec.shape, spec.supersample, anat.frame)
    mat = np.full(lat.lshape, FAT, np.uint8)
    lat.paint(mat, anat.ops)
    return lat, mat


def _fraction(lat: Lattice, mat: np.ndarray, materials) -> np.ndarray:
    """Partial-volume fraction (float32 0..1) of the given materials in each voxel."""
    lut = np.zeros(N_MATERIALS, bool)
    lut[list(materials)] = True
    return lat.block_count(lut[mat]).astype(np.float32) * np.float32(1.0 / lat.s**3)


def _render(lat: Lattice, mat: np.ndarray, table: np.ndarray, blend=None) -> np.ndarray:
    vals = table[mat]
    if blend is not None:
        idx, w = blend
        vals.ravel()[idx] = table[CORD] * (1.0 - w) + table[TUMOR] * w
    return lat.block_mean(vals)


def _blend_samples(anat: PhantomAnatomy, lat: Lattice, mat: np.ndarray, fn):
    idx = np.flatnonzero(np.isin(mat.ravel(), (CORD, TUMOR)))
    x, y, z = lat.coords_of(idx)
    return idx, fn(x, y, z).astype(np.float32)


def _bias_field(affine, shape, rng, strength: float = 0.06) -> np.ndarray:
    """Smooth multiplicative field (1 +- a few %) from low-order polynomials in world mm."""
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), axis=-1)
    ras = ijk @ affine[:3, :3].T.astype(np.float32) + affine[:3, 3].astype(np.float32)
    p = (ras - ras.reshape(-1, 3).mean(axis=0)) / 60.0
    c = rng.normal(0.0, strength, 6).astype(np.float32)
    f = 1.0 + c[0] * p[..., 0] + c[1] * p[..., 1] + c[2] * p[..., 2] + c[3] * p[..., 0] * p[..., 2] \
        + c[4] * (p[..., 2] ** 2 - 0.3) + c[5] * (p[..., 1] ** 2 - 0.3)
    return f.astype(np.float32)


def _rician(signal: np.ndarray, sigma: float, rng) -> np.ndarray:
    n1 = rng.standard_normal(signal.shape, dtype=np.float32) * np.float32(sigma)
    n2 = rng.standard_normal(signal.shape, dtype=np.float32) * np.float32(sigma)
    return np.sqrt((signal + n1) ** 2 + n2**2).astype(np.float32)


def _to_hu(arr: np.ndarray) -> np.ndarray:
    return np.clip(np.round(arr), -1024, 3071).astype(np.int16)


def _reorder(vol: Volume, perm, flips, name: str) -> Volume:
    """Same voxel centres, another axis order: new axis ``n`` is old axis ``perm[n]`` (flipped if
    ``flips[n]``)."""
    arr = np.transpose(vol.array, perm)
    m = np.zeros((4, 4))
    m[3, 3] = 1.0
    for new, old in enumerate(perm):
        n = vol.array.shape[old]
        if flips[new]:
            arr = np.flip(arr, axis=new)
            m[old, new] = -1.0
            m[old, 3] = n - 1
        else:
            m[old, new] = 1.0
    return Volume(np.ascontiguousarray(arr), vol.affine @ m, name, dict(vol.meta))


def _rasterise_centrelines(anat: PhantomAnatomy, ref: Volume, label: np.ndarray) -> None:
    """Mark the voxels that vessel centrelines pass through (keeps sub-voxel vessels connected)."""
    order = {1: 0, 5: 1, 4: 2, 3: 3, 2: 4}
    for vs in sorted(anat.vessels, key=lambda v: order[VESSEL_LABEL[v.material]]):
        pts = []
        for a, b in zip(vs.points[:-1], vs.points[1:], strict=True):
            n = max(int(np.linalg.norm(b - a) / 0.2), 1)
            t = np.linspace(0.0, 1.0, n + 1)[:, None]
            pts.append(a + t * (b - a))
        ijk = np.round(ref.ras_to_ijk(anat.frame.local_to_world(np.concatenate(pts)))).astype(int)
        ok = np.all((ijk >= 0) & (ijk < np.asarray(ref.shape3)), axis=1)
        ijk = ijk[ok]
        label[ijk[:, 0], ijk[:, 1], ijk[:, 2]] = VESSEL_LABEL[vs.material]


def _render_dwi(anat: PhantomAnatomy, rng) -> DiffusionData:
    spec = GRIDS["dwi"]
    lat, mat = _rasterise(anat, spec)
    s = lat.s
    nvox = int(np.prod(spec.shape))
    n_levels = len(anat.levels)
    bvals, bvecs = gradient_table()
    s0, lpar, lperp = _dwi_table(anat.kind, n_levels)
    # constant-tensor materials (isotropic, or muscle along the anatomy's S axis)
    axis = anat.frame.rotation[:, 2]
    cos2 = (bvecs @ axis) ** 2
    table = s0[:, None] * np.exp(-bvals[None, :] * (lperp[:, None] + (lpar - lperp)[:, None] * cos2[None, :]))
    follow = TUMOR_PROPS[anat.kind].get("follow", False)
    dyn = [CORD, TUMOR] if (follow or anat.blend_dwi is not None) else [CORD]
    table[dyn] = 0.0
    mt = mat.reshape(spec.shape[0], s, spec.shape[1], s, spec.shape[2], s).transpose(0, 2, 4, 1, 3, 5)
    mt = mt.reshape(nvox, s**3).astype(np.int64)
    counts = np.bincount((np.arange(nvox)[:, None] * N_MATERIALS + mt).ravel(), minlength=nvox * N_MATERIALS)
    frac = counts.reshape(nvox, N_MATERIALS).astype(np.float32) / s**3
    signal = frac @ table.astype(np.float32)
    # direction-dependent samples: cord (fiber field) and a tumor that follows it
    idx = np.flatnonzero(np.isin(mat.ravel(), dyn))
    if idx.size:
        x, y, z = lat.coords_of(idx)
        d = anat.frame.local_dirs_to_world(np.stack([x, y, z], axis=1), anat.fiber_dir(x, y, z))
        m = mat.ravel()[idx]
        a0, ap, ar = s0[m], lpar[m], lperp[m]
        if anat.blend_dwi is not None:
            w = anat.blend_dwi(x, y, z)
            a0 = s0[CORD] * (1 - w) + s0[TUMOR] * w
            ap = lpar[CORD] * (1 - w) + lpar[TUMOR] * w
            ar = lperp[CORD] * (1 - w) + lperp[TUMOR] * w
        c2 = (d @ bvecs.T) ** 2
        sig = a0[:, None] * np.exp(-bvals[None, :] * (ar[:, None] + (ap - ar)[:, None] * c2))
        vox = lat.voxel_of(idx)
        order = np.argsort(vox, kind="stable")
        uv, starts = np.unique(vox[order], return_index=True)
        signal[uv] += (np.add.reduceat(sig[order], starts, axis=0) / s**3).astype(np.float32)
    signal = signal.reshape(*spec.shape, len(bvals)) * DWI_SCALE
    signal *= _bias_field(lat.affine, spec.shape, rng)[..., None]
    sigma = DWI_SCALE * s0[CORD] / 24.0
    data = _rician(signal, sigma, rng)
    vol = Volume(data, lat.affine, "dwi", {"b0_snr_cord": 24.0})
    return DiffusionData(vol, bvals.astype(float), bvecs.astype(float))


# -- truth -------------------------------------------------------------------------------------------
def _tumor_truth(anat: PhantomAnatomy) -> dict:
    fr = anat.frame
    zt = anat.tumor_center[2]
    axis = fr.axis_world(zt)
    e = anat.tumor_ellipsoid
    if e is not None:
        a, b, c = e["semi_axes"]
        out = dict(volume_ml=4.0 / 3.0 * np.pi * a * b * c / 1000.0,
                   centroid_ras=fr.local_to_world(e["center"])[0],
                   max_axial_diameter_mm=2.0 * max(a, b), craniocaudal_extent_mm=2.0 * c,
                   z_range_local=(e["center"][2] - c, e["center"][2] + c), method="closed form (ellipsoid)")
    else:
        # fine rasterisation (0.3 mm) of the analytic indicator in the anatomy frame, with the
        # cranio-caudal ends refined to 0.03 mm (the cord axis is the anatomy's z at the tumor)
        step = 0.3
        lo, hi = np.asarray(anat.tumor_box[0], float) - 1.0, np.asarray(anat.tumor_box[1], float) + 1.0
        hi[1] += max(fr.curve(lo[2]), fr.curve(hi[2]))  # anatomy y = local y + a(z), a >= 0

        def inside(x, y, z):
            return anat.tumor_contains(x, y - fr.curve(z), z)

        gx, gy, gz = np.meshgrid(*[np.arange(lo[k], hi[k] + step, step) for k in range(3)], indexing="ij")
        mask = inside(gx, gy, gz)
        aff = fr.anat_to_world @ np.diag([step, step, step, 1.0])
        aff[:3, 3] = fr.anat_to_world[:3, :3] @ lo + fr.anat_to_world[:3, 3]
        fine = Volume(mask.astype(np.uint8), aff)
        from scipy import ndimage

        boundary = Volume((mask & ~ndimage.binary_erosion(mask)).astype(np.uint8), aff)
        z_ends = [_refine_end(inside, gx[mask], gy[mask], gz[mask], sign) for sign in (-1.0, 1.0)]
        out = dict(volume_ml=float(mask.sum()) * step**3 / 1000.0,
                   centroid_ras=fine.ijk_to_ras(np.argwhere(mask).mean(axis=0)),
                   max_axial_diameter_mm=max_axial_diameter_mm(boundary, axis, calibrate=False) - step,
                   craniocaudal_extent_mm=z_ends[1] - z_ends[0],
                   z_range_local=tuple(z_ends), method="fine rasterisation (0.3 mm; ends 0.03 mm)")
    spanned = [lv.name for lv in anat.levels
               if lv.z_range[0] < out["z_range_local"][1] and lv.z_range[1] > out["z_range_local"][0]]
    out["levels_spanned"] = spanned
    out["axis_ras"] = axis
    return out


def _refine_end(inside, xs, ys, zs, sign: float) -> float:
    """The extreme z (min for ``sign < 0``) of an indicator, refined near a coarse raster's extreme."""
    z0 = float(zs.max() if sign > 0 else zs.min())
    near = np.abs(zs - z0) < 0.35
    x0, x1 = xs[near].min() - 1.0, xs[near].max() + 1.0
    y0, y1 = ys[near].min() - 1.0, ys[near].max() + 1.0
    gx, gy, gz = np.meshgrid(np.arange(x0, x1, 0.1), np.arange(y0, y1, 0.1), z0 + sign * np.arange(-0.3, 0.9, 0.03),
                             indexing="ij")
    hit = inside(gx, gy, gz)
    zs_hit = gz[hit]
    return float(zs_hit.max() if sign > 0 else zs_hit.min()) if zs_hit.size else z0


def _round(obj, nd: int = 3):
    if isinstance(obj, dict):
        return {k: _round(v, nd) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, nd) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_round(v, nd) for v in obj.tolist()]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return round(v, nd) if v == 0.0 or abs(v) >= 0.1 else float(f"{v:.{nd}g}")
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# -- public API --------------------------------------------------------------------------------------
def _mr_images(case: PhantomCase, anat: PhantomAnatomy, lat, mat, tables: dict, r_mr) -> Volume:
    """T2 (the reference grid), T1 and T1c (on the T1 grid) into ``case.volumes``; returns the T2."""
    blend = _blend_samples(anat, lat, mat, anat.blend) if anat.blend is not None else None
    bias = _bias_field(lat.affine, lat.shape, r_mr)
    t2 = _rician(_render(lat, mat, tables["t2"], blend) * bias, MR_NOISE_SIGMA, r_mr)
    t1 = _rician(_render(lat, mat, tables["t1"], blend) * bias, MR_NOISE_SIGMA, r_mr)
    t2_vol = Volume(t2, lat.affine, "t2", {"units": "relative"})
    ref = t2_vol
    case.volumes["t1"] = _reorder(Volume(t1, lat.affine, "t1", {"units": "relative"}), (2, 0, 1),
                                  (False, True, False), "t1")
    if "t1c" in tables:  # post-contrast T1 of the same session, on the T1 grid (noise drawn after T1's)
        t1c = _rician(_render(lat, mat, tables["t1c"], blend) * bias, MR_NOISE_SIGMA, r_mr)
        case.volumes["t1c"] = _reorder(Volume(t1c, lat.affine, "t1c", {"units": "relative", "contrast": "gadolinium"}),
                                       (2, 0, 1), (False, True, False), "t1c")
    case.volumes["t2"] = t2_vol

    return ref


def _truth_labels(case: PhantomCase, anat: PhantomAnatomy, lat, mat, ref: Volume) -> tuple[dict, float]:
    """Truth label maps on the reference grid into ``case.labels`` (majority of each voxel's
    sub-samples). Returns ``(fluid_ml, cord_volume_ml)`` (cyst/edema volumes of the cystic kind)."""
    kind, n_levels = anat.kind, len(anat.levels)
    def lab(arr, name):
        return ref.with_array(np.ascontiguousarray(arr, dtype=np.uint8), name=name)

    tumor_lab = _fraction(lat, mat, (TUMOR, LYTIC)) >= 0.5
    cord_frac = _fraction(lat, mat, (CORD, EDEMA))  # the edematous cord is cord
    fluid = {name: _fraction(lat, mat, (m,)) for name, m in (("cyst", CYST), ("edema", EDEMA))} \
        if kind == CYSTIC else {}
    sac = np.zeros(lat.lshape, np.uint8)
    lat.paint(sac, anat.sac_ops)
    verts = np.zeros(lat.shape, np.uint8)
    best = np.zeros(lat.shape, np.float32)
    total = np.zeros(lat.shape, np.float32)
    for lv in anat.levels:
        mats = [CORT0 + lv.index, CANC0 + lv.index] + ([LYTIC] if lv is anat.tumor_level else [])
        f = _fraction(lat, mat, mats)
        total += f
        verts[f > best] = lv.index
        best = np.maximum(best, f)
    verts[total < 0.5] = 0
    vessels = np.zeros(lat.shape, np.uint8)
    vbest = np.zeros(lat.shape, np.float32)
    for value in (1, 2, 3, 4, 5):
        f = _fraction(lat, mat, [m for m, v in VESSEL_LABEL.items() if v == value])
        vessels[(f >= 0.5) & (f > vbest)] = value
        vbest = np.maximum(vbest, f)
    _rasterise_centrelines(anat, ref, vessels)
    bone_mats = [CORT0 + i for i in range(1, n_levels + 1)] + [CANC0 + i for i in range(1, n_levels + 1)]
    bone = _fraction(lat, mat, [*bone_mats, RIB_CORT, RIB_CANC]) >= 0.5
    calcified = KIND_INFO[kind]["calc"] != "none"
    case.labels = {
        "cord": lab(cord_frac >= 0.5, "cord"),
        "csf": lab(lat.block_mean(sac.astype(np.float32)) >= 0.5, "csf"),
        "vertebrae": lab(verts, "vertebrae"),
        "tumor": lab(tumor_lab, "tumor"),
        "calcification": lab(tumor_lab if calcified else np.zeros_like(tumor_lab), "calcification"),
        "vessels": lab(vessels, "vessels"),
        "bone": lab(bone, "bone"),
    }
    for name, frac in fluid.items():
        case.labels[name] = lab(frac >= 0.5, name)
    fluid_ml = {name: float(frac.sum()) * ref.voxel_volume_ml for name, frac in fluid.items()}
    cord_volume_ml = float(cord_frac.sum()) * ref.voxel_volume_ml
    return fluid_ml, cord_volume_ml


def _ct_images(case: PhantomCase, anat: PhantomAnatomy, tables: dict, props: dict, r_ct, r_sct):
    """CT and synthetic CT (CT grid) into ``case.volumes``. Returns ``(roi, bone_roi, ct_value)``: the
    tumor and vertebra masks on the CT grid and the tumor's CT value (HU) after any target shift."""
    lat, mat = _rasterise(anat, GRIDS["ct"])
    ct_grid = Volume(np.zeros(lat.shape, np.int16), lat.affine, "ct")
    roi = resample_mask_like(case.labels["tumor"], ct_grid).array > 0
    bone_roi = _fraction(lat, mat, [CORT0 + lv.index for lv in anat.levels]
                         + [CANC0 + lv.index for lv in anat.levels]) >= 0.5
    frac_t = _fraction(lat, mat, (TUMOR, LYTIC))
    ct0 = _render(lat, mat, tables["ct"])
    sct0 = _render(lat, mat, tables["sct"])
    ct_value = float(props["ct"])
    if "ct_target" in props and roi.any():
        b = float(frac_t[roi].mean())
        shift = (props["ct_target"] - float(ct0[roi].mean())) / b
        ct0 += shift * frac_t
        ct_value += shift
        shift = (props["sct_target"] - float(sct0[roi].mean())) / b
        sct0 += shift * frac_t
    ct = _to_hu(ct0 + r_ct.standard_normal(ct0.shape, dtype=np.float32) * CT_NOISE_HU)
    sct = _to_hu(sct0 * 0.99 + 3.0 + r_sct.standard_normal(sct0.shape, dtype=np.float32) * SCT_NOISE_HU)
    case.volumes["ct"] = ct_grid.with_array(ct, name="ct", units="HU")
    case.volumes["sct"] = ct_grid.with_array(sct, name="sct", units="HU")
    return roi, bone_roi, ct_value


def generate_phantom(kind: str, *, seed: int = 0) -> PhantomCase:
    """Generate one phantom case in memory.

    Parameters
    ----------
    kind : str
        One of :data:`PHANTOM_KINDS`.
    seed : int
        Seed of ``np.random.default_rng``; the same (kind, seed) gives byte-identical arrays.
        Different seeds vary the anatomy slightly (sizes +- a few %, tumor level and side,
        Adamkiewicz level, patient rotation) and the noise.

    Returns
    -------
    PhantomCase
    """
    if kind not in PHANTOM_KINDS:
        raise ValueError(f"unknown phantom kind {kind!r}; choose one of {', '.join(PHANTOM_KINDS)}")
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    r_anat, r_mr, r_ct, r_sct, r_cta, r_dwi = rng.spawn(6)
    anat = build_anatomy(kind, r_anat)
    n_levels = len(anat.levels)
    tables = _tables(kind, n_levels)
    props = TUMOR_PROPS[kind]
    case = PhantomCase(kind, seed)

    # ---- MR (T2 reference grid) and labels
    lat, mat = _rasterise(anat, GRIDS["t2"])
    ref = _mr_images(case, anat, lat, mat, tables, r_mr)
    fluid_ml, cord_volume_ml = _truth_labels(case, anat, lat, mat, ref)
    del mat

    # ---- CT, synthetic CT (CT grid)
    roi, bone_roi, ct_value = _ct_images(case, anat, tables, props, r_ct, r_sct)

    # ---- angiography
    lat, mat = _rasterise(anat, GRIDS["angio"])
    cta_table = tables["cta"].copy()
    if kind in ("idem-calcified", "idem-faint"):
        cta_table[[TUMOR, LYTIC]] = ct_value
    cta = _render(lat, mat, cta_table)
    cta = _to_hu(cta + r_cta.standard_normal(cta.shape, dtype=np.float32) * CTA_NOISE_HU)
    case.volumes["angio"] = Volume(cta, lat.affine, "angio", {"units": "HU"})
    del mat

    # ---- diffusion
    case.dwi = _render_dwi(anat, r_dwi)

    case.truth = _make_truth(anat, case, roi, bone_roi, cord_volume_ml, ct_value)
    if kind == CYSTIC:
        case.truth.update(_round(_cyst_edema_truth(anat, fluid_ml), 3))
    case.seconds = time.perf_counter() - t_start
    return case


def _make_truth(anat: PhantomAnatomy, case: PhantomCase, roi, bone_roi, cord_volume_ml, ct_value) -> dict:
    kind = anat.kind
    fr = anat.frame
    info = anat.info
    tt = _tumor_truth(anat)
    w = fr.local_to_world
    ct, sct = case.volumes["ct"].array, case.volumes["sct"].array
    feeders = []
    for f in anat.feeders:
        pts_w = w(f["points_local"])
        feeders.append(dict(entry_ras=w(f["entry_local"])[0], origin_ras=w(f["origin_local"])[0],
                            diameter_mm=f["diameter_mm"], length_mm=polyline_length(pts_w), level=f["level"],
                            side=f["side"], parent=f["parent"], segmental=f["segmental"]))
    aka = anat.adamkiewicz
    tumor_props = TUMOR_PROPS[kind]
    ki = KIND_INFO[kind]
    truth = {
        "kind": kind,
        "seed": case.seed,
        "reference_role": "t2",
        "levels": {str(lv.index): lv.name for lv in anat.levels},
        "level_body_ranges_ras_s_mm": {lv.name: [w([0, 0, lv.z_range[0]])[0, 2], w([0, 0, lv.z_range[1]])[0, 2]]
                                       for lv in anat.levels},
        "last_rib_level": "T12",
        "tumor": {
            "volume_ml": tt["volume_ml"],
            "centroid_ras": tt["centroid_ras"],
            "max_axial_diameter_mm": tt["max_axial_diameter_mm"],
            "craniocaudal_extent_mm": tt["craniocaudal_extent_mm"],
            "compartment": ki["compartment"],
            "levels_spanned": tt["levels_spanned"],
            "level": anat.tumor_level.name,
            "side": info["side"],
            "position": info["position"],
            "measurement_method": tt["method"],
            "levels_spanned_rule": "vertebral bodies whose cranio-caudal range overlaps the tumor",
        },
        "cord": {"volume_ml": cord_volume_ml, "axis_ras": tt["axis_ras"],
                 "axis_note": "local cord direction at the tumor level (pointing superior)"},
        "ct": {"tumor_mean_hu": float(ct[roi].mean()) if roi.any() else None, "calcified": ki["calc"] != "none",
               "tumor_core_hu": ct_value, "bone_mean_hu": float(ct[bone_roi].mean())},
        "sct": {"tumor_mean_hu": float(sct[roi].mean()) if roi.any() else None,
                "bone_mean_hu": float(sct[bone_roi].mean()), "grid": "ct"},
        "dwi": {"n_directions": N_DIRECTIONS, "b_value": B_VALUE, "n_b0": 3, "fiber_pattern": ki["fiber_pattern"],
                "b0_snr_cord": 24.0, "cord_fa": 0.707, "cord_ad_mm2_s": CORD_TENSOR[0],
                "cord_rd_mm2_s": CORD_TENSOR[1],
                "tumor_md_mm2_s": (tumor_props["lpar"] + 2 * tumor_props["lperp"]) / 3.0,
                "tumor_fa": _fa(tumor_props["lpar"], tumor_props["lperp"])},
        "feeders": feeders,
        "adamkiewicz": {"present": True, "level": aka["level"], "side": aka["side"],
                        "shares_segmental_with_feeder": bool(aka["shares_segmental_with_feeder"]),
                        "diameter_mm": aka["diameter_mm"], "hairpin_ras": w(aka["hairpin_local"])[0],
                        "junction_ras": w(aka["junction_local"])[0]},
        "vessels_grid": "t2",
        "vessel_labels": {"1": "other vessel", "2": "tumor feeder", "3": "artery of Adamkiewicz",
                          "4": "anterior spinal artery", "5": "draining vein"},
        "expected": {
            "setzer_type": ki["setzer"],
            "pattern": ki["pattern"],
            "sct_disagreement": ki["sct_disagreement"],
            "sct_lesion_depicted": not ki["sct_disagreement"],
            "calcification_class": ki["calc"],
            "compartment": ki["compartment"],
            "embolization_risk": bool(aka["shares_segmental_with_feeder"]),
            "hypervascular": bool(info.get("hypervascular", False)),
        },
    }
    if kind == "extradural-lytic":
        lv = anat.tumor_level
        lyt = (case.labels["vertebrae"].array == lv.index)
        truth["tumor"]["body_fraction_replaced"] = _body_fraction(anat)
        truth["tumor"]["vertebra_voxels"] = int(lyt.sum())
        truth["expected"]["sins_bone_lesion"] = "lytic"
        truth["expected"]["posterolateral_involvement"] = "unilateral"
    return _round(truth, 3)


def _cyst_edema_truth(anat: PhantomAnatomy, fluid_ml: dict) -> dict:
    """truth.json ``cyst`` and ``edema`` entries of the ``intramedullary-cystic`` kind.

    Volumes are the partial-volume fractions summed on the T2 grid (mL); cranio-caudal extents
    are analytic (mm, along the cord, which is straight at the lesion to within 0.1 mm).
    """
    cz = [(c["center"][2] - c["semi_axes"][2], c["center"][2] + c["semi_axes"][2]) for c in anat.cysts]
    w = anat.frame.local_to_world
    return {
        "cyst": {"present": True, "volume_ml": fluid_ml["cyst"], "count": len(anat.cysts),
                 "positions": ["cranial", "caudal"],
                 "craniocaudal_extent_mm": {c["name"].split()[0]: 2.0 * float(c["semi_axes"][2]) for c in anat.cysts},
                 "centroids_ras": [w(c["center"])[0] for c in anat.cysts],
                 "z_ranges_local_mm": cz,
                 "signal": "fluid: T2 0.95 (CSF 1.0), T1 0.17 (CSF 0.15), not enhancing, CT 8 HU"},
        "edema": {"present": True, "volume_ml": fluid_ml["edema"],
                  "craniocaudal_extent_mm": float(anat.edema_z_range[1] - anat.edema_z_range[0]),
                  "signal": "T2 0.68 (cord 0.45, CSF 1.0), T1 0.48 (cord 0.55), not enhancing"},
        "tumor_enhances": True,
    }


def _fa(lpar: float, lperp: float) -> float:
    ev = np.array([lpar, lperp, lperp])
    md = ev.mean()
    return float(np.sqrt(1.5) * np.linalg.norm(ev - md) / np.linalg.norm(ev))


def _body_fraction(anat: PhantomAnatomy) -> float:
    """Fraction of the lesion level's body (inside its cortex) replaced by tumor (0.5 mm sampling)."""
    from SpinePlannerLib.phantom.anatomy import body_shape

    lv = anat.tumor_level
    body = body_shape(lv, 1.2)
    g = [np.arange(body.lo[k], body.hi[k], 0.5) for k in range(3)]
    x, y, z = np.meshgrid(*g, indexing="ij")
    inside = body.contains(x, y, z)
    tum = anat.tumor_contains(x, y, z) & inside
    return float(tum.sum() / max(inside.sum(), 1))


def write_phantom(kind: str, out_dir: Path, *, seed: int = 0) -> dict[str, Path]:
    """Generate a phantom case and write it to ``out_dir`` (files listed in the module docstring).

    Returns
    -------
    dict
        name -> written path: ``t1``, ``t2``, ``ct``, ``sct``, ``angio`` (and ``t1c`` for the
        ``intramedullary-cystic`` kind), ``dwi``, ``bval``, ``bvec``, ``labels/<name>`` for each
        label map, and ``truth``.
    """
    case = generate_phantom(kind, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for role in ("t1", "t1c", "t2", "ct", "sct", "angio"):
        if role in case.volumes:
            written[role] = write_volume(case.volumes[role], out / f"{role}.nii.gz")
    written["dwi"] = write_volume(case.dwi.volume, out / "dwi.nii.gz")
    fsl = ras_to_fsl_bvecs(case.dwi.bvecs_ras, case.dwi.volume.affine)
    written["bval"] = write_text_atomic(out / "dwi.bval", " ".join(f"{b:g}" for b in case.dwi.bvals) + "\n")
    written["bvec"] = write_text_atomic(out / "dwi.bvec", "\n".join(" ".join(f"{v:.8f}" for v in row) for row in fsl.T)
                                  + "\n")
    for name, lab in case.labels.items():
        written[f"labels/{name}"] = write_volume(lab, out / "labels" / f"{name}.nii.gz")
    written["truth"] = write_text_atomic(out / "truth.json", json.dumps(case.truth, indent=2) + "\n")
    return written
