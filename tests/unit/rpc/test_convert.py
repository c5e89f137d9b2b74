"""Wire <-> domain converters: round trips and the validation of everything a peer sends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blendr.errors import InvalidArgumentError, ResourceExhaustedError
from blendr.identity import Address
from blendr.proof.params import MAX_COUNT, MAX_N, ChallengeParams
from blendr.proof.prover import Opening
from blendr.rpc import convert
from blendr.types import DeviceInfo, DeviceKind, Hello, ProviderState, RayInfo, Verdict
from protos.blendr.v1 import queen_pb2 as pb

ADDRESS = Address("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
SEED = bytes(range(32))


def device(index: int = 0, **kw: object) -> DeviceInfo:
    base: dict[str, object] = {
        "index": index,
        "kind": DeviceKind.GPU,
        "name": "NVIDIA H100 80GB HBM3",
        "model": "h100-sxm",
        "memory_bytes": 80 * 2**30,
        "uuid": f"GPU-{index}",
        "driver_version": "550.54.15",
        "cuda_version": "12.4",
    }
    return DeviceInfo(**{**base, **kw})  # type: ignore[arg-type]


def hello(*devices: DeviceInfo) -> Hello:
    return Hello(
        address=ADDRESS,
        devices=devices or (device(),),
        ray=RayInfo(ray_version="2.50.0", num_cpus=16.0, num_gpus=1.0, pin_resource="blendr_x"),
        software_version="blendrchain/0.1.0",
    )


def challenge_msg(**kw: object) -> pb.Challenge:
    base: dict[str, object] = {
        "challenge_id": "c1",
        "seed": SEED,
        "n": 64,
        "dtype": pb.DTYPE_FP32,
        "count": 2,
        "timeout_ms": 1500,
        "device_indices": [0, 1],
    }
    return pb.Challenge(**{**base, **kw})  # type: ignore[arg-type]


# --- hello ----------------------------------------------------------------------------------------


def test_hello_round_trip() -> None:
    h = hello(device(0), device(1, kind=DeviceKind.CPU, model="cpu", name="cpu", uuid="", cuda_version=""))
    wire = pb.Hello.FromString(convert.hello_to_proto(h).SerializeToString())
    assert convert.hello_from_proto(wire, max_devices=8) == h


def test_hello_address_is_checksummed() -> None:
    m = convert.hello_to_proto(hello())
    m.address = ADDRESS.lower()
    assert convert.hello_from_proto(m, max_devices=8).address == ADDRESS


@pytest.mark.parametrize("address", ["", "0x1234", "not an address", "0x" + "z" * 40, "0x" + "a" * 400])
def test_hello_with_a_bad_address(address: str) -> None:
    m = convert.hello_to_proto(hello())
    m.address = address
    with pytest.raises(InvalidArgumentError, match=r"hello\.address is not an Ethereum address") as exc:
        convert.hello_from_proto(m, max_devices=8)
    assert len(str(exc.value)) < 150  # the echoed value is cut short


@pytest.mark.parametrize("kind", [99, pb.DEVICE_KIND_UNSPECIFIED])
def test_hello_with_an_unknown_device_kind(kind: int) -> None:
    m = convert.hello_to_proto(hello())
    m.devices[0].kind = kind  # type: ignore[assignment]
    with pytest.raises(InvalidArgumentError, match=f"device 0: unknown device kind {kind}"):
        convert.hello_from_proto(m, max_devices=8)


def test_hello_with_an_empty_model() -> None:
    m = convert.hello_to_proto(hello())
    m.devices[0].model = ""
    with pytest.raises(InvalidArgumentError, match="device 0: model is empty"):
        convert.hello_from_proto(m, max_devices=8)


def test_hello_with_too_many_devices() -> None:
    m = convert.hello_to_proto(hello(*(device(i) for i in range(5))))
    assert len(convert.hello_from_proto(m, max_devices=5).devices) == 5
    with pytest.raises(ResourceExhaustedError, match="hello lists 5 devices; at most 4 accepted"):
        convert.hello_from_proto(m, max_devices=4)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("devices", "name"), "device.name"),
        (("devices", "model"), "device.model"),
        (("devices", "uuid"), "device.uuid"),
        (("devices", "driver_version"), "device.driver_version"),
        (("devices", "cuda_version"), "device.cuda_version"),
        (("ray", "ray_version"), "ray.ray_version"),
        (("ray", "pin_resource"), "ray.pin_resource"),
        (("software_version",), "software_version"),
    ],
)
def test_hello_with_over_long_strings(path: tuple[str, ...], field: str) -> None:
    m = convert.hello_to_proto(hello())
    target: object = m
    for part in path[:-1]:
        target = getattr(target, part)
        if part == "devices":
            target = target[0]  # type: ignore[index]
    setattr(target, path[-1], "x" * convert.MAX_TEXT)
    convert.hello_from_proto(m, max_devices=8)  # the limit itself is fine
    setattr(target, path[-1], "x" * (convert.MAX_TEXT + 1))
    with pytest.raises(InvalidArgumentError, match=f"{field} is longer than 256 characters"):
        convert.hello_from_proto(m, max_devices=8)


texts = st.text(max_size=convert.MAX_TEXT)


@settings(max_examples=40, deadline=None)
@given(
    devices=st.lists(
        st.builds(
            DeviceInfo,
            index=st.integers(0, 2**32 - 1),
            kind=st.sampled_from(DeviceKind),
            name=texts,
            model=st.text(min_size=1, max_size=convert.MAX_TEXT),
            memory_bytes=st.integers(0, 2**64 - 1),
            uuid=texts,
            driver_version=texts,
            cuda_version=texts,
        ),
        max_size=4,
    ),
    software=texts,
)
def test_hello_round_trip_property(devices: list[DeviceInfo], software: str) -> None:
    h = Hello(address=ADDRESS, devices=tuple(devices), ray=RayInfo(), software_version=software)
    wire = pb.Hello.FromString(convert.hello_to_proto(h).SerializeToString())
    assert convert.hello_from_proto(wire, max_devices=4) == h


# --- challenge ------------------------------------------------------------------------------------


def test_challenge_round_trip() -> None:
    params = ChallengeParams("c1", SEED, 64, 3)
    m = pb.Challenge.FromString(convert.challenge_to_proto(params, 2.5, [0, 3]).SerializeToString())
    assert m.dtype == pb.DTYPE_FP32
    assert convert.challenge_from_proto(m) == (params, 2.5, [0, 3])
    with_epoch = ChallengeParams("c1", SEED, 64, 3, b_seed=bytes(range(32)))
    m = pb.Challenge.FromString(convert.challenge_to_proto(with_epoch, 2.5, [0]).SerializeToString())
    assert convert.challenge_from_proto(m)[0] == with_epoch


def test_challenge_timeout_is_at_least_one_millisecond() -> None:
    m = convert.challenge_to_proto(ChallengeParams("c1", SEED, 8, 1), 0.0001, [0])
    assert m.timeout_ms == 1
    assert convert.challenge_from_proto(m)[1] == 0.001


def test_challenge_limits_are_accepted() -> None:
    params, _, _ = convert.challenge_from_proto(challenge_msg(n=MAX_N, count=1, seed=b"s" * 64))
    assert (params.n, params.count) == (MAX_N, 1)
    params, _, _ = convert.challenge_from_proto(challenge_msg(n=1, count=MAX_COUNT, seed=b"s" * 16))
    assert (params.n, params.count) == (1, MAX_COUNT)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n": 0}, r"n must be 1 to 16384, got 0"),
        ({"n": MAX_N + 1}, r"n must be 1 to 16384, got 16385"),
        ({"n": 2**32 - 1}, r"n must be 1 to 16384"),
        ({"count": 0}, r"count must be 1 to 4096, got 0"),
        ({"count": MAX_COUNT + 1}, r"count must be 1 to 4096, got 4097"),
        ({"n": MAX_N, "count": MAX_COUNT}, r"count \* n = 67108864 rows exceeds 16777216"),
        ({"seed": b""}, r"seed must be 16 to 64 bytes, got 0"),
        ({"seed": b"s" * 15}, r"seed must be 16 to 64 bytes, got 15"),
        ({"seed": b"s" * 65}, r"seed must be 16 to 64 bytes, got 65"),
        ({"dtype": pb.DTYPE_UNSPECIFIED}, r"challenge dtype 0 is not supported \(only DTYPE_FP32\)"),
        ({"dtype": 7}, r"challenge dtype 7 is not supported"),
        ({"timeout_ms": 0}, r"challenge timeout_ms must be > 0"),
        ({"device_indices": []}, r"challenge names no devices"),
        ({"challenge_id": ""}, r"challenge_id must be 1..64 characters"),
        ({"challenge_id": "x" * 65}, r"challenge_id must be 1..64 characters"),
    ],
)
def test_bad_challenges_are_invalid_arguments(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        convert.challenge_from_proto(challenge_msg(**changes))


# --- openings -------------------------------------------------------------------------------------


def opening(row: int, depth: int = 3, device_index: int = 0) -> Opening:
    return Opening(
        device_index=device_index,
        row=row,
        values=(row % 2**32).to_bytes(4, "little") * 4,
        proof=[bytes([row % 256, i]) * 16 for i in range(depth)],
    )


def test_openings_round_trip() -> None:
    ops = [opening(0), opening(5, depth=0, device_index=2), opening(2**40, depth=convert.MAX_PROOF_DEPTH)]
    m = pb.Openings.FromString(convert.openings_to_proto("c1", ops).SerializeToString())
    assert m.challenge_id == "c1"
    assert convert.openings_from_proto(m) == ops


def test_too_many_openings_in_one_message() -> None:
    ops = [opening(i, depth=0) for i in range(convert.MAX_ROWS_PER_OPENING)]
    assert (
        len(convert.openings_from_proto(convert.openings_to_proto("c", ops))) == convert.MAX_ROWS_PER_OPENING
    )
    m = convert.openings_to_proto("c", [*ops, opening(0, depth=0)])
    with pytest.raises(ResourceExhaustedError, match="4097 openings in one message; at most 4096"):
        convert.openings_from_proto(m)


@pytest.mark.parametrize(
    "proof",
    [[b"\x00" * 31], [b"\x00" * 32, b"\x00" * 33], [b""], [b"\x00" * 32] * (convert.MAX_PROOF_DEPTH + 1)],
)
def test_bad_proof_hashes(proof: list[bytes]) -> None:
    m = convert.openings_to_proto("c", [opening(1), Opening(0, 7, b"\x00" * 16, proof)])
    with pytest.raises(InvalidArgumentError, match=r"row 7: Merkle proof must be <= 64 hashes of 32 bytes"):
        convert.openings_from_proto(m)


# --- enums ----------------------------------------------------------------------------------------


def test_state_and_verdict_maps_are_bijections() -> None:
    assert set(convert.STATE_TO_PB) == set(ProviderState)
    assert set(convert.VERDICT_TO_PB) == set(Verdict)
    assert all(convert.STATE_FROM_PB[v] is k for k, v in convert.STATE_TO_PB.items())
    assert all(convert.VERDICT_FROM_PB[v] is k for k, v in convert.VERDICT_TO_PB.items())
    assert pb.VERDICT_UNSPECIFIED not in convert.VERDICT_FROM_PB
    assert pb.PROVIDER_STATE_UNSPECIFIED not in convert.STATE_FROM_PB
