"""The `strings` group: sizes and entropy of string literals, and how many look like payload text."""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import _count_elements  # type: ignore[attr-defined]
from collections.abc import Callable, Iterable, Set
from itertools import accumulate, repeat
from operator import add, mul, truediv

import numpy as np

from safepickle_bench.analysis.result import Analysis
from safepickle_bench.features.taxonomy import load_taxonomy

NAME = "strings"

# What a literal "looks like". A literal counts for a pattern when it contains one of the pattern's gate
# needles (_SHELL_NEEDLES, "://", a digit-dot-digit for IPs, _PATH_NEEDLES, _PYTHON_NEEDLES) and the
# pattern matches it (base64/hex: the literal is 24+ characters without "." and fully matches). Regexes
# run on single literals only. To find the few literals worth testing without a scan per literal, the
# distinct literals are joined with _SEP into one text searched with C-level str.rfind (and, for long ASCII
# text, a few numpy comparisons); each search selects a superset of the literals that can count and the
# exact gate + regex then decide, so the counts are those of a plain per-literal loop.
_WS = r"[ \t\r\f\v]"
_SHELL_WORDS = (
    "sh|bash|zsh|dash|ksh|csh|cmd|cmd\\.exe|powershell|pwsh|curl|wget|nc|ncat|netcat|socat|telnet|ssh|scp|"
    "rm|mv|cp|chmod|chown|echo|printf|cat|ls|touch|mkdir|kill|pkill|nohup|sudo|su|crontab|env|export|"
    "python|python2|python3|perl|ruby|php|node|base64|xxd|dd|tar|unzip|git|pip|pip3|apt|apt-get|yum|"
    "certutil|bitsadmin|mshta|rundll32|regsvr32|schtasks|whoami|uname|id|hostname|ifconfig|ipconfig|"
    "netstat|ps|tasklist|systeminfo|xdg-open|osascript"
)
_SINGLE_WORD_COMMANDS = "whoami|uname|hostname|ifconfig|ipconfig|netstat|systeminfo|tasklist"
SHELL_RE = re.compile(
    rf"(?:^|[;&|`(]{_WS}*|\$\({_WS}*)(?:/(?:usr/)?(?:local/)?s?bin/)?(?:{_SHELL_WORDS})"
    rf"(?:{_WS}+[^\s]|{_WS}*$|{_WS}*[;&|>])"
    rf"|&&|\|\||\$\(|`[^`\n]+`|>{_WS}*/dev/|/bin/(?:ba|z|da)?sh\b|\b(?:bash|sh){_WS}+-c\b|2>&1"
    rf"|^{_WS}*(?:{_SINGLE_WORD_COMMANDS}){_WS}*$",
    re.MULTILINE | re.IGNORECASE,
)
URL_RE = re.compile(r"\b(?:https?|ftp|ftps|sftp|file|wss?|tcp|udp|smb|ldap|gopher|dict)://", re.IGNORECASE)
IP_RE = re.compile(r"(?<![\d.])(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}(?![\d.])")
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
PATH_RE = re.compile(
    r"(?:^|(?<=[ \t'\"=(,]))(?:~?/(?:[\w.\-]+/)*[\w.\-]+|\.\.?/[\w.\-/]+|[A-Za-z]:[\\/][^\s]*|\\\\[\w.\-]+\\)"
    r"|/(?:etc|tmp|bin|dev|proc|usr|var|home|root|sbin)/",
    re.MULTILINE,
)
BASE64_RE = re.compile(r"[ \t]*[A-Za-z0-9+/_\-]{24,}={0,2}[ \t]*")
HEX_RE = re.compile(r"[ \t]*(?:0x)?(?:[0-9a-fA-F]{2}|\\x[0-9a-fA-F]{2}){16,}[ \t]*")
PYTHON_RE = re.compile(
    r"__import__\s*\(|\bimport[ \t]+[A-Za-z_][\w.]*|\bfrom[ \t]+[\w.]+[ \t]+import\b|\b(?:exec|eval|compile|"
    r"getattr|setattr|globals|open|breakpoint)[ \t]*\(|\blambda\b[^:\n]{0,40}:|\bdef[ \t]+\w+[ \t]*\(|"
    r"\bclass[ \t]+\w+[ \t]*[(:]|\bos\.(?:system|popen|exec\w*|spawn\w*|remove|unlink)\b|\bsubprocess\.\w+|"
    r"\bsys\.modules\b|__(?:builtins|globals|class|subclasses|mro|bases|code|reduce(?:_ex)?)__"
)
_SHELL_NEEDLES = (" ", ";", "&", "|", "`", "$", ">", *_SINGLE_WORD_COMMANDS.split("|"))
_PATH_NEEDLES = ("/", "\\")
_PYTHON_NEEDLES = ("(", "__", "import", "lambda", "class", "os.", "subprocess.", "sys.modules")
# Cheaper supersets of the literals that can count (see _classify). SHELL_RE matches a literal without any
# of _SHELL_CHARS (its whitespace, newline, operators, "(" and "/") only when the whole literal is a command
# word (^word$, ignoring case, character by character), and of those only the single-word commands
# themselves hold a needle (no other command word contains one; the tests check it). Outside its
# os./subprocess./sys.modules/dunder branches, which hold one of _PYTHON_SUBSTRINGS, PYTHON_RE needs one of
# _PYTHON_CHARS. An ASCII IPv4 address holds one of _IP_NEEDLES once its digits are zeroed.
_SEP = "#"  # joins the literals: in no needle, printable ASCII, neither "." nor a digit
_SHELL_CHARS = " \t\r\f\v\n;&|`$>(/"
_SINGLE_WORDS = frozenset(_SINGLE_WORD_COMMANDS.split("|"))
_PYTHON_CHARS = "( \t:"
_PYTHON_SUBSTRINGS = ("__", "os.", "subprocess.", "sys.modules")
_IP_NEEDLES = ("0.0.0", "0.00.0", "0.000.0")  # digit, ".", 1-3 digits, ".", digit (zeroed)
_BLOB_MIN = 24  # base64/hex candidates: at least this long, without "." (_Joined.blob_candidates uses 24)
_DOT, _SEP_CODE, _ZERO = ord("."), ord(_SEP), ord("0")
_NUMPY_MIN_CHARS = 4096  # below this, numpy's fixed cost per call outweighs its scans of the joined text
_SUSPICIOUS_LITERALS = load_taxonomy().suspicious_literals
_PATTERN_NAMES: tuple[str, ...] = ("shell", "url", "ip", "path", "base64", "hex", "python")
_SCALARS: dict[str, str] = {
    "n_strings": "string literals over every stream (exact, even when the analyzer kept fewer)",
    "n_kept": "string literals the analyzer kept (what the other columns see)",
    "n_distinct": "distinct kept string literals",
    "total_length": "characters over the kept literals (each truncated by the analyzer)",
    "max_length": "length of the longest kept literal",
    "mean_length": "mean length of the kept literals",
    "entropy_longest": "Shannon entropy (bits per character) of the longest kept literal",
    "n_dangerous_names": "distinct kept literals that exactly name a dangerous module or function (taxonomy `suspicious_literals`: os, system, eval, __import__...)",
    "n_nonprintable_or_nonascii": "distinct kept literals (4+ characters) with characters outside printable ASCII",
}
COLUMNS: tuple[str, ...] = (
    *(f"{NAME}__{s}" for s in _SCALARS),
    *(f"{NAME}__{p}_count" for p in _PATTERN_NAMES),
    *(f"{NAME}__{p}_share" for p in _PATTERN_NAMES),
)
_PATTERN_DOCS = {
    "shell": "shell commands (command word with arguments, &&, ;, $(), backticks, /bin/sh)",
    "url": "URLs (scheme://)",
    "ip": "IPv4 addresses",
    "path": "file paths (absolute, home, relative ./, Windows drive or UNC, system directories)",
    "base64": "base64 blobs (a literal of 24+ base64 characters, = padded or mixing cases and digits)",
    "hex": "hex blobs (a literal of 16+ hex byte pairs or \\x escapes)",
    "python": "Python source (import, exec/eval/compile calls, lambda, def, os.system, dunder access)",
}
DESCRIPTIONS: dict[str, str] = {
    **{f"{NAME}__{s}": d for s, d in _SCALARS.items()},
    **{f"{NAME}__{p}_count": f"distinct kept literals that look like {_PATTERN_DOCS[p]}" for p in _PATTERN_NAMES},
    **{f"{NAME}__{p}_share": f"share of distinct kept literals that look like {_PATTERN_DOCS[p]}" for p in _PATTERN_NAMES},
}


