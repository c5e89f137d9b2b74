"""A real king (devnet chains with every contract, its gRPC server with TLS) with ``king.web_listen`` set: the page's
API over Connect through the web listener, HTTPS with the king's own certificate, signed in with a real wallet
signature of the EIP-4361 challenge."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from eth_account.messages import encode_defunct

from blendr.chain.manifest import Manifest
from blendr.config import load_config
from blendr.identity import NodeIdentity
from blendr.siwe import STATEMENT, parse_message
from king.app import start_king
from protos.blendr.v1 import renter_pb2 as rpb
from tests.integration.relay_net import ACCOUNTS

GATEWAY = "/blendr.v1.RenterGateway"


async def test_a_king_serves_its_renter_api_over_connect_on_its_web_listener(deployed: Manifest,
                                                                             tmp_path: Path) -> None:
    home = tmp_path / "king"
    home.mkdir()
    NodeIdentity.from_key(bytes(ACCOUNTS["king"].key)).save(home)
    cfg = load_config(home, overrides={"king.listen": "127.0.0.1:0", "king.web_listen": "127.0.0.1:0",
                                       "king.poll_s": 0.2, "chain.rpc_retries": 8, "chain.rpc_timeout_s": 5.0},
                      env={})
    king = await start_king(cfg, manifest=deployed, run_loops=False)
    try:
        assert king.web is not None and king.web.tls
        base = f"https://127.0.0.1:{king.web.port}"
        trust = ssl.create_default_context(cafile=str(home / "tls" / "ca.crt"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http:

            async def call(method: str, body: Any, token: str = "") -> tuple[int, Any]:
                headers = {"Content-Type": "application/json", "Connect-Protocol-Version": "1"}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                async with http.post(f"{base}{GATEWAY}/{method}", data=json.dumps(body), headers=headers) as r:
                    return r.status, json.loads(await r.read())

            assert await call("ListOffers", {}) == (200, {})  # no queens yet: no offers

            renter = ACCOUNTS["renter"]
            req = rpb.SignInChallengeRequest(address=renter.address).SerializeToString()
            async with http.post(f"{base}{GATEWAY}/GetSignInChallenge", data=req,
                                 headers={"Content-Type": "application/proto"}) as r:
                assert r.status == 200 and r.headers["Content-Type"] == "application/proto"
                challenge = rpb.SignInChallenge.FromString(await r.read())
            m = parse_message(challenge.message)
            assert (m.address, m.chain_id, m.statement) == (renter.address, 31337, STATEMENT)
            assert m.resources == (f"blendr:king:{king.address}",) and m.request_id == challenge.challenge_id
            assert (m.domain, m.uri) == ("127.0.0.1", "https://127.0.0.1/")  # web_listen's host, port 0 left out

            signature = renter.sign_message(encode_defunct(text=challenge.message)).signature
            status, session = await call("SignIn", {"challengeId": challenge.challenge_id, "address": renter.address,
                                                    "signature": base64.b64encode(bytes(signature)).decode()})
            assert status == 200 and session["address"] == renter.address and session["token"].startswith("v1.")
            # the same challenge signs in once, as over gRPC
            status, err = await call("SignIn", {"challengeId": challenge.challenge_id, "address": renter.address,
                                                "signature": base64.b64encode(bytes(signature)).decode()})
            assert (status, err["code"]) == (401, "unauthenticated")

            status, err = await call("GetJob", {"jobId": "j-1"})
            assert (status, err["code"]) == (401, "unauthenticated") and "sign in" in err["message"]
            status, err = await call("GetJob", {"jobId": "j-1"}, session["token"])
            assert (status, err["code"]) == (404, "not_found")

            async with http.get(f"{base}/healthz") as r:
                assert (r.status, await r.text()) == (200, "ok\n")
    finally:
        await king.stop()
    assert not king.web.serving
