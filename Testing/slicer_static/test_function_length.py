"""No function in the Libs is longer than 120 lines (developers' guide): long ones are split into
named steps. Counted from ``def`` to the function's last line, docstring included."""

from __future__ import annotations

import ast

import pytest
from slicer_static_helpers import REPO

MAX_LINES = 120
LIBS = [REPO / "SpinePlanner" / "SpinePlannerLib", REPO / "DTITractography" / "DTITractographyLib",
        REPO / "SyntheticCTCheck" / "SyntheticCTCheckLib"]

PENDING = {
    "SpinePlanner/SpinePlannerLib/segmentation/stage.py", "SpinePlanner/SpinePlannerLib/measurement/stage.py",
    "SpinePlanner/SpinePlannerLib/vessels/stage.py", "DTITractography/DTITractographyLib/stage.py",
    "SyntheticCTCheck/SyntheticCTCheckLib/stage.py",
}
"""Stage glue, planning and mrml: being rewritten by issue 10's "pure stages, typed results, mrml in one
pass" work (another helper); the lead removes this exemption after merging it."""
PENDING_DIRS = ("SpinePlanner/SpinePlannerLib/planning/", "SpinePlanner/SpinePlannerLib/mrml/")


def long_functions(source: str) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function (methods and nested ones too) over MAX_LINES."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_LINES:
                out.append((node.name, node.lineno, length))
    return out


def lib_files():
    files = sorted(p for lib in LIBS for p in lib.rglob("*.py") if "__pycache__" not in p.parts)
    return [pytest.param(p, marks=pytest.mark.xfail(reason="stage/planning/mrml glue: the other issue-10 helper's "
                                                           "work; exemption removed at merge", strict=False))
            if (rel := p.relative_to(REPO).as_posix()) in PENDING or rel.startswith(PENDING_DIRS) else p
            for p in files]


def test_the_counter_finds_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(f"def f():\n{body}\n") == [("f", 1, MAX_LINES + 1)]
    assert long_functions("def g():\n    return 1\n") == []


@pytest.mark.parametrize("path", lib_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_function_over_120_lines(path):
    found = long_functions(path.read_text())
    assert not found, f"{path.relative_to(REPO)}: " + ", ".join(f"{n} (line {a}, {k} lines)" for n, a, k in found)
