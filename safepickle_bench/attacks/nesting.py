"""Nesting: the payload moves into a pickle inside the pickle (`pickle.loads` of embedded bytes, raw or
base64), or into a second pickle stream of the same file."""

from __future__ import annotations

import base64
import random

from safepickle_bench.attacks.target import AttackedPayload, AttackNotApplicable, MaliciousSample, attacked
from safepickle_bench.craft.injection import detect_container
from safepickle_bench.craft.payloads import Call, Dct, Glob, Payload, render, wrap_stream

ENCODINGS: tuple[str, ...] = ("raw", "base64")


def nested_pickle(payload: Payload, rng: random.Random, encoding: str = "raw") -> AttackedPayload:
    """Return a payload that calls `pickle.loads` (or `_pickle.loads`) on the original payload's stream."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; known: {ENCODINGS}")
    inner = payload.stream()
    loads = Glob("_pickle", "loads") if rng.random() < 0.5 else Glob("pickle", "loads")
    arg = inner if encoding == "raw" else Call(Glob("base64", "b64decode"), (base64.b64encode(inner).decode(),))
    expr = Call(loads, (arg,))

    def renderer(protocol: int) -> bytes:
        return render(expr, protocol)

    imports = (loads.qualname, *(("base64.b64decode",) if encoding == "base64" else ()))
    out = attacked(payload, renderer, description=f"{loads.qualname}({encoding} stream of: {payload.description})",
                   imports=imports, callables=(loads.qualname,))
    out.expr = expr
    return out


def second_stream(sample: MaliciousSample, payload: Payload, rng: random.Random) -> tuple[bytes, str, str]:
    """Return (file bytes, loader, how) with the payload in a second pickle stream of the file.

    Stand-alone: a benign config pickle, then the payload stream (read by a multi-stream loader). Raw pickle
    carrier: the payload stream after the carrier's STOP. Legacy torch: the storage-keys pickle torch reads
    next. Torch zip: the payload stream prepended to the archive (torch.load sees no zip magic, unpickles it).
    Joblib and numpy read exactly one stream: not applicable.
    """
    if sample.carrier is None:
        config = Dct((("epoch", rng.randrange(1, 50)), ("lr", "0.001"), ("optimizer", "adamw")))
        benign = wrap_stream(render(config, payload.protocol), payload.protocol)
        return benign + payload.stream(), "pickle_multi", "benign stream + payload stream"
    container = detect_container(sample.carrier)
    if sample.loader in ("pickle", "pickle_multi") and container == "pickle":
        return sample.build(payload, "second_stream", rng), "pickle_multi", "second stream after the carrier's STOP"
    if sample.loader == "torch" and container == "torch_legacy":
        return sample.build(payload, "second_stream", rng), "torch", "payload in the legacy storage-keys stream"
    if sample.loader == "torch" and container == "torch_zip":
        return payload.stream(2) + sample.carrier, "torch", "payload stream prepended to a torch zip"
    raise AttackNotApplicable(f"{container} read by {sample.loader}: the loader reads a single pickle stream")
