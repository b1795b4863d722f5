"""Fold assignment: one splits module gives every caller the fold ids the three former copies gave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from safepickle_bench.paths import CONF_DIR
from safepickle_bench.splits import effective_splits, fold_ids, group_kfold, split_indices


def _manifest(seed: int, n_groups: int = 60) -> pd.DataFrame:
    """Return a generated manifest: benign carriers in groups, some with infected copies in the same group."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        for _ in range(int(rng.integers(1, 5))):
            rows.append({"group": f"g{g:03d}", "label": 0})
        for _ in range(int(rng.integers(0, 3)) * int(rng.random() < 0.4)):
            rows.append({"group": f"g{g:03d}", "label": 1})
    return pd.DataFrame(rows)


def _previous_attack_fold_ids(manifest: pd.DataFrame, n_splits: int, seed: int) -> np.ndarray:
    """The attack benchmark's former fold assignment, kept as the reference."""
    folds = np.full(len(manifest), -1)
    split = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    y = manifest["label"].to_numpy()
    for k, (_, test) in enumerate(split.split(np.zeros((len(y), 1)), y, manifest["group"].to_numpy())):
        folds[test] = k
    return folds


def _previous_scanner_fold_ids(manifest: pd.DataFrame, split: object) -> np.ndarray:
    """The scanner benchmark's former fold assignment (its splitter from the config), kept as the reference."""
    folds = np.full(len(manifest), -1)
    y = manifest["label"].to_numpy()
    groups = manifest["group"].to_numpy() if "group" in manifest else None
    for k, (_, test) in enumerate(split.split(np.zeros((len(manifest), 1)), y, groups)):
        folds[test] = k
    return folds


def _config_splitter(name: str, seed: int) -> object:
    """Instantiate a `conf/split` option the way the Hydra runs do."""
    node = OmegaConf.load(CONF_DIR / "split" / f"{name}.yaml")
    return instantiate(OmegaConf.merge({"seed": seed}, {"s": node}).s)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_fold_ids_are_identical_to_the_former_attack_and_scanner_assignments(seed):
    manifest = _manifest(seed)
    y, groups = manifest["label"].to_numpy(), manifest["group"].to_numpy()
    new = fold_ids(group_kfold(5, seed), y, groups)
    assert np.array_equal(new, _previous_attack_fold_ids(manifest, 5, seed))
    assert np.array_equal(new, _previous_scanner_fold_ids(manifest, _config_splitter("group_kfold", seed)))
    assert set(new.tolist()) == set(range(5))
    for g, part in pd.Series(new).groupby(groups):
        assert part.nunique() == 1, f"group {g} split across folds"


@pytest.mark.parametrize("name", ["group_kfold", "stratified_kfold"])
def test_model_evaluation_folds_do_not_depend_on_feature_values(name):
    manifest = _manifest(3)
    y, groups = manifest["label"].to_numpy(), manifest["group"].to_numpy()
    X = np.random.default_rng(0).normal(size=(len(y), 7))  # the former evaluation split the feature matrix
    before = list(_config_splitter(name, 0).split(X, y, groups))
    after = split_indices(_config_splitter(name, 0), y, groups)
    assert len(before) == len(after)
    for (tr0, te0), (tr1, te1) in zip(before, after, strict=True):
        assert np.array_equal(tr0, tr1) and np.array_equal(te0, te1)


def test_effective_splits_lowers_folds_to_the_groups_of_the_smaller_class():
    y = np.array([0] * 10 + [1] * 3)
    groups = np.array([f"b{i}" for i in range(10)] + ["m0", "m1", "m1"])
    splitter = effective_splits(group_kfold(5, 0), y, groups)
    assert splitter.n_splits == 2
    assert sorted(set(fold_ids(splitter, y, groups).tolist())) == [0, 1]
    assert effective_splits(StratifiedKFold(n_splits=3), np.array([0, 1] * 6), np.arange(12)).n_splits == 3
