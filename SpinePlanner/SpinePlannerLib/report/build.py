"""Write ``report.html`` (self-contained) and ``report.pdf`` into a plan folder, from plan.json and
the label maps and images it names (no stage is re-run).

The summary block is taken from plan.json when present, else computed (plans written before it
existed). Same plan folder -> same HTML bytes (pictures carry no dates).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from SpinePlannerLib.core.imageio import write_text_atomic

from . import figures_3d
from .html import document, page_one
from .pdf import html_to_pdf
from .planfolder import PlanFolder
from .sections import all_sections
from .summary import build_summary

HTML_NAME, PDF_NAME = "report.html", "report.pdf"


@dataclass
class ReportResult:
    html: Path
    pdf: Path | None
    pdf_reason: str | None  # why no PDF was written
    view_3d_method: str
    seconds: float
    figure: Path | None = None


def render_html(folder: PlanFolder, view3d: tuple | None = None) -> str:
    """The report as an HTML string."""
    plan = dict(folder.plan)
    plan.setdefault("summary", build_summary(plan))
    folder.plan = plan
    view3d = view3d or figures_3d.view_3d_figure(folder)
    name = (plan["summary"].get("case") or {}).get("name", "case")
    return document(f"Spine tumor plan — {name}", page_one(plan) + "\n" + all_sections(folder, view3d))


def write_report(plan_dir, *, pdf: bool = True, figure=None) -> ReportResult:
    """Write ``plan_dir/report.html`` and (``pdf``) ``report.pdf``; ``figure``: also save the 3D view
    PNG there (path relative to the current directory). Raises InputError without a plan.json."""
    t0 = time.perf_counter()
    folder = PlanFolder.open(plan_dir)
    view3d = figures_3d.view_3d_figure(folder)
    html_path = folder.root / HTML_NAME
    write_text_atomic(html_path, render_html(folder, view3d))
    fig_path = None
    if figure is not None and view3d[0] is not None:
        fig_path = Path(figure).resolve()
        fig_path.parent.mkdir(parents=True, exist_ok=True)
        fig_path.write_bytes(view3d[0])
    pdf_path, reason = None, "not requested"
    if pdf:
        reason = html_to_pdf(html_path, folder.root / PDF_NAME)
        pdf_path = None if reason else folder.root / PDF_NAME
    return ReportResult(html_path, pdf_path, reason, view3d[1], round(time.perf_counter() - t0, 2), fig_path)
