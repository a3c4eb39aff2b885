"""Analytic anatomy of the digital spine-tumor phantom (phantom helper, L1).

Everything here is in spine-local millimetres (see :mod:`phantom_raster`): ``x`` right,
``y`` anterior of the canal centreline, ``z`` superior; the canal centre is ``x = y = 0``.
Sizes follow adult thoracolumbar anatomy (T9–L1): vertebral bodies 20–22 mm high, discs
about 5 mm, canal about 17 x 16 mm (LR x AP), thecal sac 14 x 12.4 mm, cord 10 x 8 mm.

The module builds, for one phantom kind and random generator, a :class:`PhantomAnatomy`: the
painter's list of (shape, material), the cord model with its white-matter fiber direction
field, the tumor (analytic indicator + closed-form measurements when it is an ellipsoid), and
the vessel tree (centrelines with radii, labels, feeders, artery of Adamkiewicz).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from SpinePlannerLib.phantom.raster import (
    Shape,
    SpineFrame,
    capsule,
    custom,
    ellipsoid,
    elliptic_cylinder,
    rotation_xyz,
    tube,
)

# -- materials (lattice values) --------------------------------------------------------------
FAT, EPIFAT, LUNG, MUSCLE, AORTA, DISC, CSF, CORD, TUMOR, LYTIC = range(10)
RIB_CORT, RIB_CANC, VESSEL, FEEDER, AKA, ASA, VEIN = range(10, 17)
CYST, EDEMA = 17, 18  # only painted by the ``intramedullary-cystic`` kind
CORT0, CANC0 = 20, 30  # + level index 1..N
N_MATERIALS = 40
VESSEL_LABEL = {AORTA: 1, VESSEL: 1, FEEDER: 2, AKA: 3, ASA: 4, VEIN: 5}
"""Material -> value in ``labels/vessels.nii.gz`` (1 other, 2 feeder, 3 Adamkiewicz, 4 ASA, 5 vein)."""

LEVEL_NAMES = ("T9", "T10", "T11", "T12", "L1")

CANAL = (8.6, 8.0)  # bony canal semi-axes (LR, AP), centred at the origin
SAC = (7.0, 6.2, -0.3)  # thecal sac semi-axes (LR, AP) and centre y
CORD_R = (5.0, 4.0, 0.6)  # cord semi-axes (LR, AP) and centre y (anterior in the thoracic sac)
AORTA_C = (-20.0, 43.0, 10.0)  # aorta centre x, y and radius (anterior-left of the bodies)

KIND_INFO = {
    "intramedullary-displacing": dict(compartment="intramedullary", setzer=1, pattern="displaced",
                                      fiber_pattern="displaced", calc="none", sct_disagreement=False),
    "intramedullary-infiltrative": dict(compartment="intramedullary", setzer=3, pattern="encased",
                                        fiber_pattern="encased", calc="none", sct_disagreement=False),
    "intramedullary-crossing": dict(compartment="intramedullary", setzer=2, pattern="crossing",
                                    fiber_pattern="crossing", calc="none", sct_disagreement=False),
    "idem-calcified": dict(compartment="intradural_extramedullary", setzer=None, pattern=None,
                           fiber_pattern="displaced_by_extramedullary_mass", calc="dense", sct_disagreement=True),
    "idem-soft": dict(compartment="intradural_extramedullary", setzer=None, pattern=None,
                      fiber_pattern="displaced_by_extramedullary_mass", calc="none", sct_disagreement=False),
    "idem-faint": dict(compartment="intradural_extramedullary", setzer=None, pattern=None,
                       fiber_pattern="displaced_by_extramedullary_mass", calc="faint", sct_disagreement=True),
    "extradural-lytic": dict(compartment="extradural", setzer=None, pattern=None,
                             fiber_pattern="straight", calc="none", sct_disagreement=False),
    "intramedullary-cystic": dict(compartment="intramedullary", setzer=1, pattern="displaced",
                                  fiber_pattern="displaced", calc="none", sct_disagreement=False),
}

CYSTIC = "intramedullary-cystic"
"""Enhancing intramedullary nodule (hemangioblastoma/ependymoma-like) with a cranial and a caudal
polar cyst inside the cord (fluid: CSF-like on T2 and T1, not enhancing) and T2-hyperintense
cord edema around them (between cord and CSF on T2, non-enhancing); the case has a T1c."""


@dataclass
class Level:
    index: int  # 1..N (value in labels/vertebrae)
    name: str
    zc: float  # body centre, spine-local z (mm)
    h: float  # body height (mm)
    wx: float  # body semi-axis LR (mm)
    wy: float  # body semi-axis AP (mm)

    @property
    def yb(self) -> float:
        """y of the body centre (posterior wall 1.5 mm anterior of the canal)."""
        return CANAL[1] + 1.5 + self.wy

    @property
    def z_range(self) -> tuple[float, float]:
        return self.zc - self.h / 2, self.zc + self.h / 2


@dataclass
class VesselSpec:
    """One vessel centreline (spine-local polyline) with its radius and material."""

    name: str
    points: np.ndarray
    radius: float
    material: int


@dataclass
class PhantomAnatomy:
    kind: str
    frame: SpineFrame
    levels: list[Level]
    ops: list = field(default_factory=list)  # painter's list (Shape, material, where)
    sac_ops: list = field(default_factory=list)  # (Shape, 1, None): inside the dura
    cord_contains: Callable | None = None
    cord_center: Callable | None = None  # z -> (x, y) of the (deformed) cord centre
    fiber_dir: Callable | None = None  # (x, y, z) arrays -> (n, 3) local directions
    tumor_contains: Callable | None = None
    tumor_ellipsoid: dict | None = None  # center, semi_axes, rotation (local) when the tumor is one
    tumor_box: tuple | None = None  # (lo, hi) local bounding box of the tumor
    tumor_center: np.ndarray | None = None
    blend: Callable | None = None  # infiltrative: (x, y, z) -> weight of tumor signal (MR)
    blend_dwi: Callable | None = None  # infiltrative: weight of tumor diffusion (wider: peritumoral)
    vessels: list[VesselSpec] = field(default_factory=list)
    feeders: list[dict] = field(default_factory=list)
    adamkiewicz: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    tumor_level: Level | None = None
    cysts: list[dict] = field(default_factory=list)  # intramedullary-cystic: center, semi_axes (local mm)
    edema_contains: Callable | None = None  # intramedullary-cystic: edema envelope (within the cord)
    edema_z_range: tuple | None = None  # its cranio-caudal range (spine-local z, mm)


# -- helpers ---------------------------------------------------------------------------------
def _jitter(rng: np.random.Generator, value: float, rel: float) -> float:
    return float(value * (1.0 + rel * np.clip(rng.standard_normal(), -2.0, 2.0)))


def _ellipse_q(x, y, rx, ry, cy=0.0, cx=0.0):
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2


def _first_inside(contains, p_from, p_to, step: float = 0.02) -> np.ndarray | None:
    """First point on the segment ``p_from -> p_to`` where ``contains`` is true (spine-local)."""
    p_from, p_to = np.asarray(p_from, float), np.asarray(p_to, float)
    n = max(int(np.linalg.norm(p_to - p_from) / step), 2)
    t = np.linspace(0.0, 1.0, n)
    pts = p_from + t[:, None] * (p_to - p_from)
    inside = np.asarray(contains(pts[:, 0], pts[:, 1], pts[:, 2]), bool)
    if not inside.any():
        return None
    return pts[int(np.argmax(inside))]


def _nearest_on_ellipsoid(p, center, semi_axes, rotation) -> np.ndarray:
    """Point of the ellipsoid surface nearest to the outside point ``p`` (spine-local mm).

    The segment from ``p`` to it meets the ellipsoid only there, along the surface normal.
    """
    rot = np.asarray(rotation, float)
    a = np.asarray(semi_axes, float)
    q = rot.T @ (np.asarray(p, float) - np.asarray(center, float))
    if np.sum((q / a) ** 2) <= 1.0:
        raise ValueError("the point lies inside the ellipsoid")

    def excess(t):
        return float(np.sum((a * q / (a * a + t)) ** 2) - 1.0)

    lo, hi = 0.0, float(np.max(a) * np.linalg.norm(q))  # excess(lo) > 0 >= excess(hi)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) > 0.0 else (lo, mid)
    return np.asarray(center, float) + rot @ (a * a * q / (a * a + hi))


def _surface_y(contains, x: float, z: float, y_start: float, y_stop: float = 14.0) -> float:
    """Largest y (anterior surface) along the ray from ``y_start`` where ``contains`` holds."""
    ys = np.arange(y_start, y_stop, 0.05)
    inside = np.asarray(contains(np.full_like(ys, x), ys, np.full_like(ys, z)), bool)
    if not inside.any():
        return y_start
    last = len(inside) - 1 - int(np.argmax(inside[::-1]))
    return float(ys[last])


# -- the normal spine ------------------------------------------------------------------------
def make_levels(rng: np.random.Generator) -> list[Level]:
    pitch = _jitter(rng, 25.5, 0.015)
    heights = [19.5, 20.0, 20.5, 21.0, 22.0]
    wxs = [15.5, 16.0, 16.8, 17.8, 19.5]
    wys = [12.5, 13.0, 13.5, 14.0, 15.0]
    out = []
    for i, name in enumerate(LEVEL_NAMES):
        out.append(Level(i + 1, name, (2 - i) * pitch, _jitter(rng, heights[i], 0.02),
                         _jitter(rng, wxs[i], 0.02), _jitter(rng, wys[i], 0.02)))
    return out


def body_shape(lv: Level, shrink: float = 0.0) -> Shape:
    z0, z1 = lv.z_range
    return elliptic_cylinder((0.0, lv.yb), (lv.wx - shrink, lv.wy - shrink), (z0 + shrink, z1 - shrink),
                             waist=0.05, name=f"body {lv.name}")


def arch_shape(lv: Level, shrink: float = 0.0) -> Shape:
    """Pedicles and laminae: an elliptic ring around the canal behind the body."""
    cx, cy = CANAL
    thick = 5.5
    zc = lv.zc
    y_body = CANAL[1] + 1.5

    def contains(x, y, z):
        qin = (x / (cx + shrink)) ** 2 + (y / (cy + shrink)) ** 2
        qout = (x / (cx + thick - shrink)) ** 2 + (y / (cy + thick - shrink)) ** 2
        ring = (qin >= 1.0) & (qout <= 1.0) & (y <= y_body - shrink)
        ped = (y > -3.0) & (z >= zc + 0.5 + shrink) & (z <= zc + 9.5 - shrink)
        lam = (y <= -3.0) & (z >= zc - 6.0 + shrink) & (z <= zc + 9.5 - shrink)
        return ring & (ped | lam)

    return custom(contains, (-(cx + thick), -(cy + thick), zc - 6.0), (cx + thick, y_body, zc + 9.5), "arch")


def posterior_processes(lv: Level, shrink: float = 0.0) -> list[Shape]:
    """Spinous and transverse processes as capsules (cortical when shrink = 0)."""
    zc = lv.zc
    out = []
    if lv.name.startswith("L"):
        out.append(capsule((0, -12.5, zc + 2.0), (0, -34.0, zc + 0.0), 4.0 - shrink))
        for s in (-1, 1):
            out.append(capsule((s * 11.0, -3.0, zc + 4.0), (s * 31.0, -2.0, zc + 4.0), 3.2 - shrink))
    else:
        out.append(capsule((0, -12.5, zc + 5.0), (0, -33.0, zc - 9.0), 3.2 - shrink))
        for s in (-1, 1):
            out.append(capsule((s * 11.0, -4.0, zc + 6.0), (s * 25.5, -12.0, zc + 8.0), 3.6 - shrink))
    return out


def rib_points(lv: Level, side: int) -> np.ndarray | None:
    """Rib centreline (head at the body, neck, tubercle, shaft leaving the field); None for lumbar."""
    if lv.name.startswith("L"):
        return None
    s = side
    zc = lv.zc
    head = (s * (lv.wx - 1.0), CANAL[1] + 4.0, zc + 7.5)
    if lv.name in ("T11", "T12"):  # floating/false ribs: no costotransverse joint, shorter
        pts = [head, (s * 23.0, 1.0, zc + 5.5), (s * 31.0, -5.0, zc + 2.0), (s * 44.0, -4.0, zc - 5.0)]
    else:
        pts = [head, (s * 22.0, -3.0, zc + 7.5), (s * 25.0, -8.5, zc + 7.0), (s * 32.0, -13.0, zc + 4.0),
               (s * 42.0, -12.0, zc - 3.0), (s * 55.0, -2.0, zc - 10.0)]
    return np.array(pts, float)


def normal_cord(z, cx=0.0):
    """Semi-axes and centre of the undeformed cord at spine-local ``z`` (conus taper below -38 mm)."""
    taper = 1.0 - 0.28 * np.clip((-38.0 - z) / 26.0, 0.0, 1.0)
    return CORD_R[0] * taper, CORD_R[1] * taper, cx, CORD_R[2]


# -- vessels -------------------------------------------------------------------------------------
def segmental_points(lv: Level, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Segmental (intercostal/lumbar) artery from the aorta around the body to the foramen.

    Returns the polyline and its foraminal branch point ``B``.
    """
    zc = lv.zc
    rx, ry = lv.wx + 2.6, lv.wy + 2.6
    if side < 0:
        phis = [40.0, 62.0, 85.0, 108.0, 130.0]
        start = [AORTA_C[0] + 4.0, AORTA_C[1] - 5.0, zc + 0.5]
    else:
        phis = [-22.0, 0.0, 30.0, 60.0, 90.0, 115.0, 135.0]
        start = [AORTA_C[0] + 6.0, AORTA_C[1] - 3.0, zc + 0.5]
    pts = [start]
    for k, ph in enumerate(phis):
        r = np.deg2rad(ph)
        dz = -3.5 * max(0.0, (k - len(phis) + 3) / 2.0)
        pts.append([side * rx * np.sin(r), lv.yb + ry * np.cos(r), zc + dz])
    b = np.array([side * 15.5, 3.0, zc - 5.0])
    pts.append(b)
    return np.array(pts, float), b


