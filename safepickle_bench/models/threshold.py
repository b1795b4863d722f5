"""The decision threshold of a detector, chosen on validation scores for a target false-positive rate."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

DEFAULT_TARGET_FPR = 0.01


@dataclass(frozen=True)
class ThresholdChoice:
    """A threshold and what it achieved on the validation scores it was chosen on."""

    threshold: float
    target_fpr: float
    validation_fpr: float
    validation_recall: float
    n_benign: int
    n_malicious: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        """Return the choice as a JSON-ready dict (what detector.json records)."""
        return asdict(self)


def choose_threshold(
    scores: np.ndarray, y: np.ndarray, target_fpr: float = DEFAULT_TARGET_FPR, method: str = "validation scores"
) -> ThresholdChoice:
    """Return the threshold with the widest margin among those whose benign validation FPR is <= target_fpr
    and whose validation recall is the highest such a threshold reaches.

    A file is malicious when its score >= threshold. With n benign scores, at most k = floor(target_fpr * n)
    of them may reach it, so the lowest admissible threshold `lo` sits just above the (k+1)-th highest benign
    score; it catches every malicious score >= lo, the lowest of which is `hi`. Every threshold in (lo, hi]
    has the same validation recall and an FPR no higher, so the choice is their midpoint: as far from the
    benign scores it must clear as from the malicious scores it must keep, which leaves room for the shift
    between validation files and files never seen (lo itself when no malicious score reaches it)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(y).ravel().astype(np.int64)
    if len(s) != len(labels):
        raise ValueError(f"{len(s)} scores but {len(labels)} labels")
    if not np.all(np.isfinite(s)):
        raise ValueError("validation scores must be finite")
    if not 0.0 <= target_fpr < 1.0 or math.isnan(target_fpr):
        raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
    benign = np.sort(s[labels == 0])[::-1]
    malicious = s[labels == 1]
    if not len(benign):
        raise ValueError("choosing a threshold for a target FPR needs benign validation files")
    allowed = math.floor(target_fpr * len(benign) + 1e-9)  # < len(benign) since target_fpr < 1
    lo = float(np.nextafter(benign[allowed], np.inf))
    caught = malicious[malicious >= lo]
    threshold = lo if not len(caught) else lo + (float(caught.min()) - lo) / 2
    return ThresholdChoice(
        threshold=threshold,
        target_fpr=float(target_fpr),
        validation_fpr=float(np.mean(benign >= threshold)),
        validation_recall=float(np.mean(malicious >= threshold)) if len(malicious) else float("nan"),
        n_benign=int(len(benign)),
        n_malicious=int(len(malicious)),
        method=method,
    )
