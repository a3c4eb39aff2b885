"""The self-contained HTML report: page 1 the decision summary, then one section per stage.

Images are embedded as ``data:`` URIs; no script, no font or style sheet from the network.
Every number taken from plan.json is written as ``<span class="num" data-key="a.b.c"
data-value="...">`` (``data-key`` the path in plan.json, list indices as numbers) so a test can
check the report against the plan. Print layout: A4, page 1 alone on its page.
"""

from __future__ import annotations

import base64
import html as _html
import json

CSS = """
@page { size: A4; margin: 12mm 12mm 14mm 12mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; color: #111; margin: 0 auto; max-width: 190mm; }
h1 { font-size: 16pt; margin: 0 0 2mm 0; } h2 { font-size: 13pt; border-bottom: 1px solid #999; margin: 5mm 0 2mm; }
h3 { font-size: 11pt; margin: 3mm 0 1mm; }
.page1 { break-after: page; page-break-after: always; }
.sub { color: #555; font-size: 9pt; margin-bottom: 3mm; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 2mm; }
td, th { border: 1px solid #ccc; padding: 1.2mm 2mm; vertical-align: top; text-align: left; font-size: 9pt; }
th { background: #f0f0f0; width: 28%; }
.sev { display: inline-block; min-width: 14mm; text-align: center; font-weight: bold; border-radius: 2px; padding: 0 1mm; }
.sev-high { background: #c62828; color: white; } .sev-caution { background: #f9a825; } .sev-note { background: #ddd; }
.box { border: 2px solid #333; padding: 2mm 3mm; margin: 2mm 0; }
figure { margin: 2mm 0; break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; max-width: 100%; max-height: 125mm; width: auto; height: auto; margin: 0 auto; } figcaption { font-size: 8.5pt; color: #333; }
h2, h3 { break-after: avoid; page-break-after: avoid; }
table { break-inside: avoid; page-break-inside: avoid; }
.foot { font-size: 8pt; color: #555; margin-top: 4mm; }
"""

STAGE_TITLES = {"segmentation": "Segmentation", "tumor_measurement": "Tumor measurement",
                "tractography": "Tractography (DTI)", "synthetic_ct_check": "Synthetic CT check",
                "vessels": "Vessels", "scene": "Slicer scene"}


def esc(text) -> str:
    return _html.escape(str(text), quote=True)


def num(key: str, value, fmt: str = "", unit: str = "") -> str:
    """A plan number with its plan.json path (``data-key``) and raw value (``data-value``)."""
    if value is None:
        return f'<span class="num" data-key="{esc(key)}" data-value="null">not measured</span>'
    shown = format(value, fmt) if fmt else str(value)
    return (f'<span class="num" data-key="{esc(key)}" data-value="{esc(json.dumps(value))}">'
            f"{esc(shown)}{(' ' + esc(unit)) if unit else ''}</span>")


def img(png: bytes | None, alt: str, caption: str) -> str:
    if not png:
        return ""
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def rows(pairs) -> str:
    """Table rows from (label, html) pairs (html already escaped); None values skipped."""
    return "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs if v is not None)


def _warnings_html(summary: dict) -> str:
    items = summary.get("warnings") or []
    if not items:
        return "<p>No warnings.</p>"
    return "<table>" + "".join(
        f'<tr><td style="width:18mm"><span class="sev sev-{esc(w["severity"])}">{esc(w["severity"])}</span></td>'
        f"<td>{esc(w['text'])}</td></tr>" for w in items) + "</table>"


def page_one(plan: dict) -> str:
    s = plan.get("summary") or {}
    case, t = s.get("case") or {}, s.get("tumor") or {}
    stages = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (case.get("stages") or {}).items())
    tumor_rows = rows([
        ("compartment", esc(t.get("compartment")) if t.get("found") else "no tumor segmented"),
        ("levels", esc(t["levels"]) if t.get("levels") else None),
        ("size", esc(t["size"]) if t.get("size") else None),
        ("volume", num("tumor.volume_ml", (plan.get("tumor") or {}).get("volume_ml"), ".2f", "mL") if t.get("found") else None),
        ("canal occupancy", esc(t["canal_occupancy"]) if t.get("canal_occupancy") else None),
    ])
    verdicts = rows([(v["topic"], esc(v["text"])) for v in s.get("verdicts") or []]) or "<tr><td>no verdicts</td></tr>"
    missing = "".join(f"<li><b>{esc(m['what'])}</b>: {esc(m['why'])}</li>" for m in s.get("not_assessed") or [])
    return f"""<section class="page1" id="summary">
<h1>Spine tumor plan — {esc(case.get('name', 'case'))}</h1>
<div class="sub">created {esc(case.get('created_utc', ''))} · inputs: {esc(', '.join(case.get('inputs') or []))} ·
reference grid: {esc(case.get('reference_image'))} · stages: {esc(stages)}</div>
<h2>Tumor</h2><table>{tumor_rows}</table>
<h2>Verdicts</h2><div class="box"><table>{verdicts}</table></div>
<h2>Warnings (most severe first)</h2>{_warnings_html(s)}
<h2>Not assessed</h2>{'<ul>' + missing + '</ul>' if missing else '<p>Everything the inputs allow was assessed.</p>'}
<p class="foot">Decision support, not a diagnosis: every statement carries the numbers and the rule behind it
(plan.json); thresholds tuned on phantoms are settings, not evidence. RAS coordinates in mm.</p>
</section>"""


def stage_status(plan: dict, name: str) -> str:
    st = (plan.get("stages") or {}).get(name)
    if not st:
        return "<p>Not run.</p>"
    reason = f" — {esc(st['reason'])}" if st.get("reason") else ""
    return (f'<p class="sub">status: <b>{esc(st["status"])}</b>{reason} · '
            f'{num(f"stages.{name}.seconds", st.get("seconds"), ".1f", "s")}</p>')


def document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
