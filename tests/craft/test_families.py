"""Generalisation families: seeded, namespaced names, every route renders at every protocol it applies to."""

from __future__ import annotations

import io
import pickletools
import random

import pytest

from safepickle_bench.craft.families import (
    GENERALIZATION_FAMILIES,
    FamilyContext,
    Route,
    build_family_payload,
)
from safepickle_bench.craft.families.carriers import make_carrier
from safepickle_bench.craft.families.common import NEST_ENCODINGS, nest
from safepickle_bench.craft.families.reexport import TARGET_EVENTS
from safepickle_bench.craft.families.routes import gadget_routes, reexport_routes
from safepickle_bench.craft.families.samples import write_sample
from safepickle_bench.craft.gadget_names import DANGEROUS_STDLIB_TARGETS, namespace_of


def _ctx(tag: str, namespace: str | None = "train") -> FamilyContext:
    return FamilyContext(random.Random(tag), "/tmp/spb-markers", namespace, tag)


def _ops(stream: bytes) -> list[str]:
    return [op.name for op, _, _ in pickletools.genops(io.BytesIO(stream))]


def test_reexport_events_cover_every_stdlib_target():
    assert set(TARGET_EVENTS) == {t.qualname for t in DANGEROUS_STDLIB_TARGETS}


@pytest.mark.parametrize("family", GENERALIZATION_FAMILIES)
def test_same_context_gives_the_same_bytes_and_names(family):
    for protocol in range(6):
        a = build_family_payload(family, _ctx(f"{family}{protocol}"), protocol)
        b = build_family_payload(family, _ctx(f"{family}{protocol}"), protocol)
        assert a.payload.stream() == b.payload.stream() and a.gadget == b.gadget
        _ops(a.payload.stream())  # a well-formed stream (static walk only)


def test_names_come_from_the_context_namespace_and_train_and_test_never_share_one():
    seen: dict[str, set[str]] = {"train": set(), "test": set()}
    for namespace in seen:
        for i in range(40):
            fp = build_family_payload(GENERALIZATION_FAMILIES[i % 4], _ctx(f"ns{i}", namespace), 4)
            for spec in fp.gadgets:
                parts = [spec.name.package, *spec.name.attr_path.split(".")]
                assert {namespace_of(p) for p in parts} == {namespace}
                seen[namespace].add(spec.name.qualname)
            for path in fp.reexports:
                assert namespace_of(path.package) == namespace
                seen[namespace].add(path.host_module)
    assert seen["train"] and seen["test"] and not seen["train"] & seen["test"]


@pytest.mark.parametrize("protocol", range(6))
def test_every_gadget_route_renders_with_its_opcodes(protocol):
    expected = {Route.STACK_GLOBAL: "STACK_GLOBAL", Route.INST: "INST", Route.BUILD: "BUILD",
                Route.NEWOBJ: "NEWOBJ" if protocol >= 2 else "REDUCE", Route.OBJ: "OBJ" if protocol >= 1 else "INST",
                Route.MEMO: "BINGET" if protocol >= 1 else "GET"}
    probe = build_family_payload("unknown_gadget", _ctx("probe"), protocol)
    routes = set(gadget_routes(probe.gadgets[0], protocol))
    for route in (Route.GLOBAL, Route.MEMO, Route.INST, Route.OBJ, Route.NEWOBJ, Route.BUILD,
                  Route.GETATTR_INSTANCE, Route.DOTTED, *((Route.STACK_GLOBAL,) if protocol >= 4 else ())):
        fp = build_family_payload("unknown_gadget", _ctx(f"r{route}{protocol}"), protocol, route=route)
        assert fp.route == route
        ops = _ops(fp.payload.stream())
        if route in expected:
            assert expected[route] in ops, (route, ops)
        assert fp.payload.memo == (route == Route.MEMO)
    assert routes


@pytest.mark.parametrize("protocol", range(6))
def test_every_reexport_route_names_the_host_module(protocol):
    for route in reexport_routes(protocol):
        fp = build_family_payload("reexport", _ctx(f"x{route}{protocol}"), protocol, route=route)
        host = fp.reexports[0].host_module
        assert host.encode() in fp.payload.stream() and fp.gadget.startswith(host)


def test_memo_payloads_only_go_into_a_fresh_stream(tmp_path):
    fp = build_family_payload("unknown_gadget", _ctx("memo"), 2, route=Route.MEMO)
    carrier = make_carrier("pickle_p2", 0)
    with pytest.raises(ValueError, match="memo"):
        write_sample(tmp_path / "a", fp, "train", random.Random(0), carrier, "prepend")
    sample = write_sample(tmp_path / "b", fp, "train", random.Random(0), carrier, "second_stream")
    assert sample.loader == "pickle_multi" and sample.has_sidecar
    assert (tmp_path / "b" / "pkgs").is_dir() and (tmp_path / "b" / "model.pkl.syspath.json").is_file()


def test_nesting_wraps_the_inner_stream_and_keeps_the_events():
    fp = build_family_payload("obfuscated", _ctx("nest"), 2)
    for encoding in NEST_ENCODINGS:
        outer = nest(fp, 4, encoding)
        assert outer.events == fp.events and outer.gadget == fp.gadget
        assert any(i.endswith(".loads") for i in outer.payload.imports)
