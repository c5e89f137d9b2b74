"""The page's API (king.web_listen, Connect) at two ``blendr king run`` processes on one PostgreSQL: routed at the
follower exactly as its gRPC is (what the follower serves itself, and what it passes to the leader), and a sign-in
challenge from one king's page signs in at the other's. tests/e2e/test_kings.py runs it on its two kings."""

from __future__ import annotations

import base64
import json
import re
import ssl
from typing import Any

import aiohttp
from eth_account.messages import encode_defunct

from tests.e2e.kings import KingProc, Kings
from tests.e2e.net import ACCOUNTS
from tests.integration.helpers import wait_for

WEB = {"web_listen": '"127.0.0.1:0"'}  # Kings(overrides=WEB): each king serves the page on a free port
GATEWAY = "/blendr.v1.RenterGateway"
_URL = re.compile(r"^king 0x[0-9a-fA-F]{40} serving .*; web page at (https://127\.0\.0\.1:\d+/)$", re.M)


def web_url(k: KingProc) -> str | None:
    m = _URL.search(k.output())
    return m[1] if m else None


async def check_web_api_routed_as_grpc(kings: Kings, leader: KingProc, follower: KingProc) -> None:
    """The renter's calls through the follower's page API answer as the leader's gRPC would."""
    await wait_for(lambda: web_url(leader) is not None and web_url(follower) is not None, 60, "both pages' URLs")
    trust = ssl.create_default_context(cafile=str(kings.ca_file))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http:

        async def call(k: KingProc, method: str, body: dict[str, Any], token: str = "") -> tuple[int, Any]:
            headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
            async with http.post(f"{web_url(k)}{GATEWAY[1:]}/{method}", data=json.dumps(body),
                                 headers=headers) as r:
                return r.status, json.loads(await r.read())

        renter = ACCOUNTS["renter"]
        status, challenge = await call(follower, "GetSignInChallenge", {"address": renter.address})
        assert status == 200
        signature = base64.b64encode(bytes(renter.sign_message(
            encode_defunct(text=challenge["message"])).signature)).decode()
        status, session = await call(leader, "SignIn", {"challengeId": challenge["challengeId"],
                                                        "address": renter.address, "signature": signature})
        assert status == 200 and session["address"] == renter.address
        status, offers = await call(follower, "ListOffers", {})  # passed to the leader
        assert (status, offers) == (200, {})  # no queen has joined yet
        status, err = await call(follower, "GetJob", {"jobId": "j-1"}, session["token"])
        assert (status, err["code"]) == (404, "not_found")
        status, err = await call(follower, "CancelJob", {"jobId": "j-1"})  # passed on, refused as at the leader
        assert (status, err["code"]) == (401, "unauthenticated")
