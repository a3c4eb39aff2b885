"""The phantom is a pure function of (kind, seed): same seed -> byte-identical arrays and truth;
another seed -> another case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from SpinePlannerLib.phantom.case import generate_phantom


def _arrays(case):
    out = {f"vol:{k}": v.array for k, v in case.volumes.items()}
    out.update({f"lab:{k}": v.array for k, v in case.labels.items()})
    out["dwi"] = case.dwi.volume.array
    return out


def _truth_json(case) -> str:
    return json.dumps(case.truth, sort_keys=True)


@pytest.fixture(scope="module")
def crossing_seed5():
    return generate_phantom("intramedullary-crossing", seed=5)


def test_same_seed_gives_byte_identical_arrays_and_truth(crossing_seed5):
    again = generate_phantom("intramedullary-crossing", seed=5)
    a, b = _arrays(crossing_seed5), _arrays(again)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].tobytes() == b[key].tobytes(), key
    for role in crossing_seed5.volumes:
        assert np.array_equal(crossing_seed5.volumes[role].affine, again.volumes[role].affine)
    assert np.array_equal(crossing_seed5.dwi.bvecs_ras, again.dwi.bvecs_ras)
    assert _truth_json(crossing_seed5) == _truth_json(again)


def test_another_seed_gives_another_case(crossing_seed5):
    other = generate_phantom("intramedullary-crossing", seed=6)
    assert not np.array_equal(other.volumes["t2"].array, crossing_seed5.volumes["t2"].array)
    assert other.truth["tumor"]["centroid_ras"] != crossing_seed5.truth["tumor"]["centroid_ras"]
