"""Run scanners over a dataset manifest and score them: F1 fail-closed and fail-open, FPR, error rate, time.

One record per (file, scanner): verdict, score, seconds, error, skipped. Scoring:
- fail-closed: an `error` verdict counts as malicious (the file is blocked);
- fail-open: an `error` verdict counts as benign (the file goes through);
- `precision`, `recall`, `fpr` are the fail-closed figures (fail-open ones are in `*_fail_open`);
- `error_rate` = share of files with an error verdict, `skip_rate` = share the tool did not look at;
- `ms_median`, `ms_p95` = milliseconds per file as the scanner measured them, in its `mode`
  (`in-process`: around the API call in a warm worker; `cli` / `subprocess`: the whole process).
A scanner that is not available here (no database, no key, not installed) gets one row with
`available=False`, its reason in `note`, and no figure at all.

Scanners that learn (`Scanner.learns`, the policy loader) are fitted on training files only: on the
dataset they were trained on, with the run's group k-fold split (each file is scanned by a copy fitted on
the other folds); on another dataset, on the benign files of `train_dataset`. Our exported model is not
scored on the dataset it was trained on (it would be scored on its own training files): its row says so.

Entry points: `benchmark(scanners, manifest, dataset)` and `run_from_config(cfg)` (Hydra, task=scanners).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from safepickle_bench.metrics import label_metrics
from safepickle_bench.scanners.base import Scanner, ScannerUnavailable, ScanResult
from safepickle_bench.splits import fold_ids

log = logging.getLogger(__name__)

METRIC_COLUMNS: tuple[str, ...] = (
    "dataset", "scanner", "f1_fail_closed", "f1_fail_open", "precision", "recall", "fpr", "error_rate",
    "ms_median", "ms_p95", "mode",
)
"""Columns of results/scanners.csv, in order (extra columns follow them)."""
EXTRA_COLUMNS: tuple[str, ...] = (
    "n_files", "n_malicious", "n_benign", "precision_fail_open", "recall_fail_open", "fpr_fail_open",
    "skip_rate", "tp", "fp", "tn", "fn", "n_error", "available", "note",
)

MATRIX_MALICIOUS = {"malicious": "detected", "benign": "missed", "error": "error"}
MATRIX_BENIGN = {"malicious": "false_positive", "benign": "clean", "error": "error"}


@dataclass(slots=True)
class ScannerRun:
    """The records of one scanner over one dataset, or why it did not run."""

    name: str
    mode: str
    available: bool
    note: str
    records: pd.DataFrame


def _relpath(row: Mapping[str, Any]) -> str:
    """Return the manifest-relative path of a row (or its absolute path)."""
    return str(row.get("path") or row.get("abspath"))


def scan_manifest(
    scanner: Scanner, manifest: pd.DataFrame, progress: Callable[[int, int], None] | None = None, workers: int = 1
) -> pd.DataFrame:
    """Scan every file of a manifest (`abspath`, `label`) with one scanner; return one record per file, in
    manifest order. `workers` > 1 scans that many files at once, only for a scanner with a process per file
    (its per-file seconds then include the contention)."""
    scanner.prepare(manifest)
    records = manifest.to_dict("records")
    total = len(records)

    def one(row: Mapping[str, Any]) -> dict[str, Any]:
        try:
            res = scanner.scan(row["abspath"])
        except ScannerUnavailable as exc:
            res = ScanResult.failed(f"unavailable: {exc}")
        return _record(scanner, row, res)

    concurrent = workers > 1 and scanner.process_per_file
    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=workers) if concurrent else nullcontext() as pool:
        for i, rec in enumerate(pool.map(one, records) if pool is not None else map(one, records)):
            rows.append(rec)
            if progress is not None:
                progress(i + 1, total)
    return pd.DataFrame(rows)


def _record(scanner: Scanner, row: Mapping[str, Any], res: ScanResult) -> dict[str, Any]:
    """Return one flat record of a scan."""
    return {
        "path": _relpath(row),
        "label": int(row["label"]),
        "scanner": scanner.name,
        "mode": scanner.mode,
        "verdict": res.verdict,
        "score": res.score,
        "seconds": res.seconds,
        "error": res.error,
        "skipped": bool(res.skipped),
        "findings": json.dumps(res.findings[:20]),
        **{k: row.get(k) for k in ("kind", "container", "producer", "evasion_technique", "payload_family")
           if k in row},
    }


def scan_learning(
    scanner: Scanner, manifest: pd.DataFrame, split: Any | None, train_manifest: pd.DataFrame | None,
    seed: int = 0,
) -> pd.DataFrame:
    """Scan with a learning scanner: out-of-fold on its own dataset, or fitted on `train_manifest`."""
    if train_manifest is not None:
        scanner.fit(train_manifest)
        return scan_manifest(scanner, manifest)
    if split is None:
        raise ValueError(f"{scanner.name} learns: give a split (cross-validation) or a training manifest")
    groups = manifest["group"].to_numpy() if "group" in manifest else None
    folds = fold_ids(split, manifest["label"].to_numpy(), groups)
    parts = []
    for k in sorted(set(folds.tolist())):
        train, test = manifest[folds != k], manifest[folds == k]
        scanner.fit(train)
        part = scan_manifest(scanner, test)
        part["fold"] = k
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def score_records(records: pd.DataFrame, dataset: str, scanner: str, mode: str) -> dict[str, Any]:
    """Return the metric row of one scanner's records (both error policies, time per file)."""
    y = records["label"].to_numpy(dtype=int)
    verdict = records["verdict"].to_numpy()
    err = verdict == "error"
    closed = label_metrics(y, ((verdict == "malicious") | err).astype(int))
    opened = label_metrics(y, (verdict == "malicious").astype(int))
    ms = records["seconds"].to_numpy(dtype=float) * 1000.0
    return {
        "dataset": dataset,
        "scanner": scanner,
        "f1_fail_closed": closed["f1"],
        "f1_fail_open": opened["f1"],
        "precision": closed["precision"],
        "recall": closed["recall"],
        "fpr": closed["fpr"],
        "error_rate": float(err.mean()) if len(err) else math.nan,
        "ms_median": float(np.median(ms)) if len(ms) else math.nan,
        "ms_p95": float(np.percentile(ms, 95)) if len(ms) else math.nan,
        "mode": mode,
        "n_files": len(records),
        "n_malicious": int((y == 1).sum()),
        "n_benign": int((y == 0).sum()),
        "precision_fail_open": opened["precision"],
        "recall_fail_open": opened["recall"],
        "fpr_fail_open": opened["fpr"],
        "skip_rate": float(records["skipped"].mean()) if len(records) else math.nan,
        "tp": closed["tp"], "fp": closed["fp"], "tn": closed["tn"], "fn": closed["fn"],
        "n_error": int(err.sum()),
        "available": True,
        "note": "",
    }


