"""truth.json agrees with the images it describes: the tumor measured on the label map and on the
CT with SpinePlannerLib.measurement.lesion, the HU in the lesion on CT and synthetic CT, the compartment,
the vertebral levels and the vessel tree."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from SpinePlannerLib.core.geometry import mask_centroid_ras, mask_volume_ml, resample_mask_like
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.measurement import lesion as measure
from SpinePlannerLib.phantom.case import PHANTOM_KINDS


def _load(folder):
    truth = json.loads((folder / "truth.json").read_text())
    labels = {n: read_volume(folder / "labels" / f"{n}.nii.gz")
              for n in ("cord", "csf", "vertebrae", "tumor", "calcification", "vessels", "bone")}
    return truth, labels


@pytest.mark.parametrize("kind", PHANTOM_KINDS)
def test_tumor_label_measurements_match_truth(kind, phantom_dir):
    truth, labels = _load(phantom_dir(kind))
    tumor, cord = labels["tumor"], labels["cord"]
    t = truth["tumor"]
    centroid = mask_centroid_ras(tumor)
    axis = measure.cord_axis(cord, near_ras=centroid)
    # the cord axis measured on the label agrees with the analytic axis (< 3 degrees)
    assert np.degrees(np.arccos(min(1.0, abs(float(axis @ np.array(truth["cord"]["axis_ras"])))))) < 3.0
    vol = mask_volume_ml(tumor)
    dax = measure.max_axial_diameter_mm(tumor, axis)
    cc = measure.extent_along_mm(tumor, axis)
    print(f"{kind}: volume {vol:.3f}/{t['volume_ml']:.3f} mL, axial {dax:.2f}/{t['max_axial_diameter_mm']:.2f} mm, "
          f"cc {cc:.2f}/{t['craniocaudal_extent_mm']:.2f} mm")
    assert vol == pytest.approx(t["volume_ml"], rel=0.10)
    assert dax == pytest.approx(t["max_axial_diameter_mm"], abs=1.5)
    assert cc == pytest.approx(t["craniocaudal_extent_mm"], abs=1.5)
    assert np.linalg.norm(centroid - np.array(t["centroid_ras"])) < 0.9  # one in-plane voxel
    compartment, _ = measure.classify_compartment(tumor, cord=cord, thecal_sac=labels["csf"], bone=labels["bone"])
    assert compartment == t["compartment"] == truth["expected"]["compartment"]
    assert mask_volume_ml(cord) == pytest.approx(truth["cord"]["volume_ml"], rel=0.08)


def test_calcified_meningioma_measured_on_ct_matches_truth(phantom_dir):
    """The CLINICAL.md §4 case: about 550 HU, 13.8 mm axial x 16 mm cranio-caudal; sCT about 12 HU."""
    folder = phantom_dir("idem-calcified")
    truth, labels = _load(folder)
    ct = read_volume(folder / "ct.nii.gz")
    sct = read_volume(folder / "sct.nii.gz")
    assert truth["tumor"]["max_axial_diameter_mm"] == pytest.approx(13.8, abs=0.05)
    assert truth["tumor"]["craniocaudal_extent_mm"] == pytest.approx(16.0, abs=0.05)
    roi = resample_mask_like(labels["tumor"], ct).array > 0
    assert float(ct.array[roi].mean()) == pytest.approx(550.0, abs=40.0)
    assert float(ct.array[roi].mean()) == pytest.approx(truth["ct"]["tumor_mean_hu"], abs=0.5)
    assert float(sct.array[roi].mean()) == pytest.approx(12.0, abs=8.0)
    assert float(sct.array[roi].mean()) == pytest.approx(truth["sct"]["tumor_mean_hu"], abs=0.5)
    # threshold the CT half-way between lesion and CSF inside the thecal sac (from the MRI labels;
    # not dilated, so that partial-volume voxels of the laminae stay out): the calcified lesion
    sac = resample_mask_like(labels["csf"], ct).array > 0
    threshold = 0.5 * (truth["ct"]["tumor_core_hu"] + 10.0)
    seg = (ct.array > threshold) & sac
    comp, n = ndimage.label(seg)
    assert n >= 1
    sizes = ndimage.sum(seg, comp, index=range(1, n + 1))
    seg = comp == (1 + int(np.argmax(sizes)))
    ct_mask = Volume(seg.astype(np.uint8), ct.affine)
    axis = np.array(truth["cord"]["axis_ras"])
    vol = mask_volume_ml(ct_mask)
    dax = measure.max_axial_diameter_mm(ct_mask, axis)
    cc = measure.extent_along_mm(ct_mask, axis)
    print(f"CT threshold: volume {vol:.3f}/{truth['tumor']['volume_ml']:.3f} mL, axial {dax:.2f} mm, cc {cc:.2f} mm")
    assert vol == pytest.approx(truth["tumor"]["volume_ml"], rel=0.10)
    assert dax == pytest.approx(truth["tumor"]["max_axial_diameter_mm"], abs=1.5)
    assert cc == pytest.approx(truth["tumor"]["craniocaudal_extent_mm"], abs=1.5)
    # the synthetic CT shows no calcification: nothing in the sac reaches even 150 HU
    assert np.count_nonzero((sct.array > 150) & sac & roi) == 0
    assert np.array_equal(labels["calcification"].array > 0, labels["tumor"].array > 0)
    assert truth["expected"]["sct_disagreement"] is True and truth["expected"]["calcification_class"] == "dense"


@pytest.mark.parametrize(("kind", "ct_hu", "sct_hu", "calc"), [
    ("idem-soft", 40.0, 35.0, "none"),
    ("idem-faint", 113.0, 20.0, "faint"),
])
def test_lesion_hu_on_ct_and_sct_match_the_published_values(kind, ct_hu, sct_hu, calc, phantom_dir):
    folder = phantom_dir(kind)
    truth, labels = _load(folder)
    ct = read_volume(folder / "ct.nii.gz")
    sct = read_volume(folder / "sct.nii.gz")
    roi = resample_mask_like(labels["tumor"], ct).array > 0
    assert float(ct.array[roi].mean()) == pytest.approx(ct_hu, abs=8.0)
    assert float(sct.array[roi].mean()) == pytest.approx(sct_hu, abs=8.0)
    assert truth["expected"]["calcification_class"] == calc
    assert bool(labels["calcification"].array.any()) == (calc != "none")


def test_lytic_metastasis_replaces_most_of_one_body_and_extends_into_the_canal(phantom_dir):
    folder = phantom_dir("extradural-lytic")
    truth, labels = _load(folder)
    ct = read_volume(folder / "ct.nii.gz")
    assert truth["tumor"]["body_fraction_replaced"] > 0.5
    tumor = labels["tumor"].array > 0
    verts = labels["vertebrae"].array
    level_index = {v: int(k) for k, v in truth["levels"].items()}[truth["tumor"]["level"]]
    in_bone = tumor & (verts == level_index)
    in_sac_region = tumor & (labels["csf"].array == 0) & (verts == 0)
    assert in_bone.sum() > 0.5 * tumor.sum(), "most of the lesion lies inside the vertebra"
    assert in_sac_region.sum() > 50, "an epidural component lies in the canal"
    # on CT the lesion core is soft tissue (about 35 HU), far below cancellous bone (about 250 HU)
    core = Volume(ndimage.binary_erosion(tumor, iterations=2).astype(np.uint8), labels["tumor"].affine)
    core_ct = resample_mask_like(core, ct).array > 0
    assert float(np.median(ct.array[core_ct])) == pytest.approx(35.0, abs=15.0)
    assert truth["adamkiewicz"]["shares_segmental_with_feeder"] is True
    assert truth["expected"]["embolization_risk"] is True


@pytest.mark.parametrize("kind", PHANTOM_KINDS)
def test_vertebral_levels_ribs_and_levels_spanned_are_consistent(kind, phantom_dir):
    truth, labels = _load(phantom_dir(kind))
    verts = labels["vertebrae"]
    names = truth["levels"]
    assert set(np.unique(verts.array)) - {0} == {int(k) for k in names}
    sup = np.array(truth["cord"]["axis_ras"])
    heights = {int(k): float(verts.ijk_to_ras(np.argwhere(verts.array == int(k))).mean(axis=0) @ sup) for k in names}
    order = sorted(heights, key=heights.get, reverse=True)
    assert order == sorted(heights), "level 1 is the most superior vertebra"
    # ribs (bone outside the vertebrae) exist at T12 but not at L1: the last rib is on T12
    bone = labels["bone"]
    ribs = (bone.array > 0) & (verts.array == 0)
    rib_s = bone.ijk_to_ras(np.argwhere(ribs))[:, 2]
    ranges = truth["level_body_ranges_ras_s_mm"]
    assert rib_s.min() > ranges["L1"][1], "no rib at L1"
    assert np.any((rib_s > ranges["T12"][0]) & (rib_s < ranges["T12"][1])), "a rib at T12"
    # levels spanned: the bodies whose S range overlaps the tumor label's S range
    tumor_s = labels["tumor"].ijk_to_ras(np.argwhere(labels["tumor"].array > 0))[:, 2]
    lo, hi = tumor_s.min() + 1.0, tumor_s.max() - 1.0
    overlapping = {name for name, (a, b) in ranges.items() if a < hi and b > lo}
    assert overlapping <= set(truth["tumor"]["levels_spanned"])
    assert truth["tumor"]["level"] in truth["tumor"]["levels_spanned"]


@pytest.mark.parametrize("kind", PHANTOM_KINDS)
def test_vessel_tree_feeders_and_adamkiewicz(kind, phantom_dir):
    truth, labels = _load(phantom_dir(kind))
    vessels, tumor = labels["vessels"], labels["tumor"]
    assert {1, 2, 3, 4, 5} <= set(np.unique(vessels.array).tolist())
    feeders = truth["feeders"]
    assert 2 <= len(feeders) <= 4
    tumor_pts = tumor.ijk_to_ras(np.argwhere(tumor.array > 0))
    feeder_pts = vessels.ijk_to_ras(np.argwhere(vessels.array == 2))
    for f in feeders:
        assert 0.8 <= f["diameter_mm"] <= 1.5
        assert f["side"] in ("left", "right") and f["level"] in truth["levels"].values()
        entry = np.array(f["entry_ras"])
        # the entry point lies on the tumor surface (within one voxel of the label) and on a feeder voxel
        assert np.min(np.linalg.norm(tumor_pts - entry, axis=1)) < 1.3
        assert np.min(np.linalg.norm(feeder_pts - entry, axis=1)) < 1.5
        assert f["length_mm"] > 3.0
    aka = truth["adamkiewicz"]
    assert aka["present"] and aka["side"] == "left" and aka["level"] in ("T9", "T10", "T11", "T12")
    # the Adamkiewicz voxels lie mostly on the left of the anterior spinal artery
    aka_pts = vessels.ijk_to_ras(np.argwhere(vessels.array == 3))
    asa_pts = vessels.ijk_to_ras(np.argwhere(vessels.array == 4))
    assert np.median(aka_pts[:, 0]) < np.median(asa_pts[:, 0]) - 2.0
    # the hairpin apex is cranial to where the artery enters the canal
    assert aka["hairpin_ras"][2] > aka_pts[:, 2].min() + 10.0
    shares = any(f["segmental"] == f"{aka['level']} left" for f in feeders)
    assert aka["shares_segmental_with_feeder"] == shares
    assert shares == (kind == "extradural-lytic")


def _sphere_directions(n: int = 64) -> np.ndarray:
    """``n`` unit vectors spread over the sphere (golden spiral)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = i * np.pi * (3.0 - np.sqrt(5.0))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


