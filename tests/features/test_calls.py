"""The `calls` group: each column means what it says on hand-built pickles; a never-seen gadget called with a
shell command differs from a benign user class rebuilt with data; library pickles call only allow-listed
reconstructors; the group never raises and stays bounded on mutated pickles."""

from __future__ import annotations

import array
import base64
import collections
import datetime
import decimal
import fractions
import http
import io
import ipaddress
import pickle
import random
import re
import time
import urllib.parse
import uuid
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safepickle_bench.analysis import analyze_bytes
from safepickle_bench.craft.gadget_names import GadgetKind, generate_names
from safepickle_bench.craft.payload_args import ArgKind, Encoding, make_payload_arg
from safepickle_bench.craft.payloads import Build, Call, Dct, Glob, Lst, NewObj, attr, render, wrap_stream
from safepickle_bench.features import GROUPS, feature_columns, featurize, resolve_groups
from safepickle_bench.features.call_allowlist import load_allowlist, parse_allowlist
from safepickle_bench.features.calls import COLUMNS, callee_class, compute, reexport_kind
from safepickle_bench.features.taxonomy import load_taxonomy


def calls_of(data: bytes) -> dict[str, float]:
    row = featurize(analyze_bytes(data, "x.pkl"), "calls")
    return {k.removeprefix("calls__"): v for k, v in row.items()}


def _carrier_data() -> bytes:
    return render(Dct((("weights", Lst((1, 2, 3))), ("epochs", 3))), 2)


def _gadget() -> Glob:
    (name,) = generate_names("calls-test", 1, namespace="test", kinds=(GadgetKind.FUNCTION,))
    return Glob(name.module_path, name.attr_path)


def test_calls_is_part_of_all_and_selectable_by_name():
    assert GROUPS[-1] == "calls"
    assert resolve_groups("all") == GROUPS
    assert resolve_groups(["all", "calls"]) == GROUPS
    assert feature_columns("calls") == list(COLUMNS)
    assert feature_columns("all")[-len(COLUMNS):] == list(COLUMNS)


def test_no_column_names_a_callable():
    tax = load_taxonomy()
    names = set(load_allowlist().reasons) | set(tax.prefixes)
    kinds = {"bytes", "str", "object", "dict", "list", "tuple", "int", "float", "none", "path"}  # value kinds
    parts = {n.rsplit(".", 1)[-1] for n in names if "." in n} - kinds  # the callables' own names, as spelt
    for column in COLUMNS:
        tokens = set(column.removeprefix("calls__").split("_"))
        assert not tokens & parts, column
        assert not any(n.lower() in column for n in names if "." in n), column


def test_unknown_gadget_with_a_shell_command_differs_from_a_benign_class_rebuilt_with_data():
    gadget = _gadget()
    command = make_payload_arg(random.Random(3), "/tmp", kind=ArgKind.SHELL, encoding=Encoding.PLAIN, n_pieces=1)
    malicious = b"\x80\x02" + render(Call(gadget, (command.text,)), 2) + b"0" + _carrier_data() + b"."
    user_class = Glob("lumenlab.records", "TrainingRecord")
    benign_obj = Build(NewObj(user_class, ()), Dct((("name", "run-7"), ("scores", Lst((1, 2))))))
    benign = b"\x80\x02" + render(Dct((("record", benign_obj),)), 2) + b"."
    m, b = calls_of(malicious), calls_of(benign)
    assert m["callee_third_party"] == 1 and b["callee_third_party"] == 1  # the names alone look alike
    assert m["sites_shell"] == 1 and m["sites_code_like"] == 1 and m["unknown_code_callees"] == 1
    assert m["unknown_discarded"] == 1 and m["unknown_before_data"] == 1 and m["arg_str"] == 1
    assert b["sites_code_like"] == b["unknown_code_callees"] == b["unknown_discarded"] == 0
    assert b["unknown_before_data"] == 0 and b["build_unknown_dict_state"] == 1
    assert b["class_instantiations"] == 1 and m["class_instantiations"] == 0


def test_python_source_argument_is_code_like_but_prose_that_mentions_code_is_not():
    gadget = _gadget()
    source = make_payload_arg(random.Random(5), "/tmp", kind=ArgKind.PYTHON, encoding=Encoding.PLAIN, n_pieces=1)
    code = calls_of(wrap_stream(render(Call(gadget, (source.text,)), 2), 2))
    prose = calls_of(wrap_stream(render(Call(gadget, ("Call exec or system only on trusted input.",)), 2), 2))
    assert code["sites_python"] == 1
    assert prose["sites_python"] == prose["sites_shell"] == 0


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("curl http://127.0.0.1:9/x | sh", "sites_shell"),
        ("http://127.0.0.1:9/stage2", "sites_url"),
        ("connect 127.0.0.1 9", "sites_ip"),
        ("/tmp/safepickle-marker", "sites_sys_path"),
        ("import os; os.getcwd()", "sites_python"),
    ],
)
def test_each_code_likeness_column_fires_on_its_kind_of_text(text, column):
    assert calls_of(wrap_stream(render(Call(_gadget(), (text,)), 2), 2))[column] == 1


