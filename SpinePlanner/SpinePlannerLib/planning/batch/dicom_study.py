"""Sort the series of a DICOM study folder into planning roles by their DICOM attributes.

Rules, per series (first file's header; localizers and series of fewer than 3 images ignored):

* ``Modality`` CT: synthetic CT when the description (SeriesDescription, ProtocolName, ImageType)
  says so (``synthetic``, ``sCT``, ``BoneMRI``, ``MR-derived``, ``pseudo-CT``); angiography when it
  says ``angio``/``CTA`` or ContrastBolusAgent is set; otherwise CT.
* ``Modality`` MR: diffusion when DiffusionBValue > 0 or the description says so (recorded as a
  note: DICOM diffusion is not read, convert it to NIfTI + bval/bvec); angiography (``angio``,
  ``TOF``, ``MRA``); SWI (``swi``); T2* GRE (``t2*``, ``t2star``, ``medic``, ``merge``,
  ``hemo``); STIR (``stir``, or inversion recovery with TI 100-250 ms); T1/T2 by the description,
  else by timing (TR < 1000 ms and TE < 30 ms: T1; TR > 2000 ms and TE > 60 ms: T2); a T1 with
  ContrastBolusAgent or a ``post``/``+C``/``Gd``/``contrast`` description is the contrast T1.
* Other modalities (SEG, SR, RTSTRUCT, ...) and unclassified series are listed in the case's notes.

Two series for one role is ambiguous: :class:`InputError` listing every series found, so the
user can name the one to plan (a role folder or a CSV row).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from SpinePlannerLib.core.errors import InputError

MIN_IMAGES = 3
_SCT = re.compile(r"synthetic|\bs-?ct\b|bone ?mri|mr-?derived|mri-?derived|pseudo-?ct")
_ANGIO_CT = re.compile(r"angio|\bcta\b")
_ANGIO_MR = re.compile(r"angio|\btof\b|\bmra\b")
_DWI = re.compile(r"\bdwi\b|diffusion|\bdti\b|ep2d_diff|\badc\b|trace")
_GRE = re.compile(r"t2\*|t2star|t2_star|medic|merge|hemo")
_T1 = re.compile(r"t1")
_T2 = re.compile(r"t2")
_CONTRAST = re.compile(r"post|\+c\b|\bgd\b|gad|contrast|\bce\b")
_LOCALIZER = re.compile(r"locali[sz]er|scout|survey|topogram")


def _text(ds) -> str:
    parts = [str(ds.get(k, "") or "") for k in ("SeriesDescription", "ProtocolName", "SequenceName")]
    parts.append(" ".join(str(v) for v in (ds.get("ImageType") or [])))
    return " ".join(parts).lower()


def _number(ds, key) -> float | None:
    try:
        value = ds.get(key)
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _mr_role(ds, text: str) -> str | None:
    b = _number(ds, "DiffusionBValue")
    if (b is not None and b > 0) or _DWI.search(text):
        return "dwi"
    if _ANGIO_MR.search(text):
        return "angio"
    if "swi" in text:
        return "swi"
    if _GRE.search(text):
        return "gre"
    ti = _number(ds, "InversionTime")
    if "stir" in text or ("IR" in str(ds.get("ScanningSequence", "")) and ti is not None and 100 <= ti <= 250):
        return "stir"
    tr, te = _number(ds, "RepetitionTime"), _number(ds, "EchoTime")
    if _T1.search(text) and not _T2.search(text):
        kind = "t1"
    elif _T2.search(text) and not _T1.search(text):
        kind = "t2"
    elif tr is not None and te is not None and tr < 1000 and te < 30:
        kind = "t1"
    elif tr is not None and te is not None and tr > 2000 and te > 60:
        kind = "t2"
    else:
        return None
    if kind == "t1" and (str(ds.get("ContrastBolusAgent", "") or "").strip() or _CONTRAST.search(text)):
        return "t1c"
    return kind


def classify_series(ds) -> str | None:
    """The planning role of a series from its first file's header, or None (unclassified/ignored)."""
    text = _text(ds)
    modality = str(ds.get("Modality", "")).upper()
    if _LOCALIZER.search(text):
        return None
    if modality == "CT":
        if _SCT.search(text):
            return "sct"
        if _ANGIO_CT.search(text) or str(ds.get("ContrastBolusAgent", "") or "").strip():
            return "angio"
        return "ct"
    if modality == "MR":
        return _mr_role(ds, text)
    return None


def scan_series(folder: Path) -> dict[str, dict]:
    """``SeriesInstanceUID -> {"files": [...], "header": first dataset}`` for every DICOM file under ``folder``."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    series: dict[str, dict] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError):
                continue
            uid = str(ds.get("SeriesInstanceUID", "") or "")
            if not uid:
                continue
            entry = series.setdefault(uid, {"files": [], "header": ds})
            entry["files"].append(path)
    return series


def _label(entry: dict) -> str:
    ds = entry["header"]
    return (f"#{ds.get('SeriesNumber', '?')} {ds.get('Modality', '?')} "
            f"'{ds.get('SeriesDescription', '') or ''}' ({len(entry['files'])} images)")


def _series_folder(files: list[Path], all_files: set[Path], link_dir: Path) -> str:
    """A folder holding exactly ``files``: their own folder when nothing else DICOM is in it, else links."""
    parents = {f.parent for f in files}
    if len(parents) == 1:
        parent = next(iter(parents))
        if not any(f.parent == parent for f in all_files - set(files)):
            return str(parent.resolve())
    link_dir.mkdir(parents=True, exist_ok=True)
    for n, f in enumerate(sorted(files)):
        link = link_dir / f"{n:05d}.dcm"
        if not link.exists():
            os.symlink(f.resolve(), link)
    return str(link_dir.resolve())


def sort_dicom_study(folder, *, work_dir, notes: list[str]) -> dict[str, str]:
    """Role -> series folder for the DICOM study in ``folder``; what was not used goes to ``notes``.

    Raises
    ------
    InputError
        No DICOM series, no usable series, or two series for one role (all series listed).
    """
    folder = Path(folder)
    series = scan_series(folder)
    if not series:
        raise InputError(str(folder), "no input found: expected files named by role (t1.nii.gz, t2.nii.gz, ct/, "
                                      "...; see `spineplan batch -h`) or a DICOM study")
    by_role: dict[str, list[dict]] = {}
    for entry in series.values():
        role = classify_series(entry["header"]) if len(entry["files"]) >= MIN_IMAGES else None
        entry["role"] = role
        if role is None:
            notes.append(f"DICOM series ignored (no role recognised): {_label(entry)}")
        elif role == "dwi":
            notes.append(f"DICOM diffusion series not used (convert to NIfTI + bval/bvec): {_label(entry)}")
        else:
            by_role.setdefault(role, []).append(entry)
    listing = "; ".join(f"{e['role'] or 'unrecognised'}: {_label(e)}" for e in series.values())
    ambiguous = [r for r, es in by_role.items() if len(es) > 1]
    if ambiguous:
        raise InputError(str(folder), f"DICOM study is ambiguous for {', '.join(ambiguous)}: found {listing}; "
                                      "put the series to plan in a folder named by its role, or use a CSV")
    if not by_role:
        raise InputError(str(folder), f"no DICOM series usable for planning: found {listing}")
    all_files = {f for e in series.values() for f in e["files"]}
    notes.extend(f"DICOM series used as {r}: {_label(es[0])}" for r, es in sorted(by_role.items()))
    return {r: _series_folder(es[0]["files"], all_files, Path(work_dir) / r) for r, es in sorted(by_role.items())}
