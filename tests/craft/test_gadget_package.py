"""The oracle's throwaway gadget package: every wrapper reaches its action's audit event, which is blocked.

Every call and every load happens in a subprocess behind the project's audit hook (`sandbox.audit`), armed
before the generated modules are imported; the hook raises on the first dangerous event, so nothing runs.
"""

from __future__ import annotations

import base64
import json
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from safepickle_bench.craft.gadget_names import (
    DANGEROUS_STDLIB_TARGETS,
    GadgetKind,
    GadgetName,
    generate_names,
    generate_reexports,
)
from safepickle_bench.craft.gadget_package import (
    ACTION_EVENTS,
    Action,
    GadgetSpec,
    Trigger,
    assign_gadgets,
    inert_argument,
    write_gadget_package,
)
from safepickle_bench.craft.obfuscation import generate_format

REPO_ROOT = str(Path(__file__).resolve().parents[2])

# The child: arm the project's audit hook, then import, resolve and trigger each case (or unpickle our own
# generated inert pickle) and report the labels the hook recorded and whether the action was blocked.
CHILD = r"""
import base64, importlib, json, pickle, sys
sys.path.insert(0, sys.argv[1])
from safepickle_bench.sandbox.audit import BlockedEvent, install_audit_hook
state = {"armed": False, "labels": []}
install_audit_hook(lambda label, event, detail: state["labels"].append(label), armed=lambda: state["armed"])
sys.path.insert(0, sys.argv[2])

def decode(v):
    if isinstance(v, dict):
        return base64.b64decode(v["b64"])
    if isinstance(v, list):
        return tuple(decode(x) for x in v)
    return v

def run(case):
    if case["mode"] == "pickle":
        return pickle.loads(base64.b64decode(case["data"]))
    obj = importlib.import_module(case["module"])
    path = case["attr"].split(".")
    arg = decode(case["arg"])
    if case["trigger"] == "call" and case["kind"] == "method":  # getattr on a rebuilt instance
        return getattr(getattr(obj, path[0])(), path[1])(arg)
    for part in path:
        obj = getattr(obj, part)
    if case["trigger"] == "init":
        return obj(arg)
    if case["trigger"] == "new":
        return obj.__new__(obj, arg)
    if case["trigger"] == "setstate":
        return obj.__new__(obj).__setstate__(arg)
    args = decode(case["args"]) if "args" in case else (arg,)
    return obj(*args)

out = []
for case in json.loads(sys.stdin.read()):
    state["labels"], state["armed"] = [], True
    try:
        run(case)
        outcome = "returned"
    except BlockedEvent:
        outcome = "blocked"
    except Exception as exc:
        outcome = f"error: {type(exc).__name__}: {exc}"[:300]
    finally:
        state["armed"] = False
    out.append({"labels": state["labels"], "outcome": outcome})
print(json.dumps(out))
"""


def _json_arg(value: object) -> object:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    if isinstance(value, tuple):
        return [_json_arg(v) for v in value]
    return value


