"""A small synthetic cord DWI with a known fiber field (L1; tests and self-checks).

The cord is a straight tube in world (RAS) coordinates; inside it a single-tensor signal whose
principal axis follows a known fiber field, outside it isotropic CSF-like diffusion. An
optional prolate-ellipsoid intramedullary tumor sits on the tube's axis:

* ``"straight"``    no tumor; fibers parallel to the tube axis;
* ``"displacing"``  isotropic tumor; fibers pushed aside around it (area-preserving radial
  displacement, the cord swells), none inside;
* ``"infiltrative"`` isotropic tumor where straight tracts were (tracts stop in it);
* ``"crossing"``    straight fibers pass through a tumor of lowered anisotropy.

The DWI grid and the anatomical (reference) grid of the masks are different oblique grids
so that every consumer is forced through world coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from SpinePlannerLib.core.dwi_io import DiffusionData
from SpinePlannerLib.core.volume import Volume, affine_from_ras_geometry

KINDS = ("straight", "displacing", "infiltrative", "crossing")

CORD_EVALS = (1.7e-3, 0.3e-3, 0.3e-3)
"""Cord white-matter eigenvalues (mm^2/s): FA 0.80, MD 0.77e-3."""
CROSSING_EVALS = (1.3e-3, 0.7e-3, 0.7e-3)
"""Tumor eigenvalues of the ``crossing`` kind (mm^2/s): FA 0.37."""
TUMOR_MD = 1.1e-3
CSF_MD = 2.5e-3


@dataclass
class SyntheticCord:
    """A synthetic case: DWI, masks on a reference grid, and the truth.

    Attributes
    ----------
    dwi : DiffusionData
    cord : Volume
        Cord mask (tube, tumor included) on the reference grid.
    tumor : Volume or None
        Tumor (prolate ellipsoid) on the reference grid.
    axis_ras : np.ndarray (3,)
        Unit RAS direction of the tube (and of the unperturbed fibers).
    centre_ras : np.ndarray (3,)
        Tube centre = tumor centre (RAS mm).
    """

    dwi: DiffusionData
    cord: Volume
    tumor: Volume | None
    axis_ras: np.ndarray
    centre_ras: np.ndarray
    kind: str
    cord_radius_mm: float
    tumor_radius_mm: float
    tumor_half_length_mm: float


def fibonacci_hemisphere(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors on the upper hemisphere (z >= 0), shape (n, 3)."""
    i = np.arange(n) + 0.5
    z = 1.0 - i / n
    r = np.sqrt(1.0 - z**2)
    phi = np.pi * (3.0 - np.sqrt(5.0)) * np.arange(n)
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def rotation_matrix(axis, angle_deg: float) -> np.ndarray:
    """Rotation of ``angle_deg`` degrees about unit ``axis`` (Rodrigues)."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.deg2rad(angle_deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def oblique_grid(centre_ras, size_mm, spacing, rotation, *, flip_i: bool = True) -> tuple[np.ndarray, tuple]:
    """Affine and shape of a grid of ``spacing`` (mm) covering a box of ``size_mm`` centred on
    ``centre_ras`` whose axes are the columns of ``rotation`` (the i axis negated when ``flip_i``:
    a negative-determinant, i.e. radiological, affine)."""
    spacing = np.asarray(spacing, float)
    direction = np.asarray(rotation, float).copy()
    if flip_i:
        direction[:, 0] *= -1.0
    shape = tuple(int(np.ceil(s / sp)) + 1 for s, sp in zip(size_mm, spacing, strict=True))
    half = (np.asarray(shape) - 1) / 2.0 * spacing
    origin = np.asarray(centre_ras, float) - direction @ half
    return affine_from_ras_geometry(origin, spacing, direction), shape


def tumor_radius_at(z: np.ndarray, radius: float, half_length: float) -> np.ndarray:
    """Cross-section radius (mm) of the prolate tumor at axial offset ``z`` (0 outside it)."""
    return radius * np.sqrt(np.clip(1.0 - (np.asarray(z, float) / half_length) ** 2, 0.0, None))


def _fiber_directions(local: np.ndarray, kind: str, radius: float, half_length: float) -> np.ndarray:
    """Unit fiber directions (local frame, z = tube axis) at local points (N, 3).

    ``displacing``: area-preserving radial displacement, a fiber at radius ``rho0`` far from the
    tumor runs at ``rho(z) = sqrt(rho0^2 + a(z)^2)`` beside it (``a`` the tumor cross-section
    radius), so ``d rho / dz = a a' / rho``; elsewhere fibers are parallel to the axis.
    """
    dirs = np.zeros_like(local)
    dirs[:, 2] = 1.0
    if kind == "displacing":
        rho = np.linalg.norm(local[:, :2], axis=1)
        z = local[:, 2]
        inside = np.abs(z) < half_length
        a_da = np.where(inside, -(radius**2) * z / half_length**2, 0.0)
        slope = a_da / np.maximum(rho, 0.25)
        radial = local[:, :2] / np.maximum(rho, 1e-9)[:, None]
        v = np.column_stack([slope[:, None] * radial, np.ones(len(local))])
        dirs = v / np.linalg.norm(v, axis=1, keepdims=True)
    return dirs


def make_synthetic_cord(kind: str = "straight", *, axis_ras=(0.25, -0.35, 1.0), centre_ras=(3.0, -20.0, 40.0),
                        cord_radius_mm: float = 5.0, tumor_radius_mm: float = 3.0, tumor_half_length_mm: float = 7.0,
                        length_mm: float = 60.0,
                        dwi_spacing=(1.25, 1.25, 2.0), ref_spacing=(0.8, 0.8, 0.8), n_directions: int = 30,
                        n_b0: int = 2, bval: float = 1000.0, snr: float = 30.0, seed: int = 0,
                        dwi_negative_determinant: bool = True) -> SyntheticCord:
    """Build a synthetic cord DWI (see module docstring).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    axis_ras : 3 floats
        Tube (fiber) direction in RAS.
    centre_ras : 3 floats
        Tube centre in RAS mm.
    dwi_spacing, ref_spacing : 3 floats
        Voxel sizes (mm) of the DWI grid and of the reference (mask) grid.
    n_directions, n_b0, bval : int, int, float
        Gradient scheme (``bval`` in s/mm^2).
    snr : float
        b=0 cord signal over the Rician noise sigma.
    dwi_negative_determinant : bool
        Give the DWI affine a negative determinant (i axis flipped; FSL then does not flip bvec x).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    axis = np.asarray(axis_ras, float) / np.linalg.norm(axis_ras)
    centre = np.asarray(centre_ras, float)
    # local frame: columns u, v, axis
    u = np.cross(axis, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    frame = np.column_stack([u, np.cross(axis, u), axis])

    # DWI grid: tilted 20 degrees off the tube, negative determinant
    tilt = rotation_matrix([1.0, 1.0, 0.0], 20.0) @ frame
    size = (2 * cord_radius_mm + 0.45 * length_mm, 2 * cord_radius_mm + 0.45 * length_mm, length_mm)
    dwi_affine, dwi_shape = oblique_grid(centre, size, dwi_spacing, tilt, flip_i=dwi_negative_determinant)
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in dwi_shape], indexing="ij"), axis=-1).reshape(-1, 3)
    ras = ijk @ dwi_affine[:3, :3].T + dwi_affine[:3, 3]
    local = (ras - centre) @ frame
    radial = np.linalg.norm(local[:, :2], axis=1)
    has_tumor = kind != "straight"
    a = tumor_radius_at(local[:, 2], tumor_radius_mm, tumor_half_length_mm) if has_tumor else np.zeros(len(local))
    in_tumor = radial < a
    # the cord swells around a displacing tumor (tissue pushed aside, not destroyed)
    cord_r = np.sqrt(cord_radius_mm**2 + a**2) if kind == "displacing" else np.full(len(local), cord_radius_mm)
    in_cord = radial <= cord_r

    # gradient table in RAS
    dirs = fibonacci_hemisphere(n_directions)
    bvecs = np.vstack([np.zeros((n_b0, 3)), dirs])
    bvals = np.concatenate([np.zeros(n_b0), np.full(n_directions, bval)])

    fib_local = _fiber_directions(local, kind, tumor_radius_mm, tumor_half_length_mm)
    fib = fib_local @ frame.T
    l1, l2, _ = CORD_EVALS
    # D = l2 I + (l1 - l2) f f^T ; g^T D g = l2 + (l1 - l2) (f.g)^2
    proj = fib @ dirs.T
    adc = l2 + (l1 - l2) * proj**2
    s0 = np.full(len(ras), 1.2)
    adc[~in_cord] = CSF_MD
    s0[in_cord] = 1.0
    if has_tumor:
        if kind == "crossing":
            c1, c2, _ = CROSSING_EVALS
            adc[in_tumor] = c2 + (c1 - c2) * proj[in_tumor] ** 2
        else:
            adc[in_tumor] = TUMOR_MD
        s0[in_tumor] = 1.1
    signal = np.empty((len(ras), len(bvals)))
    signal[:, :n_b0] = s0[:, None]
    signal[:, n_b0:] = s0[:, None] * np.exp(-bval * adc)
    sigma = 1.0 / snr
    noisy = np.sqrt((signal + rng.normal(0, sigma, signal.shape)) ** 2 + rng.normal(0, sigma, signal.shape) ** 2)
    data = (noisy * 1000.0).astype(np.float32).reshape(*dwi_shape, len(bvals))
    dwi = DiffusionData(Volume(data, dwi_affine, "dwi"), bvals, bvecs)

    # reference grid: another rotation, flip on i as well, finer voxels
    ref_rot = rotation_matrix([0.0, 1.0, 1.0], -12.0) @ frame
    ref_size = (2 * cord_radius_mm + 6, 2 * cord_radius_mm + 6, length_mm - 4)
    ref_affine, ref_shape = oblique_grid(centre, ref_size, ref_spacing, ref_rot, flip_i=False)
    ijk_r = np.stack(np.meshgrid(*[np.arange(s) for s in ref_shape], indexing="ij"), axis=-1).reshape(-1, 3)
    local_r = (ijk_r @ ref_affine[:3, :3].T + ref_affine[:3, 3] - centre) @ frame
    radial_r = np.linalg.norm(local_r[:, :2], axis=1)
    a_r = tumor_radius_at(local_r[:, 2], tumor_radius_mm, tumor_half_length_mm) if has_tumor else 0.0 * radial_r
    cord_r_r = np.sqrt(cord_radius_mm**2 + a_r**2) if kind == "displacing" else cord_radius_mm
    cord = (radial_r <= cord_r_r).reshape(ref_shape).astype(np.uint8)
    tumor = None
    if has_tumor:
        tumor = Volume((radial_r < a_r).reshape(ref_shape).astype(np.uint8), ref_affine, "tumor")
    return SyntheticCord(dwi, Volume(cord, ref_affine, "cord"), tumor, axis, centre, kind,
                         cord_radius_mm, tumor_radius_mm, tumor_half_length_mm)
