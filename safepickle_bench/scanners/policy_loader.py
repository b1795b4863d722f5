"""A PickleBall-style policy loader: our own static re-implementation of the approach, NOT PickleBall itself.

PickleBall (Kellas et al., CCS 2025) loads a model with an enforcing unpickler that only admits the
globals and calls allowed by a per-library policy generated from the library's classes, and in "lazy"
mode replaces a disallowed global with a stub that fails only when called. We re-implement the idea
statically, on our analyzer's output (`safepickle_bench.analysis.analyze_path`, bytes only, nothing is
unpickled), with policies *learned from benign training files* instead of generated from library code:

- policy = allow-list of globals (every `module.name` imported: GLOBAL, STACK_GLOBAL, INST) and of
  callables (every `module.qualname` called by an opcode in `call_opcodes`, default REDUCE, NEWOBJ,
  NEWOBJ_EX, INST, OBJ), per library (the manifest's `producer`) and one global policy (the union);
- a file is checked against its library's policy when its producer is known and has a policy
  (`scope: per_library`), otherwise against the global one (`scope: global` always uses it);
- rejected (malicious) when a call record names a callable outside the allowed callables, or an
  unresolved callable (`?`) is called and `unresolved_calls: reject` (default: an enforcing loader
  cannot vouch for it either);
- strict mode (`lazy: false`): also rejected when any imported global is outside the allowed globals;
  lazy mode (`lazy: true`, default): a disallowed global that is imported but never called is tolerated
  (recorded in the findings, score 0.5).

Verdict, score: rejected -> malicious 1.0; tolerated disallowed imports -> benign 0.5; else benign 0.0;
analysis error or no pickle stream at all -> error. The learned policy is saved/loaded as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safepickle_bench.scanners.base import Scanner, ScannerUnavailable, ScanResult, register

POLICY_FORMAT = "safepickle-bench/pickleball-style-policy/v1"
DEFAULT_CALL_OPCODES: tuple[str, ...] = ("REDUCE", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ")
GLOBAL_SCOPE = "*"


@dataclass(slots=True)
class Policy:
    """Allowed globals and callables of one library (or of all, under `*`)."""

    globals: set[str] = field(default_factory=set)
    callables: set[str] = field(default_factory=set)
    n_files: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the policy as sorted JSON lists."""
        return {"n_files": self.n_files, "globals": sorted(self.globals), "callables": sorted(self.callables)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        """Build a policy from its JSON form."""
        return cls(set(data.get("globals", [])), set(data.get("callables", [])), int(data.get("n_files", 0)))


def _records(analysis: Any, call_opcodes: Iterable[str]) -> tuple[set[str], list[str]]:
    """Return (imported qualnames, called callables) of an Analysis."""
    ops = set(call_opcodes)
    imported = {imp.qualname for imp in analysis.all_imports()}
    called = [c.callable for c in analysis.all_calls() if c.opcode in ops]
    return imported, called


def _analyze(path: str | Path) -> Any:
    """Analyse a file with our static analyzer (bytes only)."""
    from safepickle_bench.analysis import analyze_path

    return analyze_path(str(path))


@register("policy_loader")
class PolicyLoaderScanner(Scanner):
    """PickleBall-style allow-list policy check (a re-implementation of the approach), learned from benign files."""

    modes = ("in-process",)
    learns = True

    def __init__(self, timeout: float = 60.0, mode: str | None = None, lazy: bool = True,
                 scope: str = "per_library", unresolved_calls: str = "reject",
                 call_opcodes: Iterable[str] = DEFAULT_CALL_OPCODES, policy_path: str | None = None) -> None:
        """Set lazy/strict mode, policy scope, how unresolved calls count, and an optional saved policy."""
        super().__init__(timeout=timeout, mode=mode)
        if scope not in ("per_library", "global"):
            raise ValueError("scope must be 'per_library' or 'global'")
        if unresolved_calls not in ("reject", "allow"):
            raise ValueError("unresolved_calls must be 'reject' or 'allow'")
        self.lazy = bool(lazy)
        self.scope = scope
        self.unresolved_calls = unresolved_calls
        self.call_opcodes = tuple(call_opcodes)
        self.policies: dict[str, Policy] = {}
        self.producer_of: dict[str, str] = {}
        if policy_path and Path(policy_path).is_file():
            self.load(policy_path)

    # -- learning ----------------------------------------------------------------------------------
    def fit_paths(self, paths: Iterable[str | Path], producers: Iterable[str | None] | None = None) -> PolicyLoaderScanner:
        """Learn the policies from benign files (with their libraries, when known)."""
        self.policies = {GLOBAL_SCOPE: Policy()}
        paths = list(paths)
        prods = list(producers) if producers is not None else [None] * len(paths)
        for path, producer in zip(paths, prods, strict=True):
            analysis = _analyze(path)
            if analysis.error is not None:
                continue
            imported, called = _records(analysis, self.call_opcodes)
            known_calls = {c for c in called if c != "?"}
            scopes = [GLOBAL_SCOPE] + ([str(producer)] if producer else [])
            for scope in scopes:
                pol = self.policies.setdefault(scope, Policy())
                pol.globals |= imported
                pol.callables |= known_calls
                pol.n_files += 1
        return self

    def fit(self, manifest: Any) -> PolicyLoaderScanner:
        """Learn from the benign rows (label 0) of a manifest DataFrame (`abspath`, `producer`)."""
        benign = manifest[manifest["label"] == 0]
        producers = benign["producer"].tolist() if "producer" in benign else None
        return self.fit_paths(benign["abspath"].tolist(), producers)

    def set_producers(self, mapping: dict[str, str]) -> None:
        """Tell the scanner which library each file to be scanned claims to come from (path -> producer)."""
        self.producer_of = {str(Path(k).resolve()): str(v) for k, v in mapping.items() if v}

    def prepare(self, manifest: Any) -> None:
        """Read the producers of the files about to be scanned from their manifest."""
        if "producer" in manifest and "abspath" in manifest:
            self.set_producers(dict(zip(manifest["abspath"], manifest["producer"].fillna(""), strict=True)))

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the learned policies as JSON."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": POLICY_FORMAT,
            "note": "PickleBall-style re-implementation (static, learned from benign files); not PickleBall",
            "call_opcodes": list(self.call_opcodes),
            "policies": {k: v.to_dict() for k, v in sorted(self.policies.items())},
        }
        out.write_text(json.dumps(data, indent=1), encoding="utf-8")
        return out

    def load(self, path: str | Path) -> PolicyLoaderScanner:
        """Read policies written by `save`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != POLICY_FORMAT:
            raise ValueError(f"{path}: not a {POLICY_FORMAT} file")
        self.call_opcodes = tuple(data.get("call_opcodes", DEFAULT_CALL_OPCODES))
        self.policies = {k: Policy.from_dict(v) for k, v in data["policies"].items()}
        return self

    # -- scanning ----------------------------------------------------------------------------------
    def available(self) -> tuple[bool, str]:
        """Return whether a policy has been learned or loaded (and the analyzer is importable)."""
        try:
            from safepickle_bench.analysis import analyze_path  # noqa: F401
        except ImportError as exc:
            return False, f"analyzer not importable: {exc}"
        if not self.policies:
            return False, "no policy learned yet (fit on benign training files or give policy_path)"
        libs = len(self.policies) - (GLOBAL_SCOPE in self.policies)
        return True, f"PickleBall-style re-implementation, {libs} library policies, lazy={self.lazy}"

    def policy_for(self, path: Path) -> tuple[str, Policy]:
        """Return the scope name and policy a file is checked against."""
        if self.scope == "per_library":
            producer = self.producer_of.get(str(path.resolve()))
            if producer and producer in self.policies:
                return producer, self.policies[producer]
        return GLOBAL_SCOPE, self.policies[GLOBAL_SCOPE]

    def check(self, analysis: Any, policy: Policy) -> tuple[list[str], list[str]]:
        """Return (violations that reject the file, tolerated disallowed imports)."""
        imported, called = _records(analysis, self.call_opcodes)
        violations: list[str] = []
        for target in called:
            if target == "?":
                if self.unresolved_calls == "reject":
                    violations.append("call of an unresolved callable")
            elif target not in policy.callables:
                violations.append(f"disallowed call: {target}")
        disallowed = sorted(imported - policy.globals)
        if not self.lazy:
            violations += [f"disallowed global: {g}" for g in disallowed]
            return violations, []
        called_set = set(called)
        tolerated = [f"tolerated (imported, never called): {g}" for g in disallowed if g not in called_set]
        return violations, tolerated

    def _scan(self, path: Path) -> ScanResult:
        """Analyse the file and check it against its policy."""
        if not self.policies:
            raise ScannerUnavailable("no policy learned")
        analysis = _analyze(path)
        if analysis.error is not None:
            return ScanResult.failed(f"analysis error: {analysis.error}")
        if not analysis.streams:
            return ScanResult.failed("no pickle stream found: an unpickler would not load this file")
        scope, policy = self.policy_for(path)
        violations, tolerated = self.check(analysis, policy)
        where = f"policy: {scope}"
        if violations:
            uniq = list(dict.fromkeys(violations))
            return ScanResult("malicious", 1.0, [where, *uniq[:20]])
        return ScanResult("benign", 0.5 if tolerated else 0.0, [where, *tolerated[:20]])
