"""One HTML section per planning stage, with its pictures and the plan's numbers (see html.py)."""

from __future__ import annotations

from . import figures_charts, figures_slices
from .html import esc, img, num, rows, stage_status
from .planfolder import PlanFolder


def segmentation_section(folder: PlanFolder, view3d: tuple) -> str:
    plan = folder.plan
    seg = plan.get("segmentation") or {}
    cord = seg.get("cord") or {}
    vert = plan.get("vertebrae") or {}
    table = rows([
        ("cord", f"{esc(cord.get('reason', ''))} ({esc(cord.get('method', ''))} on {esc(cord.get('image', ''))})"
         if cord else None),
        ("cord volume", num("cord.volume_ml", (plan.get("cord") or {}).get("volume_ml"), ".2f", "mL")),
        ("thecal sac volume", num("segmentation.cord.thecal_sac_volume_ml", cord.get("thecal_sac_volume_ml"), ".2f", "mL")
         if "thecal_sac_volume_ml" in cord else None),
        ("tumor", esc((seg.get("tumor") or {}).get("method", "")) or None),
        ("vertebrae", f"{esc(vert.get('reason', ''))}; levels named from the {esc(vert.get('method', '?'))}"
         f"{'' if vert.get('reliable') else ' (not reliable: confirm)'}" if vert else None),
        ("cyst", esc((seg.get("cyst") or {}).get("reason", "")) or None),
        ("edema", esc((seg.get("edema") or {}).get("reason", "")) or None),
    ])
    png3d, method = view3d
    return (f'<section class="stage" id="segmentation"><h2>Segmentation and anatomy</h2>'
            f"{stage_status(plan, 'segmentation')}<table>{table}</table>"
            + img(figures_slices.anatomy_figure(folder), "axial and sagittal slices through the tumor",
                  "Axial and sagittal slices through the tumor centre on the reference image, with the outlines of "
                  "the segmented structures and the vertebrae with their level names.")
            + img(png3d, "3D view of the plan", f"3D view ({method}): vertebrae, thecal sac, cord, tumor, the tracts "
                  "behind the tumor coloured by direction, and the vessels with the feeding/draining candidates "
                  "highlighted; parallel projection, so the scale bar holds everywhere.")
            + "</section>")


def tumor_section(plan: dict) -> str:
    t = plan.get("tumor") or {}
    occ = t.get("canal_occupancy") or {}
    comp = t.get("cord_compression") or {}
    table = rows([
        ("volume", num("tumor.volume_ml", t.get("volume_ml"), ".3f", "mL")),
        ("max axial diameter (⊥ cord axis)", num("tumor.max_axial_diameter_mm", t.get("max_axial_diameter_mm"), ".1f", "mm")),
        ("cranio-caudal extent", num("tumor.craniocaudal_extent_mm", t.get("craniocaudal_extent_mm"), ".1f", "mm")),
        ("compartment", esc(t.get("compartment", "")) or None),
        ("levels spanned", esc(", ".join(t.get("levels_spanned") or [])) or None),
        ("canal occupancy", num("tumor.canal_occupancy.fraction", occ.get("fraction"), ".3f")
         + f" at {esc(occ.get('level'))}" if occ else None),
        ("cord compression", esc(comp.get("reason") or comp.get("area_ratio")) if comp else None),
        ("centroid (RAS)", esc(t.get("centroid_ras")) + " mm" if t.get("centroid_ras") else None),
    ])
    return (f'<section class="stage" id="tumor_measurement"><h2>Tumor measurement</h2>'
            f"{stage_status(plan, 'tumor_measurement')}<table>{table}</table></section>")


def tractography_section(folder: PlanFolder) -> str:
    plan = folder.plan
    tr = plan.get("tractography") or {}
    if not tr:
        return (f'<section class="stage" id="tractography"><h2>Tractography (DTI)</h2>'
                f"{stage_status(plan, 'tractography')}</section>")
    table = rows([
        ("verdict", esc(tr.get("resectability", ""))),
        ("Setzer type", num("tractography.setzer_type", tr.get("setzer_type"))),
        ("rule applied", esc(tr.get("rule", "")) or None),
        ("streamlines", num("tractography.n_streamlines", tr.get("n_streamlines"))),
        ("fraction entering / terminating in the tumor",
         num("tractography.fraction_entering_tumor", tr.get("fraction_entering_tumor"), ".3f") + " / "
         + num("tractography.fraction_terminating_in_tumor", tr.get("fraction_terminating_in_tumor"), ".3f")),
        ("FA tumor / around it / cord reference",
         num("tractography.fa_tumor", tr.get("fa_tumor"), ".3f") + " / "
         + num("tractography.fa_peritumoral", tr.get("fa_peritumoral"), ".3f") + " / "
         + num("tractography.fa_cord_reference", tr.get("fa_cord_reference"), ".3f")),
        ("MD in the tumor", num("tractography.md_tumor", tr.get("md_tumor"), ".2e", "mm²/s")),
        ("reliable", esc("yes" if tr.get("reliable") else "no: " + "; ".join(tr.get("reasons") or []))),
    ])
    return (f'<section class="stage" id="tractography"><h2>Tractography (DTI)</h2>'
            f"{stage_status(plan, 'tractography')}<table>{table}</table>"
            + img(figures_slices.fa_tracts_figure(folder), "FA map with tracts",
                  "FA map through the tumor with the streamlines near each plane (coloured by direction).")
            + img(figures_charts.fa_profile_figure(folder), "FA along the cord",
                  "FA sampled on the cord centerline every 1 mm of height; the tumor's cranio-caudal extent shaded.")
            + "</section>")


