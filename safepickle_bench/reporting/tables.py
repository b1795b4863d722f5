"""The one table formatter: cells (numbers, percentages, milliseconds), Markdown tables, the console summary,
and writing a results table as its Markdown + CSV pair.

Missing values print one way everywhere: "n/a" for a figure cell (`fmt`, `pct`, `num`, `msec`), an empty
cell in a DataFrame rendered by `frame_table`.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pandas as pd

HEADLINE: tuple[str, ...] = ("f1", "precision", "recall", "roc_auc", "fpr", "inference_ms_median")


def _number(value: object) -> float | None:
    """Return `value` as a finite-or-infinite float, or None for NaN, None, booleans and non-numbers."""
    if isinstance(value, bool):
        return None
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _scaled(value: object, std: object, digits: int, scale: float) -> str:
    """Format `scale * value` (and ± `scale * std` when it is a number) with fixed digits, or n/a."""
    v = _number(value)
    if v is None:
        return "n/a"
    s = _number(std)
    return f"{scale * v:.{digits}f}" + ("" if s is None else f" ± {scale * s:.{digits}f}")


def fmt(value: object, std: object = None, digits: int = 4) -> str:
    """Format a metric (and its ± std when given); NaN or missing prints as n/a."""
    return _scaled(value, std, digits, 1)


def pct(value: object, std: object = None, digits: int = 2) -> str:
    """Format a share as a percentage (with ± std); NaN, None or a non-number prints as n/a."""
    return _scaled(value, std, digits, 100)


def num(value: object, digits: int = 3) -> str:
    """Format a number with fixed digits; NaN, None or a non-number prints as n/a."""
    v = _number(value)
    return "n/a" if v is None else f"{v:.{digits}f}"


def msec(value: object) -> str:
    """Format milliseconds: one decimal from 1 ms up, three below; missing prints as n/a."""
    v = _number(value)
    if v is None or math.isinf(v):
        return "n/a"
    return f"{v:.1f}" if v >= 1 else f"{v:.3f}"


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str],
                   right: Collection[str] = ()) -> str:
    """Return rows as a Markdown table with the given columns (missing cells empty; `right` columns
    right-aligned)."""
    head = "| " + " | ".join(columns) + " |"
    sep = "|" + "|".join("---:" if c in right else "---" for c in columns) + "|"
    body = ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def frame_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """Return a DataFrame as a Markdown table: floats with `digits` decimals, NaN as an empty cell."""
    columns = [str(c) for c in frame.columns]
    rows = [
        {c: (f"{v:.{digits}f}" if not math.isnan(v) else "") if isinstance(v, float) else str(v)
         for c, v in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False)
    ]
    return markdown_table(rows, columns)


def console_summary(name: str, metrics: Mapping[str, float], location: str, keys: Sequence[str] = HEADLINE) -> str:
    """Return the short end-of-run table: one line per headline metric, then where the run is."""
    width = max(len(k) for k in keys)
    lines = [f"== {name} =="]
    for k in keys:
        lines.append(f"  {k.ljust(width)}  {fmt(metrics.get(k), metrics.get(f'{k}_std'))}")
    lines.append(location)
    return "\n".join(lines)


def caption(script: str, ctx_suffix: str, seconds: float, extra: str = "") -> str:
    """Return the line saying which command wrote a table, when, and how long it took."""
    today = _dt.date.today().isoformat()
    text = f"Written by `python {script}{ctx_suffix}` on {today} in {seconds:.0f} s."
    return f"{text} {extra}".strip()


def write_table(
    out_dir: Path,
    stem: str,
    title: str,
    frame: pd.DataFrame,
    rows: Sequence[Mapping[str, object]],
    notes: Sequence[str] = (),
    sections: Sequence[str] = (),
) -> list[Path]:
    """Write `<stem>.csv` (the raw frame) and `<stem>.md` (title, notes, the formatted rows, extra sections)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    frame.to_csv(csv_path, index=False)
    columns = list(rows[0]) if rows else list(frame.columns)
    body = markdown_table(rows, columns) if rows else "(no rows: every run failed, see the notes)"
    text = [f"# {title}", "", *notes, "", body, ""]
    text += [*sections, ""] if sections else []
    md_path.write_text("\n".join(text), encoding="utf-8")
    return [md_path, csv_path]
