"""Validation helpers shared by the parameter dataclasses of every module (``__post_init__``).

Each raises ``ValueError`` naming the parameter, its allowed range and the value given.
"""

from __future__ import annotations


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
