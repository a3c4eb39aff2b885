"""The phantom as Slicer sample data: checksums computed at generation, verified on every load.

A fake writer stands in for the (slow) phantom generator where only the caching behaviour is
under test; one test runs the real generator.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from SpinePlannerLib.phantom.sample import MANIFEST, ensure_phantom_case, verify_manifest


class CountingWriter:
    """Writes two small files per call and counts the calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, kind, folder, *, seed):
        self.calls += 1
        (folder / "labels").mkdir(parents=True, exist_ok=True)
        (folder / "t2.nii.gz").write_bytes(f"{kind}-{seed}-image".encode())
        (folder / "labels" / "tumor.nii.gz").write_bytes(b"tumor")
        (folder / "truth.json").write_text(json.dumps({"kind": kind, "seed": seed}))


def test_first_load_generates_and_records_sha256_of_every_file(tmp_path):
    writer = CountingWriter()
    case = ensure_phantom_case("idem-soft", tmp_path, seed=3, writer=writer)
    assert writer.calls == 1 and case.regenerated
    assert case.folder == tmp_path / "idem-soft-seed3"
    expected = hashlib.sha256(b"idem-soft-3-image").hexdigest()
    assert case.checksums["t2.nii.gz"] == f"SHA256:{expected}"
    assert set(case.checksums) == {"t2.nii.gz", "labels/tumor.nii.gz", "truth.json", "phantom-version.json"}
    assert f"{expected}  t2.nii.gz" in (case.folder / MANIFEST).read_text().splitlines()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folder left behind"


def test_intact_cache_is_reused_without_regenerating(tmp_path):
    writer = CountingWriter()
    first = ensure_phantom_case("idem-soft", tmp_path, writer=writer)
    again = ensure_phantom_case("idem-soft", tmp_path, writer=writer)
    assert writer.calls == 1 and not again.regenerated
    assert again.checksums == first.checksums


@pytest.mark.parametrize("damage", ["edit", "truncate", "delete", "extra", "manifest"])
def test_damaged_cache_is_detected_and_regenerated(tmp_path, damage):
    writer = CountingWriter()
    case = ensure_phantom_case("idem-soft", tmp_path, writer=writer)
    image = case.folder / "t2.nii.gz"
    if damage == "edit":
        image.write_bytes(b"idem-soft-0-imagX")
    elif damage == "truncate":
        image.write_bytes(image.read_bytes()[:5])
    elif damage == "delete":
        image.unlink()
    elif damage == "extra":
        (case.folder / "stray.nii.gz").write_bytes(b"?")
    else:
        (case.folder / MANIFEST).unlink()
    assert verify_manifest(case.folder), "the damage went unnoticed"
    again = ensure_phantom_case("idem-soft", tmp_path, writer=writer)
    assert writer.calls == 2 and again.regenerated
    assert verify_manifest(again.folder) == []
    assert image.read_bytes() == b"idem-soft-0-image"


def test_cache_from_another_generator_version_is_regenerated(tmp_path):
    writer = CountingWriter()
    case = ensure_phantom_case("idem-soft", tmp_path, writer=writer)
    version_file = case.folder / "phantom-version.json"
    version = json.loads(version_file.read_text())
    version["version"] = "0.0.0-old"
    version_file.write_text(json.dumps(version))
    from SpinePlannerLib.phantom.sample import write_manifest

    write_manifest(case.folder)  # consistent checksums, but an old generator
    assert ensure_phantom_case("idem-soft", tmp_path, writer=writer).regenerated
    assert writer.calls == 2


def test_failed_generation_leaves_no_folder_that_passes_verification(tmp_path):
    def broken(kind, folder, *, seed):
        (folder / "t2.nii.gz").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ensure_phantom_case("idem-soft", tmp_path, writer=broken)
    assert not (tmp_path / "idem-soft-seed0").exists()
    assert list(tmp_path.iterdir()) == []


def test_real_phantom_generation_is_deterministic_per_seed(tmp_path):
    """The digests recorded for two independent generations of the same (kind, seed) agree for
    every image: the sample is reproducible on one installation."""
    a = ensure_phantom_case("idem-calcified", tmp_path / "a", seed=0)
    b = ensure_phantom_case("idem-calcified", tmp_path / "b", seed=0)
    images = [k for k in a.checksums if k.endswith(".nii.gz")]
    assert "ct.nii.gz" in images and "labels/tumor.nii.gz" in images
    assert {k: a.checksums[k] for k in images} == {k: b.checksums[k] for k in images}
