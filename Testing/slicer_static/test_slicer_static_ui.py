"""The .ui files load and bind: valid Qt Designer XML, every widget the shell uses exists, every
``SlicerParameterName`` names a parameter of the right type, MRML widgets receive the scene.

A wrong name here would only show up in Slicer as an AttributeError or a silently unbound widget.
"""

from __future__ import annotations

import dataclasses

import pytest
from slicer_static_helpers import (
    MODULES,
    canonical_type,
    classes,
    evaluate_annotation,
    lib_class,
    literal_default,
    module_constant,
    parameter_classes,
    self_ui_names,
    shell_tree,
    ui_path,
    ui_root,
    ui_widgets,
    widget_property,
    wrapper_class,
)

WIDGET_TYPES = {
    "QCheckBox": {"bool"}, "ctkCheckBox": {"bool"},
    "QSpinBox": {"int"}, "QSlider": {"int"},
    "QDoubleSpinBox": {"float"}, "ctkDoubleSpinBox": {"float"}, "ctkSliderWidget": {"float"},
    "QLineEdit": {"str"}, "QTextEdit": {"str"}, "QLabel": {"str"},
    "ctkDirectoryButton": {"pathlib.Path"}, "ctkPathLineEdit": {"pathlib.Path"},
}
"""Widget class -> parameter types the parameterNodeWrapper can connect (Slicer's GUI connectors)."""


def resolve_parameter(module: str, dotted: str):
    """Follow ``a.b.c`` from the parameter node wrapper through parameter packs to the field."""
    packs = parameter_classes(module)
    _, fields = wrapper_class(module)
    field = None
    for i, part in enumerate(dotted.split(".")):
        by_name = {f.name: f for f in fields}
        assert part in by_name, f"{dotted!r}: no parameter {part!r} (have {sorted(by_name)})"
        field = by_name[part]
        if i < len(dotted.split(".")) - 1:
            pack = canonical_type(evaluate_annotation(field.annotation))
            assert pack in packs, f"{dotted!r}: {part!r} is not a parameter pack"
            fields = packs[pack][1]
    return field


def bound_widgets(module: str):
    for name, widget in ui_widgets(module).items():
        param = widget_property(widget, "SlicerParameterName")
        if param:
            yield name, widget, param


@pytest.mark.parametrize("module", MODULES)
def test_ui_is_a_qt_designer_file_for_the_module(module):
    root = ui_root(module)
    assert root.tag == "ui" and root.findtext("class") == module
    top = root.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == module
    names = [w.get("name") for w in root.iter("widget")]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"duplicate objectNames in {ui_path(module).name}: {duplicates}"


@pytest.mark.parametrize("module", MODULES)
def test_every_widget_the_shell_uses_exists_in_the_ui(module):
    used = self_ui_names(shell_tree(module))
    missing = sorted(used - set(ui_widgets(module)))
    assert used, f"{module}.py uses no self.ui widget"
    assert not missing, f"{module}.py uses self.ui.{missing} that {ui_path(module).name} does not define"


@pytest.mark.parametrize("module", MODULES)
def test_every_slicer_parameter_name_names_a_parameter(module):
    params = [p for _, _, p in bound_widgets(module)]
    assert params, f"{ui_path(module).name} binds no widget to the parameter node"
    for param in params:
        resolve_parameter(module, param)
    assert len(params) == len(set(params)), "two widgets bound to one parameter"


@pytest.mark.parametrize("module", MODULES)
def test_bound_widgets_match_their_parameter_types(module):
    for name, widget, param in bound_widgets(module):
        field = resolve_parameter(module, param)
        tp = evaluate_annotation(field.annotation)
        kind = canonical_type(tp)
        cls = widget.get("class")
        if cls == "qMRMLNodeComboBox":
            assert kind.startswith("vtkMRML"), f"{name}: node selector bound to {kind}"
            assert widget_property(widget, "nodeTypes") == [kind], f"{name}: nodeTypes differ from {kind}"
        elif cls in ("QComboBox", "ctkComboBox"):
            choices = [m for m in getattr(tp, "__metadata__", ()) if isinstance(m, tuple) and m[0] == "Choice"]
            assert choices, f"{name}: a combo box needs a Choice([...]) annotation on {param!r}"
        else:
            assert kind in WIDGET_TYPES.get(cls, set()), f"{name} ({cls}) cannot be bound to {param!r} of type {kind}"


@pytest.mark.parametrize("module", MODULES)
def test_spin_box_ranges_hold_the_default_values(module):
    """Qt clamps a value outside a spin box's range and the binding writes it back: a default
    outside the range would silently change the setting."""
    mirrors = module_constant(module, "PARAMETER_MIRRORS")
    packs = parameter_classes(module)
    checked = 0
    for name, widget, param in bound_widgets(module):
        if widget.get("class") not in ("QSpinBox", "QDoubleSpinBox", "ctkDoubleSpinBox", "ctkSliderWidget"):
            continue
        *path, leaf = param.split(".")
        field = resolve_parameter(module, param)
        default = literal_default(field)
        if path:
            pack = canonical_type(evaluate_annotation(resolve_parameter(module, ".".join(path)).annotation))
            lib_fields = {f.name: f for f in dataclasses.fields(lib_class(mirrors[pack]))}
            lib_default = lib_fields[leaf].default
            assert pack in packs
            assert lib_default == default, f"{param}: the .ui/shell default {default} differs from the Lib's {lib_default}"
        lo = widget_property(widget, "minimum")
        hi = widget_property(widget, "maximum")
        lo = 0 if lo is None else lo
        hi = 99 if hi is None else hi
        assert lo <= default <= hi, f"{name}: default {default} outside [{lo}, {hi}]"
        decimals = widget_property(widget, "decimals")
        if widget.get("class") == "QDoubleSpinBox":
            decimals = 2 if decimals is None else decimals
            assert abs(round(default, decimals) - default) < 1e-12, f"{name}: {default} needs > {decimals} decimals"
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("module", MODULES)
def test_mrml_widgets_receive_the_scene(module):
    root = ui_root(module)
    receivers = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("sender") == module and c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
                 and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    mrml = {n for n, w in ui_widgets(module).items() if w.get("class").startswith(("qMRML", "qSlicer")) and n != module}
    assert mrml and mrml <= receivers, f"no setMRMLScene connection for {sorted(mrml - receivers)}"


@pytest.mark.parametrize("module", MODULES)
def test_custom_widgets_are_declared(module):
    root = ui_root(module)
    declared = {c.findtext("class") for c in root.iter("customwidget")}
    used = {w.get("class") for w in root.iter("widget")}
    custom = {c for c in used if not c.startswith("Q")}
    assert custom <= declared, f"undeclared custom widgets: {sorted(custom - declared)}"


@pytest.mark.parametrize("module", MODULES)
def test_node_parameters_have_node_types_the_wrapper_accepts(module):
    """Every MRML node parameter of the wrapper is a plain vtkMRML class (the wrapper's node
    serializer needs a class, and ``X | None`` unions are not recognised by it)."""
    _, fields = wrapper_class(module)
    node_fields = [f for f in fields if canonical_type(evaluate_annotation(f.annotation)).startswith("vtkMRML")]
    assert node_fields
    imported = set()
    for node in shell_tree(module).body:
        if getattr(node, "module", None) == "slicer":
            imported |= {a.name for a in node.names}
    for f in node_fields:
        assert canonical_type(evaluate_annotation(f.annotation)) in imported, f"{f.name}: import its class from slicer"
    assert f"{module}ParameterNode" in classes(shell_tree(module))
