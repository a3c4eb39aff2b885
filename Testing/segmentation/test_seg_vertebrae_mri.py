"""Vertebral bodies and levels on MRI (no CT): bodies found along the cord on T1 (else T2), named
from a user anchor, V-named and unreliable without one, "not found" when the profile in front
of the thecal sac has no disc/body period; the real cervical T2 runs.

Truth for the bodies: the phantom's ``labels/vertebrae`` includes the posterior elements, which
the MRI engine does not segment. The body-only truth is rasterised here from the phantom's own
analytic body shapes (:func:`phantom_anatomy.body_shape`, cortex included) on the T2 grid with
the phantom's partial-volume rule (a voxel is body when at least half of its sub-samples are).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from segcases import plan_phantom

from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.core.params import from_dict
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.phantom.anatomy import body_shape, build_anatomy
from SpinePlannerLib.phantom.case import GRIDS
from SpinePlannerLib.phantom.raster import Lattice
from SpinePlannerLib.planning.plan_schema import validate_plan
from SpinePlannerLib.segmentation.common import dice, labels_to_grid
from SpinePlannerLib.segmentation.cord import segment_cord
from SpinePlannerLib.segmentation.params import SegmentationParams, VertebraeMRIParams
from SpinePlannerLib.segmentation.vertebrae_mri import (
    STEP_MM,
    _replaced_bodies,
    centreline_from_mask,
    segment_vertebrae_mri,
)


def _anatomy(kind: str, seed: int = 0):
    """The phantom's analytic anatomy, rebuilt as :func:`phantom.generate_phantom` builds it."""
    return build_anatomy(kind, np.random.default_rng(seed).spawn(6)[0])


def _body_truth(case, kind: str, seed: int = 0) -> tuple[dict, object]:
    """Body-only truth masks (name -> bool array on the T2 grid) and the anatomy."""
    anat = _anatomy(kind, seed)
    t2 = read_volume(case / "t2.nii.gz")
    spec = GRIDS["t2"]
    # the rebuilt anatomy is the phantom's: same grid, same body ranges as truth.json
    assert np.allclose(spec.affine(anat), t2.affine, atol=1e-4)
    truth = json.loads((case / "truth.json").read_text())
    for lv in anat.levels:
        s = [anat.frame.local_to_world([0.0, 0.0, z])[0, 2] for z in lv.z_range]
        assert np.allclose(s, truth["level_body_ranges_ras_s_mm"][lv.name], atol=0.01)
    lattice = Lattice(spec.affine(anat), spec.shape, spec.supersample, anat.frame)
    painted = np.zeros(lattice.lshape, np.uint8)
    lattice.paint(painted, [(body_shape(lv), lv.index, None) for lv in anat.levels])
    half = spec.supersample**3 / 2.0
    return {lv.name: lattice.block_count(painted == lv.index) >= half for lv in anat.levels}, anat


def _anchor(anat, level: str, *, y_mm: float | None = None) -> list:
    """RAS point at the centre of ``level``'s body, or at ``y_mm`` anterior of the canal centre
    (negative: posterior) on the midline at the body's mid-height."""
    lv = next(v for v in anat.levels if v.name == level)
    return anat.frame.local_to_world([0.0, lv.yb if y_mm is None else y_mm, lv.zc])[0].tolist()


@pytest.fixture(scope="module")
def anchored(phantom_dir):
    """Stage runs with a user anchor on T11: IDEM with T2 + T1 (bodies on T1), intramedullary
    with T2 only (bodies on T2)."""
    out = {}
    for kind, roles in (("idem-soft", ("t2", "t1")), ("intramedullary-displacing", ("t2",))):
        case = phantom_dir(kind)
        bodies, anat = _body_truth(case, kind)
        params = {"segmentation": {"anchor": {"level": "T11", "ras": _anchor(anat, "T11")}}}
        ctx, truth = plan_phantom(case, roles, params=params)
        out[kind] = (ctx, truth, bodies, anat)
    return out


