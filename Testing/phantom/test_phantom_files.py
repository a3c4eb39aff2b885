"""The phantom writes every file of every kind, and the project's readers load them with the
documented geometry (oblique grids, non-RAS axis orders, HU integers, FSL gradients)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from SpinePlannerLib.cli.main import main as cli
from SpinePlannerLib.core.dwi_io import read_dwi
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.phantom.case import PHANTOM_KINDS, gradient_table, write_phantom

IMAGES = ("t1", "t2", "ct", "sct", "angio")
LABELS = ("cord", "csf", "vertebrae", "tumor", "calcification", "vessels")


def _axis_code(affine) -> str:
    """Dominant RAS letter of each voxel axis (e.g. 'PSR')."""
    letters = (("R", "L"), ("A", "P"), ("S", "I"))
    out = ""
    for col in range(3):
        v = affine[:3, col]
        k = int(np.argmax(np.abs(v)))
        out += letters[k][0 if v[k] > 0 else 1]
    return out


def _obliquity_deg(affine) -> float:
    """Largest angle (degrees) between a voxel axis and its nearest RAS axis."""
    d = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return float(np.degrees(np.arccos(np.clip(np.abs(d).max(axis=0).min(), -1, 1))))


@pytest.mark.parametrize("kind", PHANTOM_KINDS)
def test_every_kind_writes_every_file_and_readers_load_them(kind, phantom_dir):
    t0 = time.perf_counter()
    folder = phantom_dir(kind)
    print(f"{kind}: phantom ready after {time.perf_counter() - t0:.2f} s (generation time is printed, not asserted)")
    for name in (*(f"{r}.nii.gz" for r in IMAGES), "dwi.nii.gz", "dwi.bval", "dwi.bvec", "truth.json",
                 *(f"labels/{n}.nii.gz" for n in LABELS)):
        assert (folder / name).is_file(), f"{kind}: {name} missing"
    vols = {r: read_volume(folder / f"{r}.nii.gz") for r in IMAGES}
    t2 = vols["t2"]
    # reference grid: 0.8-1.0 mm in-plane, <= 2 mm slices, field about 70 x 70 x 120-130 mm, oblique, non-RAS order
    sp = sorted(t2.spacing)
    assert 0.8 <= sp[0] <= 1.0 and 0.8 <= sp[1] <= 1.0 and sp[2] <= 2.0
    fov = sorted(np.asarray(t2.shape3) * t2.spacing)
    assert 65 <= fov[0] <= 75 and 65 <= fov[1] <= 75 and 120 <= fov[2] <= 130
    assert _axis_code(t2.affine) not in ("RAS",), "T2 must be stored in a non-RAS axis order"
    assert _obliquity_deg(t2.affine) > 2.0
    assert vols["ct"].array.dtype == np.int16 and vols["angio"].array.dtype == np.int16
    assert vols["sct"].array.dtype == np.int16
    assert vols["t1"].array.dtype == np.float32 and t2.array.dtype == np.float32
    assert not vols["ct"].same_grid(t2) and _obliquity_deg(vols["ct"].affine) > 1.0
    assert np.all(vols["angio"].spacing <= 0.8 + 1e-6)
    # T1 shares the T2 voxel centres (another axis order): the world position of the corner voxels agree
    t1 = vols["t1"]
    assert sorted(t1.shape3) == sorted(t2.shape3)
    lo1, hi1 = t1.bounds_ras()
    lo2, hi2 = t2.bounds_ras()
    assert np.allclose(lo1, lo2, atol=1e-3) and np.allclose(hi1, hi2, atol=1e-3)
    for n in LABELS:
        lab = read_volume(folder / "labels" / f"{n}.nii.gz")
        assert lab.array.dtype == np.uint8, n
        assert lab.same_grid(t2), f"label {n} is not on the T2 grid"
    truth = json.loads((folder / "truth.json").read_text())
    for key in ("kind", "seed", "reference_role", "levels", "tumor", "cord", "ct", "sct", "dwi", "feeders",
                "adamkiewicz", "expected"):
        assert key in truth, key
    assert truth["kind"] == kind and truth["reference_role"] == "t2"
    for key in ("volume_ml", "centroid_ras", "max_axial_diameter_mm", "craniocaudal_extent_mm", "compartment",
                "levels_spanned", "side", "position"):
        assert key in truth["tumor"], key
    for key in ("setzer_type", "pattern", "sct_disagreement", "calcification_class", "compartment"):
        assert key in truth["expected"], key


@pytest.mark.parametrize("kind", ["intramedullary-displacing", "extradural-lytic"])
def test_dwi_has_its_own_oblique_grid_and_fsl_gradients_round_trip(kind, phantom_dir):
    folder = phantom_dir(kind)
    dwi = read_dwi(folder / "dwi.nii.gz", folder / "dwi.bval", folder / "dwi.bvec")
    t2 = read_volume(folder / "t2.nii.gz")
    vol = dwi.volume
    assert not vol.same_grid(t2)
    assert np.linalg.det(vol.affine[:3, :3]) < 0, "the DWI grid is written with a negative determinant"
    assert _obliquity_deg(vol.affine) > 3.0
    sp = vol.spacing
    assert 1.0 <= min(sp) and sorted(sp)[1] <= 1.5 and max(sp) <= 2.5
    bvals, bvecs = gradient_table()
    assert dwi.n_directions >= 30 and int(np.sum(dwi.bvals < 50)) >= 2
    assert np.allclose(dwi.bvals, bvals)
    # the world directions read back through the FSL convention are the ones simulated (< 0.01 deg)
    dw = bvals > 0
    cos = np.abs(np.sum(dwi.bvecs_ras[dw] * bvecs[dw], axis=1))
    assert np.degrees(np.arccos(np.clip(cos.min(), -1, 1))) < 0.01
    rows = (folder / "dwi.bvec").read_text().strip().splitlines()
    assert len(rows) == 3 and len(rows[0].split()) == len(bvals)


def test_cli_writes_a_phantom_and_rejects_an_unknown_kind(tmp_path, capsys):
    out = tmp_path / "case"
    assert cli(["phantom", "--kind", "idem-soft", "--out", str(out), "--seed", "3"]) == 0
    assert json.loads((out / "truth.json").read_text())["seed"] == 3
    assert cli(["phantom", "--kind", "no-such-kind", "--out", str(tmp_path / "x")]) == 2
    assert "--kind" in capsys.readouterr().err


def test_write_phantom_returns_the_written_paths(tmp_path):
    files = write_phantom("intramedullary-crossing", tmp_path, seed=1)
    assert {"t1", "t2", "ct", "sct", "angio", "dwi", "bval", "bvec", "truth"} <= set(files)
    assert {f"labels/{n}" for n in LABELS} <= set(files)
    for path in files.values():
        assert path.is_file() and path.stat().st_size > 0
    assert not list(tmp_path.glob("**/*.part*")), "temporary files left behind"
