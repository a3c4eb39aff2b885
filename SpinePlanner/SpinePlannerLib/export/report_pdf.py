"""The Setzer verdict and key measurements as an Encapsulated PDF DICOM object.

When the plan folder holds ``report.pdf`` (written by the report package) that document is
encapsulated; otherwise a one-page text PDF is built here from ``plan.json`` (no third-party
PDF library: PDF 1.4, Helvetica, one text object). With ``--deidentify`` an existing
``report.pdf`` is NOT encapsulated (its text may name the patient): the page is rebuilt from
the plan's numbers, which hold no identifiers.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from SpinePlannerLib.export.dicom_series import MANUFACTURER, SOFTWARE, now_date_time, patient_study_header

ENCAPSULATED_PDF_STORAGE = "1.2.840.10008.5.1.4.1.1.104.1"


def summary_lines(plan: dict) -> list[str]:
    """Plain-text lines: tumor, Setzer verdict with its rule, sCT check, vessels, warnings."""
    lines = ["spineplan - plan summary (decision support, not for diagnosis)", ""]
    t = plan.get("tumor") or {}
    if t:
        lines.append(f"Tumor: {t.get('compartment', 'unknown')}, {t.get('volume_ml', '?')} mL, "
                     f"max axial diameter {t.get('max_axial_diameter_mm', '?')} mm, "
                     f"cranio-caudal {t.get('craniocaudal_extent_mm', '?')} mm, "
                     f"levels {', '.join(t.get('levels_spanned') or []) or '?'}")
    tr = plan.get("tractography") or {}
    if tr:
        if tr.get("setzer_type") is not None:
            lines.append(f"Setzer type {tr['setzer_type']} ({tr.get('pattern')}), confidence {tr.get('confidence')}")
            lines.append(f"  rule: {tr.get('rule', '')}")
        else:
            lines.append("Setzer type: no verdict (" + "; ".join(tr.get("reasons") or ["not reliable"]) + ")")
        if tr.get("resectability"):
            lines.append(f"  {tr['resectability']}")
    sct = plan.get("synthetic_ct_check") or {}
    if sct.get("verdict"):
        lines.append(f"Synthetic CT check: {sct['verdict']}")
    v = plan.get("vessels") or {}
    if v:
        lines.append(f"Vessels: {len(v.get('feeders') or [])} feeding/draining candidate(s)")
    for w in plan.get("warnings") or []:
        lines.append(f"Warning: {w}")
    return lines


def _wrap(lines: list[str], width: int = 95) -> list[str]:
    out = []
    for line in lines:
        while len(line) > width:
            cut = line.rfind(" ", 0, width)
            cut = cut if cut > 20 else width
            out.append(line[:cut])
            line = "    " + line[cut:].lstrip()
        out.append(line)
    return out


def text_pdf(lines: list[str]) -> bytes:
    """A valid one-page A4 PDF 1.4 showing ``lines`` (Latin-1; other characters replaced)."""
    def esc(s: str) -> str:
        s = s.encode("latin-1", "replace").decode("latin-1")
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    body = ["BT", "/F1 9 Tf", "11 TL", "40 800 Td"]
    body += [f"({esc(line)}) '" for line in _wrap(lines)[:70]]
    body.append("ET")
    stream = "\n".join(body).encode("latin-1")
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    pdf, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, obj in enumerate(objs, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(pdf)


def build_encapsulated_pdf(pdf: bytes, header_source: Dataset, *, title: str, series_number: int = 103) -> Dataset:
    """An Encapsulated PDF object in the study of ``header_source`` (Patient/Study copied)."""
    date, time = now_date_time()
    ds = Dataset()
    ds.update(patient_study_header(header_source))
    ds.SOPClassUID, ds.SOPInstanceUID = ENCAPSULATED_PDF_STORAGE, generate_uid()
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "DOC", generate_uid(), series_number
    ds.SeriesDescription = "spineplan report (decision support)"
    ds.Manufacturer, ds.SoftwareVersions, ds.ConversionType = MANUFACTURER, SOFTWARE, "WSD"
    ds.InstanceNumber, ds.ContentDate, ds.ContentTime = 1, date, time
    ds.AcquisitionDateTime, ds.BurnedInAnnotation = date + time, "YES"
    ds.DocumentTitle, ds.ConceptNameCodeSequence = title[:64], []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    data = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocument, ds.EncapsulatedDocumentLength = data, len(pdf)
    return ds


def report_document(plan_folder: Path, plan: dict, header_source: Dataset, *, deidentify: bool) -> Dataset:
    """The report as Encapsulated PDF: the plan's ``report.pdf`` when present (and not
    de-identifying), else a summary page built from ``plan``."""
    existing = Path(plan_folder) / "report.pdf"
    if existing.is_file() and not deidentify:
        return build_encapsulated_pdf(existing.read_bytes(), header_source, title="spineplan report")
    return build_encapsulated_pdf(text_pdf(summary_lines(plan)), header_source,
                                  title="spineplan summary: Setzer verdict and measurements")
