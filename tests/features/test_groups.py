"""Feature groups on hand-built analyses: opcode shares, import categories, strings, n-grams, structure."""

from __future__ import annotations

import pickletools

import numpy as np
import pytest

from safepickle_bench.analysis.result import Analysis, Anomaly, CallRecord, ImportRecord, Stream
from safepickle_bench.features import GROUPS, featurize, load_taxonomy
from safepickle_bench.features import ngrams as ngrams_group
from safepickle_bench.features.opcode_frequency import OPCODE_NAMES, SHARE_COLUMNS
from safepickle_bench.features.registry import REGISTRY
from safepickle_bench.features.strings import classify, shannon_entropy


def make_stream(
    opcodes: dict[str, int] | None = None,
    imports: list[str] | None = None,
    calls: list[str] | None = None,
    strings: list[str] | None = None,
    nested_depth: int = 0,
    location: str = "f#0",
) -> Stream:
    """Build a stream with the given opcode counts, imported and called globals and string literals."""
    opcodes = opcodes or {"PROTO": 1, "STOP": 1}
    codes = {op.name: op.code.encode("latin-1") for op in pickletools.opcodes}
    seq = b"".join(codes.get(op, b"\xff") * n for op, n in opcodes.items())
    recs = [
        ImportRecord(q.rsplit(".", 1)[0], q.rsplit(".", 1)[1], "STACK_GLOBAL", i)
        for i, q in enumerate(imports or [])
    ]
    return Stream(
        location=location,
        start=0,
        end=len(seq),
        protocol=4,
        has_proto=True,
        complete=True,
        n_opcodes=sum(opcodes.values()),
        opcode_counts=dict(opcodes),
        opcode_seq=seq,
        imports=recs,
        calls=[CallRecord(c, "REDUCE", i) for i, c in enumerate(calls or [])],
        strings=list(strings or []),
        n_strings=len(strings or []),
        nested_depth=nested_depth,
    )


def make_analysis(*streams: Stream, error: str | None = None) -> Analysis:
    """Build an analysis of a fake file holding `streams`."""
    return Analysis(
        path="fake.pkl", size=100, sha256="0" * 64, streams=list(streams), pickle_bytes=100, error=error
    )


CATEGORY_EXAMPLES = {
    "process_shell": "posix.system",
    "code_exec": "builtins.exec",
    "dynamic_import_attr": "builtins.getattr",
    "network": "socket.create_connection",
    "file_write": "shutil.rmtree",
    "nested_deserialisation": "_pickle.loads",
    "advisory_gadgets": "cProfile.run",
    "benign_ml": "collections.OrderedDict",
    "unknown_module": "__main__.Evil",
}


def test_every_group_returns_one_value_per_column():
    a = make_analysis(
        make_stream({"PROTO": 1, "BINUNICODE": 3, "STOP": 1}, ["os.system"], ["os.system"], ["echo hi"])
    )
    for g in GROUPS:
        values = np.asarray(REGISTRY[g].compute(a), dtype=float)
        assert values.shape == (len(REGISTRY[g].columns),), g
        assert np.isfinite(values).all(), g


def test_opcode_list_is_pickletools_order():
    assert tuple(op.name for op in pickletools.opcodes) == OPCODE_NAMES


@pytest.mark.parametrize(
    "opcodes",
    [
        {"PROTO": 1, "STOP": 1},
        {"PROTO": 1, "BINUNICODE": 7, "BINPUT": 3, "TUPLE": 2, "STOP": 1},
        {op: i + 1 for i, op in enumerate(OPCODE_NAMES)},
    ],
)
def test_opcode_shares_sum_to_one(opcodes):
    row = featurize(make_analysis(make_stream(opcodes), make_stream(opcodes)), "opcodes")
    assert sum(row[c] for c in SHARE_COLUMNS) == pytest.approx(1.0, abs=1e-12)
    assert row["opcodes__empty"] == 0.0
    total = sum(opcodes.values())
    assert row["opcodes__BINUNICODE"] == pytest.approx(opcodes.get("BINUNICODE", 0) / total)


def test_no_opcode_gives_zero_shares_and_empty_flag():
    for a in (
        make_analysis(),
        make_analysis(error="missing"),
        make_analysis(make_stream({"NOTANOPCODE": 5})),
    ):
        row = featurize(a, "opcodes")
        assert all(row[c] == 0.0 for c in SHARE_COLUMNS)
        assert row["opcodes__empty"] == 1.0


def test_opcode_shares_ignore_nested_pickles():
    top = make_stream({"PROTO": 1, "BINBYTES": 1, "STOP": 1})
    nested = make_stream({"GLOBAL": 5, "REDUCE": 5}, nested_depth=1)
    assert featurize(make_analysis(top, nested), "opcodes") == featurize(make_analysis(top), "opcodes")


