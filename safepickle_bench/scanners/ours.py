"""Our trained detector (exported by the pipeline to `models/<experiment>/`) as one scanner among the others.

Wraps `safepickle_bench.models.detector.load_detector(dir).score_paths([path])`: the static analyzer reads
the bytes (nothing is unpickled), the features go into the exported non-pickle model, and its
probability is compared with the threshold stored in `detector.json` (chosen on validation data for a target
FPR; an older export without one falls back to 0.5). `model_dir: default` scores with the shipped detector.

Verdict, score: the detector's own verdict (`malicious` when score >= threshold) and its probability as
the score; an analysis or feature error -> error. Mode: `in-process` (our code, static only; the
analyzer's own `Limits.max_seconds` bounds the time per file). Seconds per file include analysis,
features and inference, one file at a time.

Leakage guard: `detector.json` records the training data; when the model was trained on the dataset
being scanned, the benchmark must not score it on those files (see `trained_on`), and uses out-of-fold
predictions instead when the pipeline wrote them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from safepickle_bench.scanners.base import Scanner, ScannerUnavailable, ScanResult, register


@register("ours")
class OursScanner(Scanner):
    """SafePickle Bench's own exported detector behind the Scanner interface."""

    modes = ("in-process",)

    def __init__(self, model_dir: str = "models/rf_hf", timeout: float = 60.0, mode: str | None = None,
                 top_k: int = 3) -> None:
        """Set the exported model directory (`default`: the detector shipped in the package) and how many
        reasons to keep as findings."""
        super().__init__(timeout=timeout, mode=mode)
        if model_dir == "default":
            from safepickle_bench.models.detector import DEFAULT_DETECTOR_DIR

            self.model_dir = DEFAULT_DETECTOR_DIR
        else:
            self.model_dir = Path(model_dir)
        self.top_k = int(top_k)
        self._detector: Any = None

    def available(self) -> tuple[bool, str]:
        """Return whether an exported detector exists in `model_dir` and the loader is importable."""
        if not (self.model_dir / "detector.json").is_file():
            return False, f"no exported model in {self.model_dir} (run its training experiment first)"
        try:
            from safepickle_bench.models.detector import load_detector  # noqa: F401
        except ImportError as exc:
            return False, f"model loader not importable: {exc}"
        return True, f"exported detector {self.model_dir}"

    def metadata(self) -> dict[str, Any]:
        """Return the exported model's `detector.json`."""
        path = self.model_dir / "detector.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def trained_on(self) -> str | None:
        """Return the name of the dataset the model was trained on, when detector.json says it."""
        training = self.metadata().get("training") or {}
        dataset = training.get("dataset")
        if isinstance(dataset, dict):
            dataset = dataset.get("name")
        return str(dataset) if dataset else None

    def _load(self) -> Any:
        """Return the (lazily loaded) detector."""
        if self._detector is None:
            ok, why = self.available()
            if not ok:
                raise ScannerUnavailable(why)
            from safepickle_bench.models.detector import load_detector

            self._detector = load_detector(self.model_dir)
        return self._detector

    def _scan(self, path: Path) -> ScanResult:
        """Score one file with the exported detector."""
        verdict = self._load().score_paths([path], top_k=self.top_k)[0]
        findings = []
        for reason in verdict.reasons[:10]:
            findings.append(str(reason.get("text") or reason.get("reason") or reason) if isinstance(reason, dict)
                            else str(reason))
        if verdict.verdict == "error" or verdict.error:
            return ScanResult.failed(verdict.error or "detector error", verdict.seconds)
        score = 0.0 if verdict.score is None or math.isnan(verdict.score) else float(verdict.score)
        return ScanResult(verdict.verdict, score, findings, None, verdict.seconds)
