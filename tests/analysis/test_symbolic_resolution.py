"""The symbolic layer resolves imports and calls through memo, getattr-like chains and nested pickles.

Every hostile stream here is written opcode by opcode (nothing is pickled from a live __reduce__, nothing
is ever loaded); payload strings are inert.
"""

from __future__ import annotations

import base64
import struct

from safepickle_bench.analysis.limits import Limits
from safepickle_bench.analysis.result import Stream
from safepickle_bench.analysis.streams import read_streams

PAYLOAD = "echo hi"


def u(s: str) -> bytes:
    """SHORT_BINUNICODE (or BINUNICODE when long) of a string."""
    raw = s.encode()
    return (b"\x8c" + bytes([len(raw)]) if len(raw) < 256 else b"X" + struct.pack("<I", len(raw))) + raw


def b(data: bytes) -> bytes:
    """BINBYTES of raw bytes."""
    return b"B" + struct.pack("<I", len(data)) + data


def g(module: str, name: str) -> bytes:
    """GLOBAL module name."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sg(module: str, name: str) -> bytes:
    """STACK_GLOBAL from two string literals."""
    return u(module) + u(name) + b"\x93"


def call1(fn: bytes, arg: bytes) -> bytes:
    """fn(arg) with REDUCE."""
    return fn + arg + b"\x85R"


def system_call(payload: str = PAYLOAD) -> bytes:
    """os.system(payload) as a protocol-4 stream body."""
    return call1(sg("os", "system"), u(payload))


def stream(body: bytes) -> bytes:
    """Wrap a body in PROTO 4 ... STOP."""
    return b"\x80\x04" + body + b"."


def first(data: bytes, limits: Limits | None = None) -> Stream:
    return read_streams(data, "t", limits or Limits()).streams[0]


def calls_of(s: Stream) -> list[str]:
    return [c.callable for c in s.calls]


def test_memo_aliased_stack_global_of_posix_system_resolves() -> None:
    body = (
        u("posix")
        + b"q\x00"
        + b"0"  # module string put in memo then popped
        + u("system")
        + b"r\x05\x00\x00\x00"
        + b"0"
        + b"h\x00"
        + b"j\x05\x00\x00\x00"
        + b"\x93"
        + u(PAYLOAD)
        + b"\x85R"
    )
    s = first(stream(body))
    assert [(i.module, i.name, i.opcode) for i in s.imports] == [("posix", "system", "STACK_GLOBAL")]
    assert s.calls[0].callable == "posix.system" and PAYLOAD in s.calls[0].args
    assert s.memo_puts == 2 and s.memo_gets == 2 and not s.anomalies


def test_protocol_0_inst_is_an_import_and_a_call() -> None:
    s = first(b"(S'echo hi'\nios\nsystem\n.")
    assert [(i.qualname, i.opcode) for i in s.imports] == [("os.system", "INST")]
    assert [(c.callable, c.opcode) for c in s.calls] == [("os.system", "INST")]
    assert "echo hi" in s.calls[0].args and s.protocol == 0 and not s.has_proto


def test_obj_calls_the_class_on_the_mark() -> None:
    s = first(b"(" + g("subprocess", "Popen") + b"(S'echo'\nS'hi'\nlo.")
    assert [(c.callable, c.opcode) for c in s.calls] == [("subprocess.Popen", "OBJ")]
    assert "'echo'" in s.calls[0].args


def test_newobj_ex_is_a_call_with_args_and_kwargs() -> None:
    body = sg("subprocess", "Popen") + u(PAYLOAD) + b"\x85" + b"}" + u("shell") + b"\x88s" + b"\x92"
    s = first(stream(body))
    assert [(c.callable, c.opcode) for c in s.calls] == [("subprocess.Popen", "NEWOBJ_EX")]
    assert PAYLOAD in s.calls[0].args and "shell" in s.calls[0].args


def test_python2_names_are_mapped_like_find_class() -> None:
    s = first(b"c__builtin__\neval\n(S'1'\ntR.")
    assert s.imports[0].qualname == "builtins.eval" and calls_of(s) == ["builtins.eval"]


def test_payload_before_unknown_opcode_is_still_reported() -> None:
    s = first(b"\x80\x04" + system_call() + b"\xfe garbage")
    assert calls_of(s) == ["os.system"]
    assert [a.kind for a in s.anomalies] == ["unknown_opcode"] and not s.complete


def test_payload_before_truncated_binunicode_is_still_reported() -> None:
    s = first(b"\x80\x04" + system_call() + b"X\xff\xff\x00\x00abc")
    assert calls_of(s) == ["os.system"]
    assert [a.kind for a in s.anomalies] == ["truncated"]


def test_getattr_of_imported_module_resolves_to_the_attribute() -> None:
    imp = call1(sg("builtins", "__import__"), u("os"))
    getattr_os_system = sg("builtins", "getattr") + imp + u("system") + b"\x86R"
    s = first(stream(call1(getattr_os_system, u(PAYLOAD))))
    assert calls_of(s) == ["builtins.__import__", "builtins.getattr", "os.system"]
    assert "os.system" in [i.qualname for i in s.imports]


def test_attrgetter_chain_resolves_to_the_attribute() -> None:
    getter = call1(sg("_operator", "attrgetter"), u("system"))
    module = call1(sg("builtins", "__import__"), u("os"))
    s = first(stream(call1(call1(getter, module), u(PAYLOAD))))
    assert calls_of(s)[-1] == "os.system" and PAYLOAD in s.calls[-1].args


def test_methodcaller_records_the_method_call() -> None:
    caller = sg("_operator", "methodcaller") + u("system") + u(PAYLOAD) + b"\x86R"
    module = call1(sg("importlib", "import_module"), u("os"))
    s = first(stream(call1(caller, module)))
    assert "os.system" in calls_of(s)
    assert PAYLOAD in next(c.args for c in s.calls if c.callable == "os.system")


def test_partial_call_records_the_wrapped_callable() -> None:
    part = sg("functools", "partial") + sg("os", "system") + u(PAYLOAD) + b"\x86R"
    s = first(stream(part + b")R"))
    assert calls_of(s) == ["functools.partial", "os.system"]


def test_sys_modules_getitem_resolves_the_module() -> None:
    mod = sg("_operator", "getitem") + sg("sys", "modules") + u("os") + b"\x86R"
    getter = sg("builtins", "getattr") + mod + u("system") + b"\x86R"
    s = first(stream(call1(getter, u(PAYLOAD))))
    assert calls_of(s)[-1] == "os.system"


def test_module_attribute_overwritten_by_build_is_followed() -> None:
    body = (
        u("torch._utils")
        + b"\x94"
        + u("_rebuild_tensor")
        + b"\x94"
        + b"\x93\x94"
        + b"0"
        + u("torch")
        + u("_utils")
        + b"\x93\x94"
        + b"0"
        + b"h\x03}h\x01"
        + u("builtins")
        + b"sb0"
        + b"h\x00h\x01\x93"
        + b"h\x03}h\x01"
        + u("eval")
        + b"sb0"
        + b"h\x00h\x01\x93"
        + b"\x93"
        + u("print(1)")
        + b"\x85R"
    )
    s = first(stream(body))
    assert calls_of(s)[-1] == "builtins.eval"
    assert "builtins.eval" in [i.qualname for i in s.imports]


def test_nested_base64_pickle_is_read_as_a_nested_stream() -> None:
    inner = stream(system_call())
    encoded = base64.b64encode(inner).decode()
    outer = stream(call1(sg("pickle", "loads"), call1(sg("base64", "b64decode"), u(encoded))))
    streams = read_streams(outer, "t").streams
    assert [s.location for s in streams] == ["t#0", "t#0>nested1"]
    assert streams[1].nested_depth == 1 and calls_of(streams[1]) == ["os.system"]
    assert [a.kind for a in streams[0].anomalies] == ["nested_pickle"]


def test_nested_pickle_from_latin1_encoded_text_and_unpickler_load() -> None:
    inner = stream(system_call()).decode("latin-1")
    protocol2_bytes = g("_codecs", "encode") + b"(" + u(inner) + u("latin1") + b"tR"
    bytesio = call1(sg("io", "BytesIO"), protocol2_bytes)
    unpickler = call1(sg("pickle", "Unpickler"), bytesio)
    load = sg("builtins", "getattr") + unpickler + u("load") + b"\x86R"
    streams = read_streams(stream(load + b")R"), "t").streams
    assert len(streams) == 2 and calls_of(streams[1]) == ["os.system"]


def test_nested_pickle_result_flows_back_to_the_outer_stream() -> None:
    inner = stream(sg("os", "system"))  # the nested pickle returns the function itself
    outer = stream(call1(call1(sg("_pickle", "loads"), b(inner)), u(PAYLOAD)))
    outer_stream = read_streams(outer, "t").streams[0]
    assert calls_of(outer_stream)[-1] == "os.system"


def test_nested_pickle_depth_is_limited() -> None:
    data = stream(system_call())
    for _ in range(5):
        data = stream(call1(sg("pickle", "loads"), b(data)))
    read = read_streams(data, "t", Limits(max_nested_pickle_depth=2))
    assert max(s.nested_depth for s in read.streams) == 2
    assert any(a.kind == "limit_depth" for s in read.streams for a in s.anomalies)


def test_stack_underflow_mark_missing_and_memo_missing_are_anomalies_and_reading_goes_on() -> None:
    body = b"0" + b"t" + b"h\x07" + b"0" + system_call()
    s = first(stream(body))
    kinds = [a.kind for a in s.anomalies]
    assert kinds == ["stack_underflow", "mark_missing", "memo_missing"]
    assert calls_of(s) == ["os.system"] and s.complete


def test_unresolved_stack_global_is_recorded() -> None:
    s = first(stream(b"K\x01K\x02\x93N\x85R"))
    assert [a.kind for a in s.anomalies] == ["unresolved_global"]
    assert s.imports[0].module == "?" and s.calls[0].callable == "?"


def test_string_literals_are_capped_and_counted_exactly() -> None:
    body = b"(" + b"".join(u(f"s{i}" * 50) for i in range(30)) + b"l"
    s = first(stream(body), Limits(max_string_literals=10, max_string_chars=20))
    assert s.n_strings == 30 and len(s.strings) == 10 and all(len(x) == 20 for x in s.strings)


def test_call_arguments_are_truncated() -> None:
    s = first(stream(system_call("x" * 1000)))
    assert len(s.calls[0].args) < 200


def test_stack_depth_and_container_nesting_are_measured() -> None:
    body = b"(" * 5 + b"K\x01" * 7 + b"l" * 5
    s = first(stream(body))
    # MARKs live on their own stack, as in _pickle.c: the object stack peaks at the 7 ints
    assert s.max_stack_depth == 7 and s.max_container_nesting == 5


def test_stack_limit_falls_back_to_plain_reading() -> None:
    body = b"(" + b"K\x01" * 3000 + g("os", "system") + b"l"
    s = first(b"\x80\x02" + body + b".", Limits(max_stack_depth=100))
    assert "limit_stack" in [a.kind for a in s.anomalies]
    assert "os.system" in [i.qualname for i in s.imports] and s.complete
