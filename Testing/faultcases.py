"""Tiny damaged and valid inputs for the fault-injection tests (test helper, not installed).

Every image is a few thousand voxels so that a whole ``spineplan plan --no-scene`` takes about a
second in-process; the tumor centre lies right of the midline (negative R) on purpose.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
from testimages import ball_mask, blob_volume, oblique_affine

from SpinePlannerLib.core.imageio import write_volume
from SpinePlannerLib.core.volume import Volume

SHAPE = (24, 20, 14)
ORIGIN = (-18.0, -30.0, 10.0)


def write_tiny_case(d: Path) -> dict:
    """Write ``t2``, ``t1``, ``tumor``, a small ``dwi`` with bval/bvec into ``d``; returns facts."""
    d.mkdir(parents=True, exist_ok=True)
    aff = oblique_affine(order="PSR", spacing=(1.0, 1.0, 1.5), origin=ORIGIN)
    t2 = blob_volume(aff, shape=SHAPE)
    write_volume(t2, d / "t2.nii.gz")
    write_volume(blob_volume(aff, shape=SHAPE, seed=1), d / "t1.nii.gz")
    center = t2.ijk_to_ras((np.asarray(SHAPE) - 1) / 2)
    write_volume(ball_mask(aff, SHAPE, center, 4.0), d / "tumor.nii.gz")
    dwi = np.full(SHAPE[:2] + (6, 4), 300.0, np.float32)
    dwi[..., 0] = 1000
    write_volume(Volume(dwi, aff), d / "dwi.nii.gz")
    np.savetxt(d / "bval", [[0, 800, 800, 800]])
    np.savetxt(d / "bvec", np.eye(4, 3).T + 0.1)
    return {"t2": t2, "center": center, "affine": aff}


def write_nifti(path: Path, arr: np.ndarray, affine: np.ndarray, *, codes=(1, 1), pixdim=None) -> Path:
    """A NIfTI with chosen qform/sform codes and (optionally) raw pixdim[1:4] values patched into
    the file's bytes (``path`` must then end in ``.nii``; nibabel would repair them on saving)."""
    img = nib.Nifti1Image(arr, affine)
    img.set_sform(affine, code=codes[0])
    img.set_qform(affine, code=codes[1])
    nib.save(img, str(path))
    if pixdim is not None:
        raw = bytearray(Path(path).read_bytes())
        raw[80:92] = struct.pack("<3f", *pixdim)  # pixdim[1..3] at byte 80 of the NIfTI-1 header
        Path(path).write_bytes(bytes(raw))
    return path


def write_rgb_nifti(path: Path, affine: np.ndarray) -> Path:
    rgb = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = 200
    return write_nifti(path, rgb, affine)


def write_nifti_with_odd_extension(path: Path, volume: Volume) -> Path:
    """A valid NIfTI whose header extension size is not a multiple of 16: nibabel warns on reading."""
    img = nib.Nifti1Image(volume.array, volume.affine)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"spineplan fault injection ....."))
    tmp = path.with_suffix(".tmp.nii")
    nib.save(img, str(tmp))
    raw = bytearray(tmp.read_bytes())
    tmp.unlink()
    esize = struct.unpack("<i", raw[352:356])[0]
    raw[352:356] = struct.pack("<i", esize - 4)
    path.write_bytes(bytes(raw))
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under ``folder`` (empty dict when absent)."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    """Hidden staging/old folders of spineplan left beside output folders in ``parent``."""
    return sorted(p.name for p in Path(parent).iterdir() if ".staging-" in p.name or ".old-" in p.name)
