"""User parameter overrides per stage (``spineplan plan --params FILE.json``), validated up front.

The file is a JSON object whose keys are stage sections, each holding that stage's parameter
overrides, e.g. ``{"segmentation": {"anchor": {"level": "T10", "ras": [0, -5, 40]}},
"synthetic_ct_check": {"calcified_threshold_hu": 130}}``. Every section is parsed by its stage's
own parser at load time, so a bad value is an input error (exit 2) before anything runs.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from SpinePlannerLib.core.errors import InputError

PARSERS = {
    "segmentation": "SpinePlannerLib.segmentation.params:segmentation_params_from_dict",
    "tractography": "DTITractographyLib.params:TractographyParams.from_dict",
    "synthetic_ct_check": "SyntheticCTCheckLib.params:CheckParams.from_dict",
    "vessels": "SpinePlannerLib.vessels.params:VesselParams.from_dict",
    "clinical": "SpinePlannerLib.approach.stage:clinical_inputs",
}
"""Section -> parser (``module:callable`` or ``module:Class.method``) taking the overrides dict."""


def _parser(target: str):
    module, attr = target.split(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def validate_stage_params(params: dict, *, name: str = "--params") -> dict:
    """Check that every section is known and parses; returns ``params`` unchanged."""
    if not isinstance(params, dict):
        raise InputError(name, "must be a JSON object with stage sections as keys")
    for section, overrides in params.items():
        if section not in PARSERS:
            raise InputError(name, f"unknown section {section!r}; known: {', '.join(PARSERS)}")
        try:
            _parser(PARSERS[section])(overrides)
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(name, f"section {section!r}: {exc}") from None
    return params


def read_stage_params(path) -> dict:
    """Read and validate a ``--params`` JSON file."""
    p = Path(path)
    if not p.exists():
        raise InputError("--params", f"file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("--params", f"not valid JSON ({exc})") from None
    return validate_stage_params(data)


def merge_level_anchor(params: dict, anchor_text: str) -> dict:
    """Add ``--level-anchor LEVEL,R,A,S`` as ``params["segmentation"]["anchor"]``."""
    parts = [t.strip() for t in anchor_text.split(",")]
    if len(parts) != 4:
        raise InputError("--level-anchor", f"expected LEVEL,R,A,S (e.g. T10,0,-5,40), got {anchor_text!r}")
    try:
        ras = [float(v) for v in parts[1:]]
    except ValueError:
        raise InputError("--level-anchor", f"R,A,S must be numbers in mm, got {','.join(parts[1:])!r}") from None
    merged = {**params, "segmentation": {**params.get("segmentation", {}), "anchor": {"level": parts[0].upper(), "ras": ras}}}
    return validate_stage_params(merged, name="--level-anchor")
