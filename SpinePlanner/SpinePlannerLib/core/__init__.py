"""Slicer-independent basics: the Volume type, geometry, image and DWI I/O, errors, parameter checks, rigid registration."""
