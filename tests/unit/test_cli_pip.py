"""``blendr job submit --pip``: each requirement reaches the job request (and from it the sealed payload)."""

from __future__ import annotations

from typing import Any

from blendr.client import JobRequest, RenterError
from blendrctl.cli import build_parser
from blendrctl.renter import _submit


class CapturingKing:
    def __init__(self) -> None:
        self.requests: list[JobRequest] = []

    async def submit(self, req: JobRequest) -> Any:
        self.requests.append(req)
        raise RenterError("stop here")


async def test_pip_flags_reach_the_job_request() -> None:
    args = build_parser().parse_args(["job", "submit", "--pip", "numpy==2.1", "--pip", "scipy", "--",
                                      "python", "main.py"])
    king = CapturingKing()
    assert await _submit(king, args) == 1
    assert king.requests[0].pip == ["numpy==2.1", "scipy"]
    none = build_parser().parse_args(["job", "submit", "--", "python", "main.py"])
    await _submit(king, none)
    assert king.requests[1].pip == []
