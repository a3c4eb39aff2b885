"""Compare two plan folders (or two plan.json files): same plan except key order, timings and paths.

Used to prove that a refactoring leaves behaviour unchanged::

    python Utilities/compare_plans.py OLD_DIR NEW_DIR [--labels] [--tol 0]

What is ignored: key order, ``created_utc``, ``software``, each stage's ``seconds``, and the folder
part of any path (``inputs``, ``outputs``: only the part below the plan folder is compared).
With ``--labels`` the label maps under ``labels/`` must also hold identical voxels on identical
grids. Exit status 0 when equal, 1 with one line per difference otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

IGNORED_KEYS = {"created_utc", "software", "seconds"}


def _normalise_path(value: str, roots: tuple[str, ...]) -> str:
    for root in roots:
        if value.startswith(root):
            return "<plan>" + value[len(root):]
    return value


def diff(a, b, where: str = "", *, roots_a=(), roots_b=(), tol: float = 0.0) -> list[str]:
    """Differences between two JSON values as ``path: old != new`` lines."""
    out: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key in IGNORED_KEYS:
                continue
            if key not in a:
                out.append(f"{where}/{key}: only in new")
            elif key not in b:
                out.append(f"{where}/{key}: only in old")
            else:
                out += diff(a[key], b[key], f"{where}/{key}", roots_a=roots_a, roots_b=roots_b, tol=tol)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: list length {len(a)} != {len(b)}")
        else:
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                out += diff(x, y, f"{where}[{i}]", roots_a=roots_a, roots_b=roots_b, tol=tol)
    elif isinstance(a, str) and isinstance(b, str):
        if _normalise_path(a, roots_a) != _normalise_path(b, roots_b):
            out.append(f"{where}: {a!r} != {b!r}")
    elif isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, int | float) and isinstance(b, int | float)):
        if a != b:
            out.append(f"{where}: {a!r} != {b!r}")
    elif not (a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol * max(1.0, abs(a), abs(b))):
        out.append(f"{where}: {a!r} != {b!r}")
    return out


def _plan_file(path: Path) -> Path:
    return path / "plan.json" if path.is_dir() else path


def compare_labels(old: Path, new: Path) -> list[str]:
    import nibabel as nib
    import numpy as np

    out = []
    names_old = {p.name for p in (old / "labels").glob("*.nii.gz")}
    names_new = {p.name for p in (new / "labels").glob("*.nii.gz")}
    out += [f"labels/{n}: only in old" for n in sorted(names_old - names_new)]
    out += [f"labels/{n}: only in new" for n in sorted(names_new - names_old)]
    for name in sorted(names_old & names_new):
        a, b = nib.load(old / "labels" / name), nib.load(new / "labels" / name)
        if a.shape != b.shape or not np.allclose(a.affine, b.affine, atol=1e-6):
            out.append(f"labels/{name}: grid differs")
        elif not np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj)):
            n = int(np.count_nonzero(np.asarray(a.dataobj) != np.asarray(b.dataobj)))
            out.append(f"labels/{name}: {n} voxels differ")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--labels", action="store_true", help="also compare labels/*.nii.gz voxel by voxel")
    ap.add_argument("--tol", type=float, default=0.0, help="relative tolerance for numbers (default 0: exact)")
    args = ap.parse_args(argv)
    a = json.loads(_plan_file(args.old).read_text())
    b = json.loads(_plan_file(args.new).read_text())
    roots_a = (str(args.old.resolve()), str(args.old)) if args.old.is_dir() else ()
    roots_b = (str(args.new.resolve()), str(args.new)) if args.new.is_dir() else ()
    lines = diff(a, b, roots_a=roots_a, roots_b=roots_b, tol=args.tol)
    if args.labels and args.old.is_dir() and args.new.is_dir():
        lines += compare_labels(args.old, args.new)
    for line in lines:
        print(line)
    print(f"{'identical' if not lines else f'{len(lines)} differences'}: {args.old} vs {args.new}", file=sys.stderr)
    return 0 if not lines else 1


if __name__ == "__main__":
    sys.exit(main())