def dorsal_branch(lv: Level, side: int, b) -> np.ndarray:
    zc = lv.zc
    return np.array([b, (side * 17.5, -4.0, zc - 6.0), (side * 19.5, -14.0, zc - 8.0), (side * 20.0, -26.0, zc - 9.0)])


def spinal_branch(lv: Level, side: int, b) -> np.ndarray:
    zc = lv.zc
    return np.array([b, (side * 11.5, 2.8, zc - 6.5), (side * 8.2, 2.2, zc - 6.0)])


IDEM_GUTTER = (6.0, -1.0)
"""|x| and y (mm) of the lateral subarachnoid gutter (between the cord and the dura, 2.5 mm inside
the bony canal) along which an IDEM feeder from an adjacent level runs to the tumor."""
IDEM_POLE_GAP = 2.5
"""How far (mm) beyond the tumor's cranio-caudal pole such a feeder leaves the gutter for the tumor."""


def idem_feeder_route(lv: Level, side: int, b, tumor_ellipsoid: dict, same_level: bool) -> tuple[np.ndarray, np.ndarray]:
    """Course of an intradural-extramedullary tumor feeder (radiculomeningeal artery).

    It leaves the segmental artery at the foraminal branch point ``b``, runs through the
    intervertebral foramen (the radicular artery's course, below the pedicle) into the canal,
    and reaches the tumor from the side facing it: from the tumor's own level straight to the
    nearest tumor surface point; from an adjacent level medially into the lateral gutter
    (:data:`IDEM_GUTTER`, clear of the pedicles and laminae it passes) and along it to
    :data:`IDEM_POLE_GAP` mm beyond the facing pole, then along the surface normal. Returns the
    route (``b`` .. last point before the tumor) and the entry point, where the centreline first
    meets the tumor surface (spine-local mm).
    """
    e = tumor_ellipsoid
    route = [np.asarray(p, float) for p in spinal_branch(lv, side, b)]
    if not same_level:
        gx, gy = side * IDEM_GUTTER[0], IDEM_GUTTER[1]
        toward = np.sign(e["center"][2] - lv.zc)  # +1: the level lies below the tumor
        pole_z = e["center"][2] - toward * (np.abs(e["rotation"][2]) @ e["semi_axes"] + IDEM_POLE_GAP)
        route += [np.array([gx, gy, route[-1][2]]), np.array([gx, gy, pole_z])]
    entry = _nearest_on_ellipsoid(route[-1], e["center"], e["semi_axes"], e["rotation"])
    return np.array(route), entry