def shannon_entropy(text: str) -> float:
    """Return the Shannon entropy of `text` in bits per character (0 for an empty string)."""
    n = len(text)
    if n <= 1:
        return 0.0
    counts: dict[str, int] = {}
    _count_elements(counts, text)  # Counter's C helper: the same counts, in the same (first-seen) order
    shares = list(map(truediv, counts.values(), repeat(n)))
    return -sum(map(mul, shares, map(math.log2, shares)))


def _looks_base64(s: str) -> bool:
    """Return whether a literal is a base64 blob: the alphabet only, and padded or mixing cases and digits."""
    if BASE64_RE.fullmatch(s) is None:
        return False
    core = s.strip()
    if core.endswith("="):
        return True
    return any(c.isdigit() for c in core) and any(c.isupper() for c in core) and any(c.islower() for c in core)


class _Joined:
    """Literals joined with _SEP into one text, with (long ASCII text only) its byte codes and masks."""

    __slots__ = (
        "literals", "text", "is_ascii", "numpy", "codes", "dots", "sep_mask", "_seps", "_seps_done", "_starts"
    )

    def __init__(self, literals: list[str]) -> None:
        self.literals = literals
        self.text = _SEP.join(literals)
        self.is_ascii = self.text.isascii()
        self.numpy = self.is_ascii and len(self.text) >= _NUMPY_MIN_CHARS
        if self.numpy:  # codes, dots and sep_mask exist for numpy only
            self.codes = np.frombuffer(self.text.encode("ascii"), np.uint8)
            self.dots = self.codes == _DOT
            self.sep_mask = self.codes == _SEP_CODE
        self._seps: np.ndarray | None = None
        self._seps_done = False
        self._starts: list[int] | None = None

    def is_printable(self) -> bool:
        """Return whether every literal is printable ASCII."""
        if not self.numpy:
            return self.is_ascii and self.text.isprintable()
        codes = self.codes
        return not len(codes) or (int(codes.min()) >= 0x20 and int(codes.max()) <= 0x7E)

    def separators(self) -> np.ndarray | None:
        """Return the offsets of the separators, or None without numpy or when a literal holds _SEP."""
        if not self._seps_done:
            self._seps_done = True
            if self.numpy:
                seps = np.flatnonzero(self.sep_mask)
                if len(seps) == len(self.literals) - 1:
                    self._seps = seps
        return self._seps

    @property
    def starts(self) -> list[int]:
        """Return the offset in the text where each literal starts."""
        if self._starts is None:
            seps = self.separators()
            if seps is not None:
                self._starts = [0, *(seps + 1).tolist()]
            else:
                lengths_plus_one = map(add, map(len, self.literals[:-1]), repeat(1))
                self._starts = list(accumulate(lengths_plus_one, initial=0))
        return self._starts

    def containing(self, needles: Iterable[str], text: str | None = None) -> set[int]:
        """Return the indices of the literals that contain any of `needles` (which must not hold _SEP).

        `text` defaults to the joined text; pass a same-length translation of it to search that instead.
        """
        text = self.text if text is None else text
        hits: set[int] = set()
        for needle in needles:
            pos = text.rfind(needle)
            if pos < 0:
                continue
            starts = self.starts
            while pos >= 0:
                seg = bisect_right(starts, pos) - 1
                hits.add(seg)
                pos = text.rfind(needle, 0, starts[seg]) if seg else -1
        return hits

    def matching(self, pattern: re.Pattern[str]) -> set[int]:
        """Return the indices of the literals in which `pattern` (whose matches never hold _SEP) matches."""
        text = self.text
        hits: set[int] = set()
        found = pattern.search(text)
        if found is None:
            return hits
        starts = self.starts
        n = len(starts)
        while found is not None:
            seg = bisect_right(starts, found.start()) - 1
            hits.add(seg)
            found = pattern.search(text, starts[seg + 1]) if seg + 1 < n else None
        return hits

    def may_hold_ip(self) -> bool:
        """Return whether the text (numpy) holds digit "." 1-3 digits "." digit, as any IPv4 address does."""
        digit = (self.codes - _ZERO) < 10
        dd = digit[:-2] & self.dots[1:-1] & digit[2:]  # digit "." digit from here
        if not dd.any():
            return False
        # d.d.d at i: dd[i] & dd[i+2]; d.dd.d: dd[i] & dd[i+3]; d.ddd.d: dd[i] & digit[i+3] & dd[i+4]
        return bool(
            (dd[:-2] & dd[2:]).any()
            or (dd[:-3] & dd[3:]).any()
            or (dd[:-4] & digit[3 : max(len(dd) - 1, 3)] & dd[4:]).any()
        )

    def blob_candidates(self) -> list[str]:
        """Return a superset of the literals of _BLOB_MIN+ characters without "." or _SEP (as any blob is)."""
        lits = self.literals
        if not self.numpy:
            return lits
        breaks = self.dots | self.sep_mask
        # does every window of 24 characters hold a break? (OR over windows of 2, 4, 8, 16, then 16 + 8)
        w2 = breaks[:-1] | breaks[1:]
        w4 = w2[:-2] | w2[2:]
        w8 = w4[:-4] | w4[4:]
        w16 = w8[:-8] | w8[8:]
        covered = w16[:-8] | w8[16:]
        if covered.all():
            return []
        seps = self.separators()
        if seps is None:
            return lits
        free = np.flatnonzero(~covered)  # each starts 24 characters of one literal, without a break
        return [lits[i] for i in np.unique(np.searchsorted(seps, free)).tolist()]

    def longest(self, ordered: bool) -> str | None:
        """Return the first longest literal (the only one unless `ordered`), or None when it takes a scan."""
        seps = self.separators()
        if seps is None:
            return None
        n = len(self.literals)
        bounds = np.empty(n + 1, np.intp)
        bounds[0], bounds[1:n], bounds[n] = -1, seps, len(self.text)
        widths = bounds[1:] - bounds[:-1]  # length + 1 of each literal
        i = int(widths.argmax())
        if not ordered and np.count_nonzero(widths == widths[i]) > 1:
            return None
        return self.literals[i]


