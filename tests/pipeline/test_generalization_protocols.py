"""Generalisation protocols: what each side of a split may hold, names disjoint between train and test under
unseen-names (from the manifests and from the analyzer's imports), and the experiment at tiny size."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from safepickle_bench.datasets import build_dataset, read_manifest
from safepickle_bench.pipeline.generalization import (
    ALL_NEW,
    NEW_FAMILIES,
    RESULT_COLUMNS,
    generated_names,
    generated_packages,
    heldout_benign_groups,
    leave_one_family_out,
    manifest_gadgets,
    protocol_splits,
    unseen_names,
)
from safepickle_bench.splits import group_kfold


def _synthetic() -> pd.DataFrame:
    """A manifest-like frame: benign groups, old families injected into carriers, new families per namespace."""
    rows = []
    for g in range(30):
        rows.append({"path": f"b{g}", "label": 0, "group": f"c{g}", "payload_family": "", "namespace": ""})
    for g in range(6):
        rows.append({"path": f"u{g}", "label": 0, "group": f"u{g}", "payload_family": "",
                     "namespace": ("train", "validation", "test")[g % 3]})
    for k, fam in enumerate(["os_system", "builtins_exec", "subprocess"]):
        for i in range(4):
            rows.append({"path": f"{fam}{i}", "label": 1, "group": f"c{(k * 4 + i) % 30}", "payload_family": fam,
                         "namespace": ""})
    for fam in NEW_FAMILIES:
        for ns in ("train", "validation", "test"):
            for i in range(3):
                rows.append({"path": f"{fam}{ns}{i}", "label": 1, "group": f"n:{fam}{ns}{i}",
                             "payload_family": fam, "namespace": ns})
    return pd.DataFrame(rows)


def test_leave_one_family_out_trains_without_the_family_and_without_any_test_group():
    m = _synthetic()
    heldout = heldout_benign_groups(m, group_kfold(5, 0))
    assert heldout
    splits = leave_one_family_out(m, heldout)
    assert [next(iter(s.families)) for s in splits][-4:] == list(NEW_FAMILIES)
    for s in splits:
        (family, rows), = s.families.items()
        train = m.iloc[s.train]
        test = m.iloc[s.test]
        assert family not in set(train["payload_family"])
        assert not set(train["group"]) & set(test["group"])
        assert set(m.iloc[rows]["payload_family"]) == {family}
        assert (test[test["label"] == 0]["group"].isin(heldout)).all() and (test["label"] == 0).any()


def test_unseen_names_trains_on_namespace_train_and_tests_on_namespace_test():
    m = _synthetic()
    s = unseen_names(m, heldout_benign_groups(m, group_kfold(5, 0)))
    train, test = m.iloc[s.train], m.iloc[s.test]
    assert set(train["namespace"]) <= {"", "train"} and set(test["namespace"]) <= {"", "test"}
    assert (train["namespace"] == "train").any() and (test["namespace"] == "test").any()
    assert not set(train["group"]) & set(test["group"])
    assert set(s.families) == {*NEW_FAMILIES, ALL_NEW}
    assert len(s.families[ALL_NEW]) == sum(len(s.families[f]) for f in NEW_FAMILIES)
    assert (test.loc[test["label"] == 1, "payload_family"].isin(NEW_FAMILIES)).all()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    build_dataset("generalization", "tiny", root / "data")
    return root, read_manifest("generalization", "tiny", root / "data").reset_index(drop=True)


@pytest.mark.slow
def test_unseen_names_test_gadgets_and_modules_are_absent_from_train(tiny):
    _, m = tiny
    split = next(s for s in protocol_splits(m, group_kfold(5, 0)) if s.protocol == "unseen_names")
    packages = generated_packages(m)
    assert packages
    train_gadgets = manifest_gadgets(m, split.train, packages)
    test_gadgets = manifest_gadgets(m, split.test, packages)
    assert train_gadgets and test_gadgets
    assert not train_gadgets & test_gadgets
    paths = m["abspath"].astype(str).to_numpy()
    train_names = set().union(*(generated_names(paths[i], packages) for i in split.train))
    test_names = set().union(*(generated_names(paths[i], packages) for i in split.test))
    assert train_names and test_names
    assert not train_names & test_names
    modules = {n.rsplit(".", 1)[0] for n in train_names} - {"__main__"}
    assert not modules & {n.rsplit(".", 1)[0] for n in test_names}
    assert not {n.split(".")[0] for n in train_names if not n.startswith(("__main__", "__torch__"))} & {
        n.split(".")[0] for n in test_names if not n.startswith(("__main__", "__torch__"))}


@pytest.mark.slow
def test_experiment_writes_one_row_per_protocol_family_and_method(tiny, tmp_path, monkeypatch):
    root, m = tiny
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parents[2] / "experiments"))
    sys.modules.pop("run_generalization", None)
    import run_generalization

    out = tmp_path / "results"
    assert run_generalization.main(["--size", "tiny", "--root", str(root), "--out", str(out), "--fast", "--models", "rf",
                                    "--features", "opcodes", "--scanners", "picklescan,clamav"]) == 0
    frame = pd.read_csv(out / "generalization.csv")
    assert list(frame.columns) == list(RESULT_COLUMNS)
    families = set(m.loc[m["label"] == 1, "payload_family"])
    lofo = frame[frame["protocol"] == "leave_one_family_out"]
    assert set(lofo["family"]) == families
    methods = set(zip(frame["method"], frame["features"], strict=True))
    assert ("rf", "opcodes") in methods
    assert set(frame.loc[frame["protocol"] == "unseen_names", "family"]) == {*NEW_FAMILIES, ALL_NEW}
    assert np.isfinite(frame[["recall", "fpr"]].to_numpy()).all()
    assert ((frame[["recall", "fpr"]] >= 0) & (frame[["recall", "fpr"]] <= 1)).all().all()
    text = (out / "generalization.md").read_text()
    assert "## leave_one_family_out" in text and "## unseen_names" in text and "tiny" in text
    if ("picklescan", "scanner") not in methods:
        assert "picklescan: skipped" in text
    assert "clamav" in text  # unavailable here or scored: either way named
