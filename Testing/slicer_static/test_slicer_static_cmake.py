"""The extension builds and installs every file: CMakeLists.txt of the extension and its modules.

Slicer installs a scripted module's files only when its CMakeLists.txt lists them; a Lib file
someone forgets there works in the source tree and breaks in the packaged extension. The Lib
folders are globbed at test time, so a file added later fails here until it is listed.
"""

from __future__ import annotations

import struct

import pytest
from slicer_static_helpers import MODULES, REPO, cmake_calls, cmake_sets, installed_files, module_dir


def listed(module: str) -> tuple[list[str], list[str]]:
    sets = cmake_sets(module_dir(module) / "CMakeLists.txt")
    return sets.get("MODULE_PYTHON_SCRIPTS", []), sets.get("MODULE_PYTHON_RESOURCES", [])


@pytest.mark.parametrize("module", MODULES)
def test_every_module_file_is_listed_in_its_cmakelists(module):
    scripts, resources = listed(module)
    missing = sorted(installed_files(module) - set(scripts) - set(resources))
    assert not missing, f"{module}/CMakeLists.txt does not install: {missing}"


@pytest.mark.parametrize("module", MODULES)
def test_every_cmakelists_entry_exists(module):
    scripts, resources = listed(module)
    absent = sorted(f for f in scripts + resources if not (module_dir(module) / f).is_file())
    assert not absent, f"{module}/CMakeLists.txt lists files that do not exist: {absent}"


@pytest.mark.parametrize("module", MODULES)
def test_python_files_are_scripts_and_other_files_resources(module):
    scripts, resources = listed(module)
    assert all(s.endswith(".py") for s in scripts), scripts
    assert not [r for r in resources if r.endswith(".py")], "Python files belong in MODULE_PYTHON_SCRIPTS"
    assert len(scripts) == len(set(scripts)) and len(resources) == len(set(resources)), "duplicate entries"
    assert f"{module}.py" in scripts
    assert f"Resources/UI/{module}.ui" in resources and f"Resources/Icons/{module}.png" in resources


@pytest.mark.parametrize("module", MODULES)
def test_module_cmakelists_builds_the_scripted_module_and_its_self_test(module):
    path = module_dir(module) / "CMakeLists.txt"
    assert cmake_sets(path)["MODULE_NAME"] == [module]
    build = cmake_calls(path, "slicerMacroBuildScriptedModule")
    assert len(build) == 1
    args = build[0].split()
    for keyword, value in (("NAME", "${MODULE_NAME}"), ("SCRIPTS", "${MODULE_PYTHON_SCRIPTS}"),
                           ("RESOURCES", "${MODULE_PYTHON_RESOURCES}")):
        assert args[args.index(keyword) + 1] == value
    assert "WITH_GENERIC_TESTS" in args
    assert any("${MODULE_NAME}.py" in c for c in cmake_calls(path, "slicer_add_python_unittest"))


def test_installed_file_names_are_unique_across_modules():
    """Scripted modules of one extension install flat into one folder."""
    owner: dict[str, str] = {}
    clashes = []
    for module in MODULES:
        scripts, resources = listed(module)
        for rel in scripts + resources:
            if rel in owner:
                clashes.append(f"{rel} ({owner[rel]} and {module})")
            owner[rel] = module
    assert not clashes, clashes
    for module in MODULES:
        assert not (module_dir(module) / "Testing" / "__init__.py").exists()


def test_extension_cmakelists_has_metadata_and_adds_every_module():
    path = REPO / "CMakeLists.txt"
    sets = cmake_sets(path)
    assert [c.strip() for c in cmake_calls(path, "project")] == ["SpineTumorPlanner"]
    assert sets["EXTENSION_CATEGORY"] == ["Surgical Planning"]
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL"):
        assert " ".join(sets.get(key, [])).strip(), f"{key} is empty"
    assert sets["EXTENSION_ICONURL"][0].endswith("SpineTumorPlanner.png")
    subdirs = [c.strip() for c in cmake_calls(path, "add_subdirectory")]
    module_folders = sorted(p.parent.name for p in REPO.glob("*/*.py") if p.stem == p.parent.name)
    assert sorted(subdirs) == module_folders == sorted(MODULES)
    text = path.read_text()
    assert "find_package(Slicer REQUIRED)" in text and "${Slicer_EXTENSION_CPACK}" in text


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG file"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("icon", [f"{m}/Resources/Icons/{m}.png" for m in MODULES]
                         + ["Resources/Icons/SpineTumorPlanner.png"])
def test_icons_are_128_pixel_png_files(icon):
    assert _png_size(REPO / icon) == (128, 128)
