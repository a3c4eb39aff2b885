"""Cord and tumor on the intramedullary phantoms (T2 reference grid): Dice >= 0.85 each, the
tumor recognised as intramedullary, and the cord mask free of tumor voxels."""

from __future__ import annotations

import numpy as np
import pytest
from segcases import plan_phantom

from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.segmentation.common import dice

KINDS = ("intramedullary-displacing", "intramedullary-infiltrative", "intramedullary-crossing")


@pytest.fixture(scope="module")
def planned(phantom_dir):
    cache = {}

    def get(kind):
        if kind not in cache:
            case = phantom_dir(kind)
            ctx, truth = plan_phantom(case, roles=("t2",))
            labels = {n: read_volume(case / "labels" / f"{n}.nii.gz") for n in ("cord", "csf", "tumor")}
            cache[kind] = (ctx, truth, labels)
        return cache[kind]

    return get


@pytest.mark.parametrize("kind", KINDS)
def test_cord_and_tumor_dice_on_intramedullary_phantom(planned, kind):
    ctx, truth, labels = planned(kind)
    assert ctx.plan["stages"]["segmentation"]["status"] == "done", ctx.plan["stages"]
    assert ctx.plan["segmentation"]["cord"]["found"]
    assert dice(ctx.labels["cord"].array, labels["cord"].array) >= 0.85
    assert dice(ctx.labels["tumor"].array, labels["tumor"].array) >= 0.85
    assert dice(ctx.labels["csf"].array, labels["csf"].array) >= 0.85
    # the cord label leaves the tumor out (the phantom's cord truth does too)
    overlap = np.count_nonzero((ctx.labels["cord"].array > 0) & (ctx.labels["tumor"].array > 0))
    assert overlap == 0


@pytest.mark.parametrize("kind", KINDS)
def test_intramedullary_phantom_measurements(planned, kind):
    ctx, truth, _ = planned(kind)
    tumor = ctx.plan["tumor"]
    assert tumor["compartment"] == "intramedullary"
    assert tumor["volume_ml"] == pytest.approx(truth["tumor"]["volume_ml"], rel=0.25)
    assert tumor["cord_compression"]["applicable"] is False  # expanded, not compressed
    assert 0.0 < tumor["canal_occupancy"]["fraction"] < 1.0
    # no CT: vertebral bodies on MRI, counted but not named without an anchor
    assert ctx.plan["vertebrae"]["method"] == "unanchored"
    assert tumor["levels_spanned"] and all(n.startswith("V") for n in tumor["levels_spanned"])
    assert tumor["levels_reliable"] is False
