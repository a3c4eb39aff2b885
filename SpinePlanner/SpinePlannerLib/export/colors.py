"""sRGB (0..1) to the DICOM CIELab encoding (0..65535, D65) used by SEG and RTSTRUCT displays."""

from __future__ import annotations

import numpy as np


def rgb_to_cielab(rgb) -> tuple[float, float, float]:
    """sRGB 0..1 -> (L* 0..100, a* -128..127, b* -128..127), D65 white."""
    c = np.clip(np.asarray(rgb, float), 0, 1)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = (116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2]))
    return float(np.clip(lab[0], 0, 100)), float(np.clip(lab[1], -128, 127)), float(np.clip(lab[2], -128, 127))


def rgb_255(rgb) -> list[int]:
    """sRGB 0..1 -> [0..255] integers (RTSTRUCT ROIDisplayColor, glTF vertex colours)."""
    return [int(round(255 * float(np.clip(v, 0, 1)))) for v in rgb]
