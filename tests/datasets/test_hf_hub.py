"""The hf_hub dataset fetches listed files with the real huggingface_hub from a local cache fixture, offline.

The fixture has the exact layout huggingface_hub writes (`models--<org>--<name>/blobs/<sha256>`,
`snapshots/<commit>/<filename>` symlinked to the blob, `refs/main` holding the commit hash), so the real
`hf_hub_download` resolves revisions and files from it without any request to the Hub.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch

from safepickle_bench.analysis import analyze_path
from safepickle_bench.craft.payloads import build_payload
from safepickle_bench.datasets import ensure_dataset, read_manifest
from safepickle_bench.datasets.hf_hub import build_hf_hub, classify_error, infer_kind
from safepickle_bench.datasets.manifest import COLUMNS, ManifestError

COMMIT_V1 = "1" * 40
COMMIT_V2 = "2" * 40
COMMIT_EVIL = "e" * 40
MARKERS = "/tmp/safepickle-out/markers"


def _torch_bytes(seed: int, zip_format: bool = True) -> bytes:
    """A small state_dict saved by the real torch.save (zip or legacy format)."""
    generator = torch.Generator().manual_seed(seed)
    state = {"encoder.weight": torch.randn(4, 4, generator=generator), "encoder.bias": torch.zeros(4)}
    buffer = io.BytesIO()
    torch.save(state, buffer, _use_new_zipfile_serialization=zip_format)
    return buffer.getvalue()


def _cache_repo(cache: Path, repo_id: str, snapshots: dict[str, dict[str, bytes]], main: str) -> None:
    """Write one repo into `cache` in huggingface_hub's layout: blobs, symlinked snapshots, refs/main."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(main)  # huggingface_hub writes the bare hash, no newline
    for commit, files in snapshots.items():
        for filename, data in files.items():
            etag = hashlib.sha256(data).hexdigest()  # LFS files: the blob is named by its sha256
            (repo / "blobs" / etag).write_bytes(data)
            pointer = repo / "snapshots" / commit / filename
            pointer.parent.mkdir(parents=True, exist_ok=True)
            pointer.symlink_to(os.path.relpath(repo / "blobs" / etag, pointer.parent))


@pytest.fixture(scope="module")
def hub_files() -> dict[str, bytes]:
    """The bytes of every file in the fixture Hub."""
    return {
        "v1": _torch_bytes(1, zip_format=True),
        "v2": _torch_bytes(2, zip_format=False),
        "evil": build_payload("os_system", MARKERS).stream(2),
    }


def _populate(cache: Path, files: dict[str, bytes]) -> None:
    """Two repos: one with two revisions of the same file, one with an inert malicious pickle."""
    _cache_repo(
        cache,
        "acme/tiny-bert",
        {COMMIT_V1: {"pytorch_model.bin": files["v1"]}, COMMIT_V2: {"pytorch_model.bin": files["v2"]}},
        main=COMMIT_V2,
    )
    _cache_repo(
        cache, "evil/rce-model", {COMMIT_EVIL: {"pytorch_model.bin": files["evil"]}}, main=COMMIT_EVIL
    )


