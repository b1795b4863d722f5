"""Sandbox for loads that must happen: an audit hook that records and blocks dangerous events, run in
throwaway subprocesses (`run_sandboxed`). Used by the label oracle and by load-based scanner baselines.

Example (weights-only baseline): `run_sandboxed([(path, "torch_weights_only")], "safepickle_bench.sandbox.loaders")`.
"""

from safepickle_bench.sandbox.audit import DANGEROUS_LABELS, BlockedEvent, classify, install_audit_hook
from safepickle_bench.sandbox.runner import SandboxResult, run_sandboxed
from safepickle_bench.sandbox.spec import LoaderSpec

__all__ = [
    "DANGEROUS_LABELS",
    "BlockedEvent",
    "LoaderSpec",
    "SandboxResult",
    "classify",
    "install_audit_hook",
    "run_sandboxed",
]
