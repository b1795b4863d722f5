"""The label oracle's throwaway gadget package: each generated gadget as a thin wrapper around its inert action.

`write_gadget_package` writes a Python package tree (one directory with `__init__.py` per dotted module)
in which every generated gadget name resolves, and calling it (or constructing, rebuilding or restoring an
instance of it, depending on its `Trigger`) performs the real stdlib call its `Action` stands for:
`os.system`, `subprocess.Popen`, `exec`, `eval`, decrypt-then-`exec`, `socket.create_connection`, or
`open(..., "w")`. Re-export host modules `import` the stdlib module so `pkg.mod.os.system` resolves.

Loading a sample that reaches such a wrapper makes the real unpickler raise the action's audit event
(`ACTION_EVENTS`), which the oracle's audit hook records and blocks before it happens; the arguments are
inert anyway (`inert_argument`). The package is written only for the oracle's sandbox, never imported by
the analyzer.
"""

from __future__ import annotations

import marshal
import random
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from safepickle_bench.craft.gadget_names import GadgetKind, GadgetName, ReexportPath
from safepickle_bench.craft.obfuscation import BlobFormat, generate_format, make_obfuscated_blob
from safepickle_bench.craft.payload_args import ArgKind, make_payload_arg


class Action(StrEnum):
    """The inert action a generated gadget stands for."""

    RUN_SHELL = "run_shell"
    """`os.system(command)`."""
    SPAWN = "spawn"
    """`subprocess.Popen(command)`."""
    EXEC_CODE = "exec_code"
    """`exec(source_or_code)`."""
    EVAL_CODE = "eval_code"
    """`eval(expression)`."""
    LOAD_BLOB = "load_blob"
    """Decrypt an obfuscated blob, then `exec` the code inside."""
    OPEN_SOCKET = "open_socket"
    """`socket.create_connection((host, port))` to a loopback peer."""
    WRITE_FILE = "write_file"
    """`open(path, "w")` under a temp dir."""


ACTION_EVENTS: dict[Action, frozenset[str]] = {
    Action.RUN_SHELL: frozenset({"os.system"}),
    Action.SPAWN: frozenset({"subprocess.Popen"}),
    Action.EXEC_CODE: frozenset({"compile", "exec"}),
    Action.EVAL_CODE: frozenset({"compile", "exec"}),
    Action.LOAD_BLOB: frozenset({"compile", "exec"}),
    Action.OPEN_SOCKET: frozenset({"socket.getaddrinfo", "socket.connect"}),
    Action.WRITE_FILE: frozenset({"open:w"}),
}
"""The oracle's dangerous-event labels (see `sandbox.audit`) that the first step of each action raises."""


class Trigger(StrEnum):
    """How loading a sample makes a gadget act."""

    CALL = "call"
    """A function or method called with the argument (REDUCE on it, or on getattr of a rebuilt instance)."""
    INIT = "init"
    """A class constructed with the argument: `cls(arg)` (REDUCE, INST, OBJ)."""
    NEW = "new"
    """A class instantiated through `cls.__new__(cls, arg)` (NEWOBJ, NEWOBJ_EX)."""
    SETSTATE = "setstate"
    """An instance whose state is restored: `inst.__setstate__(arg)` (BUILD)."""


_TRIGGERS_BY_KIND: dict[GadgetKind, tuple[Trigger, ...]] = {
    GadgetKind.FUNCTION: (Trigger.CALL,),
    GadgetKind.METHOD: (Trigger.CALL,),
    GadgetKind.CLASS: (Trigger.INIT, Trigger.NEW, Trigger.SETSTATE),
}


@dataclass(frozen=True)
class GadgetSpec:
    """A generated gadget name, the inert action it stands for and how loading reaches it."""

    name: GadgetName
    action: Action
    trigger: Trigger = Trigger.CALL
    blob_format: BlobFormat | None = None
    """For LOAD_BLOB: the obfuscation format the wrapper decrypts (None: the argument is marshalled code)."""

    def __post_init__(self) -> None:
        if self.trigger not in _TRIGGERS_BY_KIND[self.name.kind]:
            raise ValueError(f"trigger {self.trigger} does not apply to a {self.name.kind} gadget")
        if self.blob_format is not None and self.action != Action.LOAD_BLOB:
            raise ValueError("only LOAD_BLOB gadgets take a blob format")

    @property
    def expected_events(self) -> frozenset[str]:
        """Return the audit labels the oracle may record first when this gadget acts."""
        return ACTION_EVENTS[self.action]


def assign_gadgets(
    names: Sequence[GadgetName], seed: int | str, *, actions: Sequence[Action] = tuple(Action)
) -> list[GadgetSpec]:
    """Return one spec per name with a seeded action, trigger and (for LOAD_BLOB) obfuscation format."""
    rng = random.Random(f"gadget-specs|{seed}")
    formats = [generate_format(rng) for _ in range(4)]
    out = []
    for i, name in enumerate(names):
        action = actions[i % len(actions)] if rng.random() < 0.5 else rng.choice(actions)
        trigger = rng.choice(_TRIGGERS_BY_KIND[name.kind])
        fmt = rng.choice(formats) if action == Action.LOAD_BLOB and rng.random() < 0.8 else None
        out.append(GadgetSpec(name, action, trigger, fmt))
    return out


