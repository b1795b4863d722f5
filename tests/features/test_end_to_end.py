"""Features of real files through the real analyzer: benign torch/joblib files stay clean, crafted payloads fire."""

from __future__ import annotations

import csv

import pytest

from safepickle_bench.analysis import analyze_bytes, analyze_path
from safepickle_bench.features import featurize, load_taxonomy
from safepickle_bench.features.opcode_frequency import SHARE_COLUMNS

DANGEROUS = sorted(load_taxonomy().dangerous)

# One crafted global per category; the bytes are hand-written opcodes, analysed and never loaded.
CRAFTED = {
    "process_shell": ("posix", "system"),
    "code_exec": ("__builtin__", "eval"),
    "dynamic_import_attr": ("builtins", "getattr"),
    "network": ("socket", "create_connection"),
    "file_write": ("shutil", "rmtree"),
    "nested_deserialisation": ("_pickle", "loads"),
    "advisory_gadgets": ("torch.utils.collect_env", "run"),
    "unknown_module": ("__main__", "Payload"),
}


def protocol0_call(module: str, name: str, arg: str = "echo marker") -> bytes:
    """Return a protocol-0 pickle that would call module.name(arg): GLOBAL, MARK, STRING, TUPLE, REDUCE, STOP."""
    return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()


def protocol4_call(module: str, name: str, arg: str = "echo marker") -> bytes:
    """Return a protocol-4 pickle that would call module.name(arg) through STACK_GLOBAL."""

    def s(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    return b"\x80\x04" + s(module) + s(name) + b"\x93" + s(arg) + b"\x85R."


@pytest.mark.parametrize("category", sorted(CRAFTED))
@pytest.mark.parametrize("build", [protocol0_call, protocol4_call])
def test_crafted_call_fires_its_category(category, build):
    module, name = CRAFTED[category]
    row = featurize(analyze_bytes(build(module, name), "crafted.pkl"))
    assert row[f"imports__{category}_count"] == 1.0
    assert row[f"imports__{category}_called"] == 1.0
    for other in DANGEROUS:
        if other != category:
            assert row[f"imports__{other}_count"] == 0.0
    assert row["imports__any_dangerous"] == float(category in DANGEROUS)
    assert row["structure__error"] == 0.0
    assert sum(row[c] for c in SHARE_COLUMNS) == pytest.approx(1.0)


def test_benign_torch_state_dict_has_no_dangerous_import(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    path = tmp_path / "pytorch_model.bin"
    torch.save(model.state_dict(), path)
    row = featurize(analyze_path(path))
    assert row["structure__container_torch_zip"] == 1.0
    assert row["imports__benign_ml_count"] > 0
    for category in [*DANGEROUS, "unknown_module"]:
        assert row[f"imports__{category}_count"] == 0.0, category
        assert row[f"imports__{category}_called"] == 0.0, category
    assert row["imports__any_dangerous"] == 0.0
    assert row["strings__shell_count"] == row["strings__url_count"] == row["strings__python_count"] == 0.0
    assert row["strings__n_dangerous_names"] == 0.0
    assert row["imports__n_unresolved_calls"] == row["imports__n_unresolved_imports"] == 0.0
    assert sum(row[c] for c in SHARE_COLUMNS) == pytest.approx(1.0)


def test_benign_joblib_estimator_has_no_dangerous_import(tmp_path):
    joblib = pytest.importorskip("joblib")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.1, 0.9]], [0, 1, 1, 0])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    row = featurize(analyze_path(path))
    assert row["imports__benign_ml_count"] > 0
    assert row["imports__any_dangerous"] == 0.0


def test_getattr_chain_is_caught_by_call_and_literal_counts():
    # getattr(__import__('os'), 'system')('echo marker'), written by hand with memo and STACK_GLOBAL
    def s(text: str) -> bytes:
        return b"\x8c" + bytes([len(text)]) + text.encode()

    data = (b"\x80\x04" + s("builtins") + s("getattr") + b"\x93" + s("builtins") + s("__import__") + b"\x93"
            + s("os") + b"\x85R" + s("system") + b"\x86R" + s("echo marker") + b"\x85R.")
    row = featurize(analyze_bytes(data, "chain.pkl"))
    assert row["imports__dynamic_import_attr_called"] >= 2.0
    assert row["strings__n_dangerous_names"] >= 2.0  # 'os', 'system', '__import__', 'getattr'
    assert row["strings__shell_count"] == 1.0


def test_wild_shell_payloads_fire_process_shell(wild_corpus):
    manifest = wild_corpus / "MANIFEST.csv"
    rows = [
        r
        for r in csv.DictReader(manifest.open())
        if r["label"] == "malicious"
        and {"os.system", "posix.system", "subprocess.call", "subprocess.Popen"}
        & set(r["callables"].split(";"))
    ]
    assert rows
    missed = [
        r["file"]
        for r in rows
        if featurize(analyze_path(wild_corpus / r["file"]), "imports")["imports__process_shell_present"] != 1.0
    ]
    assert not missed
