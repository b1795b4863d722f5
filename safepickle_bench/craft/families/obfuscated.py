"""Family `obfuscated`: encrypted blobs handed to a generated loader, and encoded-source chains run at load time.

Two shapes. `blob_loader`: a high-entropy blob with a generated header (`obfuscation`) passed to a generated
gadget whose wrapper decrypts it with the format's `decoder_source` and `exec`s the code inside.
`encoded_chain`: inert Python source (`payload_args`) encoded with base64, zlib+base64, hex, rot13 or
marshal, cut into pieces that the pickle joins at load time (`''.join([...])`, `operator.concat`), decoded
by stdlib calls and ending in `exec`, `eval` or a generated gadget that runs code.
"""

from __future__ import annotations

import math

from safepickle_bench.craft.families.common import FamilyContext, FamilyPayload, arg_node, assemble, draw_name
from safepickle_bench.craft.families.routes import Reached, Route, gadget_routes, reach_gadget
from safepickle_bench.craft.gadget_names import GadgetKind
from safepickle_bench.craft.gadget_package import Action, GadgetSpec, Trigger
from safepickle_bench.craft.obfuscation import BlobFormat, generate_format, make_obfuscated_blob
from safepickle_bench.craft.payload_args import (
    ArgKind,
    Encoding,
    encode_text,
    make_payload_arg,
    split_payload,
)
from safepickle_bench.craft.payloads import Call, Glob, Lst, Node, attr

FAMILY = "obfuscated"
SHAPES: tuple[str, ...] = ("blob_loader", "encoded_chain")
CHAIN_ENCODINGS: tuple[Encoding, ...] = (
    Encoding.BASE64, Encoding.ZLIB_BASE64, Encoding.HEX, Encoding.ROT13, Encoding.MARSHAL, Encoding.PLAIN,
)
SINKS: tuple[str, ...] = ("exec", "eval", "gadget")
_CODE_EVENTS = frozenset({"compile", "exec"})


def _joined(pieces: tuple[str | bytes, ...], ctx: FamilyContext) -> Node:
    """Return a node that joins the pieces at load time (the piece itself when there is one)."""
    if len(pieces) == 1:
        return pieces[0]
    if len(pieces) == 2 and ctx.rng.random() < 0.4:
        return Call(Glob("operator", ctx.rng.choice(("concat", "add"))), pieces)
    empty: str | bytes = b"" if isinstance(pieces[0], bytes) else ""
    return Call(attr(empty, "join"), (Lst(pieces),))


def _decoded(data: Node, encoding: Encoding, ctx: FamilyContext) -> Node:
    """Return a node decoding `data` (as `encode_text` encoded it) into source bytes/text or a code object."""
    rng = ctx.rng
    if encoding == Encoding.PLAIN:
        return data
    if encoding == Encoding.BASE64:
        return Call(Glob("base64", rng.choice(("b64decode", "standard_b64decode"))), (data,))
    if encoding == Encoding.ZLIB_BASE64:
        return Call(Glob("zlib", "decompress"), (Call(Glob("base64", "b64decode"), (data,)),))
    if encoding == Encoding.HEX:
        fn = rng.choice((Glob("binascii", "unhexlify"), Glob("binascii", "a2b_hex"), Glob("builtins", "bytes.fromhex")))
        return Call(fn, (data,))
    if encoding == Encoding.ROT13:
        return Call(Glob("codecs", "decode"), (data, rng.choice(("rot13", "rot_13"))))
    return Call(Glob("marshal", "loads"), (data,))


def _gadget(ctx: FamilyContext, action: Action, blob_format: BlobFormat | None = None) -> GadgetSpec:
    """Return a generated function or method gadget performing `action`."""
    name = draw_name(ctx, (GadgetKind.FUNCTION, GadgetKind.METHOD) if blob_format is None else (GadgetKind.FUNCTION,))
    return GadgetSpec(name, action, Trigger.CALL, blob_format)


