"""Loading networks for the MONAI engine: TorchScript files with sidecars, MONAI bundles (TorchScript
or state dict + network_def), and clear InputErrors for paths and bundles that cannot work."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from SpinePlannerLib.core.errors import InputError  # noqa: E402
from SpinePlannerLib.phantom.case import generate_phantom  # noqa: E402
from SpinePlannerLib.segmentation.monai import engine as me  # noqa: E402

SIDECAR = json.loads(me.PHANTOM_MODEL.with_suffix(".json").read_text())
NETWORK_DEF = {"_target_": "monai.networks.nets.UNet", **{k: v for k, v in SIDECAR["network"].items() if k != "class"}}


@pytest.fixture(scope="module")
def t2():
    torch.set_num_threads(1)
    return generate_phantom("idem-calcified", seed=12).volumes["t2"]


@pytest.fixture(scope="module")
def reference_labels(t2):
    return me.segment_with_model(t2, me.PHANTOM_MODEL, device="cpu")["labels"].array


def _bundle(root, *, weights: str | None, sidecar: bool = True, inference: dict | None = None):
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "configs" / "inference.json").write_text(json.dumps(inference or {"network_def": NETWORK_DEF}))
    if sidecar:
        (root / "configs" / "spineplanner.json").write_text(json.dumps(SIDECAR))
    if weights == "model.ts":
        shutil.copy(me.PHANTOM_MODEL, root / "models" / "model.ts")
    elif weights == "model.pt":
        state = torch.jit.load(str(me.PHANTOM_MODEL), map_location="cpu").state_dict()
        torch.save({"model": state}, root / "models" / "model.pt")
    return root


def test_bundle_with_torchscript_gives_the_same_labels(tmp_path, t2, reference_labels):
    bundle = _bundle(tmp_path / "phantom_bundle", weights="model.ts")
    out = me.segment_with_model(t2, bundle, device="cpu")
    assert np.array_equal(out["labels"].array, reference_labels)


def test_bundle_with_state_dict_is_built_from_network_def(tmp_path, t2, reference_labels):
    bundle = _bundle(tmp_path / "phantom_bundle", weights="model.pt")
    spec = me.load_model_spec(bundle)
    assert spec.kind == "state_dict"
    out = me.segment_with_model(t2, bundle, device="cpu", structures=("tumor",))
    differ = np.count_nonzero(out["labels"].array != reference_labels)
    assert differ <= 5, f"{differ} voxels differ from the TorchScript model"  # same weights, float rounding only


def test_bundle_geometry_is_read_from_its_own_configs_without_sidecar(tmp_path):
    inference = {"network_def": NETWORK_DEF,
                 "preprocessing": {"transforms": [
                     {"_target_": "Spacingd", "keys": "image", "pixdim": [1.5, 1.5, 2.0]},
                     {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -57, "a_max": 164,
                      "b_min": 0.0, "b_max": 1.0, "clip": True}]},
                 "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [96, 96, 96]}}
    bundle = _bundle(tmp_path / "b", weights="model.ts", sidecar=False, inference=inference)
    meta = {"network_data_format": {"outputs": {"pred": {"channel_def": {"0": "background", "1": "spleen"}}}}}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    spec = me.load_model_spec(bundle)
    assert spec.spacing_mm == (1.5, 1.5, 2.0) and spec.roi_size == (96, 96, 96)
    assert spec.labels == {"background": 0, "spleen": 1} and spec.structures == {"spleen": (1,)}
    assert spec.intensity[0]["mode"] == "range" and spec.intensity[0]["a_min"] == -57


@pytest.mark.parametrize("case, message", [
    ("missing", "model not found"),
    ("bundle without inference.json", "configs/inference.json is missing"),
    ("bundle without weights", "neither models/model.ts nor models/model.pt"),
    ("bundle without geometry", "add configs/spineplanner.json"),
    ("model without sidecar", "no sidecar"),
    ("wrong suffix", "unsupported model file type"),
    ("labels not 0..n-1", "label values must be 0..1"),
])
def test_unusable_models_are_input_errors(tmp_path, case, message):
    if case == "missing":
        path = tmp_path / "absent.ts"
    elif case == "bundle without inference.json":
        path = tmp_path / "b"
        (path / "models").mkdir(parents=True)
        shutil.copy(me.PHANTOM_MODEL, path / "models" / "model.ts")
    elif case == "bundle without weights":
        path = _bundle(tmp_path / "b", weights=None)
    elif case == "bundle without geometry":
        path = _bundle(tmp_path / "b", weights="model.ts", sidecar=False)
    elif case == "model without sidecar":
        path = tmp_path / "net.pt"
        torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path))
    elif case == "wrong suffix":
        path = tmp_path / "net.onnx"
        path.write_bytes(b"\0")
    else:
        path = tmp_path / "net.ts"
        shutil.copy(me.PHANTOM_MODEL, path)
        path.with_suffix(".json").write_text(json.dumps({**SIDECAR, "labels": {"background": 0, "cord": 2}}))
    with pytest.raises(InputError, match=message) as info:
        me.load_model_spec(path)
    assert str(path) in str(info.value)


def test_state_dict_file_without_bundle_is_an_input_error(tmp_path, t2):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, path)
    path.with_suffix(".json").write_text(json.dumps(SIDECAR))
    with pytest.raises(InputError, match="not a loadable TorchScript archive"):
        me.segment_with_model(t2, path, device="cpu")


def test_missing_input_role_and_unknown_structure_are_input_errors(t2):
    with pytest.raises(InputError, match="needs image role"):
        me.segment_with_model({"t1": t2}, me.PHANTOM_MODEL, device="cpu")
    with pytest.raises(InputError, match="does not segment vertebrae"):
        me.segment_with_model(t2, me.PHANTOM_MODEL, structures=("vertebrae",), device="cpu")
