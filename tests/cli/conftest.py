"""Fixtures of the command-line tests: a stand-in scan engine, a mixed folder, a Hugging Face cache.

The stand-in engine has the real engine's interface (`ScanItem`, `Verdict`, `scan_items`) and decides from
the analyzer alone (a dangerous import or call means malicious), so the front end (inputs, order, reports,
exit codes) is tested without a model; tests of the real engine and model live beside it.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from safepickle_bench.cli.engine import ScanItem, Verdict
from tests.conftest import BENIGN_PICKLE, PAYLOAD_P2, PAYLOAD_P4, torch_like_zip, zip_bytes

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


# The stand-in engine speaks the real engine's records, so the front end is tested against its interface.
FakeScanItem = ScanItem
FakeVerdict = Verdict


class FakeEngine:
    """Records the items and options it is given; verdicts from the analyzer's dangerous findings."""

    def __init__(self) -> None:
        self.items: list[FakeScanItem] = []
        self.kwargs: dict[str, Any] = {}
        self.fail_after: int | None = None

    def scan_items(self, items: Iterable[FakeScanItem], **kwargs: Any) -> Iterator[FakeVerdict]:
        from safepickle_bench.analysis import analyze_bytes, analyze_path
        from safepickle_bench.models.explain import analyzer_reasons

        self.kwargs = kwargs
        for item in items:
            if self.fail_after is not None and len(self.items) >= self.fail_after:
                raise RuntimeError("worker lost")
            self.items.append(item)
            if item.data is not None:
                analysis = analyze_bytes(item.data, item.display)
            else:
                analysis = analyze_path(item.path)
            if analysis.error:
                yield FakeVerdict(item.display, "error", None, 0.5, [], [], analysis.error)
                continue
            reasons = analyzer_reasons(analysis)
            bad = any(r["kind"] in ("import", "call") for r in reasons)
            top = [{"kind": "feature", "name": "imports__dangerous", "value": 1.0, "contribution": 0.4,
                    "method": "fake"}] if bad else []
            yield FakeVerdict(item.display, "malicious" if bad else "clean", 0.97 if bad else 0.02, 0.5,
                              reasons, top)


@pytest.fixture
def fake_engine(monkeypatch) -> FakeEngine:
    """Put a stand-in `safepickle_bench.cli.engine` module in place for the test."""
    engine = FakeEngine()
    module = types.ModuleType("safepickle_bench.cli.engine")
    module.ScanItem = FakeScanItem  # type: ignore[attr-defined]
    module.Verdict = FakeVerdict  # type: ignore[attr-defined]
    module.scan_items = engine.scan_items  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "safepickle_bench.cli.engine", module)
    return engine


def tar_bytes(entries: dict[str, bytes], mode: str = "w") -> bytes:
    """Return a tar archive (mode `w`, `w:gz`, `w:bz2`, `w:xz`) holding `entries`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_mixed_folder(root: Path) -> dict[str, str]:
    """Write a folder mixing pickles, model zips, archives, text and images; return {relative path: expected}.

    expected is `malicious`, `clean` or `skipped` for files, and the same for `archive!member` entries.
    """
    files: dict[str, bytes] = {
        "models/evil.pkl": PAYLOAD_P2,
        "models/weights.bin": torch_like_zip(BENIGN_PICKLE),
        "models/evil_torch.pt": torch_like_zip(PAYLOAD_P4),
        "models/no_extension": BENIGN_PICKLE,
        "bundle.zip": zip_bytes({"inner/evil.pkl": PAYLOAD_P4, "inner/readme.md": b"# notes\n",
                                 "inner/ok.joblib": BENIGN_PICKLE}),
        "release.tar.gz": tar_bytes({"model/evil.bin": PAYLOAD_P2, "model/config.json": b'{"a": 1}'}, "w:gz"),
        "README.md": b"# A model repository\n\nLoad it with torch.load.\n",
        "config.json": b'{"architectures": ["Bert"], "hidden_size": 8}',
        "images/logo.png": PNG,
        "empty.txt": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return {
        "bundle.zip!inner/evil.pkl": "malicious",
        "bundle.zip!inner/ok.joblib": "clean",
        "bundle.zip!inner/readme.md": "skipped",
        "config.json": "skipped",
        "empty.txt": "skipped",
        "images/logo.png": "skipped",
        "models/evil.pkl": "malicious",
        "models/evil_torch.pt": "malicious",
        "models/no_extension": "clean",
        "models/weights.bin": "clean",
        "README.md": "skipped",
        "release.tar.gz!model/config.json": "skipped",
        "release.tar.gz!model/evil.bin": "malicious",
    }


@pytest.fixture
def mixed_folder(tmp_path) -> tuple[Path, dict[str, str]]:
    """A folder of model files, archives, text and images, with what each entry should become."""
    root = tmp_path / "repo"
    root.mkdir()
    return root, write_mixed_folder(root)


def cache_repo(cache: Path, repo_id: str, snapshots: dict[str, dict[str, bytes]], main: str,
               kind: str = "models") -> None:
    """Write one repo into `cache` in huggingface_hub's layout: blobs, symlinked snapshots, refs/main."""
    repo = cache / (f"{kind}--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(main)  # huggingface_hub writes the bare hash, no newline
    for commit, files in snapshots.items():
        for filename, data in files.items():
            etag = hashlib.sha256(data).hexdigest()
            (repo / "blobs" / etag).write_bytes(data)
            pointer = repo / "snapshots" / commit / filename
            pointer.parent.mkdir(parents=True, exist_ok=True)
            pointer.symlink_to(os.path.relpath(repo / "blobs" / etag, pointer.parent))


COMMIT_1 = "1" * 40
COMMIT_2 = "2" * 40
COMMIT_EVIL = "e" * 40


@pytest.fixture
def hub_cache(tmp_path) -> Path:
    """A Hub cache: a model with two revisions, a malicious model, a dataset repo, and a `.locks` folder."""
    cache = tmp_path / "hf_cache"
    cache_repo(cache, "acme/tiny-bert", {
        COMMIT_1: {"pytorch_model.bin": torch_like_zip(BENIGN_PICKLE), "config.json": b'{"a": 1}'},
        COMMIT_2: {"pytorch_model.bin": torch_like_zip(BENIGN_PICKLE, folder="v2"), "README.md": b"# tiny\n"},
    }, main=COMMIT_2)
    cache_repo(cache, "evil/rce-model", {COMMIT_EVIL: {"sub/model.pkl": PAYLOAD_P2}}, main=COMMIT_EVIL)
    cache_repo(cache, "acme/table", {COMMIT_1: {"data/frame.pkl": BENIGN_PICKLE}}, main=COMMIT_1, kind="datasets")
    (cache / ".locks").mkdir()
    return cache
