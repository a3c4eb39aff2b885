"""C-STORE the exported DICOM objects to a PACS or navigation station (pynetdicom), with retries
and one result per object."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from SpinePlannerLib.core.errors import InputError


@dataclass
class SendResult:
    """What happened to one file: ``status`` is the DIMSE status (0 = success) or None when no
    response came; ``attempts`` counts associations it was offered in."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    status: int | None = None
    attempts: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status in (0x0000, 0xB000, 0xB007, 0xB006)


def export_files(folder) -> list[Path]:
    """The DICOM files of an export: ``folder`` is an export folder (holds ``manifest.json``)
    or a plan folder whose ``export/`` holds one. Raises :class:`InputError` otherwise."""
    folder = Path(folder)
    for candidate in (folder, folder / "export"):
        manifest = candidate / "manifest.json"
        if manifest.is_file():
            records = json.loads(manifest.read_text()).get("dicom", [])
            files = [candidate / r["path"] for r in records]
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise InputError(str(folder), f"export incomplete: {missing[0]} is missing")
            if not files:
                raise InputError(str(folder), "the export holds no DICOM object (run spineplan export --format dicom)")
            return files
    raise InputError(str(folder), "no export found (run `spineplan export DIR --format dicom` first)")


def send_files(files, *, host: str, port: int, called_aet: str, calling_aet: str = "SPINEPLAN",
               retries: int = 2, retry_wait_s: float = 1.0, timeout_s: float = 30.0,
               progress=lambda f, m: None) -> list[SendResult]:
    """Send ``files`` with C-STORE; objects that fail (no association, aborted, failure status)
    are offered again in a new association up to ``retries`` more times, ``retry_wait_s`` apart.

    Raises :class:`InputError` when no association could ever be established (wrong host, port
    or AE title).
    """
    import pydicom
    from pynetdicom import AE

    results, datasets = [], {}
    for f in files:
        ds = pydicom.dcmread(f)
        datasets[str(f)] = ds
        results.append(SendResult(Path(f), str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for ctx in sorted({(r.sop_class_uid, str(datasets[str(r.path)].file_meta.TransferSyntaxUID)) for r in results}):
        ae.add_requested_context(ctx[0], [ctx[1], "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    ever_associated = False
    last_reason = ""
    for attempt in range(retries + 1):
        pending = [r for r in results if not r.ok]
        if not pending:
            break
        if attempt:
            time.sleep(retry_wait_s)
        assoc = ae.associate(host, int(port), ae_title=called_aet)
        if not assoc.is_established:
            last_reason = "association rejected" if assoc.is_rejected else "no association (connection refused or timed out)"
            for r in pending:
                r.attempts += 1
                r.message = last_reason
            continue
        ever_associated = True
        try:
            for n, r in enumerate(pending):
                r.attempts += 1
                progress(n / len(pending), f"C-STORE {r.path.name}")
                if not assoc.is_established:
                    r.message = "association lost"
                    continue
                status = assoc.send_c_store(datasets[str(r.path)])
                r.status = int(status.Status) if status and "Status" in status else None
                r.message = "stored" if r.ok else (f"status 0x{r.status:04X}" if r.status is not None else "no response")
        finally:
            if assoc.is_established:
                assoc.release()
    if not ever_associated:
        raise InputError(f"{called_aet}@{host}:{port}", f"{last_reason} after {retries + 1} attempt(s)")
    progress(1.0, "sent")
    return results


def report_lines(results: list[SendResult]) -> list[str]:
    """One line per object: OK/FAILED, file, SOP instance UID, status, attempts."""
    out = []
    for r in results:
        status = f"0x{r.status:04X}" if r.status is not None else "-"
        out.append(f"{'OK    ' if r.ok else 'FAILED'} {r.path.name:<14} {r.sop_instance_uid} status {status} "
                   f"attempts {r.attempts} {'' if r.ok else r.message}".rstrip())
    n_ok = sum(r.ok for r in results)
    out.append(f"{n_ok}/{len(results)} object(s) stored")
    return out
