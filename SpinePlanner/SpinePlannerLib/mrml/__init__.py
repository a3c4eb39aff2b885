"""The MRML layer (L2): headless Slicer core, scene building from results, plan in a scene."""
