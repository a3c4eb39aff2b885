"""The Slicer parameter nodes mirror the Lib parameter dataclasses field by field.

Each shell declares ``PARAMETER_MIRRORS`` (parameter pack class -> Lib dataclass). The packs must
have the dataclass's field names (same order), compatible types and equal defaults, every
parameter dataclass of the Lib must be mirrored, and the shell's one-call conversion helper must
rebuild the dataclass from a pack.
"""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import importlib
import inspect
import typing

import pytest
from slicer_static_helpers import (
    MODULES,
    PARAMETER_MODULES,
    call_name,
    canonical_type,
    classes,
    evaluate_annotation,
    functions,
    lib_class,
    literal_default,
    module_constant,
    parameter_classes,
    shell_source,
    shell_tree,
    types_compatible,
    wrapper_class,
)


def mirror_pairs():
    for module in MODULES:
        for pack, dotted in module_constant(module, "PARAMETER_MIRRORS").items():
            yield pytest.param(module, pack, dotted, id=f"{module}:{pack}")


def lib_default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@pytest.mark.parametrize(("module", "pack", "dotted"), list(mirror_pairs()))
def test_pack_mirrors_its_lib_dataclass(module, pack, dotted):
    packs = parameter_classes(module)
    assert pack in packs, f"{module}.py: PARAMETER_MIRRORS names {pack}, which is not a @parameterPack class"
    kind, fields = packs[pack]
    cls = lib_class(dotted)
    assert dataclasses.is_dataclass(cls)
    lib_fields = dataclasses.fields(cls)
    assert [f.name for f in fields] == [f.name for f in lib_fields], f"{pack} fields differ from {dotted}"
    hints = typing.get_type_hints(cls)
    mirrors = module_constant(module, "PARAMETER_MIRRORS")
    for shell_field, lib_field in zip(fields, lib_fields, strict=True):
        shell_type = canonical_type(evaluate_annotation(shell_field.annotation))
        lib_type = hints[lib_field.name]
        if dataclasses.is_dataclass(lib_type):
            assert mirrors.get(shell_type) == f"{lib_type.__module__}.{lib_type.__qualname__}", (
                f"{pack}.{shell_field.name}: {shell_type} must be the pack mirroring {lib_type.__name__}")
            continue
        assert types_compatible(shell_type, canonical_type(lib_type)), (
            f"{pack}.{shell_field.name}: {shell_type} vs {canonical_type(lib_type)} in {dotted}")
        default = lib_default(lib_field)
        shell_default = literal_default(shell_field)
        if isinstance(default, tuple) and isinstance(shell_default, tuple):
            assert tuple(default) == shell_default
        else:
            assert shell_default == default, f"{pack}.{shell_field.name}: default {shell_default!r} vs {default!r}"


def test_every_lib_parameter_dataclass_is_mirrored():
    mirrored = {dotted for module in MODULES for dotted in module_constant(module, "PARAMETER_MIRRORS").values()}
    found = set()
    for name in PARAMETER_MODULES:
        mod = importlib.import_module(name)
        for obj_name, obj in vars(mod).items():
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == name:
                found.add(f"{name}.{obj_name}")
    assert found, "no parameter dataclass found"
    assert not sorted(found - mirrored), f"not mirrored in any shell: {sorted(found - mirrored)}"


@pytest.mark.parametrize("module", MODULES)
def test_parameter_node_holds_the_root_packs(module):
    """The wrapper's pack fields are mirrored packs, and every mirrored root pack is in the wrapper."""
    packs = parameter_classes(module)
    mirrors = module_constant(module, "PARAMETER_MIRRORS")
    _, fields = wrapper_class(module)
    wrapper_packs = {canonical_type(evaluate_annotation(f.annotation)) for f in fields} & set(packs)
    nested = {canonical_type(evaluate_annotation(f.annotation)) for _, (kind, fs) in packs.items() if kind == "pack"
              for f in fs}
    roots = set(mirrors) - nested
    assert wrapper_packs <= set(mirrors)
    assert roots == wrapper_packs, f"root packs {sorted(roots)} vs wrapper pack fields {sorted(wrapper_packs)}"


