"""``export_plan``: every requested format of a finished plan folder, written atomically.

Everything is built in a hidden staging folder beside ``out`` and moved into place at the end
(an earlier export in ``out`` is replaced only when the new one is complete); ``manifest.json``
lists every file with its frame, SOP UIDs (DICOM) and volumes (meshes).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.export.plan_folder import PlanFolder, load_plan_folder

FORMATS = ("dicom", "stl", "obj", "gltf")


def parse_formats(text: str) -> tuple[str, ...]:
    """``"dicom,stl"`` / ``"all"`` -> formats; unknown names are bad input."""
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    if names == ["all"]:
        return FORMATS
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise InputError("--format", f"unknown format {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)} or all")
    return tuple(dict.fromkeys(names))


def _export_meshes(pf: PlanFolder, out: Path, formats: tuple[str, ...], frame: str, progress) -> list[dict]:
    from SpinePlannerLib.export.mesh_files import write_glb, write_printable, write_stl_obj
    from SpinePlannerLib.export.meshes import StructureMesh, printable_masks, structure_meshes

    progress(0.0, "meshes: surfaces")
    meshes = structure_meshes(pf.masks, pf.reference.affine, frame=frame)
    voxel_ml = pf.reference.voxel_volume_ml
    by_key = {s.key: m for s, m in pf.masks}
    records = []
    for m in meshes:
        files = write_stl_obj(m, out / "meshes", tuple(f for f in formats if f in ("stl", "obj")))
        for f in files:
            records.append({"path": str(f), "structure": m.structure.key, "frame": f"{frame} mm",
                            "mesh_volume_ml": round(float(m.trimesh().volume) / 1000, 4),
                            "label_volume_ml": round(float(by_key[m.structure.key].sum()) * voxel_ml, 4)})
    if "gltf" in formats:
        progress(0.7, "meshes: glTF scene")
        p = write_glb(meshes, out / "meshes" / "plan.glb")
        records.append({"path": str(p), "what": "glTF 2.0 scene", "frame": f"{frame} mm, root node to glTF metres"})
    if "stl" in formats:
        from SpinePlannerLib.export.meshes import mask_mesh
        from SpinePlannerLib.export.structures import base_structure, vertebra_structure

        parts = []
        for name, mask in printable_masks(pf.masks):
            s = replace(vertebra_structure("spine", 0), key="spine") if name == "spine" else base_structure(name)
            parts.append(StructureMesh(s, *mask_mesh(mask, pf.reference.affine, frame=frame), frame))
        for p in write_printable(parts, out / "meshes" / "print"):
            records.append({"path": str(p), "what": "printable model part (disjoint from the other parts)",
                            "frame": f"{frame} mm"})
    return records


def export_plan(folder, out=None, *, formats=FORMATS, deidentify: bool = False, frame: str = "LPS",
                progress=lambda f, m: None, reference=None, reference_dicom_files=None) -> dict:
    """Export the plan in ``folder`` to ``out`` (default ``folder/export``); returns the manifest.

    ``reference`` / ``reference_dicom_files``: see :func:`~SpinePlannerLib.export.plan_folder.load_plan_folder`.

    Raises :class:`InputError` for a folder that is not a finished plan, or an ``out`` inside
    the inputs.
    """
    pf = load_plan_folder(folder, reference=reference, reference_dicom_files=reference_dicom_files)
    out = Path(out) if out else pf.folder / "export"
    if not pf.masks:
        raise InputError(str(folder), "the plan holds no label map to export (labels/ empty)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        manifest = {"plan": str(pf.folder) if not deidentify else "(withheld: --deidentify)",
                    "reference_role": pf.reference_role, "reference_was_dicom": pf.reference_is_dicom,
                    "deidentified": bool(deidentify), "mesh_frame": frame, "dicom": [], "meshes": []}
        if "dicom" in formats:
            from SpinePlannerLib.export.dicom_export import export_dicom

            manifest["dicom"] = export_dicom(pf, staging / "dicom", deidentify=deidentify,
                                             progress=lambda f, m: progress(0.6 * f, m))
        mesh_formats = tuple(f for f in formats if f != "dicom")
        if mesh_formats:
            manifest["meshes"] = _export_meshes(pf, staging, mesh_formats, frame,
                                                lambda f, m: progress(0.6 + 0.4 * f, m))
        for group in ("dicom", "meshes"):
            for rec in manifest[group]:
                rec["path"] = str(Path(rec["path"]).relative_to(staging))
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_json_default))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(1.0, "export done")
    manifest["out"] = str(out)
    return manifest


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)
