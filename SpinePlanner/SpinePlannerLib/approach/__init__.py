"""Surgical decision support from imaging: SINS, epidural compression (Bilsky) grade, NOMS, and a
compartment-specific approach advisor with a navigation trajectory (L1: arrays and numbers only).

Every statement carries the rule that produced it, the numbers that triggered it and its source;
thresholds without published support are :class:`~SpinePlannerLib.approach.params.ApproachParams`
settings, shown in the plan, never presented as evidence.
"""