def _source_list(path: Path) -> Path:
    rows = [
        ("acme/tiny-bert", "pytorch_model.bin", COMMIT_V1, "benign", "transformers", "pinned old revision"),
        ("acme/tiny-bert", "pytorch_model.bin", "main", "0", "", "branch head"),
        ("evil/rce-model", "pytorch_model.bin", COMMIT_EVIL, "Malicious", "", "os.system echo"),
        ("acme/tiny-bert", "missing.bin", "main", "benign", "", "not in the repo"),
        ("nobody/absent", "model.pt", "main", "malicious", "", "no such repo"),
        ("acme/tiny-bert", "pytorch_model.bin", "main", "maybe", "", "bad label"),
        ("acme/tiny-bert", "../../etc/passwd", "main", "benign", "", "path escape"),
    ]
    frame = pd.DataFrame(rows, columns=["repo_id", "filename", "revision", "label", "producer", "notes"])
    frame.to_csv(path, index=False)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_hf_hub_builds_manifest_from_local_cache_offline(tmp_path, hub_files):
    data_dir = tmp_path / "data"
    _populate(data_dir / "hf_hub" / "small" / "hf_cache", hub_files)  # the dataset's own cache, pre-filled
    source = _source_list(tmp_path / "list.csv")
    manifest = build_hf_hub(data_dir / "hf_hub" / "small", source, offline=True)
    assert manifest == data_dir / "hf_hub" / "small" / "manifest.parquet"
    frame = read_manifest("hf_hub", "small", data_dir)
    assert list(frame.columns) == [*COLUMNS, "abspath"]
    assert len(frame) == 3
    by_sha = frame.set_index("sha256")
    assert set(by_sha.index) == {_sha(hub_files[k]) for k in ("v1", "v2", "evil")}
    v1, v2, evil = (by_sha.loc[_sha(hub_files[k])] for k in ("v1", "v2", "evil"))
    # revision pinning: the commit hash picks the old snapshot, `main` follows refs/main to the new one
    assert v1["path"] == f"hf_cache/models--acme--tiny-bert/snapshots/{COMMIT_V1}/pytorch_model.bin"
    assert v2["path"] == f"hf_cache/models--acme--tiny-bert/snapshots/{COMMIT_V2}/pytorch_model.bin"
    assert (v1["label"], v2["label"], evil["label"]) == (0, 0, 1)
    assert (v1["container"], v2["container"], evil["container"]) == ("torch_zip", "torch_legacy", "pickle")
    assert (v1["producer"], v2["producer"]) == ("transformers", "huggingface_hub")
    assert set(frame["kind"]) == {"state_dict"}
    assert dict(zip(frame["sha256"], frame["group"], strict=True))[evil.name] == "evil/rce-model"
    assert (frame["oracle_event"] == "").all() and (frame["loader"] == "").all()  # never loaded
    for row in frame.itertuples():
        assert Path(row.abspath).is_file() and _sha(Path(row.abspath).read_bytes()) == row.sha256

    log = json.loads((manifest.parent / "build_log.json").read_text())
    failures = {(f["filename"], f["repo_id"]): f["error_kind"] for f in log["failures"]}
    assert failures == {
        ("missing.bin", "acme/tiny-bert"): "not_in_local_cache",
        ("model.pt", "nobody/absent"): "not_in_local_cache",
        ("pytorch_model.bin", "acme/tiny-bert"): "invalid_row",
        ("../../etc/passwd", "acme/tiny-bert"): "invalid_row",
    }
    assert log["counts"] == {
        "listed": 7,
        "kept": 3,
        "benign": 2,
        "malicious": 1,
        "failed": 4,
        "duplicates": 0,
        "label_conflicts": 0,
    }
    sizes = {f["sha256"]: f["size"] for f in log["files"]}
    assert sizes == {_sha(data): len(data) for data in hub_files.values()}
    assert {f["commit"] for f in log["files"]} == {COMMIT_V1, COMMIT_V2, COMMIT_EVIL}

    again = build_hf_hub(data_dir / "hf_hub" / "small", source, offline=True)
    assert (
        read_manifest("hf_hub", "small", data_dir)
        .drop(columns="abspath")
        .equals(frame.drop(columns="abspath"))
    )
    assert again == manifest


def test_malicious_hub_file_payload_is_found_by_the_analyzer(tmp_path, hub_files, no_dangerous_events):
    cache = tmp_path / "hub"
    _populate(cache, hub_files)
    source = _source_list(tmp_path / "list.csv")
    build_hf_hub(tmp_path / "data" / "hf_hub" / "full", source, offline=True, cache_dir=cache)
    frame = read_manifest("hf_hub", "full", tmp_path / "data")
    # an existing cache outside the dataset folder: paths are relative to it and resolve back into it
    assert all(Path(p).is_file() and Path(p).is_relative_to(cache.resolve()) for p in frame["abspath"])
    assert not (tmp_path / "data" / "hf_hub" / "full" / "hf_cache").exists()
    malicious = frame.loc[frame["label"] == 1, "abspath"].tolist()
    assert len(malicious) == 1
    analysis = analyze_path(malicious[0])
    assert analysis.error in (None, "")
    imports = {(i.module, i.name) for stream in analysis.streams for i in stream.imports}
    calls = {c.callable for stream in analysis.streams for c in stream.calls}
    assert ("os", "system") in imports and "os.system" in calls
    benign = analyze_path(frame.loc[frame["label"] == 0, "abspath"].iloc[0])
    assert not {c.callable for s in benign.streams for c in s.calls} & {"os.system", "posix.system"}


