"""The king's web listener (king/web.py) with real parts: a real grpc.aio server (port 0 and its local Unix socket)
serving a scripted renter gateway and network view, the real aiohttp listener on port 0, and aiohttp's client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from blendr.config import Config
from blendr.errors import AuthenticationError, ConfigError
from blendr.rpc.server import ServerHandle, open_local_channel, start_server
from king.auth import SignInOrigin
from king.web import (
    CONNECT_CODES,
    NOT_BUILT,
    SECURITY_HEADERS,
    WebServer,
    WebSettings,
    envelope,
    local_socket,
)
from protos.blendr.v1 import network_pb2 as npb
from protos.blendr.v1 import network_pb2_grpc as npb_grpc
from protos.blendr.v1 import renter_pb2 as rpb
from protos.blendr.v1 import renter_pb2_grpc as rpb_grpc

GATEWAY = "/blendr.v1.RenterGateway"
PROTO = {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"}
JSON = {"Content-Type": "application/json"}
STREAM = {"Content-Type": "application/connect+proto", "Connect-Protocol-Version": "1"}
INTERNAL_NAMES = ("DecodeError", "ParseError", "Traceback", "_pb2", "protobuf", "Exception", "king/", ".py")


class Gateway(rpb_grpc.RenterGatewayServicer):
    """A scripted renter gateway: what it saw, and a stream that waits until it is cancelled."""

    def __init__(self) -> None:
        self.auth: list[str | None] = []
        self.watching = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def GetSignInChallenge(self, request: Any, context: Any) -> Any:
        return rpb.SignInChallenge(challenge_id="c1", message=f"sign in {request.address}", expires_unix=1.5)

    async def GetJob(self, request: Any, context: Any) -> Any:
        auth = dict(context.invocation_metadata()).get("authorization")
        self.auth.append(auth)
        if request.job_id.startswith("code:"):
            await context.abort(grpc.StatusCode[request.job_id[5:]], f"the king says {request.job_id[5:]}")
        if request.job_id == "slow":
            await asyncio.sleep(5)
        if auth != "Bearer good":
            raise AuthenticationError("sign in first")
        return rpb.Job(job_id=request.job_id, renter="0xabc", state=rpb.JOB_STATE_RUNNING)

    async def SubmitJob(self, request: Any, context: Any) -> Any:
        return rpb.Job(job_id=str(len(request.payload.ciphertext)), request_id=request.request_id)

    async def WatchJob(self, request: Any, context: Any) -> Any:
        for i in range(3):
            yield rpb.JobEvent(job_id=request.job_id, seq=i + 1, message=f"event {i + 1}")
        if request.job_id == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no job missing")
        if request.job_id == "forever":
            self.watching.set()
            try:
                await asyncio.sleep(3600)
            finally:
                self.cancelled.set()


class Network(npb_grpc.NetworkViewServicer):
    async def GetNetworkInfo(self, request: Any, context: Any) -> Any:
        return npb.NetworkInfo(network="devnet", eth_chain_id=31337)


@dataclass
class Rig:
    web: WebServer
    gateway: Gateway
    http: aiohttp.ClientSession
    root: Path
    cfg: Config

    @property
    def base(self) -> str:
        return self.web.url("127.0.0.1").rstrip("/")

    async def post(self, path: str, body: bytes | str, headers: dict[str, str]) -> tuple[int, Any, bytes]:
        async with self.http.post(self.base + path, data=body, headers=headers) as r:
            return r.status, r.headers, await r.read()

    async def get(self, path: str) -> tuple[int, Any, bytes]:
        async with self.http.get(self.base + path) as r:
            return r.status, r.headers, await r.read()


def build_page(root: Path) -> None:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><script type=module src=/assets/index-abc123.js></script>")
    (root / "assets" / "index-abc123.js").write_text("console.log('hi')")
    (root / "assets" / "index-abc123.css").write_text("body{}")
    (root / "favicon.svg").write_text("<svg/>")
    (root / ".env").write_text("SECRET=1")


@contextlib.asynccontextmanager
async def rig(make_config: Callable[..., Config], tmp_path: Path, *, tls: bool = False, built: bool = True,
              **settings: Any) -> AsyncIterator[Rig]:
    root = tmp_path / "static"
    root.mkdir()
    if built:
        build_page(root)
    (tmp_path / "secret.txt").write_text("king's secret")
    cfg = make_config("king", rpc__tls=tls, king__web_listen="127.0.0.1:0", king__web_root=str(root))
    sock = local_socket(cfg)
    gateway = Gateway()
    handle: ServerHandle = await start_server(
        cfg, "127.0.0.1:0", [lambda s: rpb_grpc.add_RenterGatewayServicer_to_server(gateway, s),
                             lambda s: npb_grpc.add_NetworkViewServicer_to_server(Network(), s)],
        service_names=["blendr.v1.RenterGateway"], local_socket=str(sock))
    web = WebServer(replace(WebSettings.of(cfg), **settings), open_local_channel(cfg, str(sock)))
    await web.start()
    ctx = ssl.create_default_context(cafile=str(cfg.path("tls", "ca.crt"))) if tls else None
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx if ctx else False)) as http:
            yield Rig(web, gateway, http, root, cfg)
    finally:
        await web.stop()
        await handle.stop(0)


@pytest.fixture
async def r(make_config: Callable[..., Config], tmp_path: Path) -> AsyncIterator[Rig]:
    async with rig(make_config, tmp_path) as it:
        yield it


def frames(body: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(body):
        flags, n = struct.unpack_from(">BI", body, i)
        out.append((flags, body[i + 5:i + 5 + n]))
        i += 5 + n
    assert i == len(body)
    return out


def connect_error(body: bytes) -> tuple[str, str]:
    err = json.loads(body)
    return err["code"], err["message"]


# ---------------------------------------------------------------------------------------------------- unary calls
async def test_a_unary_call_round_trips_as_binary_protobuf_and_as_json(r: Rig) -> None:
    req = rpb.SignInChallengeRequest(address="0x12").SerializeToString()
    status, headers, body = await r.post(f"{GATEWAY}/GetSignInChallenge", req, PROTO)
    assert status == 200 and headers["Content-Type"] == "application/proto"
    assert rpb.SignInChallenge.FromString(body) == rpb.SignInChallenge(challenge_id="c1", message="sign in 0x12",
                                                                        expires_unix=1.5)
    status, headers, body = await r.post(f"{GATEWAY}/GetSignInChallenge", '{"address": "0x34", "future": 1}',
                                         {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == {"challengeId": "c1", "message": "sign in 0x34", "expiresUnix": 1.5}


async def test_every_method_of_the_network_view_is_forwarded_too(r: Rig) -> None:
    status, _, body = await r.post("/blendr.v1.NetworkView/GetNetworkInfo", "{}", JSON)
    assert status == 200 and json.loads(body) == {"network": "devnet", "ethChainId": "31337"}
    # a method the king does not serve (yet) is the king's UNIMPLEMENTED, as Connect maps it
    status, _, body = await r.post("/blendr.v1.NetworkView/ListPools", "{}", JSON)
    assert status == 501 and connect_error(body)[0] == "unimplemented"


async def test_the_authorization_header_reaches_the_king_as_metadata(r: Rig) -> None:
    req = rpb.GetJobRequest(job_id="j1").SerializeToString()
    status, _, body = await r.post(f"{GATEWAY}/GetJob", req, {**PROTO, "Authorization": "Bearer good"})
    assert status == 200 and rpb.Job.FromString(body).job_id == "j1"
    status, _, body = await r.post(f"{GATEWAY}/GetJob", req, PROTO)
    assert status == 401 and connect_error(body) == ("unauthenticated", "sign in first")
    assert r.gateway.auth == ["Bearer good", None]


@pytest.mark.parametrize("code", [c for c in CONNECT_CODES])
async def test_every_grpc_status_of_the_king_comes_through_as_its_connect_code(r: Rig, code: grpc.StatusCode) -> None:
    status, headers, body = await r.post(f"{GATEWAY}/GetJob", json.dumps({"jobId": f"code:{code.name}"}), JSON)
    assert (connect_error(body)[0], status) == CONNECT_CODES[code]
    assert connect_error(body)[1] == f"the king says {code.name}"
    assert headers["Content-Type"] == "application/json; charset=utf-8"


def test_the_table_spells_codes_as_connect_does() -> None:
    assert {c.name.lower() for c in CONNECT_CODES} - {v[0] for v in CONNECT_CODES.values()} == {"cancelled"}
    assert CONNECT_CODES[grpc.StatusCode.CANCELLED] == ("canceled", 499)
    assert grpc.StatusCode.OK not in CONNECT_CODES


async def test_connect_timeout_ms_is_honoured_and_checked(r: Rig) -> None:
    slow = json.dumps({"jobId": "slow"})
    status, _, body = await r.post(f"{GATEWAY}/GetJob", slow, {**JSON, "Connect-Timeout-Ms": "50"})
    assert status == 504 and connect_error(body)[0] == "deadline_exceeded"
    status, _, body = await r.post(f"{GATEWAY}/GetJob", slow, {**JSON, "Connect-Timeout-Ms": "0"})  # already past
    assert status == 504 and connect_error(body)[0] == "deadline_exceeded"
    for bad in ("-5", "1.5", "12345678901", "soon"):
        status, _, body = await r.post(f"{GATEWAY}/GetJob", slow, {**JSON, "Connect-Timeout-Ms": bad})
        assert status == 400 and connect_error(body)[0] == "invalid_argument", bad
    status, _, body = await r.post(f"{GATEWAY}/GetJob", slow, {**JSON, "Connect-Protocol-Version": "2"})
    assert status == 400 and connect_error(body)[0] == "invalid_argument"
    status, _, body = await r.post(f"{GATEWAY}/GetJob", slow, {**JSON, "Content-Encoding": "gzip"})
    assert status == 501 and connect_error(body)[0] == "unimplemented"
    assert len(r.gateway.auth) <= 2  # only the two timed calls may have reached the king; the refused ones did not


# ---------------------------------------------------------------------------------------------------- hostile input
@pytest.mark.parametrize(("body", "headers"), [
    (b"\x0f", PROTO), (b"\xff" * 11, PROTO), (b"\x0a\x05ab", PROTO),
    (b"{not json", JSON), (b'{"jobId": 5}', JSON), (b'"j1"', JSON), (b"[]", JSON), (b"", JSON), (b'{"jobId": "\xff"}', JSON), (b"[" * 100_000, JSON),
])
async def test_malformed_bodies_are_invalid_argument_naming_nothing_internal(r: Rig, body: bytes,
                                                                             headers: dict[str, str]) -> None:
    status, _, out = await r.post(f"{GATEWAY}/GetJob", body, headers)
    code, message = connect_error(out)
    assert (status, code) == (400, "invalid_argument")
    assert not any(name in message for name in INTERNAL_NAMES), message
    assert r.gateway.auth == []


async def test_a_body_over_the_limit_is_resource_exhausted(make_config: Callable[..., Config],
                                                           tmp_path: Path) -> None:
    async with rig(make_config, tmp_path, max_body_bytes=4096) as r:
        def submit(n: int) -> bytes:
            return rpb.SubmitJobRequest(request_id="r" * 16,
                                        payload=rpb.EncryptedPayload(ciphertext=b"x" * n)).SerializeToString()

        status, _, body = await r.post(f"{GATEWAY}/SubmitJob", submit(4000), PROTO)
        assert status == 200 and rpb.Job.FromString(body).job_id == "4000"
        status, _, body = await r.post(f"{GATEWAY}/SubmitJob", submit(5000), PROTO)
        assert (status, connect_error(body)[0]) == (429, "resource_exhausted")

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            for _ in range(10):
                yield b"\x00" * 1000

        async with r.http.post(r.base + f"{GATEWAY}/SubmitJob", data=chunked(), headers=PROTO) as resp:
            assert (resp.status, connect_error(await resp.read())[0]) == (429, "resource_exhausted")


def test_the_default_limit_admits_the_kings_largest_payload(make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    s = WebSettings.of(cfg)
    assert cfg.king.max_payload_bytes < s.max_body_bytes <= cfg.rpc.max_message_bytes
    assert s.max_json_bytes > s.max_body_bytes * 4 // 3  # base64 in JSON


@pytest.mark.parametrize("path", [f"{GATEWAY}/Nope", "/blendr.v1.Nope/GetJob", "/blendr.v1.KingControl/Register",
                                  "/blendr.v1.KingControl/SubmitAttestation", "/grpc.health.v1.Health/Check", "/x"])
async def test_unknown_methods_and_the_kings_other_services_are_unimplemented_404(r: Rig, path: str) -> None:
    status, _, body = await r.post(path, b"", PROTO)
    assert (status, connect_error(body)[0]) == (404, "unimplemented")


@pytest.mark.parametrize(("path", "ctype"), [
    (f"{GATEWAY}/GetJob", "application/connect+proto"), (f"{GATEWAY}/GetJob", "text/plain"),
    (f"{GATEWAY}/GetJob", ""), (f"{GATEWAY}/WatchJob", "application/proto"),
    (f"{GATEWAY}/WatchJob", "application/json"),
])
async def test_a_content_type_that_does_not_fit_the_method_is_415(r: Rig, path: str, ctype: str) -> None:
    status, headers, _ = await r.post(path, b"", {"Content-Type": ctype} if ctype else {})
    assert status == 415 and "Accept-Post" in headers


async def test_get_on_the_api_is_405(r: Rig) -> None:
    status, headers, _ = await r.get(f"{GATEWAY}/GetJob")
    assert status == 405 and headers["Allow"] == "POST"


# ---------------------------------------------------------------------------------------------------- streams
async def test_a_server_stream_comes_in_envelopes_ended_by_the_end_of_stream_message(r: Rig) -> None:
    req = envelope(0, rpb.WatchJobRequest(job_id="j1").SerializeToString())
    status, headers, body = await r.post(f"{GATEWAY}/WatchJob", req, STREAM)
    assert status == 200 and headers["Content-Type"] == "application/connect+proto"
    got = frames(body)
    assert [f for f, _ in got] == [0, 0, 0, 2]
    assert [rpb.JobEvent.FromString(d).seq for _, d in got[:3]] == [1, 2, 3]
    assert json.loads(got[3][1]) == {}
    # JSON: the same stream, each message protobuf JSON
    req = envelope(0, b'{"jobId": "j2"}')
    status, headers, body = await r.post(f"{GATEWAY}/WatchJob", req, {"Content-Type": "application/connect+json"})
    got = frames(body)
    assert headers["Content-Type"] == "application/connect+json"
    assert [json.loads(d)["message"] for _, d in got[:3]] == ["event 1", "event 2", "event 3"]
    assert got[3] == (2, b"{}")


async def test_a_stream_that_fails_ends_with_the_error_in_the_end_of_stream_message(r: Rig) -> None:
    req = envelope(0, rpb.WatchJobRequest(job_id="missing").SerializeToString())
    status, _, body = await r.post(f"{GATEWAY}/WatchJob", req, STREAM)
    got = frames(body)
    assert status == 200 and [f for f, _ in got] == [0, 0, 0, 2]
    assert json.loads(got[3][1]) == {"error": {"code": "not_found", "message": "no job missing"}}


@pytest.mark.parametrize(("body", "code"), [
    (b"\x00\x00", "invalid_argument"),  # shorter than an envelope
    (envelope(0, b"\x0f"), "invalid_argument"),  # undecodable message
    (envelope(0, b"") + b"\x00", "invalid_argument"),  # trailing bytes
    (envelope(2, b""), "invalid_argument"),  # an end-of-stream flag from the client
    (envelope(1, b""), "unimplemented"),  # compressed
])
async def test_a_malformed_stream_request_ends_the_stream_with_an_error(r: Rig, body: bytes, code: str) -> None:
    status, _, out = await r.post(f"{GATEWAY}/WatchJob", body, STREAM)
    [(flags, end)] = frames(out)
    assert status == 200 and flags == 2 and json.loads(end)["error"]["code"] == code
    assert not any(name in json.loads(end)["error"]["message"] for name in INTERNAL_NAMES)


async def test_the_kings_stream_is_cancelled_when_the_browser_goes_away(r: Rig) -> None:
    req = envelope(0, rpb.WatchJobRequest(job_id="forever").SerializeToString())
    resp = await r.http.post(r.base + f"{GATEWAY}/WatchJob", data=req, headers=STREAM)
    assert resp.status == 200
    first = await resp.content.readexactly(5)
    assert first[0] == 0
    await asyncio.wait_for(r.gateway.watching.wait(), 10)
    assert r.web.open_streams == 1
    resp.close()  # the browser closes the tab
    await asyncio.wait_for(r.gateway.cancelled.wait(), 10)
    for _ in range(100):
        if r.web.open_streams == 0:
            break
        await asyncio.sleep(0.05)
    assert r.web.open_streams == 0


async def test_one_client_has_a_bounded_number_of_streams(make_config: Callable[..., Config],
                                                          tmp_path: Path) -> None:
    async with rig(make_config, tmp_path, max_streams_per_client=1) as r:
        req = envelope(0, rpb.WatchJobRequest(job_id="forever").SerializeToString())
        first = await r.http.post(r.base + f"{GATEWAY}/WatchJob", data=req, headers=STREAM)
        await asyncio.wait_for(r.gateway.watching.wait(), 10)
        status, _, body = await r.post(f"{GATEWAY}/WatchJob", req, STREAM)
        [(flags, end)] = frames(body)
        assert status == 200 and flags == 2 and json.loads(end)["error"]["code"] == "resource_exhausted"
        first.close()
        await asyncio.wait_for(r.gateway.cancelled.wait(), 10)


# ---------------------------------------------------------------------------------------------------- the page
async def test_the_page_and_its_assets_with_cache_and_security_headers(r: Rig) -> None:
    for path in ("/", "/index.html", "/jobs/123", "/some/deep/route"):
        status, headers, body = await r.get(path)
        assert status == 200 and body.startswith(b"<!doctype html>"), path
        assert headers["Content-Type"] == "text/html; charset=utf-8" and headers["Cache-Control"] == "no-cache"
    status, headers, body = await r.get("/assets/index-abc123.js")
    assert status == 200 and body == b"console.log('hi')"
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    status, headers, _ = await r.get("/assets/index-abc123.css")
    assert headers["Content-Type"] == "text/css; charset=utf-8"
    status, headers, _ = await r.get("/favicon.svg")
    assert (status, headers["Content-Type"], headers["Cache-Control"]) == (200, "image/svg+xml", "no-cache")
    status, _, _ = await r.get("/assets/missing-000.js")
    assert status == 404  # a missing asset is not the page
    status, _, body = await r.get("/healthz")
    assert (status, body) == (200, b"ok\n")


async def test_every_response_carries_the_security_headers(r: Rig) -> None:
    answers = [await r.get("/"), await r.get("/assets/missing.js"), await r.get(f"{GATEWAY}/GetJob"),
               await r.post(f"{GATEWAY}/Nope", b"", PROTO), await r.post(f"{GATEWAY}/GetJob", b"", {}),
               await r.post(f"{GATEWAY}/GetJob", b"{}", JSON)]
    async with r.http.request("DELETE", r.base + "/") as resp:
        answers.append((resp.status, resp.headers, b""))
    for status, headers, _ in answers:
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value, (status, name)
        assert "Access-Control-Allow-Origin" not in headers
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
    assert "unsafe-inline" not in csp.split("style-src")[0]  # never for scripts


async def raw_get(r: Rig, target: str) -> tuple[int, bytes]:
    """A GET with the request target exactly as given (clients normalize ``..`` away)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", r.web.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.mark.parametrize("target", [
    "/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt",
    "/..%2fsecret.txt", "/assets/..%5c..%5csecret.txt", "/.env", "/assets/.%2e/.env", "//etc/passwd",
    "/assets/link.txt",
])
async def test_no_path_reads_a_file_outside_the_page(r: Rig, target: str) -> None:
    (r.root / "assets" / "link.txt").symlink_to(r.root.parent / "secret.txt")
    status, body = await raw_get(r, target)
    assert b"secret" not in body.lower() and b"SECRET" not in body
    assert status in (200, 400, 404)  # the page (a route it does not know) or refused


