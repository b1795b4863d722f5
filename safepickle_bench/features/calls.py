"""The `calls` group: what each call of a file does, never which name it has.

Per call site (`analysis.call_sites`): the class of the callee (allow-listed data reconstructor, dangerous by
the taxonomy, known ML namespace, other stdlib, `__main__`, unknown third party, unresolved), whether its name
runs through another module's attribute or a rebuilt instance, how it was reached, the kinds and sizes of its
arguments, whether string/bytes arguments look like code (Python that parses, with imports or calls; shell;
URLs; IP addresses; system paths), their entropy, the decoding layers behind them, whether the result is kept
in the object graph, and whether the call ran before any data object. Aggregated per file as counts, maxima
and flags. No column names a callable: names only decide a site's class.

A BUILD on a class that is neither allow-listed nor in a known namespace (an "unvouched BUILD state") hands
its state to that class's own `__setstate__`: the state is read as that call's argument by the content
columns (sizes, entropy, code-likeness), whatever opcode route carried the code.
"""

from __future__ import annotations

import ast
import math
import re
import sys
from functools import lru_cache
from typing import Any

from safepickle_bench.analysis.call_sites import CallSite, call_sites
from safepickle_bench.analysis.result import Analysis
from safepickle_bench.analysis.values import Clipped, Global, Obj
from safepickle_bench.features.call_allowlist import load_allowlist
from safepickle_bench.features.strings import IP_RE, SHELL_RE, URL_RE, shannon_entropy
from safepickle_bench.features.taxonomy import BENIGN, load_taxonomy

NAME = "calls"

CALLEE_CLASSES: tuple[str, ...] = (
    "allowlisted", "dangerous", "known_namespace", "stdlib", "main", "third_party", "unresolved",
)  # fmt: skip
_CLASS_DOCS = {
    "allowlisted": "an allow-listed reconstructor of a data type (call_allowlist.yaml)",
    "dangerous": "a callable in a dangerous category of the import taxonomy",
    "known_namespace": "a callable in the taxonomy's benign ML namespaces, not an allow-listed reconstructor",
    "stdlib": "another standard-library callable (neither allow-listed nor dangerous)",
    "main": "a callable of `__main__`",
    "third_party": "an unknown third-party callable (module neither stdlib nor allow-listed nor in a known namespace)",
    "unresolved": "a callable the analyzer could not name",
}
ARG_KINDS: tuple[str, ...] = ("str", "bytes", "number", "container", "object", "none")
CODE_KINDS: tuple[str, ...] = ("python", "shell", "url", "ip", "sys_path")
_CODE_DOCS = {
    "python": "Python source (parses with `ast.parse`, with an import or a call of an attribute/result)",
    "shell": "a shell command (command word with arguments, pipes, redirections, ;, &&, $(), backticks)",
    "url": "a URL (scheme://)",
    "ip": "an IPv4 address",
    "sys_path": "a path under /tmp, /dev, /etc, /proc, /bin... or a Windows temp folder",
}
REACHES: tuple[str, ...] = ("global", "stack_global", "inst", "attribute", "memo", "other")
_REACH_OF_SITE = {"global": "global", "stack_global": "stack_global", "inst": "inst", "getattr": "attribute",
                  "memo": "memo"}
"""`CallSite.reach` -> its column (attribute: an attribute of a module or class fetched by getattr-like calls)."""

