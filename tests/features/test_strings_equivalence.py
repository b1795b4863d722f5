"""The fast `strings` feature group gives exactly the values of its plain per-literal reference.

`safepickle_bench.features.strings` finds the literals worth a regex through cheap searches over the joined
literals (str.rfind, numpy masks) that select supersets of the literals that can count. The reference
below is a verbatim copy of the earlier, straightforward implementation (one str.find pass per gate needle
over the "\\n"-joined literals); it uses the module's patterns and needles, so it stays the yardstick when
those change. Every compute() row must be identical, float for float, on random literal lists, on torch
state dicts and on every file of the wild corpus; the invariants the supersets rest on are checked directly.
"""

from __future__ import annotations

import base64
import csv
import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safepickle_bench.analysis import analyze_path
from safepickle_bench.analysis.result import Analysis, Stream
from safepickle_bench.features import strings as S

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the reference: the earlier implementation, verbatim but for the module prefix ----------------------


def ref_shannon_entropy(text: str) -> float:
    """Return the Shannon entropy of `text` in bits per character (0 for an empty string)."""
    n = len(text)
    if n <= 1:
        return 0.0
    log2 = math.log2
    return -sum((c / n) * log2(c / n) for c in Counter(text).values())


def ref_looks_base64(s: str) -> bool:
    """Return whether a literal is a base64 blob: the alphabet only, and padded or mixing cases and digits."""
    if S.BASE64_RE.fullmatch(s) is None:
        return False
    core = s.strip()
    if core.endswith("="):
        return True
    return any(c.isdigit() for c in core) and any(c.isupper() for c in core) and any(c.islower() for c in core)


def ref_segments_with(text: str, starts: list[int], needles: tuple[str, ...]) -> list[int]:
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


def ref_count_matching(pattern: re.Pattern[str], literals: list[str], candidates: list[int]) -> int:
    """Return how many of the candidate literals `pattern` finds a match in."""
    if not candidates:
        return 0
    return sum(1 for i in candidates if pattern.search(literals[i]) is not None)


def ref_classify_many(literals: list[str]) -> list[int]:
    """Return, for distinct literals, how many look like shell, URL, IP, path, base64, hex, Python source."""
    if not literals:
        return [0] * len(S._PATTERN_NAMES)
    text = "\n".join(literals)
    starts = list(accumulate(map(len, literals[:-1]), lambda acc, n: acc + n + 1, initial=0))
    long_blobs = [s for s in literals if len(s) >= 24 and "." not in s]
    return [
        ref_count_matching(S.SHELL_RE, literals, ref_segments_with(text, starts, S._SHELL_NEEDLES)),
        ref_count_matching(S.URL_RE, literals, ref_segments_with(text, starts, ("://",))),
        ref_count_matching(
            S.IP_RE, literals, ref_segments_with(text.translate(S._DIGITS_TO_ZERO), starts, ("0.0",))
        ),
        ref_count_matching(S.PATH_RE, literals, ref_segments_with(text, starts, S._PATH_NEEDLES)),
        sum(1 for s in long_blobs if ref_looks_base64(s)),
        sum(1 for s in long_blobs if S.HEX_RE.fullmatch(s) is not None),
        ref_count_matching(S.PYTHON_RE, literals, ref_segments_with(text, starts, S._PYTHON_NEEDLES)),
    ]


def ref_compute(analysis: Analysis) -> list[float]:
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
    counts = ref_classify_many(candidates)
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
        "entropy_longest": ref_shannon_entropy(longest),
        "n_dangerous_names": len(distinct & S._SUSPICIOUS_LITERALS),
        "n_nonprintable_or_nonascii": nonascii,
    }
    shares = [c / nd if nd else 0.0 for c in counts]
    return [float(scalars[k]) for k in S._SCALARS] + [float(c) for c in counts] + shares


# --- literal generators ---------------------------------------------------------------------------------