def _count(
    pattern: re.Pattern[str],
    literals: list[str],
    indices: Iterable[int],
    min_len: int,
    gate: Callable[[str], bool] | None = None,
) -> int:
    """Return how many indexed literals (min_len+ long, passing `gate` if any) `pattern` matches in."""
    return sum(
        1
        for i in indices
        if len(s := literals[i]) >= min_len
        and (gate is None or gate(s))
        and pattern.search(s) is not None
    )


def _shell_gate(s: str) -> bool:
    """Return whether a literal holds one of _SHELL_NEEDLES."""
    return _SHELL_GATE(s) is not None


def _python_gate(s: str) -> bool:
    """Return whether a literal holds one of _PYTHON_NEEDLES and a substring PYTHON_RE cannot match without."""
    return _PYTHON_REQUIRED(s) is not None and _PYTHON_GATE(s) is not None


def _classify(joined: _Joined, min_len: int, members: Set[str]) -> list[int]:
    """Return the pattern counts over the joined literals at least `min_len` long; `members` is their set."""
    lits = joined.literals
    if not lits:
        return [0] * len(_PATTERN_NAMES)
    text = joined.text
    shell = joined.containing(_SHELL_CHARS)
    words = members & _SINGLE_WORDS
    if words:
        shell.update(i for i, s in enumerate(lits) if s in words)
    url = joined.containing(("://",)) if ":" in text else ()
    ip: Iterable[int] = ()
    if not joined.is_ascii:  # \d also matches non-ASCII digits: the plain gate ("0.0" once zeroed)
        ip = joined.matching(_ASCII_DIGIT_DOT_DIGIT)
    elif not joined.numpy or joined.may_hold_ip():  # ASCII IPv4 addresses hold one of _IP_NEEDLES, zeroed
        ip = joined.containing(_IP_NEEDLES, text.translate(_DIGITS_TO_ZERO))
    blob_min = max(_BLOB_MIN, min_len)
    blobs = [s for s in joined.blob_candidates() if len(s) >= blob_min and "." not in s]
    python = joined.containing((*_PYTHON_CHARS, *_PYTHON_SUBSTRINGS))
    return [
        _count(SHELL_RE, lits, shell, min_len, _shell_gate),
        _count(URL_RE, lits, url, min_len),
        _count(IP_RE, lits, ip, min_len),
        _count(PATH_RE, lits, joined.containing(_PATH_NEEDLES), min_len),
        sum(1 for s in blobs if _looks_base64(s)),
        sum(1 for s in blobs if HEX_RE.fullmatch(s) is not None),
        _count(PYTHON_RE, lits, python, min_len, _python_gate),
    ]


