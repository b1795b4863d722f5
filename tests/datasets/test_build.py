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


def test_optimised_benign_pickles_lose_unused_memo_stores_and_still_hold_the_same_value(tmp_path):
    import pickle
    import pickletools

    from safepickle_bench.datasets.build import optimize_benign

    rows = []
    for i in range(40):
        path = tmp_path / f"f{i}.pkl"
        path.write_bytes(pickle.dumps({"step": i, "labels": ["a", "b"], "lr": 0.1}, protocol=i % 6))
        rows.append({"path": path.name, "container": "pickle", "loader": "pickle", "kind": "config"})
    rows.append({"path": "multi.pkl", "container": "pickle", "loader": "pickle_multi", "kind": "config"})
    (tmp_path / "multi.pkl").write_bytes(pickle.dumps([1]) + pickle.dumps([2]))
    before = {r["path"]: (tmp_path / r["path"]).read_bytes() for r in rows}
    assert optimize_benign(rows, tmp_path, 0.0, seed=0) == 0
    done = optimize_benign(rows, tmp_path, 0.5, seed=0)
    assert 5 < done < 35
    changed = [r for r in rows if r["kind"].endswith("+optimized")]
    assert len(changed) == done and all(r["loader"] == "pickle" for r in changed)
    memo = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
    for r in changed:
        data = (tmp_path / r["path"]).read_bytes()
        assert not any(op.name in memo for op, _a, _p in pickletools.genops(data))
        assert pickle.loads(data) == pickle.loads(before[r["path"]])  # our own generated test bytes
    assert (tmp_path / "multi.pkl").read_bytes() == before["multi.pkl"]  # a two-stream file is left alone
