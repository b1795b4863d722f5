"""Family `unknown_gadget`: a generated package's function, method or class that runs its argument.

The gadget's name comes from `gadget_names` (in the context's namespace), its inert argument (a shell
command, Python source, a loopback peer or a marker path) from `payload_args` via `inert_argument`, and the
route by which the loader reaches it from `routes` (GLOBAL, STACK_GLOBAL, memo aliases, INST, OBJ, NEWOBJ,
BUILD, getattr on a rebuilt instance, dotted names).
"""

from __future__ import annotations

from safepickle_bench.craft.families.common import FamilyContext, FamilyPayload, arg_node, assemble, draw_name
from safepickle_bench.craft.families.routes import Route, gadget_routes, reach_gadget
from safepickle_bench.craft.gadget_names import GadgetKind
from safepickle_bench.craft.gadget_package import Action, GadgetSpec, Trigger, inert_argument

FAMILY = "unknown_gadget"
ACTIONS: tuple[Action, ...] = (
    Action.RUN_SHELL, Action.SPAWN, Action.EXEC_CODE, Action.EVAL_CODE, Action.OPEN_SOCKET, Action.WRITE_FILE,
)
"""Actions of this family (blobs are the `obfuscated` family's)."""
_TRIGGERS: dict[GadgetKind, tuple[Trigger, ...]] = {
    GadgetKind.FUNCTION: (Trigger.CALL,),
    GadgetKind.METHOD: (Trigger.CALL,),
    GadgetKind.CLASS: (Trigger.INIT, Trigger.NEW, Trigger.SETSTATE),
}


def build_unknown_gadget(ctx: FamilyContext, protocol: int, variant: int = 0, route: Route | None = None,
                         action: Action | None = None) -> FamilyPayload:
    """Return a payload reaching a freshly named generated gadget that runs its inert argument."""
    rng = ctx.rng
    if route is not None and route in (Route.GETATTR_INSTANCE, Route.DOTTED):
        kinds: tuple[GadgetKind, ...] = (GadgetKind.METHOD,)
    elif route in (Route.NEWOBJ, Route.BUILD):
        kinds = (GadgetKind.CLASS,)
    elif route is not None:
        kinds = (GadgetKind.FUNCTION, GadgetKind.CLASS)
    else:
        kinds = (rng.choice(tuple(GadgetKind)),)
    name = draw_name(ctx, kinds)
    triggers = _TRIGGERS[name.kind]
    if route == Route.NEWOBJ:
        trigger = Trigger.NEW
    elif route == Route.BUILD:
        trigger = Trigger.SETSTATE
    elif route is not None and name.kind == GadgetKind.CLASS:
        trigger = Trigger.INIT
    else:
        trigger = rng.choice(triggers)
    spec = GadgetSpec(name, action or rng.choice(ACTIONS), trigger)
    chosen = route or rng.choice(gadget_routes(spec, protocol))
    reached = reach_gadget(spec, arg_node(inert_argument(spec, ctx.temp_dir, rng)), chosen, protocol, rng)
    callables = (name.qualname, "builtins.getattr") if chosen == Route.GETATTR_INSTANCE else (name.qualname,)
    description = f"{name.kind} gadget {name.qualname} ({spec.action}, {trigger}) via {chosen}"
    payload = assemble(FAMILY, reached, protocol, variant, description, callables, spec.expected_events)
    return FamilyPayload(FAMILY, payload, chosen, spec.expected_events, name.qualname, [spec], [],
                         f"{spec.action}:{trigger}")
