"""Acceptance on real hostile samples: every wild file is analysed, and every malicious one shows the
dangerous callables its manifest names (read in place from ../shared/corpus/wild, never unpickled)."""

from __future__ import annotations

import _compat_pickle
from pathlib import Path

from safepickle_bench.analysis import Analysis, analyze_path

FORMAT_CONTAINERS = {
    "torch-zip": "zip",
    "zip": "zip",
    "torch-legacy": "torch_legacy",
    "npy": "npy",
    "npz": "npz",
}
"""Manifest `format` -> a container kind the analyzer must report for it."""


def canonical(qualname: str) -> str:
    """Map a Python 2 module path to the Python 3 one the loader imports (`__builtin__.eval` -> `builtins.eval`)."""
    module, _, name = qualname.rpartition(".")
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return ".".join(_compat_pickle.NAME_MAPPING[(module, name)])
    return f"{_compat_pickle.IMPORT_MAPPING.get(module, module)}.{name}"


def reported_callables(analysis: Analysis) -> set[str]:
    """Return every imported or called `module.name` of every stream, whatever its container path."""
    names = {i.qualname for i in analysis.all_imports()} | {c.callable for c in analysis.all_calls()}
    return names | {canonical(n) for n in names}


def test_wild_file_is_analysed_and_its_manifest_callables_are_reported(wild_row, no_dangerous_events):
    analysis = analyze_path(Path(wild_row["path"]))
    assert analysis.error is None
    assert analysis.sha256 == wild_row["sha256"]
    assert analysis.size == int(wild_row["size"])
    assert [a for a in analysis.all_anomalies() if a.kind == "internal_error"] == []
    expected_container = FORMAT_CONTAINERS.get(wild_row["format"])
    if expected_container == "torch_legacy" and "torch_legacy" not in analysis.containers:
        # the magic number may itself be computed by a call (an evasion): then every stream is still read
        assert len(analysis.streams) >= 5
    elif expected_container:
        assert expected_container in analysis.containers
    if wild_row["label"] == "malicious":
        wanted = [c for c in wild_row["callables"].split(";") if c]
        assert wanted, "a malicious manifest row names at least one callable"
        found = reported_callables(analysis)
        missing = [c for c in wanted if c not in found and canonical(c) not in found]
        assert missing == [], f"not reported: {missing}; reported: {sorted(found)}"


def test_whole_wild_corpus_is_analysed_quickly(wild_corpus, no_dangerous_events):
    rows = (wild_corpus / "MANIFEST.csv").read_text(encoding="utf-8").splitlines()[1:]
    analyses = [analyze_path(p) for p in sorted(wild_corpus.glob("*/*"))]
    assert len(analyses) == len(rows)
    assert all(a.error is None for a in analyses)
    assert sum(len(a.streams) for a in analyses) >= len(rows) - 8  # only non-pickle files have no stream
    assert sum(a.timings["total"] for a in analyses) < 10.0
