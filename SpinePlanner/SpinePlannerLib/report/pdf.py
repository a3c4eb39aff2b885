"""HTML -> PDF with headless Chromium (``chromium --headless --print-to-pdf``), A4 from the page CSS.

The browser is Debian's ``chromium`` (or ``chromium-browser``/``google-chrome``; the environment
variable ``SPINEPLAN_CHROMIUM`` names another executable). Without one, no PDF is written and the
reason is returned; the HTML report stands alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120


def find_chromium() -> str | None:
    """Path of a Chromium executable, or None."""
    env = os.environ.get("SPINEPLAN_CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def html_to_pdf(html_path: Path, pdf_path: Path) -> str | None:
    """Print ``html_path`` to ``pdf_path`` (written atomically). Returns None, or why no PDF was written."""
    exe = find_chromium()
    if exe is None:
        return "no Chromium found (install Debian's `chromium` or set SPINEPLAN_CHROMIUM)"
    pdf_path = Path(pdf_path)
    with tempfile.TemporaryDirectory(prefix="spineplan-chromium-") as profile:
        tmp = Path(profile) / "report.pdf"
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions", "--no-first-run",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}/user", "--no-pdf-header-footer",
               f"--print-to-pdf={tmp}", Path(html_path).resolve().as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"Chromium did not print the PDF ({type(exc).__name__})"
        if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
            return f"Chromium did not print the PDF (exit {proc.returncode}: {last})"
        shutil.move(str(tmp), str(pdf_path.with_suffix(".pdf.tmp")))
    os.replace(pdf_path.with_suffix(".pdf.tmp"), pdf_path)
    return None
