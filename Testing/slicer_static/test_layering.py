"""The layering rule, read from the source (``ast``): algorithm code never touches Slicer.

Algorithm packages (L1: SpinePlannerLib ``core``, ``segmentation``, ``measurement``, ``vessels``,
``phantom`` and the algorithm modules of DTITractographyLib and SyntheticCTCheckLib) never
import ``slicer``, ``vtk``, ``qt``, ``ctk`` or the ``SpinePlannerLib.mrml`` package, not even
lazily inside a function; only ``mrml/``, ``gui/``, the ``logic.py`` / ``mrml_*.py`` modules and
the Slicer shells do. Algorithm code names inputs by quantity (``InputError("tumor seed", ...)``),
never by a command-line flag: ``cli/main.py`` maps quantities to its flags.
"""

from __future__ import annotations

import ast
import pathlib

import pytest
from slicer_static_helpers import REPO

from SpinePlannerLib.cli.main import error_line, flag_for
from SpinePlannerLib.core.errors import InputError

FORBIDDEN = ("slicer", "vtk", "qt", "ctk", "SpinePlannerLib.mrml")
LIB = REPO / "SpinePlanner" / "SpinePlannerLib"
ALGORITHM_PACKAGES = [LIB / p for p in ("core", "segmentation", "measurement", "vessels", "phantom")]
MODULE_LIBS = [REPO / "DTITractography" / "DTITractographyLib", REPO / "SyntheticCTCheck" / "SyntheticCTCheckLib"]

STAGE_GLUE = {"stage.py"}
"""Stage modules (planning glue: they import ``SpinePlannerLib.planning``; their skip reasons name the
CLI options a user can add, text kept as plan.json has it) are exempt from the flag rule only; the
import rule covers them (``test_stage_modules_import_no_slicer_vtk_qt_or_mrml``)."""

OWN_COMMAND_LINES = {LIB / "segmentation" / "monai" / "worker.py"}
"""Programs with their own argparse flags (the out-of-process MONAI worker): they may name them."""


def _is_l2(path: pathlib.Path) -> bool:
    return path.name == "logic.py" or path.name.startswith("mrml")


def stage_files() -> list[pathlib.Path]:
    """Every stage module: ``<package>/stage.py`` and ``planning/*_stage.py``."""
    return sorted([p for p in LIB.rglob("stage.py")] + list((LIB / "planning").glob("*_stage.py")))


def algorithm_files() -> list[pathlib.Path]:
    files = [p for pkg in ALGORITHM_PACKAGES for p in sorted(pkg.rglob("*.py"))]
    files += [p for lib in MODULE_LIBS for p in sorted(lib.rglob("*.py")) if not _is_l2(p)]
    return [p for p in files if p.name not in STAGE_GLUE and "__pycache__" not in p.parts]


def _ids(paths):
    return [p.relative_to(REPO).as_posix() for p in paths]


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted module) of every import, at any depth (lazy imports in functions too)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def forbidden_imports(source: str) -> list[str]:
    hits: dict[int, str] = {}
    for line, module in imported_modules(ast.parse(source)):
        if any(module == f or module.startswith(f + ".") for f in FORBIDDEN):
            hits.setdefault(line, f"line {line}: {module}")
    return list(hits.values())


def flag_names_in_raises(source: str) -> list[str]:
    """String constants that start with a CLI flag (``--x``) inside ``raise`` statements."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for const in ast.walk(node.exc):
                if isinstance(const, ast.Constant) and isinstance(const.value, str) and "--" in const.value:
                    words = [w for w in const.value.replace("/", " ").split() if w.startswith("--") and len(w) > 2]
                    hits += [f"line {node.lineno}: {w}" for w in words]
    return hits


def test_the_rule_sees_every_algorithm_package():
    names = set(_ids(algorithm_files()))
    assert "SpinePlanner/SpinePlannerLib/segmentation/cord.py" in names
    assert "DTITractography/DTITractographyLib/tracking.py" in names
    assert "SyntheticCTCheck/SyntheticCTCheckLib/check.py" in names
    assert not any(n.endswith(("/logic.py", "/mrml_tracts.py")) or "/mrml/" in n for n in names)


def test_the_checks_catch_lazy_imports_and_flag_names():
    """The detectors themselves: a lazy ``import vtk`` and a flag in a raise are found."""
    lazy = ("def f():\n    import vtk.util\n    from SpinePlannerLib.mrml import scene\n    from slicer import x\n"
            "    from SpinePlannerLib import mrml\n")
    assert len(forbidden_imports(lazy)) == 4
    assert forbidden_imports("import numpy\nfrom SpinePlannerLib.core import mrml_like\nimport vtkmodules_free\n") == []
    assert flag_names_in_raises("raise InputError('--tumor-seed', 'outside')\n") == ["line 1: --tumor-seed"]
    assert flag_names_in_raises("raise ValueError(f'give --bval/--bvec for {x}')\n") == ["line 1: --bval", "line 1: --bvec"]


@pytest.mark.parametrize("path", algorithm_files(), ids=_ids(algorithm_files()))
def test_algorithm_module_imports_no_slicer_vtk_qt_or_mrml(path):
    hits = forbidden_imports(path.read_text())
    assert not hits, f"{path.relative_to(REPO)} imports {', '.join(hits)} (move that code to mrml/ or a mrml_*.py)"


@pytest.mark.parametrize("path", [p for p in algorithm_files() if p not in OWN_COMMAND_LINES],
                         ids=_ids([p for p in algorithm_files() if p not in OWN_COMMAND_LINES]))
def test_algorithm_errors_name_quantities_not_cli_flags(path):
    hits = flag_names_in_raises(path.read_text())
    assert not hits, (f"{path.relative_to(REPO)} raises with CLI flag names ({', '.join(hits)}); name the quantity "
                      "(e.g. InputError('tumor seed', ...)) and map it in cli/main.py FLAGS")


@pytest.mark.parametrize(("name", "flag"), [
    ("tumor seed", "--tumor-seed"), ("cord segmentation", "--cord-seg"), ("tumor segmentation", "--tumor-seg"),
    ("dwi", "--dwi"), ("bval/bvec", "--bval/--bvec"), ("t2", "--t2"), ("params", "--params"),
    ("level anchor", "--level-anchor"), ("case 3 (line 4) ct", "case 3 (line 4) ct"), ("/data/x.nii", "/data/x.nii"),
])
def test_cli_names_the_quantity_by_its_own_flag(name, flag):
    assert flag_for(name) == flag
    assert error_line(InputError(name, "is bad")) == f"spineplan: error: {flag}: is bad"


@pytest.mark.parametrize("path", stage_files(), ids=_ids(stage_files()))
def test_stage_modules_import_no_slicer_vtk_qt_or_mrml(path):
    """Stages return typed results; the mrml layer turns them into nodes (issue 10)."""
    hits = forbidden_imports(path.read_text())
    assert not hits, f"{path.relative_to(REPO)} imports {', '.join(hits)}: scene nodes belong to mrml/"
