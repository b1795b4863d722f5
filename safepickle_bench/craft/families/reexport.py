"""Family `reexport`: a dangerous stdlib callable reached through a generated module's attribute.

`pkg.mod.os.system`-style paths (`gadget_names.generate_reexports`): STACK_GLOBAL, GLOBAL or INST of the
dotted name in a protocol-4+ stream, memo-aliased strings, or `getattr(pkg.mod.os, 'system')` at any
protocol. The host module exists only in the sample's throwaway package; it `import`s the stdlib module.
"""

from __future__ import annotations

from safepickle_bench.craft.families.common import FamilyContext, FamilyPayload, assemble, package_is_free
from safepickle_bench.craft.families.routes import Route, reach_reexport, reexport_routes
from safepickle_bench.craft.gadget_names import (
    DANGEROUS_STDLIB_TARGETS,
    ReexportPath,
    StdlibTarget,
    generate_reexports,
)
from safepickle_bench.craft.payload_args import ArgKind, make_payload_arg
from safepickle_bench.craft.payloads import Lst, Node, Tup

FAMILY = "reexport"
TARGET_EVENTS: dict[str, frozenset[str]] = {
    "os.system": frozenset({"os.system"}),
    "os.popen": frozenset({"subprocess.Popen"}),
    "os.execv": frozenset({"os.exec"}),
    "posix.system": frozenset({"os.system"}),
    "subprocess.Popen": frozenset({"subprocess.Popen"}),
    "subprocess.run": frozenset({"subprocess.Popen"}),
    "subprocess.call": frozenset({"subprocess.Popen"}),
    "subprocess.check_call": frozenset({"subprocess.Popen"}),
    "subprocess.check_output": frozenset({"subprocess.Popen"}),
    "subprocess.getoutput": frozenset({"subprocess.Popen"}),
    "builtins.exec": frozenset({"compile", "exec"}),
    "builtins.eval": frozenset({"compile", "exec"}),
    "builtins.compile": frozenset({"compile"}),
    "builtins.open": frozenset({"open:w"}),
    "socket.create_connection": frozenset({"socket.getaddrinfo", "socket.connect"}),
}
"""The oracle's first event for each dangerous stdlib target called with the inert arguments below."""


def _target_args(target: StdlibTarget, ctx: FamilyContext) -> tuple[Node, ...]:
    """Return inert arguments that make the stdlib target act."""
    rng, q = ctx.rng, target.qualname
    token = f"SAFEPICKLE-{rng.getrandbits(32):08x}"
    if q in ("os.system", "posix.system", "os.popen", "subprocess.getoutput"):
        return (make_payload_arg(rng, ctx.temp_dir, kind=ArgKind.SHELL).text,)
    if q == "os.execv":
        return ("/bin/echo", Lst(("echo", token)))
    if q.startswith("subprocess."):
        shell = make_payload_arg(rng, ctx.temp_dir, kind=ArgKind.SHELL).text
        return (Lst(("sh", "-c", shell)) if rng.random() < 0.6 else Lst(("echo", token)),)
    if q in ("builtins.exec", "builtins.eval", "builtins.compile"):
        source = make_payload_arg(rng, ctx.temp_dir, kind=ArgKind.PYTHON).text
        if q == "builtins.eval":
            return (f"exec({source!r})",)
        return (source,) if q == "builtins.exec" else (source, rng.choice(("<string>", "<cfg>", "")), "exec")
    if q == "builtins.open":
        return (f"{ctx.temp_dir}/{rng.getrandbits(32):08x}.txt", rng.choice(("w", "a", "wb")))
    if q == "socket.create_connection":
        return (Tup((rng.choice(("127.0.0.1", "localhost")), rng.choice((9, 4444, 8080)))), 1)
    raise ValueError(f"no inert arguments for {q}")


def build_reexport(ctx: FamilyContext, protocol: int, variant: int = 0, route: Route | None = None,
                   target: StdlibTarget | None = None) -> FamilyPayload:
    """Return a payload calling a dangerous stdlib function through a generated module's attribute."""
    rng = ctx.rng
    wanted = target or rng.choice(DANGEROUS_STDLIB_TARGETS)
    path = _draw_path(ctx, wanted)
    chosen = route or rng.choice(reexport_routes(protocol))
    args = _target_args(path.target, ctx)
    reached = reach_reexport(path.host_module, path.alias, path.target.name, args, chosen, protocol)
    events = TARGET_EVENTS[path.target.qualname]
    description = f"{path.target.qualname} re-exported as {path.qualname} via {chosen}"
    payload = assemble(FAMILY, reached, protocol, variant, description, (path.qualname,), events)
    return FamilyPayload(FAMILY, payload, chosen, events, path.qualname, [], [path], path.target.qualname)


def _draw_path(ctx: FamilyContext, target: StdlibTarget) -> ReexportPath:
    """Return a generated re-export path to `target` whose package shadows nothing importable here."""
    n = len(DANGEROUS_STDLIB_TARGETS)  # one round of the generator covers every target once
    for attempt in range(20):
        for path in generate_reexports(f"{ctx.tag}|{attempt}", n, namespace=ctx.namespace):
            if path.target == target and package_is_free(path.package):
                return path
    raise RuntimeError(f"no re-export path to {target.qualname} with a free package name was found")
