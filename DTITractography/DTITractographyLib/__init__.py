"""DTITractography: DWI -> tensors -> cord tracking -> tract-tumor relationship (Setzer types).

L1 (no MRML): ``params``, ``tensor_fit``, ``tracking``, ``relationship``, ``classify``,
``reliability``, ``streamline_io``, ``analysis`` (the shared entry point ``analyze``),
``synthetic`` (test data), ``stage`` (planning stage ``tractography``).
L2 (scene passed in): ``mrml_tracts``, ``logic`` (``run_tractography`` for the Slicer shell).
Importing the package imports nothing heavy.
"""
