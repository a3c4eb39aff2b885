"""Export a finished plan folder for operating rooms, radiotherapy, AR and 3D printing.

A writer layer: it READS a plan folder (``plan.json``, ``labels/``, ``tracts/``, ``vessels/``)
and never reruns a planning stage. DICOM objects (reference series, SEG, RTSTRUCT, tract
density, encapsulated report) are in the patient frame (LPS, converted from the plan's RAS with
``diag(-1, -1, 1)``); meshes are in LPS mm by default (RAS on request).
"""