_SUMMARY: dict[str, str] = {
    "n_sites": "call sites (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ; BUILD apart) over every stream",
    "n_build_sites": "BUILD sites (state set on an object)",
    **{f"callee_{c}": f"call sites whose callee is {d}" for c, d in _CLASS_DOCS.items()},
    "share_allowlisted": "callee_allowlisted / n_sites",
    "distinct_unknown_callees": "distinct callees that are stdlib, `__main__`, third-party or unresolved",
    "reexport_path": "call sites whose dotted callee runs through another module's attribute (`pkg.mod.os.system`)",
    "reexport_to_dangerous": "call sites whose dotted callee reaches a dangerous taxonomy entry through another module's attribute",
    "instance_method": "call sites whose callee is an attribute of a rebuilt instance or a literal (getattr on an object)",
    **{f"reach_{r}": f"call sites whose callee was reached by {r.replace('_', ' ')}" for r in REACHES[:3]},
    "reach_attribute": "call sites whose callee is an attribute of a module or class fetched at load time",
    "reach_memo": "call sites whose callee was imported once and fetched again from the memo",
    "reach_other": "call sites whose callee is a partial, attrgetter, methodcaller, map or call result",
    "class_instantiations": "non-allow-listed call sites by NEWOBJ, NEWOBJ_EX or OBJ",
    **{f"arg_{k}": f"top-level arguments of kind {k} over the non-allow-listed call sites" for k in ARG_KINDS},
    "max_args": "most arguments of one non-allow-listed call site",
    "max_str_arg_chars": "longest string argument (any depth) of a non-allow-listed call site or unvouched BUILD state",
    "max_bytes_arg_len": "longest bytes argument (any depth) of a non-allow-listed call site or unvouched BUILD state",
    "total_arg_chars": "characters and bytes over the string/bytes arguments of non-allow-listed call sites and unvouched BUILD states",
    **{f"sites_{k}": f"non-allow-listed call sites (and unvouched BUILD states) with an argument that looks like {d}" for k, d in _CODE_DOCS.items()},
    "sites_code_like": "non-allow-listed call sites (and unvouched BUILD states) with a Python or shell argument",
    "max_arg_entropy": "highest Shannon entropy (bits per character) of a string/bytes argument or unvouched BUILD state of 16+ characters",
    "sites_high_entropy": "non-allow-listed call sites (and unvouched BUILD states) with a string/bytes argument of 64+ characters and entropy >= 5.2",
    "max_decode_layers": "most decoding calls (base64, hex, zlib...) chained behind one argument",
    "sites_decoded_arg": "non-allow-listed call sites with an argument a decoding call produced",
    "discarded": "non-allow-listed call sites (not engine plumbing) whose result is thrown away (POP, never reaches STOP)",
    "kept": "non-allow-listed call sites (not engine plumbing) whose result stays in the object graph",
    "any_discarded": "1 when a non-allow-listed call's result is thrown away",
    "before_data": "non-allow-listed call sites (not engine plumbing) that run before any data object is built",
    "any_before_data": "1 when a non-allow-listed call runs before any data object is built",
    "unknown_code_callees": "distinct unknown callees (stdlib, `__main__`, third-party, unresolved) called with (or BUILD with a state holding) a code-like or high-entropy argument",
    "unknown_code_sites": "call and BUILD sites of an unknown callee with a code-like or high-entropy argument or state",
    "dangerous_code_sites": "call and BUILD sites of a dangerous callee with a code-like or high-entropy argument or state",
    "unknown_discarded": "call sites of an unknown callee whose result is thrown away",
    "unknown_before_data": "call sites of an unknown callee that run before any data object is built",
    "build_unknown_dict_state": "BUILD sites setting a dict state on an object of a non-allow-listed class",
    "build_unknown_other_state": "BUILD sites setting a non-dict state (str, bytes, number...) on an object of a non-allow-listed class",
    "build_code_state": "BUILD sites on a non-allow-listed class whose state holds code-like or high-entropy text",
}
COLUMNS: tuple[str, ...] = tuple(f"{NAME}__{s}" for s in _SUMMARY)
DESCRIPTIONS: dict[str, str] = {f"{NAME}__{s}": d for s, d in _SUMMARY.items()}
_INDEX = {s: i for i, s in enumerate(_SUMMARY)}

_TAX = load_taxonomy()
_ALLOW = load_allowlist()
_STDLIB = frozenset(sys.stdlib_module_names) | frozenset(_TAX.aliases)
_UNKNOWN_CLASSES = frozenset({"stdlib", "main", "third_party", "unresolved"})
_REACH_COLUMN = {site: f"reach_{col}" for site, col in _REACH_OF_SITE.items()}
_INSTANCE_REACHES = frozenset({"instance_attr", "value_attr"})
_CLASS_OPCODES = frozenset({"NEWOBJ", "NEWOBJ_EX", "OBJ"})
SYS_PATH_RE = re.compile(
    r"(?<![\w.~-])/(?:tmp|dev|etc|proc|var/tmp|bin|sbin|usr/bin|usr/local/bin|root|home|sys)(?:/|\b)"
    r"|[A-Za-z]:\\(?:Windows|Users\\[^\\]+\\AppData|Temp)\\",
    re.IGNORECASE,
)
MAX_LEAVES = 64
"""String/bytes leaves examined per call site."""
MAX_AST_NODES = 5_000
HIGH_ENTROPY = 5.2
HIGH_ENTROPY_MIN_LEN = 64
_CODE_BITS = {k: 1 << i for i, k in enumerate(CODE_KINDS)}
_HIGH_BIT = 1 << len(CODE_KINDS)
_CODE_LIKE = _CODE_BITS["python"] | _CODE_BITS["shell"]


