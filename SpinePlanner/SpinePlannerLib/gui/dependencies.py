"""The Python packages the Lib needs inside 3D Slicer (installed at Apply time by the shells).

Slicer bundles numpy, scipy, SimpleITK, VTK and pydicom; those are never (re)installed from
here, and ``slicer-core`` is Slicer itself. Every other run-time dependency of ``pyproject.toml``
is listed with the same version specifier (a test keeps the two in sync). Pure Python: no
third-party import.
"""

from __future__ import annotations

import importlib.metadata
import re

SLICER_REQUIREMENTS = (
    "nibabel==5.4.*",
    "dipy==1.12.*",
    "jsonschema>=4.20,<5",
    "scikit-image==0.26.*",
    "trx-python==0.6",
    "highdicom==0.28.*",
    "pynetdicom==3.0.*",
    "pyigtl==0.3.*",
    "trimesh==5.2.*",
    "matplotlib==3.11.*",
)
"""Requirement strings for ``slicer.packaging.pip_ensure`` / ``slicer.util.pip_install``."""

BUNDLED_WITH_SLICER = ("numpy", "scipy", "SimpleITK", "vtk", "pydicom", "slicer-core")
"""pyproject dependencies that Slicer provides itself (never installed into Slicer's Python)."""


def requirement_name(requirement: str) -> str:
    """Canonical distribution name of a requirement string (``"trx-python==0.6"`` -> ``trx-python``)."""
    name = re.split(r"[\s;<>=!~\[]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_requirements(requirements=SLICER_REQUIREMENTS) -> list[str]:
    """The requirements not satisfied in the running Python (name and, when ``packaging`` is
    importable, version)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - Slicer and pip environments ship packaging
        Requirement = None
    missing = []
    for req in requirements:
        try:
            installed = importlib.metadata.version(requirement_name(req))
        except importlib.metadata.PackageNotFoundError:
            missing.append(req)
            continue
        if Requirement is not None and installed not in Requirement(req).specifier:
            missing.append(req)
    return missing
