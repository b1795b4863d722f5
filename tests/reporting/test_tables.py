"""The one table formatter: missing figures print as n/a, Markdown tables align and render DataFrames."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from safepickle_bench.reporting.tables import fmt, frame_table, markdown_table, msec, num, pct


def test_cells_print_missing_figures_as_na_and_numbers_with_fixed_digits():
    for missing in (None, math.nan, np.float64("nan"), "x"):
        assert pct(missing) == num(missing) == msec(missing) == fmt(missing) == "n/a"
    assert pct(0.12345) == "12.35" and pct(0.5, 0.01) == "50.00 ± 1.00" and pct(0.5, math.nan) == "50.00"
    assert num(np.float64(1.23456), 2) == "1.23" and fmt(0.5, 0.25, 2) == "0.50 ± 0.25"
    assert msec(12.345) == "12.3" and msec(0.12345) == "0.123" and msec(math.inf) == "n/a"


def test_markdown_table_leaves_missing_cells_empty_and_right_aligns_the_named_columns():
    text = markdown_table([{"a": "x", "b": 1}, {"a": "y"}], ["a", "b"], right=("b",))
    assert text.splitlines() == ["| a | b |", "|---|---:|", "| x | 1 |", "| y |  |"]


def test_frame_table_rounds_floats_and_blanks_nan():
    frame = pd.DataFrame({"method": ["rf", "lof"], "recall": [0.98765, math.nan], "n": [3, 4]})
    assert frame_table(frame).splitlines() == [
        "| method | recall | n |", "|---|---|---|", "| rf | 0.988 | 3 |", "| lof |  | 4 |"]
