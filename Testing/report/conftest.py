"""Session fixtures for the report and viewer tests: one demo plan folder (with its report), and
headless Chromium (Debian's ``chromium`` driven by playwright; never a downloaded browser)."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def demo_plan(tmp_path_factory):
    """A `spineplan demo` folder (intramedullary-displacing, seed 0) with report.html and report.pdf."""
    from SpinePlannerLib.cli.main import main

    out = tmp_path_factory.mktemp("report-demo") / "demo"
    assert main(["--quiet", "demo", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (playwright) on /usr/bin/chromium; skips when either is missing."""
    if CHROMIUM is None:
        pytest.skip("Debian package `chromium` not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip, test extra) not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                "--disable-dev-shm-usage"])
        yield b
        b.close()