def _blob_loader(ctx: FamilyContext, protocol: int, variant: int, route: Route | None) -> FamilyPayload:
    """Return an encrypted inert snippet handed to a generated loader gadget."""
    rng = ctx.rng
    fmt = generate_format(rng)
    spec = _gadget(ctx, Action.LOAD_BLOB, fmt)
    size = int(math.exp(rng.uniform(math.log(128), math.log(8192))))
    blob = make_obfuscated_blob(rng, fmt, ctx.temp_dir, target_size=size)
    chosen = route or rng.choice(gadget_routes(spec, protocol))
    reached = reach_gadget(spec, arg_node(blob.data), chosen, protocol, rng)
    armor = fmt.armor or "raw"
    description = f"{len(blob.data)}-byte {armor} blob ({blob.payload}) to loader {spec.name.qualname} via {chosen}"
    payload = assemble(FAMILY, reached, protocol, variant, description, (spec.name.qualname,), _CODE_EVENTS)
    return FamilyPayload(FAMILY, payload, chosen, _CODE_EVENTS, spec.name.qualname, [spec], [],
                         f"blob_loader:{armor}:{blob.payload}")


def _encoded_chain(ctx: FamilyContext, protocol: int, variant: int, route: Route | None,
                   encoding: Encoding | None, sink: str | None) -> FamilyPayload:
    """Return encoded, split inert source joined and decoded at load time, then run by exec/eval/a gadget."""
    rng = ctx.rng
    encoding = encoding or rng.choice(CHAIN_ENCODINGS)
    sink = sink or rng.choice(SINKS)
    source = make_payload_arg(rng, ctx.temp_dir, kind=ArgKind.PYTHON).text
    if sink == "eval" and encoding != Encoding.MARSHAL:
        source = f"exec({source!r})"  # eval takes an expression; a marshalled code object runs as it is
    encoded = encode_text(source, encoding, filename=rng.choice(("<string>", "<cfg>", "")))
    pieces, _ = split_payload(rng, encoded, 1 if rng.random() < 0.35 else rng.randint(2, 5))
    code = _decoded(_joined(pieces, ctx), encoding, ctx)
    chain = f"{encoding}:{len(pieces)}:{sink}"
    if sink == "gadget":
        spec = _gadget(ctx, Action.EXEC_CODE)
        chosen = route or rng.choice(gadget_routes(spec, protocol))
        reached = reach_gadget(spec, code, chosen, protocol, rng)
        payload = assemble(FAMILY, reached, protocol, variant, f"{chain} to gadget {spec.name.qualname} via {chosen}",
                           (spec.name.qualname,), _CODE_EVENTS)
        return FamilyPayload(FAMILY, payload, chosen, _CODE_EVENTS, spec.name.qualname, [spec], [],
                             f"encoded_chain:{chain}")
    chosen = route if route in (Route.GLOBAL, Route.STACK_GLOBAL, Route.MEMO) else rng.choice(
        (Route.GLOBAL, Route.MEMO, Route.STACK_GLOBAL) if protocol >= 4 else (Route.GLOBAL, Route.MEMO))
    expr = Call(Glob("builtins", sink), (code,))
    reached = Reached(expr, chosen, stack_global=chosen != Route.GLOBAL, memo=chosen == Route.MEMO)
    payload = assemble(FAMILY, reached, protocol, variant, f"{chain} via {chosen}", (f"builtins.{sink}",),
                       _CODE_EVENTS)
    return FamilyPayload(FAMILY, payload, chosen, _CODE_EVENTS, "", [], [], f"encoded_chain:{chain}")


def build_obfuscated(ctx: FamilyContext, protocol: int, variant: int = 0, route: Route | None = None,
                     shape: str | None = None, encoding: Encoding | None = None,
                     sink: str | None = None) -> FamilyPayload:
    """Return an obfuscated-code payload: a blob to a generated loader, or an encoded-source chain."""
    shape = shape or ctx.rng.choice(SHAPES)
    if shape == "blob_loader":
        return _blob_loader(ctx, protocol, variant, route)
    if shape == "encoded_chain":
        return _encoded_chain(ctx, protocol, variant, route, encoding, sink)
    raise ValueError(f"unknown obfuscated shape {shape!r}; known: {SHAPES}")
