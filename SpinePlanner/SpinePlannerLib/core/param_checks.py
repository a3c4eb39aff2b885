"""Validation helpers shared by the parameter dataclasses of every module (``__post_init__``).

Each raises ``ValueError`` naming the parameter, its allowed range and the value given.
"""

from __future__ import annotations

import math


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """``value > 0`` (or ``>= 0`` with ``allow_zero``)."""
    if not (value >= 0 if allow_zero else value > 0):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_range(name: str, value: float, lo: float, hi: float) -> None:
    """``lo <= value <= hi``."""
    if not (lo <= value <= hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {value}")


def check_fraction(name: str, value: float) -> None:
    """``0 <= value <= 1``."""
    check_range(name, value, 0.0, 1.0)


def check_min_max(name: str, value) -> tuple[float, float]:
    """``value`` is ``(min, max)`` with ``0 < min < max``; returns it as floats."""
    lo, hi = value
    if not 0 < lo < hi:
        raise ValueError(f"{name} must be (min, max) with 0 < min < max, got {value}")
    return float(lo), float(hi)


UNIT_RANGES: dict[str, tuple[float, float]] = {
    "_mm": (-1000.0, 1000.0),       # lengths, margins, steps: the whole spine is < 1 m
    "_mm3": (0.0, 1e6),             # volumes up to 1 L
    "_ml": (0.0, 1000.0),
    "_hu": (-1100.0, 4000.0),       # CT numbers: air -1000 .. dense cortical bone/metal
    "_deg": (-180.0, 180.0),
    "_voxels": (0.0, 1e9),
}
"""Allowed range of every numeric setting by the suffix of its name (unit); specific settings
check tighter ranges in their dataclass (e.g. tracking step 0.05..5 mm)."""

NAME_RANGES: dict[str, tuple[float, float]] = {
    "n_threads": (0, 1024),
    "random_seed": (0, 2**32 - 1),
    "seed": (0, 2**32 - 1),
}
"""Allowed range of settings known by name (counts and random seeds)."""

MAX_COUNT = 1e9
"""Any other integer setting (counts) lies in [-MAX_COUNT, MAX_COUNT]."""


def check_numeric_fields(obj) -> None:
    """Every int/float field of the dataclass ``obj`` is finite, within its unit's range
    (:data:`UNIT_RANGES`, :data:`NAME_RANGES`), and integral where the field is an ``int``.

    Raises ``ValueError`` naming the field, its range and the value. Call first in ``__post_init__``.
    """
    from dataclasses import fields

    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            raise ValueError(f"{f.name} must be a finite number, got {value}")
        is_int = f.type in ("int", int)
        if is_int and value != int(value):
            raise ValueError(f"{f.name} must be an integer, got {value}")
        lo, hi = NAME_RANGES.get(f.name, (None, None))
        if lo is None:
            lo, hi = next((r for suffix, r in UNIT_RANGES.items() if f.name.endswith(suffix)), (None, None))
        if lo is None and is_int:
            lo, hi = -MAX_COUNT, MAX_COUNT
        if lo is not None:
            check_range(f.name, value, lo, hi)
        if is_int:
            setattr(obj, f.name, int(value))
