"""The demo's report in a real browser (headless Chromium) and as a printed PDF (poppler):
images load, no console error, numbers equal plan.json, the PDF pages render non-blank."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest


def _plan_value(plan: dict, key: str):
    node = plan
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_report_is_self_contained(demo_plan):
    html = (demo_plan / "report.html").read_text()
    srcs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert srcs, "no image in the report"
    assert all(s.startswith("data:image/png;base64,") for s in srcs), [s[:40] for s in srcs if not s.startswith("data:")]
    assert "<script" not in html and "@import" not in html and "url(" not in html


def test_every_image_loads_without_console_error(demo_plan, browser):
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url[:60]}"))
    page.goto((demo_plan / "report.html").as_uri())
    page.wait_for_load_state("load")
    widths = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
    page.close()
    # anatomy, 3D, FA + tracts, FA profile, CT vs sCT, HU histograms, vessel tree
    assert len(widths) == 7
    assert all(w > 0 for w in widths), widths
    assert errors == []


def test_numbers_in_the_report_equal_plan_json(demo_plan, browser):
    plan = json.loads((demo_plan / "plan.json").read_text())
    page = browser.new_page()
    page.goto((demo_plan / "report.html").as_uri())
    spans = page.evaluate("Array.from(document.querySelectorAll('span.num')).map("
                          "s => [s.dataset.key, s.dataset.value, s.textContent])")
    page.close()
    keys = {k for k, _, _ in spans}
    for must in ("tumor.volume_ml", "tumor.max_axial_diameter_mm", "tumor.craniocaudal_extent_mm",
                 "tractography.setzer_type", "tractography.fa_tumor", "synthetic_ct_check.ct.mean_hu",
                 "synthetic_ct_check.sct.mean_hu", "vessels.feeders.0.diameter_mm"):
        assert must in keys, must
    for key, raw, text in spans:
        value = _plan_value(plan, key)
        assert json.loads(raw) == value, key
        if value is None:
            continue
        shown = float(re.search(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text).group(0))
        decimals = len(re.search(r"\.(\d+)", text).group(1)) if re.search(r"\d\.(\d+)", text) else 0
        tol = 0.5 * 10.0 ** -decimals * (abs(value) if "e" in text else 1.0) + 1e-12
        assert shown == pytest.approx(value, abs=tol * 1.01 + (abs(value) * 1e-3 if "e" in text else 0)), (key, text)
    # page 1 says what plan.json's summary says
    html = (demo_plan / "report.html").read_text()
    s = plan["summary"]
    for text in (s["tumor"]["size"], s["tumor"]["levels"], s["tumor"]["compartment"]):
        assert text.replace("&", "&amp;") in html
    for w in s["warnings"]:
        assert json.dumps(w["text"])[1:-1].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in html


def _pdftotext(pdf, page):
    return subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-layout", str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="Debian package poppler-utils not installed")
def test_pdf_pages_render_non_blank_and_page_one_is_the_summary(demo_plan, tmp_path):
    from SpinePlannerLib.report.pdf import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium to print the PDF (apt-get install chromium)")
    pdf = demo_plan / "report.pdf"
    assert pdf.stat().st_size > 10_000
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert "A4" in info and 4 <= pages <= 12
    subprocess.run(["pdftoppm", "-r", "30", "-gray", str(pdf), str(tmp_path / "p")], check=True)
    from PIL import Image

    rendered = sorted(tmp_path.glob("p-*.pgm"))
    assert len(rendered) == pages
    for p in rendered:
        ink = np.asarray(Image.open(p)) < 200
        assert ink.mean() > 0.005, f"{p.name} is blank"
    first = _pdftotext(pdf, 1)
    for heading in ("Tumor", "Verdicts", "Warnings", "Not assessed"):
        assert heading in first
    assert "Setzer type 1" in first
    assert "Segmentation and anatomy" not in first  # page 1 stands alone
