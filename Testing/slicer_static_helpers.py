"""Reading the Slicer shells, their .ui files and CMakeLists without Slicer (for the static tests).

The Slicer desktop is not available to the test suite, so the module shells are checked by
parsing them (``ast``), their Qt Designer files (XML) and their CMakeLists.txt (text).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import pathlib
import re
import types
import typing
import xml.etree.ElementTree as ET

REPO = pathlib.Path(__file__).resolve().parents[1]
MODULES = ("SpinePlanner", "DTITractography", "SyntheticCTCheck")
PARAMETER_MODULES = tuple(sorted(
    ".".join(path.relative_to(REPO / module).with_suffix("").parts) for module in MODULES
    for path in (REPO / module / f"{module}Lib").rglob("*.py") if path.stem == "params" or path.stem.endswith("_params")))
"""Lib modules holding the parameter dataclasses the shells mirror."""


def module_dir(module: str) -> pathlib.Path:
    return REPO / module


def shell_path(module: str) -> pathlib.Path:
    return REPO / module / f"{module}.py"


def ui_path(module: str) -> pathlib.Path:
    return REPO / module / "Resources" / "UI" / f"{module}.ui"


# -- CMake ---------------------------------------------------------------------------------------
def _strip_cmake_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def cmake_sets(path: pathlib.Path) -> dict[str, list[str]]:
    """``set(NAME values...)`` of a CMakeLists.txt, with ``${VAR}`` expanded from earlier sets."""
    text = _strip_cmake_comments(path.read_text())
    values: dict[str, list[str]] = {}
    for name, body in re.findall(r"\bset\(\s*(\w+)\s+(.*?)\)", text, flags=re.S):
        tokens = re.findall(r'"[^"]*"|\S+', body)
        expanded = []
        for tok in tokens:
            tok = tok.strip('"')
            tok = re.sub(r"\$\{(\w+)\}", lambda m: " ".join(values.get(m.group(1), [m.group(0)])), tok)
            expanded.append(tok)
        values[name] = expanded
    return values


def cmake_calls(path: pathlib.Path, command: str) -> list[str]:
    """The argument text of every call of ``command`` (case-insensitive)."""
    text = _strip_cmake_comments(path.read_text())
    return [m.group(1) for m in re.finditer(rf"\b{command}\s*\((.*?)\)", text, flags=re.S | re.I)]


def installed_files(module: str) -> set[str]:
    """Every file of a module folder that Slicer installs (relative paths, ``/`` separators):
    everything but CMakeLists.txt, caches and hidden files."""
    folder = module_dir(module)
    out = set()
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if not p.is_file() or p.name == "CMakeLists.txt" or p.suffix in (".pyc", ".pyo"):
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        out.add(rel.as_posix())
    return out


def lib_python_files(module: str) -> list[pathlib.Path]:
    return sorted(p for p in (module_dir(module) / f"{module}Lib").rglob("*.py") if "__pycache__" not in p.parts)


# -- shell (AST) ---------------------------------------------------------------------------------
@functools.cache
def shell_source(module: str) -> str:
    return shell_path(module).read_text()


@functools.cache
def shell_tree(module: str) -> ast.Module:
    return ast.parse(shell_source(module), filename=str(shell_path(module)))


def classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def decorator_names(cls: ast.ClassDef) -> set[str]:
    names = set()
    for d in cls.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        names.add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
    return names


@dataclasses.dataclass
class Field:
    name: str
    annotation: ast.expr
    value: ast.expr | None


def annotated_fields(cls: ast.ClassDef) -> list[Field]:
    return [Field(s.target.id, s.annotation, s.value) for s in cls.body
            if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]


def parameter_classes(module: str) -> dict[str, tuple[str, list[Field]]]:
    """Classes decorated with ``@parameterNodeWrapper`` / ``@parameterPack``: name -> (kind, fields)."""
    out = {}
    for name, cls in classes(shell_tree(module)).items():
        decos = decorator_names(cls)
        if "parameterNodeWrapper" in decos:
            out[name] = ("wrapper", annotated_fields(cls))
        elif "parameterPack" in decos:
            out[name] = ("pack", annotated_fields(cls))
    return out


def module_constant(module: str, name: str):
    """A module-level constant of the shell, evaluated as a literal."""
    for node in shell_tree(module).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(f"{module}.py has no module-level {name}")


def wrapper_class(module: str) -> tuple[str, list[Field]]:
    wrappers = [(n, f) for n, (kind, f) in parameter_classes(module).items() if kind == "wrapper"]
    assert len(wrappers) == 1, f"{module}.py must define exactly one @parameterNodeWrapper class"
    return wrappers[0]


class _AnyName(dict):
    """Evaluation namespace: unknown names (MRML classes, packs) become named placeholder types."""

    def __missing__(self, key):
        placeholder = types.new_class(key)
        self[key] = placeholder
        return placeholder


def _validator(kind):
    def make(*args, **kwargs):
        return (kind, args, kwargs)

    return make


def evaluate_annotation(annotation: ast.expr):
    """Evaluate a shell annotation with stand-ins for Slicer's names (typing objects come back)."""
    namespace = _AnyName(
        Annotated=typing.Annotated, Optional=typing.Optional, Union=typing.Union, pathlib=pathlib,
        int=int, float=float, str=str, bool=bool, list=list, tuple=tuple, dict=dict,
        **{v: _validator(v) for v in ("Choice", "Default", "WithinRange", "Minimum", "Maximum", "Decimals",
                                      "SingleStep", "NotNone", "IsInstance")})
    return eval(compile(ast.Expression(annotation), "<annotation>", "eval"), {"__builtins__": {}}, namespace)