# -- build -------------------------------------------------------------------------------------
SIDE_NAMES = {1: "right", -1: "left"}


def _tumor_placement(kind: str, levels: list, rng: np.random.Generator):
    """The tumor's level, semi-axes (mm; None for the lytic lesion) and cranio-caudal centre ``zt``
    (spine frame, mm), placed where its ends keep 2 mm from every endplate."""
    by_name = {lv.name: lv for lv in levels}
    if kind.startswith("intramedullary"):
        # the cystic case's lesion (cysts and edema) is long: always at T11, inside the T2 field
        lvl = by_name[(("T10", "T11") if kind != CYSTIC else ("T11", "T11"))[int(rng.integers(2))]]
        semi = {"intramedullary-displacing": (3.8, 3.5, 11.5), "intramedullary-infiltrative": (3.7, 3.4, 14.0),
                "intramedullary-crossing": (3.6, 3.3, 10.0), CYSTIC: (3.9, 3.6, 8.5)}[kind]
        semi = tuple(_jitter(rng, v, 0.04) for v in semi)
        half_cc = semi[2]
    elif kind.startswith("idem"):
        lvl = by_name[("T10", "T11")[int(rng.integers(2))]]
        semi = (3.8, 6.9, 8.0)  # radial, tangential, cranio-caudal (13.8 mm x 16 mm, CLINICAL.md §4)
        half_cc = semi[2]
    else:
        lvl = by_name[("T11", "T12")[int(rng.integers(2))]]
        semi = None
        half_cc = 10.5
    zt = lvl.zc
    if semi is not None:
        bounds = sorted(z for lv in levels for z in lv.z_range)
        candidates = lvl.zc + rng.permutation(np.linspace(-6.0, 6.0, 25))
        for cand in candidates:
            ends = (cand - half_cc, cand + half_cc)
            if all(abs(e - b) >= 2.0 for e in ends for b in bounds):
                zt = float(cand)
                break
    return lvl, semi, zt


