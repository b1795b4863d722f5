"""Writing results tables: percentages, the Markdown + CSV pair of one table, and the common caption."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from safepickle_bench.reporting.tables import markdown_table


def pct(value: object, std: object = None, digits: int = 2) -> str:
    """Format a share as a percentage (with ± std); NaN, None or a non-number prints as n/a."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(v):
        return "n/a"
    text = f"{100 * v:.{digits}f}"
    try:
        s = float(std)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return text
    return text if math.isnan(s) else f"{text} ± {100 * s:.{digits}f}"


def num(value: object, digits: int = 3) -> str:
    """Format a number with fixed digits; NaN, None or a non-number prints as n/a."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(v) else f"{v:.{digits}f}"


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