def stream_of(strings: list[str], n_strings: int, index: int = 0) -> Stream:
    """Return a bare stream holding `strings` (the other fields do not matter to the strings group)."""
    return Stream(
        location=f"f#{index}",
        start=0,
        end=1,
        protocol=4,
        has_proto=True,
        complete=True,
        n_opcodes=1,
        opcode_counts={"STOP": 1},
        opcode_seq=b".",
        strings=list(strings),
        n_strings=n_strings,
    )


def analysis_of(chunks: list[list[str]], extra: list[int]) -> Analysis:
    """Return an analysis with one stream per chunk; a stream's n_strings is its length plus `extra`."""
    pairs = enumerate(zip(chunks, extra, strict=True))
    streams = [stream_of(c, max(len(c) + e, 0), i) for i, (c, e) in pairs]
    return Analysis(path="fake.pkl", size=1, sha256="0" * 64, streams=streams)


def bert_keys(n_layers: int) -> list[str]:
    """Return the key names of an HF BERT-like state dict."""
    keys = ["embeddings.word_embeddings.weight", "embeddings.LayerNorm.weight"]
    for layer in range(n_layers):
        for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "intermediate.dense", "output.dense"):
            keys += [f"encoder.layer.{layer}.{part}.weight", f"encoder.layer.{layer}.{part}.bias"]
        keys += [f"encoder.layer.{layer}.output.LayerNorm.{p}" for p in ("weight", "bias")]
    return keys


def bert_literals(n_layers: int) -> list[str]:
    """Return the kept literals of a BERT-like state dict as torch.save pickles it (with storage keys)."""
    out = []
    for i, key in enumerate(bert_keys(n_layers)):
        out += [key, *(("storage",) if i == 0 else ()), str(i), *(("cpu",) if i == 0 else ())]
    return out


def other_model_names() -> list[list[str]]:
    """Return key names of LLaMA-, ResNet-, GPT-2- and ViT-like state dicts."""
    llama = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for layer in range(8):
        for part in ("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj"):
            llama.append(f"model.layers.{layer}.{part}.weight")
        llama += [f"model.layers.{layer}.{p}_layernorm.weight" for p in ("input", "post_attention")]
    resnet = ["conv1.weight", "bn1.running_mean", "fc.bias"]
    for li in range(1, 5):
        for b in range(3):
            resnet += [f"layer{li}.{b}.conv{c}.weight" for c in (1, 2, 3)]
            resnet += [f"layer{li}.{b}.bn1.num_batches_tracked", f"layer{li}.0.downsample.0.weight"]
    gpt2 = ["transformer.wte.weight"] + [f"transformer.h.{i}.attn.c_attn.weight" for i in range(12)]
    vit = ["cls_token", "pos_embed"] + [f"blocks.{i}.mlp.fc{j}.bias" for i in range(12) for j in (1, 2)]
    return [llama, resnet, gpt2, vit]


STATE_DICTS = [bert_literals(n) for n in (1, 4, 12, 24)] + other_model_names()
TORCH_NAMES = sorted({s for names in STATE_DICTS for s in names})
SHELL_WORDS = S._SHELL_WORDS.replace("\\", "").split("|")
SINGLE_WORDS = S._SINGLE_WORD_COMMANDS.split("|")
CASES = st.sampled_from([
    str, str.upper, str.title, str.swapcase,
    lambda w: w.replace("s", "\u017f").replace("k", "\u212a").replace("i", "\u0131"),  # s, k, i ignoring case
])

