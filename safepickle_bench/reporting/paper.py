"""The published figures our results are put beside (SafePickle, PickleBall), as data, with their source.

Only figures stated in /work/shared/docs/PAPER.md are here; anything the papers do not publish is absent,
and tables print "n/a" for it (`paper_value` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass

from safepickle_bench.reporting.tables import pct


@dataclass(frozen=True)
class PaperFigure:
    """One published figure: its value (a share, a count or milliseconds), a label and where it comes from."""

    value: float
    label: str
    source: str


SAFEPICKLE = "SafePickle (Ohayon et al., arXiv 2602.19818)"
PICKLEBALL = "PickleBall (Kellas et al., CCS 2025), Table 2"

PAPER: dict[str, PaperFigure] = {
    "hf_f1_rf": PaperFigure(0.9001, "best F1 on the curated HF set (RandomForest)", SAFEPICKLE),
    "hf_n_files": PaperFigure(727, "files in the curated HF set (648 benign + 79 malicious)", SAFEPICKLE),
    "hf_scanners_f1_min": PaperFigure(0.0723, "lowest SOTA-scanner F1 on the HF set", SAFEPICKLE),
    "hf_scanners_f1_max": PaperFigure(0.6275, "highest SOTA-scanner F1 on the HF set", SAFEPICKLE),
    "ood_f1": PaperFigure(0.8122, "F1 on the PickleBall data (OOD)", SAFEPICKLE),
    "ood_pickleball_f1": PaperFigure(0.7609, "PickleBall's own F1 on its data, as SafePickle quotes it",
                                     SAFEPICKLE),
    "hide_and_seek_detected": PaperFigure(9, "Hide-and-Seek evasive models parsed and detected", SAFEPICKLE),
    "hide_and_seek_total": PaperFigure(9, "Hide-and-Seek evasive models tested", SAFEPICKLE),
    "catboost_inference_ms": PaperFigure(0.016, "CatBoost inference time per file (ms)", SAFEPICKLE),
    "pickleball_modelscan_f1": PaperFigure(0.857, "ModelScan 0.8.1 F1 on PickleBall's data", PICKLEBALL),
    "pickleball_weights_only_f1": PaperFigure(0.639, "Weights-Only Unpickler F1 on PickleBall's data",
                                              PICKLEBALL),
    "pickleball_policy_f1": PaperFigure(0.7609, "PickleBall loader F1 on its data (SafePickle's quote)",
                                        PICKLEBALL),
}

SCANNER_TIME_TEXT = "hundreds to thousands of ms per file (no per-scanner figure public)"
"""The paper's statement on the SOTA scanners' time; it gives no per-scanner number."""

PAPER_OOD_SCANNER: dict[str, str] = {
    "modelscan": "pickleball_modelscan_f1",
    "weights_only": "pickleball_weights_only_f1",
    "policy_loader": "pickleball_policy_f1",
}
"""Scanner name -> the figure PickleBall's Table 2 publishes for the same kind of tool on its own data."""


def paper_value(key: str) -> float | None:
    """Return the published value under `key`, or None when the paper does not publish it."""
    fig = PAPER.get(key)
    return None if fig is None else fig.value


def paper_pct(key: str) -> str:
    """Return the published share under `key` as a percentage text, or "n/a"."""
    return pct(paper_value(key))
