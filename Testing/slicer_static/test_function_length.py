"""No function in the Libs is longer than 120 lines (developers' guide): long ones are split into
named steps. Counted from ``def`` to the function's last line, docstring included."""

from __future__ import annotations

import ast

import pytest
from slicer_static_helpers import REPO

MAX_LINES = 120
LIBS = [REPO / "SpinePlanner" / "SpinePlannerLib", REPO / "DTITractography" / "DTITractographyLib",
        REPO / "SyntheticCTCheck" / "SyntheticCTCheckLib"]

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
    return sorted(p for lib in LIBS for p in lib.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_counter_finds_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(f"def f():\n{body}\n") == [("f", 1, MAX_LINES + 1)]
    assert long_functions("def g():\n    return 1\n") == []


@pytest.mark.parametrize("path", lib_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_function_over_120_lines(path):
    found = long_functions(path.read_text())
    assert not found, f"{path.relative_to(REPO)}: " + ", ".join(f"{n} (line {a}, {k} lines)" for n, a, k in found)