def _background_ops(anat: PhantomAnatomy, levels: list, zmin: float, zmax: float) -> None:
    """Lungs, muscles, aorta, ribs, vertebrae, discs and the canal's epidural fat (painter's list)."""
    ops = anat.ops
    for s in (-1, 1):
        ops.append((custom(lambda x, y, z, s=s: (s * x >= 24.0) & (y >= -14.0) & (z >= -28.0),
                           (24.0 if s > 0 else -80.0, -14, -28), (80.0 if s > 0 else -24.0, 70, zmax), "lung"),
                    LUNG, None))
    for s in (-1, 1):
        ops.append((elliptic_cylinder((s * 19.0, -25.0), (12.0, 12.0), (zmin, zmax), name="paraspinal"), MUSCLE, None))

        def psoas(x, y, z, s=s):
            r = np.clip(2.0 + 0.18 * (-30.0 - z), 0.0, 9.0)
            return ((x - s * 23.0) ** 2 + (y - 20.0) ** 2 <= r * r) & (z < -30.0)

        ops.append((custom(psoas, (s * 23.0 - 9, 11, zmin), (s * 23.0 + 9, 29, -30), "psoas"), MUSCLE, None))
    ops.append((elliptic_cylinder(AORTA_C[:2], (AORTA_C[2], AORTA_C[2]), (zmin, zmax), name="aorta"), AORTA, None))
    for lv in levels:
        for s in (-1, 1):
            pts = rib_points(lv, s)
            if pts is not None:
                ops += [(c, RIB_CORT, None) for c in tube(pts, 3.3)]
                ops += [(c, RIB_CANC, None) for c in tube(pts, 2.1)]
    for lv in levels:
        cort, canc = CORT0 + lv.index, CANC0 + lv.index
        ops.append((body_shape(lv), cort, None))
        ops.append((body_shape(lv, 1.2), canc, None))
        ops.append((arch_shape(lv), cort, None))
        ops.append((arch_shape(lv, 1.1), canc, None))
        ops += [(c, cort, None) for c in posterior_processes(lv)]
        ops += [(c, canc, None) for c in posterior_processes(lv, 1.2)]
    for upper, lower in zip([None, *levels], [*levels, None], strict=True):
        ref = upper or lower
        z_hi = upper.z_range[0] if upper else lower.z_range[1] + 5.5
        z_lo = lower.z_range[1] if lower else upper.z_range[0] - 5.5
        ops.append((elliptic_cylinder((0.0, ref.yb), (ref.wx + 0.4, ref.wy + 0.4), (z_lo, z_hi), name="disc"),
                    DISC, None))
    ops.append((elliptic_cylinder((0.0, 0.0), CANAL, (zmin, zmax), name="canal"), EPIFAT, None))


def _intramedullary(anat: PhantomAnatomy, kind: str, rng: np.random.Generator, semi, zt: float, zmin: float,
                    zmax: float) -> None:
    """Intramedullary nodule expanding the cord (and, for the cystic kind, polar cysts and edema)."""
    ops, info = anat.ops, anat.info
    sac_rx, sac_ry, sac_cy = SAC
    ta, tb, tc = semi
    cyc = CORD_R[2]
    center = np.array([0.0, cyc, zt])
    tumor = ellipsoid(center, semi, name="tumor")
    expand = 1.0 if kind in ("intramedullary-displacing", CYSTIC) else 0.35

    def cord_contains(x, y, z, ta=ta, tb=tb, tc=tc, expand=expand):
        rx, ry, cx, cy = normal_cord(z)
        qc = np.maximum(_ellipse_q(x, y, rx, ry, cy, cx), 1e-9)
        qt = np.maximum(_ellipse_q(x, y, ta, tb, cyc), 1e-9)
        g = np.exp(-(((z - zt) / tc) ** 2))
        return (qc <= 1.0) | (1.0 / qc + expand * g / qt >= 1.0)

    if kind == CYSTIC:
        cysts, edema, edema_z = _polar_cysts_and_edema(rng, center, semi)
        anat.cysts, anat.edema_contains, anat.edema_z_range = cysts, edema.contains, edema_z
        cord_contains = _cord_expanded_by_cysts(cord_contains, cysts)

    if kind in ("intramedullary-displacing", CYSTIC):
        def fiber_dir(x, y, z):
            qt = _ellipse_q(x, y, ta, tb, cyc)
            g = np.exp(-(((z - zt) / tc) ** 2))
            dg = -2.0 * (z - zt) / tc**2 * g
            k = dg / (2.0 * np.maximum(qt, g))
            return np.stack([x * k, (y - cyc) * k, np.ones_like(x)], axis=1)
    else:
        def fiber_dir(x, y, z):
            return np.stack([np.zeros_like(x), np.zeros_like(x), np.ones_like(x)], axis=1)

    if kind == "intramedullary-infiltrative":
        def qnorm(x, y, z):
            return np.sqrt(((x - center[0]) / ta) ** 2 + ((y - center[1]) / tb) ** 2 + ((z - center[2]) / tc) ** 2)

        anat.blend = lambda x, y, z: 1.0 / (1.0 + np.exp((qnorm(x, y, z) - 1.0) / 0.07))
        anat.blend_dwi = lambda x, y, z: 1.0 / (1.0 + np.exp((qnorm(x, y, z) - 1.2) / 0.1))
    anat.cord_contains = cord_contains
    anat.cord_center = lambda z: (0.0, cyc)
    anat.fiber_dir = fiber_dir

    z_bump, l_bump = zt, tc + 4.0
    if kind == CYSTIC:  # the swelling spans the cysts
        z_bump, l_bump = 0.5 * (anat.edema_z_range[0] + anat.edema_z_range[1]), \
            0.5 * (anat.edema_z_range[1] - anat.edema_z_range[0])

    def sac_contains(x, y, z, tc=tc, expand=expand, z_bump=z_bump, l_bump=l_bump):
        bump = expand * np.exp(-(((z - z_bump) / l_bump) ** 2))  # the dura follows the swollen cord
        return _ellipse_q(x, y, sac_rx + 0.6 * bump, sac_ry + 1.2 * bump, sac_cy) <= 1.0

    sac = custom(sac_contains, (-sac_rx - 0.6, sac_cy - sac_ry - 1.2, zmin),
                 (sac_rx + 0.6, sac_cy + sac_ry + 1.2, zmax), "sac")
    cord_box = ((-sac_rx - 0.6, sac_cy - sac_ry - 1.2, zmin), (sac_rx + 0.6, sac_cy + sac_ry + 1.2, zmax))
    ops.append((sac, CSF, None))
    ops.append((custom(cord_contains, *cord_box, "cord"), CORD, None))
    if kind == CYSTIC:
        ops.append((edema, EDEMA, [CORD]))
        ops += [(ellipsoid(c["center"], c["semi_axes"], name=c["name"]), CYST, None) for c in anat.cysts]
    ops.append((tumor, TUMOR, None))
    anat.sac_ops = [(sac, 1, None), (custom(cord_contains, *cord_box), 1, None), (tumor, 1, None)]
    anat.tumor_contains = tumor.contains
    anat.tumor_ellipsoid = dict(center=center, semi_axes=np.array(semi), rotation=np.eye(3))
    anat.tumor_center = center
    info.update(side="midline", position="central")


