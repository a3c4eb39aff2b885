"""`spineplan view DIR` end to end: the server starts, headless Chromium shows the four Slicer
views, the 3D view shows the tumor after "jump to tumor", and a segment toggle changes it."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("trame_slicer", reason="the viewer extra is not installed (pip install '.[viewer]')")

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def viewer_url(demo_plan):
    port = _free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "SpinePlanner"), str(REPO / "DTITractography"),
                                         str(REPO / "SyntheticCTCheck"), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "SpinePlannerLib.cli", "view", str(demo_plan), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None:
                pytest.fail(f"viewer exited: {proc.stdout.read()[-2000:]}")
            time.sleep(1)
        else:
            pytest.fail("viewer did not listen within 180 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode is not None  # the server stopped


def _grab(page, index=0) -> np.ndarray:
    from PIL import Image

    png = page.locator("img.image-display-area").nth(index).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _red_pixels(img: np.ndarray) -> int:
    """Pixels of the tumor's red, also seen through the translucent cord (red well above green, blue)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return int(np.count_nonzero((r > 150) & (r - g > 60) & (r - b > 60)))


def _jump_twice(page):
    for _ in range(2):
        page.click("#jump-tumor")
        _settle(page)


def _swatch(page, name) -> list[int]:
    style = page.get_attribute(f"#swatch-{name}", "style")
    return [int(v) for v in re.search(r"rgb\((\d+), (\d+), (\d+)\)", style).groups()]


def _settle(page, seconds=3.0):
    page.wait_for_timeout(int(1000 * seconds))


def test_viewer_shows_the_tumor_and_toggles_change_the_picture(viewer_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(viewer_url)
    page.wait_for_selector("img.image-display-area", timeout=60_000)
    page.wait_for_function("Array.from(document.querySelectorAll('img.image-display-area'))"
                           ".filter(i => i.naturalWidth > 0).length >= 4", timeout=60_000)
    assert page.locator("img.image-display-area").count() == 4  # 3D + axial, coronal, sagittal
    assert "Setzer type 1" in page.inner_text("body")  # the summary beside the views
    tumor_rgb = _swatch(page, "tumor")
    vessel_rgb = _swatch(page, "vessels")
    assert tumor_rgb[0] > 150 and tumor_rgb[0] - max(tumor_rgb[1:]) > 60  # the red _red_pixels looks for
    before = _grab(page)
    # vessels share the tumor's red and the tracts surround it: hide them (cord, thecal sac and bone
    # start translucent in 3D)
    for toggle in ("seg-vessels", "vessel-models", "tracts"):
        page.uncheck(f"#toggle-{toggle}")
        _settle(page, 1.0)
        assert not page.is_checked(f"#toggle-{toggle}")
    # Known here (trame-rca 2.11, EGL): the 3D stream shows changes late, so each check is made
    # after two further interactions (jump to tumor: the camera is already there)
    _jump_twice(page)
    assert page.inner_text("#jumped-to") == "tumor"
    shown = _grab(page)
    assert shown.std() > 10  # not blank
    assert np.abs(shown - before).mean() > 1.0  # the toggles changed the 3D picture
    with_tumor = _red_pixels(shown)
    assert with_tumor > 500, (with_tumor, tumor_rgb, vessel_rgb)
    page.uncheck("#toggle-seg-tumor")  # hide the tumor segment
    _settle(page, 1.0)
    _jump_twice(page)
    hidden = _grab(page)
    assert np.abs(hidden - shown).mean() > 0.5  # the picture changed
    assert _red_pixels(hidden) < 0.7 * with_tumor  # (about half remains on this machine: see the README limit)
    page.close()
    assert errors == []
