"""Resource limits of the static analyzer: hitting one is an anomaly, never an exception."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one analysis may read, decompress, parse and recurse into."""

    max_file_bytes: int = 8 * 1024**3
    """Largest input file considered at all (its pickle parts are what is read)."""
    max_pickle_bytes: int = 512 * 1024**2
    """Largest single pickle region handed to the opcode reader."""
    max_decompressed_bytes: int = 512 * 1024**2
    """Largest output of one decompression (zip entry, gzip, bz2, xz, 7z, joblib)."""
    max_total_decompressed_bytes: int = 2 * 1024**3
    """Largest sum of decompressed output over a whole file (nested bombs)."""
    max_opcodes: int = 5_000_000
    """Opcodes read per stream before the stream is cut short."""
    max_streams: int = 64
    """Back-to-back pickle streams read from one region."""
    max_container_depth: int = 6
    """Containers nested inside containers (zip in zip, gzip of zip...)."""
    max_nested_pickle_depth: int = 3
    """Pickles embedded as bytes inside pickles (pickle.loads payloads), recursively."""
    max_stack_depth: int = 1_000_000
    """Symbolic stack size before the simulation stops tracking values."""
    max_string_literals: int = 2_000
    """String literals kept per stream (counts stay exact)."""
    max_string_chars: int = 512
    """Characters kept of each string literal."""
    max_int_digits: int = 4_300
    """Digits of a text integer converted (CPython's own default bound)."""
    max_seconds: float = 30.0
    """Wall-clock budget for one file; past it the analysis stops with an anomaly."""

    def to_dict(self) -> dict[str, Any]:
        """Return the limits as a plain dict."""
        return asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> Limits:
        """Build limits from a mapping (e.g. a Hydra config node), ignoring unknown keys."""
        if not values:
            return cls()
        known = {k: v for k, v in dict(values).items() if k in cls.__dataclass_fields__}
        return cls(**known)


DEFAULT_LIMITS = Limits()