def _intradural_extramedullary(anat: PhantomAnatomy, side_sign: int, semi, zt: float, zmin: float, zmax: float,
                               base_sac, cord_box) -> None:
    """Dorsolateral intradural extramedullary tumor displacing the cord (a CSF cleft between them)."""
    ops, info = anat.ops, anat.info
    sac_rx, sac_ry, sac_cy = SAC
    s = side_sign
    u = np.array([0.6 * s, -0.8])
    v = np.array([0.8, 0.6 * s])
    rot = np.array([[u[0], v[0], 0.0], [u[1], v[1], 0.0], [0.0, 0.0, 1.0]])
    # push the tumor as far along u as it fits inside the canal (0.5 mm of epidural tissue left)
    d = 0.0
    surf = _ellipsoid_surface(semi, rot)
    for cand in np.arange(5.0, 0.0, -0.05):
        pts = surf + np.array([cand * u[0], cand * u[1], 0.0])
        if np.all(_ellipse_q(pts[:, 0], pts[:, 1], CANAL[0] - 0.5, CANAL[1] - 0.5) <= 1.0):
            d = float(cand)
            break
    center = np.array([d * u[0], d * u[1], zt])
    tumor = ellipsoid(center, semi, rotation=rot, name="tumor")
    tumor_margin = ellipsoid(center, np.array(semi) + 0.4, rotation=rot)
    sac_bulge = ellipsoid(center, np.array(semi) + 0.7, rotation=rot)
    canal_in = elliptic_cylinder((0.0, 0.0), (CANAL[0] - 0.3, CANAL[1] - 0.3), (zmin, zmax))
    bulge = custom(lambda x, y, z: sac_bulge.contains(x, y, z) & canal_in.contains(x, y, z),
                   sac_bulge.lo, sac_bulge.hi, "sac bulge")
    delta, kap, kap_v = 2.7, 0.35, 0.18
    lcc = semi[2] + 4.0

    def undeform(x, y, z):
        h = np.exp(-(((z - zt) / lcc) ** 2))
        rx, ry, cx, cy = normal_cord(z)
        px, py = x - cx, y - cy
        pu = px * u[0] + py * u[1]
        pv = px * v[0] + py * v[1]
        pu0 = (pu + delta * h) / (1.0 - kap * h)
        pv0 = pv / (1.0 + kap_v * h)
        return pu0, pv0, h, rx, ry

    def cord_contains(x, y, z):
        pu0, pv0, h, rx, ry = undeform(x, y, z)
        ox, oy = pu0 * u[0] + pv0 * v[0], pu0 * u[1] + pv0 * v[1]
        inside = (ox / rx) ** 2 + (oy / ry) ** 2 <= 1.0
        return inside & (_ellipse_q(x, y, sac_rx - 0.3, sac_ry - 0.3, sac_cy) <= 1.0)

    def fiber_dir(x, y, z):
        pu0, pv0, h, _, _ = undeform(x, y, z)
        dh = -2.0 * (z - zt) / lcc**2 * h
        du = -(kap * pu0 + delta) * dh
        dv = kap_v * pv0 * dh
        return np.stack([du * u[0] + dv * v[0], du * u[1] + dv * v[1], np.ones_like(x)], axis=1)

    def cord_center(z):
        h = float(np.exp(-(((z - zt) / lcc) ** 2)))
        return (-delta * h * u[0], CORD_R[2] - delta * h * u[1])

    anat.cord_contains = cord_contains
    anat.cord_center = cord_center
    anat.fiber_dir = fiber_dir
    ops.append((base_sac, CSF, None))
    ops.append((bulge, CSF, [EPIFAT]))
    ops.append((custom(cord_contains, *cord_box, "cord"), CORD, None))
    ops.append((tumor_margin, CSF, [CORD]))  # a thin CSF cleft between tumor and cord
    ops.append((tumor, TUMOR, None))
    anat.sac_ops = [(base_sac, 1, None), (bulge, 1, None), (tumor, 1, None)]
    anat.tumor_contains = tumor.contains
    anat.tumor_ellipsoid = dict(center=center, semi_axes=np.array(semi), rotation=rot)
    anat.tumor_center = center
    info.update(side=SIDE_NAMES[s], position="dorsolateral", displacement_mm=delta)