def unavailable_row(dataset: str, scanner: str, mode: str, reason: str) -> dict[str, Any]:
    """Return the metric row of a scanner that could not run: no figures, only the reason."""
    row: dict[str, Any] = {c: math.nan for c in (*METRIC_COLUMNS, *EXTRA_COLUMNS)}
    row.update({"dataset": dataset, "scanner": scanner, "mode": mode, "available": False,
                "note": f"unavailable: {reason}"})
    return row


def detection_matrix(records: pd.DataFrame) -> pd.DataFrame:
    """Return the per-sample matrix: rows = files, columns = scanners, cells detected/missed/error (benign:
    false_positive/clean/error)."""
    if records.empty:
        return pd.DataFrame()
    cell = np.where(
        records["label"].to_numpy() == 1,
        records["verdict"].map(MATRIX_MALICIOUS).to_numpy(),
        records["verdict"].map(MATRIX_BENIGN).to_numpy(),
    )
    frame = records.assign(cell=cell)
    index = ["path", "label"] + [c for c in ("evasion_technique",) if c in frame]
    matrix = frame.pivot_table(index=index, columns="scanner", values="cell", aggfunc="first")
    matrix.columns.name = None
    return matrix.reset_index()


def benchmark(
    scanners: Mapping[str, Scanner],
    manifest: pd.DataFrame,
    dataset: str,
    split: Any | None = None,
    train_manifest: pd.DataFrame | None = None,
    seed: int = 0,
    workers: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every scanner on the manifest; return (metrics, records). Never stops on a scanner's failure.
    `workers` > 1 scans files concurrently with scanners that run a process per file (see `scan_manifest`)."""
    metric_rows: list[dict[str, Any]] = []
    all_records: list[pd.DataFrame] = []
    for name, scanner in scanners.items():
        ok, why = scanner.available() if not scanner.learns else (True, "")
        if not ok:
            log.warning("scanner %s unavailable: %s", name, why)
            metric_rows.append(unavailable_row(dataset, name, scanner.mode, why))
            continue
        trained_on = getattr(scanner, "trained_on", lambda: None)()
        if trained_on is not None and trained_on == dataset:
            why = f"model trained on {dataset}: scoring it on its training files would leak"
            metric_rows.append(unavailable_row(dataset, name, scanner.mode, why))
            continue
        start = time.perf_counter()
        try:
            if scanner.learns:
                records = scan_learning(scanner, manifest, split, train_manifest, seed)
            else:
                records = scan_manifest(scanner, manifest, workers=workers)
        except Exception as exc:  # a scanner that breaks as a whole is reported, the others still run
            log.exception("scanner %s failed on %s", name, dataset)
            metric_rows.append(unavailable_row(dataset, name, scanner.mode, f"{type(exc).__name__}: {exc}"))
            continue
        finally:
            scanner.close()
        if records.empty:
            metric_rows.append(unavailable_row(dataset, name, scanner.mode, "no file scanned"))
            continue
        records["scanner"] = name
        row = score_records(records, dataset, name, scanner.mode)
        unavail = records["error"].fillna("").str.startswith("unavailable:")
        if unavail.all():
            row = unavailable_row(dataset, name, scanner.mode, str(records["error"].iloc[0]))
        row["note"] = row["note"] or f"{time.perf_counter() - start:.0f} s total"
        metric_rows.append(row)
        all_records.append(records)
    metrics = pd.DataFrame(metric_rows, columns=[*METRIC_COLUMNS, *EXTRA_COLUMNS])
    records = pd.concat(all_records, ignore_index=True) if all_records else pd.DataFrame()
    return metrics, records


# ----------------------------------------------------------------------------------------------- Hydra


def scanners_from_config(node: Any, only: Iterable[str] | None = None) -> dict[str, Scanner]:
    """Instantiate the scanners of a config node: a mapping name -> {_target_, ...} or a list of names."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from safepickle_bench.scanners.base import build_scanner

    wanted = set(only) if only else None
    out: dict[str, Scanner] = {}
    if OmegaConf.is_list(node) or isinstance(node, list | tuple):
        for name in node:
            if wanted is None or name in wanted:
                out[str(name)] = build_scanner(str(name))
        return out
    for name, sub in node.items():
        if wanted is not None and name not in wanted:
            continue
        if sub is None:
            continue
        out[str(name)] = instantiate(sub)
    return out


def _log_mlflow(cfg: Any, metrics: pd.DataFrame, files: list[Path]) -> None:
    """Log per-scanner metrics and the result files to MLflow, when the config has a tracking node."""
    import mlflow

    try:
        from safepickle_bench.config import run_config

        rc = run_config(cfg)
        uri, experiment, name = rc.tracking.uri, rc.tracking.experiment_name, rc.name
    except Exception:  # a config without the pipeline's groups: fall back to the raw values
        uri = cfg.tracking.get("uri") or None
        experiment = cfg.tracking.get("experiment_name", "safepickle-bench")
        name = str(cfg.get("name") or "scanners")
    if uri:
        mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=name):
        mlflow.set_tags({"task": "scanners", "dataset": str(cfg.dataset.name)})
        mlflow.log_params({"dataset": cfg.dataset.name, "size": cfg.dataset.get("size", "full"),
                           "scanners": ",".join(metrics["scanner"].astype(str))})
        for row in metrics.to_dict("records"):
            for key in ("f1_fail_closed", "f1_fail_open", "precision", "recall", "fpr", "error_rate",
                        "skip_rate", "ms_median", "ms_p95"):
                value = row.get(key)
                if value is not None and isinstance(value, float) and math.isfinite(value):
                    mlflow.log_metric(f"{row['scanner']}.{key}", value)
        for f in files:
            mlflow.log_artifact(str(f))


