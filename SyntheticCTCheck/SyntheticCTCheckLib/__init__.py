"""SyntheticCTCheck library: flag where a synthetic CT disagrees with the real CT.

L1 (numpy/scipy/SimpleITK only): ``params`` (settings), ``registration`` (rigid CT -> sCT,
residual in mm), ``lesion_stats`` (HU, calcified volume, visibility, diameters), ``calcification``
(class, MRI signal voids), ``bone_agreement`` (MAE, Bland-Altman bias), ``flags`` (flags,
verdict, approach hint), ``check`` (one case), ``cohort`` (``spineplan sct-cohort``),
``synthetic_cases`` (analytic test cases), ``stage`` (the planning stage).
L2 (scene passed explicitly): ``mrml_sct`` (difference volume, flagged segment, table) and
``logic`` (:func:`~SyntheticCTCheckLib.logic.run_check_on_nodes`, the Slicer module's entry point).
"""