def _extradural_lytic(anat: PhantomAnatomy, lvl, side_sign: int, zmin: float, zmax: float, base_sac,
                      cord_box) -> None:
    """Lytic vertebral body metastasis breaching the cortex, with pedicle and epidural extension."""
    ops, info = anat.ops, anat.info
    s = side_sign
    lv = lvl
    cort, canc = CORT0 + lv.index, CANC0 + lv.index
    lesion = ellipsoid((s * 3.5, lv.yb - 1.0, lv.zc), (lv.wx * 1.02, lv.wy * 1.08, lv.h / 2 - 2.5), name="lytic")
    breach = ellipsoid((s * 2.0, CANAL[1] + 1.5, lv.zc), (5.0, 2.5, 6.5), name="cortex breach")
    pedicle = ellipsoid((s * 11.3, 3.5, lv.zc + 5.0), (3.6, 7.0, 5.0), name="pedicle lesion")
    epi = ellipsoid((s * 2.0, 7.0, lv.zc), (6.0, 3.0, 9.5), name="epidural extension")
    epi_margin = ellipsoid((s * 2.0, 7.0, lv.zc), (6.5, 3.5, 10.0))
    body_in, body_out, arch_in = body_shape(lv, 1.2), body_shape(lv), arch_shape(lv, 1.1)
    canal_sh = elliptic_cylinder((0.0, 0.0), CANAL, (zmin, zmax))

    def cord_contains(x, y, z):
        rx, ry, cx, cy = normal_cord(z)
        return _ellipse_q(x, y, rx, ry, cy, cx) <= 1.0

    def tumor_contains(x, y, z):
        out = lesion.contains(x, y, z) & body_in.contains(x, y, z)
        out |= breach.contains(x, y, z) & body_out.contains(x, y, z)
        out |= pedicle.contains(x, y, z) & arch_in.contains(x, y, z)
        out |= epi.contains(x, y, z) & canal_sh.contains(x, y, z)
        return out

    ops.append((lesion, LYTIC, [canc]))
    ops.append((breach, LYTIC, [cort]))
    ops.append((pedicle, LYTIC, [canc]))
    ops.append((base_sac, CSF, None))
    ops.append((custom(cord_contains, *cord_box, "cord"), CORD, None))
    ops.append((epi_margin, EPIFAT, [CSF, CORD]))  # the epidural mass indents sac and cord
    ops.append((epi, TUMOR, [EPIFAT]))
    anat.sac_ops = [(base_sac, 1, None), (epi_margin, 0, [1])]
    anat.cord_contains = lambda x, y, z: cord_contains(x, y, z) & ~epi_margin.contains(x, y, z)
    anat.cord_center = lambda z: (0.0, CORD_R[2])
    anat.fiber_dir = lambda x, y, z: np.stack([np.zeros_like(x), np.zeros_like(x), np.ones_like(x)], axis=1)
    anat.tumor_contains = tumor_contains
    lo = np.minimum.reduce([lesion.lo, breach.lo, pedicle.lo, epi.lo])
    hi = np.maximum.reduce([lesion.hi, breach.hi, pedicle.hi, epi.hi])
    anat.tumor_box = (lo, hi)
    anat.tumor_center = np.array([s * 3.0, lv.yb - 3.0, lv.zc])
    info.update(side=SIDE_NAMES[s], position="ventral", hypervascular=True, level=lv.name)


def build_anatomy(kind: str, rng: np.random.Generator) -> PhantomAnatomy:
    """The whole analytic case for ``kind`` (see :data:`KIND_INFO`), deterministic in ``rng``."""
    info = dict(KIND_INFO[kind])
    levels = make_levels(rng)
    side_sign = 1 if rng.random() < 0.5 else -1

    # ---- tumor placement (decides the curve apex so the tumor sits where the canal is straight)
    lvl, semi, zt = _tumor_placement(kind, levels, rng)
    frame = SpineFrame(kappa=1.0 / _jitter(rng, 1200.0, 0.1), z0=zt,
                       rotation=rotation_xyz(_jitter(rng, -4.0, 0.2), _jitter(rng, 2.5, 0.2), _jitter(rng, 3.0, 0.2)),
                       translation=np.array([3.0, -12.0, 25.0]) + rng.normal(0.0, 2.0, 3))
    anat = PhantomAnatomy(kind=kind, frame=frame, levels=levels, info=info, tumor_level=lvl)
    zmin, zmax = -80.0, 80.0

    # ---- background tissues and bones
    _background_ops(anat, levels, zmin, zmax)

    # ---- kind-specific cord, sac and tumor
    sac_rx, sac_ry, sac_cy = SAC
    base_sac = elliptic_cylinder((0.0, sac_cy), (sac_rx, sac_ry), (zmin, zmax), name="sac")
    cord_box = ((-SAC[0], SAC[2] - SAC[1], zmin), (SAC[0], SAC[2] + SAC[1], zmax))  # the cord stays in the sac
    if kind.startswith("intramedullary"):
        _intramedullary(anat, kind, rng, semi, zt, zmin, zmax)
    elif kind.startswith("idem"):
        _intradural_extramedullary(anat, side_sign, semi, zt, zmin, zmax, base_sac, cord_box)
    else:
        _extradural_lytic(anat, lvl, side_sign, zmin, zmax, base_sac, cord_box)

    if anat.tumor_ellipsoid is not None:
        e = anat.tumor_ellipsoid
        ext = np.abs(e["rotation"]) @ e["semi_axes"]
        anat.tumor_box = (e["center"] - ext, e["center"] + ext)

    _add_vessels(anat, rng, side_sign)
    return anat


