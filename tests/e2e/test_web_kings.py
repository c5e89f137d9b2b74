"""Two ``blendr king run`` processes on one PostgreSQL (king.ha), each with ``king.web_listen``: the page's API at the
follower is routed exactly as its gRPC is (what the follower serves itself, and what it passes to the leader), and
a sign-in challenge from one king's page signs in at the other's."""

from __future__ import annotations

import base64
import json
import re
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from eth_account.messages import encode_defunct

from blendr.chain.manifest import Manifest
from tests.e2e.kings import KingProc, Kings
from tests.e2e.net import ACCOUNTS
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.timeout(300)

GATEWAY = "/blendr.v1.RenterGateway"
_URL = re.compile(r"^king 0x[0-9a-fA-F]{40} serving .*; web page at (https://127\.0\.0\.1:\d+/)$", re.M)


def web_url(k: KingProc) -> str | None:
    m = _URL.search(k.output())
    return m[1] if m else None


async def test_the_web_page_api_at_a_follower_is_routed_as_its_grpc(deployed: Manifest, postgres_url: str,
                                                                    tmp_path: Path) -> None:
    kings = Kings(tmp_path / "kings", postgres_url, deployed, overrides={"web_listen": '"127.0.0.1:0"'})
    try:
        leader = kings.start("king1")
        await wait_for(lambda: kings.ready(leader) and web_url(leader) is not None, 60, "king1 serving its page")
        await wait_for(lambda: kings.leader() is leader, 30, "king1 leading")
        follower = kings.start("king2")
        await wait_for(lambda: kings.ready(follower) and web_url(follower) is not None, 60, "king2 serving")
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
            assert await call(follower, "ListOffers", {}) == (200, {})  # passed to the leader
            status, err = await call(follower, "GetJob", {"jobId": "j-1"}, session["token"])
            assert (status, err["code"]) == (404, "not_found")
            status, err = await call(follower, "CancelJob", {"jobId": "j-1"})  # passed on, refused as at the leader
            assert (status, err["code"]) == (401, "unauthenticated")
    finally:
        kings.close()