@lru_cache(maxsize=65_536)
def callee_class(qualname: str) -> str:
    """Return the class of a callee (one of CALLEE_CLASSES) from its dotted name."""
    if not qualname or "?" in qualname:
        return "unresolved"
    norm = _TAX.normalise(qualname)
    if norm in _ALLOW or qualname in _ALLOW:
        return "allowlisted"
    category = _TAX.categorize(qualname)
    if _TAX.is_dangerous(category):
        return "dangerous"
    top = norm.partition(".")[0]
    if top == "__main__":
        return "main"
    if category == BENIGN:
        return "known_namespace"
    if top in _STDLIB:
        return "stdlib"
    return "third_party"


def reexport_kind(qualname: str) -> int:
    """Return 2 when a later part of a dotted name starts a dangerous taxonomy entry (`pkg.mod.os.system`),
    1 when a later part (not the last) is a stdlib module, else 0."""
    parts = qualname.split(".")
    found = 0
    for k in range(1, len(parts) - 1):
        if parts[k] in _STDLIB:
            found = 1
            if _TAX.is_dangerous(_TAX.categorize(".".join(parts[k:]))):
                return 2
    return found


_STATEMENTS = (ast.Try, ast.With, ast.For, ast.While, ast.If, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
               ast.Assign, ast.AugAssign, ast.Lambda)
"""Statements that, beside a call, make a text a program rather than one expression."""


def _python_like(text: str, depth: int = 2) -> bool:
    """Return whether text parses as Python holding an import, a call of an attribute/result/subscript, two
    calls, a call beside a statement (try, with, loop, assignment, def, lambda...), or a call whose string
    argument is such Python itself (parsed only: nothing is compiled or run)."""
    if len(text) < 6 or ("(" not in text and "import" not in text):
        return False
    try:
        tree = ast.parse(text)
    except Exception:  # SyntaxError, ValueError (NUL), RecursionError/MemoryError on deep nesting
        cut = text.rfind("\n")
        if cut <= 0:
            return False
        try:  # a cut argument may end mid-statement: the complete lines before it
            tree = ast.parse(text[:cut])
        except Exception:
            return False
    calls = 0
    statements = False
    for n, node in enumerate(ast.walk(tree)):
        if n > MAX_AST_NODES:
            break
        if isinstance(node, ast.Import | ast.ImportFrom):
            return True
        if isinstance(node, _STATEMENTS):
            statements = True
            if calls:
                return True
        if isinstance(node, ast.Call):
            calls += 1
            if isinstance(node.func, ast.Attribute | ast.Call | ast.Subscript) or calls >= 2 or statements:
                return True
            if depth > 0 and any(isinstance(a, ast.Constant) and isinstance(a.value, str)
                                 and _python_like(a.value, depth - 1) for a in node.args):
                return True
    return False


def text_signals(text: str, raw_len: int) -> tuple[int, float]:
    """Return the code-likeness bits of one argument text and its entropy (0 below 16 characters)."""
    bits = 0
    if _python_like(text):
        bits |= _CODE_BITS["python"]
    if SHELL_RE.search(text) is not None:
        bits |= _CODE_BITS["shell"]
    if "://" in text and URL_RE.search(text) is not None:
        bits |= _CODE_BITS["url"]
    if "." in text and IP_RE.search(text) is not None:
        bits |= _CODE_BITS["ip"]
    if ("/" in text or "\\" in text) and SYS_PATH_RE.search(text) is not None:
        bits |= _CODE_BITS["sys_path"]
    entropy = shannon_entropy(text) if len(text) >= 16 else 0.0
    if raw_len >= HIGH_ENTROPY_MIN_LEN and entropy >= HIGH_ENTROPY:
        bits |= _HIGH_BIT
    return bits, entropy


def _leaves(value: Any, out: list[tuple[Any, int]], depth: int = 4) -> None:  # noqa: ANN401
    """Append the (text or bytes head, real size) leaves of a bounded argument value, at most MAX_LEAVES."""
    if len(out) >= MAX_LEAVES:
        return
    t = type(value)
    if t is str or t is bytes or t is bytearray:
        out.append((value, len(value)))
    elif t is Clipped:
        if value.head is not None:
            out.append((value.head, value.size))
    elif depth > 0 and (t is tuple or t is list or t is set or t is frozenset):
        for x in value:
            _leaves(x, out, depth - 1)
    elif depth > 0 and t is dict:
        for k, x in value.items():
            _leaves(k, out, depth - 1)
            _leaves(x, out, depth - 1)


