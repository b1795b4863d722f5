"""Payload-argument grammar: determinism, coverage, syntax, inertness, encodings, splits, benign counterparts."""

from __future__ import annotations

import ipaddress
import random
import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safepickle_bench.craft.payload_args import (
    BENIGN_MENTION_KINDS,
    ArgKind,
    Behaviour,
    Encoding,
    decode_payload,
    encode_text,
    generate_benign_mentions,
    generate_payload_args,
    make_payload_arg,
    split_payload,
)

TEMP = "/tmp/spb-args-test"
URL = re.compile(r"https?://(\[[^\]]+\]|[^/:'\"\s]+)")
NC_OR_TCP = re.compile(r"(?:nc(?: -z)? -w1 |/dev/tcp/)(\S+?)[ /](\d+)")
PY_PEER = re.compile(r"\(\('([^']+)', (\d+)\)")
HARMFUL = re.compile(
    r"(^|[\s;&|(])(rm|mkfs|dd|shutdown|crontab|kill|sudo)\s"  # destructive or system-changing commands
    r"|\bsh -i\b|\bbash -i\b|/bin/sh'\]|pty\.spawn\('/bin"  # an interactive shell handed to a peer
    r"|~/\.(bashrc|profile)|\$HOME/|/etc/(?!os-release)"  # writes outside the temp dir
)


@pytest.fixture(scope="module")
def args():
    return generate_payload_args(0, 600, TEMP)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def test_same_seed_same_arguments_different_seed_different():
    assert generate_payload_args(5, 50, TEMP) == generate_payload_args(5, 50, TEMP)
    assert generate_payload_args(5, 50, TEMP) != generate_payload_args(6, 50, TEMP)
    assert generate_benign_mentions(5, 30) == generate_benign_mentions(5, 30)
    assert generate_benign_mentions(5, 30) != generate_benign_mentions(6, 30)


def test_every_kind_behaviour_and_encoding_is_covered_and_texts_vary(args):
    assert {(a.kind, a.behaviour) for a in args} == {(k, b) for k in ArgKind for b in Behaviour}
    assert {a.encoding for a in args} == set(Encoding)
    assert any(len(a.pieces) > 1 for a in args) and any(len(a.pieces) == 1 for a in args)
    assert len({a.text for a in args}) > 0.95 * len(args)  # a bare `id` or `whoami` may repeat
    shell = [a.text for a in args if a.kind == ArgKind.SHELL]
    for construct in (" | ", " && ", ";", "\n", "( ", " -c ", "$", ">", "python"):
        assert any(construct in t for t in shell), construct
    python = [a.text for a in args if a.kind == ArgKind.PYTHON]
    for construct in ("__import__(", "importlib", "getattr(", "' + '", "\n", "try:", "def ", "exec("):
        assert any(construct in t for t in python), construct


def test_python_arguments_compile(args):
    python = [a.text for a in args if a.kind == ArgKind.PYTHON]
    assert python, "the sample holds no Python argument"
    for text in python:
        compile(text, "<generated>", "exec")  # compiled only, never run


def test_shell_arguments_parse_in_sh_and_bash(args):
    shell = [a.text for a in args if a.kind == ArgKind.SHELL]
    script = "\n".join(f"f{i}() {{\n{t}\n}}" for i, t in enumerate(shell))
    for sh in ("dash", "bash"):  # -n: parse only, nothing runs
        result = subprocess.run([sh, "-n"], input=script, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (sh, result.stderr[:500])
    broken = subprocess.run(["dash", "-n"], input=script + "\nf() { echo 'x\n}", capture_output=True, text=True)
    assert broken.returncode != 0  # the parse check can fail


WRITES = re.compile(r">>? ?([^\s;)'\"]+)|open\('([^']+)', '[wa]b?'\)|(?:-o|-O|tee) ([^\s;]+)|Path\('([^']+)'\)")
WRITE_OK = (TEMP, "$", "&", "/dev/null", "/dev/tcp/")


def test_arguments_are_inert_by_construction(args):
    n_peers = n_writes = 0
    for a in args:
        text = a.text
        assert not HARMFUL.search(text), (HARMFUL.search(text), text)
        hosts = [m.group(1) for m in URL.finditer(text)]
        hosts += [m.group(1) for m in NC_OR_TCP.finditer(text)] + [m.group(1) for m in PY_PEER.finditer(text)]
        for host in hosts:
            assert _is_loopback(host), (host, text)
        n_peers += len(hosts)
        for match in WRITES.finditer(text):
            path = next(g for g in match.groups() if g is not None)
            assert path.startswith(WRITE_OK) or path.isdigit() or path == "-", (path, text)
            n_writes += 1
        if a.behaviour in (Behaviour.DOWNLOAD_RUN,) and a.kind == ArgKind.SHELL and "base64" not in text:
            assert "sh -n" in text or "bash -n" in text or "compile(" in text, text
    assert n_peers > 50 and n_writes > 200  # the checks above did look at peers and written paths


def test_encodings_round_trip_through_split_join_and_decode_expressions(args):
    for a in args:
        rebuilt = eval(a.rebuild_expression(), {"__builtins__": {"reversed": reversed}})  # literals and joins only
        assert rebuilt == a.payload
        assert type(rebuilt) is type(a.payload)
        decoded = decode_payload(a.payload, a.encoding)
        via_expr = eval(a.decode, {}, {"data": a.payload})  # decoders only: a code object is never run
        if a.encoding == Encoding.MARSHAL:
            expected = compile(a.text, decoded.co_filename, "exec")
            assert decoded.co_code == expected.co_code and via_expr.co_code == expected.co_code
        else:
            assert decoded == a.text == via_expr
        assert a.loader_source().startswith("exec(" if a.kind == ArgKind.PYTHON else "__import__('os').system(")
        compile(a.loader_source(), "<loader>", "exec")
        if a.encoding != Encoding.PLAIN:
            assert a.payload != a.text


def test_marshal_is_refused_for_shell_commands():
    with pytest.raises(ValueError, match="marshal"):
        make_payload_arg(random.Random(0), TEMP, kind=ArgKind.SHELL, encoding=Encoding.MARSHAL)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200), st.integers(1, 12), st.integers(0, 2**32),
       st.sampled_from([e for e in Encoding if e != Encoding.MARSHAL]))
def test_split_and_encode_round_trip_for_any_text(text, n_pieces, seed, encoding):
    payload = encode_text(text, encoding)
    pieces, join = split_payload(random.Random(seed), payload, n_pieces)
    assert all(len(p) > 0 for p in pieces) and len(pieces) <= n_pieces
    assert eval(join, {"__builtins__": {"reversed": reversed}}, {f"p{i}": p for i, p in enumerate(pieces)}) == payload
    assert decode_payload(payload, encoding) == text


def test_benign_mentions_carry_the_same_tokens_as_payloads():
    mentions = generate_benign_mentions(0, 600)
    assert {m.kind for m in mentions} == set(BENIGN_MENTION_KINDS)
    joined = " ".join(m.text for m in mentions)
    for token in ("exec", "system", "os", "eval", "shell", "curl", "subprocess", "127.0.0.1", "/tmp", "&&"):
        assert token in joined, token
    assert len({m.text for m in mentions}) > 200