def annotation_metadata(annotation: ast.expr) -> tuple:
    tp = evaluate_annotation(annotation)
    return getattr(tp, "__metadata__", ())


def canonical_type(tp) -> str:
    """A comparable spelling of a type: ``Optional[X]`` and ``X | None`` agree, ``Annotated`` is dropped."""
    if typing.get_origin(tp) is typing.Annotated:
        return canonical_type(typing.get_args(tp)[0])
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        parts = sorted(canonical_type(a) for a in args if a is not type(None))
        return " | ".join(parts + (["None"] if type(None) in args else []))
    if origin is not None:
        args = typing.get_args(tp)
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(canonical_type(a) for a in args)}]" if args else name
    if tp is type(None):
        return "None"
    if tp is pathlib.Path:
        return "pathlib.Path"
    return getattr(tp, "__name__", str(tp))


def types_compatible(shell: str, lib: str) -> bool:
    """The shell may spell out what the Lib leaves bare (``tuple`` -> ``tuple[float, float]``)."""
    if shell == lib:
        return True
    for bare in ("tuple", "list"):
        if lib == bare and shell.startswith(bare + "["):
            return True
        if lib == f"{bare} | None" and shell.startswith(bare + "[") and shell.endswith(" | None"):
            return True
    return False


def lib_class(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def literal_default(field: Field):
    """The field's default as a Python value (``= value`` or ``Annotated[..., Default(value)]``);
    ``dataclasses.MISSING`` when there is none."""
    if field.value is not None:
        return ast.literal_eval(field.value)
    for meta in annotation_metadata(field.annotation):
        if isinstance(meta, tuple) and meta and meta[0] == "Default":
            return meta[1][0]
    return dataclasses.MISSING


def self_ui_names(node: ast.AST) -> set[str]:
    """Names used as ``self.ui.<name>`` anywhere under ``node``."""
    names = set()
    for n in ast.walk(node):
        if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute) and n.value.attr == "ui"
                and isinstance(n.value.value, ast.Name) and n.value.value.id == "self"):
            names.add(n.attr)
    return names


def dotted_name(node: ast.AST) -> str:
    """``a.b.c`` of a Name/Attribute chain ('' parts for anything else)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def call_name(call: ast.Call) -> str:
    """Dotted name of a call's target (``slicer.util.pip_install``)."""
    return dotted_name(call.func)


# -- .ui -----------------------------------------------------------------------------------------
@functools.cache
def ui_root(module: str) -> ET.Element:
    return ET.parse(ui_path(module)).getroot()


def ui_widgets(module: str) -> dict[str, ET.Element]:
    return {w.get("name"): w for w in ui_root(module).iter("widget")}


def widget_property(widget: ET.Element, name: str):
    """A widget's own property value (string, bool, number, double, stringlist or enum)."""
    for prop in widget.findall("property"):
        if prop.get("name") != name:
            continue
        child = prop[0]
        if child.tag == "stringlist":
            return [s.text or "" for s in child.findall("string")]
        if child.tag == "bool":
            return child.text == "true"
        if child.tag == "number":
            return int(child.text)
        if child.tag == "double":
            return float(child.text)
        return child.text or ""
    return None
