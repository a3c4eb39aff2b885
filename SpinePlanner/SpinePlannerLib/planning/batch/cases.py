"""The cases of a batch: a CSV table or a folder of case folders (``spineplan batch CASES``).

CSV (one row per case; header required; paths relative to the CSV's folder or absolute):

====================  =====================================================================
column                meaning (same as the ``spineplan plan`` option)
====================  =====================================================================
``case``              case id, also the name of its plan folder (letters, digits, ``._-``);
                      default ``case<row>``
``t1 t2 t1c stir``    images by role: a file (NIfTI, NRRD, MHA) or a DICOM series folder
``swi gre ct sct``
``angio``
``dwi bval bvec``     diffusion MRI (4D NIfTI with FSL bval/bvec, or a NRRD DWI)
``tumor_seg``         tumor label map (``--tumor-seg``); ``cord_seg`` likewise
``tumor_seed``        a point inside the tumor, RAS mm: ``"R,A,S"`` (quoted) or ``R A S``
``level_anchor``      ``"LEVEL,R,A,S"`` or ``LEVEL R A S`` (``--level-anchor``)
``params``            a ``--params`` JSON file
====================  =====================================================================

Folder of case folders: ``CASES/<case id>/`` holds the inputs named by role, each a file
``<role>.nii.gz`` (or ``.nii``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``) or a DICOM series folder
``<role>/``; roles as the CSV columns above (the diffusion gradients may also be named
``dwi.bval``/``dwi.bvec``), plus optionally ``tumor_seed.txt`` (``R,A,S``), ``params.json``
and ``case.json`` (``{"tumor_seed": [R, A, S], "level_anchor": "T10,0,-5,40", "params": {...}}``).
A case folder with no role-named input but DICOM files is a DICOM study: its series are
sorted into roles by their DICOM attributes (:mod:`.dicom_study`). Other files are ignored.

A problem with the table itself (unknown column, duplicate or unsafe case id, no case) is an
:class:`InputError` for the whole batch; a problem with one case (a missing file, an ambiguous
DICOM study) is recorded on that case (``BatchCase.error``) and the other cases still run.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.planning.context import ROLES

IMAGE_COLUMNS = tuple(r for r in ROLES if r != "dwi")
PATH_COLUMNS = IMAGE_COLUMNS + ("dwi", "bval", "bvec", "tumor_seg", "cord_seg", "params")
VALUE_COLUMNS = ("tumor_seed", "level_anchor")
COLUMNS = ("case",) + PATH_COLUMNS + VALUE_COLUMNS
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
RESERVED_IDS = ("cohort", "batch_logs", "index.html", "batch.json", "batch.csv")
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass
class BatchCase:
    """One case of a batch: where it came from, its input paths and options, or why it cannot run.

    ``paths`` maps a CSV column (role, ``bval``, ``tumor_seg``, ``params``, ...) to an absolute
    path; ``tumor_seed`` is ``"R,A,S"`` in RAS mm; ``params`` holds inline stage overrides (from a
    ``case.json``), merged under those of a ``params`` file.
    """

    case_id: str
    source: str
    paths: dict[str, str] = field(default_factory=dict)
    tumor_seed: str | None = None
    level_anchor: str | None = None
    params: dict = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def describe_inputs(self) -> dict:
        """What the case's inputs are, JSON-serialisable (recorded in batch.json and hashed)."""
        return {"paths": dict(sorted(self.paths.items())), "tumor_seed": self.tumor_seed,
                "level_anchor": self.level_anchor, "params": self.params}

    def to_inputs(self):
        """The :class:`~SpinePlannerLib.planning.pipeline.CaseInputs` of this case.

        Raises
        ------
        InputError
            A discovery error, an unreadable params file, a malformed seed or anchor.
        """
        from SpinePlannerLib.planning.params_file import (
            merge_level_anchor,
            read_stage_params,
            validate_stage_params,
        )
        from SpinePlannerLib.planning.pipeline import CaseInputs

        if self.error:
            raise InputError(self.source, self.error)
        params = dict(self.params)
        if self.paths.get("params"):
            params = {**params, **read_stage_params(self.paths["params"])}
        params = validate_stage_params(params, name=f"{self.source} params")
        if self.level_anchor:
            params = merge_level_anchor(params, _commas(self.level_anchor))
        p = self.paths
        return CaseInputs(images={r: p[r] for r in IMAGE_COLUMNS if p.get(r)}, params=params, dwi=p.get("dwi"),
                          bval=p.get("bval"), bvec=p.get("bvec"), tumor_seg=p.get("tumor_seg"),
                          cord_seg=p.get("cord_seg"), tumor_seed_ras=parse_seed(self.tumor_seed, self.source))


def _commas(text: str) -> str:
    return ",".join(t for t in re.split(r"[\s,;]+", text.strip()) if t)


def parse_seed(text, where: str):
    """``"R,A,S"`` / ``"R A S"`` / ``[R, A, S]`` -> a tuple of three floats (RAS mm), or None."""
    if text is None or text == "":
        return None
    parts = text if isinstance(text, list | tuple) else _commas(str(text)).split(",")
    try:
        values = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        raise InputError(f"{where} tumor_seed", f"expected R,A,S in mm, got {text!r}") from None
    if len(values) != 3:
        raise InputError(f"{where} tumor_seed", f"expected three numbers R,A,S, got {len(values)}")
    return values