def _run_child(root: Path, cases: list[dict]) -> list[dict]:
    # -I -B like the oracle's sandbox: isolated, and no .pyc written while the hook is armed
    result = subprocess.run([sys.executable, "-I", "-B", "-c", CHILD, REPO_ROOT, str(root)],
                            input=json.dumps(cases), capture_output=True, text=True, timeout=60, cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def _call_case(spec: GadgetSpec, arg: object) -> dict:
    return {"mode": "call", "module": spec.name.module_path, "attr": spec.name.attr_path,
            "kind": spec.name.kind.value, "trigger": spec.trigger.value, "arg": _json_arg(arg)}


def test_every_action_and_trigger_reaches_its_audit_event_and_is_blocked(tmp_path):
    rng = random.Random(0)
    names = generate_names("package-test", 120, namespace="test")
    pools = {k: [n for n in names if n.kind == k] for k in GadgetKind}
    fmt = generate_format(random.Random(1))
    specs = []
    for kind, triggers in ((GadgetKind.FUNCTION, [Trigger.CALL]), (GadgetKind.METHOD, [Trigger.CALL]),
                           (GadgetKind.CLASS, [Trigger.INIT, Trigger.NEW, Trigger.SETSTATE])):
        for trigger in triggers:
            for action in Action:
                blob_format = fmt if action == Action.LOAD_BLOB and kind != GadgetKind.CLASS else None
                specs.append(GadgetSpec(pools[kind].pop(), action, trigger, blob_format))
    used = {s.name for s in specs}
    specs += [s for s in assign_gadgets([n for n in names if n not in used], 0)]  # plus a seeded assignment
    root = write_gadget_package(tmp_path / "pkgs", specs)
    temp = tmp_path / "markers"
    temp.mkdir()
    cases = [_call_case(s, inert_argument(s, str(temp), rng)) for s in specs]
    results = _run_child(root, cases)
    for spec, result in zip(specs, results, strict=True):
        assert result["outcome"] == "blocked", (spec, result)
        assert result["labels"] and result["labels"][0] in ACTION_EVENTS[spec.action], (spec, result)
    assert not list(temp.iterdir())  # nothing was written: every action stopped at its first event


REEXPORT_CALLS: dict[str, tuple[tuple, set[str]]] = {
    "os.system": (("echo hi",), {"os.system"}),
    "os.popen": (("echo hi",), {"subprocess.Popen"}),
    "os.execv": (("/bin/echo", ["echo", "hi"]), {"os.exec"}),
    "posix.system": (("echo hi",), {"os.system"}),
    "subprocess.Popen": ((["echo", "hi"],), {"subprocess.Popen"}),
    "subprocess.run": ((["echo", "hi"],), {"subprocess.Popen"}),
    "subprocess.call": ((["echo", "hi"],), {"subprocess.Popen"}),
    "subprocess.check_call": ((["echo", "hi"],), {"subprocess.Popen"}),
    "subprocess.check_output": ((["echo", "hi"],), {"subprocess.Popen"}),
    "subprocess.getoutput": (("echo hi",), {"subprocess.Popen"}),
    "builtins.exec": (("x = 1",), {"compile", "exec"}),
    "builtins.eval": (("1 + 1",), {"compile", "exec"}),
    "builtins.compile": (("x = 1", "<s>", "exec"), {"compile"}),
    "builtins.open": (("MARKER", "w"), {"open:w"}),
    "socket.create_connection": ((("127.0.0.1", 9), 1), {"socket.getaddrinfo", "socket.connect"}),
}


def test_reexport_paths_resolve_to_the_real_stdlib_callable_and_are_blocked(tmp_path):
    assert set(REEXPORT_CALLS) == {t.qualname for t in DANGEROUS_STDLIB_TARGETS}
    paths = generate_reexports("package-test", 45, namespace="train")
    assert {p.target.qualname for p in paths} == set(REEXPORT_CALLS)
    root = write_gadget_package(tmp_path / "pkgs", [], paths)
    marker = str(tmp_path / "marker.txt")
    cases = []
    for p in paths:
        args = tuple(marker if a == "MARKER" else a for a in REEXPORT_CALLS[p.target.qualname][0])
        cases.append({"mode": "call", "module": p.host_module, "attr": p.attr_path, "kind": "function",
                      "trigger": "call", "arg": None, "args": _json_arg(args)})
    for p, result in zip(paths, _run_child(root, cases), strict=True):
        assert result["outcome"] == "blocked", (p.qualname, result)
        assert result["labels"][0] in REEXPORT_CALLS[p.target.qualname][1], (p.qualname, result)
    assert not Path(marker).exists()


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + struct.pack("<I", len(raw)) + raw


def _pickles_for(fn: GadgetName, method: GadgetName, cls_init: GadgetName, cls_new: GadgetName,
                 cls_state: GadgetName, reexport: tuple[str, str], arg: str) -> list[bytes]:
    """Hand-assembled inert pickles reaching each gadget the way an attack would (GLOBAL, INST, NEWOBJ...)."""
    a = arg.encode()
    return [
        # protocol 0: GLOBAL + REDUCE
        b"c" + fn.module_path.encode() + b"\n" + fn.attr_path.encode() + b"\n(V" + a + b"\ntR.",
        # protocol 4: STACK_GLOBAL of a dotted Class.method, called unbound with the argument
        b"\x80\x04" + _unicode(method.module_path) + _unicode(method.attr_path) + b"\x93" + _unicode(arg)
        + b"\x85R.",
        # protocol 2: getattr on an instance rebuilt by NEWOBJ
        b"\x80\x02cbuiltins\ngetattr\n" + b"c" + method.module_path.encode() + b"\n"
        + method.top_attr.encode() + b"\n)\x81" + _unicode(method.attr_path.split(".")[1]) + b"\x86R"
        + _unicode(arg) + b"\x85R.",
        # protocol 0: INST (class constructed with the argument)
        b"(V" + a + b"\ni" + cls_init.module_path.encode() + b"\n" + cls_init.attr_path.encode() + b"\n.",
        # protocol 2: NEWOBJ (cls.__new__(cls, arg))
        b"\x80\x02c" + cls_new.module_path.encode() + b"\n" + cls_new.attr_path.encode() + b"\n"
        + _unicode(arg) + b"\x85\x81.",
        # protocol 2: NEWOBJ with no argument, then BUILD with the argument as state
        b"\x80\x02c" + cls_state.module_path.encode() + b"\n" + cls_state.attr_path.encode() + b"\n)\x81"
        + _unicode(arg) + b"b.",
        # protocol 4: STACK_GLOBAL of a re-export path (host module, "os.system")
        b"\x80\x04" + _unicode(reexport[0]) + _unicode(reexport[1]) + b"\x93" + _unicode(arg) + b"\x85R.",
    ]


def test_the_real_unpickler_reaches_each_gadget_and_is_blocked(tmp_path):
    names = generate_names("pickle-test", 40, namespace="validation")
    fn = next(n for n in names if n.kind == GadgetKind.FUNCTION)
    method = next(n for n in names if n.kind == GadgetKind.METHOD)
    classes = [n for n in names if n.kind == GadgetKind.CLASS][:3]
    specs = [GadgetSpec(fn, Action.RUN_SHELL), GadgetSpec(method, Action.RUN_SHELL),
             GadgetSpec(classes[0], Action.RUN_SHELL, Trigger.INIT),
             GadgetSpec(classes[1], Action.RUN_SHELL, Trigger.NEW),
             GadgetSpec(classes[2], Action.RUN_SHELL, Trigger.SETSTATE)]
    reexport = next(p for p in generate_reexports("pickle-test", 40, namespace="validation")
                    if p.target.qualname == "os.system")
    root = write_gadget_package(tmp_path / "pkgs", specs, [reexport])
    marker = tmp_path / "ran.txt"
    pickles = _pickles_for(fn, method, *classes, (reexport.host_module, reexport.attr_path), f"echo x > {marker}")
    cases = [{"mode": "pickle", "data": base64.b64encode(p).decode()} for p in pickles]
    for i, result in enumerate(_run_child(root, cases)):
        assert result == {"labels": ["os.system"], "outcome": "blocked"}, (i, result)
    assert not marker.exists()


def test_conflicting_names_and_reused_directories_are_refused(tmp_path):
    fn = GadgetName("pkgzed", "pkgzed.core", "load_state", GadgetKind.FUNCTION)
    clash = GadgetName("pkgzed", "pkgzed.core", "load_state.run", GadgetKind.METHOD)
    with pytest.raises(ValueError, match="load_state"):
        write_gadget_package(tmp_path / "a", [GadgetSpec(fn, Action.RUN_SHELL), GadgetSpec(clash, Action.SPAWN)])
    shadow = GadgetName("pkgzed", "pkgzed", "core", GadgetKind.FUNCTION)
    with pytest.raises(ValueError, match="shadow"):
        write_gadget_package(tmp_path / "b", [GadgetSpec(fn, Action.RUN_SHELL), GadgetSpec(shadow, Action.SPAWN)])
    write_gadget_package(tmp_path / "c", [GadgetSpec(fn, Action.RUN_SHELL)])
    with pytest.raises(FileExistsError):
        write_gadget_package(tmp_path / "c", [GadgetSpec(fn, Action.RUN_SHELL)])
    with pytest.raises(ValueError, match="trigger"):
        GadgetSpec(fn, Action.RUN_SHELL, Trigger.SETSTATE)


def test_assignment_is_seeded_and_generated_packages_are_identical(tmp_path):
    names = generate_names(9, 30)
    assert assign_gadgets(names, 1) == assign_gadgets(names, 1)
    assert assign_gadgets(names, 1) != assign_gadgets(names, 2)
    a = write_gadget_package(tmp_path / "a", assign_gadgets(names, 1), generate_reexports(9, 5))
    b = write_gadget_package(tmp_path / "b", assign_gadgets(names, 1), generate_reexports(9, 5))
    files_a = {p.relative_to(a): p.read_text() for p in a.rglob("*.py")}
    files_b = {p.relative_to(b): p.read_text() for p in b.rglob("*.py")}
    assert files_a == files_b and len(files_a) >= len({n.module_path for n in names})
    for source in files_a.values():
        compile(source, "<generated>", "exec")
