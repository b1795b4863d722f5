"""A trained detector on disk: export to `models/<name>/` (non-pickle) and load it back to scan files."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from safepickle_bench.analysis.result import Analysis
from safepickle_bench.models.base import BaseDetector, as_matrix
from safepickle_bench.models.explain import analyzer_reasons, top_feature_reasons
from safepickle_bench.models.registry import detector_class

DETECTOR_JSON = "detector.json"
EXPORT_FORMAT_VERSION = 1


@dataclass(slots=True)
class FileVerdict:
    """Our scanner's answer for one file: verdict, score, the reasons, and the error when it failed."""

    path: str
    verdict: str
    score: float
    reasons: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as a JSON-ready dict."""
        return asdict(self)


def _jsonable(value: Any) -> Any:
    """Return value with numpy scalars/arrays and tuples turned into JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def export_detector(
    estimator: BaseDetector,
    directory: Path,
    *,
    feature_groups: list[str],
    feature_columns: list[str],
    feature_version: str,
    training: dict[str, Any],
    metrics: dict[str, float] | None = None,
    limits: dict[str, Any] | None = None,
) -> Path:
    """Write the fitted estimator (native non-pickle format) and `detector.json` into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        if old.is_file() and old.name.startswith("model."):
            old.unlink()
    native = estimator.save_native(directory)
    meta = {
        "export_format_version": EXPORT_FORMAT_VERSION,
        "model_class": type(estimator).__name__,
        "model_kind": "supervised" if estimator.supervised else "unsupervised",
        "library": estimator.library,
        "params": _jsonable(estimator.get_params()),
        "contribution_method": estimator.contribution_method,
        "feature_groups": list(feature_groups),
        "feature_columns": list(feature_columns),
        "feature_version": str(feature_version),
        "training": _jsonable(training),
        "metrics": _jsonable(metrics or {}),
        "limits": _jsonable(limits or {}),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **_jsonable(native),
    }
    path = directory / DETECTOR_JSON
    path.write_text(json.dumps(meta, indent=2, allow_nan=True), encoding="utf-8")
    return path


class LoadedDetector:
    """An exported detector ready to scan: analysis -> features -> score -> verdict with reasons."""

    def __init__(self, estimator: BaseDetector, meta: dict[str, Any], directory: Path) -> None:
        self.estimator = estimator
        self.meta = meta
        self.directory = directory
        self.feature_groups: list[str] = list(meta["feature_groups"])
        self.feature_columns: list[str] = list(meta["feature_columns"])
        self.threshold = float(meta["threshold"])
        self.warnings: list[str] = []
        from safepickle_bench.features import FEATURE_VERSION

        if str(FEATURE_VERSION) != str(meta.get("feature_version")):
            self.warnings.append(
                f"model trained with feature version {meta.get('feature_version')}, code has {FEATURE_VERSION}"
            )

    def features(self, analyses: list[Analysis]) -> np.ndarray:
        """Return the feature matrix of analyses, columns in the order the model was trained on."""
        from safepickle_bench.features import feature_columns, featurize_array

        current = feature_columns(self.feature_groups)
        if current == self.feature_columns:
            take = None
        else:
            pos = {c: i for i, c in enumerate(current)}
            missing = [c for c in self.feature_columns if c not in pos]
            if missing:
                raise ValueError(f"model needs feature columns this code does not produce: {missing[:5]}")
            take = np.array([pos[c] for c in self.feature_columns], dtype=np.intp)
        rows = [featurize_array(a, self.feature_groups)[0] for a in analyses]
        X = np.vstack(rows) if rows else np.zeros((0, len(self.feature_columns)))
        return as_matrix(X if take is None else X[:, take])

    def predict_analysis(self, analyses: list[Analysis], top_k: int = 5) -> list[FileVerdict]:
        """Score analyses already made and return one verdict per file, with reasons."""
        ok = [a for a in analyses if a.error is None]
        scores: dict[int, tuple[float, np.ndarray, np.ndarray | None]] = {}
        if ok:
            X = self.features(ok)
            proba = self.estimator.predict_proba(X)[:, 1]
            contribs = self.estimator.contributions(X) if top_k > 0 else None
            for i, a in enumerate(ok):
                scores[id(a)] = (float(proba[i]), X[i], None if contribs is None else contribs[i])
        out: list[FileVerdict] = []
        for a in analyses:
            if a.error is not None:
                out.append(FileVerdict(a.path, "error", float("nan"), [], a.error))
                continue
            score, x, contrib = scores[id(a)]
            reasons = analyzer_reasons(a) + top_feature_reasons(
                contrib, x, self.feature_columns, self.estimator.contribution_method, top_k
            )
            verdict = "malicious" if score >= self.threshold else "benign"
            out.append(FileVerdict(a.path, verdict, score, reasons))
        return out

    def score_paths(self, paths: list[str | Path], top_k: int = 5) -> list[FileVerdict]:
        """Analyse each file (bytes only, never loaded), score it and return verdicts with reasons."""
        from safepickle_bench.analysis import analyze_path
        from safepickle_bench.analysis.limits import Limits

        limits = Limits.from_mapping(self.meta.get("limits"))
        verdicts: list[FileVerdict] = []
        for p in paths:
            t0 = time.perf_counter()
            try:
                analysis = analyze_path(str(p), limits=limits)
                verdict = self.predict_analysis([analysis], top_k=top_k)[0]
            except Exception as exc:  # a bad file is an error verdict, never a crash
                verdict = FileVerdict(str(p), "error", float("nan"), [], f"{type(exc).__name__}: {exc}")
            verdict.path = str(p)
            verdict.seconds = time.perf_counter() - t0
            verdicts.append(verdict)
        return verdicts


def load_detector(directory: str | Path) -> LoadedDetector:
    """Load an exported detector from `directory` (reads `detector.json` and the native model file)."""
    directory = Path(directory)
    meta_path = directory / DETECTOR_JSON
    if not meta_path.is_file():
        raise FileNotFoundError(f"no {DETECTOR_JSON} in {directory}: not an exported detector")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    cls = detector_class(str(meta["model_class"]))
    estimator = cls.load_native(directory, meta)
    return LoadedDetector(estimator, meta, directory)
