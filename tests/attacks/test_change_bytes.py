"""Each attack changes the bytes as it claims: padding reaches its ratio in opcode counts, memo splitting leaves
no GLOBAL and no name push next to STACK_GLOBAL, renaming leaves only resolution helpers imported, nesting
moves the payload into embedded bytes or a second stream, carrier hiding puts it inside a transformer state_dict."""

from __future__ import annotations

import io
import pickletools
import random
import zipfile

import pytest

from safepickle_bench.attacks import PADDING_RATIOS, MaliciousSample, attack_sample
from safepickle_bench.attacks.getattr_rename import HELPERS
from safepickle_bench.attacks.padding import STYLES, pad
from safepickle_bench.attacks.target import count_opcodes, expr_from_stream, stream_opcodes
from safepickle_bench.craft.payloads import build_payload, globals_of

MARKERS = "/tmp/safepickle-out/markers"


def _payload(family: str = "os_system", protocol: int = 2, variant: int = 0):
    return build_payload(family, MARKERS, protocol=protocol, variant=variant, rng=random.Random(family))


def _imports(stream: bytes) -> list[str]:
    """Return module.name of every global the stream's expression imports (read from opcodes only)."""
    return globals_of(expr_from_stream(stream)[0])


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("ratio", PADDING_RATIOS)
@pytest.mark.parametrize("style", STYLES)
def test_padding_reaches_its_ratio_in_opcode_counts(protocol: int, ratio: int, style: str) -> None:
    """The padded stream holds ratio x the payload's opcodes more opcodes (within 2), payload bytes intact."""
    payload = _payload("subprocess", protocol)
    padded = pad(payload, ratio, random.Random(1), style=style)
    before = stream_opcodes(payload.stream())
    after = stream_opcodes(padded.stream())
    want = ratio * count_opcodes(payload.body)
    assert want - 2 <= after - before <= max(want + 2, 8)
    assert payload.body in padded.body


def test_padding_placement_puts_benign_opcodes_before_and_after_the_payload() -> None:
    """`before` pads only in front, `after` only behind, `around` on both sides."""
    payload = _payload()
    for placement, front, back in (("before", True, False), ("after", False, True), ("around", True, True)):
        body = pad(payload, 10, random.Random(2), style="floats", placement=placement).body
        i = body.index(payload.body)
        assert (i > 0) == front
        assert (len(body) - i - len(payload.body) > 0) == back


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_memo_split_imports_every_global_from_memo_only(protocol: int) -> None:
    """No GLOBAL opcode remains; every STACK_GLOBAL takes its two names from memo GETs; names are memoized."""
    payload = _payload("import_getattr_chain", protocol)
    data = attack_sample(MaliciousSample(payload), "memo_split", None, random.Random(3)).data
    ops = list(pickletools.genops(data))
    names = [op.name for op, _, _ in ops]
    assert "GLOBAL" not in names and "STACK_GLOBAL" in names
    for i, name in enumerate(names):
        if name == "STACK_GLOBAL":
            assert names[i - 1].endswith("GET") and names[i - 2].endswith("GET")
    assert any(n.endswith("PUT") for n in names)


def test_getattr_rename_imports_only_resolution_helpers() -> None:
    """After renaming, the stream imports only getattr/__import__/import_module/attrgetter."""
    for family in ("os_system", "subprocess", "webbrowser_open", "urllib_download"):
        payload = _payload(family)
        data = attack_sample(MaliciousSample(payload), "getattr_rename", None, random.Random(4)).data
        assert set(_imports(data)) <= HELPERS
        assert not set(payload.callables) & set(_imports(data))


@pytest.mark.parametrize("attack", ["nested_raw", "nested_base64"])
def test_nesting_moves_the_payload_into_embedded_bytes(attack: str) -> None:
    """The outer stream imports only a loads (and b64decode); the payload's stream travels as data."""
    payload = _payload("posix_system", 4)
    data = attack_sample(MaliciousSample(payload), attack, None, random.Random(5)).data
    outer = set(_imports(data))
    assert outer & {"pickle.loads", "_pickle.loads"}
    assert not set(payload.callables) & outer


def test_second_stream_appends_a_complete_payload_stream() -> None:
    """A stand-alone sample becomes a benign stream followed by the payload's own stream."""
    payload = _payload("subprocess", 4)
    af = attack_sample(MaliciousSample(payload), "second_stream", None, random.Random(6))
    first_len = next(pos for op, _, pos in pickletools.genops(af.data) if op.name == "STOP") + 1
    assert af.data[first_len:] == payload.stream()
    assert af.loader == "pickle_multi"


def test_carrier_hiding_puts_the_payload_inside_a_transformer_state_dict() -> None:
    """The attacked file is a torch zip whose data.pkl holds BERT layer names and the payload's opcodes."""
    payload = _payload()
    af = attack_sample(MaliciousSample(payload), "carrier_hiding", None, random.Random(7))
    archive = zipfile.ZipFile(io.BytesIO(af.data))
    pkl = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"encoder.layer.1.attention" in pkl and payload.body in pkl
    assert stream_opcodes(pkl) > 20 * count_opcodes(payload.body)
    assert af.loader == "torch"


def test_gadget_swap_replaces_the_deny_listed_callable() -> None:
    """The swapped payload imports a gadget from gadgets.yaml and none of the original callables."""
    from safepickle_bench.craft.payloads import load_gadgets

    payload = _payload()
    af = attack_sample(MaliciousSample(payload), "gadget_swap", None, random.Random(8))
    gadgets = {g.name for g in load_gadgets()}
    assert set(af.payload.callables) & gadgets
    assert "os.system" not in af.payload.imports
