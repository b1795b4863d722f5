"""The PickleBall-style policy loader (our re-implementation) learns allow-lists from benign files and
rejects disallowed calls; lazy mode tolerates a disallowed global that is never called."""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("safepickle_bench.analysis.analyzer")

from safepickle_bench.scanners.policy_loader import PolicyLoaderScanner  # noqa: E402

MALICIOUS_PICKLE = b"\x80\x02cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hiq\x01\x85q\x02Rq\x03."
IMPORT_ONLY = b"\x80\x02}q\x00X\x01\x00\x00\x00fq\x01cbuiltins\nprint\nq\x02s."  # {'f': print}, never called


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    import torch

    d = tmp_path_factory.mktemp("policy")
    torch.save({"w": torch.ones(2)}, d / "torch_a.pt")
    torch.save({"b": torch.zeros(4)}, d / "torch_b.pt")
    (d / "plain_a.pkl").write_bytes(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    (d / "plain_test.pkl").write_bytes(pickle.dumps(collections.OrderedDict(z=[1, 2]), protocol=2))
    torch.save({"c": torch.zeros(1)}, d / "torch_test.pt")
    (d / "mal.pkl").write_bytes(MALICIOUS_PICKLE)
    (d / "import_only.pkl").write_bytes(IMPORT_ONLY)
    return {p.stem: p for p in d.iterdir()}


def _manifest(corpus: dict[str, Path]) -> pd.DataFrame:
    rows = [("torch_a", "torch"), ("torch_b", "torch"), ("plain_a", "plain")]
    return pd.DataFrame(
        {"abspath": [str(corpus[n]) for n, _ in rows], "producer": [p for _, p in rows], "label": 0}
    )


def test_policy_rejects_disallowed_call_and_accepts_known_files(corpus):
    scanner = PolicyLoaderScanner().fit(_manifest(corpus))
    assert scanner.available()[0]
    mal = scanner.scan(corpus["mal"])
    assert mal.verdict == "malicious" and "disallowed call: posix.system" in mal.findings
    assert scanner.scan(corpus["torch_test"]).verdict == "benign"
    assert scanner.scan(corpus["plain_test"]).verdict == "benign"


def test_lazy_mode_tolerates_imported_never_called_global_strict_mode_rejects(corpus):
    lazy = PolicyLoaderScanner(lazy=True).fit(_manifest(corpus))
    strict = PolicyLoaderScanner(lazy=False).fit(_manifest(corpus))
    tolerated = lazy.scan(corpus["import_only"])
    assert tolerated.verdict == "benign" and tolerated.score == 0.5
    assert any("builtins.print" in f for f in tolerated.findings)
    rejected = strict.scan(corpus["import_only"])
    assert rejected.verdict == "malicious" and "disallowed global: builtins.print" in rejected.findings


def test_per_library_policy_is_narrower_than_global(corpus):
    per_lib = PolicyLoaderScanner(scope="per_library").fit(_manifest(corpus))
    per_lib.set_producers({str(corpus["torch_test"]): "plain"})  # claims to be a "plain" file
    result = per_lib.scan(corpus["torch_test"])
    assert result.verdict == "malicious" and "policy: plain" in result.findings
    glob = PolicyLoaderScanner(scope="global").fit(_manifest(corpus))
    glob.set_producers({str(corpus["torch_test"]): "plain"})
    assert glob.scan(corpus["torch_test"]).verdict == "benign"


def test_policy_round_trips_through_json(corpus, tmp_path):
    scanner = PolicyLoaderScanner().fit(_manifest(corpus))
    path = scanner.save(tmp_path / "policy.json")
    assert "not PickleBall" in path.read_text()
    loaded = PolicyLoaderScanner(policy_path=str(path))
    assert loaded.policies.keys() == scanner.policies.keys()
    assert loaded.scan(corpus["mal"]).verdict == "malicious"


def test_unfitted_policy_loader_is_unavailable():
    ok, why = PolicyLoaderScanner().available()
    assert not ok and "no policy" in why