def _polar_cysts_and_edema(rng: np.random.Generator, center, semi) -> tuple[list[dict], Shape, tuple]:
    """Cranial and caudal polar cysts of an intramedullary nodule and the cord edema around them.

    The cysts (spine-local ellipsoids) overlap the nodule's poles by 1.5 mm (the nodule is painted
    over them); the edema envelope is an ellipsoid about the cord centre reaching 7-10 mm beyond
    both cysts, wider than the swollen cord in its middle and narrowing centrally towards its
    ends (it is painted only over cord tissue). Returns (cysts, edema shape, edema z range).
    """
    ta, tb, tc = semi
    cz = float(center[2])
    cr = tuple(_jitter(rng, v, 0.05) for v in (3.3, 3.0, 9.0))
    ca = tuple(_jitter(rng, v, 0.05) for v in (2.9, 2.7, 5.0))
    beyond = (_jitter(rng, 8.5, 0.1), _jitter(rng, 8.0, 0.1))  # edema beyond the cysts (cranial, caudal)
    cysts = [dict(name="cranial cyst", center=np.array([0.0, center[1], cz + tc - 1.5 + cr[2]]), semi_axes=np.array(cr)),
             dict(name="caudal cyst", center=np.array([0.0, center[1], cz - tc + 1.5 - ca[2]]), semi_axes=np.array(ca))]
    z_hi = cz + tc - 1.5 + 2.0 * cr[2] + beyond[0]
    z_lo = cz - tc + 1.5 - 2.0 * ca[2] - beyond[1]
    edema = ellipsoid((0.0, center[1], 0.5 * (z_lo + z_hi)), (7.5, 6.8, 0.5 * (z_hi - z_lo)), name="edema")
    return cysts, edema, (z_lo, z_hi)


def _cord_expanded_by_cysts(cord_contains: Callable, cysts: list[dict]) -> Callable:
    """The cord swollen around intramedullary cysts as around the nodule (same rim rule)."""

    def contains(x, y, z):
        inside = cord_contains(x, y, z)
        rx, ry, cx, cy = normal_cord(z)
        qc = np.maximum(_ellipse_q(x, y, rx, ry, cy, cx), 1e-9)
        extra = np.zeros_like(qc)
        for c in cysts:
            a, b, h = c["semi_axes"]
            q = np.maximum(_ellipse_q(x, y, a, b, c["center"][1], c["center"][0]), 1e-9)
            extra = extra + np.exp(-(((z - c["center"][2]) / h) ** 2)) / q
        return inside | (1.0 / qc + extra >= 1.0)

    return contains


def _ellipsoid_surface(semi, rot, n: int = 24) -> np.ndarray:
    th, ph = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n), indexing="ij")
    unit = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], axis=-1).reshape(-1, 3)
    return (unit * np.asarray(semi, float)) @ np.asarray(rot, float).T


def _feeder_specs(anat: PhantomAnatomy, side_sign: int, nearest_other, aka_level, branch_points: dict) -> list:
    """Feeder plans ``(level, side, kind, path, radius, target)`` of the tumor kind (spine frame, mm)."""
    kind, lt, tc = anat.kind, anat.tumor_level, anat.tumor_center
    if kind.startswith("intramedullary"):
        plans = [(lt, 1, "radiculomedullary"), (nearest_other, -1, "radiculomedullary")]
        if (nearest_other is aka_level) or (lt is aka_level):
            plans[1] = (nearest_other, 1, "radiculomedullary")
        specs = []
        for lv, s, kind_name in plans:
            start = spinal_branch(lv, s, branch_points[(lv.name, s)][1])[-1]
            way = np.array([s * 5.8, -3.0, tc[2] + (3.0 if lv.zc > tc[2] else -3.0)])
            specs.append((lv, s, kind_name, [start, way], 0.45, tc))
    elif kind.startswith("idem"):
        specs = []
        for lv, rad in ((lt, 0.55), (nearest_other, 0.45)):
            route, entry = idem_feeder_route(lv, side_sign, branch_points[(lv.name, side_sign)][1],
                                             anat.tumor_ellipsoid, lv is lt)
            # target: on along the surface normal, so that the first tumor point is ``entry``
            target = entry + 2.0 * (entry - route[-1]) / max(np.linalg.norm(entry - route[-1]), 1e-6)
            specs.append((lv, side_sign, "radiculomeningeal", list(route), rad, target))
    else:
        specs = []
        for lv, s, phi, rad in ((lt, -1, 100.0, 0.7), (lt, 1, 100.0, 0.65), (nearest_other, side_sign, 105.0, 0.55)):
            seg = branch_points[(lv.name, s)][0]
            rx, ry = lt.wx + 2.6, lt.wy + 2.6
            r = np.deg2rad(phi)
            start_xy = (s * (lv.wx + 2.6) * np.sin(r), lv.yb + (lv.wy + 2.6) * np.cos(r))
            start = np.array([start_xy[0], start_xy[1], lv.zc])
            # nearest point of the segmental polyline to that position
            start = seg[np.argmin(np.linalg.norm(seg - start, axis=1))]
            way = np.array([s * rx * np.sin(r), lt.yb + ry * np.cos(r),
                            lt.zc + (0.0 if lv is lt else 4.0 * np.sign(lv.zc - lt.zc))])
            specs.append((lv, s, "segmental", [start, way], rad, tc))
    return specs


def _draining_vein(anat: PhantomAnatomy, side_sign: int) -> list:
    """Points (spine frame, mm) of the vein draining the tumor, from its surface outwards."""
    kind, lt, tc = anat.kind, anat.tumor_level, anat.tumor_center
    if kind.startswith("intramedullary"):
        e = anat.tumor_ellipsoid
        start = e["center"] - np.array([0.0, e["semi_axes"][1] - 0.3, 0.0])
        vpts = [start, (0.0, -5.0, tc[2] + 6.0), (0.0, -5.4, tc[2] + 20.0), (1.5, -5.4, tc[2] + 34.0)]
    elif kind.startswith("idem"):
        e = anat.tumor_ellipsoid
        v3 = e["rotation"][:, 1]
        start = tc - side_sign * v3 * (e["semi_axes"][1] - 0.5)  # the medial tip, whichever the side
        vpts = [start, start + np.array([0.0, 0.0, -9.0]), (side_sign * 9.0, 2.0, tc[2] - 14.0),
                (side_sign * 15.0, 1.0, tc[2] - 17.0)]
    else:
        start = np.array([-side_sign * 2.0, CANAL[1] + 0.5, lt.zc + 4.0])
        vpts = [start, (-side_sign * 5.5, 6.8, lt.zc + 11.0), (-side_sign * 9.0, 4.5, lt.zc + 15.0),
                (-side_sign * 15.0, 3.0, lt.zc + 18.0)]
    return vpts