@pytest.mark.parametrize(("kind", "image"), [("idem-soft", "t1"), ("intramedullary-displacing", "t2")])
def test_anchored_bodies_match_the_phantom_per_level(anchored, kind, image):
    ctx, truth, bodies, _ = anchored[kind]
    vert = ctx.plan["vertebrae"]
    assert vert["found"], vert["reason"]
    assert vert["image"] == image
    assert vert["method"] == "user anchor" and vert["reliable"] is True
    assert vert["levels"] == truth["levels"]  # {"1": "T9", ..., "5": "L1"}: names from the anchor
    labels = ctx.labels["vertebrae"].array
    for idx, name in vert["levels"].items():
        score = dice(labels == int(idx), bodies[name])
        assert score >= 0.8, f"{kind} {name}: body Dice {score:.3f}"


@pytest.mark.parametrize("kind", ["idem-soft", "intramedullary-displacing"])
def test_anchored_levels_spanned_equal_the_truth(anchored, kind):
    ctx, truth, _, _ = anchored[kind]
    tumor = ctx.plan["tumor"]
    assert tumor["levels_spanned"] == truth["tumor"]["levels_spanned"]
    assert tumor["levels_reliable"] is True and tumor["levels_method"] == "user anchor"
    # the body ranges along the cord are within 3 mm of the analytic ones (RAS S, mm; discs ~5 mm)
    for v in ctx.plan["vertebrae"]["vertebrae"]:
        if not v["body_cut_by_field_of_view"]:
            assert np.allclose(v["body_s_range_mm"], truth["level_body_ranges_ras_s_mm"][v["name"]], atol=3.0)


def test_mri_vertebrae_section_follows_the_schema(anchored):
    ctx, _, _, _ = anchored["idem-soft"]
    plan = json.loads(json.dumps(ctx.plan, default=lambda o: o.tolist() if hasattr(o, "tolist") else o.item()))
    validate_plan(plan)
    assert all("cord_centre_ras" in v for v in plan["vertebrae"]["vertebrae"])
    assert plan["segmentation"]["vertebrae"] == {"found": True, "method": "user anchor"}
    # an intradural tumor leaves the marrow alone: no body is taken as replaced
    assert not any(v["body_marrow_replaced"] for v in plan["vertebrae"]["vertebrae"])


def test_without_anchor_levels_are_counted_and_unreliable(phantom_dir):
    case = phantom_dir("idem-soft")
    ctx, truth = plan_phantom(case, ("t2",))
    vert = ctx.plan["vertebrae"]
    assert vert["found"] and vert["image"] == "t2"
    assert vert["method"] == "unanchored" and vert["reliable"] is False and vert["anchor"] is None
    assert list(vert["levels"].values()) == ["V1", "V2", "V3", "V4", "V5"]
    assert any("need an anchor" in w for w in ctx.plan["warnings"])
    tumor = ctx.plan["tumor"]
    # the tumor spans the second body from the top (T10 in the truth), named V2 without an anchor
    assert truth["tumor"]["levels_spanned"] == ["T10"] and tumor["levels_spanned"] == ["V2"]
    assert tumor["levels_reliable"] is False


@pytest.fixture(scope="module")
def idem_direct(phantom_dir):
    case = phantom_dir("idem-soft")
    t2, t1 = read_volume(case / "t2.nii.gz"), read_volume(case / "t1.nii.gz")
    cord = segment_cord(t2, contrast="t2")
    assert cord.found
    return case, t1, cord