def check_case_ids(cases: list[BatchCase], where: str) -> list[BatchCase]:
    """Raise :class:`InputError` for an unsafe or duplicate case id or an empty batch."""
    if not cases:
        raise InputError(where, "no case found (see `spineplan batch -h` for the CSV columns and the folder layout)")
    seen: dict[str, str] = {}
    for c in cases:
        if not SAFE_ID.match(c.case_id):
            raise InputError(c.source, f"case id {c.case_id!r} must be letters, digits, '.', '_' or '-' "
                                       "(it names the plan folder)")
        if c.case_id.lower() in RESERVED_IDS:
            raise InputError(c.source, f"case id {c.case_id!r} is the name of a batch output; rename the case")
        if c.case_id in seen:
            raise InputError(c.source, f"case id {c.case_id!r} repeats {seen[c.case_id]}")
        seen[c.case_id] = c.source
    return cases


def read_cases_csv(csv_path) -> list[BatchCase]:
    """The cases of a CSV table (columns :data:`COLUMNS`), paths resolved against its folder."""
    path = Path(csv_path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = [(c or "").strip().lower() for c in (reader.fieldnames or [])]
        unknown = [c for c in fields if c not in COLUMNS]
        if unknown:
            raise InputError(str(path), f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
        if not any(c in PATH_COLUMNS for c in fields):
            raise InputError(str(path), "no input column (need at least one of " + ", ".join(IMAGE_COLUMNS) + ", dwi)")
        cases = []
        for line, raw in enumerate(reader, start=2):
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(row.values()):
                continue
            case = BatchCase(case_id=row.get("case") or f"case{len(cases) + 1}", source=f"{path.name} line {line}",
                             tumor_seed=row.get("tumor_seed") or None, level_anchor=row.get("level_anchor") or None)
            for col in PATH_COLUMNS:
                if row.get(col):
                    p = Path(row[col]).expanduser()
                    case.paths[col] = str((p if p.is_absolute() else path.parent / p).resolve())
            missing = [f"{c} ({Path(v).name})" for c, v in case.paths.items() if not Path(v).exists()]
            if missing:
                case.error = f"file not found: {', '.join(missing)}"
            cases.append(case)
    return check_case_ids(cases, str(path))


def _role_of(entry: Path) -> str | None:
    name = entry.name.lower()
    if entry.is_dir():
        return name if name in IMAGE_COLUMNS + ("dwi",) else None
    if name in ("dwi.bval", "bval", "bvals", "dwi.bvals"):
        return "bval"
    if name in ("dwi.bvec", "bvec", "bvecs", "dwi.bvecs"):
        return "bvec"
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in IMAGE_COLUMNS + ("dwi", "tumor_seg", "cord_seg"):
            return name[: -len(suffix)]
    return None


def _read_case_json(folder: Path, case: BatchCase) -> None:
    meta_path = folder / "case.json"
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(str(meta_path), f"not valid JSON ({exc})") from None
        unknown = set(meta) - {"tumor_seed", "level_anchor", "params"}
        if not isinstance(meta, dict) or unknown:
            raise InputError(str(meta_path), "expected an object with tumor_seed, level_anchor, params; "
                                             f"unknown keys: {', '.join(sorted(unknown))}")
        seed = meta.get("tumor_seed")
        case.tumor_seed = ",".join(str(v) for v in seed) if isinstance(seed, list) else seed
        case.level_anchor = meta.get("level_anchor")
        case.params = meta.get("params") or {}
    seed_txt = folder / "tumor_seed.txt"
    if seed_txt.is_file():
        case.tumor_seed = seed_txt.read_text().strip()
    if (folder / "params.json").is_file():
        case.paths["params"] = str((folder / "params.json").resolve())


def case_from_folder(folder: Path, *, work_dir: Path) -> BatchCase:
    """One case folder: role-named inputs, else a DICOM study sorted into roles.

    ``work_dir`` receives per-role folders of links when the series of a DICOM study share a folder.
    """
    from SpinePlannerLib.planning.batch.dicom_study import sort_dicom_study

    case = BatchCase(case_id=folder.name, source=f"case folder {folder.name}")
    try:
        found: dict[str, list[Path]] = {}
        for entry in sorted(folder.iterdir()):
            role = _role_of(entry)
            if role and not entry.name.startswith("."):
                found.setdefault(role, []).append(entry)
        twice = {r: [p.name for p in ps] for r, ps in found.items() if len(ps) > 1}
        if twice:
            raise InputError(case.source, "more than one input for a role: "
                             + "; ".join(f"{r}: {', '.join(n)}" for r, n in twice.items()))
        case.paths = {r: str(ps[0].resolve()) for r, ps in found.items()}
        _read_case_json(folder, case)
        if not found:
            case.paths.update(sort_dicom_study(folder, work_dir=work_dir / folder.name, notes=case.notes))
    except InputError as exc:
        case.error = exc.problem if exc.name == case.source else str(exc)
    return case


def discover_cases(source, *, work_dir) -> list[BatchCase]:
    """The cases of ``source``: a CSV file or a folder of case folders (see the module docstring)."""
    src = Path(source)
    if src.is_file():
        return read_cases_csv(src)
    if not src.is_dir():
        raise InputError(str(src), "cases not found: give a CSV file or a folder of case folders")
    folders = [p for p in sorted(src.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return check_case_ids([case_from_folder(p, work_dir=Path(work_dir)) for p in folders], str(src))
