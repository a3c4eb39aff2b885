"""The Lib packages stay Slicer-application-free: they import without Qt and never touch
Slicer's application globals, so the same code runs headless (CLI, tests) and inside Slicer.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest
from slicer_static_helpers import MODULES, REPO, dotted_name, lib_python_files

FORBIDDEN_ATTRIBUTES = {"app", "mrmlScene", "modules", "util"}
"""``slicer.<name>`` that only exist in the Slicer application."""
FORBIDDEN_MODULES = ("qt", "ctk", "PythonQt", "slicer.util", "slicer.ScriptedLoadableModule",
                     "slicer.parameterNodeWrapper", "SampleData", "sitkUtils")
FORBIDDEN_NAMES = {"ScriptedLoadableModule", "ScriptedLoadableModuleLogic", "ScriptedLoadableModuleWidget",
                   "parameterNodeWrapper", "parameterPack", "processEvents"}
OPTIONAL_EXTRAS = {"torch", "monai"}
"""Top-level packages of optional extras: a Lib module that needs one may be skipped."""

GUARD = r'''
import importlib, importlib.abc, json, sys, types

BLOCKED = set(sys.argv[1].split(","))
OPTIONAL = set(sys.argv[2].split(","))


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in BLOCKED or name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not available outside the Slicer application")
        return None


import slicer  # slicer-core: MRML classes (it imports its own helpers first)

for loaded in [m for m in sys.modules if m in BLOCKED]:
    del sys.modules[loaded]  # a Lib module importing them must go through the blocker
sys.meta_path.insert(0, Block())


class GuardedSlicer(types.ModuleType):
    def __getattribute__(self, name):
        if name in ("app", "mrmlScene", "modules", "util"):
            raise AttributeError(f"slicer.{name} is an application global; pass the scene/logics in")
        return super().__getattribute__(name)


slicer.__class__ = GuardedSlicer
result = {"imported": [], "skipped": {}, "failed": {}}
for name in sys.argv[3:]:
    try:
        importlib.import_module(name)
        result["imported"].append(name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OPTIONAL:
            result["skipped"][name] = str(exc)
        else:
            result["failed"][name] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        result["failed"][name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(result))
'''


def lib_module_names(module: str) -> list[str]:
    root = REPO / module
    names = []
    for path in lib_python_files(module):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__main__":  # runs the program when imported
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


@pytest.mark.parametrize("module", MODULES)
def test_lib_imports_without_qt_or_slicer_application(module):
    names = lib_module_names(module)
    assert f"{module}Lib" in names
    out = subprocess.run(
        [sys.executable, "-c", GUARD, ",".join(FORBIDDEN_MODULES), ",".join(OPTIONAL_EXTRAS), *names],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["failed"], json.dumps(result["failed"], indent=1)
    assert len(result["imported"]) >= len(names) - len(result["skipped"])
    assert len(result["imported"]) > len(result["skipped"])


def forbidden_uses(path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    found = []
    for node in ast.walk(tree):
        where = f"{shown}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} import {a.name}" for a in node.names
                      if a.name in FORBIDDEN_MODULES or a.name.split(".")[0] in ("qt", "ctk", "PythonQt")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in FORBIDDEN_MODULES or node.module.split(".")[0] in ("qt", "ctk", "PythonQt"):
                found.append(f"{where} from {node.module} import ...")
            if node.module == "slicer":
                found += [f"{where} from slicer import {a.name}" for a in node.names
                          if a.name in FORBIDDEN_ATTRIBUTES | FORBIDDEN_NAMES]
        elif isinstance(node, ast.Attribute):
            dotted = dotted_name(node)
            if dotted.startswith("slicer.") and dotted.split(".")[1] in FORBIDDEN_ATTRIBUTES:
                found.append(f"{where} {dotted}")
            elif node.attr in FORBIDDEN_NAMES:
                found.append(f"{where} .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(f"{where} {node.id}")
    return found


@pytest.mark.parametrize("module", MODULES)
def test_lib_never_references_slicer_application_globals_or_qt(module):
    files = lib_python_files(module)
    assert files
    found = [f for path in files for f in forbidden_uses(path)]
    assert not found, "\n".join(found)


def test_forbidden_use_detector_finds_each_kind(tmp_path):
    """The scan itself works: each forbidden pattern in a sample file is reported."""
    sample = tmp_path / "forbidden_sample.py"
    sample.write_text("import qt\nfrom slicer.util import arrayFromVolume\nimport slicer\n"
                      "def f():\n    slicer.mrmlScene.Clear()\n    slicer.app.processEvents()\n"
                      "    x = slicer.modules.volumes\nclass W(ScriptedLoadableModule):\n    pass\n")
    text = "\n".join(forbidden_uses(sample))
    for needle in ("import qt", "from slicer.util", "slicer.mrmlScene", "slicer.app", "processEvents",
                   "slicer.modules", "ScriptedLoadableModule"):
        assert needle in text, needle
