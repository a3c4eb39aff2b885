"""Matplotlib helpers shared by the report figures: headless backend, PNG bytes, scale bars, letters.

PNG files carry no date or software string, so the same plan gives the same bytes.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 150  # print resolution of the report pictures (dots per inch)

plt.rcParams.update({"font.size": 8, "font.family": "DejaVu Sans", "axes.titlesize": 9, "figure.dpi": DPI,
                     "savefig.dpi": DPI, "path.simplify": False})


def new_figure(width_in: float, height_in: float, ncols: int = 1, nrows: int = 1, **kw):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width_in, height_in), squeeze=False, **kw)
    return fig, axes.ravel()


def png_bytes(fig) -> bytes:
    """The figure as PNG (no metadata: deterministic), then closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    return buf.getvalue()


def scale_bar(ax, length_mm: float, extent_mm: tuple[float, float], *, color="white") -> None:
    """A ``length_mm`` bar in the lower right of an image drawn with ``extent`` in mm."""
    x1, y0 = extent_mm[0] - 3, -extent_mm[1] + 3
    ax.plot([x1 - length_mm, x1], [y0, y0], color=color, lw=2.5, solid_capstyle="butt")
    ax.text(x1 - length_mm / 2, y0 + 1.5, f"{length_mm:g} mm", color=color, ha="center", va="bottom", fontsize=7)


def edge_letters(ax, half_u: float, half_v: float, left: str, right: str, top: str, bottom: str,
                 *, color="white") -> None:
    """Orientation letters (R/L/A/P/S/I) at the four edges of an image panel."""
    kw = {"color": color, "fontsize": 9, "fontweight": "bold", "ha": "center", "va": "center"}
    ax.text(-half_u + 2.5, 0, left, **kw)
    ax.text(half_u - 2.5, 0, right, **kw)
    ax.text(0, half_v - 2.5, top, **kw)
    ax.text(0, -half_v + 2.5, bottom, **kw)
