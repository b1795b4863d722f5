"""Family `staged`: evasive payload code (download-then-run, anti-VM checks, sleeps, file drops, reverse shells).

The code comes from `payload_args` (Python or shell, one behaviour each, inert: loopback peers, temp-dir
markers) and is run by `exec`/`eval`, by `exec` of a stager that decodes it first (`PayloadArg.loader_source`:
the encoded payload rebuilt from pieces inside the code string), or by a generated gadget that runs code or
shell commands.
"""

from __future__ import annotations

from safepickle_bench.craft.families.common import FamilyContext, FamilyPayload, assemble, draw_name
from safepickle_bench.craft.families.routes import Reached, Route, gadget_routes, reach_gadget
from safepickle_bench.craft.gadget_names import GadgetKind
from safepickle_bench.craft.gadget_package import ACTION_EVENTS, Action, GadgetSpec, Trigger
from safepickle_bench.craft.payload_args import ArgKind, Behaviour, Encoding, make_payload_arg
from safepickle_bench.craft.payloads import Call, Glob

FAMILY = "staged"
BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour.DOWNLOAD_RUN, Behaviour.ANTI_VM, Behaviour.SLEEP, Behaviour.FILE_DROP, Behaviour.REVERSE_SHELL,
)
SINKS: tuple[str, ...] = ("exec", "eval", "stager", "gadget")
_CODE_EVENTS = frozenset({"compile", "exec"})


def build_staged(ctx: FamilyContext, protocol: int, variant: int = 0, route: Route | None = None,
                 behaviour: Behaviour | None = None, sink: str | None = None) -> FamilyPayload:
    """Return a payload running staged or evasive inert code through exec/eval, a stager or a gadget."""
    rng = ctx.rng
    behaviour = behaviour or rng.choice(BEHAVIOURS)
    sink = sink or rng.choice(SINKS)
    kind = rng.choice(tuple(ArgKind)) if sink in ("stager", "gadget") else ArgKind.PYTHON
    encoding = None if sink == "stager" else Encoding.PLAIN
    arg = make_payload_arg(rng, ctx.temp_dir, kind=kind, behaviour=behaviour, encoding=encoding)
    shape = f"{behaviour}:{kind}:{sink}"
    if sink == "gadget":
        if kind == ArgKind.SHELL:
            action = rng.choice((Action.RUN_SHELL, Action.SPAWN))
        else:
            action = rng.choice((Action.EXEC_CODE, Action.EVAL_CODE))
        text = f"exec({arg.text!r})" if action == Action.EVAL_CODE else arg.text
        spec = GadgetSpec(draw_name(ctx, (GadgetKind.FUNCTION, GadgetKind.METHOD)), action, Trigger.CALL)
        chosen = route or rng.choice(gadget_routes(spec, protocol))
        reached = reach_gadget(spec, text, chosen, protocol, rng)
        events = ACTION_EVENTS[action]
        payload = assemble(FAMILY, reached, protocol, variant, f"{shape} {spec.name.qualname} ({action}) via {chosen}",
                           (spec.name.qualname,), events)
        return FamilyPayload(FAMILY, payload, chosen, events, spec.name.qualname, [spec], [], shape)
    if sink == "stager":
        code, builtin = arg.loader_source(), "exec"
        shape += f":{arg.encoding}:{len(arg.pieces)}"
    elif sink == "eval":
        code, builtin = f"exec({arg.text!r})", "eval"
    else:
        code, builtin = arg.text, "exec"
    chosen = route if route in (Route.GLOBAL, Route.STACK_GLOBAL, Route.MEMO) else rng.choice(
        (Route.GLOBAL, Route.MEMO, Route.STACK_GLOBAL) if protocol >= 4 else (Route.GLOBAL, Route.MEMO))
    reached = Reached(Call(Glob("builtins", builtin), (code,)), chosen, stack_global=chosen != Route.GLOBAL,
                      memo=chosen == Route.MEMO)
    payload = assemble(FAMILY, reached, protocol, variant, f"{shape} via {chosen}", (f"builtins.{builtin}",),
                       _CODE_EVENTS)
    return FamilyPayload(FAMILY, payload, chosen, _CODE_EVENTS, "", [], [], shape)
