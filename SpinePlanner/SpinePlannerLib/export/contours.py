"""Planar contours of a binary mask on each reference slice, and their rasterisation back
(the test of every RTSTRUCT export).

Contours are the 0.5 iso-lines of the slice mask (``skimage.measure.find_contours``, marching
squares on the zero-padded slice), so each closed polygon runs half way between the voxel
centres inside and outside; holes are separate contours (rasterise with even-odd filling).
"""

from __future__ import annotations

import numpy as np


def slice_contours(mask2d: np.ndarray, *, min_points: int = 3) -> list[np.ndarray]:
    """Closed polygons (N, 2) in continuous ``(i, j)`` voxel indices of one ``[i, j]`` slice.

    The closing point (equal to the first) is dropped; polygons with fewer than ``min_points``
    vertices are skipped.
    """
    from skimage.measure import find_contours

    padded = np.pad(np.asarray(mask2d, float), 1)
    out = []
    for c in find_contours(padded, 0.5):
        c = c - 1.0
        if len(c) > 1 and np.allclose(c[0], c[-1]):
            c = c[:-1]
        if len(c) >= min_points:
            out.append(c)
    return out


def rasterize_contours(polygons: list[np.ndarray], shape2d: tuple[int, int]) -> np.ndarray:
    """Even-odd fill of polygons in ``(i, j)`` indices onto a boolean ``[i, j]`` slice (a voxel is
    inside when its centre is)."""
    from skimage.draw import polygon as draw_polygon

    out = np.zeros(shape2d, bool)
    for poly in polygons:
        rr, cc = draw_polygon(poly[:, 0], poly[:, 1], shape=shape2d)
        layer = np.zeros(shape2d, bool)
        layer[rr, cc] = True
        out ^= layer
    return out
