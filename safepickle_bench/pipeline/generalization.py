"""The generalisation protocols on the `generalization` dataset: leave-one-family-out and unseen-names.

Both hold out whole split groups of benign files (fold `HELDOUT_FOLD` of the run's group k-fold over the
dataset, the same assignment `splits.fold_ids` gives everywhere), so a carrier and its injected twins never
sit on both sides.

- leave-one-family-out: for each malicious family F (old and new), train on every other family and the
  benign files outside the held-out groups and outside F's groups; test on F's files + the held-out benign.
- unseen-names: train on namespace `train` (new families + benign files of generated names) plus the old
  families and the benign files without generated names; test on namespace `test` (new families + benign
  files of test names) plus the held-out benign files without generated names. Namespace `validation` is
  used by neither side. `generated_names` lists the generated names a file refers to (from the analyzer's
  imports), so a test can check that the two sides share none.

Detectors: the threshold is chosen on the TRAINING files' out-of-fold scores (inner group k-fold) at
FPR <= target (`models.threshold.choose_threshold`, the rule the exported detector uses); recall and FPR
are then measured on the test files at that threshold. Scanners have no threshold: their verdict counts,
fail-closed (an error blocks the file), as in the scanner benchmark; they scan each test file once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone

from safepickle_bench.metrics import label_metrics, tpr_at_fpr
from safepickle_bench.models.base import BaseDetector
from safepickle_bench.models.threshold import DEFAULT_TARGET_FPR, choose_threshold
from safepickle_bench.pipeline.evaluate import out_of_fold_scores
from safepickle_bench.scanners.base import Scanner
from safepickle_bench.splits import fold_ids

log = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = ("leave_one_family_out", "unseen_names")
RESULT_COLUMNS: tuple[str, ...] = ("protocol", "family", "method", "features", "recall", "fpr", "n_malicious",
                                   "n_benign", "recall_at_target_fpr")
"""Columns of results/generalization.csv, in order. `recall`/`fpr`: at the threshold chosen on the training
files (what a shipped detector does); `recall_at_target_fpr`: the highest recall whose FPR on the held-out
benign files stays <= the target (the ROC operating point; detectors only, empty for scanners)."""
NEW_FAMILIES: tuple[str, ...] = ("unknown_gadget", "reexport", "obfuscated", "staged")
"""The families drawn from generated names (their samples carry a namespace)."""
ALL_NEW = "all_new_families"
"""The family label of the unseen-names row over every new family together."""
HELDOUT_FOLD = 0
"""The fold of the group k-fold whose benign groups are held out from every training set."""
TRAIN_NAMESPACES: tuple[str, ...] = ("", "train")
TEST_NAMESPACES: tuple[str, ...] = ("test",)


@dataclass(frozen=True)
class ProtocolSplit:
    """One train/test split of a protocol: row positions, and the test rows of each family scored."""

    protocol: str
    train: np.ndarray
    test: np.ndarray
    families: dict[str, np.ndarray]
    """family -> the malicious test rows it is reported on (a subset of `test`)."""


@dataclass(frozen=True)
class DetectorMethod:
    """A detector to evaluate: its name, feature set name and an unfitted estimator."""

    name: str
    features: str
    estimator: BaseDetector


# ------------------------------------------------------------------------------------------------ splits


def heldout_benign_groups(manifest: pd.DataFrame, splitter: Any) -> set[str]:
    """Return the groups of benign files in `HELDOUT_FOLD` of the splitter over the whole dataset."""
    y = manifest["label"].to_numpy(dtype=int)
    groups = manifest["group"].astype(str).to_numpy()
    folds = fold_ids(splitter, y, groups)
    return set(groups[(folds == HELDOUT_FOLD) & (y == 0)])


def _families(manifest: pd.DataFrame) -> list[str]:
    """Return the malicious families of a manifest: old ones first (sorted), then the new ones."""
    found = set(manifest.loc[manifest["label"] == 1, "payload_family"].astype(str))
    return sorted(found - set(NEW_FAMILIES)) + [f for f in NEW_FAMILIES if f in found]


def leave_one_family_out(manifest: pd.DataFrame, heldout: set[str]) -> list[ProtocolSplit]:
    """Return one split per malicious family: train without the family and without the held-out groups."""
    y = manifest["label"].to_numpy(dtype=int)
    groups = manifest["group"].astype(str).to_numpy()
    family = manifest["payload_family"].astype(str).to_numpy()
    in_heldout = np.isin(groups, list(heldout))
    splits = []
    for name in _families(manifest):
        target = (y == 1) & (family == name)
        blocked = in_heldout | np.isin(groups, list(set(groups[target])))
        train = np.flatnonzero(~blocked & ~target)
        test_benign = np.flatnonzero(in_heldout & (y == 0))
        test_malicious = np.flatnonzero(target)
        splits.append(ProtocolSplit("leave_one_family_out", train, np.concatenate([test_malicious, test_benign]),
                                    {name: test_malicious}))
    return splits


def unseen_names(manifest: pd.DataFrame, heldout: set[str]) -> ProtocolSplit:
    """Return the unseen-names split: train on namespace `train`, test on namespace `test` (see module doc)."""
    y = manifest["label"].to_numpy(dtype=int)
    groups = manifest["group"].astype(str).to_numpy()
    namespace = manifest["namespace"].fillna("").astype(str).to_numpy()
    family = manifest["payload_family"].astype(str).to_numpy()
    in_heldout = np.isin(groups, list(heldout))
    test_mask = np.isin(namespace, TEST_NAMESPACES) | (in_heldout & (y == 0) & (namespace == ""))
    blocked = np.isin(groups, list(set(groups[test_mask]))) | in_heldout
    train_mask = np.isin(namespace, TRAIN_NAMESPACES) & ~blocked
    test = np.flatnonzero(test_mask)
    new_test = test_mask & (y == 1) & np.isin(family, NEW_FAMILIES)
    families = {f: np.flatnonzero(new_test & (family == f)) for f in NEW_FAMILIES}
    families = {f: rows for f, rows in families.items() if len(rows)}
    families[ALL_NEW] = np.flatnonzero(new_test)
    return ProtocolSplit("unseen_names", np.flatnonzero(train_mask), test, families)


def protocol_splits(manifest: pd.DataFrame, splitter: Any) -> list[ProtocolSplit]:
    """Return every split of both protocols on a generalization manifest."""
    heldout = heldout_benign_groups(manifest, splitter)
    return [*leave_one_family_out(manifest, heldout), unseen_names(manifest, heldout)]


# ------------------------------------------------------------------------------------- generated names


def generated_packages(manifest: pd.DataFrame) -> set[str]:
    """Return the top-level packages the dataset generated: the throwaway packages beside its files (`pkgs/`)
    and the module folders of its TorchScript archives, less any package installed here."""
    import importlib.util
    import zipfile

    found: set[str] = set()
    for path in manifest["abspath"].astype(str):
        folder = Path(path).parent / "pkgs"
        if folder.is_dir():
            found |= {p.stem for p in folder.iterdir() if p.is_dir() or p.suffix == ".py"}
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    at = member.find("/code/__torch__/")
                    if at >= 0:
                        found.add(member[at + len("/code/__torch__/"):].split("/", 1)[0].removesuffix(".py"))
    # generated names are never those of an installed package (TorchScript archives also name `torch`)
    return {name for name in found if name.isidentifier() and importlib.util.find_spec(name) is None}


def generated_names(path: str, packages: set[str]) -> set[str]:
    """Return the dotted names a file imports (per the analyzer) that are generated: under one of `packages`
    (also as `__torch__.<package>`), or `__main__` attributes."""
    from safepickle_bench.analysis import analyze_path

    names: set[str] = set()
    for imp in analyze_path(path).all_imports():
        module = str(imp.module)
        parts = module.split(".")
        top = parts[1] if parts[0] == "__torch__" and len(parts) > 1 else parts[0]
        if top in packages or parts[0] == "__main__":
            names.add(f"{module}.{imp.name}")
    return names


def manifest_gadgets(manifest: pd.DataFrame, rows: Iterable[int], packages: set[str]) -> set[str]:
    """Return the generated gadget names (and their modules) the manifest records for `rows`."""
    out: set[str] = set()
    for gadget in manifest["gadget"].fillna("").astype(str).to_numpy()[list(rows)]:
        parts = gadget.split(".")
        if gadget and parts[0] in packages:
            out |= {".".join(parts[:k]) for k in range(2, len(parts) + 1)}
    return out


# ------------------------------------------------------------------------------------------------ scoring


def _row(protocol: str, family: str, method: str, features: str, y: np.ndarray, pred: np.ndarray,
         rows: np.ndarray, benign: np.ndarray, scores: np.ndarray | None = None,
         target_fpr: float = DEFAULT_TARGET_FPR) -> dict[str, Any]:
    """Return one result row: recall on the family's rows and FPR on the benign test rows (and, given scores,
    the recall at the held-out operating point of FPR <= target_fpr)."""
    idx = np.concatenate([rows, benign])
    m = label_metrics(y[idx], pred[idx])
    at_target = tpr_at_fpr(y[idx], scores[idx], target_fpr) if scores is not None else math.nan
    return {"protocol": protocol, "family": family, "method": method, "features": features,
            "recall": m["recall"], "fpr": m["fpr"], "n_malicious": len(rows), "n_benign": len(benign),
            "recall_at_target_fpr": at_target}


def detector_rows(method: DetectorMethod, X: np.ndarray, y: np.ndarray, groups: np.ndarray, split: ProtocolSplit,
                  splitter: Any, target_fpr: float = DEFAULT_TARGET_FPR, n_jobs: int = 1) -> list[dict[str, Any]]:
    """Fit the method on the split's training rows, threshold it on their out-of-fold scores, score the test."""
    tr = split.train
    oof = out_of_fold_scores(method.estimator, X[tr], y[tr], groups[tr], splitter, n_jobs=n_jobs)
    choice = choose_threshold(oof, y[tr], target_fpr, method="out-of-fold scores of the training files")
    model = clone(method.estimator).fit(X[tr], y[tr])
    scores = np.zeros(len(y), dtype=float)
    scores[split.test] = model.predict_proba(X[split.test])[:, 1]
    pred = (scores >= choice.threshold).astype(int)
    benign = split.test[y[split.test] == 0]
    return [_row(split.protocol, fam, method.name, method.features, y, pred, rows, benign, scores, target_fpr)
            for fam, rows in split.families.items()]


