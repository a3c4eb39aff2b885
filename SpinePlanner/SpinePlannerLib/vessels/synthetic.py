"""A synthetic CT angiogram with known vessels, for tests and the vessel benchmark (L1).

Anatomy is defined analytically in a local frame (x = right, y = anterior, z = superior, mm)
placed at ``center_ras`` and rasterised on any grid (oblique, anisotropic) with a one-voxel
linear partial-volume ramp at every edge. It is deliberately simple but has what the vessel
analysis must cope with: cortical/cancellous bone (vertebral bodies and arches), a
contrast-filled aorta, segmental arteries with dorsal rami, a thin anterior spinal artery on the
cord, an artery of Adamkiewicz joining it with a hairpin turn, an ordinary radiculomedullary
branch with a T junction, a tumor with feeders of known entry point, and optionally a calcified
blob as bright as contrast. This is not the project phantom (``phantom.py``); it is a
controlled test object whose truth is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from SpinePlannerLib.core.volume import Volume

VESSEL_HU = 380.0
AORTA_CENTER = np.array([-20.0, 45.0])
AORTA_RADIUS = 11.0
BODY_CENTER = np.array([0.0, 24.0])
BODY_RADIUS = 15.0
ASA_Y = 5.0
CORD_RADIUS = 4.5


@dataclass
class Tube:
    """A polyline tube: ``points`` (n, 3) local mm, constant ``radius`` (mm), a role label."""

    points: np.ndarray
    radius: float
    role: int = 1  # 1 vessel, 2 feeder, 3 Adamkiewicz, 4 anterior spinal artery (as the phantom)
    hu: float = VESSEL_HU


@dataclass
class SyntheticCTA:
    angio: Volume
    tumor: Volume
    cord: Volume
    vertebrae: Volume
    levels: dict
    vessels: Volume  # role labels (1 vessel, 2 feeder, 3 Adamkiewicz, 4 anterior spinal artery)
    truth: dict = field(default_factory=dict)


def level_centers(n_levels: int) -> np.ndarray:
    """Cranio-caudal centres (local z, mm) of the vertebral bodies, 25 mm apart, centred on 0."""
    return (np.arange(n_levels) - (n_levels - 1) / 2.0) * 25.0


def _segmental(z: float, side: int) -> np.ndarray:
    """Segmental artery from inside the aorta around the body to the intervertebral foramen."""
    if side > 0:
        pts = [(-12, 38, 0), (5, 41, 0), (20, 32, 0), (24, 15, 0), (22, 2, 6), (16, 0, 12.5)]
    else:
        pts = [(-14, 37, 0), (-24, 30, 0), (-25, 15, 0), (-22, 2, 6), (-16, 0, 12.5)]
    return np.array(pts, float) + np.array([0, 0, z])


def _ellipsoid_surface_towards(center, radii, point) -> np.ndarray:
    """Point of the ellipsoid surface on the ray from its centre towards ``point``."""
    d = np.asarray(point, float) - center
    t = 1.0 / np.sqrt(np.sum((d / radii) ** 2))
    return center + t * d


def build_anatomy(*, n_levels: int = 3, tumor_side: int = 1, tumor_z: float = 2.0,
                  feeder_levels=(1, 2), aka_level: int = 0, aka_side: int = -1,
                  calcified_blob: bool = False) -> dict:
    """Tubes, tumor ellipsoid and truth in the local frame (see module docstring).

    ``feeder_levels`` are level indices (0 = most caudal) whose segmental artery on the tumor's
    side sends a dorsal feeder to the tumor; ``aka_level``/``aka_side`` place the artery of
    Adamkiewicz (it shares its segmental artery with a feeder when ``aka_level`` is in
    ``feeder_levels`` and ``aka_side == tumor_side``).
    """
    zc = level_centers(n_levels)
    z_lo, z_hi = zc[0] - 15.0, zc[-1] + 15.0
    tumor_c = np.array([18.0 * tumor_side, -14.0, tumor_z])
    tumor_r = np.array([7.0, 7.0, 9.0])
    tubes: list[Tube] = [Tube(np.array([[0, ASA_Y, z_lo], [0, ASA_Y, z_hi]], float), 0.45, role=4)]
    for z in zc:
        for side in (1, -1):
            tubes.append(Tube(_segmental(z, side), 1.0))
    feeders = []
    for li in feeder_levels:
        z = zc[li]
        origin = np.array([22.0 * tumor_side, 2.0, z + 6.0])
        bend = np.array([27.0 * tumor_side, -6.0, 0.5 * (z + 6.0 + tumor_z)])
        entry = _ellipsoid_surface_towards(tumor_c, tumor_r, bend)
        pts = np.array([origin, bend, entry])
        tubes.append(Tube(pts, 0.6, role=2))
        feeders.append({"entry": entry, "diameter_mm": 1.2, "length_mm": float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()),
                        "level_index": li, "side": "right" if tumor_side > 0 else "left"})
    # artery of Adamkiewicz: from the foramen into the canal, up along the antero-lateral cord
    # surface, hairpin into the descending anterior spinal artery
    za = zc[aka_level]
    s = aka_side
    aka = np.array([(16 * s, 0, za + 12.5), (7 * s, 3.5, za + 13.5), (3.2 * s, 4.6, za + 16),
                    (2.8 * s, 5.0, za + 24), (1.6 * s, 5.2, za + 28), (0.0, ASA_Y, za + 29.5)], float)
    tubes.append(Tube(aka, 0.5, role=3))
    # an ordinary radiculomedullary branch joining at a right angle (not a hairpin)
    other = (aka_level + 2) % n_levels if n_levels > 2 else aka_level
    zo = zc[other] + 12.5
    tubes.append(Tube(np.array([(-16 * s, 0, zo), (-7 * s, 3.5, zo), (0.0, ASA_Y, zo)], float), 0.4))
    blobs = []
    if calcified_blob:
        blobs.append((np.array([-24.0 * tumor_side, -16.0, tumor_z]), 4.0, 600.0))
    return {"levels_z": zc, "z_range": (z_lo, z_hi), "tubes": tubes, "tumor_center": tumor_c, "tumor_radii": tumor_r,
            "feeders": feeders, "aka": {"level_index": aka_level, "side": "right" if s > 0 else "left"}, "blobs": blobs}


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def rasterize(anatomy: dict, affine, shape, *, center_ras=(0.0, 0.0, 0.0), rotation=None, seed: int = 0,
              noise_hu: float = 12.0, contrast: bool = True, tumor_hu: float = 60.0, slab: int = 16):
    """Rasterise ``anatomy`` on a grid. Returns (hu int16, tumor, cord, vertebrae, vessel roles) arrays.

    ``rotation`` (3x3) maps local (x right, y anterior, z superior) to RAS; ``contrast=False``
    gives blood 40 HU (a non-contrast CT). Processed in slabs of ``slab`` k-planes.
    """
    affine = np.asarray(affine, float)
    rot = np.eye(3) if rotation is None else np.asarray(rotation, float)
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng(seed)
    hu = np.empty(shape, np.int16)
    tumor = np.zeros(shape, np.uint8)
    cord = np.zeros(shape, np.uint8)
    vert = np.zeros(shape, np.uint8)
    roles = np.zeros(shape, np.uint8)
    h = float(np.linalg.norm(affine[:3, :3], axis=0).max())
    vessel_hu = VESSEL_HU if contrast else 40.0
    zc = anatomy["levels_z"]
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    m = rot.T @ affine[:3, :3]  # voxel index -> local mm
    t = rot.T @ (affine[:3, 3] - np.asarray(center_ras, float))
    ii, jj = ii.astype(float), jj.astype(float)
    for k0 in range(0, shape[2], slab):
        k1 = min(shape[2], k0 + slab)
        kk = np.arange(k0, k1, dtype=float)
        # local coordinates (x right, y anterior, z superior) of the slab's voxel centres
        p = np.empty((ii.size * len(kk), 3))
        for c in range(3):
            p[:, c] = (m[c, 0] * ii[..., None] + m[c, 1] * jj[..., None] + m[c, 2] * kk[None, None, :] + t[c]).ravel()
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        rho = np.hypot(x, y)
        img = np.where(rho > 45.0, -90.0, np.where(rho < 9.0, 10.0, 40.0))  # fat, CSF, soft tissue
        k = np.flatnonzero(rho < CORD_RADIUS + h)
        img[k] += np.clip(0.5 - (rho[k] - CORD_RADIUS) / h, 0, 1) * (35.0 - img[k])
        # vertebral bodies (cortex 1.5 mm) and arches, discs between bodies
        vlab = np.zeros(len(p), np.uint8)
        for li, c in enumerate(zc):
            k = np.flatnonzero((np.abs(z - c) < 16.0) & (y > -14.0) & (y < 40.0 + h) & (np.abs(x) < 16.0 + h))
            if k.size == 0:
                continue
            xk, yk, zk, rk, ik = x[k], y[k], z[k], rho[k], img[k]
            dz = np.abs(zk - c) - 10.0
            dr = np.hypot(xk - BODY_CENTER[0], yk - BODY_CENTER[1]) - BODY_RADIUS
            d_body = np.maximum(dz, dr)  # signed distance-like (box in z x cylinder)
            body = np.clip(0.5 - d_body / h, 0, 1)
            cortex = np.clip(0.5 - (-1.5 - d_body) / h, 0, 1)  # outer 1.5 mm shell
            arch_d = np.maximum(np.maximum(9.0 - rk, rk - 13.0), np.maximum(dz, yk - 10.0))
            arch = np.clip(0.5 - arch_d / h, 0, 1)
            bone_val = 250.0 + 650.0 * cortex
            ik = ik + body * (bone_val - ik)
            ik = ik + arch * (900.0 - ik)
            disc = (np.abs(np.abs(zk - c) - 12.5) < 2.5) & (dr < 0)
            img[k] = np.where(disc & (body < 0.5), 80.0, ik)
            vlab[k[(body >= 0.5) | (arch >= 0.5)]] = li + 1
        # aorta
        k = np.flatnonzero(np.abs(x - AORTA_CENTER[0]) < AORTA_RADIUS + 2 * h)
        d_ao = np.hypot(x[k] - AORTA_CENTER[0], y[k] - AORTA_CENTER[1]) - AORTA_RADIUS
        ao = np.clip(0.5 - d_ao / h, 0, 1)
        img[k] = img[k] + ao * (vessel_hu - img[k])
        # tumor
        tc, tr = anatomy["tumor_center"], anatomy["tumor_radii"]
        q = np.full(len(p), np.inf)
        k = np.flatnonzero(np.all(np.abs(p - tc) < tr + 2 * h, axis=1))
        q[k] = np.sqrt(np.sum(((p[k] - tc) / tr) ** 2, axis=1))
        tfrac = np.clip(0.5 - (q[k] - 1.0) * tr.min() / h, 0, 1)
        img[k] = img[k] + tfrac * (tumor_hu - img[k])
        for bc, br, bhu in anatomy["blobs"]:
            bf = np.clip(0.5 - (np.linalg.norm(p - bc, axis=1) - br) / h, 0, 1)
            img = img + bf * (bhu - img)
        role = np.zeros(len(p), np.uint8)
        lo, hi = p.min(axis=0) - 3, p.max(axis=0) + 3
        for tube in anatomy["tubes"]:
            pts = tube.points
            if np.any(pts.max(axis=0) < lo) or np.any(pts.min(axis=0) > hi):
                continue
            thu = tube.hu if contrast else 40.0
            for a, b in zip(pts[:-1], pts[1:], strict=True):
                seg_lo = np.minimum(a, b) - tube.radius - 2 * h
                seg_hi = np.maximum(a, b) + tube.radius + 2 * h
                if np.any(seg_hi < lo) or np.any(seg_lo > hi):
                    continue
                zsel = np.flatnonzero((z >= seg_lo[2]) & (z <= seg_hi[2]))
                near = np.all((p[zsel, :2] >= seg_lo[:2]) & (p[zsel, :2] <= seg_hi[:2]), axis=1)
                idx = zsel[near]
                if idx.size == 0:
                    continue
                d = _segment_distance(p[idx], a, b) - tube.radius
                f = np.clip(0.5 - d / h, 0, 1)
                img[idx] = img[idx] + f * (thu - img[idx])
                inside = idx[f >= 0.5]
                role[inside] = np.maximum(role[inside], tube.role)
        img = img + rng.normal(0.0, noise_hu, len(p)).astype(np.float32)
        sl = (slice(None), slice(None), slice(k0, k1))
        hu[sl] = np.clip(np.round(img), -1024, 3071).astype(np.int16).reshape(shape[0], shape[1], k1 - k0)
        tumor[sl] = (q <= 1.0).reshape(shape[0], shape[1], k1 - k0)
        cord[sl] = (rho <= CORD_RADIUS).reshape(shape[0], shape[1], k1 - k0)
        vert[sl] = vlab.reshape(shape[0], shape[1], k1 - k0)
        roles[sl] = role.reshape(shape[0], shape[1], k1 - k0)
    return hu, tumor, cord, vert, roles


def synthetic_cta(affine, shape, *, center_ras=(0.0, 0.0, 0.0), rotation=None, seed: int = 0,
                  contrast: bool = True, level_names=None, **anatomy_options) -> SyntheticCTA:
    """A synthetic CT angiogram on the given grid with its truth (RAS mm).

    Parameters
    ----------
    affine, shape
        Target grid (``ijk -> RAS`` mm), any orientation.
    center_ras : 3 floats
        RAS position of the local origin (canal centre at the middle level).
    rotation : 3x3 or None
        Local (right, anterior, superior) axes in RAS (columns); identity by default.
    contrast : bool
        False gives a non-contrast CT (blood 40 HU).
    level_names : sequence of str
        Names of the levels from caudal to cranial (default T12, T11, ... upwards).
    anatomy_options
        Passed to :func:`build_anatomy`.
    """
    anatomy = build_anatomy(**anatomy_options)
    n = len(anatomy["levels_z"])
    names = list(level_names) if level_names else [f"T{12 - i}" for i in range(n)]
    rot = np.eye(3) if rotation is None else np.asarray(rotation, float)
    c = np.asarray(center_ras, float)
    hu, tumor, cord, vert, roles = rasterize(anatomy, affine, shape, center_ras=c, rotation=rot, seed=seed,
                                             contrast=contrast)

    def to_ras(p):
        return np.asarray(p, float) @ rot.T + c

    feeders = []
    for f in anatomy["feeders"]:
        li = f["level_index"]
        feeders.append({"entry_ras": to_ras(f["entry"]).tolist(), "diameter_mm": f["diameter_mm"],
                        "length_mm": round(f["length_mm"], 2), "level": names[li], "side": f["side"],
                        "parent": f"{names[li]} {f['side']} segmental artery"})
    aka = anatomy["aka"]
    shares = any(f["level_index"] == aka["level_index"] and f["side"] == aka["side"] for f in anatomy["feeders"])
    truth = {"feeders": feeders,
             "adamkiewicz": {"present": True, "level": names[aka["level_index"]], "side": aka["side"],
                             "shares_segmental_with_feeder": shares},
             "levels": {str(i + 1): nm for i, nm in enumerate(names)},
             "contrast": contrast}
    affine = np.asarray(affine, float)
    return SyntheticCTA(
        angio=Volume(hu, affine, "angio", {"units": "HU"}),
        tumor=Volume(tumor, affine.copy(), "tumor"),
        cord=Volume(cord, affine.copy(), "cord"),
        vertebrae=Volume(vert, affine.copy(), "vertebrae"),
        levels=truth["levels"],
        vessels=Volume(roles, affine.copy(), "vessels"),
        truth=truth,
    )


def oblique_grid(*, spacing=(0.6, 0.6, 0.8), extent_mm=(76.0, 90.0, 90.0), angles_deg=(6.0, -4.0, 9.0),
                 center_ras=(0.0, 0.0, 0.0), local_center=(0.0, 10.0, 0.0)) -> tuple[np.ndarray, tuple]:
    """An oblique, anisotropic grid covering a box of ``extent_mm`` (local x, y, z) centred at
    ``local_center`` of the anatomy frame placed at ``center_ras``. Returns (affine, shape)."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    spacing = np.asarray(spacing, float)
    shape = tuple(int(np.ceil(e / s)) + 1 for e, s in zip(extent_mm, spacing, strict=True))
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(spacing)
    start_local = np.asarray(local_center, float) - np.asarray(extent_mm, float) / 2.0
    affine[:3, 3] = np.asarray(center_ras, float) + rot @ start_local
    return affine, shape