@pytest.mark.parametrize("category,qualname", sorted(CATEGORY_EXAMPLES.items()))
def test_each_import_category_fires_on_its_example(category, qualname):
    row = featurize(make_analysis(make_stream(imports=[qualname], calls=[qualname])), "imports")
    assert row[f"imports__{category}_count"] == 1.0
    assert row[f"imports__{category}_present"] == 1.0
    assert row[f"imports__{category}_called"] == 1.0
    others = [c for c in CATEGORY_EXAMPLES if c != category]
    assert all(row[f"imports__{c}_count"] == 0.0 for c in others)
    dangerous = category in load_taxonomy().dangerous
    assert row["imports__any_dangerous"] == float(dangerous)
    assert row["imports__dangerous_called"] == float(dangerous)
    assert row["imports__n_outside_benign"] == float(category != "benign_ml")


def test_taxonomy_resolves_aliases_prefixes_and_longest_match():
    tax = load_taxonomy()
    assert tax.categorize("nt.system") == tax.categorize("os.system") == "process_shell"
    assert tax.categorize("__builtin__.eval") == "code_exec"
    assert tax.categorize("_operator.attrgetter") == "dynamic_import_attr"
    assert tax.categorize("subprocess.Popen") == "process_shell"
    assert tax.categorize("os.systemx") == "unknown_module"
    assert tax.categorize("torch._utils._rebuild_tensor_v2") == "benign_ml"
    assert tax.categorize("torch.load") == "nested_deserialisation"
    assert tax.categorize("torch.utils.collect_env.run") == "advisory_gadgets"
    assert tax.categorize("ssl.get_server_certificate") == "advisory_gadgets"
    assert tax.categorize("idlelib.pyshell.ModifiedInterpreter.runcode") == "advisory_gadgets"
    assert tax.categorize("builtins.set") == "benign_ml"
    assert tax.categorize("builtins.print") == "unknown_module"


def test_called_dangerous_counts_do_not_dilute_under_padding():
    payload = make_stream(
        {"PROTO": 1, "GLOBAL": 1, "REDUCE": 1, "STOP": 1}, ["posix.system"], ["posix.system"]
    )
    padded = make_stream(
        {"PROTO": 1, "GLOBAL": 1, "REDUCE": 1, "BINUNICODE": 100_000, "SETITEMS": 1000, "STOP": 1},
        ["posix.system"],
        ["posix.system"],
    )
    small, big = featurize(make_analysis(payload)), featurize(make_analysis(padded))
    for col in (
        "imports__process_shell_called",
        "imports__dangerous_count",
        "imports__any_dangerous",
        "structure__n_call_opcodes",
        "structure__n_import_opcodes",
    ):
        assert small[col] == big[col] > 0
    assert big["opcodes__REDUCE"] < small["opcodes__REDUCE"] / 1000


def test_dangerous_import_in_second_or_nested_stream_is_counted():
    benign = make_stream(imports=["collections.OrderedDict"])
    second = make_stream(imports=["os.system"], location="f#1")
    nested = make_stream(imports=["builtins.eval"], nested_depth=1)
    row = featurize(make_analysis(benign, second, nested))
    assert row["imports__dangerous_outside_first_stream"] == 2.0
    assert row["structure__n_extra_streams_with_imports"] == 2.0
    assert row["structure__n_nested_streams"] == 1.0


def test_unresolved_calls_and_alias_spellings_are_counted():
    streams = make_stream(imports=["posix.system", "__builtin__.getattr", "?.?"], calls=["?", "?.?"])
    row = featurize(make_analysis(streams), "imports")
    assert row["imports__n_unresolved_calls"] == 2.0
    assert row["imports__n_unresolved_imports"] == 1.0
    assert row["imports__n_alias_spelling"] == 2.0
    assert row["imports__n_distinct_modules"] == 3.0  # os, builtins, ?


@pytest.mark.parametrize(
    "text,kinds",
    [
        ("echo pwned > /tmp/marker", {"shell", "path"}),
        ("whoami", {"shell"}),
        ("http://127.0.0.1:8000/payload", {"url", "ip"}),
        ("/etc/passwd", {"path"}),
        ("aGVsbG8gd29ybGQsIHRoaXMgaXMgYmFzZTY0IQ==", {"base64"}),
        ("deadbeef" * 6, {"hex"}),
        ("__import__('os').system('echo x')", {"python"}),
        ("encoder.layer.0.attention.self.query.weight", set()),
        ("model_layers_0_self_attn_q_proj_weight", set()),
        ("storage", set()),
        ("archive/data/0", set()),
    ],
)
def test_string_patterns(text, kinds):
    names = ("shell", "url", "ip", "path", "base64", "hex", "python")
    assert {n for n, hit in zip(names, classify(text), strict=True) if hit} == kinds