def inert_argument(spec: GadgetSpec, temp_dir: str, rng: random.Random) -> object:
    """Return an inert argument that makes `spec`'s wrapper act (a command, code, blob, peer or path)."""
    if spec.action in (Action.RUN_SHELL, Action.SPAWN):
        return make_payload_arg(rng, temp_dir, kind=ArgKind.SHELL).text
    if spec.action == Action.EXEC_CODE:
        return make_payload_arg(rng, temp_dir, kind=ArgKind.PYTHON).text
    if spec.action == Action.EVAL_CODE:
        return f"exec({make_payload_arg(rng, temp_dir, kind=ArgKind.PYTHON).text!r})"
    if spec.action == Action.LOAD_BLOB:
        if spec.blob_format is None:
            return marshal.dumps(compile(make_payload_arg(rng, temp_dir, kind=ArgKind.PYTHON).text, "<blob>", "exec"))
        return make_obfuscated_blob(rng, spec.blob_format, temp_dir, target_size=256).data
    if spec.action == Action.OPEN_SOCKET:
        return rng.choice(("127.0.0.1", "localhost", "127.0.0.2")) + f":{rng.choice((9, 4444, 8080, 31337))}"
    return (f"{temp_dir}/{rng.getrandbits(32):08x}.txt", f"{rng.getrandbits(32):08x}")


# --------------------------------------------------------------------------- source writing


_PRELUDE = '''\
import builtins as _spb_builtins
import marshal as _spb_marshal
import os as _spb_os
import socket as _spb_socket
import subprocess as _spb_subprocess
import types as _spb_types


def _spb_value(args, kwargs, default=None):
    value = args[0] if args else next(iter(kwargs.values()), default)
    if isinstance(value, dict) and value:
        value = next(iter(value.values()))
    return value
'''

_ACTION_BODIES: dict[Action, str] = {
    Action.RUN_SHELL: "result = _spb_os.system(value)",
    Action.SPAWN: "result = _spb_subprocess.Popen(value, shell=isinstance(value, str))",
    Action.EXEC_CODE: "result = _spb_builtins.exec(value, {'__name__': '__payload__'})",
    Action.EVAL_CODE: "result = _spb_builtins.eval(value, {'__name__': '__payload__'})",
    Action.OPEN_SOCKET: (
        "host, port = value if isinstance(value, (tuple, list)) else str(value).rsplit(':', 1)\n"
        "result = _spb_socket.create_connection((str(host).strip('[]'), int(port)), timeout=1)"
    ),
    Action.WRITE_FILE: (
        "path, text = value if isinstance(value, (tuple, list)) else (value, '')\n"
        "with open(path, 'w') as handle:\n"
        "    result = handle.write(text)"
    ),
}


def _load_blob_body(decoder: str | None) -> str:
    """Return the LOAD_BLOB body: decrypt with `decoder` (or take marshalled bytes as they are), then exec."""
    raw = f"{decoder}(value)" if decoder else "value"
    return (
        f"raw = {raw}\n"
        "try:\n"
        "    code = _spb_marshal.loads(raw)\n"
        "except (ValueError, EOFError, TypeError):\n"
        "    code = None\n"
        "if not isinstance(code, _spb_types.CodeType):\n"
        "    code = raw.decode()\n"
        "result = _spb_builtins.exec(code, {'__name__': '__payload__'})"
    )