async def test_without_a_built_page_the_api_works_and_the_page_says_to_build_it(
        make_config: Callable[..., Config], tmp_path: Path) -> None:
    async with rig(make_config, tmp_path, built=False) as r:
        for path in ("/", "/jobs/1"):
            status, headers, body = await r.get(path)
            assert (status, body.decode()) == (503, NOT_BUILT) and headers["Content-Type"].startswith("text/plain")
            assert "make web" in body.decode()
        status, _, _ = await r.post(f"{GATEWAY}/GetSignInChallenge", "{}", JSON)
        assert status == 200


async def test_with_tls_on_the_listener_serves_https_with_the_kings_certificate(
        make_config: Callable[..., Config], tmp_path: Path) -> None:
    async with rig(make_config, tmp_path, tls=True) as r:
        assert r.web.url().startswith("https://127.0.0.1:")
        status, _, body = await r.post("/blendr.v1.NetworkView/GetNetworkInfo", "{}", JSON)
        assert status == 200 and json.loads(body)["network"] == "devnet"
        status, _, _ = await r.get("/")
        assert status == 200
        with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served
            async with aiohttp.ClientSession() as plain:
                await plain.get(f"http://127.0.0.1:{r.web.port}/healthz")
        untrusting = ssl.create_default_context()  # the system's CAs: the devnet CA is not among them
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=untrusting)) as other:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await other.get(r.base + "/healthz")