@pytest.mark.parametrize("module", MODULES)
def test_logic_converts_every_pack_with_one_call(module):
    """The Logic builds each Lib dataclass with ``toLibParameters(pn.<pack>, PARAMETER_MIRRORS)``."""
    packs = parameter_classes(module)
    _, fields = wrapper_class(module)
    pack_fields = {f.name for f in fields if canonical_type(evaluate_annotation(f.annotation)) in packs}
    logic = classes(shell_tree(module))[f"{module}Logic"]
    converted = set()
    for node in ast.walk(logic):
        if isinstance(node, ast.Call) and call_name(node) == "toLibParameters":
            arg = node.args[0]
            if isinstance(arg, ast.Attribute):
                converted.add(arg.attr)
            assert isinstance(node.args[1], ast.Name) and node.args[1].id == "PARAMETER_MIRRORS"
    assert pack_fields and pack_fields <= converted, f"not converted: {sorted(pack_fields - converted)}"


def _conversion_helper():
    """``toLibParameters`` (and ``_plainValue``) compiled from SpinePlanner.py without Slicer."""
    funcs = functions(shell_tree("SpinePlanner"))
    namespace = {"collections": collections, "dataclasses": dataclasses, "importlib": importlib}
    for name in ("_plainValue", "toLibParameters"):
        code = ast.get_source_segment(shell_source("SpinePlanner"), funcs[name])
        exec(compile(code, "SpinePlanner.py", "exec"), namespace)
    return namespace["toLibParameters"]


class _ObservedList(collections.abc.MutableSequence):
    """Stands in for the wrapper's ObservedList (not a ``list``)."""

    def __init__(self, items):
        self._items = list(items)

    def __getitem__(self, i):
        return self._items[i]

    def __setitem__(self, i, v):
        self._items[i] = v

    def __delitem__(self, i):
        del self._items[i]

    def __len__(self):
        return len(self._items)

    def insert(self, i, v):
        self._items.insert(i, v)


def _fake_pack(dotted: str, mirrors: dict, overrides: dict):
    """An object shaped like a parameter pack instance for ``dotted`` (named as its pack class)."""
    cls = lib_class(dotted)
    pack_name = next(k for k, v in mirrors.items() if v == dotted)
    hints = typing.get_type_hints(cls)
    attrs = {"allParameters": {}}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            attrs[f.name] = _fake_pack(f"{tp.__module__}.{tp.__qualname__}", mirrors, overrides)
        else:
            value = overrides.get((cls.__name__, f.name), lib_default(f))
            attrs[f.name] = _ObservedList(value) if isinstance(value, list) else value
    return type(pack_name, (), attrs)()


@pytest.mark.parametrize("module", MODULES)
def test_conversion_helper_rebuilds_the_lib_dataclasses(module):
    to_lib = _conversion_helper()
    mirrors = module_constant(module, "PARAMETER_MIRRORS")
    for dotted in mirrors.values():
        cls = lib_class(dotted)
        assert to_lib(_fake_pack(dotted, mirrors, {}), mirrors) == cls(), f"{dotted} defaults not reproduced"
    # a changed value reaches the dataclass (and its validation)
    dotted = next(iter(mirrors.values()))
    cls = lib_class(dotted)
    numeric = next(f for f in dataclasses.fields(cls) if type(lib_default(f)) is float)
    changed = to_lib(_fake_pack(dotted, mirrors, {(cls.__name__, numeric.name): lib_default(numeric) * 1.5}), mirrors)
    assert getattr(changed, numeric.name) == pytest.approx(lib_default(numeric) * 1.5)
    with pytest.raises(ValueError):
        to_lib(_fake_pack(dotted, mirrors, {(cls.__name__, numeric.name): -1e9}), mirrors)
