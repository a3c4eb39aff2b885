"""A synthetic craniocervical CT for the vertebra tests (C2 level anchor, issue 4 item 2).

There is no cervical CT in ``../shared/data`` and the project's phantom is thoracolumbar, so the
C2 anchor is tested on this generator: skull base (occipital bone around the foramen magnum,
occipital condyles, posterior fossa above, enclosed by bone), C1 (atlas: a ring with a thin
anterior arch, lateral masses, a posterior arch and transverse processes about 80 mm wide, no
body), C2 (axis: body 17 x 16 mm, the dens 10 mm wide rising 15 mm into the C1 ring behind the
anterior arch, a large bifid spinous process), C3-C7 (bodies 17 x 15 x 14 mm, discs 6 mm),
T1-T2 with the first two rib pairs. Optional: cervical lordosis, a patient tilt, a cervical rib
on C7, no dens, a field of view cut below a given height.

Values (HU): cancellous bone 250 with a cortical rim 500, discs 70, canal (CSF/cord) 15,
ligaments around the dens 45, soft tissue 40, brain 35, air -1000 (trachea, outside the body).

The anatomy is drawn slice by slice on a 1 mm grid in an anatomical frame (x right, y anterior
relative to the canal centre, z superior; 0 = bottom of the T2 body), placed in the world with a
rotation (the tilt), then resampled through world coordinates onto the requested grid (RAS
aligned, or oblique and anisotropic). Truth labels (1 = C1 ... 9 = T2; 10 = T3, just below the
field of view, shows in its lowest slices when tilted; ribs and the skull are not part of a
vertebra) are carried along with nearest-neighbour sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from SpinePlannerLib.core.geometry import resample
from SpinePlannerLib.core.volume import Volume

NAMES = {1: "C1", 2: "C2", 3: "C3", 4: "C4", 5: "C5", 6: "C6", 7: "C7", 8: "T1", 9: "T2", 10: "T3"}
BONE, CORTEX, DISC, CANAL, LIGAMENT, SOFT, BRAIN, AIR = 250.0, 500.0, 70.0, 15.0, 45.0, 40.0, 35.0, -1000.0
DISC_MM = 6.0  # disc height (mm)
Z_C2 = 5 * 14.0 + 2 * 18.0 + 7 * DISC_MM  # bottom of the C2 body (mm, anatomical frame): 148


@dataclass
class CervicalCase:
    """A synthetic CT with its truth: ``truth`` holds 1..9 (``names``) on ``ct``'s grid; ``z_*``
    are anatomical heights (mm) of landmarks; ``to_world`` maps anatomical (x, y, z) to RAS."""

    ct: Volume
    truth: Volume
    names: dict
    to_world: np.ndarray

    def world(self, xyz) -> np.ndarray:
        """RAS (mm) of an anatomical point (x right, y anterior of the canal, z superior)."""
        return (self.to_world @ np.append(np.asarray(xyz, float), 1.0))[:3]


def _levels():
    """(index, name, body z range) of the subaxial vertebrae, caudal to cranial."""
    out, z = [], -18.0 - DISC_MM
    for idx, h in ((10, 18.0), (9, 18.0), (8, 18.0), (7, 14.0), (6, 14.0), (5, 14.0), (4, 14.0), (3, 14.0)):
        out.append((idx, z, z + h))
        z += h + DISC_MM
    return out


def _rib_mask(X, Y, side: float, x0: float, y0: float, half: float = 3.0):
    """A first rib leaving the transverse process tip ``(side * x0, y0)`` laterally and curving forward."""
    t = np.linspace(0.0, 1.35, 40)
    px, py = side * (x0 + 36.0 * np.sin(t)), y0 + 30.0 * (1.0 - np.cos(t))
    d = np.full(X.shape, np.inf)
    for a, b in zip(px, py, strict=True):
        d = np.minimum(d, (X - a) ** 2 + (Y - b) ** 2)
    return d <= half**2


def _anatomy(*, dens: bool, cervical_rib: bool, lordosis_mm: float, sp: float = 1.0):
    """HU and truth arrays on the anatomical 1 mm grid and its ijk -> anatomical affine."""
    x = np.arange(-75.0, 75.0 + 1e-6, sp)
    y = np.arange(-70.0, 75.0 + 1e-6, sp)
    z_fm = Z_C2 + 37.0  # floor of the posterior fossa at the foramen magnum
    z = np.arange(-26.0, z_fm + 45.0 + 1e-6, sp)  # beyond the field of view (a tilt shows it)
    X, Y0 = np.meshgrid(x, y, indexing="ij")
    hu = np.empty((x.size, y.size, z.size), np.float32)
    truth = np.zeros(hu.shape, np.uint8)
    levels = _levels()
    z_mid = 0.5 * (levels[3][1] + Z_C2)
    half_span = 0.5 * (Z_C2 - levels[3][1]) + 30.0

    def ell(cx, cy, ax, ay, Y):
        return ((X - cx) / ax) ** 2 + ((Y - cy) / ay) ** 2 <= 1.0

    def pair(x0, x1, y0, y1, Y):  # two boxes, |x| in [x0, x1], y in [y0, y1]
        return (np.abs(X) >= x0) & (np.abs(X) <= x1) & (Y >= y0) & (Y <= y1)

    for k, zk in enumerate(z):
        # lordosis: the canal lies further anterior in the mid-cervical spine
        Y = Y0 - lordosis_mm * max(0.0, 1.0 - ((zk - z_mid) / half_span) ** 2)
        sl = np.full(X.shape, AIR, np.float32)
        lab = np.zeros(X.shape, np.uint8)
        neck = ell(0.0, 10.0, 72.0 if zk < 45.0 else 60.0, 70.0 if zk < 45.0 else 62.0, Y)
        if zk > z_fm - 12.0:
            neck |= ell(0.0, 5.0, 74.0, 76.0, Y)
        sl[neck] = SOFT
        if zk < Z_C2 - 8.0:
            sl[ell(0.0, 42.0, 8.0, 7.0, Y)] = AIR  # trachea
        parts: list[tuple[int, np.ndarray, bool]] = []  # (truth index, solid, whether to rim)
        discs = np.zeros(X.shape, bool)
        canal = ell(0.0, 0.0, 12.0, 7.5, Y)
        for n, (idx, a, b) in enumerate(levels):
            thoracic = idx >= 8
            bw, bd = (11.0, 9.0) if thoracic else (8.5, 7.5)
            cax = 9.0 if thoracic else 12.0
            yb = 8.0 + bd
            if a <= zk <= b:
                solid = ell(0.0, yb, bw, bd, Y)
                parts.append((idx, solid, True))
                if min(zk - a, b - zk) < 1.5:  # endplates
                    parts.append((idx, solid, False))
            top_gap = (levels[n + 1][1] if n + 1 < len(levels) else Z_C2) - b
            if b < zk < b + top_gap:
                discs |= ell(0.0, yb, bw, bd, Y)
            # neural arch (pedicles, laminae, articular pillars): cervical laminae lie lower than
            # their body (shingled), the thoracic ones level with it
            lo_arch, hi_arch = (a, b) if thoracic else (a - 1.0, b - 1.0)
            if lo_arch <= zk <= hi_arch:
                ring = ell(0.0, 0.0, cax + 4.5, 12.0, Y) & ~ell(0.0, 0.0, cax, 7.5, Y) & (Y <= 9.0)
                sp_len = {7: 35.0, 8: 38.0, 9: 38.0, 10: 38.0}.get(idx, 22.0)
                spinous = (np.abs(X) <= 2.5) & (Y <= -10.0) & (Y >= -7.5 - sp_len)
                if not thoracic:  # bifid tips
                    spinous |= pair(1.5, 5.0, -7.5 - sp_len, -2.5 - sp_len, Y)
                spinous &= (Y >= -16.0) | (abs(zk - 0.5 * (lo_arch + hi_arch)) <= 5.0)  # a plate 10 mm tall
                parts.append((idx, ring | spinous, True))
            if lo_arch - 1.0 <= zk <= hi_arch + 1.5:  # articular pillars, facet joints 2.5-3.5 mm
                parts.append((idx, pair(cax + 1.0, cax + 8.0, -7.0, 4.0, Y), True))
            zm = 0.5 * (a + b)
            if abs(zk - zm) <= 3.0:
                if thoracic:
                    tp = (np.abs(X) >= cax) & (np.abs(X) <= 30.0) & (Y >= -6.0) & (Y <= 1.0)
                else:
                    tp = pair(cax + 4.0, 30.0 if idx == 7 else 27.0, 2.0, 9.0, Y)
                parts.append((idx, tp, True))
            if abs(zk - zm) <= 3.5 and (thoracic or (cervical_rib and idx == 7)):
                x0, y0 = (29.0, -3.0) if thoracic else (29.0, 5.0)
                rib = _rib_mask(X, Y, -1.0, x0, y0) | _rib_mask(X, Y, 1.0, x0, y0)
                parts.append((0, rib & ~ell(0.0, 0.0, x0 - 1.0, 70.0, Y), True))
        # C2 (axis)
        zc = Z_C2
        if zc <= zk <= zc + 15.0:
            solid = ell(0.0, 16.0, 8.5, 8.0, Y)
            parts.append((2, solid, True))
            if zk - zc < 1.5 or (not dens and zc + 15.0 - zk < 1.5):
                parts.append((2, solid, False))
            if zk >= zc + 5.0:  # superior articular facets under the C1 lateral masses
                parts.append((2, (np.abs(X) >= 6.0) & (np.abs(X) <= 21.0) & (Y >= 4.0) & (Y <= 19.0), True))
        if zc + 2.0 <= zk <= zc + 16.0:
            ring = ell(0.0, 0.0, 17.0, 13.0, Y) & ~ell(0.0, 0.0, 12.0, 8.0, Y) & (Y <= 9.0)
            spinous = (np.abs(X) <= 3.5) & (Y <= -10.0) & (Y >= -30.0)
            spinous |= (np.abs(X) >= 2.0) & (np.abs(X) <= 7.5) & (Y <= -28.0) & (Y >= -40.0)
            pillars = (np.abs(X) >= 13.0) & (np.abs(X) <= 21.0) & (Y >= -6.0) & (Y <= 4.0) & (zk <= zc + 9.0)
            parts.append((2, ring | spinous | pillars, True))
        if abs(zk - (zc + 8.0)) <= 3.0:
            parts.append((2, (np.abs(X) >= 16.0) & (np.abs(X) <= 26.0) & (Y >= 3.0) & (Y <= 9.0), True))
        if dens and zc + 15.0 < zk <= zc + 30.0:
            r = 5.0 if zk <= zc + 25.0 else float(np.sqrt(max(25.0 - (zk - zc - 25.0) ** 2, 1.0)))
            parts.append((2, ell(0.0, 15.0, r, r, Y), True))
        # C1 (atlas): a ring, no body
        c1_in = ell(0.0, 5.0, 13.5, 17.5, Y)
        c1_ring = ell(0.0, 5.0, 18.5, 22.5, Y) & ~c1_in
        if zc + 17.0 <= zk <= zc + 31.0:
            masses = pair(10.5, 22.0, 1.0, 19.0, Y) & ell(0.0, 5.0, 22.0, 22.5, Y)
            parts.append((1, masses | (c1_ring & (np.abs(X) >= 10.0) & (Y > -2.0) & (Y < 12.0)), True))
        if zc + 19.0 <= zk <= zc + 28.0:
            parts.append((1, c1_ring & (Y >= 12.0), True))  # anterior arch
        if zc + 20.0 <= zk <= zc + 27.0:
            post = (c1_ring & (Y <= -2.0)) | ((np.abs(X) <= 3.0) & (Y <= -17.0) & (Y >= -22.0))
            parts.append((1, post, True))  # posterior arch and tubercle
        if zc + 21.0 <= zk <= zc + 27.0:
            parts.append((1, (np.abs(X) >= 18.0) & (np.abs(X) <= 40.0) & (Y >= 2.0) & (Y <= 10.0), True))
        if zc + 17.0 <= zk <= zc + 31.0:
            inner = c1_in & ~canal
            sl[inner & (Y > 9.0)] = LIGAMENT
            canal = canal | (c1_in & (Y <= 9.0))
        if zc + 15.0 < zk < zc + 32.0:
            canal = canal | ell(0.0, 0.0, 12.0, 8.0, Y)
        # skull base: condyles, occipital bone (a bowl) with the foramen magnum, brain above
        if z_fm - 4.0 <= zk <= zc + 39.0:
            parts.append((0, (np.abs(X) >= 11.0) & (np.abs(X) <= 21.0) & (Y >= 2.0) & (Y <= 18.0), True))
        if zk >= z_fm - 4.0:
            zz = zk - (z_fm + 48.0)
            outer = ((X / 70.0) ** 2 + ((Y - 5.0) / 85.0) ** 2 + (zz / 52.0) ** 2) <= 1.0
            inside = ((X / 64.0) ** 2 + ((Y - 5.0) / 79.0) ** 2 + (zz / 46.0) ** 2) <= 1.0
            fm = ell(0.0, 3.0, 15.0, 18.0, Y) & (zk < z_fm + 10.0)
            sl[inside] = BRAIN
            parts.append((0, outer & ~inside & ~fm, True))
        sl[discs & neck] = DISC
        sl[canal & neck] = CANAL
        for idx, solid, rim in parts:
            if not rim:  # endplate: the whole section is cortex
                sl[solid] = CORTEX
                continue
            edge = solid & ~ndimage.binary_erosion(solid, iterations=1)
            sl[solid & (sl < BONE)] = BONE
            sl[edge] = CORTEX
            if idx:
                lab[solid] = idx
        hu[:, :, k] = sl
        truth[:, :, k] = lab
    affine = np.diag([sp, sp, sp, 1.0])
    affine[:3, 3] = [x[0], y[0], z[0]]
    return hu, truth, affine


def synthetic_cervical_ct(*, dens: bool = True, cervical_rib: bool = False, lordosis_mm: float = 5.0,
                          tilt_deg=(0.0, 0.0, 0.0), z_top_mm: float | None = None, grid: str = "ras",
                          spacing=(1.0, 1.0, 1.0), grid_angles_deg=(0.0, 0.0, 0.0)) -> CervicalCase:
    """The synthetic craniocervical CT (HU) and its truth labels.

    Parameters
    ----------
    dens : bool
        Draw the dens (False: the C2 body ends flat below the C1 ring).
    cervical_rib : bool
        A rib pair on C7 (cervical rib).
    lordosis_mm : float
        Anterior shift (mm) of the canal in the mid-cervical spine.
    tilt_deg : (float, float, float)
        Patient rotation (Euler x, y, z, degrees) in the world about the C4 body.
    z_top_mm : float or None
        Cut the field of view at this anatomical height (mm above the bottom of T2; the C2 body
        spans 148-163 mm, the dens up to 178 mm, C1 165-179 mm, the foramen magnum at 185 mm).
    grid : str
        ``"ras"``: axis-aligned grid of ``spacing`` covering the anatomy; ``"oblique"``: a grid
        of ``spacing`` (e.g. 0.8, 0.8, 2.0) rotated by ``grid_angles_deg`` with axes ordered
        P, R, S (i -> posterior, j -> right, k -> superior; not diagonal).
    """
    hu, truth, anat_affine = _anatomy(dens=dens, cervical_rib=cervical_rib, lordosis_mm=lordosis_mm,
                                      )
    pivot = np.array([0.0, 15.0, 110.0])
    to_world = np.eye(4)
    to_world[:3, :3] = Rotation.from_euler("xyz", tilt_deg, degrees=True).as_matrix()
    to_world[:3, 3] = pivot - to_world[:3, :3] @ pivot + np.array([2.0, -30.0, -200.0])
    src_aff = to_world @ anat_affine
    src = Volume(hu, src_aff, "cervical_ct")
    src_truth = Volume(truth, src_aff, "truth")
    # the field of view: the world bounding box of an anatomical box inside the drawn anatomy
    z_top = Z_C2 + 37.0 + 24.0 if z_top_mm is None else float(z_top_mm)
    world = np.array([(to_world @ np.array([x, y, z, 1.0]))[:3] for x in (-62.0, 62.0) for y in (-58.0, 62.0)
                      for z in (-4.0, z_top)])
    sp = np.asarray(spacing, float)
    if grid == "ras":
        direction = np.eye(3)
    elif grid == "oblique":
        base = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # columns: P, R, S
        direction = Rotation.from_euler("xyz", grid_angles_deg, degrees=True).as_matrix() @ base
    else:
        raise ValueError(f"grid must be 'ras' or 'oblique', got {grid!r}")
    # the target grid covers the source's world bounding box (expressed along its own axes)
    local = world @ direction
    lo, hi = local.min(axis=0), local.max(axis=0)
    shape = tuple(int(np.floor((h - lo_) / s)) + 1 for lo_, h, s in zip(lo, hi, sp, strict=True))
    aff = np.eye(4)
    aff[:3, :3] = direction * sp
    aff[:3, 3] = direction @ lo
    ct = resample(src, aff, shape, order=1, cval=AIR)
    lab = resample(src_truth, aff, shape, order=0, cval=0)
    return CervicalCase(Volume(ct.astype(np.float32), aff, "cervical_ct"),
                        Volume(lab.astype(np.uint8), aff, "truth"),
                        dict(NAMES), to_world)
