"""Plain-text and Markdown tables of headline metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

HEADLINE: tuple[str, ...] = ("f1", "precision", "recall", "roc_auc", "fpr", "inference_ms_median")


def fmt(value: float | None, std: float | None = None, digits: int = 4) -> str:
    """Format a metric (and its ± std when given); NaN or missing prints as n/a."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.{digits}f}"
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {std:.{digits}f}"
    return text


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> str:
    """Return rows as a Markdown table with the given columns (missing cells empty)."""
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def console_summary(name: str, metrics: Mapping[str, float], location: str, keys: Sequence[str] = HEADLINE) -> str:
    """Return the short end-of-run table: one line per headline metric, then where the run is."""
    width = max(len(k) for k in keys)
    lines = [f"== {name} =="]
    for k in keys:
        lines.append(f"  {k.ljust(width)}  {fmt(metrics.get(k), metrics.get(f'{k}_std'))}")
    lines.append(location)
    return "\n".join(lines)
