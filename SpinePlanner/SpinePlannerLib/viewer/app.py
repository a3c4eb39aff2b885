"""``spineplan view DIR``: a web viewer of a plan folder on trame-slicer (real Slicer MRML views).

Three slice views and a 3D view of ``scene.mrb``, a side panel with the plan summary, structure
toggles, 3D opacity, tract and vessel toggles, and jumps to the tumor, each feeder and each
level. Rendering is server-side and offscreen (EGL); the browser receives pictures.
Optional extra: ``pip install ".[viewer]"`` (trame-slicer[standalone]).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from SpinePlannerLib.core.errors import InputError

from .scene_control import STRUCTURE_LABELS, TRACT_NODES, VESSEL_NODES, SceneControl, aim_camera, jump_slices


class PlanViewer:
    """The trame application for one plan folder."""

    def __init__(self, plan_dir, server=None):
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories

        root = Path(plan_dir).resolve()
        if not (root / "plan.json").is_file():
            raise InputError(str(root), "no plan.json in this folder (run `spineplan plan` or `spineplan demo` first)")
        if not (root / "scene.mrb").is_file():
            raise InputError(str(root), "no scene.mrb in this folder (the plan was run with --no-scene)")
        self.plan = json.loads((root / "plan.json").read_text())
        self.server = server or get_server(f"spineplan-{root.name}", client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.slicer = SlicerApp()
        register_rca_factories(self.slicer.view_manager, self.server)
        self.layout_manager = LayoutManager(self.slicer.scene, self.slicer.view_manager, self.server)
        self.layout_manager.register_layout_dict(LayoutManager.default_grid_configuration())
        self.layout_manager.set_layout("3D Primary")
        if not self.slicer.scene.ReadFromMRB(str(root / "scene.mrb")):
            raise InputError(str(root / "scene.mrb"), "not readable as a Slicer scene bundle")
        self.control = SceneControl(self.slicer.scene, self.plan)
        self._show_reference_image()
        self._build_ui()
        self._bind_state()
        if "tumor" in self.control.targets():
            self.jump("tumor")

    # -- scene ----------------------------------------------------------------------------------
    def _show_reference_image(self) -> None:
        ref = self.plan.get("reference_role") or "t2"
        nodes = self.slicer.scene.GetNodesByName(ref)
        volume = nodes.GetItemAsObject(0) if nodes.GetNumberOfItems() else None
        if volume is not None:
            self.slicer.display_manager.show_volume_in_slice_background(volume)
        for view in self.slicer.view_manager.get_views():
            view.render_window().SetMultiSamples(0)  # translucent surfaces vanish with multisampling on
            view.render_window().SwapBuffersOff()  # the stream reads the buffer just drawn, not the previous frame
        for view in self.slicer.view_manager.get_slice_views():
            view.fit_view_to_content()

    def _render(self) -> None:
        for view in self.slicer.view_manager.get_views():
            view.schedule_render()

    def jump(self, name: str) -> None:
        """Centre the slice views on a target and aim the 3D camera at it (from the left)."""
        ras = self.control.targets().get(name)
        if ras is None:
            return
        jump_slices(self.slicer.scene, ras)
        for view in self.slicer.view_manager.get_threed_views():
            cam = view.get_camera_node()
            if cam is not None:
                aim_camera(cam, ras, distance_mm=120.0)
                view.renderer().ResetCameraClippingRange()
        self.server.state.jumped_to = name
        self._render()

    # -- UI -------------------------------------------------------------------------------------
    def _bind_state(self) -> None:
        state = self.server.state
        for s in self.control.structures():
            state[f"segment_{s}"] = True
            state.change(f"segment_{s}")(lambda s=s, **kw: self._toggle(s, kw[f"segment_{s}"]))
        state.show_tract_models = True
        state.show_vessel_models = True
        state.opacity_3d = 1.0
        state.jumped_to = ""
        state.change("show_tract_models")(lambda show_tract_models, **_: self._group(TRACT_NODES, show_tract_models))
        state.change("show_vessel_models")(lambda show_vessel_models, **_: self._group(VESSEL_NODES, show_vessel_models))
        state.change("opacity_3d")(lambda opacity_3d, **_: self._opacity(opacity_3d))
        self.server.trigger("jump")(self.jump)

    def _toggle(self, name, visible):
        self.control.set_structure_visible(name, bool(visible))
        self._render()

    def _group(self, names, visible):
        self.control.set_group_visible(names, bool(visible))
        self._render()

    def _opacity(self, value):
        self.control.set_opacity_3d(float(value))
        self._render()

    def _summary_ui(self, html) -> None:
        s = self.plan.get("summary") or {}
        t = s.get("tumor") or {}
        html.H3((s.get("case") or {}).get("name", "plan"), style="margin:4px 0")
        if t.get("found"):
            html.Div(f"{t.get('compartment')} · {t.get('levels') or ''}", style="font-size:12px")
            html.Div(f"{t.get('size') or ''} · {t.get('volume') or ''}", style="font-size:12px")
        for v in s.get("verdicts") or []:
            html.Div(f"{v['topic']}: {v['text']}", style="font-size:11px;margin-top:3px")
        for w in s.get("warnings") or []:
            html.Div(f"[{w['severity']}] {w['text']}", style="font-size:11px;margin-top:3px;color:#a33")

    def _build_ui(self) -> None:
        from trame.widgets import html
        from trame.widgets import vuetify3 as v3
        from trame_vuetify.ui.vuetify3 import SinglePageWithDrawerLayout

        self.server.state.trame__title = "spineplan viewer"
        with SinglePageWithDrawerLayout(self.server, drawer_width=340) as layout:
            layout.title.set_text("spineplan — plan viewer")
            with layout.drawer, html.Div(style="padding:8px"):
                self._summary_ui(html)
                html.H4("Structures", style="margin:8px 0 0")
                for s in self.control.structures():
                    col = self.control.segment_color(s)
                    with html.Div(style="display:flex;align-items:center"):
                        html.Span(style=f"display:inline-block;width:12px;height:12px;background:rgb{col}",
                                  id=f"swatch-{s}")
                        v3.VCheckbox(v_model=(f"segment_{s}", True), label=STRUCTURE_LABELS[s], id=f"toggle-seg-{s}",
                                     density="compact", hide_details=True)
                v3.VCheckbox(v_model=("show_tract_models", True), label="tracts", id="toggle-tracts",
                             density="compact", hide_details=True)
                v3.VCheckbox(v_model=("show_vessel_models", True), label="vessels (models, markups)", id="toggle-vessel-models",
                             density="compact", hide_details=True)
                v3.VSlider(v_model=("opacity_3d", 1.0), min=0.1, max=1.0, step=0.05, label="3D opacity",
                           id="opacity-3d", density="compact", hide_details=True)
                html.H4("Jump to", style="margin:8px 0 0")
                for name in self.control.targets():
                    v3.VBtn(name, id="jump-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"), size="small",
                            variant="tonal", style="margin:2px", click=f"trigger('jump', ['{name.replace(chr(39), '')}'])")
                html.Div("{{ jumped_to }}", id="jumped-to", style="font-size:11px")
            with layout.content:
                self.layout_manager.initialize_layout_grid(layout)
        self.ui = layout

    def start(self, *, port: int = 8080, host: str = "127.0.0.1") -> None:
        self.server.start(port=port, host=host, open_browser=False, show_connection_info=False)