shell_command = st.builds(
    lambda pre, path, word, case, post: pre + path + case(word) + post,
    st.sampled_from(["", "; ", "&&", "&", "|", "||", "`", "$(", "$( ", "(", "\n", " ", "\t", "x", "x "]),
    st.sampled_from(["", "", "/bin/", "/usr/bin/", "/usr/local/sbin/", "bin/"]),
    st.sampled_from(SHELL_WORDS + SINGLE_WORDS + ["bash -c", "sh\t-c", "2>&1", "/bin/zsh", "/bin/shx"]),
    CASES,
    st.sampled_from(["", "", " -c id", "\t-la", " ", ";", " > /dev/null", ">/dev/tcp/1.2.3.4/80", " 2>&1",
                     "x", "\n", "`", ")", "&", " |", "\r", "\x0b", "\x0c"]),
)
WHITESPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\x1c", "\x85"]
single_word = st.builds(
    lambda word, case, pre, post: pre + case(word) + post,
    st.one_of(st.sampled_from(SINGLE_WORDS), st.sampled_from(SHELL_WORDS)),
    CASES,
    st.sampled_from(["", "", "", "x", "#", ".", *WHITESPACE]),
    st.sampled_from(["", "", "", "x", "#", "s", "-a", *WHITESPACE, *(w + "-a" for w in WHITESPACE)]),
)
url = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https", "ftp", "file", "ws", "wss", "tcp", "gopher", "HTTP", "xyz", "_http"]),
    st.sampled_from(["example.com", "10.0.0.1", "127.0.0.1:8080", "", "a"]),
    st.text("abc/.?=", max_size=6),
)
FIXED_IPS = ["1.234.255.7", "10.200.100.1", "192.168.100.200", "x255.255.255.255", "8.8.8.8", "v1.22.3.4"]
ip = st.sampled_from(FIXED_IPS) | st.builds(
    lambda parts, pre, post: pre + ".".join(map(str, parts)) + post,
    st.lists(
        st.one_of(st.integers(0, 300), st.sampled_from([0, 9, 10, 99, 100, 199, 249, 255, 256])),
        min_size=2,
        max_size=5,
    ),
    st.sampled_from(["", "", "x", "1", ".", "v", "\n", "\u0661", "layer"]),
    st.sampled_from(["", "", ":80", "/", ".", "1", "a", "\u0662", ".weight"]),
)
unicode_ip = st.sampled_from(
    ["\u0661\u0662.\u0661.\u0661.\u0661", "1.2.3.\u0664", "\u0661.2.3.4", "1.\u0662.3.4 x 1.2",
     "\uff11.2.3.4", "1.2.3.4\u0665", "12.1\u0661.3.4"]
)
path = st.sampled_from(
    ["/etc/passwd", "~/x", "./a/b", "../x", "C:\\Windows\\x", "c:/x", "\\\\srv\\share", "a/b", "x=/tmp/y",
     "/proc/self", "'/home/u'", "(/var/x", "\\x", "/", "\\", "a\\b", "usr/bin/"]
)
b64 = st.builds(
    lambda raw, style, pad: pad[0] + style(raw) + pad[1],
    st.binary(min_size=10, max_size=48),
    st.sampled_from([
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode(),
        lambda b: base64.b64encode(b).decode().rstrip("="),
        lambda b: base64.b32encode(b).decode(),
    ]),
    st.sampled_from([("", ""), (" ", ""), ("\t", " "), ("", "\n"), ("x.", ""), ("", "#")]),
)
hexblob = st.builds(
    lambda raw, style, pad: pad[0] + style(raw) + pad[1],
    st.binary(min_size=12, max_size=40),
    st.sampled_from([
        bytes.hex,
        lambda b: b.hex().upper(),
        lambda b: "0x" + b.hex(),
        lambda b: "".join(f"\\x{c:02x}" for c in b),
        lambda b: b.hex()[:-1],
    ]),
    st.sampled_from([("", ""), (" ", "\t"), ("", "."), ("\n", "")]),
)
python_snippet = st.sampled_from(
    ["__import__('os').system('id')", "__import__ ('os')", "__import__\n(", "import os", "import\tsys.path",
     "from os import system", "from . import x", "exec(", "eval (", "getattr(x, 'y')", "open(", "compile\t(",
     "lambda x: x", "lambda:0", "lambda\n:", "def f(x):", "class A(object):", "class B:", "os.system",
     "os.popen('id')", "os.execv", "os.spawnl", "os.remove", "os.unlink", "subprocess.Popen", "subprocess.",
     "sys.modules", "x.__class__.__mro__", "__builtins__", "__reduce_ex__", "__globals__", "pos.system",
     "cos.remove", "my_os.system", "__", "os.", "importlib", "classify", "lambda_", "breakpoint()",
     "__subclasses__", "_os.system", "os.systemx", "sys.modulesx", "x(", "a:b", "a b"]
)
tricky = st.sampled_from(
    ["\u017fh -c id", "\u212aill -9 1", "\u0130d", "whoam\u0131", "WHOAM\u0130", "\u00a0ls", "ls\u2028x",
     "ls\x85",
     "\u00e9", "\x00", "#", "a#b", "##", "\x1f", "\x7f", "caf\u00e9 latte", "\ud7ff", "\U0001f600 x",
     "sh\u00a0-c x", "\u0660.\u0660", "", " ", "\n", "abc", "abcd", "0", "cpu", "storage", "os", "eval",
     "system", "__import__", "abc\x7f", "\x7fdel", "tab\there", "nul\x00byte", "esc\x1b[0m", "nbsp\u00a0x",
     "\u0131d -a", "\u017fsh", "who\u00e0mi", "\ud83d", "a\udcff/b c", "1.2.3.4\udc80"]
)
ascii_noise = st.text(" \t\n\r\x0b\x0c;&|`$>(/\\:._#-=+~'\"" + "xX0123456789abcdefABCDEFsShHoOwWiImMnN", max_size=40)