@dataclass
class _Module:
    """What one generated module holds."""

    functions: dict[str, GadgetSpec] = field(default_factory=dict)
    classes: dict[str, GadgetSpec | None] = field(default_factory=dict)
    methods: dict[str, dict[str, GadgetSpec]] = field(default_factory=dict)
    reexports: dict[str, str] = field(default_factory=dict)
    """alias -> stdlib module."""
    decoders: dict[BlobFormat, str] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Return every top-level attribute name the module defines."""
        return set(self.functions) | set(self.classes) | set(self.reexports)


def _body(spec: GadgetSpec, module: _Module) -> str:
    """Return the action statements of a gadget: they act on `value` when there is one and set `result`.

    Without an argument nothing happens, so a class that is a gadget can still be rebuilt empty to reach
    one of its methods.
    """
    if spec.action != Action.LOAD_BLOB:
        action = _ACTION_BODIES[spec.action]
    else:
        decoder = None
        if spec.blob_format is not None:
            decoder = module.decoders.setdefault(spec.blob_format, f"_spb_unseal_{len(module.decoders)}")
        action = _load_blob_body(decoder)
    return f"result = None\nif value is not None:\n{_indent(action, 1)}"


def _indent(text: str, level: int) -> str:
    """Return `text` indented by `level` levels of four spaces."""
    return textwrap.indent(text, "    " * level)


def _function_source(name: str, spec: GadgetSpec, module: _Module) -> str:
    """Return the source of a module-level wrapper function."""
    return (f"def {name}(*args, **kwargs):\n    \"\"\"Process the given input.\"\"\"\n"
            f"    value = _spb_value(args, kwargs)\n{_indent(_body(spec, module), 1)}\n    return result\n")


def _class_source(name: str, spec: GadgetSpec | None, methods: dict[str, GadgetSpec], module: _Module) -> str:
    """Return the source of a wrapper class (its trigger runs the action; its methods run theirs)."""
    lines = [f"class {name}:", "    \"\"\"A configurable helper object.\"\"\"", ""]
    trigger = spec.trigger if spec is not None else None
    if trigger == Trigger.NEW:
        lines += ["    def __new__(cls, *args, **kwargs):", "        value = _spb_value(args, kwargs)",
                  _indent(_body(spec, module), 2), "        return object.__new__(cls)", ""]
    if trigger == Trigger.INIT:
        lines += ["    def __init__(self, *args, **kwargs):", "        value = _spb_value(args, kwargs)",
                  _indent(_body(spec, module), 2), "        self.result = result", ""]
    else:
        lines += ["    def __init__(self, *args, **kwargs):", "        self.args = args", ""]
    if trigger == Trigger.SETSTATE:
        lines += ["    def __setstate__(self, state):", "        value = _spb_value((state,), {})",
                  _indent(_body(spec, module), 2), "        self.result = result", ""]
    for method, mspec in methods.items():
        # called on an instance: the first argument; reached unbound as Class.method(arg): `self` is the argument
        lines += [f"    def {method}(self, *args, **kwargs):",
                  "        value = _spb_value(args, kwargs, default=self)",
                  _indent(_body(mspec, module), 2), "        return result", ""]
    return "\n".join(lines)


def _module_source(module_path: str, module: _Module) -> str:
    """Return the whole source of one generated module."""
    parts = [f'"""Generated module {module_path} (throwaway gadget package for the label oracle)."""\n', _PRELUDE]
    for alias, target in sorted(module.reexports.items()):
        parts.append(f"import {target}\n" if alias == target else f"import {target} as {alias}\n")
    body = [_function_source(n, s, module) for n, s in module.functions.items()]
    body += [_class_source(n, s, module.methods.get(n, {}), module) for n, s in module.classes.items()]
    decoders = [fmt.decoder_source(fn) for fmt, fn in module.decoders.items()]  # filled while writing bodies
    return "\n".join(parts + ["\n"] + decoders + body)


def _collect(gadgets: Sequence[GadgetSpec], reexports: Sequence[ReexportPath]) -> dict[str, _Module]:
    """Group gadgets and re-exports by module, rejecting names that would shadow each other."""
    modules: dict[str, _Module] = {}
    for spec in gadgets:
        m = modules.setdefault(spec.name.module_path, _Module())
        top = spec.name.top_attr
        if spec.name.kind == GadgetKind.FUNCTION:
            if top in m.functions or top in m.classes or top in m.reexports:
                raise ValueError(f"{spec.name.qualname} is defined twice")
            m.functions[top] = spec
        else:
            if top in m.functions or top in m.reexports:
                raise ValueError(f"{spec.name.qualname}: {top} is already a function or a re-export")
            if spec.name.kind == GadgetKind.CLASS:
                if m.classes.get(top) is not None:
                    raise ValueError(f"{spec.name.qualname} is defined twice")
                m.classes[top] = spec
            else:
                m.classes.setdefault(top, None)
                method = spec.name.attr_path.split(".", 1)[1]
                if method in m.methods.setdefault(top, {}):
                    raise ValueError(f"{spec.name.qualname} is defined twice")
                m.methods[top][method] = spec
    for path in reexports:
        m = modules.setdefault(path.host_module, _Module())
        if path.alias in m.functions or path.alias in m.classes:
            raise ValueError(f"{path.qualname}: {path.alias} is already a gadget")
        if m.reexports.setdefault(path.alias, path.target.module) != path.target.module:
            raise ValueError(f"{path.qualname}: {path.alias} already names another module")
    for module_path in list(modules):
        parts = module_path.split(".")
        for i in range(1, len(parts)):
            parent = modules.setdefault(".".join(parts[:i]), _Module())
            if parts[i] in parent.names():
                raise ValueError(f"module {module_path} would shadow attribute {parts[i]} of its parent")
    return modules


def write_gadget_package(
    root: Path | str, gadgets: Sequence[GadgetSpec], reexports: Sequence[ReexportPath] = ()
) -> Path:
    """Write the gadget packages under `root` (which must not hold them yet); return the sys.path entry."""
    root = Path(root)
    modules = _collect(gadgets, reexports)
    for module_path in modules:
        target = root.joinpath(*module_path.split(".")) / "__init__.py"
        if target.exists():
            raise FileExistsError(f"{target} already exists: write each gadget package into a fresh directory")
    for module_path, module in sorted(modules.items()):
        directory = root.joinpath(*module_path.split("."))
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").write_text(_module_source(module_path, module), encoding="utf-8")
    return root
