"""Load a case, run the planning stages, and write the outputs atomically.

``run_plan`` is what ``spineplan plan`` and ``spineplan demo`` call. Inputs are validated
completely before anything is written (bad input -> :class:`InputError`, nothing on disk);
outputs are built in a hidden staging folder beside the output folder and moved into place at
the end, ``plan.json`` last, so a folder with a ``plan.json`` is always complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from SpinePlannerLib import __version__
from SpinePlannerLib.core.dwi_io import read_dwi
from SpinePlannerLib.core.errors import InputError
from SpinePlannerLib.core.geometry import resample_mask_like, world_overlap_fraction
from SpinePlannerLib.core.imageio import read_volume, write_text_atomic, write_volume
from SpinePlannerLib.planning.context import (
    ROLES,
    PlanContext,
    Progress,
    StageResult,
    StageSkipped,
    no_progress,
)
from SpinePlannerLib.planning.params_file import validate_stage_params
from SpinePlannerLib.planning.plan_schema import validate_plan
from SpinePlannerLib.planning.registry import STAGES

SCHEMA_VERSION = 1


@dataclass
class CaseInputs:
    """Paths (files or DICOM folders) by role, plus optional segmentations and a tumor seed (RAS mm)."""

    images: dict[str, str] = field(default_factory=dict)  # role -> path (not dwi)
    dwi: str | None = None
    bval: str | None = None
    bvec: str | None = None
    tumor_seg: str | None = None
    cord_seg: str | None = None
    tumor_seed_ras: tuple[float, float, float] | None = None
    params: dict = field(default_factory=dict)  # stage section -> overrides (see stage_params)

    def as_dict(self) -> dict[str, str]:
        d = {k: str(v) for k, v in self.images.items()}
        for key in ("dwi", "bval", "bvec", "tumor_seg", "cord_seg"):
            if getattr(self, key):
                d[key] = str(getattr(self, key))
        return d


def load_label(path: str, option: str, reference) -> object:
    """Read a label map and carry it (as 0/1) onto ``reference`` through world coordinates."""
    lab = read_volume(path, option)
    if not np.any(lab.array):
        raise InputError(option, "label map is empty (no non-zero voxel)")
    if world_overlap_fraction(lab, reference) <= 0.0:
        raise InputError(option, "label map does not overlap the reference image in world (RAS) coordinates")
    out = resample_mask_like(lab, reference)
    if not np.any(out.array):
        raise InputError(option, "label map overlaps no voxel of the reference image")
    out.name = option.lstrip("-").replace("-seg", "")
    return out


def check_seed_inside(seed, reference, role: str, name: str) -> None:
    """Raise :class:`InputError` ``name`` when the RAS point ``seed`` (mm) lies outside ``reference``."""
    if not reference.contains_ras(seed):
        lo, hi = reference.bounds_ras()
        raise InputError(name, f"point {np.round(seed, 2).tolist()} is outside the {role} image "
                               f"(RAS bounds {np.round(lo, 1).tolist()} .. {np.round(hi, 1).tolist()} mm)")


def load_case(inputs: CaseInputs) -> PlanContext:
    """Read and validate every input. Raises :class:`InputError` naming the first bad one."""
    ctx = PlanContext(inputs=inputs.as_dict(), params=validate_stage_params(dict(inputs.params)))
    for role, path in inputs.images.items():
        if role not in ROLES or role == "dwi":
            raise InputError(f"--{role}", "unknown image role")
        vol = read_volume(path, f"--{role}")
        vol.name = role
        ctx.volumes[role] = vol
    if inputs.dwi:
        ctx.dwi = read_dwi(inputs.dwi, inputs.bval, inputs.bvec)
        ctx.dwi.volume.name = "dwi"
    elif inputs.bval or inputs.bvec:
        raise InputError("--bval" if inputs.bval else "--bvec", "given without --dwi")
    ref = ctx.reference
    if ref is None and (inputs.tumor_seg or inputs.cord_seg or inputs.tumor_seed_ras is not None):
        raise InputError("--tumor-seg/--cord-seg/--tumor-seed", "needs an anatomical image (t2, t1, t1c or ct)")
    if inputs.tumor_seg:
        ctx.labels["tumor"] = load_label(inputs.tumor_seg, "--tumor-seg", ref)
        ctx.given_labels.add("tumor")
    if inputs.cord_seg:
        ctx.labels["cord"] = load_label(inputs.cord_seg, "--cord-seg", ref)
        ctx.given_labels.add("cord")
    if inputs.tumor_seed_ras is not None:
        seed = np.asarray(inputs.tumor_seed_ras, float)
        if seed.shape != (3,) or not np.all(np.isfinite(seed)):
            raise InputError("--tumor-seed", "expected three numbers R,A,S in mm")
        check_seed_inside(seed, ref, ctx.reference_role, "--tumor-seed")
        ctx.tumor_seed_ras = seed
    if not ctx.volumes and ctx.dwi is None:
        raise InputError("inputs", "no image given (need at least one of --t1 --t2 --t1c --stir --ct --sct --dwi --angio)")
    return ctx


def apply_result(ctx: PlanContext, name: str, result: StageResult, *, finished: bool = True) -> None:
    """Record a stage's result in ``ctx``: its plan sections (keys merged into each section), its
    warnings, its label maps and, with a staging folder, its export files. ``finished=False``
    (a skipped stage's partial result) reports the plan sections and warnings only."""
    for section, values in result.to_plan().items():
        ctx.plan[section] = {**(ctx.plan.get(section) or {}), **values}
    for text in result.warnings:
        ctx.warn(text)
    if not finished:
        return
    ctx.results[name] = result
    ctx.labels.update(result.labels)
    if ctx.staging_dir is not None:
        ctx.exports.update(result.write_exports(Path(ctx.staging_dir)))


def run_stages(ctx: PlanContext, *, progress_factory=None, only: list[str] | None = None) -> None:
    """Run the registered stages in order, recording status, reason and seconds for each."""
    stages = ctx.plan.setdefault("stages", {})
    for spec in STAGES:
        if only is not None and spec.name not in only:
            continue
        progress: Progress = progress_factory(spec.name) if progress_factory else no_progress
        t0 = time.perf_counter()
        record = {"status": "done", "reason": "", "seconds": 0.0}
        try:
            apply_result(ctx, spec.name, spec.load()(ctx, progress))
        except StageSkipped as exc:
            record.update(status="skipped", reason=str(exc))
            if exc.result is not None:
                apply_result(ctx, spec.name, exc.result, finished=False)
        except InputError:
            raise
        except Exception as exc:  # a failed stage must not take the whole plan down
            record.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
            ctx.tracebacks[spec.name] = traceback.format_exc()
            ctx.warn(f"stage {spec.name} failed: {exc}")
        record["seconds"] = round(time.perf_counter() - t0, 3)
        stages[spec.name] = record


def new_plan(ctx: PlanContext) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "software": {"name": "spineplan", "version": __version__},
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "inputs": dict(ctx.inputs),
        "reference_role": ctx.reference_role,
        "parameters": ctx.params,
        "stages": {},
        "warnings": [],
        "tumor": {},
        "cord": {},
    }


