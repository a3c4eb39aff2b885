"""Helpers shared by the three Slicer shells (the only Lib code that may touch the Slicer application)."""
