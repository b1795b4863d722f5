"""The `strings` group: sizes and entropy of string literals, and how many look like payload text."""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from itertools import accumulate

from safepickle_bench.analysis.result import Analysis
from safepickle_bench.features.taxonomy import load_taxonomy

NAME = "strings"

# What a literal "looks like". Distinct literals are joined with "\n" into one text; for each pattern a
# cheap substring gate (C-level str.find) picks the few literals that could match, and the regex runs
# on those only, so a torch state dict of a few hundred tensor names costs microseconds, not a regex
# scan per literal. No pattern matches across a newline.
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
    log2 = math.log2
    return -sum((c / n) * log2(c / n) for c in Counter(text).values())


def _looks_base64(s: str) -> bool:
    """Return whether a literal is a base64 blob: the alphabet only, and padded or mixing cases and digits."""
    if BASE64_RE.fullmatch(s) is None:
        return False
    core = s.strip()
    if core.endswith("="):
        return True
    return any(c.isdigit() for c in core) and any(c.isupper() for c in core) and any(c.islower() for c in core)


def _segments_with(text: str, starts: list[int], needles: tuple[str, ...]) -> list[int]:
    """Return the indices of the "\n"-joined literals of `text` that contain any of `needles`."""
    hits: set[int] = set()
    n = len(starts)
    for needle in needles:
        pos = text.find(needle)
        while pos >= 0:
            seg = bisect_right(starts, pos) - 1
            hits.add(seg)
            pos = text.find(needle, starts[seg + 1]) if seg + 1 < n else -1
    return sorted(hits)


def _count_matching(pattern: re.Pattern[str], literals: list[str], candidates: list[int]) -> int:
    """Return how many of the candidate literals `pattern` finds a match in."""
    if not candidates:
        return 0
    return sum(1 for i in candidates if pattern.search(literals[i]) is not None)


def classify_many(literals: list[str]) -> list[int]:
    """Return, for distinct literals, how many look like shell, URL, IP, path, base64, hex, Python source."""
    if not literals:
        return [0] * len(_PATTERN_NAMES)
    text = "\n".join(literals)
    starts = list(accumulate(map(len, literals[:-1]), lambda acc, n: acc + n + 1, initial=0))
    long_blobs = [s for s in literals if len(s) >= 24 and "." not in s]
    return [
        _count_matching(SHELL_RE, literals, _segments_with(text, starts, _SHELL_NEEDLES)),
        _count_matching(URL_RE, literals, _segments_with(text, starts, ("://",))),
        _count_matching(IP_RE, literals, _segments_with(text.translate(_DIGITS_TO_ZERO), starts, ("0.0",))),
        _count_matching(PATH_RE, literals, _segments_with(text, starts, _PATH_NEEDLES)),
        sum(1 for s in long_blobs if _looks_base64(s)),
        sum(1 for s in long_blobs if HEX_RE.fullmatch(s) is not None),
        _count_matching(PYTHON_RE, literals, _segments_with(text, starts, _PYTHON_NEEDLES)),
    ]


def classify(s: str) -> tuple[bool, ...]:
    """Return whether one literal looks like shell, URL, IP, path, base64, hex, Python source."""
    return tuple(c > 0 for c in classify_many([s]))


def compute(analysis: Analysis) -> list[float]:
    """Return the strings columns of one analysis, in COLUMNS order."""
    kept: list[str] = []
    n_strings = 0
    for stream in analysis.streams:
        kept.extend(stream.strings)
        n_strings += stream.n_strings
    n_kept = len(kept)
    distinct = set(kept)
    total = sum(map(len, kept))
    longest = max(kept, key=len) if kept else ""
    candidates = [s for s in distinct if len(s) >= 4]  # every output below is order-independent
    counts = classify_many(candidates)
    nonascii = 0
    joined = "".join(candidates)
    if not (joined.isascii() and joined.isprintable()):
        nonascii = sum(1 for s in candidates if not (s.isascii() and s.isprintable()))
    nd = len(distinct)
    scalars = {
        "n_strings": max(n_strings, n_kept),
        "n_kept": n_kept,
        "n_distinct": nd,
        "total_length": total,
        "max_length": len(longest),
        "mean_length": total / n_kept if n_kept else 0.0,
        "entropy_longest": shannon_entropy(longest),
        "n_dangerous_names": len(distinct & _SUSPICIOUS_LITERALS),
        "n_nonprintable_or_nonascii": nonascii,
    }
    shares = [c / nd if nd else 0.0 for c in counts]
    return [float(scalars[k]) for k in _SCALARS] + [float(c) for c in counts] + shares
