"""Rigid alignment of a CT to a synthetic CT, with a residual in millimetres (L1).

The synthetic CT is computed from an MRI of the same session as the MRI that carries the
tumour ROI, so it shares that MRI's world frame. The CT comes from another session: it is
registered rigidly (Mattes mutual information, SimpleITK) to the synthetic CT, which gives the
transform from CT world to MRI world. Everything is then measured in one world frame.

Frames: the result's ``ct_to_sct_ras`` is a 4x4 matrix mapping a point in the CT's RAS world
(mm) to the same anatomical point in the synthetic CT's (= MRI's) RAS world. ITK works in LPS;
the conversion applies ``diag(-1, -1, 1)`` on both sides of the whole matrix.

The residual is the mean symmetric distance (mm) between the bone surfaces (HU >= a
threshold) of the CT and the aligned synthetic CT near the lesion. It bounds the misalignment
from above: it also contains the synthetic CT's own bone-modelling error.

The algorithm is the generic :func:`SpinePlannerLib.core.registration.register_rigid` (CT =
moving image, synthetic CT = fixed image); this module keeps the CT / synthetic-CT names.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from SpinePlannerLib.core.registration import (
    RigidRegistration,
    bone_surface_distance_mm,
    crop_around,
    moved,
    register_rigid,
)
from SpinePlannerLib.core.volume import Volume
from SpinePlannerLib.planning.context import Progress, no_progress

from .params import RegistrationParams

__all__ = ["RegistrationResult", "bone_surface_distance_mm", "crop_around", "moved", "register_ct_to_sct"]


@dataclass
class RegistrationResult(RigidRegistration):
    """How the CT was brought onto the synthetic CT's world frame.

    A :class:`~SpinePlannerLib.core.registration.RigidRegistration` whose moving image is the
    CT and fixed image the synthetic CT: ``ct_to_sct_ras`` (= ``moving_to_fixed_ras``) maps CT
    RAS (mm) to synthetic CT / MRI RAS (mm).
    """

    TRANSFORM_KEY = "ct_to_sct_ras"
    RESIDUAL_DEFINITION = "mean symmetric distance between CT and synthetic-CT bone surfaces near the lesion"

    @property
    def ct_to_sct_ras(self):
        return self.moving_to_fixed_ras


def register_ct_to_sct(ct: Volume, sct: Volume, *, params: RegistrationParams | None = None, focus_ras=None,
                       progress: Progress = no_progress) -> RegistrationResult:
    """Rigidly align ``ct`` to ``sct`` (mutual information) unless they already agree.

    Parameters
    ----------
    ct, sct : Volume
        CT and synthetic CT in HU, each in its own RAS world frame (mm).
    params : RegistrationParams
    focus_ras : array (3,), optional
        The lesion centre in the synthetic CT's world (mm): the metric is computed within
        ``params.focus_radius_mm`` of it and rotations are about it.
    progress : callable(fraction, message)

    Returns
    -------
    RegistrationResult

    Raises
    ------
    ValueError
        When the images do not overlap in world coordinates.
    """
    r = register_rigid(ct, sct, params=params or RegistrationParams(), focus_ras=focus_ras,
                       names=("CT", "synthetic CT"), progress=progress)
    return RegistrationResult(**{f.name: getattr(r, f.name) for f in fields(r)})