def test_anchor_on_the_posterior_elements_names_the_level_at_its_height(idem_direct):
    case, t1, cord = idem_direct
    bodies, anat = _body_truth(case, "idem-soft")
    # a point on the lamina of T10, 10 mm behind the canal centre: 20 mm or more from any body
    lamina = _anchor(anat, "T10", y_mm=-10.0)
    res = segment_vertebrae_mri(t1, contrast="t1", centerline_ras=cord.centerline_ras, sac=cord.csf,
                                anchor_level="T10", anchor_ras=lamina)
    assert res.method == "user anchor" and res.reliable
    assert list(res.names.values()) == ["T9", "T10", "T11", "T12", "L1"]
    assert res.anchor["index"] == 2


def test_a_given_cord_label_map_gives_the_axis(idem_direct):
    case, t1, _ = idem_direct
    cord = read_volume(case / "labels" / "cord.nii.gz")  # as a user's --cord-seg would be
    line = centreline_from_mask(cord)
    assert len(line) > 50 and np.all(np.diff(line[:, 2]) > 0)  # inferior to superior
    res = segment_vertebrae_mri(t1, contrast="t1", centerline_ras=line)  # no sac: default front
    assert res.found and len(res.vertebrae) == 5


def test_unanchorable_names_fall_back_to_v_names(idem_direct):
    _, t1, cord = idem_direct
    # T9 at the most caudal body would put the most cranial one above C1
    far = segment_vertebrae_mri(t1, contrast="t1", centerline_ras=cord.centerline_ras, sac=cord.csf,
                                anchor_level="C2", anchor_ras=tuple(cord.centerline_ras[0] + [0.0, 25.0, 0.0]))
    assert far.found and far.method == "unanchored" and far.reliable is False
    assert any("outside C1..S5" in w for w in far.warnings)


@pytest.fixture(scope="module")
def lytic(phantom_dir):
    """``lytic(seed) -> (case, bodies, anat, truth, cord)``: the extradural-lytic phantom (a lytic
    metastasis replacing the marrow of one body, of disc signal on T1 and T2) with its cord on T2."""
    cache = {}

    def get(seed: int):
        if seed not in cache:
            case = phantom_dir("extradural-lytic", seed)
            bodies, anat = _body_truth(case, "extradural-lytic", seed)
            truth = json.loads((case / "truth.json").read_text())
            cord = segment_cord(read_volume(case / "t2.nii.gz"), contrast="t2")
            assert cord.found, cord.reason
            cache[seed] = (case, bodies, anat, truth, cord)
        return cache[seed]

    return get


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("role", ["t1", "t2"])
def test_lytic_body_does_not_break_the_chain_of_levels(lytic, role, seed):
    """Before: 'not found' on T1 (seed 0; periodicity 0.29) or misnamed levels (seed 1) and a
    tumor-level Dice of 0.54-0.80 on T2. The replaced body is found between its discs, segmented
    with its neighbours' cross-section (lesion included) and reported."""
    case, bodies, anat, truth, cord = lytic(seed)
    (tumor_level,) = truth["tumor"]["levels_spanned"]
    res = segment_vertebrae_mri(read_volume(case / f"{role}.nii.gz"), contrast=role,
                                centerline_ras=cord.centerline_ras, sac=cord.csf,
                                anchor_level="T12", anchor_ras=_anchor(anat, "T12"))
    assert res.found, res.reason
    assert res.method == "user anchor" and res.reliable
    assert res.names == {int(k): v for k, v in truth["levels"].items()}  # T9..L1, counted across the lesion
    labels = labels_to_grid(res.labels.array, res.labels, read_volume(case / "t2.nii.gz")).array  # truth grid
    for v in res.vertebrae:
        score = dice(labels == v["index"], bodies[v["name"]])
        assert score >= (0.7 if v["name"] == tumor_level else 0.85), f"{role} seed {seed} {v['name']}: Dice {score:.3f}"
        assert v["body_marrow_replaced"] is (v["name"] == tumor_level)
    assert any(w.startswith(f"{tumor_level}: the body's marrow signal is replaced") for w in res.warnings)


def _profile(segments) -> np.ndarray:
    """A band profile (one sample per ``STEP_MM``) of (length mm, level) segments."""
    return np.concatenate([np.full(int(round(n / STEP_MM)), float(v)) for n, v in segments])


