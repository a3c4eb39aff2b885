"""The command line itself: negative coordinates, global options anywhere, --version, help with
an example for every option, phantom kinds listed and the exact plan command printed."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys

import numpy as np
import pytest
from faultcases import write_tiny_case

from SpinePlannerLib import __version__
from SpinePlannerLib.cli.argv import normalise_argv
from SpinePlannerLib.cli.main import build_parser, main
from SpinePlannerLib.core.imageio import read_volume
from SpinePlannerLib.phantom.case import PHANTOM_KINDS


def _parse(argv):
    return build_parser().parse_args(normalise_argv(argv))


@pytest.mark.parametrize("argv", [
    ["plan", "--t2", "t2.nii.gz", "--tumor-seed", "-3,-11,20", "--out", "o"],
    ["plan", "--t2", "t2.nii.gz", "--tumor-seed=-3,-11,20", "--out", "o"],
    ["plan", "--tumor-seed", "-3,-11,20", "--t2", "t2.nii.gz", "--out", "o", "--quiet"],
])
def test_negative_seed_is_a_value_not_an_option(argv):
    args = _parse(argv)
    assert args.tumor_seed == "-3,-11,20" and args.t2 == "t2.nii.gz" and args.out == "o"


def test_negative_level_anchor_coordinates(tmp_path):
    args = _parse(["plan", "--t2", "x", "--level-anchor", "T10,-1.5,-20,30", "--out", "o"])
    assert args.level_anchor == "T10,-1.5,-20,30"


def test_missing_seed_value_is_still_an_error():
    with pytest.raises(Exception, match="expected one argument"):
        _parse(["plan", "--t2", "x", "--tumor-seed", "--out", "o"])


def test_quiet_anywhere_and_version(capsys):
    assert _parse(["plan", "--t2", "x", "--out", "o", "--quiet"]).quiet is True
    assert _parse(["--quiet", "plan", "--t2", "x", "--out", "o"]).quiet is True
    assert _parse(["plan", "--t2", "x", "--out", "o"]).quiet is False
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"spineplan {__version__}"


def _all_options(parser):
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    yield "spineplan", parser
    yield from sub.choices.items()


def test_every_option_has_help_with_an_example():
    missing = []
    for name, parser in _all_options(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or not action.option_strings:
                continue
            if not action.help or "e.g." not in action.help:
                missing.append(f"{name} {action.option_strings[0]}")
    assert not missing, f"options without help text and example: {missing}"


def test_phantom_help_lists_the_kinds(capsys):
    with pytest.raises(SystemExit):
        main(["phantom", "-h"])
    text = " ".join(capsys.readouterr().out.split())
    for kind in PHANTOM_KINDS:
        assert kind.replace("-", "- ") in text.replace("-", "- ") or kind in text


def test_negative_seed_plans_end_to_end(tmp_path):
    """A point right of the midline (negative R), given the way Slicer shows it."""
    facts = write_tiny_case(tmp_path / "case")
    r, a, s = facts["center"]
    assert r < 0
    proc = subprocess.run([sys.executable, "-m", "SpinePlannerLib.cli", "plan", "--t2", str(tmp_path / "case/t2.nii.gz"),
                           "--tumor-seed", f"{r:.2f},{a:.2f},{s:.2f}", "--no-scene", "--out", str(tmp_path / "o"),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads((tmp_path / "o/plan.json").read_text())
    assert plan["tumor"]["volume_ml"] > 0


def test_phantom_prints_the_exact_plan_command(tmp_path, capsys):
    out = tmp_path / "case"
    assert main(["--quiet", "phantom", "--kind", "idem-soft", "--seed", "2", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "seed 2" in lines[0]
    words = shlex.split(lines[-1])
    assert words[:2] == ["spineplan", "plan"]
    args = _parse(words[1:])
    truth = json.loads((out / "truth.json").read_text())
    seed = np.array([float(v) for v in args.tumor_seed.split(",")])
    assert np.allclose(seed, truth["tumor"]["centroid_ras"], atol=0.01)
    assert read_volume(args.t2, "--t2").contains_ras(seed)
    for role in ("t1", "t2", "ct", "sct", "angio", "dwi", "bval", "bvec"):
        assert (out / getattr(args, role).split("/")[-1]).exists() and getattr(args, role).startswith(str(out))
    assert args.out == str(tmp_path / "case_plan")