def sct_section(folder: PlanFolder) -> str:
    plan = folder.plan
    s = plan.get("synthetic_ct_check") or {}
    if not s:
        return (f'<section class="stage" id="synthetic_ct_check"><h2>Synthetic CT check</h2>'
                f"{stage_status(plan, 'synthetic_ct_check')}</section>")
    ct, sct = s.get("ct") or {}, s.get("sct") or {}

    def pair(key, fmt, unit):
        left = num(f"synthetic_ct_check.ct.{key}", ct.get(key), fmt, unit) if ct else "no CT"
        return left + " / " + num(f"synthetic_ct_check.sct.{key}", sct.get(key), fmt, unit)

    flags = "".join(f"<li>{esc(f['severity'])}: {esc(f['message'])}</li>" for f in s.get("flags") or [])
    table = rows([
        ("verdict", esc(s.get("verdict", ""))),
        ("mean HU, CT / synthetic CT", pair("mean_hu", ".1f", "HU")),
        ("calcified volume, CT / synthetic CT", pair("calcified_volume_ml", ".3f", "mL")),
        ("lesion axial size, CT / synthetic CT", pair("lesion_axial_diameter_mm", ".1f", "mm")),
        ("class, CT / synthetic CT", esc(f"{ct.get('calcification_class', '-')} / {sct.get('calcification_class', '-')}")),
        ("bone MAE / bias", num("synthetic_ct_check.bone.mae_hu", (s.get("bone") or {}).get("mae_hu"), ".1f", "HU")
         + " / " + num("synthetic_ct_check.bone.bias_hu", (s.get("bone") or {}).get("bias_hu"), "+.1f", "HU")),
        ("approach hint", esc(s.get("approach_hint", "")) or None),
        ("flags", f"<ul>{flags}</ul>" if flags else "none"),
    ])
    return (f'<section class="stage" id="synthetic_ct_check"><h2>Synthetic CT check</h2>'
            f"{stage_status(plan, 'synthetic_ct_check')}<table>{table}</table>"
            + img(figures_slices.ct_sct_figure(folder), "CT and synthetic CT at the lesion",
                  "CT and synthetic CT, axial through the tumor centre (window −250…1250 HU), tumor outlined.")
            + img(figures_charts.hu_histogram_figure(folder), "HU histograms of the lesion",
                  "HU of the tumor voxels on CT and on the synthetic CT.")
            + "</section>")


def vessels_section(folder: PlanFolder) -> str:
    plan = folder.plan
    v = plan.get("vessels") or {}
    if not v:
        return f'<section class="stage" id="vessels"><h2>Vessels</h2>{stage_status(plan, "vessels")}</section>'
    feeders = "".join(
        f"<tr><td>{num(f'vessels.feeders.{i}.rank', f.get('rank'))}</td><td>{esc(f.get('level'))} {esc(f.get('side'))}</td>"
        f"<td>{num(f'vessels.feeders.{i}.diameter_mm', f.get('diameter_mm'), '.2f', 'mm')}</td>"
        f"<td>{num(f'vessels.feeders.{i}.length_mm', f.get('length_mm'), '.1f', 'mm')}</td>"
        f"<td>{esc(f.get('entry_ras'))}</td><td>{esc(f.get('parent') or '')}</td></tr>"
        for i, f in enumerate(v.get("feeders") or []))
    ak = v.get("adamkiewicz_candidate") or {}
    head = rows([
        ("detectable", esc("yes" if v.get("detectable") else f"no: {v.get('reason', '')}")),
        ("branches", num("vessels.n_branches", v.get("n_branches"))),
        ("Adamkiewicz candidate", esc(f"{ak.get('level')} {ak.get('side')}, entry {ak.get('entry_ras')} mm")
         + " " + num("vessels.adamkiewicz_candidate.diameter_mm", ak.get("diameter_mm"), ".2f", "mm")
         if ak.get("present") else esc(ak.get("reason", "not found"))),
        ("phase", esc(v.get("phase", "")) or None),
        ("warnings", esc("; ".join(v.get("warnings") or [])) or "none"),
    ])
    table = ("<table><tr><th>rank</th><th>level, side</th><th>diameter</th><th>length</th><th>entry (RAS mm)</th>"
             f"<th>parent</th></tr>{feeders}</table>") if feeders else "<p>No feeding/draining candidates.</p>"
    return (f'<section class="stage" id="vessels"><h2>Vessels</h2>{stage_status(plan, "vessels")}'
            f"<table>{head}</table><h3>Feeding/draining candidates</h3>{table}"
            + img(figures_charts.vessel_tree_figure(folder), "vessel tree with feeders",
                  "Vessel centerlines seen from behind and from the left; feeder entry points labelled by rank, "
                  "level, side and diameter; the tumor as a red cloud.")
            + "</section>")


def stages_table(plan: dict) -> str:
    body = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(st.get('status'))}</td><td>{esc(st.get('reason', ''))}</td>"
        f"<td>{num(f'stages.{name}.seconds', st.get('seconds'), '.1f', 's')}</td></tr>"
        for name, st in (plan.get("stages") or {}).items())
    return ("<h3>Stages</h3><table><tr><th>stage</th><th>status</th><th>reason</th><th>time</th></tr>"
            f"{body}</table>")


def all_sections(folder: PlanFolder, view3d: tuple) -> str:
    """Every stage section; ``view3d`` is :func:`figures_3d.view_3d_figure`'s (png, method)."""
    return "\n".join([segmentation_section(folder, view3d), tumor_section(folder.plan),
                      tractography_section(folder), sct_section(folder), vessels_section(folder),
                      f'<section id="stages">{stages_table(folder.plan)}</section>'])