def run_from_config(cfg: Any) -> pd.DataFrame:
    """Hydra entry (task=scanners): benchmark `cfg.scanners` on `cfg.dataset`, write results, return metrics.

    Writes `<results_dir>/scanners/<dataset>/{metrics,records,matrix}.csv` and logs to MLflow when
    `cfg.tracking` is set. The per-sample matrix is returned too, as `metrics.attrs["matrix"]`.
    """
    from hydra.utils import instantiate

    from safepickle_bench.datasets import read_manifest

    name = str(cfg.dataset.name)
    size = str(cfg.dataset.get("size", "full"))
    data_dir = Path(str(cfg.paths.data_dir))
    try:
        from safepickle_bench.datasets import ensure_dataset

        ensure_dataset(name, size, data_dir, seed=int(cfg.get("seed", 0)))
    except ImportError:
        pass
    manifest = read_manifest(name, size, data_dir)
    bench = cfg.get("scanner_benchmark") or {}
    limit = bench.get("max_files")
    if limit:
        shuffled = manifest.sample(frac=1.0, random_state=int(cfg.get("seed", 0)))
        manifest = shuffled.groupby("label").head(max(1, int(limit) // 2)).reset_index(drop=True)
    scanners = scanners_from_config(cfg.scanners, bench.get("only"))
    train_manifest = None
    train_name = bench.get("train_dataset")
    if train_name and str(train_name) != name:
        train_manifest = read_manifest(str(train_name), size, data_dir)
    split = instantiate(cfg.split) if cfg.get("split") is not None and train_manifest is None else None
    metrics, records = benchmark(scanners, manifest, name, split, train_manifest, int(cfg.get("seed", 0)))
    matrix = detection_matrix(records)
    out_dir = Path(str(cfg.paths.results_dir)) / "scanners" / name
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "metrics.csv", out_dir / "records.csv", out_dir / "matrix.csv"]
    metrics.to_csv(files[0], index=False)
    records.to_csv(files[1], index=False)
    matrix.to_csv(files[2], index=False)
    if cfg.get("tracking") is not None:
        try:
            _log_mlflow(cfg, metrics, files)
        except Exception:  # tracking must not lose the results already written
            log.exception("MLflow logging failed; results are in %s", out_dir)
    metrics.attrs["matrix"] = matrix
    return metrics