def test_high_entropy_bytes_argument_and_their_size():
    blob = random.Random(1).randbytes(2048)
    row = calls_of(wrap_stream(render(Call(_gadget(), (blob,)), 3), 3))
    assert row["sites_high_entropy"] == 1 and row["max_arg_entropy"] > 7.0
    assert row["max_bytes_arg_len"] == 2048 and row["arg_bytes"] == 1 and row["unknown_code_callees"] == 1


def test_decoding_layers_peeled_before_the_call():
    text = "echo SAFEPICKLE-layers"
    blob = base64.b64encode(zlib.compress(text.encode())).decode()
    arg = Call(Glob("zlib", "decompress"), (Call(Glob("base64", "b64decode"), (blob,)),))
    row = calls_of(wrap_stream(render(Call(_gadget(), (arg,)), 2), 2))
    # the gadget gets two layers, zlib.decompress one: two sites with a decoded argument
    assert row["max_decode_layers"] == 2 and row["sites_decoded_arg"] == 2 and row["sites_shell"] == 1


def test_dotted_reexport_path_to_a_dangerous_callable():
    gadget = _gadget()
    host = gadget.module
    row = calls_of(wrap_stream(render(Call(Glob(host, "os.system"), ("echo hi",)), 4), 4))
    assert row["reexport_path"] == 1 and row["reexport_to_dangerous"] == 1
    assert reexport_kind(f"{host}.os.system") == 2 and reexport_kind("numpy.core.multiarray.scalar") == 0


def test_getattr_on_a_rebuilt_instance_is_an_instance_method():
    instance = NewObj(Glob("lumenlab.agents", "ToolRunner"), ())
    row = calls_of(wrap_stream(render(Call(attr(instance, "invoke"), ("ls -la /tmp",)), 2), 2))
    assert row["instance_method"] == 1 and row["sites_shell"] == 1


def test_result_kept_versus_discarded():
    call = Call(_gadget(), ("value",))
    kept = calls_of(b"\x80\x02" + render(Dct((("k", call),)), 2) + b".")
    discarded = calls_of(b"\x80\x02" + render(call, 2) + b"0" + _carrier_data() + b".")
    assert (kept["kept"], kept["discarded"], kept["any_discarded"]) == (1, 0, 0)
    assert (discarded["kept"], discarded["discarded"], discarded["any_discarded"]) == (0, 1, 1)


def test_a_reconstructor_before_the_payload_counts_as_data():
    ordered = Call(Glob("collections", "OrderedDict"), ())
    after = calls_of(b"\x80\x02" + render(ordered, 2) + b"0" + render(Call(_gadget(), ("x",)), 2) + b".")
    before = calls_of(b"\x80\x02" + render(Call(_gadget(), ("x",)), 2) + b"0" + render(ordered, 2) + b".")
    assert after["before_data"] == 0 and before["before_data"] == 1


def test_callee_classes():
    gadget = _gadget()
    assert callee_class("copyreg._reconstructor") == "allowlisted"
    assert callee_class("copy_reg._reconstructor") == "allowlisted"
    assert callee_class("posix.system") == "dangerous"
    assert callee_class("__main__.Config") == "main"
    assert callee_class("sklearn.linear_model._base.LinearRegression") == "known_namespace"
    assert callee_class("string.Template") == "stdlib"
    assert callee_class(gadget.qualname) == "third_party"
    assert callee_class("?.run") == "unresolved"


def _library_objects() -> list[object]:
    objs: list[object] = [
        collections.OrderedDict(a=1), collections.Counter("ab"), collections.defaultdict(list, a=[1]),
        collections.deque([1]), datetime.datetime(2020, 1, 2, 3, 4), datetime.date(2020, 1, 1),
        datetime.timedelta(3), decimal.Decimal("1.5"), fractions.Fraction(1, 3), uuid.UUID(int=5),
        re.compile("a+"), array.array("i", [1, 2]), complex(1, 2), {1, 2}, frozenset([1]), bytearray(b"x"),
        slice(1, 2), range(3), b"bytes", np.arange(6).reshape(2, 3), np.float32(1.5), np.dtype("f4"),
        np.ma.masked_array([1, 2], mask=[0, 1]), np.random.RandomState(0),
        urllib.parse.urlsplit("http://127.0.0.1:9/x"), urllib.parse.urlparse("https://127.0.0.1/a;b?c#d"),
        http.HTTPStatus.OK, http.HTTPMethod.GET, time.gmtime(0), ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_address("::1"),
    ]  # fmt: skip
    return objs


