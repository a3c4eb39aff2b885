"""Analytic shapes and their supersampled rasterisation onto oblique grids (phantom helper, L1).

The phantom's anatomy is defined by analytic shapes in *spine-local* millimetres ``(x, y, z)``:
``x`` right, ``y`` anterior relative to the canal centreline, ``z`` superior. Spine-local
coordinates relate to the *anatomy* frame by a gentle sagittal curve (``y_anat = y + a(z)``)
and the anatomy frame relates to world RAS by a rigid transform (the patient lies slightly
rotated in the scanner). Each image grid is rasterised on a *lattice* of ``s x s x s``
sub-samples per voxel; a painter's list writes a material index per sub-sample, and block
means of per-material values give partial-volume voxel intensities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Contains = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# -- rotations -------------------------------------------------------------------------------
def rotation_xyz(rx_deg: float = 0.0, ry_deg: float = 0.0, rz_deg: float = 0.0) -> np.ndarray:
    """3x3 rotation ``Rz @ Ry @ Rx`` (angles in degrees about the R, A, S axes)."""
    ax, ay, az = np.deg2rad([rx_deg, ry_deg, rz_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


AXIS_CODES = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


def axis_matrix(code: str) -> np.ndarray:
    """3x3 matrix whose columns are the RAS unit vectors named by ``code`` (e.g. ``"PSR"``)."""
    m = np.zeros((3, 3))
    for col, letter in enumerate(code):
        row, sign = AXIS_CODES[letter]
        m[row, col] = sign
    if abs(np.linalg.det(m)) != 1.0:
        raise ValueError(f"axis code {code!r} must name each of R/L, A/P, S/I once")
    return m


def grid_affine(center_ras, spacing, shape, axes: str, rotation: np.ndarray) -> np.ndarray:
    """4x4 ``ijk -> RAS`` affine of a grid whose centre voxel sits at ``center_ras``.

    ``axes`` names the (unrotated) directions of i, j, k (e.g. ``"PSR"``); ``rotation`` (3x3)
    then tilts the whole grid (oblique acquisition).
    """
    a = np.eye(4)
    a[:3, :3] = rotation @ axis_matrix(axes) @ np.diag(np.asarray(spacing, float))
    half = (np.asarray(shape, float) - 1.0) / 2.0
    a[:3, 3] = np.asarray(center_ras, float) - a[:3, :3] @ half
    return a


# -- the spine-local frame -------------------------------------------------------------------
@dataclass
class SpineFrame:
    """Anatomy placement: sagittal curve ``a(z) = kappa/2 (z - z0)^2`` (mm, kyphotic: the canal
    moves anteriorly away from ``z0``) and the rigid anatomy -> world transform."""

    kappa: float
    z0: float
    rotation: np.ndarray  # 3x3 anatomy -> world
    translation: np.ndarray  # 3, world position of the anatomy origin

    def curve(self, z):
        return 0.5 * self.kappa * (z - self.z0) ** 2

    def curve_slope(self, z):
        return self.kappa * (z - self.z0)

    @property
    def anat_to_world(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.translation
        return m

    def local_to_world(self, pts) -> np.ndarray:
        """Spine-local (N, 3) -> world RAS (N, 3)."""
        p = np.atleast_2d(np.asarray(pts, float)).copy()
        p[:, 1] += self.curve(p[:, 2])
        return p @ self.rotation.T + self.translation

    def world_to_local(self, pts) -> np.ndarray:
        p = (np.atleast_2d(np.asarray(pts, float)) - self.translation) @ self.rotation
        p[:, 1] -= self.curve(p[:, 2])
        return p

    def local_dirs_to_world(self, pts_local, dirs_local) -> np.ndarray:
        """Map direction vectors at spine-local points to unit world directions (shear Jacobian)."""
        d = np.atleast_2d(np.asarray(dirs_local, float)).copy()
        z = np.atleast_2d(np.asarray(pts_local, float))[:, 2]
        d[:, 1] += self.curve_slope(z) * d[:, 2]
        d = d @ self.rotation.T
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def axis_world(self, z_local: float) -> np.ndarray:
        """Unit world direction of the canal centreline (pointing superior) at spine-local ``z``."""
        return self.local_dirs_to_world([[0.0, 0.0, z_local]], [[0.0, 0.0, 1.0]])[0]


# -- shapes ----------------------------------------------------------------------------------
@dataclass
class Shape:
    """An indicator function on spine-local coordinates with a conservative bounding box."""

    contains: Contains
    lo: np.ndarray
    hi: np.ndarray
    name: str = ""


def ellipsoid(center, semi_axes, *, rotation=None, name: str = "") -> Shape:
    """Ellipsoid; ``rotation`` (3x3, columns = its axes in spine-local coordinates) optional."""
    c = np.asarray(center, float)
    r = np.asarray(semi_axes, float)
    rot = np.eye(3) if rotation is None else np.asarray(rotation, float)

    def contains(x, y, z):
        dx, dy, dz = x - c[0], y - c[1], z - c[2]
        q = np.zeros_like(x)
        for k in range(3):
            u = dx * rot[0, k] + dy * rot[1, k] + dz * rot[2, k]
            q += (u / r[k]) ** 2
        return q <= 1.0

    ext = np.abs(rot) @ r
    return Shape(contains, c - ext, c + ext, name)


def elliptic_cylinder(center_xy, radii_xy, z_range, *, waist: float = 0.0, name: str = "") -> Shape:
    """Vertical elliptic cylinder (spine-local), optionally narrower by ``waist`` (fraction) at mid-height."""
    cx, cy = (float(v) for v in center_xy)
    rx, ry = (float(v) for v in radii_xy)
    z0, z1 = (float(v) for v in z_range)
    zm, hz = 0.5 * (z0 + z1), 0.5 * (z1 - z0)

    def contains(x, y, z):
        q = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
        if waist:
            u = (z - zm) / hz
            lim = (1.0 - waist * (1.0 - u * u)) ** 2
        else:
            lim = 1.0
        return (q <= lim) & (z >= z0) & (z <= z1)

    return Shape(contains, np.array([cx - rx, cy - ry, z0]), np.array([cx + rx, cy + ry, z1]), name)


def capsule(p0, p1, radius0: float, radius1: float | None = None, *, name: str = "") -> Shape:
    """Tube segment from ``p0`` to ``p1`` (spine-local mm) with radius tapering linearly."""
    a = np.asarray(p0, float)
    b = np.asarray(p1, float)
    r0 = float(radius0)
    r1 = r0 if radius1 is None else float(radius1)
    d = b - a
    length2 = max(float(d @ d), 1e-12)

    def contains(x, y, z):
        px, py, pz = x - a[0], y - a[1], z - a[2]
        t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / length2, 0.0, 1.0)
        ex, ey, ez = px - t * d[0], py - t * d[1], pz - t * d[2]
        r = r0 + (r1 - r0) * t
        return ex * ex + ey * ey + ez * ez <= r * r

    rmax = max(r0, r1)
    return Shape(contains, np.minimum(a, b) - rmax, np.maximum(a, b) + rmax, name)


def tube(points, radius: float, *, name: str = "") -> list[Shape]:
    """A polyline tube as a list of capsules."""
    pts = np.asarray(points, float)
    return [capsule(pts[i], pts[i + 1], radius, name=name) for i in range(len(pts) - 1)]


def custom(contains: Contains, lo, hi, name: str = "") -> Shape:
    return Shape(contains, np.asarray(lo, float), np.asarray(hi, float), name)


def polyline_length(points) -> float:
    pts = np.asarray(points, float)
    return float(np.sum(np.linalg.norm(np.diff(pts, axis=0), axis=1)))


# -- lattices --------------------------------------------------------------------------------
@dataclass
class Lattice:
    """``s^3`` sub-samples per voxel of an image grid, with the map lattice index -> anatomy mm."""

    affine: np.ndarray  # voxel grid ijk -> world RAS
    shape: tuple[int, int, int]  # voxel grid shape
    s: int
    frame: SpineFrame

    def __post_init__(self):
        sub = np.eye(4)
        sub[:3, :3] *= 1.0 / self.s
        sub[:3, 3] = 0.5 / self.s - 0.5
        self.index_to_world = self.affine @ sub
        self.index_to_anat = np.linalg.inv(self.frame.anat_to_world) @ self.index_to_world
        self.anat_to_index = np.linalg.inv(self.index_to_anat)
        self.lshape = tuple(int(n) * self.s for n in self.shape)
        self._xyz = None

    def block(self, lo_local, hi_local, pad: float = 0.5):
        """Lattice index slices covering a spine-local bounding box (None when outside)."""
        lo = np.asarray(lo_local, float) - pad
        hi = np.asarray(hi_local, float) + pad
        zs = np.linspace(lo[2], hi[2], 9)
        a_vals = self.frame.curve(zs)
        ylo, yhi = lo[1] + a_vals.min(), hi[1] + a_vals.max()
        corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (ylo, yhi) for z in (lo[2], hi[2])])
        idx = corners @ self.anat_to_index.T
        i0 = np.maximum(np.floor(idx[:, :3].min(axis=0)).astype(int), 0)
        i1 = np.minimum(np.ceil(idx[:, :3].max(axis=0)).astype(int) + 1, self.lshape)
        if np.any(i1 <= i0):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(i0, i1, strict=True))

    def coords(self, sl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spine-local coordinates (float32 views) of a lattice block; the whole lattice's
        coordinates are computed once and cached (12 bytes per sub-sample)."""
        if self._xyz is None:
            ia, ib, ic = (np.arange(n, dtype=np.float32) for n in self.lshape)
            m = self.index_to_anat.astype(np.float32)
            out = []
            for r in range(3):
                v = np.empty(self.lshape, np.float32)
                np.add(m[r, 0] * ia[:, None, None], m[r, 1] * ib[None, :, None], out=v)
                v += m[r, 2] * ic[None, None, :] + m[r, 3]
                out.append(v)
            x, y, z = out
            y -= np.float32(0.5 * self.frame.kappa) * (z - np.float32(self.frame.z0)) ** 2
            self._xyz = (x, y, z)
        return tuple(a[sl] for a in self._xyz)

    def release(self) -> None:
        """Drop the cached coordinates."""
        self._xyz = None

    def coords_of(self, flat_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spine-local coordinates (float64) of lattice samples given by flat (C-order) index."""
        ijk = np.stack(np.unravel_index(flat_index, self.lshape), axis=1).astype(float)
        p = ijk @ self.index_to_anat[:3, :3].T + self.index_to_anat[:3, 3]
        p[:, 1] -= self.frame.curve(p[:, 2])
        return p[:, 0], p[:, 1], p[:, 2]

    def paint(self, target: np.ndarray, ops) -> np.ndarray:
        """Apply a painter's list ``[(shape, value, where)]`` to a lattice array in order.

        ``where`` is None (paint anywhere) or a sequence of current values that may be replaced.
        """
        for shape, value, where in ops:
            sl = self.block(shape.lo, shape.hi)
            if sl is None:
                continue
            x, y, z = self.coords(sl)
            m = np.broadcast_to(shape.contains(x, y, z), tuple(s.stop - s.start for s in sl))
            view = target[sl]
            if where is not None:
                m = m & np.isin(view, np.asarray(where, dtype=target.dtype))
            view[m] = value
        return target

    def block_mean(self, values: np.ndarray) -> np.ndarray:
        """Mean over each voxel's ``s^3`` sub-samples (float32)."""
        s = self.s
        out = np.zeros(self.shape, np.float32)
        for a in range(s):
            for b in range(s):
                for c in range(s):
                    out += values[a::s, b::s, c::s]
        out *= np.float32(1.0 / s**3)
        return out

    def block_count(self, mask: np.ndarray) -> np.ndarray:
        """Number of true sub-samples per voxel (uint8) of a boolean lattice."""
        s = self.s
        out = np.zeros(self.shape, np.uint8)
        m = mask.view(np.uint8)
        for a in range(s):
            for b in range(s):
                for c in range(s):
                    out += m[a::s, b::s, c::s]
        return out

    def voxel_of(self, flat_index: np.ndarray) -> np.ndarray:
        """Flat voxel index of lattice samples given by flat lattice index."""
        a, b, c = np.unravel_index(flat_index, self.lshape)
        return np.ravel_multi_index((a // self.s, b // self.s, c // self.s), self.shape)
