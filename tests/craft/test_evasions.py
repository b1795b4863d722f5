"""Hide-and-Seek evasive samples: every technique built, each confirmed by the oracle with its target loader."""

from __future__ import annotations

import hashlib

import pytest

from safepickle_bench.craft.evasions import TECHNIQUES, build_evasive_samples
from safepickle_bench.datasets import oracle


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """The evasive samples (real payloads) and their oracle results."""
    d = tmp_path_factory.mktemp("evasive")
    built = build_evasive_samples(d, str(d / "markers"), seed=0)
    return d, built, oracle.confirm([(d / s.path, s.loader) for s in built])


def test_every_technique_has_a_documented_sample(samples):
    _, built, _ = samples
    assert len(built) >= 9
    assert {s.technique for s in built} == set(TECHNIQUES)
    assert sum(s.technique == "gadget_outside_denylist" for s in built) >= 3
    assert {s.path for s in built if s.technique == "joblib_compressed"} >= {
        f"joblib_{c}.joblib" for c in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4")}
    for s in built:
        assert s.description and s.loader in oracle.LOADERS and s.payload_family and s.callables


def test_oracle_confirms_every_evasive_sample_with_its_loader(samples):
    _, built, results = samples
    for s, r in zip(built, results, strict=True):
        assert r.loader == s.loader
        assert r.event in s.events, (s.technique, s.path, r.event, r.error)


def test_evasive_files_without_payload_load_or_fail_only_at_their_break(tmp_path):
    built = build_evasive_samples(tmp_path, str(tmp_path / "markers"), seed=0, probe=True)
    for s, r in zip(built, oracle.confirm([(tmp_path / s.path, s.loader) for s in built]), strict=True):
        assert r.event == "", (s.path, r.event)
        assert r.loaded == (not s.expects_load_error), (s.path, r.error)
        if s.expects_load_error:
            assert r.error and "BlockedEvent" not in r.error


def test_corrupt_central_directory_breaks_zipfile_but_not_torch(samples):
    import zipfile

    d, built, results = samples
    sample = next(s for s in built if s.technique == "zip_corrupt_central_directory")
    with zipfile.ZipFile(d / sample.path) as archive, pytest.raises(zipfile.BadZipFile):
        for name in archive.namelist():
            archive.read(name)


def test_evasive_samples_are_deterministic(tmp_path):
    def digests(sub):
        built = build_evasive_samples(tmp_path / sub, str(tmp_path / "markers"), seed=7)
        return {s.path: hashlib.sha256((tmp_path / sub / s.path).read_bytes()).hexdigest() for s in built}

    assert digests("a") == digests("b")