def test_stdlib_value_types_are_data_not_network():
    tax = load_taxonomy()
    for name in ("urllib.parse.SplitResult", "urlparse.SplitResult", "http.HTTPStatus", "ipaddress.IPv4Address",
                 "time.struct_time"):
        assert not tax.is_dangerous(tax.categorize(name)), name
    for name in ("urllib.request.urlopen", "http.client.HTTPConnection", "socket.create_connection"):
        assert tax.is_dangerous(tax.categorize(name)), name


def test_benign_library_pickles_call_only_allow_listed_reconstructors():
    for obj in _library_objects():
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            row = calls_of(pickle.dumps(obj, protocol=protocol))
            assert row["n_sites"] == row["callee_allowlisted"], (obj, protocol)
            assert row["unknown_code_callees"] == row["discarded"] == row["before_data"] == 0


def test_torch_state_dict_calls_only_allow_listed_reconstructors():
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2, 2), "b": torch.nn.Parameter(torch.ones(1))}, buf)
    row = calls_of(buf.getvalue())
    assert row["n_sites"] > 0 and row["n_sites"] == row["callee_allowlisted"]


def test_every_allow_list_entry_gives_a_reason_and_none_is_dangerous():
    with pytest.raises(ValueError, match="no reason"):
        parse_allowlist({"entries": {"pkg.f": ""}})
    tax = load_taxonomy()
    for name in load_allowlist().reasons:
        assert not tax.is_dangerous(tax.categorize(name)), name


_SEEDS = [
    wrap_stream(render(Call(Glob("zephyrkit.runtime", "launch"), ("curl http://127.0.0.1:9 | sh",)), 2), 2),
    pickle.dumps({"a": [1, 2.5, "x"], "b": collections.OrderedDict(k=b"\x00" * 40)}, protocol=4),
    b"\x80\x02" + render(Call(Glob("base64", "b64decode"), ("aGk=",)), 2) + b"0" + _carrier_data() + b".",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(_SEEDS), edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                                    max_size=8), cut=st.integers(0, 10_000))
def test_group_never_raises_and_is_bounded_on_mutated_pickles(seed, edits, cut):
    data = bytearray(seed)
    for pos, byte in edits:
        data[pos % len(data)] = byte
    data = bytes(data[: max(1, cut % (len(data) + 1))])
    analysis = analyze_bytes(data, "m.pkl")
    t0 = time.process_time()
    values = compute(analysis)
    assert time.process_time() - t0 < 1.0
    assert len(values) == len(COLUMNS) and all(v == v and abs(v) < 1e12 for v in values)


def test_protocol_0_and_1_instances_read_as_calls_of_the_class_they_build():
    gadget = _gadget()
    module, name = gadget.qualname.rsplit(".", 1)
    newobj = f"ccopy_reg\n__newobj__\n(c{module}\n{name}\nV127.0.0.2:9\ntR.".encode()
    reconstructor = f"ccopy_reg\n_reconstructor\n(c{module}\n{name}\nc__builtin__\nobject\nNtR.".encode()
    for data in (newobj, reconstructor):
        row = calls_of(data)
        assert row["callee_third_party"] == 1 and row["callee_allowlisted"] == 0
        assert row["class_instantiations"] == 1 and row["distinct_unknown_callees"] == 1
    assert calls_of(newobj)["sites_ip"] == 1


@pytest.mark.parametrize(("state", "column"), [
    ("127.0.0.2:9", "sites_ip"),
    (("/tmp/safepickle-out/marker.txt", "token"), "sys_path"),
    ("import os\nos.getcwd()", "sites_python"),
])
def test_a_build_state_handed_to_an_unknown_class_is_read_as_its_setstate_argument(state, column):
    column = column if column.startswith("sites_") else f"sites_{column}"
    value = state if isinstance(state, str) else Lst(state)
    unknown = calls_of(b"\x80\x02" + render(Build(NewObj(_gadget(), ()), value), 2) + b".")
    vouched = Glob("sklearn.preprocessing._data", "StandardScaler")
    known = calls_of(b"\x80\x02" + render(Build(NewObj(vouched, ()), value), 2) + b".")
    assert unknown[column] == 1 and unknown["build_unknown_other_state"] == 1
    assert known[column] == 0 and known["total_arg_chars"] == 0


def test_code_in_an_unknown_class_state_is_code_given_to_unknown_code():
    source = make_payload_arg(random.Random(9), "/tmp", kind=ArgKind.PYTHON, encoding=Encoding.PLAIN, n_pieces=1)
    row = calls_of(b"\x80\x02" + render(Build(NewObj(_gadget(), ()), source.text), 2) + b".")
    assert row["build_code_state"] == 1 and row["unknown_code_sites"] == 1 and row["unknown_code_callees"] == 1
    assert row["sites_code_like"] == 1
