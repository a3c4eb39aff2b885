"""Shared pytest fixtures: repository paths, the real data in ../shared/data, a headless
Slicer core, and phantom cases generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real images of ../shared/data (see its README); tests needing them skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture()
def core():
    """A fresh headless Slicer application core (scene + logics)."""
    from SpinePlannerLib.mrml.headless import create_core

    return create_core()


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
    """``phantom_dir(kind, seed=0) -> Path``: the folder of a phantom case, generated once per session."""
    from SpinePlannerLib.phantom.case import write_phantom

    cache: dict = {}

    def get(kind: str, seed: int = 0) -> Path:
        key = (kind, seed)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"phantom-{kind}-{seed}")
            write_phantom(kind, out, seed=seed)
            cache[key] = out
        return cache[key]

    return get
