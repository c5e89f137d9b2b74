from __future__ import annotations

import math

import pytest

from blendr.errors import ProofError
from blendr.proof.verifier import SpeedCheck, Verdict, check_memory, check_speed

GIB = 2**30
FLOPS = 2 * 10 * 1024**3  # 10 products of n = 1024: 21.47 GFLOP


def speed(work: float, wall: float, fp: float = 0.1) -> SpeedCheck:
    return check_speed(FLOPS, work, wall, fp, 0.5, 1.5, model="cpu")


def test_speed_within_band_passes_and_reports_throughput() -> None:
    result = speed(0.2, 0.25)
    assert result.ok
    assert isinstance(result, Verdict)
    assert result.reported_tflops == pytest.approx(FLOPS / 0.2 / 1e12)
    assert result.wall_tflops == pytest.approx(FLOPS / 0.25 / 1e12)


@pytest.mark.parametrize(
    ("work", "wall"),
    [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0), (math.nan, 1.0), (math.inf, math.inf), (0.5, 0.0)],
)
def test_implausible_timing(work: float, wall: float) -> None:
    result = speed(work, wall)
    assert not result.ok
    assert result.reason.startswith("implausible timing")


def test_work_slightly_over_wall_is_tolerated() -> None:
    assert speed(0.2 + 0.005, 0.2).ok


def test_too_slow() -> None:
    result = speed(1.0, 1.0)  # 0.0215 TFLOP/s against 0.1 with a 0.5 floor
    assert not result.ok
    assert result.reason == "too slow for cpu: 0.02147 TFLOP/s measured, fingerprint 0.1"
    assert result.reported_tflops == pytest.approx(0.021474836)


def test_too_fast() -> None:
    result = speed(0.1, 1.0)  # 0.215 TFLOP/s against 0.1 with a 1.5 ceiling
    assert not result.ok
    assert result.reason == "faster than cpu can be: 0.2147 TFLOP/s measured, fingerprint 0.1"


def test_bad_speed_configuration_raises() -> None:
    with pytest.raises(ProofError):
        check_speed(FLOPS, 1.0, 1.0, 0.0, 0.5, 1.5)
    with pytest.raises(ProofError):
        check_speed(FLOPS, 1.0, 1.0, 0.1, 0.9, 0.5)
    with pytest.raises(ProofError):
        check_speed(0, 1.0, 1.0, 0.1, 0.5, 1.5)


def test_memory_checks() -> None:
    assert check_memory(80 * GIB, 80 * GIB, 0.05).ok
    assert check_memory(81559 * 2**20, 80 * GIB, 0.05).ok  # what NVML reports for an H100
    assert check_memory(123, None, 0.05).ok
    more = check_memory(96 * GIB, 80 * GIB, 0.05, model="h100-sxm")
    assert (more.ok, more.reason) == (False, "claims 96.0 GiB, more than h100-sxm has (80.0 GiB)")
    less = check_memory(40 * GIB, 80 * GIB, 0.05, model="h100-sxm")
    assert (less.ok, less.reason) == (False, "claims 40.0 GiB, less than h100-sxm has (80.0 GiB)")
    assert check_memory(0, 80 * GIB, 0.05).reason == "implausible memory claim: 0 bytes"
    with pytest.raises(ProofError):
        check_memory(80 * GIB, 80 * GIB, -0.1)


def test_without_the_floor_a_slow_report_passes_but_the_ceiling_and_plausibility_hold() -> None:
    slow = check_speed(FLOPS, 1.0, 1.0, 0.1, 0.5, 1.5, model="cpu", floor=False)
    assert slow.ok and slow.reported_tflops == pytest.approx(0.021474836)
    assert not check_speed(FLOPS, 0.1, 1.0, 0.1, 0.5, 1.5, floor=False).ok  # too fast
    assert not check_speed(FLOPS, 2.0, 1.0, 0.1, 0.5, 1.5, floor=False).ok  # more work than the wall