def _kind(value: Any) -> str:  # noqa: ANN401
    """Return the kind of one top-level argument."""
    t = type(value)
    if t is str:
        return "str"
    if t is bytes or t is bytearray:
        return "bytes"
    if t is Clipped:
        return "number" if value.head is None else ("str" if type(value.head) is str else "bytes")
    if t is int or t is float or t is bool or t is complex:
        return "number"
    if value is None:
        return "none"
    if t in (tuple, list, dict, set, frozenset):
        return "container"
    if t is Obj or t is Global:
        return "object"
    return "none"


class _TextCache:
    """Code-likeness of each distinct argument text of one file, computed once."""

    __slots__ = ("memo",)

    def __init__(self) -> None:
        self.memo: dict[Any, tuple[int, float]] = {}

    def signals(self, leaf: Any, size: int) -> tuple[int, float]:  # noqa: ANN401
        """Return (bits, entropy) of one leaf (bytes read as UTF-8 for Python, latin-1 for the rest)."""
        key = (leaf, size)
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        if type(leaf) is str:
            result = text_signals(leaf, size)
        else:
            raw = bytes(leaf)
            bits, entropy = text_signals(raw.decode("latin-1"), size)
            if bits & _CODE_BITS["python"] and not raw.isascii():
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    bits &= ~_CODE_BITS["python"]
            result = (bits, entropy)
        if len(self.memo) < 4096:
            self.memo[key] = result
        return result


def _arg_profile(args: tuple[Any, ...], cache: _TextCache) -> tuple[int, float, int, int, int]:
    """Return (bits, max entropy, longest str, longest bytes, total chars) over the leaves of the arguments."""
    leaves: list[tuple[Any, int]] = []
    _leaves(args, leaves)
    bits = 0
    entropy = 0.0
    max_str = max_bytes = total = 0
    for leaf, size in leaves:
        total += size
        if type(leaf) is str:
            max_str = max(max_str, size)
        else:
            max_bytes = max(max_bytes, size)
        if size >= 4:
            b, e = cache.signals(leaf, size)
            bits |= b
            entropy = max(entropy, e)
    return bits, entropy, max_str, max_bytes, total


def _count_content(v: list[float], profile: tuple[int, float, int, int, int]) -> None:
    """Add one site's argument content (an `_arg_profile`) to the size, entropy and code-likeness columns."""
    ix = _INDEX
    bits, entropy, max_str, max_bytes, total = profile
    v[ix["max_str_arg_chars"]] = max(v[ix["max_str_arg_chars"]], max_str)
    v[ix["max_bytes_arg_len"]] = max(v[ix["max_bytes_arg_len"]], max_bytes)
    v[ix["total_arg_chars"]] += total
    v[ix["max_arg_entropy"]] = max(v[ix["max_arg_entropy"]], entropy)
    for k, bit in _CODE_BITS.items():
        if bits & bit:
            v[ix[f"sites_{k}"]] += 1
    if bits & _CODE_LIKE:
        v[ix["sites_code_like"]] += 1
    if bits & _HIGH_BIT:
        v[ix["sites_high_entropy"]] += 1


CLASS_FORWARDERS = frozenset({"copyreg.__newobj__", "copyreg.__newobj_ex__", "copyreg._reconstructor"})
"""Reconstructors whose first argument is the class they build (protocols 0-1 spell NEWOBJ and plain instances
so): a site of one is read as a call of that class with the remaining arguments."""


def _relevant(qualname: str) -> bool:
    """Return whether a callee's arguments and result matter (every callee but allow-listed reconstructors;
    class forwarders too, whose first argument names the real callee)."""
    return callee_class(qualname) != "allowlisted" or _TAX.normalise(qualname) in CLASS_FORWARDERS


def effective_call(site: CallSite) -> tuple[str, tuple[Any, ...]]:
    """Return the callee and arguments a site really runs (the class a forwarding reconstructor builds)."""
    if site.args and type(site.args[0]) is Global and _TAX.normalise(site.callable) in CLASS_FORWARDERS:
        return site.args[0].qual, site.args[1:]
    return site.callable, site.args