def test_replaced_body_is_one_body_length_plateau_off_the_marrow_level():
    params = VertebraeMRIParams()
    # bodies 20 mm at a drifting marrow level, 5 mm discs; the fourth body at 1.6x marrow
    marrow = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75]
    segs = [s for m in marrow for s in ((20.0, m), (5.0, 1.8))]
    segs[6] = (20.0, 1.6 * marrow[3])
    found = _replaced_bodies(_profile(segs), params)
    assert len(found) == 1
    lo, hi, level, expected = found[0]
    assert (lo * STEP_MM, hi * STEP_MM) == (75.0, 94.5)  # mm along the profile
    assert level == pytest.approx(1.36) and expected == pytest.approx(0.85, abs=0.01)
    # no abnormal body: the drift alone is no replaced body
    assert _replaced_bodies(_profile([s for m in marrow for s in ((20.0, m), (5.0, 1.8))]), params) == []
    # long discs (12 mm, as lumbar discs) alternating with bodies: a regular pattern, nothing replaced
    assert _replaced_bodies(_profile([s for m in marrow for s in ((20.0, m), (12.0, 1.6))]), params) == []


def test_profile_without_periodic_structure_is_not_found():
    rng = np.random.default_rng(3)
    # homogeneous tissue with noise: no discs in front of a straight "cord"
    vol = Volume(rng.normal(100.0, 5.0, (60, 70, 90)).astype(np.float32), np.diag([1.0, 1.0, 1.2, 1.0]), "t2")
    line = np.array([[30.0, 20.0, z] for z in np.arange(5.0, 100.0, 1.2)])
    res = segment_vertebrae_mri(vol, contrast="t2", centerline_ras=line)
    assert res.found is False
    assert res.reason.startswith("vertebral bodies not found on MRI")
    assert "periodic" in res.reason or "disc" in res.reason
    assert res.labels is None and res.method == "unanchored"


def test_bad_inputs_and_parameters_are_rejected():
    vol = Volume(np.zeros((10, 10, 10), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="contrast"):
        segment_vertebrae_mri(vol, contrast="ct", centerline_ras=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="centerline_ras"):
        segment_vertebrae_mri(vol, contrast="t1", centerline_ras=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="disc_search_mm"):
        VertebraeMRIParams(disc_search_mm=(30.0, 20.0))
    p = from_dict(SegmentationParams, {"vertebrae_mri": {"band_depth_mm": 8.0, "disc_search_mm": [10, 30]}})
    assert p.vertebrae_mri.band_depth_mm == 8.0 and p.vertebrae_mri.disc_search_mm == (10, 30)


def test_real_cervical_t2_bodies_lie_in_front_of_the_cord(shared_data):
    """Spinal Cord Toolbox T2 (cervical, 1 mm): three bodies with a cervical pitch, in front of the
    cord, of cervical body size. Unanchored, so V-named and not reliable."""
    t2 = read_volume(shared_data / "sct" / "t2.nii.gz")
    cord = segment_cord(t2, contrast="t2")
    res = segment_vertebrae_mri(t2, contrast="t2", centerline_ras=cord.centerline_ras, sac=cord.csf)
    assert res.found, res.reason
    assert res.method == "unanchored" and not res.reliable
    assert 2 <= len(res.vertebrae) <= 4
    pitch = float(res.reason.split("pitch ")[1].split(" mm")[0])
    assert 14.0 <= pitch <= 22.0  # mm, adult cervical vertebral pitch
    for v in res.vertebrae:
        ml = v["voxels"] * t2.voxel_volume_ml
        assert 2.0 <= ml <= 12.0, (v["name"], ml)
        ahead = v["centroid_ras"][1] - v["canal_centre_ras"][1]
        assert 10.0 <= ahead <= 30.0, (v["name"], ahead)  # mm anterior of the cord
