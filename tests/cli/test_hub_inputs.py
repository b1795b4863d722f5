"""Hugging Face inputs, offline: `hf://` references and the local Hub cache, on a cache in the Hub's layout.

The fixture cache has the exact layout huggingface_hub writes (blobs, symlinked snapshots, refs/main), so the
real `snapshot_download(local_files_only=True)` resolves revisions from it without any request to the Hub.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from safepickle_bench.cli.discover import Failed, Found, Options, Skipped, discover
from safepickle_bench.cli.hub import HubRef, cached_snapshots, default_cache_dir, parse_hub_ref
from tests.cli.conftest import COMMIT_1, COMMIT_2, COMMIT_EVIL

OFFLINE = Options(hf_local_only=True)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("hf://acme/tiny", HubRef("model", "acme/tiny")),
        ("hf://gpt2", HubRef("model", "gpt2")),
        ("hf://acme/tiny@v1.0", HubRef("model", "acme/tiny", "v1.0")),
        ("hf://acme/tiny@refs%2Fpr%2F3/sub/model.bin", HubRef("model", "acme/tiny", "refs/pr/3", "sub/model.bin")),
        ("hf://datasets/acme/table@main", HubRef("dataset", "acme/table", "main")),
        ("hf://spaces/acme/demo", HubRef("space", "acme/demo")),
    ],
)
def test_hub_references_are_parsed(text, ref):
    assert parse_hub_ref(text) == ref


@pytest.mark.parametrize("text", ["hf://", "hf://a/b/../../etc", "acme/tiny", "hf://a@"])
def test_malformed_hub_references_are_refused(text):
    with pytest.raises(ValueError, match="hf://"):
        parse_hub_ref(text)


def test_default_cache_follows_the_hub_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "a"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "hub"


def test_every_snapshot_of_every_repository_in_the_cache_is_listed(hub_cache):
    prefixes = [s.prefix for s in cached_snapshots(hub_cache)]
    assert prefixes == [
        f"hf://datasets/acme/table@{COMMIT_1}",
        f"hf://acme/tiny-bert@{COMMIT_1}",
        f"hf://acme/tiny-bert@{COMMIT_2}",
        f"hf://evil/rce-model@{COMMIT_EVIL}",
    ]


def test_the_cache_yields_model_files_with_hub_displays_and_skips_the_rest(hub_cache):
    entries = list(discover([], hf_cache=hub_cache))
    found = [e.display for e in entries if isinstance(e, Found)]
    assert found == [
        f"hf://datasets/acme/table@{COMMIT_1}/data/frame.pkl",
        f"hf://acme/tiny-bert@{COMMIT_1}/pytorch_model.bin",
        f"hf://acme/tiny-bert@{COMMIT_2}/pytorch_model.bin",
        f"hf://evil/rce-model@{COMMIT_EVIL}/sub/model.pkl",
    ]
    skipped = sorted(e.display.rsplit("/", 1)[1] for e in entries if isinstance(e, Skipped))
    assert skipped == ["README.md", "config.json"]
    assert all(e.path is not None and e.path.is_file() for e in entries if isinstance(e, Found))


def test_hf_references_resolve_offline_from_the_cache(hub_cache):
    options = Options(hf_cache_dir=hub_cache, hf_local_only=True)
    entries = list(discover(["hf://evil/rce-model", f"hf://acme/tiny-bert@{COMMIT_1}",
                             "hf://acme/tiny-bert@main/pytorch_model.bin"], options))
    assert [(type(e).__name__, e.display) for e in entries] == [
        ("Found", f"hf://evil/rce-model@{COMMIT_EVIL}/sub/model.pkl"),
        ("Skipped", f"hf://acme/tiny-bert@{COMMIT_1}/config.json"),
        ("Found", f"hf://acme/tiny-bert@{COMMIT_1}/pytorch_model.bin"),
        ("Found", f"hf://acme/tiny-bert@{COMMIT_2}/pytorch_model.bin"),
    ]


def test_a_repository_that_cannot_be_fetched_is_an_error_not_a_crash(hub_cache):
    options = Options(hf_cache_dir=hub_cache, hf_local_only=True)
    entries = list(discover(["hf://nobody/nothing", "hf://evil/rce-model@main/missing.bin", "hf://bad"], options))
    assert [type(e) for e in entries] == [Failed, Failed, Failed]
    assert "cannot fetch hf://nobody/nothing" in entries[0].error
    assert "'missing.bin' is not in" in entries[1].error


def test_a_missing_cache_folder_is_an_error(tmp_path):
    entries = list(discover([], hf_cache=tmp_path / "nowhere"))
    assert [type(e) for e in entries] == [Failed]


def test_analyze_reads_an_hf_reference_offline_in_a_fresh_process(hub_cache, tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(hub_cache), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "safepickle_bench", "analyze", "--json", "hf://evil/rce-model"],
        capture_output=True, text=True, timeout=120, check=False, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["path"] == f"hf://evil/rce-model@{COMMIT_EVIL}/sub/model.pkl"
    assert record["streams"][0]["calls"][0]["callable"] == "posix.system"
    assert Path(record["path"]).name == "model.pkl"
