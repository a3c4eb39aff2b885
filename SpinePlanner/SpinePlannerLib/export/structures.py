"""What each exported structure is called, coded and coloured (one table for SEG, RTSTRUCT,
meshes and OpenIGTLink).

Codes are SNOMED-CT (``SCT``) concepts as used in the Slicer scene's terminology tags
(:data:`SpinePlannerLib.segmentation.stage.TERMINOLOGY`); colours are the scene's
(:data:`SpinePlannerLib.mrml.scene.STRUCTURE_COLORS`, RGB 0..1). Pure Python, no imports of
the scene layer (the table is checked against it by a test).
"""

from __future__ import annotations

from dataclasses import dataclass

ANATOMY = ("SCT", "123037004", "Anatomical Structure")
ALTERED = ("SCT", "49755003", "Morphologically Altered Structure")


@dataclass(frozen=True)
class Structure:
    """One exported structure.

    ``key`` is the file stem / label name (``cord``, ``vertebra_T10``, ``feeder``, ...);
    ``category`` and ``kind`` are (scheme, code, meaning) triples; ``color`` is RGB 0..1;
    ``rt_role`` is the RTSTRUCT ``RTROIInterpretedType`` (``ORGAN``, ``GTV``, ``AVOIDANCE``, ...).
    """

    key: str
    label: str
    category: tuple
    kind: tuple
    color: tuple
    rt_role: str = "ORGAN"


_BASE = {
    # key: (label, category, type, colour, RT role)
    "tumor": ("tumor", ALTERED, ("SCT", "108369006", "Neoplasm"), (0.9, 0.2, 0.2), "GTV"),
    "cord": ("spinal cord", ANATOMY, ("SCT", "2748008", "Spinal cord"), (1.0, 0.9, 0.6), "ORGAN"),
    "csf": ("thecal sac", ANATOMY, ("SCT", "65216001", "Cerebrospinal fluid"), (0.55, 0.8, 1.0), "ORGAN"),
    "cyst": ("cyst", ALTERED, ("SCT", "441457006", "Cyst"), (0.3, 0.5, 1.0), "ORGAN"),
    "edema": ("edema", ALTERED, ("SCT", "79654002", "Edema"), (0.5, 0.9, 0.3), "ORGAN"),
    "bone": ("bone", ANATOMY, ("SCT", "272673000", "Bone"), (0.95, 0.9, 0.8), "ORGAN"),
    "calcification": ("calcification", ALTERED, ("SCT", "18115005", "Pathologic calcification"),
                      (1.0, 1.0, 1.0), "ORGAN"),
    "sct_disagreement": ("calcification missed by synthetic CT", ALTERED,
                         ("SCT", "18115005", "Pathologic calcification"), (1.0, 0.6, 0.0), "ORGAN"),
}
"""Binary masks of ``labels/<key>.nii.gz``, in export order (tumor first)."""

VESSEL_ROLES = {
    # label value in labels/vessels.nii.gz: (key, label, type, colour)
    1: ("vessel", "vessel", ("SCT", "59820001", "Blood vessel"), (0.8, 0.1, 0.1)),
    2: ("feeder", "tumor feeder (feeding/draining candidate)", ("SCT", "51114001", "Artery"), (1.0, 0.85, 0.0)),
    3: ("adamkiewicz", "artery of Adamkiewicz candidate", ("SCT", "51114001", "Artery"), (1.0, 0.0, 1.0)),
    4: ("anterior_spinal_artery", "anterior spinal artery", ("SCT", "51114001", "Artery"), (1.0, 0.4, 0.4)),
    5: ("draining_vein", "draining vein", ("SCT", "29092000", "Vein"), (0.2, 0.3, 0.9)),
}
"""Roles of the vessel label map (values as in ``vessels/vessel_roles.nii.gz``)."""

VERTEBRA_KIND = ("SCT", "272673000", "Bone")
TRACT_KIND = ("SCT", "2748008", "Spinal cord")


def base_structure(key: str) -> Structure:
    label, category, kind, color, role = _BASE[key]
    return Structure(key, label, category, kind, color, role)


def vertebra_structure(level: str, index: int) -> Structure:
    """A vertebra by level name (``T10``); colour a fixed bone shade varied by index."""
    shade = 0.72 + 0.05 * (index % 4)
    return Structure(f"vertebra_{level}", f"{level} vertebra", ANATOMY, VERTEBRA_KIND, (shade, shade * 0.95, 0.75))


def vessel_structure(value: int) -> Structure:
    key, label, kind, color = VESSEL_ROLES[value]
    return Structure(key, label, ANATOMY, kind, color, "AVOIDANCE" if value in (3, 4) else "ORGAN")


def tract_structure() -> Structure:
    return Structure("tract_volume", "cord tracts (voxels crossed by a streamline)", ANATOMY, TRACT_KIND,
                     (0.3, 0.5, 1.0), "ORGAN")


def base_keys() -> tuple[str, ...]:
    return tuple(_BASE)
