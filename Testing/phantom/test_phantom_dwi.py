"""The phantom's diffusion MRI: tensors fitted with DIPY (gradients from
``DiffusionData.bvecs_voxel()``) recover the simulated cord direction, FA and the per-kind tumor
patterns (displaced, infiltrated, crossed), at the documented SNR."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dipy.core.gradients import gradient_table
from dipy.reconst.dti import TensorModel
from scipy import ndimage

from SpinePlannerLib.core.dwi_io import read_dwi, rotation_of
from SpinePlannerLib.core.geometry import resample_mask_like
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.volume import Volume


def _case(folder):
    dwi = read_dwi(folder / "dwi.nii.gz", folder / "dwi.bval", folder / "dwi.bvec")
    truth = json.loads((folder / "truth.json").read_text())
    labels = {n: read_volume(folder / "labels" / f"{n}.nii.gz") for n in ("cord", "tumor")}
    return dwi, truth, labels


def _fit(dwi, mask):
    """Tensor fit on the voxels of ``mask`` only: (FA, MD, principal eigenvectors in world RAS)."""
    gtab = gradient_table(dwi.bvals, bvecs=dwi.bvecs_voxel())
    fit = TensorModel(gtab).fit(dwi.volume.array[mask])
    evecs_world = fit.evecs[..., 0] @ rotation_of(dwi.volume.affine).T
    return fit.fa, fit.md, evecs_world


def _on_dwi(mask: Volume, dwi, *, erode: int = 0) -> np.ndarray:
    m = resample_mask_like(mask, dwi.volume).array > 0
    return ndimage.binary_erosion(m, iterations=erode) if erode else m


def _distance_from(dwi, mask, point) -> np.ndarray:
    pts = dwi.volume.ijk_to_ras(np.argwhere(mask))
    return np.linalg.norm(pts - np.asarray(point), axis=1)


@pytest.mark.parametrize("kind", ["intramedullary-displacing", "idem-soft", "extradural-lytic"])
def test_principal_eigenvector_in_normal_cord_follows_the_cord_axis(kind, phantom_dir):
    dwi, truth, labels = _case(phantom_dir(kind))
    cord = _on_dwi(labels["cord"], dwi, erode=1)
    # normal cord: at least 25 mm from the tumor centroid
    far = _distance_from(dwi, cord, truth["tumor"]["centroid_ras"]) > 25.0
    idx = np.argwhere(cord)[far][:40]
    mask = np.zeros(cord.shape, bool)
    mask[tuple(idx.T)] = True
    fa, md, ev = _fit(dwi, mask)
    axis = np.array(truth["cord"]["axis_ras"])
    angles = np.degrees(np.arccos(np.clip(np.abs(ev @ axis), 0, 1)))
    print(f"{kind}: normal cord FA {np.median(fa):.3f}, MD {np.median(md):.2e}, angle median {np.median(angles):.1f} deg")
    assert np.median(angles) < 10.0
    assert 0.55 <= float(np.median(fa)) <= 0.85
    assert float(np.median(md)) == pytest.approx(0.8e-3, rel=0.2)


def test_b0_snr_in_the_cord_is_about_20_to_30(phantom_dir):
    dwi, truth, labels = _case(phantom_dir("intramedullary-displacing"))
    cord = _on_dwi(labels["cord"], dwi, erode=1)
    far = _distance_from(dwi, cord, truth["tumor"]["centroid_ras"]) > 25.0
    b0 = dwi.volume.array[..., dwi.bvals < 50][cord][far]
    signal = float(b0.mean())
    noise = float(np.std(b0[:, 0] - b0[:, 1]) / np.sqrt(2.0))
    print(f"b0 SNR in cord: {signal / noise:.1f}")
    assert 18.0 <= signal / noise <= 32.0


def _tumor_and_ring(dwi, labels, truth):
    """Tumor core voxels and the cord voxels of the ring around the tumor's middle third."""
    tumor = _on_dwi(labels["tumor"], dwi)
    core = ndimage.binary_erosion(tumor)
    if not core.any():
        core = tumor
    cord = _on_dwi(labels["cord"], dwi)
    axis = np.array(truth["cord"]["axis_ras"])
    c = np.array(truth["tumor"]["centroid_ras"])
    pts = dwi.volume.ijk_to_ras(np.argwhere(cord))
    along = np.abs((pts - c) @ axis)
    ring = np.zeros(cord.shape, bool)
    sel = np.argwhere(cord)[along < truth["tumor"]["craniocaudal_extent_mm"] / 6.0]
    ring[tuple(sel.T)] = True
    ring &= ~ndimage.binary_dilation(tumor)
    return core, ring


@pytest.fixture(scope="module")
def patterns(phantom_dir):
    out = {}
    for kind in ("intramedullary-displacing", "intramedullary-infiltrative", "intramedullary-crossing"):
        dwi, truth, labels = _case(phantom_dir(kind))
        core, ring = _tumor_and_ring(dwi, labels, truth)
        fa_core, md_core, ev_core = _fit(dwi, core)
        fa_ring, _, _ = _fit(dwi, ring)
        axis = np.array(truth["cord"]["axis_ras"])
        out[kind] = dict(fa_core=float(np.median(fa_core)), md_core=float(np.median(md_core)),
                         fa_ring=float(np.median(fa_ring)) if ring.any() else float("nan"),
                         angle_core=float(np.median(np.degrees(np.arccos(np.clip(np.abs(ev_core @ axis), 0, 1))))),
                         truth=truth)
        print(kind, {k: round(v, 4) for k, v in out[kind].items() if k != "truth"})
    return out


def test_displacing_tumor_is_isotropic_inside_with_coherent_fibers_around(patterns):
    p = patterns["intramedullary-displacing"]
    assert p["fa_core"] < 0.3
    assert p["md_core"] == pytest.approx(1.5e-3, rel=0.25)
    assert p["fa_ring"] > 0.45
    assert p["truth"]["expected"]["setzer_type"] == 1 and p["truth"]["dwi"]["fiber_pattern"] == "displaced"


def test_infiltrative_tumor_has_isotropic_core_and_lowered_peritumoral_fa(patterns):
    p = patterns["intramedullary-infiltrative"]
    assert p["fa_core"] < 0.3
    assert p["md_core"] == pytest.approx(1.6e-3, rel=0.25)
    assert p["fa_ring"] < patterns["intramedullary-displacing"]["fa_ring"] - 0.1
    assert p["truth"]["expected"]["setzer_type"] == 3


def test_crossing_tumor_keeps_oriented_fibers_with_lowered_fa(patterns):
    p = patterns["intramedullary-crossing"]
    assert 0.25 <= p["fa_core"] <= 0.5
    assert p["angle_core"] < 20.0
    assert p["fa_core"] > patterns["intramedullary-displacing"]["fa_core"] + 0.1
    assert p["truth"]["expected"]["setzer_type"] == 2
