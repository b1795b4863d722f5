"""The numeric input every detector takes: a float64 2-D matrix without NaN or infinities (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_matrix(X: Any) -> np.ndarray:  # noqa: ANN401 - arrays, frames and lists are all accepted
    """Return X as a float64 2-D numpy array (DataFrames lose their index, NaN becomes 0)."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    return np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