def _site_rows(analysis: Analysis) -> list[tuple[CallSite, bool]]:
    """Return every call site of the file with whether it ran before any data object (allow-listed
    reconstructor calls count as data objects)."""
    rows = []
    for stream in analysis.streams:
        data_seen = False
        for site in call_sites(stream, _relevant):
            cls_allowed = site.opcode != "BUILD" and callee_class(effective_call(site)[0]) == "allowlisted"
            rows.append((site, site.before_data and not data_seen))
            if cls_allowed:
                data_seen = True
    return rows


def compute(analysis: Analysis) -> list[float]:
    """Return the calls columns of one analysis, in COLUMNS order."""
    v = [0.0] * len(_SUMMARY)
    ix = _INDEX
    cache = _TextCache()
    unknown_code: set[str] = set()
    unknown_names: set[str] = set()
    for site, before in _site_rows(analysis):
        callee, args = effective_call(site)
        cls = callee_class(callee)
        if site.opcode == "BUILD":
            v[ix["n_build_sites"]] += 1
            if cls == "allowlisted":
                continue
            state = site.args[0] if site.args else None
            if type(state) is dict or (
                type(state) is tuple and state and all(type(x) in (dict, type(None)) for x in state)
            ):
                v[ix["build_unknown_dict_state"]] += 1
            elif state is not None:
                v[ix["build_unknown_other_state"]] += 1
            profile = _arg_profile(site.args, cache)
            bits = profile[0]
            if cls in _UNKNOWN_CLASSES or cls == "dangerous":
                # a class nobody vouches for receives its state in its own __setstate__: the state is that
                # call's argument, described by the same content columns as any call's arguments
                _count_content(v, profile)
            if bits & (_CODE_LIKE | _HIGH_BIT):
                v[ix["build_code_state"]] += 1
                # BUILD hands the state to the class's __setstate__: code given to unknown code, as a call's is
                if cls in _UNKNOWN_CLASSES:
                    unknown_code.add(callee)
                    v[ix["unknown_code_sites"]] += 1
                elif cls == "dangerous":
                    v[ix["dangerous_code_sites"]] += 1
            continue
        v[ix["n_sites"]] += 1
        v[ix[f"callee_{cls}"]] += 1
        unknown = cls in _UNKNOWN_CLASSES
        if unknown:
            unknown_names.add(callee)
        rk = reexport_kind(callee) if cls not in ("allowlisted", "known_namespace") else 0
        if rk:
            v[ix["reexport_path"]] += 1
            if rk == 2:
                v[ix["reexport_to_dangerous"]] += 1
        if site.reach in _INSTANCE_REACHES:
            v[ix["instance_method"]] += 1
        v[ix[_REACH_COLUMN.get(site.reach, "reach_other")]] += 1
        if cls == "allowlisted":
            continue
        if site.opcode in _CLASS_OPCODES or callee != site.callable:
            v[ix["class_instantiations"]] += 1
        v[ix["max_args"]] = max(v[ix["max_args"]], len(args))
        for a in args:
            v[ix[f"arg_{_kind(a)}"]] += 1
        profile = _arg_profile(args, cache)
        bits = profile[0]
        _count_content(v, profile)
        if site.decode_layers:
            v[ix["sites_decoded_arg"]] += 1
            v[ix["max_decode_layers"]] = max(v[ix["max_decode_layers"]], site.decode_layers)
        suspicious_arg = bool(bits & (_CODE_LIKE | _HIGH_BIT))
        if suspicious_arg and unknown:
            unknown_code.add(callee)
            v[ix["unknown_code_sites"]] += 1
        if suspicious_arg and cls == "dangerous":
            v[ix["dangerous_code_sites"]] += 1
        if site.special:
            continue
        if site.kept is False:
            v[ix["discarded"]] += 1
            if unknown:
                v[ix["unknown_discarded"]] += 1
        elif site.kept:
            v[ix["kept"]] += 1
        if before:
            v[ix["before_data"]] += 1
            if unknown:
                v[ix["unknown_before_data"]] += 1
    n = v[ix["n_sites"]]
    v[ix["share_allowlisted"]] = v[ix["callee_allowlisted"]] / n if n else 0.0
    v[ix["distinct_unknown_callees"]] = len(unknown_names)
    v[ix["unknown_code_callees"]] = len(unknown_code)
    v[ix["any_discarded"]] = 1.0 if v[ix["discarded"]] else 0.0
    v[ix["any_before_data"]] = 1.0 if v[ix["before_data"]] else 0.0
    return [x if math.isfinite(x) else 0.0 for x in v]
