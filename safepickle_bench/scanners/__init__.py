"""Scanners behind one interface: third-party tools, baselines re-implemented here, and our own model.

Importing this package is cheap: each wrapper imports its tool only when it scans.
"""

from safepickle_bench.scanners.base import (
    SCANNER_REGISTRY,
    Scanner,
    ScannerUnavailable,
    ScanResult,
    build_scanner,
    load_all,
    register,
)

__all__ = [
    "SCANNER_REGISTRY",
    "ScanResult",
    "Scanner",
    "ScannerUnavailable",
    "build_scanner",
    "load_all",
    "register",
]
