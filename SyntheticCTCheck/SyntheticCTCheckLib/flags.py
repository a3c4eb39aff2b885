"""Flags, disagreement, verdict and approach hint of the synthetic-CT check (L1).

Each flag has a stable ``code``, a ``severity`` (``info`` / ``warning`` / ``critical``) and a
plain message with the numbers behind it. ``disagreement`` is true when any lesion flag says
the synthetic CT shows the lesion differently from the CT (or from the MRI's signal voids).
The approach hints follow the published surgical consequence of tumour hardness for
intradural extramedullary tumours (see CLINICAL.md §4); they are decision support.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .bone_agreement import BoneAgreement
from .calcification import VoidResult, class_rank
from .lesion_stats import LesionStats
from .params import ClassCutoffs, FlagParams
from .registration import RegistrationResult

SEVERITIES = ("info", "warning", "critical")

DISAGREEMENT_CODES = frozenset({
    "CALCIFICATION_MISSED_ON_SCT", "CALCIFICATION_UNDERGRADED_ON_SCT", "SCT_UNDERESTIMATES_DENSITY",
    "SCT_OVERESTIMATES_DENSITY", "LESION_NOT_DEPICTED_ON_SCT", "SCT_SPURIOUS_HYPERDENSITY",
    "MRI_VOIDS_MISSED_ON_SCT",
})
"""Flag codes that make ``disagreement`` true."""


@dataclass(frozen=True)
class Flag:
    code: str
    severity: str
    message: str

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def as_dict(self) -> dict:
        return asdict(self)


def _size(s: LesionStats) -> str:
    return f"{s.lesion_axial_diameter_mm:.1f} x {s.lesion_craniocaudal_mm:.1f} mm"


def lesion_flags(ct: LesionStats | None, sct: LesionStats, *, params: FlagParams | None = None,
                 voids: VoidResult | None = None) -> list[Flag]:
    """Flags comparing what CT (and a T2*/SWI MRI) and the synthetic CT show in the lesion."""
    p = params or FlagParams()
    flags: list[Flag] = []
    if ct is not None:
        ct_calc = ct.calcified_volume_ml >= p.min_calcified_volume_ml and ct.calcification_class != "none"
        sct_absent = (sct.calcification_class == "none"
                      and sct.calcified_volume_ml < max(p.min_calcified_volume_ml, 0.1 * ct.calcified_volume_ml))
        if ct_calc and sct_absent:
            flags.append(Flag("CALCIFICATION_MISSED_ON_SCT", "critical",
                              f"calcification present on CT ({ct.mean_hu:.0f} HU, {ct.calcified_volume_ml:.2f} mL, "
                              f"class {ct.calcification_class}) but absent on synthetic CT ({sct.mean_hu:.0f} HU)"))
        elif ct_calc and class_rank(sct.calcification_class) < class_rank(ct.calcification_class):
            flags.append(Flag("CALCIFICATION_UNDERGRADED_ON_SCT", "warning",
                              f"synthetic CT grades the lesion {sct.calcification_class} ({sct.mean_hu:.0f} HU), "
                              f"CT {ct.calcification_class} ({ct.mean_hu:.0f} HU)"))
        diff = ct.mean_hu - sct.mean_hu
        if abs(diff) >= p.density_difference_hu:
            sev = "critical" if abs(diff) >= p.critical_difference_hu else "warning"
            if diff > 0:
                flags.append(Flag("SCT_UNDERESTIMATES_DENSITY", sev,
                                  f"synthetic CT under-estimates lesion density by {diff:.0f} HU "
                                  f"(CT {ct.mean_hu:.0f} HU, synthetic CT {sct.mean_hu:.0f} HU)"))
            else:
                flags.append(Flag("SCT_OVERESTIMATES_DENSITY", sev,
                                  f"synthetic CT over-estimates lesion density by {-diff:.0f} HU "
                                  f"(CT {ct.mean_hu:.0f} HU, synthetic CT {sct.mean_hu:.0f} HU)"))
        if ct.visible and not sct.visible:
            flags.append(Flag("LESION_NOT_DEPICTED_ON_SCT", "critical",
                              f"lesion not depicted on synthetic CT (CT shows a {_size(ct)} hyperdense lesion; "
                              "synthetic CT 0 x 0 mm)"))
        elif sct.visible and not ct.visible:
            flags.append(Flag("SCT_SPURIOUS_HYPERDENSITY", "warning",
                              f"synthetic CT shows a hyperdense lesion ({_size(sct)}) that CT does not"))
    if voids is not None and voids.suggests_calcification:
        seq = voids.sequence.upper()
        if sct.calcification_class == "none" and not sct.visible:
            flags.append(Flag("MRI_VOIDS_MISSED_ON_SCT", "critical",
                              f"MRI suggests calcification (signal voids of {voids.void_volume_mm3:.0f} mm^3, "
                              f"{100 * voids.void_fraction:.0f} % of the lesion on {seq}) but synthetic CT shows none "
                              f"({sct.mean_hu:.0f} HU)" + ("" if ct is not None else
                                                           ": obtain a CT before choosing the approach")))
        else:
            flags.append(Flag("MRI_SUGGESTS_CALCIFICATION", "info",
                              f"MRI suggests calcification (signal voids of {voids.void_volume_mm3:.0f} mm^3 on {seq})"))
        if ct is not None and ct.calcification_class == "none":
            flags.append(Flag("MRI_VOIDS_WITHOUT_CT_CALCIFICATION", "info",
                              f"signal voids on {seq} without calcification on CT: blood products (haemosiderin) or "
                              "flow are more likely than calcium"))
    return flags


def context_flags(*, bone: BoneAgreement | None, registration: RegistrationResult | None,
                  bone_mae_warn_hu: float, residual_warn_mm: float, lesion_disagrees: bool,
                  notes: list[str] = ()) -> list[Flag]:
    """Flags about alignment and bone agreement (they qualify the lesion flags)."""
    flags: list[Flag] = []
    if registration is not None and registration.residual_mm is not None and registration.residual_mm > residual_warn_mm:
        flags.append(Flag("REGISTRATION_RESIDUAL_HIGH", "warning",
                          f"CT and synthetic CT bone surfaces are {registration.residual_mm:.1f} mm apart after "
                          f"alignment ({registration.method}; > {residual_warn_mm:g} mm): lesion values may mix "
                          "in neighbouring tissue"))
    if bone is not None and bone.mae_hu is not None:
        if bone.mae_hu > bone_mae_warn_hu:
            flags.append(Flag("BONE_DISAGREEMENT", "warning",
                              f"synthetic CT differs from CT in bone too (MAE {bone.mae_hu:.0f} HU, "
                              f"bias {bone.bias_hu:+.0f} HU; > {bone_mae_warn_hu:g} HU)"))
        elif lesion_disagrees:
            flags.append(Flag("BONE_AGREES_LESION_DISAGREES", "info",
                              f"synthetic CT agrees with CT in bone (MAE {bone.mae_hu:.0f} HU, bias "
                              f"{bone.bias_hu:+.0f} HU) but not in the lesion: its accuracy in bone does not carry "
                              "over to intradural tumours (outside its validated domain)"))
    for note in notes:
        flags.append(Flag("ROI_NOTE", "warning", note))
    return flags


def is_disagreement(flags: list[Flag]) -> bool:
    return any(f.code in DISAGREEMENT_CODES for f in flags)


HARD_HINT = ("hard (densely calcified) tumour: for an intradural extramedullary tumour consider a midline/bilateral "
             "exposure (laminectomy or laminoplasty), resection from the periphery inwards with an ultrasonic "
             "bone-cutting tip, and no downward pressure on the cord")
PARTIAL_HINT = ("partly calcified tumour: hardness uncertain; prepare for a hard tumour (bilateral exposure, "
                "ultrasonic bone-cutting tip) even if a unilateral approach is planned")
SOFT_HINT = ("soft (non- or barely calcified) tumour: a unilateral hemilaminectomy with central debulking first, then "
             "dissection, is feasible, even ventral to the dentate ligament or with > 90 % canal occupancy")


def verdict_and_hint(ct: LesionStats | None, sct: LesionStats, flags: list[Flag], *,
                     voids: VoidResult | None = None, cutoffs: ClassCutoffs | None = None,
                     compartment: str | None = None) -> tuple[str, str]:
    """The verdict (naming the consequence) and the approach hint for hard vs soft tumours."""
    cutoffs = cutoffs or ClassCutoffs()
    crit = [f for f in flags if f.code in DISAGREEMENT_CODES and f.severity == "critical"]
    dis = [f for f in flags if f.code in DISAGREEMENT_CODES]
    if dis:
        verdict = f"synthetic CT cannot replace CT for this lesion: {(crit or dis)[0].message}"
    elif ct is not None:
        verdict = (f"synthetic CT agrees with CT in this lesion (class {ct.calcification_class} on CT, "
                   f"{sct.calcification_class} on synthetic CT); this does not validate it for other lesions")
    else:
        verdict = ("no CT to compare with: the synthetic CT can neither confirm nor exclude calcification in an "
                   "intradural tumour (outside its validated domain)")
    if ct is not None:
        cls, source = ct.calcification_class, f"CT class {ct.calcification_class} ({ct.mean_hu:.0f} HU)"
        hint = {"dense": HARD_HINT, "partial": PARTIAL_HINT}.get(cls, SOFT_HINT)
    elif voids is not None and voids.suggests_calcification:
        source, hint = "MRI signal voids (no CT)", "possibly calcified (MRI signal voids): obtain a CT; " + PARTIAL_HINT
    else:
        source, hint = "no CT", "hardness unknown without CT: obtain a CT if calcification would change the approach"
    hint = (f"{hint} [from {source}; class cut-offs: {cutoffs.describe()}; no single HU cut-off is supported "
            "(laminoplasty 766 vs unilateral 260 HU, p = 0.129)]")
    if compartment and compartment not in ("intradural_extramedullary", "unknown"):
        hint = (f"no hardness-based approach hint: those hints are for intradural extramedullary tumours and this "
                f"one is classified {compartment.replace('_', ' ')} ({source})")
    return verdict, hint