def write_labels(ctx: PlanContext, folder: Path) -> dict[str, str]:
    """Write every label map as ``folder/<structure>.nii.gz`` on the reference grid."""
    written = {}
    for name, lab in sorted(ctx.labels.items()):
        arr = lab.array
        dtype = np.uint8 if arr.max(initial=0) < 256 else np.uint16
        write_volume(lab.with_array(arr.astype(dtype)), folder / f"{name}.nii.gz")
        written[name] = f"labels/{name}.nii.gz"
    return written


def json_default(obj):
    """``json.dump`` fallback for numpy scalars/arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(data: dict, path: Path) -> None:
    """``data`` as indented JSON (NaN refused) written atomically to ``path``."""
    write_text_atomic(path, json.dumps(data, indent=2, default=json_default, allow_nan=False) + "\n")


def publish_staged(staging: Path, out_dir: Path) -> None:
    """Move staged outputs into ``out_dir`` (plan.json last)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    items = sorted(staging.iterdir(), key=lambda p: p.name == "plan.json")
    for item in items:
        target = out_dir / item.name
        if item.is_dir():
            if target.exists():
                old = out_dir / f".{item.name}.old-{os.getpid()}"
                os.replace(target, old)
                os.replace(item, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(item, target)
        else:
            os.replace(item, target)


def run_plan(inputs: CaseInputs, out_dir, *, progress_factory=None, write_scene: bool = True,
             extra_plan: dict | None = None) -> dict:
    """Load, plan and write ``out_dir/plan.json``, ``scene.mrb`` and ``labels/``. Returns the plan."""
    out_dir = Path(out_dir)
    ctx = load_case(inputs)  # raises InputError before anything is written
    ctx.plan = new_plan(ctx)
    if extra_plan:
        ctx.plan.update(extra_plan)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    try:
        ctx.staging_dir = staging
        run_stages(ctx, progress_factory=progress_factory)
        labels = write_labels(ctx, staging / "labels")
        ctx.plan["outputs"] = {"plan": "plan.json", "labels": labels}
        if write_scene:
            from SpinePlannerLib.mrml.scene import build_scene

            t0 = time.perf_counter()
            progress = progress_factory("scene") if progress_factory else no_progress
            build_scene(ctx, staging / "scene.mrb", progress=progress)
            ctx.plan["outputs"]["scene"] = "scene.mrb"
            ctx.plan["stages"]["scene"] = {"status": "done", "reason": "", "seconds": round(time.perf_counter() - t0, 3)}
        ctx.plan["outputs"].update(ctx.exports)
        validate_plan(ctx.plan)
        write_json_atomic(ctx.plan, staging / "plan.json")
        publish_staged(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ctx.plan