def _add_vessels(anat: PhantomAnatomy, rng: np.random.Generator, side_sign: int) -> None:
    """Segmental arteries, foraminal branches, ASA, Adamkiewicz, feeders and a draining vein."""
    kind = anat.kind
    levels = anat.levels
    lt = anat.tumor_level
    vessels = anat.vessels
    ztb_lo, ztb_hi = anat.tumor_box[0][2], anat.tumor_box[1][2]

    # Adamkiewicz level: left, T10-T12; for the lytic case the tumor's level (shared segmental)
    if kind == "extradural-lytic":
        aka_level = lt
    else:
        options = [lv for lv in levels if lv.name in ("T10", "T11", "T12")
                   and (lv.zc + 16.0 < ztb_lo - 3.0 or lv.zc - 9.0 > ztb_hi + 3.0)]
        if not options:
            options = [lv for lv in levels if lv.name in ("T10", "T11", "T12")]
        aka_level = options[int(rng.integers(len(options)))]

    tc = anat.tumor_center
    nearest_other = min((lv for lv in levels if lv is not lt), key=lambda lv: abs(lv.zc - tc[2]))
    # an IDEM tumor's feeders are the radicular (radiculomeningeal) arteries of these foramina
    idem_roots = {(lt.name, side_sign), (nearest_other.name, side_sign)} if kind.startswith("idem") else set()
    branch_points = {}
    for lv in levels:
        for s in (-1, 1):
            seg, b = segmental_points(lv, s)
            branch_points[(lv.name, s)] = (seg, b)
            vessels.append(VesselSpec(f"{lv.name} {'left' if s < 0 else 'right'} segmental artery", seg, 0.9, VESSEL))
            vessels.append(VesselSpec(f"{lv.name} {'left' if s < 0 else 'right'} dorsal branch",
                                      dorsal_branch(lv, s, b), 0.5, VESSEL))
            if not (lv is aka_level and s < 0) and (lv.name, s) not in idem_roots:
                vessels.append(VesselSpec(f"{lv.name} {'left' if s < 0 else 'right'} radicular artery",
                                          spinal_branch(lv, s, b), 0.35, VESSEL))

    # anterior spinal artery along the (deformed) anterior cord surface
    cc, r_asa = anat.cord_contains, 0.4
    zs = np.arange(-78.0, 78.1, 2.0)
    asa = []
    for z in zs:
        cx, cy = anat.cord_center(z)
        yf = _surface_y(cc, cx, z, cy)
        asa.append((cx, yf + r_asa + 0.15, z))
    asa = np.array(asa)
    vessels.append(VesselSpec("anterior spinal artery", asa, r_asa, ASA))

    def asa_at(z):
        return np.array([np.interp(z, zs, asa[:, 0]), np.interp(z, zs, asa[:, 1]), z])

    # artery of Adamkiewicz: foramen -> anterolateral cord surface -> hairpin into the ASA
    zc = aka_level.zc
    b = branch_points[(aka_level.name, -1)][1]
    p_mid = []
    for x, dz in ((-5.6, 2.0), (-2.6, 9.0)):
        z = zc + dz
        cx, cy = anat.cord_center(z)
        p_mid.append((cx + x, _surface_y(cc, cx + x, z, cy) + 0.8, z))
    apex = asa_at(zc + 13.5) + np.array([-0.9, 0.45, 0.0])
    junction = asa_at(zc + 10.5)
    aka_pts = np.array([b, (-11.5, 3.0, zc - 6.5), (-7.4, 3.8, zc - 5.0), *p_mid, apex, junction])
    vessels.append(VesselSpec("artery of Adamkiewicz", aka_pts, 0.55, AKA))
    anat.adamkiewicz = dict(present=True, level=aka_level.name, side="left", diameter_mm=1.1,
                            segmental=f"{aka_level.name} left", hairpin_local=apex, junction_local=junction)

    # feeders: (level, side, kind, path, radius, target); the entry is the first tumor point
    # on the way from the path's last point to the target
    tcontains = anat.tumor_contains
    feeders = []
    specs = _feeder_specs(anat, side_sign, nearest_other, aka_level, branch_points)
    for lv, s, kind_name, path, rad, target in specs:
        entry = _first_inside(tcontains, path[-1], target)
        if entry is None:
            continue
        pts = np.array([*path, entry])
        into = entry + 0.6 * (target - entry) / max(np.linalg.norm(target - entry), 1e-6)
        vessels.append(VesselSpec(f"feeder {len(feeders) + 1}", np.array([*pts, into]), rad, FEEDER))
        parent = (f"{lv.name} {'left' if s < 0 else 'right'} segmental artery" if kind_name == "segmental"
                  else f"{lv.name} {'left' if s < 0 else 'right'} {kind_name} artery")
        feeders.append(dict(points_local=pts, entry_local=entry, origin_local=pts[0], diameter_mm=2 * rad,
                            level=lv.name, side="left" if s < 0 else "right", parent=parent,
                            segmental=f"{lv.name} {'left' if s < 0 else 'right'}"))
    anat.feeders = feeders
    anat.adamkiewicz["shares_segmental_with_feeder"] = any(
        f["segmental"] == anat.adamkiewicz["segmental"] for f in feeders)

    # draining vein from the tumor surface
    vpts = _draining_vein(anat, side_sign)
    vessels.append(VesselSpec("draining vein", np.array(vpts, float), 0.75, VEIN))
    for vs in vessels:
        anat.ops += [(c, vs.material, None) for c in tube(vs.points, vs.radius)]
