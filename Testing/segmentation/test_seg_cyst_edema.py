"""Cyst and edema segments (issue 4, item 3) on the ``intramedullary-cystic`` phantom: an enhancing
nodule with polar cysts and cord edema. Cysts need T2 and a T1, edema needs T1c; on kinds without
cyst or edema nothing is reported. Dice is measured on the T2 reference grid against the phantom's
truth labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage
from segcases import plan_phantom

from SpinePlannerLib.core.geometry import resample_like, resample_mask_like
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.params import from_dict
from SpinePlannerLib.phantom.case import PHANTOM_KINDS, generate_phantom
from SpinePlannerLib.planning.plan_schema import validate_plan
from SpinePlannerLib.segmentation.common import dice
from SpinePlannerLib.segmentation.cyst_edema import NEEDS_T1, NEEDS_T1C, segment_cyst_edema
from SpinePlannerLib.segmentation.params import CystEdemaParams, SegmentationParams

KIND = "intramedullary-cystic"
ROLES = ("t2", "t1", "t1c")


def _truth(folder, name):
    return read_volume(folder / "labels" / f"{name}.nii.gz").array > 0


@pytest.fixture(scope="module")
def planned(phantom_dir):
    cache = {}

    def get(seed):
        if seed not in cache:
            folder = phantom_dir(KIND, seed)
            ctx, truth = plan_phantom(folder, roles=ROLES)
            cache[seed] = (folder, ctx, truth)
        return cache[seed]

    return get


@pytest.mark.parametrize("seed", [0, 1])
def test_cyst_edema_and_solid_tumor_dice_on_the_cystic_phantom(planned, seed):
    folder, ctx, truth = planned(seed)
    assert ctx.plan["stages"]["segmentation"]["status"] == "done", ctx.plan["stages"]
    seg = ctx.plan["segmentation"]
    scores = {n: dice(ctx.labels[n].array, _truth(folder, n)) for n in ("tumor", "cyst", "edema")}
    print(f"seed {seed}: Dice " + ", ".join(f"{n} {v:.3f}" for n, v in scores.items())
          + f"; cyst {seg['cyst']['volume_ml']}/{truth['cyst']['volume_ml']} mL, edema "
            f"{seg['edema']['volume_ml']}/{truth['edema']['volume_ml']} mL, "
            f"{seg['edema']['craniocaudal_extent_mm']}/{truth['edema']['craniocaudal_extent_mm']} mm")
    assert scores["tumor"] >= 0.85 and scores["cyst"] >= 0.8 and scores["edema"] >= 0.7
    # the swollen cord: edema is cord tissue (truth cord includes it), cysts lie inside the sac
    cord_dice = dice(ctx.labels["cord"].array, _truth(folder, "cord"))
    sac_dice = dice(ctx.labels["csf"].array, _truth(folder, "csf"))
    print(f"seed {seed}: cord Dice {cord_dice:.3f}, thecal sac Dice {sac_dice:.3f}")
    assert cord_dice >= 0.85 and sac_dice >= 0.85
    assert seg["cord"]["includes_edema"] and seg["cord"]["edema_added_ml"] > 0.0
    assert np.all(ctx.labels["csf"].array[(ctx.labels["cyst"].array > 0) | (ctx.labels["edema"].array > 0)] > 0)
    assert seg["tumor"]["image"] == "t1c"
    assert seg["cyst"]["segmented"] and seg["edema"]["segmented"]
    assert seg["cyst"]["count"] == truth["cyst"]["count"] == 2
    assert seg["cyst"]["contrasts"] == ["t2", "t1"] and seg["edema"]["contrasts"] == ["t2", "t1c"]
    assert seg["cyst"]["volume_ml"] == pytest.approx(truth["cyst"]["volume_ml"], rel=0.25)
    assert seg["edema"]["volume_ml"] == pytest.approx(truth["edema"]["volume_ml"], rel=0.2)
    assert seg["edema"]["craniocaudal_extent_mm"] == pytest.approx(truth["edema"]["craniocaudal_extent_mm"], abs=6.0)
    # the cranial cyst is reported first; each cyst's extent within 3 mm of the analytic one
    ccs = [c["craniocaudal_extent_mm"] for c in seg["cyst"]["components"]]
    want = truth["cyst"]["craniocaudal_extent_mm"]
    assert ccs == pytest.approx([want["cranial"], want["caudal"]], abs=3.0)
    # segments do not overlap; all of them are outputs of the stage
    assert not np.any((ctx.labels["cyst"].array > 0) & (ctx.labels["tumor"].array > 0))
    assert not np.any((ctx.labels["edema"].array > 0) & ((ctx.labels["tumor"].array > 0) | (ctx.labels["cyst"].array > 0)))
    assert {"cyst", "edema", "tumor"} <= set(seg["outputs"])
    assert all(ctx.labels[n].same_grid(ctx.reference) for n in ("cyst", "edema"))
    validate_plan(json.loads(json.dumps(ctx.plan, default=float)))


def test_without_t1c_edema_needs_contrast_and_cysts_still_come_from_t2_and_t1(planned):
    folder, ctx, _ = planned(0)
    ref = ctx.reference
    res = segment_cyst_edema(ctx.labels["tumor"], cord=ctx.labels["cord"], sac=ctx.labels["csf"],
                             t2=ctx.volumes["t2"], t1=resample_like(ctx.volumes["t1"], ref))
    assert res.edema is None and res.edema_info == {"segmented": False, "reason": NEEDS_T1C}
    assert res.cyst is not None and dice(res.cyst.array, _truth(folder, "cyst")) >= 0.8
    assert "limitation" in res.tumor_info
    # T2 alone calls nothing fluid
    res = segment_cyst_edema(ctx.labels["tumor"], cord=ctx.labels["cord"], sac=ctx.labels["csf"], t2=ctx.volumes["t2"])
    assert res.cyst is None and res.cyst_info["reason"] == NEEDS_T1
    assert res.edema_info["reason"] == NEEDS_T1C


def test_a_tumor_mask_that_swallowed_the_edema_is_cut_back_to_its_enhancing_part(planned):
    """A region grown on T2 takes the edema with the nodule (their T2 signals differ by less than
    the noise); with the T1c the solid tumor is the enhancing part and the rest is edema."""
    folder, ctx, _ = planned(0)
    ref = ctx.reference
    truth_tumor = _truth(folder, "tumor")
    swollen = ndimage.binary_dilation(truth_tumor, iterations=2) & (_truth(folder, "edema") | truth_tumor)
    swollen |= truth_tumor
    assert swollen.sum() > 2 * truth_tumor.sum()
    # the stage's cord label includes the edema it found (edema is cord tissue): give the cord proper
    cord = ctx.labels["cord"].with_array(((ctx.labels["cord"].array > 0) & (ctx.labels["edema"].array == 0)).astype(np.uint8))
    res = segment_cyst_edema(ref.with_array(swollen.astype(np.uint8)), cord=cord, sac=ctx.labels["csf"],
                             t2=ctx.volumes["t2"], t1=resample_like(ctx.volumes["t1"], ref),
                             t1c=resample_like(ctx.volumes["t1c"], ref), tumor_on_t1c=False)
    assert res.tumor_info["enhances"] is True and "enhancing part" in res.tumor_info["solid_rule"]
    assert dice(res.solid_tumor.array, truth_tumor) >= 0.85
    assert dice(res.edema.array, _truth(folder, "edema")) >= 0.7


@pytest.mark.parametrize("kind", ["intramedullary-displacing", "idem-soft"])
def test_no_cyst_or_edema_on_kinds_that_have_none(phantom_dir, kind):
    """Even with a contrast T1 in which the tumor enhances (the phantom's T1 plus 0.5 inside the
    true tumor, smoothed for partial volume), nothing is reported next to these tumors."""
    folder = phantom_dir(kind)
    t2 = read_volume(folder / "t2.nii.gz")
    t1 = resample_like(read_volume(folder / "t1.nii.gz"), t2)
    labels = {n: read_volume(folder / "labels" / f"{n}.nii.gz") for n in ("tumor", "cord", "csf")}
    enhancement = ndimage.gaussian_filter(labels["tumor"].array.astype(np.float32), 0.5)
    t1c = t1.with_array((t1.array + 0.5 * enhancement).astype(np.float32))
    cord = labels["cord"].with_array(((labels["cord"].array > 0) & (labels["tumor"].array == 0)).astype(np.uint8))
    res = segment_cyst_edema(labels["tumor"], cord=cord, sac=labels["csf"], t2=t2, t1=t1, t1c=t1c)
    assert res.cyst is None and res.cyst_info["reason"] == "no fluid-signal region adjoining the tumor"
    assert res.edema is None and res.edema_info["reason"] == "no non-enhancing T2-hyperintense tissue adjoining the tumor"
    assert res.tumor_info["enhances"] is True


def test_cystic_phantom_signals_are_realistic(phantom_dir):
    """T2: CSF > cyst > edema > cord; T1: cyst dark like CSF; T1c: only the nodule enhances; CT: the
    cyst is water (5-10 HU). Medians inside the truth labels eroded by one voxel (no partial volume)."""
    folder = phantom_dir(KIND)
    t2 = read_volume(folder / "t2.nii.gz")
    img = {r: resample_like(read_volume(folder / f"{r}.nii.gz"), t2).array for r in ("t1", "t1c")}
    img["t2"] = t2.array
    lab = {n: ndimage.binary_erosion(_truth(folder, n)) for n in ("cyst", "edema", "tumor")}
    cord = ndimage.binary_erosion(_truth(folder, "cord") & ~_truth(folder, "edema"))
    csf = ndimage.binary_erosion(_truth(folder, "csf") & ~ndimage.binary_dilation(_truth(folder, "cord"), iterations=2))
    lab.update(cord=cord, csf=csf)
    med = {(r, n): float(np.median(img[r][m])) for r in img for n, m in lab.items()}
    print({f"{r}:{n}": round(v, 2) for (r, n), v in med.items()})
    assert med["t2", "csf"] > med["t2", "cyst"] > 0.85 > med["t2", "edema"] > med["t2", "cord"] + 0.15
    assert abs(med["t1", "cyst"] - med["t1", "csf"]) < 0.05 and med["t1", "cyst"] < med["t1", "cord"] - 0.3
    assert med["t1c", "tumor"] > med["t1", "tumor"] + 0.35
    for n in ("cyst", "edema", "cord"):
        assert abs(med["t1c", n] - med["t1", n]) < 0.03, n
    ct = read_volume(folder / "ct.nii.gz")
    cyst_ct = resample_mask_like(t2.with_array(lab["cyst"].astype(np.uint8)), ct).array > 0
    assert 2.0 <= float(np.median(ct.array[cyst_ct])) <= 14.0
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["cyst"]["count"] == 2 and truth["edema"]["present"] and truth["expected"]["compartment"] == "intramedullary"


def test_cystic_kind_is_last_deterministic_and_varies_with_the_seed(phantom_dir):
    assert PHANTOM_KINDS[-1] == KIND
    case = generate_phantom(KIND, seed=0)
    folder = phantom_dir(KIND, 0)
    for role in ("t2", "t1", "t1c"):
        assert case.volumes[role].array.tobytes() == read_volume(folder / f"{role}.nii.gz").array.tobytes(), role
    for name in ("cyst", "edema", "tumor", "cord"):
        assert np.array_equal(case.labels[name].array, read_volume(folder / "labels" / f"{name}.nii.gz").array), name
    assert json.loads((folder / "truth.json").read_text()) == json.loads(json.dumps(case.truth))
    other = json.loads((phantom_dir(KIND, 1) / "truth.json").read_text())
    assert other["cyst"]["centroids_ras"] != case.truth["cyst"]["centroids_ras"]


def test_cyst_edema_parameters_are_validated_and_read_from_the_segmentation_section():
    params = from_dict(SegmentationParams, {"cyst_edema": {"min_cyst_ml": 0.1, "adjoin_mm": 4.0}})
    assert params.cyst_edema.min_cyst_ml == 0.1 and params.cyst_edema.adjoin_mm == 4.0
    with pytest.raises(ValueError, match="fluid_fraction_t2"):
        CystEdemaParams(fluid_fraction_t2=1.5)
    with pytest.raises(ValueError, match="unknown parameter"):
        from_dict(SegmentationParams, {"cyst_edema": {"no_such": 1}})
