"""Regenerate the parts of the Slicer modules that follow the Lib: parameter mirrors, .ui, CMakeLists.

* the ``@parameterPack`` classes that mirror the Lib parameter dataclasses, written into each
  ``<Module>.py`` between the ``BEGIN/END PARAMETER MIRRORS`` markers (with ``PARAMETER_MIRRORS``);
* ``<Module>/Resources/UI/<Module>.ui``: fixed widgets plus one bound widget per scalar setting
  (``SlicerParameterName`` = the dotted parameter name), ranges wide enough for every default;
* ``<Module>/CMakeLists.txt``: every file of the module folder, so that Slicer installs it.

Run after changing a Lib parameter dataclass or adding a Lib file (``--check`` only reports what
would change, exit status 1 when something would). The static tests
(``Testing/test_slicer_static_*.py``) fail until the files are in sync.

    python Utilities/sync_slicer_modules.py [--check]
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import pathlib
import re
import types
import typing
from xml.sax.saxutils import escape

ROOT = pathlib.Path(__file__).resolve().parents[1]
BEGIN = "# BEGIN PARAMETER MIRRORS (mirror the Lib dataclasses field by field; Testing/test_slicer_static_parameters.py checks)"
END = "# END PARAMETER MIRRORS"

# (Lib class qualified name, field) -> name of the Lib constant holding the allowed values
CHOICES = {
    ("DTITractographyLib.params.TensorFitParams", "method"): "FIT_METHODS",
    ("DTITractographyLib.params.TrackingParams", "algorithm"): "TRACKING_ALGORITHMS",
    ("SpinePlannerLib.vessels.params.VesselParams", "modality"): "MODALITIES",
    ("SpinePlannerLib.segmentation.params.SegmentationParams", "cord_engine"): "ENGINES",
    ("SpinePlannerLib.segmentation.params.SegmentationParams", "tumor_engine"): "ENGINES",
    ("SpinePlannerLib.approach.params.ClinicalInputs", "pain"): "PAIN_VALUES",
}

ACRONYMS = {"fa": "FA", "hu": "HU", "asa": "ASA", "snr": "SNR", "roi": "ROI", "mri": "MRI", "ct": "CT",
            "sd": "SD", "mae": "MAE", "ras": "RAS", "mr": "MR", "dwi": "DWI", "id": "ID"}
UNITS = {"mm": " mm", "mm2": " mm²", "mm3": " mm³", "ml": " mL", "hu": " HU", "deg": "°"}


def qualname(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def pack_name(cls) -> str:
    return f"{cls.__name__}Pack"


def lib_class(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def field_docs(cls) -> dict[str, str]:
    doc = inspect.getdoc(cls) or ""
    lines = doc.splitlines()
    out, current, in_attrs = {}, None, False
    for i, line in enumerate(lines):
        if line.strip() in ("Attributes", "Parameters") and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            in_attrs = True
            continue
        if not in_attrs or set(line.strip()) == {"-"}:
            continue
        m = re.match(r"^(\w+(?:, \w+)*) : (.*)$", line)
        if m:
            current = [n.strip() for n in m.group(1).split(",")]
            for n in current:
                out[n] = ""
        elif line.startswith("    ") and current:
            for n in current:
                out[n] = (out[n] + " " + line.strip()).strip()
        elif line.strip() == "":
            continue
        else:
            in_attrs = False
    return out


def is_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and len(args) == 2:
            return next(a for a in args if a is not type(None))
    return None


def type_source(tp, default, owner, fname) -> str:
    """Annotation text for the shell (parameterNodeWrapper-compatible)."""
    inner = is_optional(tp)
    if inner is not None:
        return f"Optional[{type_source(inner, None, owner, fname)}]"
    if dataclasses.is_dataclass(tp):
        return pack_name(tp)
    if tp in (int, float, str, bool):
        return tp.__name__
    if tp is pathlib.Path:
        return "pathlib.Path"
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if args:
            return f"{origin.__name__}[{', '.join(type_source(a, None, owner, fname) for a in args)}]"
    if tp is tuple or origin is tuple:
        if default is None or len(default) == 0:
            raise TypeError(f"{owner}.{fname}: bare tuple without default")
        return f"tuple[{', '.join(type(v).__name__ for v in default)}]"
    if tp is list or origin is list:
        if fname.endswith("_ras"):
            return "list[tuple[float, float, float]]"
        raise TypeError(f"{owner}.{fname}: bare list")
    raise TypeError(f"{owner}.{fname}: unsupported type {tp!r}")


def lit(value) -> str:
    """Python literal with double-quoted strings."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(lit(v) for v in value) + "]"
    if isinstance(value, tuple):
        inner = ", ".join(lit(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)


def default_of(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def gen_packs(root_classes: list) -> tuple[str, dict]:
    """Source of @parameterPack classes for the Lib dataclasses (dependencies first)."""
    order, seen = [], set()

    def visit(cls):
        if cls in seen:
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                visit(tp)
        order.append(cls)

    for c in root_classes:
        visit(c)
    chunks, mirrors = [], {}
    for cls in order:
        hints = typing.get_type_hints(cls)
        lines = ["@parameterPack", f"class {pack_name(cls)}:",
                 f'    """Mirror of :class:`{qualname(cls)}` (same fields, types and defaults)."""', ""]
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            d = default_of(f)
            ann = type_source(tp, d, qualname(cls), f.name)
            key = (qualname(cls), f.name)
            noqa = "  # noqa: UP045 - parameterNodeWrapper needs typing.Optional" if ann.startswith("Optional[") else ""
            if key in CHOICES:
                values = getattr(importlib.import_module(cls.__module__), CHOICES[key])
                ann = f"Annotated[{ann}, Choice({lit(list(values))})]"
            if dataclasses.is_dataclass(tp):
                lines.append(f"    {f.name}: {ann}")
            else:
                lines.append(f"    {f.name}: {ann} = {lit(d)}{noqa}")
        chunks.append("\n".join(lines))
        mirrors[pack_name(cls)] = qualname(cls)
    body = "\n\n\n".join(chunks)
    mirror_lines = ",\n".join(f'    "{k}": "{v}"' for k, v in mirrors.items())
    text = (f"{BEGIN}\n\n\n{body}\n\n\nPARAMETER_MIRRORS = {{\n{mirror_lines},\n}}\n"
            f'"""Parameter pack -> the Lib dataclass it mirrors (checked by the static tests)."""\n{END}')
    return text, mirrors


# -- .ui ----------------------------------------------------------------------------------------
def label_of(name: str) -> tuple[str, str]:
    parts = name.split("_")
    unit = ""
    if parts and parts[-1] in UNITS and len(parts) > 1:
        unit = UNITS[parts.pop()]
    words = [ACRONYMS.get(p, p) for p in parts]
    text = " ".join(words)
    return text[:1].upper() + text[1:], unit


def camel(path: list[str]) -> str:
    out = path[0]
    for p in path[1:]:
        out += "".join(w[:1].upper() + w[1:] for w in p.split("_"))
    return out


class Ui:
    def __init__(self, cls_name: str):
        self.cls = cls_name
        self.custom = set()
        self.mrml_widgets = []
        self.names = set()

    def uniq(self, name):
        assert name not in self.names, name
        self.names.add(name)
        return name

    @staticmethod
    def prop(name, kind, value, stdset=True):
        extra = "" if stdset else ' stdset="0"'
        if kind == "string":
            inner = f"<string>{escape(value)}</string>"
        elif kind == "bool":
            inner = f"<bool>{'true' if value else 'false'}</bool>"
        elif kind == "double":
            inner = f"<double>{value!r}</double>"
        elif kind == "number":
            inner = f"<number>{int(value)}</number>"
        elif kind == "stringlist":
            inner = "<stringlist>" + "".join(f"<string>{escape(v)}</string>" for v in value) + "</stringlist>"
        elif kind == "enum":
            inner = f"<enum>{value}</enum>"
        elif kind == "set":
            inner = f"<set>{value}</set>"
        else:
            raise ValueError(kind)
        return f'<property name="{name}"{extra}>{inner}</property>'

    def widget(self, cls, name, props=(), param=None, children=""):
        if cls.startswith(("ctk", "qMRML", "qSlicer")):
            self.custom.add(cls)
        if cls.startswith(("qMRML", "qSlicer")):
            self.mrml_widgets.append(name)
        p = list(props)
        if param:
            p.append(self.prop("SlicerParameterName", "string", param, stdset=False))
        return f'<widget class="{cls}" name="{self.uniq(name)}">' + "".join(p) + children + "</widget>"

    def form(self, name, rows):
        items = []
        for r, row in enumerate(rows):
            if isinstance(row, str):
                items.append(f'<item row="{r}" column="0" colspan="2">{row}</item>')
            else:
                label, w = row
                lab = self.widget("QLabel", f"{name}Label{r}", [self.prop("text", "string", label)])
                items.append(f'<item row="{r}" column="0">{lab}</item><item row="{r}" column="1">{w}</item>')
        return f'<layout class="QFormLayout" name="{self.uniq(name)}">' + "".join(items) + "</layout>"

    def vbox(self, name, widgets):
        return f'<layout class="QVBoxLayout" name="{self.uniq(name)}">' + "".join(
            f"<item>{w}</item>" for w in widgets) + "</layout>"

    def collapsible(self, name, title, layout, collapsed=False, group_box=False):
        cls = "ctkCollapsibleGroupBox" if group_box else "ctkCollapsibleButton"
        props = [self.prop("title" if group_box else "text", "string", title)]
        if collapsed:
            props.append(self.prop("collapsed", "bool", True))
        return self.widget(cls, name, props, children=layout)

    def node_combo(self, name, types, param, tooltip, *, none=True, add=False, base_name=None, rename=False):
        props = [self.prop("toolTip", "string", tooltip), self.prop("nodeTypes", "stringlist", types),
                 self.prop("showChildNodeTypes", "bool", False), self.prop("noneEnabled", "bool", none),
                 self.prop("addEnabled", "bool", add), self.prop("removeEnabled", "bool", add),
                 self.prop("renameEnabled", "bool", rename or add)]
        if base_name:
            props.append(self.prop("baseName", "string", base_name))
        return self.widget("qMRMLNodeComboBox", name, props, param)

    def button(self, name, text, tooltip, enabled=True):
        props = [self.prop("text", "string", text), self.prop("toolTip", "string", tooltip)]
        if not enabled:
            props.append(self.prop("enabled", "bool", False))
        return self.widget("QPushButton", name, props)

    def field_rows(self, cls, prefix: list[str], param_prefix: str):
        """Form rows for the scalar fields of a Lib dataclass; nested dataclasses -> sub-groups."""
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        rows, groups, skipped = [], [], []
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            path = [*prefix, f.name]
            param = f"{param_prefix}.{f.name}"
            tip = docs.get(f.name, "")
            label, unit = label_of(f.name)
            d = default_of(f)
            key = (qualname(cls), f.name)
            if dataclasses.is_dataclass(tp):
                groups.append((f.name, tp, path, param))
                continue
            props = [self.prop("toolTip", "string", tip)] if tip else []
            if key in CHOICES:
                rows.append((label + ":", self.widget("QComboBox", camel(path) + "ComboBox", props, param)))
            elif tp is bool:
                rows.append((label + ":", self.widget("QCheckBox", camel(path) + "CheckBox", props, param)))
            elif tp is int:
                props += [self.prop("minimum", "number", 0 if d >= 0 else -1_000_000),
                          self.prop("maximum", "number", 2_000_000_000)]
                if unit:
                    props.append(self.prop("suffix", "string", unit))
                rows.append((label + ":", self.widget("QSpinBox", camel(path) + "SpinBox", props, param)))
            elif tp is float:
                decimals = 4 if (d and abs(d) < 0.01) else 3
                step = 10 ** (math.floor(math.log10(abs(d))) - 1) if d else 0.1
                step = max(step, 10 ** -decimals)
                lo = -100000.0 if (d < 0 or unit == " HU") else 0.0
                props += [self.prop("decimals", "number", decimals), self.prop("minimum", "double", lo),
                          self.prop("maximum", "double", 1_000_000.0), self.prop("singleStep", "double", float(step))]
                if unit:
                    props.append(self.prop("suffix", "string", unit))
                rows.append((label + ":", self.widget("QDoubleSpinBox", camel(path) + "SpinBox", props, param)))
            elif tp is str:
                rows.append((label + ":", self.widget("QLineEdit", camel(path) + "LineEdit", props, param)))
            else:
                skipped.append(f.name)
        if skipped:
            note = ("Not shown (set from the Python console through the parameter node): "
                    + ", ".join(skipped) + ".")
            rows.append(self.widget("QLabel", camel(prefix) + "NotShownLabel",
                                    [self.prop("text", "string", note), self.prop("wordWrap", "bool", True),
                                     self.prop("enabled", "bool", False)]))
        return rows, groups

    def params_section(self, cls, prefix: list[str], param_prefix: str, title: str, collapsed: bool, expanded=()):
        rows, groups = self.field_rows(cls, prefix, param_prefix)
        for gname, gcls, gpath, gparam in groups:
            grows, ggroups = self.field_rows(gcls, gpath, gparam)
            assert not ggroups, "two levels of nesting are not generated"
            box = self.collapsible(camel(gpath) + "GroupBox", label_of(gname)[0],
                                   self.form(camel(gpath) + "FormLayout", grows),
                                   collapsed=gname not in expanded, group_box=True)
            rows.append(box)
        return self.collapsible(camel(prefix) + "CollapsibleButton", title,
                                self.form(camel(prefix) + "FormLayout", rows), collapsed=collapsed)

    def document(self, widgets: list[str]) -> str:
        spacer = ('<spacer name="verticalSpacer"><property name="orientation"><enum>Qt::Vertical</enum></property>'
                  '<property name="sizeHint" stdset="0"><size><width>20</width><height>40</height></size>'
                  "</property></spacer>")
        layout = '<layout class="QVBoxLayout" name="verticalLayout">' + "".join(
            f"<item>{w}</item>" for w in widgets) + f"<item>{spacer}</item></layout>"
        self.custom.add("qMRMLWidget")
        top = f'<widget class="qMRMLWidget" name="{self.cls}">' + layout + "</widget>"
        bases = {"ctkCollapsibleButton": ("QWidget", True), "ctkCollapsibleGroupBox": ("QGroupBox", True),
                 "qMRMLNodeComboBox": ("QWidget", False), "qMRMLWidget": ("QWidget", True),
                 "qSlicerWidget": ("QWidget", True), "qSlicerMarkupsPlaceWidget": ("qSlicerWidget", False),
                 "qMRMLTableView": ("QTableView", False), "ctkDirectoryButton": ("QWidget", False)}
        if "qSlicerMarkupsPlaceWidget" in self.custom:
            self.custom.add("qSlicerWidget")
        custom = ""
        for c in sorted(self.custom):
            base, container = bases[c]
            custom += (f"<customwidget><class>{c}</class><extends>{base}</extends><header>{c}.h</header>"
                       + ("<container>1</container>" if container else "") + "</customwidget>")
        conns = "".join(
            f"<connection><sender>{self.cls}</sender><signal>mrmlSceneChanged(vtkMRMLScene*)</signal>"
            f"<receiver>{w}</receiver><slot>setMRMLScene(vtkMRMLScene*)</slot></connection>"
            for w in self.mrml_widgets)
        xml = (f'<?xml version="1.0" encoding="UTF-8"?><ui version="4.0"><class>{self.cls}</class>{top}'
               f"<customwidgets>{custom}</customwidgets><resources/><connections>{conns}</connections></ui>")
        from xml.dom import minidom

        return minidom.parseString(xml).toprettyxml(indent=" ", encoding="UTF-8").decode()


VOLUME = ["vtkMRMLScalarVolumeNode"]
ROLE_TEXT = {"t1": "T1-weighted MRI", "t2": "T2-weighted MRI", "t1c": "Contrast-enhanced T1 MRI",
             "stir": "STIR MRI", "ct": "CT", "sct": "Synthetic CT (from MRI)", "dwi": "Diffusion MRI (DWI)",
             "angio": "CT / MR angiography"}


def progress_widgets(ui: Ui, apply_text, apply_tip):
    return [ui.button("applyButton", apply_text, apply_tip, enabled=False),
            ui.widget("QProgressBar", "progressBar", [ui.prop("value", "number", 0)]),
            ui.widget("QLabel", "statusLabel", [ui.prop("text", "string", ""), ui.prop("wordWrap", "bool", True)])]


def results_section(ui: Ui, extra=()):
    rows = [*extra,
            ui.widget("QLabel", "resultsLabel", [ui.prop("text", "string", "No results yet."),
                                                 ui.prop("wordWrap", "bool", True),
                                                 ui.prop("textFormat", "enum", "Qt::RichText")]),
            ui.widget("qMRMLTableView", "resultsTableView",
                      [ui.prop("toolTip", "string", "Measurements of the last run")])]
    return ui.collapsible("resultsCollapsibleButton", "Results", ui.vbox("resultsLayout", rows))


def spine_planner_ui():
    from SpinePlannerLib.approach.params import ApproachParams, ClinicalInputs
    from SpinePlannerLib.segmentation.params import SegmentationParams
    from SpinePlannerLib.vessels.params import VesselParams

    ui = Ui("SpinePlanner")
    rows = []
    for role in ("t2", "t1", "t1c", "stir", "ct", "sct", "angio"):
        rows.append((ROLE_TEXT[role] + ":", ui.node_combo(f"{role}Selector", VOLUME, role,
                                                         f"The {ROLE_TEXT[role]} of the case (role '{role}')")))
    rows.append((ROLE_TEXT["dwi"] + ":", ui.node_combo("dwiSelector", ["vtkMRMLDiffusionWeightedVolumeNode"], "dwi",
                                                       "Diffusion-weighted series with its gradient table (role 'dwi')")))
    inputs = ui.collapsible("inputsCollapsibleButton", "Inputs", ui.form("inputsFormLayout", rows))

    seg_rows = [
        ("Tumor seed:", ui.node_combo("tumorSeedSelector", ["vtkMRMLMarkupsFiducialNode"], "tumorSeed",
                                      "Point list whose first point lies inside the tumor", add=True,
                                      base_name="Tumor seed")),
        ("Place seed:", ui.widget("qSlicerMarkupsPlaceWidget", "tumorSeedPlaceWidget",
                                  [ui.prop("toolTip", "string", "Click, then click inside the tumor in a slice view")])),
        ("Segmentation:", ui.node_combo("segmentationSelector", ["vtkMRMLSegmentationNode"], "segmentation",
                                        "Results are written here; its edited segments are kept on re-run "
                                        "(created when empty)", add=True, base_name="SpinePlan segmentation")),
        ("Replace edits:", ui.widget("QCheckBox", "replaceEditsCheckBox",
                                     [ui.prop("toolTip", "string", "Recompute segments you edited since the last run "
                                                                   "(otherwise edits are kept)")], "replaceEdits")),
        ui.button("segmentButton", "Segment", "Run the segmentation and the tumor measurement", enabled=False),
        ui.button("editSegmentationButton", "Edit in Segment Editor",
                  "Open the Segment Editor on the result segmentation", enabled=False),
        ui.params_section(SegmentationParams, ["segmentationParams"], "segmentationParams",
                          "Segmentation settings", collapsed=True, expanded=("tumor",)),
    ]
    segmentation = ui.collapsible("segmentationCollapsibleButton", "Segmentation",
                                  ui.form("segmentationFormLayout", seg_rows))
    vessel_rows = [
        ("Show vessel models:", ui.widget("QCheckBox", "showVesselsCheckBox",
                                          [ui.prop("toolTip", "string", "Show the vessel models (colored by role, "
                                                                        "feeders highlighted) and feeder entry points")],
                                          "showVessels")),
        ui.params_section(VesselParams, ["vesselParams"], "vesselParams", "Vessel analysis settings", collapsed=True),
    ]
    vessels = ui.collapsible("vesselsCollapsibleButton", "Vessels", ui.form("vesselsFormLayout", vessel_rows),
                             collapsed=True)
    approach_rows = [
        ui.params_section(ClinicalInputs, ["clinicalInputs"], "clinicalInputs",
                          "Clinical inputs (SINS pain, NOMS myelopathy and histology)", collapsed=False),
        ui.params_section(ApproachParams, ["approachParams"], "approachParams",
                          "SINS / Bilsky measurement settings", collapsed=True),
    ]
    approach = ui.collapsible("approachCollapsibleButton", "Approach (SINS, Bilsky, NOMS)",
                              ui.form("approachFormLayout", approach_rows), collapsed=True)
    export_rows = [("Export folder:", ui.widget("ctkDirectoryButton", "exportDirectoryButton",
                                                 [ui.prop("toolTip", "string", "plan.json, labels/ and the stages' "
                                                                               "export files are written here")],
                                                 "exportFolder")),
                   ui.button("exportButton", "Export plan", "Write the last plan to the export folder", enabled=False),
                   ("De-identify:", ui.widget("QCheckBox", "exportDeidentifyCheckBox",
                                              [ui.prop("toolTip", "string", "Navigation export without patient "
                                                                            "identifiers (new study, pseudonym)")],
                                              "exportDeidentify")),
                   ui.button("exportNavigationButton", "Export for navigation",
                             "Write the plan, then DICOM SEG, RTSTRUCT, tract density, report page, STL/OBJ "
                             "meshes and a glTF scene into <export folder>/export", enabled=False)]
    export = ui.collapsible("exportCollapsibleButton", "Export", ui.form("exportFormLayout", export_rows))
    widgets = [inputs, segmentation, vessels, approach,
               *progress_widgets(ui, "Plan", "Run every planning stage the inputs allow"),
               results_section(ui), export]
    return ui.document(widgets)


def dti_ui():
    from DTITractographyLib.params import TractographyParams

    ui = Ui("DTITractography")
    rows = [
        (ROLE_TEXT["dwi"] + ":", ui.node_combo("dwiSelector", ["vtkMRMLDiffusionWeightedVolumeNode"], "dwi",
                                               "Diffusion-weighted series with its gradient table")),
        ("Segmentation:", ui.node_combo("segmentationSelector", ["vtkMRMLSegmentationNode"], "segmentation",
                                        "Segmentation holding the cord, tumor and (optional) seed-region segments")),
        ("Cord segment:", ui.widget("QLineEdit", "cordSegmentLineEdit",
                                    [ui.prop("toolTip", "string", "Name of the spinal cord segment")], "cordSegment")),
        ("Tumor segment:", ui.widget("QLineEdit", "tumorSegmentLineEdit",
                                     [ui.prop("toolTip", "string", "Name of the tumor segment (empty: no tumor)")],
                                     "tumorSegment")),
        ("Seed region segment:", ui.widget("QLineEdit", "seedSegmentLineEdit",
                                           [ui.prop("toolTip", "string", "Optional segment to seed the tracking in "
                                                                         "(empty: the whole cord)")],
                                           "seedSegment")),
    ]
    inputs = ui.collapsible("inputsCollapsibleButton", "Inputs", ui.form("inputsFormLayout", rows))
    out_rows = [
        ("Color tracts by:", ui.widget("QComboBox", "colorByComboBox",
                                       [ui.prop("toolTip", "string", "Direction (RGB), FA, or one color")], "colorBy")),
        ("Show as tubes:", ui.widget("QCheckBox", "tubesCheckBox",
                                     [ui.prop("toolTip", "string", "Tubes instead of lines (slower)")], "tubes")),
        ("Tract files folder:", ui.widget("ctkDirectoryButton", "outputDirectoryButton",
                                          [ui.prop("toolTip", "string", "Optional: cord_tracts.trx/.tck/.vtp are "
                                                                        "written here")], "outputFolder")),
    ]
    outputs = ui.collapsible("outputsCollapsibleButton", "Display and export", ui.form("outputsFormLayout", out_rows),
                             collapsed=True)
    params = ui.params_section(TractographyParams, ["params"], "params", "Parameters", collapsed=False,
                               expanded=("tracking", "setzer"))
    widgets = [inputs, params, outputs,
               *progress_widgets(ui, "Apply", "Fit tensors, track the cord and classify the tract-tumor relationship"),
               results_section(ui)]
    return ui.document(widgets)


def sct_ui():
    from SyntheticCTCheckLib.params import CheckParams

    ui = Ui("SyntheticCTCheck")
    rows = [
        ("CT:", ui.node_combo("ctSelector", VOLUME, "ct", "The real CT (HU)")),
        ("Synthetic CT:", ui.node_combo("sctSelector", VOLUME, "sct", "The synthetic CT computed from MRI (HU)")),
        ("Lesion segmentation:", ui.node_combo("segmentationSelector", ["vtkMRMLSegmentationNode"], "segmentation",
                                               "Segmentation holding the lesion ROI (drawn where the lesion is visible)")),
        ("Lesion segment:", ui.widget("QLineEdit", "lesionSegmentLineEdit",
                                      [ui.prop("toolTip", "string", "Name of the lesion segment")], "lesionSegment")),
        ("ROI drawn on:", ui.widget("QComboBox", "roiFrameComboBox",
                                    [ui.prop("toolTip", "string", "mri: the ROI is in the MRI/synthetic CT frame and "
                                                                  "the CT is aligned to it; ct: drawn on the CT")],
                                    "roiFrame")),
        ("T2* / SWI (optional):", ui.node_combo("t2starSelector", VOLUME, "t2star",
                                                "Gradient-echo or susceptibility-weighted MRI: signal voids suggest "
                                                "calcification")),
        ("T2* sequence:", ui.widget("QComboBox", "t2starSequenceComboBox",
                                    [ui.prop("toolTip", "string", "gre (T2*) or swi")], "t2starSequence")),
    ]
    inputs = ui.collapsible("inputsCollapsibleButton", "Inputs", ui.form("inputsFormLayout", rows))
    params = ui.params_section(CheckParams, ["params"], "params", "Thresholds and cut-offs", collapsed=False,
                               expanded=("lesion", "classes", "flags"))
    flags = ui.widget("QListWidget", "flagsListWidget", [ui.prop("toolTip", "string", "Flags raised by the check")])
    widgets = [inputs, params, *progress_widgets(ui, "Apply", "Compare the synthetic CT with the CT in the lesion "
                                                              "and in bone"),
               results_section(ui, extra=[ui.widget("QLabel", "flagsLabel", [ui.prop("text", "string", "Flags:")]),
                                          flags])]
    return ui.document(widgets)


TEMPLATE = """#-----------------------------------------------------------------------------
set(MODULE_NAME {name})

#-----------------------------------------------------------------------------
# Every installed file is listed (Testing/test_slicer_static_cmake.py checks it).
set(MODULE_PYTHON_SCRIPTS
{scripts}
  )

set(MODULE_PYTHON_RESOURCES
{resources}
  )

#-----------------------------------------------------------------------------
slicerMacroBuildScriptedModule(
  NAME ${{MODULE_NAME}}
  SCRIPTS ${{MODULE_PYTHON_SCRIPTS}}
  RESOURCES ${{MODULE_PYTHON_RESOURCES}}
  WITH_GENERIC_TESTS
  )

#-----------------------------------------------------------------------------
if(BUILD_TESTING)
  # Register the unittest subclass in the main script as a ctest.
  # Note that the test will also be available at runtime.
  slicer_add_python_unittest(SCRIPT ${{MODULE_NAME}}.py)
endif()
"""


def module_files(folder: pathlib.Path):
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or p.name == "CMakeLists.txt" or p.suffix == ".pyc":
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        yield rel.as_posix()




def cmake_text(name: str) -> str:
    folder = ROOT / name
    files = list(module_files(folder))
    scripts = [f"{name}.py"] + [f for f in files if f.endswith(".py") and f != f"{name}.py"]
    resources = sorted((f for f in files if not f.endswith(".py")), key=lambda r: (not r.startswith("Resources/"), r))
    return TEMPLATE.format(name=name, scripts="\n".join("  " + s.replace(name, "${MODULE_NAME}") for s in scripts),
                           resources="\n".join("  " + r.replace(name, "${MODULE_NAME}") for r in resources))


MODULES = ("SpinePlanner", "DTITractography", "SyntheticCTCheck")
MIRRORED = {
    "SpinePlanner": ["SpinePlannerLib.segmentation.params.SegmentationParams", "SpinePlannerLib.vessels.params.VesselParams",
                     "SpinePlannerLib.approach.params.ClinicalInputs", "SpinePlannerLib.approach.params.ApproachParams"],
    "DTITractography": ["DTITractographyLib.params.TractographyParams"],
    "SyntheticCTCheck": ["SyntheticCTCheckLib.params.CheckParams"],
}
UI_BUILDERS = {"SpinePlanner": spine_planner_ui, "DTITractography": dti_ui, "SyntheticCTCheck": sct_ui}


def main(argv=None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Regenerate the Slicer module parts that follow the Lib.")
    parser.add_argument("--check", action="store_true", help="only report what would change (exit 1 if anything)")
    check = parser.parse_args(argv).check
    for module in MODULES:
        sys.path.insert(0, str(ROOT / module))
    outputs: dict[pathlib.Path, str] = {}
    for module, classes in MIRRORED.items():
        shell = ROOT / module / f"{module}.py"
        text = shell.read_text()
        block, _mirrors = gen_packs([lib_class(c) for c in classes])
        a, b = text.index(BEGIN), text.index(END) + len(END)
        outputs[shell] = text[:a] + block + text[b:]
        outputs[ROOT / module / "Resources" / "UI" / f"{module}.ui"] = UI_BUILDERS[module]()
    # CMakeLists last: they list the files as they are now
    for module in MODULES:
        outputs[ROOT / module / "CMakeLists.txt"] = cmake_text(module)
    changed = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
    for path in changed:
        print(("would update " if check else "updated ") + str(path.relative_to(ROOT)))
        if not check:
            path.write_text(outputs[path])
    return 1 if (check and changed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