def test_string_features_count_payload_text():
    strings = ["weight", "bias", "echo pwned", "http://127.0.0.1/x", "weight"]
    row = featurize(make_analysis(make_stream(strings=strings)), "strings")
    assert row["strings__n_strings"] == 5.0
    assert row["strings__n_distinct"] == 4.0
    assert row["strings__max_length"] == len("http://127.0.0.1/x")
    assert row["strings__shell_count"] == 1.0
    assert row["strings__url_count"] == 1.0
    assert row["strings__entropy_longest"] == pytest.approx(shannon_entropy("http://127.0.0.1/x"))
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)


def test_ngram_buckets_are_fixed_and_rows_normalised():
    # The hash is part of the column definition: these values must never change without a FEATURE_VERSION bump.
    assert [ngrams_group.bucket_of(b) for b in (b"\x80\x04", b"c\x94", b"(tR", b"\x8c\x94\x93")] == [
        26,
        118,
        77,
        94,
    ]
    two = make_analysis(make_stream({"PROTO": 1, "STOP": 1}))
    proto_stop = ngrams_group.bucket_of(bytes([0x80]) + b".")
    assert featurize(two, "ngrams")[f"ngrams__bi_{proto_stop:03d}"] == 1.0
    row = featurize(make_analysis(make_stream({"PROTO": 1, "SHORT_BINUNICODE": 4, "STOP": 1})), "ngrams")
    bi = [v for c, v in row.items() if c.startswith("ngrams__bi_")]
    tri = [v for c, v in row.items() if c.startswith("ngrams__tri_")]
    assert len(bi) == len(tri) == ngrams_group.BUCKETS
    assert sum(bi) == pytest.approx(1.0) and sum(tri) == pytest.approx(1.0)


def test_structure_counts_anomalies_and_errors():
    s = make_stream()
    s.anomalies.append(Anomaly("trailing_bytes", 10, "f#0"))
    a = make_analysis(s)
    a.anomalies.append(Anomaly("container_corrupt", 0, "f"))
    a.containers = ["zip", "torch_zip", "weird"]
    row = featurize(a, "structure")
    assert row["structure__anomaly_trailing_bytes"] == 1.0
    assert row["structure__anomaly_container_corrupt"] == 1.0
    assert row["structure__n_anomalies"] == 2.0
    assert row["structure__container_torch_zip"] == 1.0 and row["structure__container_other"] == 1.0
    assert row["structure__error"] == 0.0
    assert featurize(make_analysis(error="unreadable"), "structure")["structure__error"] == 1.0


def test_a_group_that_fails_gives_a_flagged_row_not_an_exception():
    broken = make_stream()
    broken.opcode_counts = None  # type: ignore[assignment]  # hostile / inconsistent analysis
    row = featurize(make_analysis(broken))
    assert row["structure__error"] == 1.0
    assert len(row) == sum(len(REGISTRY[g].columns) for g in GROUPS)


def test_short_and_long_opcode_sequences_give_the_same_ngram_shares(monkeypatch):
    rng = np.random.default_rng(3)
    for n_streams in (1, 2, 3):
        streams = []
        for k in range(n_streams):
            s = make_stream()
            s.opcode_seq = rng.integers(0, 256, size=int(rng.integers(2, 300)), dtype=np.uint8).tobytes()
            s.nested_depth = int(k == 2)
            streams.append(s)
        analysis = make_analysis(*streams)
        rows = []
        for threshold in (0, 10**9, 100):  # numpy only, the Python loop only, mixed
            monkeypatch.setattr(ngrams_group, "_NUMPY_MIN_OPCODES", threshold)
            rows.append(ngrams_group.compute(analysis))
        assert rows[0].tobytes() == rows[1].tobytes() == rows[2].tobytes()


def test_every_python_pattern_match_holds_a_required_substring():
    from safepickle_bench.features import strings as S

    # Each branch of PYTHON_RE, then filler around it: the cheap pre-scan must never skip a match.
    examples = [
        "__import__ (", "import os", "from a.b import c", "eval(", "open  (", "breakpoint(", "lambda x: 1",
        "def f(", "class A:", "os.system", "os.execv", "subprocess.run", "sys.modules", "__globals__",
        "__reduce_ex__",
    ]  # fmt: skip
    for text in examples:
        for wrapped in (text, f"xx {text} yy", f"\x00\x7f{text}\n"):
            assert S.PYTHON_RE.search(wrapped) is not None
            assert S._PYTHON_REQUIRED(wrapped) is not None
    import re._parser  # type: ignore[import-not-found]

    ((kind, (_, branches)),) = re._parser.parse(S.PYTHON_RE.pattern)
    assert str(kind) == "BRANCH" and len(branches) == 11, "a new PYTHON_RE branch needs its substring listed"


def test_ascii_digit_dot_digit_is_the_zeroed_ip_gate():
    from safepickle_bench.features import strings as S

    rng = np.random.default_rng(5)
    alphabet = list("0123456789.#a ") + ["\u0661", "\u00e9", "\u2028"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 12))))
        zeroed = "0.0" in text.translate(S._DIGITS_TO_ZERO)
        assert (S._ASCII_DIGIT_DOT_DIGIT.search(text) is not None) == zeroed, repr(text)
