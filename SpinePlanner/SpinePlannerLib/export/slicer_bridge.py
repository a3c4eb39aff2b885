"""What the SpinePlanner module's export buttons call (L2: nodes and the DICOM database are
passed in; nothing here imports slicer, qt or vtk).

The module writes its plan folder first (``mrml.logic.export_plan``); these functions then
export that folder through the same code as ``spineplan export`` / ``send`` / ``igtl``, with the
reference image taken from its scene node (plan.json names scene nodes, not files, for images
loaded in Slicer).
"""

from __future__ import annotations

from pathlib import Path

from SpinePlannerLib.export.run import FORMATS, export_plan


def dicom_files_of_node(node, dicom_database) -> list[str] | None:
    """The files of the DICOM series a volume node was loaded from (Slicer's
    ``DICOM.instanceUIDs`` attribute looked up in ``slicer.dicomDatabase``), or None."""
    uids = (node.GetAttribute("DICOM.instanceUIDs") or "").split() if node is not None else []
    if not uids or dicom_database is None:
        return None
    files = [dicom_database.fileForInstance(uid) for uid in uids]
    return files if all(files) else None


def export_from_scene(plan_folder, reference_node, *, formats=FORMATS, out=None, deidentify: bool = False,
                      dicom_database=None, progress=lambda f, m: None) -> dict:
    """Export a plan folder written by the module; ``reference_node`` is the volume node of the
    plan's reference image (the grid of ``labels/``). Returns the manifest."""
    from SpinePlannerLib.mrml.volumes import volume_from_node

    return export_plan(Path(plan_folder), out, formats=tuple(formats), deidentify=deidentify, progress=progress,
                       reference=volume_from_node(reference_node),
                       reference_dicom_files=dicom_files_of_node(reference_node, dicom_database))


def send_export(export_folder, *, host: str, port: int, called_aet: str, calling_aet: str = "SPINEPLAN") -> list[str]:
    """C-STORE an export folder; returns the per-object report lines."""
    from SpinePlannerLib.export.send import export_files, report_lines, send_files

    return report_lines(send_files(export_files(export_folder), host=host, port=port, called_aet=called_aet,
                                   calling_aet=calling_aet))


def push_to_igtl(plan_folder, reference_node, *, host: str = "127.0.0.1", port: int = 18944) -> list[str]:
    """Stream a plan folder over OpenIGTLink (e.g. to another Slicer running OpenIGTLinkIF)."""
    from SpinePlannerLib.export.igtl import push_plan
    from SpinePlannerLib.export.plan_folder import load_plan_folder
    from SpinePlannerLib.mrml.volumes import volume_from_node

    pf = load_plan_folder(plan_folder, reference=volume_from_node(reference_node))
    return push_plan(pf, host=host, port=port)