fragment = st.one_of(
    shell_command, single_word, url, ip, unicode_ip, path, b64, hexblob, python_snippet, tricky, ascii_noise,
    st.text(max_size=30), st.sampled_from(TORCH_NAMES),
)
JOINERS = ["", " ", "\n", ";", "#", ".", "/", "\t", "_", "0", "\u00e9"]
literal = st.one_of(
    fragment,
    st.builds(lambda parts, sep: sep.join(parts), st.lists(fragment, min_size=2, max_size=3),
              st.sampled_from(JOINERS)),
)


@st.composite
def analyses(draw: st.DrawFn, base: st.SearchStrategy[list[str]]) -> Analysis:
    """Draw an analysis whose kept literals (split over 1-3 streams, some repeated) come from `base`."""
    lits = draw(base)
    if lits and draw(st.booleans()):  # repeats make the literals of a stream non-distinct
        lits = lits + draw(st.lists(st.sampled_from(lits), max_size=5))
        lits = draw(st.permutations(lits))
    cuts = sorted(draw(st.lists(st.integers(0, len(lits)), max_size=2)))
    bounds = [0, *cuts, len(lits)]
    chunks = [lits[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    extra = draw(st.lists(st.integers(-3, 5), min_size=len(chunks), max_size=len(chunks)))
    return analysis_of(chunks, extra)


@st.composite
def state_dict_with_injections(draw: st.DrawFn) -> list[str]:
    """Draw the kept literals of a state dict with a few random literals inserted anywhere."""
    names = list(draw(st.sampled_from(STATE_DICTS)))
    for lit in draw(st.lists(literal, max_size=6)):
        names.insert(draw(st.integers(0, len(names))), lit)
    return names


# --- equivalence ----------------------------------------------------------------------------------------

# The numpy searches run on joined texts of _NUMPY_MIN_CHARS+ characters; "numpy" forces them on any text.
NUMPY_MODES = pytest.mark.parametrize("numpy_min_chars", [0, S._NUMPY_MIN_CHARS], ids=["numpy", "default"])


@contextmanager
def numpy_from(min_chars: int) -> Iterator[None]:
    """Run the block with the numpy searches used from `min_chars` joined characters on."""
    with mock.patch.object(S, "_NUMPY_MIN_CHARS", min_chars):
        yield


@NUMPY_MODES
@settings(SETTINGS, max_examples=200)
@given(analysis=analyses(st.lists(literal, max_size=40)))
def test_compute_matches_reference_on_random_literal_lists(numpy_min_chars: int, analysis: Analysis) -> None:
    with numpy_from(numpy_min_chars):
        assert S.compute(analysis) == ref_compute(analysis)


@NUMPY_MODES
@settings(SETTINGS, max_examples=100)
@given(analysis=analyses(state_dict_with_injections()))
def test_compute_matches_reference_on_state_dict_names_with_injected_literals(
    numpy_min_chars: int, analysis: Analysis
) -> None:
    with numpy_from(numpy_min_chars):
        assert S.compute(analysis) == ref_compute(analysis)


@NUMPY_MODES
@pytest.mark.parametrize("names", STATE_DICTS, ids=lambda names: f"{names[0]}-{len(names)}")
def test_compute_matches_reference_on_plain_state_dict_names(numpy_min_chars: int, names: list[str]) -> None:
    analysis = analysis_of([names], [0])
    with numpy_from(numpy_min_chars):
        assert S.compute(analysis) == ref_compute(analysis)


@NUMPY_MODES
@settings(SETTINGS, max_examples=200)
@given(literals=st.lists(literal, max_size=30))
def test_classify_many_matches_reference_on_any_list_including_short_and_repeated_literals(
    numpy_min_chars: int, literals: list[str]
) -> None:
    literals = literals + literals[: len(literals) // 3]
    with numpy_from(numpy_min_chars):
        assert S.classify_many(literals) == ref_classify_many(literals)


short_literal = st.one_of(
    st.text(" \t\n;&|`$>(/\\:._#~=0123456789abcxX", max_size=5),
    st.sampled_from(["/etc", "ls;", "ls", "id", "a&&b", "`x`", "1.2", "$(x", "os.", "__", "0x"]),
)


@NUMPY_MODES
@settings(SETTINGS, max_examples=150)
@given(analysis=analyses(st.lists(short_literal, max_size=12)))
def test_compute_matches_reference_when_no_literal_is_longer_than_a_few_characters(
    numpy_min_chars: int, analysis: Analysis
) -> None:
    with numpy_from(numpy_min_chars):
        assert S.compute(analysis) == ref_compute(analysis)


@SETTINGS
@given(literal)
def test_classify_matches_reference_on_single_literals(s: str) -> None:
    assert S.classify(s) == tuple(c > 0 for c in ref_classify_many([s]))


@SETTINGS
@given(st.one_of(literal, st.text(max_size=600)))
def test_shannon_entropy_is_bit_identical_to_reference(text: str) -> None:
    assert S.shannon_entropy(text) == ref_shannon_entropy(text)


def test_compute_matches_reference_on_every_wild_corpus_file(wild_corpus: Path) -> None:
    with (wild_corpus / "MANIFEST.csv").open(newline="", encoding="utf-8") as f:
        files = [wild_corpus / row["file"] for row in csv.DictReader(f)]
    files = [p for p in files if p.is_file()]
    assert files
    for p in files:
        analysis = analyze_path(str(p), compute_sha256=False)
        assert S.compute(analysis) == ref_compute(analysis), p.name


def test_compute_matches_reference_on_torch_saved_state_dicts(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    state_dicts = {"bert": bert_keys(12), **{f"other{i}": n for i, n in enumerate(other_model_names())}}
    for name, keys in state_dicts.items():
        path = tmp_path / f"{name}.bin"
        torch.save({k: torch.zeros(2) for k in keys}, path)
        analysis = analyze_path(str(path), compute_sha256=False)
        kept = [s for stream in analysis.streams for s in stream.strings]
        assert set(keys) <= set(kept)
        assert S.compute(analysis) == ref_compute(analysis), name


# --- the invariants the fast searches rest on ------------------------------------------------------------


def test_separator_is_printable_ascii_outside_every_needle_dot_and_digit() -> None:
    needles = (
        *S._SHELL_NEEDLES, *S._SHELL_CHARS, *S._PATH_NEEDLES, *S._PYTHON_NEEDLES, *S._PYTHON_CHARS,
        *S._PYTHON_SUBSTRINGS, *S._IP_NEEDLES, "://", "0.0",
    )
    assert len(S._SEP) == 1 and S._SEP.isascii() and S._SEP.isprintable()
    assert S._SEP not in ".0123456789"
    assert all(S._SEP not in n for n in needles)


def test_single_word_commands_are_inside_no_other_command_word() -> None:
    words = {w.lower() for w in SHELL_WORDS + SINGLE_WORDS}
    for single in SINGLE_WORDS:
        assert [w for w in words if single in w] == [single]


def _shell_counts(s: str) -> bool:
    """Return whether the reference counts `s` as shell: a gate needle and a SHELL_RE match."""
    return any(n in s for n in S._SHELL_NEEDLES) and S.SHELL_RE.search(s) is not None


@settings(SETTINGS, max_examples=500)
@given(
    st.one_of(
        single_word, shell_command, literal,
        st.text("abcdefhimnorstuwxyzABCDEFHIMNOSTUWXYZ.-_0123456789\u017f\u212a\u0131\u0130\u00a0\u2028\x85"),
    )
)
def test_literal_without_shell_chars_counts_as_shell_only_if_a_single_word_command(s: str) -> None:
    if not any(c in s for c in S._SHELL_CHARS) and _shell_counts(s):
        assert s in S._SINGLE_WORDS


def test_no_single_character_lets_a_literal_without_shell_chars_count_as_other_than_a_single_word() -> None:
    chars = [chr(c) for c in range(0x250)] + [*WHITESPACE, "\u1680", "\u2000", "\u2028", "\u2029", "\u3000",
                                              "\u017f", "\u212a", "\u0131", "\u0130", "\ufeff"]
    words = [*SINGLE_WORDS, "sh", "bash", "id", "ls", "cmd.exe", "xdg-open"]
    for c in chars:
        for w in words:
            for s in (w + c, c + w, w + c + "-a", c + w + c, "x" + c + w, w + c + w):
                if not any(ch in s for ch in S._SHELL_CHARS) and _shell_counts(s):
                    assert s in S._SINGLE_WORDS, repr(s)


@settings(SETTINGS, max_examples=500)
@given(st.one_of(python_snippet, literal, st.builds(lambda a, b: a + b, python_snippet, literal), st.text()))
def test_python_regex_matches_only_literals_with_a_python_char_or_substring(s: str) -> None:
    if S.PYTHON_RE.search(s) is not None:
        assert any(c in s for c in S._PYTHON_CHARS) or any(n in s for n in S._PYTHON_SUBSTRINGS)


@settings(SETTINGS, max_examples=500)
@given(st.one_of(ip, literal, st.text("0123456789.x")))
def test_ascii_ipv4_holds_an_ip_needle_once_digits_are_zeroed(s: str) -> None:
    if s.isascii() and S.IP_RE.search(s) is not None:
        assert any(n in s.translate(S._DIGITS_TO_ZERO) for n in S._IP_NEEDLES)


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.one_of(ip, literal), max_size=8))
def test_ip_precheck_holds_whenever_an_ascii_literal_holds_an_ipv4(literals: list[str]) -> None:
    literals = [s for s in literals if s.isascii()]
    if any(S.IP_RE.search(s) for s in literals):
        with numpy_from(0):
            assert S._Joined(literals).may_hold_ip()


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.one_of(literal, b64, hexblob, st.text("abc.#_/+=", min_size=20, max_size=30)), max_size=9))
def test_blob_candidates_hold_every_long_literal_without_a_dot_or_separator(literals: list[str]) -> None:
    with numpy_from(0):
        candidates = S._Joined(literals).blob_candidates()
    assert {s for s in literals if len(s) >= 24 and "." not in s and S._SEP not in s} <= set(candidates)


@NUMPY_MODES
@SETTINGS
@given(literals=st.lists(st.text(" ~a\x7f\x1f\x00\t\x80\xa0", max_size=6), max_size=6))
def test_is_printable_says_whether_every_literal_is_printable_ascii(
    numpy_min_chars: int, literals: list[str]
) -> None:
    with numpy_from(numpy_min_chars):
        assert S._Joined(literals).is_printable() == all(s.isascii() and s.isprintable() for s in literals)


@SETTINGS
@given(st.one_of(b64, hexblob), st.integers(0, 60))
def test_no_base64_or_hex_blob_holds_the_separator(blob: str, at: int) -> None:
    s = blob[:at] + S._SEP + blob[at:]
    assert S.BASE64_RE.fullmatch(s) is None and S.HEX_RE.fullmatch(s) is None
