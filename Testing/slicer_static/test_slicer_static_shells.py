"""The Slicer module shells follow Slicer's scripted-module conventions (checked without Slicer).

Module class with its texts, a parameter node wrapper, a widget whose Apply reads only the
parameter node inside ``tryWithErrorDisplay``, a thin Logic delegating to the Lib, a self-test on
the phantom; dependencies installed at the point of use, never at import or in ``setup()``;
``processEvents`` only in the progress adapter; the phantom registered as sample data; ruff-clean.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib

import pytest
from slicer_static_helpers import (
    MODULES,
    REPO,
    call_name,
    classes,
    functions,
    module_constant,
    shell_path,
    shell_tree,
)

INSTALLERS = ("pip_install", "pip_ensure", "ensureDependencies", "install")
WIDGET_READS = {"currentNode", "currentNodeID", "value", "checked", "isChecked", "text", "currentText",
                "currentIndex", "currentPath", "directory", "toPlainText", "plainText", "currentData"}


def calls_in(node: ast.AST) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call)]


def methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize("module", MODULES)
def test_shell_parses(module):
    assert isinstance(shell_tree(module), ast.Module)


def test_shells_are_ruff_clean():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(REPO.parent))
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    probe = subprocess.run([*cmd, "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("ruff is not installed (pip install .[test])")
    paths = [str(shell_path(m)) for m in MODULES]
    out = subprocess.run([*cmd, "check", "--no-cache", *paths], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("module", MODULES)
def test_module_class_sets_title_categories_contributors_and_texts(module):
    cls = classes(shell_tree(module))[module]
    bases = {getattr(b, "id", getattr(b, "attr", "")) for b in cls.bases}
    assert "ScriptedLoadableModule" in bases
    assigned = {t.attr for n in ast.walk(cls) if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Attribute) and t.value.attr == "parent"}
    assert {"title", "categories", "contributors", "helpText", "acknowledgementText"} <= assigned
    text = ast.get_source_segment((shell_path(module)).read_text(), cls)
    assert "TODO" not in text and "John Doe" not in text and "Examples" not in text


@pytest.mark.parametrize("module", MODULES)
def test_widget_logic_and_test_classes_exist(module):
    cls = classes(shell_tree(module))
    widget, logic, test = cls[f"{module}Widget"], cls[f"{module}Logic"], cls[f"{module}Test"]
    # the template's widget plumbing lives in SpinePlanner.ParameterNodeWidget, shared by all modules
    template = classes(shell_tree("SpinePlanner"))["ParameterNodeWidget"]
    assert {getattr(b, "id", "") for b in widget.bases} == {"ParameterNodeWidget"}
    assert {getattr(b, "id", "") for b in template.bases} == {"ScriptedLoadableModuleWidget", "VTKObservationMixin"}
    ui_name = [n.value for n in widget.body if isinstance(n, ast.Assign) and n.targets[0].id == "uiName"]
    assert [getattr(v, "value", None) for v in ui_name] == [module], "uiName must be the module name"
    names = {call_name(c) for c in calls_in(methods(template)["setup"])}
    assert "slicer.util.loadUI" in names and "slicer.util.childWidgetVariables" in names
    assert any(call_name(c).endswith("connectGui") for c in calls_in(template))
    assert {"createLogic", "connectWidgets", "updateGui"} <= set(methods(widget))
    assert {getattr(b, "id", "") for b in logic.bases} == {"ScriptedLoadableModuleLogic"}
    assert {getattr(b, "id", "") for b in test.bases} == {"ScriptedLoadableModuleTest"}
    created = [call_name(c) for c in calls_in(methods(widget)["createLogic"])]
    assert created == [f"{module}Logic"]
    get_node = methods(logic)["getParameterNode"]
    assert any(call_name(c) == f"{module}ParameterNode" for c in calls_in(get_node))


@pytest.mark.parametrize("module", MODULES)
def test_no_dependency_installation_at_import_or_in_setup(module):
    tree = shell_tree(module)
    offenders = []
    for stmt in tree.body:  # module level, outside functions and classes
        if isinstance(stmt, ast.FunctionDef | ast.ClassDef):
            continue
        offenders += [call_name(c) for c in calls_in(stmt) if call_name(c).endswith(INSTALLERS)]
    for cls in classes(tree).values():
        for name in ("__init__", "setup", "enter", "initializeParameterNode"):
            fn = methods(cls).get(name)
            if fn is not None:
                offenders += [f"{cls.name}.{name}: {call_name(c)}" for c in calls_in(fn)
                              if call_name(c).split(".")[-1] in INSTALLERS]
    register = functions(tree).get("registerSampleData")
    if register is not None:
        offenders += [call_name(c) for c in calls_in(register) if call_name(c).split(".")[-1] in INSTALLERS]
    assert not offenders, offenders


def test_dependencies_use_pip_ensure_or_a_confirmed_pip_install():
    fn = functions(shell_tree("SpinePlanner"))["ensureDependencies"]
    names = [call_name(c) for c in calls_in(fn)]
    assert any(n.endswith("pip_ensure") for n in names)
    install = [c for c in calls_in(fn) if call_name(c) == "slicer.util.pip_install"]
    confirm = [c for c in calls_in(fn) if call_name(c) == "slicer.util.confirmOkCancelDisplay"]
    assert install and confirm and confirm[0].lineno < install[0].lineno, "pip_install only after confirmation"
    text = ast.get_source_segment(shell_path("SpinePlanner").read_text(), fn)
    assert "(5, 11)" in text


@pytest.mark.parametrize("module", MODULES)
def test_apply_reads_only_the_parameter_node_inside_try_with_error_display(module):
    widget = classes(shell_tree(module))[f"{module}Widget"]
    reads = []
    for node in ast.walk(widget):
        if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and node.attr in WIDGET_READS
                and isinstance(node.value, ast.Attribute) and isinstance(node.value.value, ast.Attribute)
                and node.value.value.attr == "ui"):
            reads.append(f"line {node.lineno}: self.ui.{node.value.attr}.{node.attr}")
    assert not reads, f"widgets must be read through the parameter node only: {reads}"
    guarded = 0
    for fn in methods(widget).values():
        runs = [c for c in calls_in(fn) if call_name(c) in ("self.logic.process", "self.logic.export")]
        if not runs:
            continue
        withs = [w for w in ast.walk(fn) if isinstance(w, ast.With)
                 and any(isinstance(i.context_expr, ast.Call)
                         and call_name(i.context_expr) == "slicer.util.tryWithErrorDisplay"
                         and any(k.arg == "waitCursor" and getattr(k.value, "value", None) is True
                                 for k in i.context_expr.keywords) for i in w.items)]
        inside = {id(c) for w in withs for c in calls_in(w)}
        assert all(id(c) in inside for c in runs), f"{fn.name}: the logic call is not inside tryWithErrorDisplay"
        guarded += 1
    assert guarded >= 1


@pytest.mark.parametrize("module", MODULES)
def test_process_events_only_in_the_progress_adapter(module):
    tree = shell_tree(module)
    allowed = set()
    if "StageProgress" in classes(tree):
        allowed = {id(c) for c in calls_in(classes(tree)["StageProgress"])}
    stray = [c.lineno for c in calls_in(tree) if call_name(c).endswith("processEvents") and id(c) not in allowed]
    assert not stray, f"processEvents outside StageProgress at lines {stray}"


@pytest.mark.parametrize("module", MODULES)
def test_logic_delegates_to_the_lib(module):
    logic = classes(shell_tree(module))[f"{module}Logic"]
    imports = {n.module for n in ast.walk(logic) if isinstance(n, ast.ImportFrom)}
    assert any(m and m.endswith(".logic") and m.startswith(f"{module}Lib") for m in imports), imports
    process = methods(logic)["process"]
    lib_calls = {call_name(c) for c in calls_in(process)}
    assert lib_calls & {"plan_in_scene", "run_tractography", "run_check_on_nodes"}
    validate = methods(logic)["validateInputs"]
    returns = [r.value for r in ast.walk(validate) if isinstance(r, ast.Return)]
    assert returns and all(isinstance(v, ast.Tuple) and len(v.elts) == 2 for v in returns), "(ok, message)"


@pytest.mark.parametrize("module", MODULES)
def test_self_test_runs_the_logic_on_the_phantom_with_assertions(module):
    test = classes(shell_tree(module))[f"{module}Test"]
    run = methods(test)["runTest"]
    called = {call_name(c).removeprefix("self.") for c in calls_in(run)}
    tests = {n for n in methods(test) if n.startswith("test_")}
    assert tests and tests <= called, f"runTest does not run {sorted(tests - called)}"
    for name in tests:
        fn = methods(test)[name]
        names = {call_name(c) for c in calls_in(fn)}
        asserts = [n for n in names if n.startswith("self.assert")]
        assert len(asserts) >= 2, f"{name} has no real assertions"
    everything = {call_name(c) for c in calls_in(test)}
    imported = {a.name for n in ast.walk(test) if isinstance(n, ast.ImportFrom) and n.module == "SpinePlannerLib.phantom.case"
                for a in n.names}
    assert imported & {"generate_phantom", "write_phantom"}
    assert everything & {"generate_phantom", "write_phantom"}
    assert any(n.startswith(("logic.process", "SpinePlannerLogic().process")) for n in everything)


def test_phantom_is_registered_as_sample_data():
    tree = shell_tree("SpinePlanner")
    register = functions(tree)["registerSampleData"]
    reg_calls = [c for c in calls_in(register) if call_name(c).endswith("registerCustomSampleDataSource")]
    assert len(reg_calls) == 1
    keywords = {k.arg for k in reg_calls[0].keywords}
    assert {"category", "sampleName", "uris", "fileNames", "nodeNames", "customDownloader"} <= keywords
    assert module_constant("SpinePlanner", "PHANTOM_SAMPLE_CATEGORY") == "Spine tumor phantoms"
    module_init = classes(tree)["SpinePlanner"]
    assert any(call_name(c) == "slicer.app.connect" and any(getattr(a, "id", "") == "registerSampleData"
                                                             for a in c.args) for c in calls_in(module_init))
    phantom = pytest.importorskip("SpinePlannerLib.phantom.case")
    assert set(module_constant("SpinePlanner", "PHANTOM_SAMPLE_KINDS")) == set(phantom.PHANTOM_KINDS)


def test_slicer_requirements_match_pyproject():
    """What the shells install into Slicer is what pyproject pins, minus what Slicer bundles."""
    from SpinePlannerLib.gui.dependencies import BUNDLED_WITH_SLICER, SLICER_REQUIREMENTS, requirement_name

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {requirement_name(d): d.replace(" ", "") for d in deps}
    bundled = {requirement_name(b) for b in BUNDLED_WITH_SLICER}
    slicer_reqs = {requirement_name(r): r.replace(" ", "") for r in SLICER_REQUIREMENTS}
    assert not set(slicer_reqs) & bundled, "never reinstall what Slicer bundles (numpy, SimpleITK, ...)"
    assert set(slicer_reqs) | bundled == set(pinned), (
        f"missing in Slicer: {sorted(set(pinned) - bundled - set(slicer_reqs))}; "
        f"not in pyproject: {sorted(set(slicer_reqs) - set(pinned))}")
    for name, req in slicer_reqs.items():
        assert req == pinned[name], f"{name}: {req} in the Slicer list vs {pinned[name]} in pyproject.toml"