@pytest.mark.parametrize("kind", ["idem-calcified", "idem-soft", "idem-faint"])
def test_idem_feeders_come_through_the_foramen_and_reach_the_tumor_on_the_facing_side(kind):
    """An IDEM feeder runs outside bone and outside the tumor up to its recorded entry point, where
    it meets the tumor surface head-on (along the normal) on the side facing its origin."""
    from SpinePlannerLib.phantom.anatomy import arch_shape, body_shape, build_anatomy, posterior_processes

    dirs = _sphere_directions()
    for seed in range(6):
        anat = build_anatomy(kind, np.random.default_rng(seed).spawn(6)[0])  # as generate_phantom does
        bones = [sh for lv in anat.levels for sh in (body_shape(lv), arch_shape(lv), *posterior_processes(lv))]
        e = anat.tumor_ellipsoid
        tumor = anat.tumor_contains
        radii = {v.name: v.radius for v in anat.vessels}
        assert len(anat.feeders) == 2
        for k, f in enumerate(anat.feeders):
            pts, entry, r = f["points_local"], f["entry_local"], radii[f"feeder {k + 1}"]
            dense = np.concatenate([a + np.linspace(0.0, 1.0, 200, endpoint=False)[:, None] * (b - a)
                                    for a, b in zip(pts[:-1], pts[1:], strict=True)])
            to_entry = np.linalg.norm(dense - entry, axis=1)
            # the centreline stays outside the tumor until the entry; the tube touches it only there
            assert not np.any(tumor(*dense[to_entry > 0.05].T)), (kind, seed, k)
            shell = (dense[:, None, :] + r * dirs[None]).reshape(-1, 3)
            touching = np.repeat(to_entry, len(dirs))[tumor(*shell.T)]
            assert touching.size == 0 or touching.max() <= r + 0.1, (kind, seed, k, touching.max())
            # at least 1 mm of soft tissue between the vessel wall and bone all along
            shell = (dense[:, None, :] + (r + 1.0) * dirs[None]).reshape(-1, 3)
            assert not any(np.any(b.contains(*shell.T)) for b in bones), (kind, seed, k)
            # head-on along the outward surface normal, on the tumor's side facing the origin
            rot, semi = e["rotation"], e["semi_axes"]
            normal = rot @ ((rot.T @ (entry - e["center"])) / semi**2)
            normal /= np.linalg.norm(normal)
            last = (pts[-2] - entry) / np.linalg.norm(pts[-2] - entry)
            assert float(last @ normal) > 0.99, (kind, seed, k)
            assert float((entry - e["center"]) @ (f["origin_local"] - e["center"])) > 0.0, (kind, seed, k)
