"""Per-call details the engine keeps outside the JSON: how the callee was reached, the argument values, whether
the result is kept, whether the call ran before any data object, and the decoding layers behind an argument."""

from __future__ import annotations

import base64
import zlib

import pytest

from safepickle_bench.analysis import analyze_bytes
from safepickle_bench.analysis.call_sites import call_sites
from safepickle_bench.analysis.values import ARG_KEEP_CHARS, Clipped
from safepickle_bench.craft.payloads import (
    Build,
    Call,
    Dct,
    Glob,
    Inst,
    NewObj,
    Obj,
    attr,
    render,
    wrap_stream,
)

GADGET = Glob("zephyrkit.runtime", "launch_job")
COMMAND = "echo SAFEPICKLE-test > /tmp/marker"


def _sites(data: bytes) -> list:
    analysis = analyze_bytes(data, "x.pkl")
    return [s for stream in analysis.streams for s in call_sites(stream)]


def _site(data: bytes, callable_: str):
    return next(s for s in _sites(data) if s.callable == callable_)


@pytest.mark.parametrize(
    ("node", "protocol", "kw", "reach", "opcode"),
    [
        (Call(GADGET, (COMMAND,)), 2, {}, "global", "REDUCE"),
        (Call(GADGET, (COMMAND,)), 4, {}, "stack_global", "REDUCE"),
        (Inst(GADGET, (COMMAND,)), 2, {}, "inst", "INST"),
        (Obj(GADGET, (COMMAND,)), 2, {}, "global", "OBJ"),
        (NewObj(GADGET, (COMMAND,)), 2, {}, "global", "NEWOBJ"),
        (Call(attr(Glob("zephyrkit", "runtime"), "launch_job"), (COMMAND,)), 2, {}, "getattr", "REDUCE"),
    ],
)
def test_each_site_says_how_its_callee_was_reached(node, protocol, kw, reach, opcode):
    site = _site(wrap_stream(render(node, protocol, **kw), protocol), GADGET.qualname)
    assert (site.reach, site.opcode, site.args) == (reach, opcode, (COMMAND,))
    assert not site.special


def test_a_callable_fetched_again_from_the_memo_is_reached_by_memo():
    body = b"czephyrkit.runtime\nlaunch_job\nq\x000h\x00X\x01\x00\x00\x00a\x85R0h\x00X\x01\x00\x00\x00b\x85R."
    sites = _sites(b"\x80\x02" + body)
    assert [s.reach for s in sites] == ["global", "memo"]


def test_a_method_of_a_rebuilt_instance_is_reached_by_instance_attribute():
    instance = NewObj(Glob("zephyrkit.tools", "ShellTool"), ())
    data = wrap_stream(render(Call(attr(instance, "run"), (COMMAND,)), 2), 2)
    site = _site(data, "zephyrkit.tools.ShellTool.run")
    assert site.reach == "instance_attr" and site.args == (COMMAND,)


def test_result_kept_at_stop_versus_thrown_away_before_the_data():
    payload = render(Call(GADGET, (COMMAND,)), 2)
    data = render(Dct((("w", 1),)), 2)
    kept = _site(b"\x80\x02" + payload + b".", GADGET.qualname)
    discarded = _site(b"\x80\x02" + payload + b"0" + data + b".", GADGET.qualname)
    stored = _site(b"\x80\x02" + render(Dct((("k", Call(GADGET, (COMMAND,))),)), 2) + b".", GADGET.qualname)
    assert kept.kept is True and stored.kept is True
    assert discarded.kept is False


def test_a_result_used_as_an_argument_is_kept():
    inner = Call(Glob("base64", "b64decode"), (base64.b64encode(COMMAND.encode()).decode(),))
    data = b"\x80\x02" + render(Call(GADGET, (inner,)), 2) + b"0" + render(Dct(()), 2) + b"."
    sites = {s.callable: s for s in _sites(data)}
    assert sites["base64.b64decode"].kept is True and sites["base64.b64decode"].special
    assert sites[GADGET.qualname].kept is False


def test_a_call_before_any_container_runs_before_data_one_after_does_not():
    payload = render(Call(GADGET, (COMMAND,)), 2)
    first = _site(b"\x80\x02" + payload + b"0" + render(Dct((("w", 1),)), 2) + b".", GADGET.qualname)
    later = _site(b"\x80\x02" + render(Dct((("w", Call(GADGET, (COMMAND,))),)), 2) + b".", GADGET.qualname)
    assert first.before_data and not later.before_data


def test_decoding_layers_behind_an_argument_are_counted():
    blob = base64.b64encode(zlib.compress(COMMAND.encode())).decode()
    decoded = Call(Glob("zlib", "decompress"), (Call(Glob("base64", "b64decode"), (blob,)),))
    site = _site(wrap_stream(render(Call(GADGET, (decoded,)), 2), 2), GADGET.qualname)
    assert site.decode_layers == 2 and site.args == (COMMAND.encode(),)
    plain = _site(wrap_stream(render(Call(GADGET, (COMMAND,)), 2), 2), GADGET.qualname)
    assert plain.decode_layers == 0


def test_build_state_is_the_argument_of_a_build_site():
    node = Build(NewObj(Glob("lumenlab.models", "Record"), ()), Dct((("size", 3),)))
    sites = _sites(wrap_stream(render(node, 2), 2))
    build = next(s for s in sites if s.opcode == "BUILD")
    assert build.callable == "lumenlab.models.Record" and build.reach == "build" and build.args == ({"size": 3},)


def test_big_arguments_are_clipped_and_the_result_verdict_survives():
    big = "A" * (1 << 17)
    data = b"\x80\x02" + render(Call(GADGET, (big,)), 2) + b"0" + render(Dct(()), 2) + b"."
    site = _site(data, GADGET.qualname)
    (arg,) = site.args
    assert type(arg) is Clipped and arg.size == len(big) and len(arg.head) == ARG_KEEP_CHARS
    assert site.kept is False


def test_call_details_stay_out_of_the_json():
    data = wrap_stream(render(Call(GADGET, (COMMAND,)), 2), 2)
    text = analyze_bytes(data, "x.pkl").to_json()
    assert '"context"' not in text and "launch_job" in text


def test_an_incomplete_stream_leaves_the_result_unknown():
    data = b"\x80\x02" + render(Call(GADGET, (COMMAND,)), 2)  # no STOP
    assert _site(data, GADGET.qualname).kept is None
