"""Malicious payload families with domain randomisation, for measuring generalisation to unseen attacks.

Every family draws its names from `gadget_names` (in a namespace, so train and test name sets stay
disjoint), its inert arguments from `payload_args`, its blobs from `obfuscation`, and needs a throwaway
`gadget_package` on sys.path for the label oracle to see the real loader act (a sidecar says so):

- `unknown_gadget`: a generated function, method or class that runs its argument (`unknown_gadget`).
- `reexport`: a dangerous stdlib callable through a generated module's attribute (`reexport`).
- `obfuscated`: an encrypted blob to a generated loader, or an encoded-source chain (`obfuscated`).
- `staged`: download-then-run, anti-VM, sleep, file-drop and reverse-shell code (`staged`).

`samples.write_sample` writes one of them as a stand-alone pickle or injected into a carrier, with its
package and sidecar.
"""

from __future__ import annotations

from collections.abc import Callable

from safepickle_bench.craft.families.common import FamilyContext, FamilyPayload
from safepickle_bench.craft.families.obfuscated import build_obfuscated
from safepickle_bench.craft.families.reexport import build_reexport
from safepickle_bench.craft.families.routes import Route
from safepickle_bench.craft.families.staged import build_staged
from safepickle_bench.craft.families.unknown_gadget import build_unknown_gadget

FAMILY_BUILDERS: dict[str, Callable[..., FamilyPayload]] = {
    "unknown_gadget": build_unknown_gadget,
    "reexport": build_reexport,
    "obfuscated": build_obfuscated,
    "staged": build_staged,
}
GENERALIZATION_FAMILIES: tuple[str, ...] = tuple(FAMILY_BUILDERS)
"""The generalisation families, in a fixed order."""


def build_family_payload(family: str, ctx: FamilyContext, protocol: int, variant: int = 0,
                         route: Route | None = None, **options: object) -> FamilyPayload:
    """Build one payload of a generalisation family (deterministic for the context's rng state and tag)."""
    if family not in FAMILY_BUILDERS:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(GENERALIZATION_FAMILIES)}")
    if not 0 <= protocol <= 5:
        raise ValueError(f"pickle protocol must be 0..5, got {protocol}")
    return FAMILY_BUILDERS[family](ctx, protocol, variant, route, **options)


__all__ = ["GENERALIZATION_FAMILIES", "FamilyContext", "FamilyPayload", "Route", "build_family_payload"]