def scanner_predictions(records: pd.DataFrame, paths: np.ndarray) -> np.ndarray:
    """Return a scanner's fail-closed predictions (malicious or error -> 1) aligned to `paths` (-1 unscanned)."""
    verdict = dict(zip(records["path"].astype(str), records["verdict"].astype(str), strict=True))
    return np.array([-1 if p not in verdict else int(verdict[p] != "benign") for p in paths], dtype=int)


def scanner_rows(name: str, pred: np.ndarray, y: np.ndarray, split: ProtocolSplit) -> list[dict[str, Any]]:
    """Return a scanner's result rows on a split (its verdict, no threshold)."""
    if (pred[split.test] < 0).any():
        raise ValueError(f"scanner {name} did not scan every test file of {split.protocol}")
    benign = split.test[y[split.test] == 0]
    return [_row(split.protocol, fam, name, "scanner", y, pred, rows, benign) for fam, rows in split.families.items()]


def scan_files(scanners: Mapping[str, Scanner], manifest: pd.DataFrame,
               workers: int = 1) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Scan the manifest's files with every available scanner (the scanner benchmark's machinery, `workers`
    files at once for scanners with a process per file: no timing is reported here); return
    ({scanner: records}, notes on the scanners that did not run)."""
    from safepickle_bench.pipeline.scanner_benchmark import benchmark

    records: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    for name, scanner in scanners.items():
        if scanner.learns:
            notes.append(f"{name}: skipped (it learns from training files; not part of this protocol)")
            continue
        metrics, recs = benchmark({name: scanner}, manifest, "generalization", workers=workers)
        row = metrics.iloc[0]
        if not bool(row["available"]) or recs.empty:
            notes.append(f"{name}: skipped ({row['note']})")
            continue
        records[name] = recs
    return records, notes


def run_protocols(
    manifest: pd.DataFrame,
    features: Mapping[str, np.ndarray],
    methods: Iterable[DetectorMethod],
    scanners: Mapping[str, Scanner],
    splitter: Any,
    target_fpr: float = DEFAULT_TARGET_FPR,
    n_jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Run both protocols for every detector method (features[method.features] aligned to the manifest) and
    every scanner; return (results with RESULT_COLUMNS, notes)."""
    manifest = manifest.reset_index(drop=True)
    y = manifest["label"].to_numpy(dtype=int)
    groups = manifest["group"].astype(str).to_numpy()
    splits = protocol_splits(manifest, splitter)
    rows: list[dict[str, Any]] = []
    for method in methods:
        t0 = time.perf_counter()
        X = np.asarray(features[method.features], dtype=np.float64)
        for split in splits:
            rows += detector_rows(method, X, y, groups, split, splitter, target_fpr, n_jobs)
        if progress:
            progress(f"{method.name}/{method.features}: {time.perf_counter() - t0:.0f} s")
    tested = np.unique(np.concatenate([s.test for s in splits]))
    records, notes = scan_files(scanners, manifest.iloc[tested], workers=joblib.effective_n_jobs(n_jobs))
    paths = manifest["path"].astype(str).to_numpy()
    for name, recs in records.items():
        pred = scanner_predictions(recs, paths)
        for split in splits:
            rows += scanner_rows(name, pred, y, split)
        if progress:
            progress(f"scanner {name}: done")
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return frame, notes


def check_results(frame: pd.DataFrame) -> None:
    """Raise ValueError when a result row is out of range (recall/FPR outside [0, 1], counts missing)."""
    for column in ("recall", "fpr"):
        values = frame[column].to_numpy(dtype=float)
        bad = ~np.isnan(values) & ((values < 0) | (values > 1))
        if bad.any():
            raise ValueError(f"{column} outside [0, 1] in {int(bad.sum())} rows")
    if (frame["n_malicious"] <= 0).any() or (frame["n_benign"] <= 0).any():
        raise ValueError("every result row needs malicious and benign test files")
    if frame["recall"].isna().any() or not all(math.isfinite(v) for v in frame["fpr"]):
        raise ValueError("a result row has no recall or FPR")