def classify_many(literals: list[str]) -> list[int]:
    """Return, for distinct literals, how many look like shell, URL, IP, path, base64, hex, Python source."""
    return _classify(_Joined(literals), 0, set(literals))


def classify(s: str) -> tuple[bool, ...]:
    """Return whether one literal looks like shell, URL, IP, path, base64, hex, Python source."""
    return tuple(c > 0 for c in classify_many([s]))


_SHELL_CHAR_SET = frozenset(_SHELL_CHARS)
_PYTHON_CHAR_SET = frozenset(_PYTHON_CHARS)
_SHELL_GATE = re.compile("|".join(map(re.escape, _SHELL_NEEDLES))).search
_PYTHON_GATE = re.compile("|".join(map(re.escape, _PYTHON_NEEDLES))).search
_PYTHON_SUBSTRING = re.compile("|".join(map(re.escape, _PYTHON_SUBSTRINGS))).search
"""Whether a literal holds any of the needles (one C-level search instead of one `in` per needle)."""
_PYTHON_REQUIRED_SUBSTRINGS = (
    "__", "import", "exec", "eval", "compile", "getattr", "setattr", "globals", "open", "breakpoint", "lambda",
    "def", "class", "os.", "subprocess.", "sys.modules",
)  # fmt: skip
_PYTHON_REQUIRED = re.compile("|".join(map(re.escape, _PYTHON_REQUIRED_SUBSTRINGS))).search
"""Every branch of PYTHON_RE matches one of these substrings: a literal without any is never a match (a cheap
scan before the regex, which is slow on long binary literals)."""
_ASCII_DIGIT_DOT_DIGIT = re.compile(r"[0-9]\.[0-9]")
"""Where "0.0" is once ASCII digits are zeroed (str.translate is slow on non-ASCII text)."""
_FEW_LITERALS = 24
"""Up to this many distinct literals, one loop over the literals beats joining them and searching the text."""


