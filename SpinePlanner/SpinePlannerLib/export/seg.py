"""DICOM SEG (binary, one segment per structure) on the reference series, built with highdicom."""

from __future__ import annotations

import numpy as np
from pydicom.uid import generate_uid

from SpinePlannerLib.export.dicom_series import MANUFACTURER, SOFTWARE, ReferenceSeries
from SpinePlannerLib.export.structures import Structure


def _code(triple):
    from highdicom.sr import CodedConcept

    scheme, value, meaning = triple
    return CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _lab_color(rgb):
    from highdicom.color import CIELabColor

    from SpinePlannerLib.export.colors import rgb_to_cielab

    return CIELabColor(*rgb_to_cielab(rgb))


def build_seg(reference: ReferenceSeries, structures: list[tuple[Structure, np.ndarray]], *,
              series_number: int = 100, description: str = "spineplan segmentation"):
    """A highdicom ``Segmentation`` of ``structures`` (boolean ``[i, j, k]`` masks on the reference
    grid) referencing every slice of ``reference``.

    Frame ``k`` of segment ``n`` is ``mask[:, :, k].T`` (rows = j, columns = i); empty frames are
    omitted. Segment labels, SNOMED-CT category/type and display colours (CIELab) come from
    :mod:`SpinePlannerLib.export.structures`.
    """
    import highdicom as hd

    if not structures:
        raise ValueError("no structure to export")
    descriptions = []
    algorithm = hd.AlgorithmIdentificationSequence(name="spineplan", version=SOFTWARE,
                                                   family=_code(("DCM", "113037", "Segmentation")))
    for n, (s, _) in enumerate(structures, start=1):
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=n, segment_label=s.label[:64], segmented_property_category=_code(s.category),
            segmented_property_type=_code(s.kind), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, tracking_uid=generate_uid(), tracking_id=s.key,
            display_color=_lab_color(s.color)))
    # (frames = k, rows = j, columns = i, segments)
    pixels = np.stack([np.transpose(m, (2, 1, 0)) for _, m in structures], axis=-1).astype(np.uint8)
    return hd.seg.Segmentation(
        source_images=reference.datasets, pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=generate_uid(), series_number=series_number, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name="spineplan",
        software_versions=SOFTWARE, device_serial_number="0", series_description=description[:64],
        content_description="spineplan plan: decision support, not for diagnosis",
        content_label="SPINEPLAN", omit_empty_frames=True)


def seg_to_masks(seg, reference_affine: np.ndarray, shape: tuple) -> dict[str, np.ndarray]:
    """Rasterise a SEG back to boolean ``[i, j, k]`` masks by tracking ID, placing every frame by
    its own ImagePositionPatient (LPS -> RAS -> ijk on ``reference_affine``). Used by the tests
    and by anyone checking an export; raises ``ValueError`` when a frame is off the grid by more
    than half a voxel."""
    from SpinePlannerLib.core.volume import LPS_TO_RAS

    inv = np.linalg.inv(reference_affine)
    out: dict[str, np.ndarray] = {}
    numbers = {int(d.SegmentNumber): str(d.TrackingID) for d in seg.SegmentSequence}
    pixels = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    for f, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
        number = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        pos = np.asarray(frame.PlanePositionSequence[0].ImagePositionPatient, float)
        ijk = inv[:3, :3] @ (LPS_TO_RAS[:3, :3] @ pos) + inv[:3, 3]
        k = int(round(ijk[2]))
        if np.any(np.abs(ijk - [0, 0, k]) > 0.5):
            raise ValueError(f"SEG frame {f + 1} at {pos} is not on a reference slice ({ijk})")
        mask = out.setdefault(numbers[number], np.zeros(shape, bool))
        mask[:, :, k] |= pixels[f].T.astype(bool)
    return out