def test_unreachable_hub_falls_back_to_cache_and_records_the_rest(tmp_path, hub_files, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with socket.socket() as probe:  # a loopback port nobody listens on: the Hub is "down"
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = tmp_path / "hub"
    _populate(cache, hub_files)
    source = tmp_path / "list.csv"
    pd.DataFrame(
        [
            ("acme/tiny-bert", "pytorch_model.bin", "main", "benign"),
            ("acme/tiny-bert", "pytorch_model.bin", COMMIT_V1, "benign"),
            ("nobody/absent", "model.pt", "main", "malicious"),
        ],
        columns=["repo_id", "filename", "revision", "label"],
    ).to_csv(source, index=False)
    out = tmp_path / "data" / "hf_hub" / "full"
    build_hf_hub(
        out, source, offline=False, cache_dir=cache, endpoint=f"http://127.0.0.1:{port}", etag_timeout=2
    )
    frame = read_manifest("hf_hub", "full", tmp_path / "data")
    assert sorted(frame["sha256"]) == sorted([_sha(hub_files["v1"]), _sha(hub_files["v2"])])
    log = json.loads((out / "build_log.json").read_text())
    assert log["hub_reachable"] is False and log["offline"] is True  # one probe, then cache only (no retries)
    assert [(f["repo_id"], f["error_kind"]) for f in log["failures"]] == [
        ("nobody/absent", "not_in_local_cache")
    ]


def test_same_bytes_listed_twice_are_kept_once_and_contradicting_labels_dropped(tmp_path, hub_files):
    cache = tmp_path / "hub"
    _populate(cache, hub_files)
    _cache_repo(
        cache,
        "mirror/tiny-bert",
        {COMMIT_V2: {"pytorch_model.bin": hub_files["v1"]}, COMMIT_EVIL: {"model.bin": hub_files["evil"]}},
        main=COMMIT_V2,
    )
    source = tmp_path / "list.parquet"  # parquet lists with integer labels work too
    pd.DataFrame(
        {
            "repo_id": ["acme/tiny-bert", "mirror/tiny-bert", "evil/rce-model", "mirror/tiny-bert"],
            "filename": ["pytorch_model.bin", "pytorch_model.bin", "pytorch_model.bin", "model.bin"],
            "revision": [COMMIT_V1, "main", "main", COMMIT_EVIL],
            "label": [0, 0, 1, 0],
        }
    ).to_parquet(source)
    out = tmp_path / "data" / "hf_hub" / "full"
    build_hf_hub(out, source, offline=True, cache_dir=cache)
    frame = read_manifest("hf_hub", "full", tmp_path / "data")
    assert frame["sha256"].tolist() == [_sha(hub_files["v1"])]
    assert frame["group"].tolist() == ["acme/tiny-bert"]
    log = json.loads((out / "build_log.json").read_text())
    assert (log["counts"]["duplicates"], log["counts"]["label_conflicts"]) == (2, 1)


def test_source_list_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("SAFEPICKLE_HF_HUB_MANIFEST", raising=False)
    with pytest.raises(FileNotFoundError, match="dataset.manifest"):
        ensure_dataset("hf_hub", "full", tmp_path / "data")
    bad = tmp_path / "bad.csv"
    bad.write_text("repo,file,label\nacme/x,a.bin,benign\n")
    with pytest.raises(ManifestError, match="repo_id"):
        build_hf_hub(tmp_path / "out", bad, offline=True)
    with pytest.raises(FileNotFoundError, match="not found"):
        build_hf_hub(tmp_path / "out", tmp_path / "nope.csv", offline=True)


def test_fetch_errors_are_classified():
    from huggingface_hub import errors

    assert classify_error(errors.GatedRepoError("gated", response=None), offline=False) == "gated_repo"
    assert (
        classify_error(errors.RepositoryNotFoundError("x", response=None), offline=False) == "repo_not_found"
    )
    assert classify_error(errors.EntryNotFoundError("x", response=None), offline=False) == "file_not_found"
    assert classify_error(errors.HFValidationError("bad id"), offline=False) == "invalid_request"
    assert classify_error(ConnectionError("down"), offline=False) == "network"
    assert [
        infer_kind(n)
        for n in (
            "pytorch_model-00001-of-00002.bin",
            "optimizer.pt",
            "last.ckpt",
            "sub/training_args.bin",
            "model.joblib",
            "config.json",
        )
    ] == ["state_dict_shard", "optimizer_state", "checkpoint", "training_args", "estimator", "third_party"]


def test_hydra_build_data_task_builds_hf_hub(tmp_path, hub_files):
    from hydra import compose, initialize_config_dir

    from safepickle_bench.datasets.build import build_from_config

    data_dir = tmp_path / "data"
    _populate(data_dir / "hf_hub" / "small" / "hf_cache", hub_files)
    source = _source_list(tmp_path / "list.csv")
    from safepickle_bench.paths import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(
            "config",
            overrides=[
                "task=build_data",
                "dataset=hf_hub",
                "dataset.size=small",
                f"dataset.manifest={source}",
                "dataset.offline=true",
                f"paths.data_dir={data_dir}",
            ],
        )
    manifest = build_from_config(cfg)
    assert manifest == data_dir / "hf_hub" / "small" / "manifest.parquet"
    assert len(read_manifest("hf_hub", "small", data_dir)) == 3