def _classify_each(literals: Iterable[str], min_len: int) -> tuple[list[int], int]:
    """Return the pattern counts (as _classify) and the non-printable-or-non-ASCII count over the literals
    at least `min_len` long, one literal at a time, with the same cheap supersets before each regex."""
    shell = url = ip = path = b64 = hexes = python = nonascii = 0
    blob_min = max(_BLOB_MIN, min_len)
    for s in literals:
        if len(s) < min_len:
            continue
        ascii_text = s.isascii()
        if not (ascii_text and s.isprintable()):
            nonascii += 1
        if (not _SHELL_CHAR_SET.isdisjoint(s) or s in _SINGLE_WORDS) and _shell_gate(s):
            shell += SHELL_RE.search(s) is not None
        if "://" in s:
            url += URL_RE.search(s) is not None
        if "." in s:  # every IPv4 address holds dots
            if (
                any(n in s.translate(_DIGITS_TO_ZERO) for n in _IP_NEEDLES)
                if ascii_text
                else _ASCII_DIGIT_DOT_DIGIT.search(s) is not None
            ):
                ip += IP_RE.search(s) is not None
        elif len(s) >= blob_min:
            b64 += _looks_base64(s)
            hexes += HEX_RE.fullmatch(s) is not None
        if "/" in s or "\\" in s:
            path += PATH_RE.search(s) is not None
        if (not _PYTHON_CHAR_SET.isdisjoint(s) or _PYTHON_SUBSTRING(s) is not None) and _python_gate(s):
            python += PYTHON_RE.search(s) is not None
    return [shell, url, ip, path, b64, hexes, python], nonascii


def compute(analysis: Analysis) -> list[float]:
    """Return the strings columns of one analysis, in COLUMNS order."""
    kept: list[str] = []
    n_strings = 0
    for stream in analysis.streams:
        kept.extend(stream.strings)
        n_strings += stream.n_strings
    n_kept = len(kept)
    distinct = set(kept)
    nd = len(distinct)
    if nd <= _FEW_LITERALS:
        total = sum(map(len, kept))
        longest = max(kept, key=len) if kept else ""
        counts, nonascii = _classify_each(distinct, 4)
    else:
        # Every output is order-independent but the longest literal (the first of the longest): without
        # repeats, join the kept literals themselves, in order.
        in_order = nd == n_kept
        joined = _Joined(kept if in_order else list(distinct))
        total = len(joined.text) - max(nd - 1, 0) if in_order else len("".join(kept))
        longest = joined.longest(in_order)
        if longest is None:
            longest = max(kept, key=len) if kept else ""
        counts = _classify(joined, 4, distinct) if len(longest) >= 4 else [0] * len(_PATTERN_NAMES)
        nonascii = 0
        if not joined.is_printable():
            nonascii = sum(1 for s in joined.literals if len(s) >= 4 and not (s.isascii() and s.isprintable()))
    # In _SCALARS order.
    values = [
        max(n_strings, n_kept),
        n_kept,
        nd,
        total,
        len(longest),
        total / n_kept if n_kept else 0.0,
        shannon_entropy(longest),
        len(distinct & _SUSPICIOUS_LITERALS),
        nonascii,
        *counts,
    ]
    values += [c / nd for c in counts] if nd else [0.0] * len(counts)
    return list(map(float, values))


if tuple(_SCALARS) != (
    "n_strings", "n_kept", "n_distinct", "total_length", "max_length", "mean_length", "entropy_longest",
    "n_dangerous_names", "n_nonprintable_or_nonascii",
):  # fmt: skip  # pragma: no cover
    raise ImportError("strings scalars changed: update the ordered list in compute()")
