"""Renter-declared pip requirements in the sealed job payload (``--pip``)."""

from __future__ import annotations

import json
import struct

import pytest

from blendr.payload import MAX_PIP_REQUIREMENTS, JobPayload, PayloadError


def test_pip_round_trips_and_an_empty_list_keeps_the_old_header() -> None:
    p = JobPayload("python main.py", {"A": "1"}, b"tar", pip=("numpy==2.1", "./mypkg", "scipy>=1.13"))
    assert JobPayload.decode(p.encode()).pip == ("numpy==2.1", "./mypkg", "scipy>=1.13")
    plain = JobPayload("python main.py").encode()
    assert plain[:4] == b"BLJP"
    header = json.loads(plain[9:9 + struct.unpack_from(">I", plain, 5)[0]])
    assert set(header) == {"entrypoint", "env"}  # what a provider from before --pip reads
    assert JobPayload.decode(plain).pip == ()


@pytest.mark.parametrize("pip", [
    ["-r", "x.txt"], ["--index-url=http://evil"], ["numpy 2.1"], ["a\nb"], [""], ["x" * 257],
    ["ok"] * (MAX_PIP_REQUIREMENTS + 1), "numpy", [1],
])
def test_malformed_pip_requirements_are_refused(pip: object) -> None:
    with pytest.raises(PayloadError):
        JobPayload("true", pip=pip)  # type: ignore[arg-type]


def test_a_header_with_an_unknown_key_or_a_bad_pip_is_refused() -> None:
    good = JobPayload("true", pip=("numpy",)).encode()
    for bad in (good.replace(b'"pip"', b'"pop"'), good.replace(b'["numpy"]', b'"numpy"  ')):
        with pytest.raises(PayloadError):
            JobPayload.decode(bad)
