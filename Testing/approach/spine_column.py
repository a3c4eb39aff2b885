"""An analytic five-level spine (bodies, pedicles, laminae, spinous processes) with a CT and a
vertebral tumor, for the SINS tests. RAS mm, canal centre of each level at (0, shift, z).

Levels are 30 mm apart (24 mm bodies, 6 mm discs), cranial first; the middle one (index 3) can
carry a tumor (lytic or blastic), lose height (uniformly or as a wedge), be translated, and have
its pedicles replaced by tumor on either side; ``kyphosis_deg`` tilts the two upper levels forward
about the middle body's upper anterior edge (a segmental kyphosis at the middle level).
"""

from __future__ import annotations

import numpy as np

from SpinePlannerLib.core.volume import Volume

PITCH, BODY_H = 30.0, 24.0
NORMAL_HU, SOFT_HU = 250.0, 40.0


def build(names=("T8", "T9", "T10", "T11", "T12"), *, tumor: str | None = "lytic", tumor_radius: float = 9.0,
          height_scale: float = 1.0, wedge: float = 0.0, shift_a: float = 0.0, pedicles=(), spacing: float = 1.0, kyphosis_deg: float = 0.0):
    """Vertebra labels, CT, tumor mask, level names and canal centres of the analytic spine."""
    shape = (int(80 / spacing), int(90 / spacing), int(170 / spacing))
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = [-40.0, -40.0, -85.0]
    x, y, z = (np.indices(shape).reshape(3, -1).T * spacing + affine[:3, 3]).T
    labels = np.zeros(x.shape, np.uint8)
    tumor_m = np.zeros(x.shape, bool)
    centres = {}
    th = np.deg2rad(kyphosis_deg)
    py, pz = 36.0, BODY_H / 2 + 3.0
    y_up = py + np.cos(th) * (y - py) - np.sin(th) * (z - pz)
    z_up = pz + np.sin(th) * (y - py) + np.cos(th) * (z - pz)
    x0, y0, z0 = x, y, z
    for i, _ in enumerate(names):
        idx = i + 1
        zc = (2 - i) * PITCH
        mid = idx == 3
        y, z = (y_up, z_up) if idx < 3 else (y0, z0)
        x = x0
        ya = y - (shift_a if mid else 0.0)
        # body: ellipse 18 x 14 mm in front of the canal, height 24 mm (scaled / wedged at the middle level)
        h_half = BODY_H / 2 * (height_scale if mid else 1.0)
        if mid and wedge:
            # anterior height reduced by `wedge` (fraction), posterior kept: linear in AP over the body
            frac_ap = np.clip((ya - 8.0) / 28.0, 0, 1)
            h_half = h_half * (1 - wedge * frac_ap)
        body = ((x / 18.0) ** 2 + ((ya - 22.0) / 14.0) ** 2 <= 1) & (np.abs(z - zc) <= h_half)
        arch_z = (z - zc >= -4) & (z - zc <= 10)
        ped = (np.abs(x) >= 8) & (np.abs(x) <= 14) & (ya >= -2) & (ya <= 10) & arch_z
        lam = (np.abs(x) <= 14) & (ya >= -16) & (ya <= -9) & arch_z & (x ** 2 + ya ** 2 > 64)
        spin = (np.abs(x) <= 2) & (ya >= -32) & (ya <= -16) & arch_z
        labels[body | ped | lam | spin] = idx
        if idx < 3:  # the canal centre turns with its vertebra: world = pivot + R (upright - pivot)
            c = np.array([py + np.cos(th) * (-py) + np.sin(th) * (zc - pz), pz - np.sin(th) * (-py) + np.cos(th) * (zc - pz)])
            centres[idx] = [0.0, float(c[0]), float(c[1])]
        else:
            centres[idx] = [0.0, shift_a if mid else 0.0, zc]
        if mid and tumor:
            tumor_m |= (x ** 2 + (ya - 22.0) ** 2 + (z - zc) ** 2 <= tumor_radius ** 2) & body
            for side in pedicles:
                sgn = 1 if side == "right" else -1
                tumor_m |= ped & (sgn * x > 0)
    x, y, z = x0, y0, z0
    ct = np.where(labels > 0, NORMAL_HU, SOFT_HU).astype(np.float32)
    if tumor == "lytic":
        ct[tumor_m] = SOFT_HU
        labels[tumor_m] = 0  # destroyed bone is not labelled
    elif tumor == "blastic":
        ct[tumor_m] = 900.0
    elif tumor == "mixed":
        half = tumor_m & (x > 0)
        ct[tumor_m] = SOFT_HU
        ct[half] = 900.0
        labels[tumor_m & ~half] = 0
    vol = lambda a, n: Volume(a.reshape(shape), affine, n)  # noqa: E731
    return {"vertebrae": vol(labels, "vertebrae"), "ct": vol(ct, "ct"), "tumor": vol(tumor_m.astype(np.uint8), "tumor"),
            "names": {i + 1: n for i, n in enumerate(names)}, "canal_centres": centres,
            "axis": np.array([0.0, 0.0, 1.0])}
