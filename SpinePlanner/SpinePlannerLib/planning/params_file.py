"""The ``--params FILE.json`` format: stage settings, validated before anything runs.

This is the one place the format is documented (the README points here).

File format
-----------
A JSON object whose keys are stage *sections*; each section holds overrides of that stage's
parameter dataclass (every key optional, defaults otherwise)::

    {
      "segmentation": {"tumor": {"tolerance_sd": 3.0}, "anchor": {"level": "T10", "ras": [0, -5, 40]}},
      "vessels": {"feeder_margin_mm": 4.0},
      "tractography": {"tracking": {"seeds_per_voxel": 2}, "setzer": {"entering_type2": 0.1}},
      "synthetic_ct_check": {"calcified_hu": 130, "registration": {"trust_headers": true}}
    }

Sections and their dataclasses (the field lists, units, defaults and allowed ranges are in the
dataclass docstrings):

==========================  ==================================================================
``segmentation``            :class:`SpinePlannerLib.segmentation.params.SegmentationParams`
                            (groups ``cord``, ``tumor``, ``vertebrae``, ``vertebrae_mri``,
                            ``cyst_edema``; short form ``"anchor": {"level", "ras"}`` for a
                            user-named vertebra, as ``--level-anchor`` writes it)
``vessels``                 :class:`SpinePlannerLib.vessels.params.VesselParams` (flat)
``tractography``            :class:`DTITractographyLib.params.TractographyParams` (groups ``fit``,
                            ``tracking``, ``relationship``, ``setzer``, ``reliability``)
``synthetic_ct_check``      :class:`SyntheticCTCheckLib.params.CheckParams` (groups
                            ``registration``, ``lesion``, ``classes``, ``bone``, ``voids``,
                            ``flags``; a field name that only one group has may be given flat)
``approach``                :class:`SpinePlannerLib.approach.params.ApproachParams` (groups
                            ``bone_quality``, ``collapse``, ``alignment``, ``posterolateral``,
                            ``bilsky``: the cut-offs that turn SINS/Bilsky words into measurements)
``clinical``                :class:`SpinePlannerLib.approach.params.ClinicalInputs` (``pain``,
                            ``myelopathy``, ``histology``: what imaging cannot give; the CLI's
                            ``--pain``, ``--myelopathy``, ``--histology`` write this section)
==========================  ==================================================================

Nested groups are JSON objects; ``"group.field": value`` is the same as ``{"group": {"field":
value}}``; ``(min, max)`` and RAS points are JSON lists; ``null`` is "not set" for optional
settings. Parsing is :func:`SpinePlannerLib.core.params.from_dict` (one parser for every
module): an unknown section or key, a value of the wrong type, or one the dataclass's validation
refuses is an input error (exit 2) naming the dotted setting. The sections as given are recorded
in ``plan.json`` (``parameters``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.params import from_dict, to_dict

SECTIONS = {
    "segmentation": "SpinePlannerLib.segmentation.params:SegmentationParams",
    "tractography": "DTITractographyLib.params:TractographyParams",
    "synthetic_ct_check": "SyntheticCTCheckLib.params:CheckParams",
    "vessels": "SpinePlannerLib.vessels.params:VesselParams",
    "approach": "SpinePlannerLib.approach.params:ApproachParams",
    "clinical": "SpinePlannerLib.approach.params:ClinicalInputs",
}
"""Section -> its parameter dataclass (``module:Class``, imported when the section is used)."""


def section_class(section: str):
    """The parameter dataclass of a ``--params`` section."""
    module, name = SECTIONS[section].split(":")
    return getattr(importlib.import_module(module), name)


def validate_stage_params(params: dict, *, name: str = "params") -> dict:
    """Check that every section is known and parses.

    Sections may be dicts of overrides (a file) or the dataclass instances themselves (the GUI);
    returns the sections as plain dicts (instances through :func:`~SpinePlannerLib.core.params.to_dict`),
    ready for ``ctx.params`` and ``plan.json``.
    """
    if not isinstance(params, dict):
        raise InputError(name, "must be a JSON object with stage sections as keys")
    out = {}
    for section, overrides in params.items():
        if section not in SECTIONS:
            raise InputError(name, f"unknown section {section!r}; known: {', '.join(SECTIONS)}")
        try:
            parsed = from_dict(section_class(section), overrides, where=section)
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(name, f"section {section!r}: {exc}") from None
        out[section] = to_dict(parsed) if dataclasses.is_dataclass(overrides) else overrides
    return out


MAX_PARAMS_BYTES = 1 << 20
"""Largest ``--params`` file read (bytes)."""

MAX_PARAMS_DEPTH = 8
"""Deepest nesting of objects/lists accepted in ``--params`` (the settings use at most 4)."""


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def read_stage_params(path) -> dict:
    """Read and validate a ``--params`` JSON file: a regular file of at most
    :data:`MAX_PARAMS_BYTES`, nesting at most :data:`MAX_PARAMS_DEPTH`, no NaN/Infinity."""
    from SpinePlannerLib.planning.input_checks import check_input_file

    p = check_input_file(path, "params", max_bytes=MAX_PARAMS_BYTES)
    try:
        with open(p, encoding="utf-8") as fh:
            text = fh.read(MAX_PARAMS_BYTES + 1)
        if _max_bracket_depth(text) > MAX_PARAMS_DEPTH:
            raise InputError("params", f"nested deeper than {MAX_PARAMS_DEPTH} levels; not a settings file")
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("params", f"not valid JSON ({exc})") from None
    except ValueError as exc:
        raise InputError("params", f"not valid JSON: {exc}") from None
    except RecursionError:
        raise InputError("params", "nested too deeply; not a settings file") from None
    return validate_stage_params(data)


def _max_bracket_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting in JSON text, ignoring brackets inside strings (read before parsing)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def merge_level_anchor(params: dict, anchor_text: str) -> dict:
    """Add ``--level-anchor LEVEL,R,A,S`` as ``params["segmentation"]["anchor"]``."""
    parts = [t.strip() for t in anchor_text.split(",")]
    if len(parts) != 4:
        raise InputError("level anchor", f"expected LEVEL,R,A,S (e.g. T10,0,-5,40), got {anchor_text!r}")
    try:
        ras = [float(v) for v in parts[1:]]
    except ValueError:
        raise InputError("level anchor", f"R,A,S must be numbers in mm, got {','.join(parts[1:])!r}") from None
    if not all(math.isfinite(v) for v in ras):
        raise InputError("level anchor", f"R,A,S must be finite numbers in mm, got {','.join(parts[1:])!r}")
    merged = {**params, "segmentation": {**params.get("segmentation", {}), "anchor": {"level": parts[0].upper(), "ras": ras}}}
    return validate_stage_params(merged, name="level anchor")
