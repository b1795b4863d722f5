"""Building the generated datasets at `small` size: schema, oracle-proven labels, split groups, determinism."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from safepickle_bench.datasets import build_dataset, ensure_dataset, read_manifest
from safepickle_bench.datasets.build import PRESETS
from safepickle_bench.datasets.manifest import COLUMNS, sha256_file
from safepickle_bench.datasets.oracle import confirm

GENERATED = ("hf", "pickleball_ood", "joblib", "hide_and_seek")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[str, pd.DataFrame]]:
    """Build every generated dataset once at `small` into a temporary data dir."""
    data_dir = tmp_path_factory.mktemp("data")
    frames = {}
    for name in GENERATED:
        ensure_dataset(name, "small", data_dir, seed=0)
        frames[name] = read_manifest(name, "small", data_dir)
    return data_dir, frames


def test_manifest_has_exact_schema_and_real_hashes(built):
    _, frames = built
    for name, frame in frames.items():
        assert list(frame.columns) == [*COLUMNS, "abspath"], name
        assert set(frame["label"].unique()) <= {0, 1}
        for row in frame.sample(min(len(frame), 15), random_state=0).itertuples():
            assert sha256_file(Path(row.abspath)) == row.sha256
        assert (frame["loader"] != "").all()


def test_small_presets_reach_their_sizes(built):
    _, frames = built
    for name in ("hf", "pickleball_ood", "joblib"):
        preset = PRESETS[name]["small"]
        counts = frames[name]["label"].value_counts()
        assert counts.get(0, 0) >= preset.benign * 0.95, (name, counts.to_dict())
        assert counts.get(1, 0) >= preset.malicious * 0.9, (name, counts.to_dict())
    hs = frames["hide_and_seek"]
    assert hs["evasion_technique"].nunique() >= 9 and (hs["label"] == 1).all()


def test_hf_small_uses_many_real_producers_and_containers(built):
    _, frames = built
    hf = frames["hf"]
    benign = hf[hf.label == 0]
    assert benign["producer"].nunique() >= 12
    assert {"torch_zip", "torch_zip_archive", "torch_legacy", "pickle"} <= set(benign["container"])
    malicious = hf[hf.label == 1]
    assert malicious["payload_family"].nunique() >= 8
    assert (malicious["injection"] == "standalone").any() and (malicious["injection"] != "standalone").any()


def test_oracle_confirms_every_label(built):
    _, frames = built
    for name, frame in frames.items():
        results = confirm(list(zip(map(Path, frame["abspath"]), frame["loader"], strict=True)))
        for row, res in zip(frame.itertuples(), results, strict=True):
            assert res.label == row.label, (name, row.path, res.event, res.error)
            assert bool(res.event) == bool(row.oracle_event)


def test_derived_malicious_files_share_their_carriers_group(built):
    _, frames = built
    for name in ("hf", "pickleball_ood", "joblib"):
        frame = frames[name]
        benign_groups = set(frame.loc[frame.label == 0, "group"])
        derived = frame[(frame.label == 1) & (frame.injection != "standalone")]
        assert len(derived) > 0
        assert set(derived["group"]) <= benign_groups, name
        standalone = frame[frame.injection == "standalone"]
        assert not set(standalone["group"]) & benign_groups


def test_same_seed_gives_same_files(tmp_path):
    first = read_manifest("hf", "tiny", build_dataset("hf", "tiny", tmp_path / "a", seed=3).parents[2])
    second = read_manifest("hf", "tiny", build_dataset("hf", "tiny", tmp_path / "b", seed=3).parents[2])
    key = ["path", "sha256", "label", "group", "producer", "injection", "payload_family"]
    pd.testing.assert_frame_equal(first[key].reset_index(drop=True), second[key].reset_index(drop=True))
    assert first["sha256"].nunique() == len(first)  # and no two samples collapse into the same bytes