async def test_the_local_socket_folder_admits_only_this_user(make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    sock = local_socket(cfg)
    assert sock.parent.stat().st_mode & 0o777 == 0o700 and not sock.exists()


@pytest.mark.parametrize(("overrides", "domain", "uri"), [
    ({}, "localhost:7480", "https://localhost:7480/"),
    ({"king__web_listen": "0.0.0.0:8443"}, "localhost:8443", "https://localhost:8443/"),
    ({"king__web_listen": "127.0.0.1:0", "rpc__tls": False}, "127.0.0.1", "http://127.0.0.1/"),
    ({"king__web_listen": "0.0.0.0:8443", "king__web_origin": "https://renters.example.org"},
     "renters.example.org", "https://renters.example.org/"),
    ({"king__advertise": "10.0.0.7:7480"}, "localhost:7480", "https://localhost:7480/"),  # the same on every king
])
def test_the_sign_in_origin_follows_the_page(make_config: Callable[..., Config], overrides: dict[str, Any],
                                             domain: str, uri: str) -> None:
    from king.app import sign_in_origin

    assert sign_in_origin(make_config(**overrides)) == SignInOrigin(domain, uri)


@pytest.mark.parametrize("origin", ["renters.example.org", "ftp://x", "https://x/path"])
def test_a_web_origin_that_is_not_an_origin_is_refused(make_config: Callable[..., Config], origin: str) -> None:
    with pytest.raises(ConfigError, match=r"king\.web_origin"):
        make_config(king__web_origin=origin)
