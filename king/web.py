"""The king's web listener (``king.web_listen``): the dApp's page and the renter API over the Connect protocol.

The page (``king.web_root``, the Vite build of web/) talks to the king with Connect
(https://connectrpc.com/docs/protocol) over HTTP/1.1: ``POST /blendr.v1.RenterGateway/<Method>`` and
``POST /blendr.v1.NetworkView/<Method>``, unary calls as ``application/proto`` or ``application/json``, server
streams as ``application/connect+proto`` or ``application/connect+json`` in 5-byte envelopes ended by an
end-of-stream message.

Guarantees:

- Every call is forwarded to this king's own gRPC server through its Unix socket (``start_server(local_socket=…)``),
  with the caller's ``authorization`` header as gRPC metadata: a call from the page is authenticated, limited, routed
  (several kings: to the leader) and answered exactly as the same call from the CLI. Every method of both services
  is served, read from the proto descriptors; the king's gRPC status comes back as the Connect code of the same
  name, with the HTTP status Connect gives it (:data:`CONNECT_CODES`).
- Hostile input gets a Connect error and never reaches the king's gRPC server: a body over the limit
  (:meth:`WebSettings.of`) is ``resource_exhausted``; an undecodable one ``invalid_argument`` with a fixed text
  naming nothing internal; an unknown path ``unimplemented`` (HTTP 404); a content type that does not fit the
  method HTTP 415. A ``connect-timeout-ms`` is honoured up to a bound; calls without one get a default deadline.
- A stream whose client goes away has its gRPC call cancelled; one client address has at most
  :attr:`WebSettings.max_streams_per_client` streams open (more: ``resource_exhausted``).
- Static files come only from inside the web root (no ``..``, no hidden names, no symlink out); assets carry long
  cache headers, the page ``no-cache``; without a built page the listener still serves the API and answers the
  page's paths 503 saying to run ``make web``. Every response carries :data:`SECURITY_HEADERS` (same origin only;
  no CORS).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format, message_factory
from google.protobuf.message import DecodeError, Message

from blendr.config import Config
from blendr.errors import BlendrError, ConfigError, InvalidArgumentError, ResourceExhaustedError
from blendr.rpc.server import open_local_channel, server_cert_files
from blendr.rpc.status import bounded, status_of
from blendr.telemetry import get_logger

log = get_logger("blendr.king.web")

#: The services the page may call.
SERVICES = ("blendr.v1.RenterGateway", "blendr.v1.NetworkView")

#: gRPC status → (Connect code, HTTP status), as the Connect protocol specifies them.
CONNECT_CODES: dict[grpc.StatusCode, tuple[str, int]] = {
    grpc.StatusCode.CANCELLED: ("canceled", 499),
    grpc.StatusCode.UNKNOWN: ("unknown", 500),
    grpc.StatusCode.INVALID_ARGUMENT: ("invalid_argument", 400),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("deadline_exceeded", 504),
    grpc.StatusCode.NOT_FOUND: ("not_found", 404),
    grpc.StatusCode.ALREADY_EXISTS: ("already_exists", 409),
    grpc.StatusCode.PERMISSION_DENIED: ("permission_denied", 403),
    grpc.StatusCode.RESOURCE_EXHAUSTED: ("resource_exhausted", 429),
    grpc.StatusCode.FAILED_PRECONDITION: ("failed_precondition", 400),
    grpc.StatusCode.ABORTED: ("aborted", 409),
    grpc.StatusCode.OUT_OF_RANGE: ("out_of_range", 400),
    grpc.StatusCode.UNIMPLEMENTED: ("unimplemented", 501),
    grpc.StatusCode.INTERNAL: ("internal", 500),
    grpc.StatusCode.UNAVAILABLE: ("unavailable", 503),
    grpc.StatusCode.DATA_LOSS: ("data_loss", 500),
    grpc.StatusCode.UNAUTHENTICATED: ("unauthenticated", 401),
}

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".json": "application/json",
    ".map": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
    ".webp": "image/webp", ".ico": "image/x-icon", ".woff": "font/woff", ".woff2": "font/woff2",
    ".wasm": "application/wasm", ".txt": "text/plain; charset=utf-8", ".webmanifest": "application/manifest+json",
}
ASSET_CACHE = "public, max-age=31536000, immutable"  # Vite's assets/ have content hashes in their names
PAGE_CACHE = "no-cache"
NOT_BUILT = "The web page of this king is not built: run `make web` (npm run web:build) and reload.\n"

_UNARY = {"application/proto": False, "application/json": True}  # content type → JSON
_STREAM = {"application/connect+proto": False, "application/connect+json": True}
_END_STREAM = 0x02
_COMPRESSED = 0x01
_ENVELOPE = struct.Struct(">BI")


@dataclass(frozen=True)
class Method:
    """One method the page may call: its path, message classes and whether the king streams the answer."""

    path: str
    request: type[Message]
    response: type[Message]
    streaming: bool


def methods() -> dict[str, Method]:
    """Every unary and server-streaming method of :data:`SERVICES`, by path (``/blendr.v1.Service/Method``)."""
    from protos.blendr.v1 import network_pb2, renter_pb2

    out: dict[str, Method] = {}
    for file in (renter_pb2, network_pb2):
        for service in file.DESCRIPTOR.services_by_name.values():
            if service.full_name not in SERVICES:
                continue
            for m in service.methods:
                if m.client_streaming:  # a browser cannot send a stream over HTTP/1.1
                    continue
                path = f"/{service.full_name}/{m.name}"
                out[path] = Method(path, message_factory.GetMessageClass(m.input_type),
                                   message_factory.GetMessageClass(m.output_type), m.server_streaming)
    return out


@dataclass(frozen=True)
class WebSettings:
    """What the listener needs from the king's config."""

    listen: str
    root: Path
    tls: tuple[Path, Path] | None  # the gRPC listener's certificate and key; None: plain HTTP
    max_body_bytes: int  # a binary body (a JSON body may be 4/3 of it: bytes travel as base64)
    max_streams_per_client: int = 16
    default_timeout_s: float = 60.0  # unary calls without connect-timeout-ms
    max_unary_timeout_s: float = 600.0
    max_stream_timeout_s: float = 86400.0  # streams without connect-timeout-ms too
    shutdown_timeout_s: float = 2.0

    @classmethod
    def of(cls, cfg: Config) -> WebSettings:
        """From ``cfg``: the body limit is the king's payload limit (``king.max_payload_bytes``, the encrypted
        payload of SubmitJob, the largest request) plus 1 MiB for the rest of the request, within
        ``rpc.max_message_bytes``.

        Raises:
            ConfigError, TLSError: as :func:`~blendr.rpc.server.server_cert_files`.
        """
        root = Path(cfg.king.web_root).expanduser() if cfg.king.web_root else Path(__file__).parent / "static"
        limit = min(cfg.king.max_payload_bytes + 2**20, cfg.rpc.max_message_bytes)
        return cls(cfg.king.web_listen, root, server_cert_files(cfg), limit, shutdown_timeout_s=cfg.rpc.grace_s)

    @property
    def max_json_bytes(self) -> int:
        return self.max_body_bytes * 4 // 3 + 2**16


class _Refused(Exception):
    """A request the listener answers itself with a Connect error (never forwarded)."""

    def __init__(self, code: str, http_status: int, message: str) -> None:
        super().__init__(message)
        self.code, self.http_status, self.message = code, http_status, message


def _refusal(exc: BlendrError) -> _Refused:
    code, text = status_of(exc, "web")
    connect, http = CONNECT_CODES[code]
    return _Refused(connect, http, text)


def _from_grpc(exc: grpc.aio.AioRpcError) -> _Refused:
    connect, http = CONNECT_CODES.get(exc.code(), ("unknown", 500))
    return _Refused(connect, http, bounded(exc.details() or ""))


def _error_body(err: _Refused) -> dict[str, str]:
    """Connect's JSON error object."""
    return {"code": err.code, "message": err.message}


def _timeout(headers: Mapping[str, str], default_s: float | None, max_s: float) -> float:
    """The call's deadline in seconds: ``connect-timeout-ms`` (at most 10 digits, as Connect allows) bounded by
    ``max_s``, else ``default_s`` (None: ``max_s``)."""
    raw = headers.get("connect-timeout-ms")
    if raw is None:
        return max_s if default_s is None else min(default_s, max_s)
    if not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 10):
        raise _refusal(InvalidArgumentError("connect-timeout-ms must be a positive integer of at most 10 digits"))
    return min(int(raw) / 1000, max_s)


def _check_headers(headers: Mapping[str, str], encoding_header: str) -> None:
    version = headers.get("connect-protocol-version")
    if version is not None and version != "1":
        raise _refusal(InvalidArgumentError("connect-protocol-version must be 1"))
    encoding = headers.get(encoding_header, "identity").strip().lower()
    if encoding != "identity":
        raise _Refused("unimplemented", 501, f"{encoding_header} {encoding[:20]!r} is not supported (identity only)")


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (declared or read)."""
    too_big = _refusal(ResourceExhaustedError(f"the request body is over this king's limit of {limit} bytes"))
    if request.content_length is not None and request.content_length > limit:
        raise too_big
    chunks, total = [], 0
    async for chunk in request.content.iter_chunked(2**16):
        total += len(chunk)
        if total > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(method: Method, body: bytes, as_json: bool) -> bytes:
    """The request's binary form, checked to decode as the method's request message."""
    try:
        if as_json:
            text = body.decode("utf-8")
            if not text.lstrip().startswith("{"):  # protobuf's parser would take a list or a string as empty
                raise ValueError("not a JSON object")
            msg = json_format.Parse(text, method.request(), ignore_unknown_fields=True)
            return msg.SerializeToString()
        method.request.FromString(body)
        return body
    except (json_format.ParseError, DecodeError, UnicodeDecodeError, ValueError, RecursionError):
        kind = "JSON" if as_json else "binary (application/proto)"
        raise _refusal(InvalidArgumentError(f"the request body is not a valid {kind} request for this method")) \
            from None


def _encode(method: Method, reply: bytes, as_json: bool) -> bytes:
    if not as_json:
        return reply
    return json_format.MessageToJson(method.response.FromString(reply), indent=None).encode()


def _unenvelope(body: bytes) -> bytes:
    """The one message of a streaming request's body (one envelope, uncompressed)."""
    if len(body) < _ENVELOPE.size:
        raise _refusal(InvalidArgumentError("the request body is not one Connect envelope"))
    flags, size = _ENVELOPE.unpack_from(body)
    if flags & _COMPRESSED:
        raise _Refused("unimplemented", 501, "compressed messages are not supported (identity only)")
    if flags != 0 or size != len(body) - _ENVELOPE.size:
        raise _refusal(InvalidArgumentError("the request body is not one Connect envelope"))
    return body[_ENVELOPE.size:]


def envelope(flags: int, data: bytes) -> bytes:
    """A Connect envelope: flags, big-endian length, data."""
    return _ENVELOPE.pack(flags, len(data)) + data


def _metadata(request: web.Request) -> tuple[tuple[str, str], ...]:
    auth = request.headers.get("Authorization")
    return (("authorization", auth),) if auth else ()


class WebServer:
    """The listener: :meth:`start` binds it, :meth:`stop` closes it (cancelling open streams)."""

    def __init__(self, settings: WebSettings, channel: grpc.aio.Channel) -> None:
        self.settings = settings
        self._channel = channel
        self._methods = methods()
        self._streams: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.serving = False

    @property
    def tls(self) -> bool:
        return self.settings.tls is not None

    @property
    def open_streams(self) -> int:
        return sum(self._streams.values())

    def url(self, host: str = "") -> str:
        """The page's URL on this listener (``host``: the name to show; default: the listen host, a wildcard
        read as localhost)."""
        if not host:
            host = self.settings.listen.rsplit(":", 1)[0].strip("[]")
            host = "localhost" if host in ("", "0.0.0.0", "::") else host
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"

    async def start(self) -> int:
        """Binds ``settings.listen`` and serves; returns the bound port.

        Raises:
            ConfigError: the address cannot be bound.
            TLSError: the certificate or key cannot be loaded.
        """
        ssl_context = self._ssl()
        app = web.Application(client_max_size=self.settings.max_json_bytes)
        app.on_response_prepare.append(_secure)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # The handler is cancelled when its client goes away: a stream's gRPC call is then cancelled at once.
        # Stopping waits at most shutdown_timeout_s for calls in flight, then cancels them (streams too).
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=self.settings.shutdown_timeout_s)
        await self._runner.setup()
        host, _, port = self.settings.listen.rpartition(":")
        try:
            site = web.TCPSite(self._runner, host.strip("[]") or None, int(port), ssl_context=ssl_context,
                               reuse_address=True)
            await site.start()
        except (OSError, ValueError) as exc:
            await self._runner.cleanup()
            raise ConfigError(f"cannot listen on {self.settings.listen} (king.web_listen): {exc}") from None
        self.port = int(self._runner.addresses[0][1])
        self.serving = True
        if not (self.settings.root / "index.html").is_file():
            log.warning("the web page is not built; the web listener answers its paths 503", root=str(self.settings.root))
        return self.port

    async def stop(self) -> None:
        """Stops serving: /healthz answers 503, open streams are cancelled, the listener and channel close."""
        self.serving = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._channel.close()

    def _ssl(self) -> ssl.SSLContext | None:
        if self.settings.tls is None:
            return None
        from blendr.errors import TLSError

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(*self.settings.tls)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot load the web listener's certificate {self.settings.tls[0]}: {exc}") from None
        return ctx

    # ------------------------------------------------------------------ dispatch
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return await self._rpc(request)
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD, POST"})
        if request.path == "/healthz":
            return web.Response(text="ok\n" if self.serving else "stopping\n", status=200 if self.serving else 503)
        if request.path.startswith("/blendr."):
            return web.Response(status=405, text="the API takes POST (Connect protocol)\n", headers={"Allow": "POST"})
        return await self._static(request.path)

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        method = self._methods.get(request.path)
        if method is None:
            return _error_response(_Refused("unimplemented", 404, "no such method"))
        types = _STREAM if method.streaming else _UNARY
        content_type = request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type not in types:
            return web.Response(status=415, text=f"content type must be one of {', '.join(types)}\n",
                                headers={"Accept-Post": ", ".join(types)})
        as_json = types[content_type]
        if method.streaming:
            return await self._stream(request, method, content_type, as_json)
        try:
            return await self._unary(request, method, content_type, as_json)
        except _Refused as err:
            return _error_response(err)

    async def _unary(self, request: web.Request, method: Method, content_type: str, as_json: bool) -> web.Response:
        s = self.settings
        _check_headers(request.headers, "Content-Encoding")
        timeout = _timeout(request.headers, s.default_timeout_s, s.max_unary_timeout_s)
        body = await _read_body(request, s.max_json_bytes if as_json else s.max_body_bytes)
        payload = _decode(method, body, as_json)
        call = self._channel.unary_unary(method.path)  # no serializers: bytes both ways
        try:
            reply = await call(payload, metadata=_metadata(request), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise _from_grpc(exc) from None
        return web.Response(body=_encode(method, reply, as_json), content_type=content_type)

    async def _stream(self, request: web.Request, method: Method, content_type: str,
                      as_json: bool) -> web.StreamResponse:
        s = self.settings
        client = request.remote or ""
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        if self._streams[client] >= s.max_streams_per_client:
            err = _refusal(ResourceExhaustedError(
                f"this client has {s.max_streams_per_client} streams open, the most one client may"))
            return await _end_stream(request, response, err)
        self._streams[client] += 1
        try:
            try:
                _check_headers(request.headers, "Connect-Content-Encoding")
                timeout = _timeout(request.headers, None, s.max_stream_timeout_s)
                body = await _read_body(request, (s.max_json_bytes if as_json else s.max_body_bytes) + 5)
                payload = _decode(method, _unenvelope(body), as_json)
            except _Refused as err:
                return await _end_stream(request, response, err)
            await response.prepare(request)
            call = self._channel.unary_stream(method.path)(payload, metadata=_metadata(request), timeout=timeout)
            try:
                async for reply in call:
                    await response.write(envelope(0, _encode(method, reply, as_json)))
            except grpc.aio.AioRpcError as exc:
                return await _end_stream(request, response, _from_grpc(exc))
            finally:
                call.cancel()  # a no-op once the call ended; the king's stream ends when the client went away
            return await _end_stream(request, response, None)
        finally:
            self._streams[client] -= 1
            if self._streams[client] <= 0:
                del self._streams[client]

    # ------------------------------------------------------------------ static files
    async def _static(self, path: str) -> web.Response:
        root = self.settings.root
        is_asset = path.startswith("/assets/")
        found = None if path in ("/", "/index.html") else _inside(root, path)
        if found is not None:
            return await _file(found, ASSET_CACHE if is_asset else PAGE_CACHE)
        if is_asset:
            return web.Response(status=404, text="not found\n", headers={"Cache-Control": "no-store"})
        index = root / "index.html"
        if not index.is_file():
            return web.Response(status=503, text=NOT_BUILT, headers={"Cache-Control": "no-store"})
        return await _file(index, PAGE_CACHE)


def _inside(root: Path, path: str) -> Path | None:
    """The file at ``path`` under ``root``, or None: no empty, dot or hidden segment, no backslash or NUL, and the
    real path (symlinks followed) inside ``root``."""
    if "\\" in path or "\x00" in path:
        return None
    parts = path.split("/")[1:]
    if not parts or any(not p or p.startswith(".") for p in parts):
        return None
    try:
        real_root = root.resolve()
        candidate = root.joinpath(*parts).resolve()
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(real_root) or not candidate.is_file():
        return None
    return candidate


async def _file(path: Path, cache: str) -> web.Response:
    data = await asyncio.to_thread(path.read_bytes)
    ctype = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return web.Response(body=data, headers={"Content-Type": ctype, "Cache-Control": cache})


async def _secure(request: web.Request, response: web.StreamResponse) -> None:
    """Every response (aiohttp's own errors too) carries the security headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _error_response(err: _Refused) -> web.Response:
    return web.json_response(_error_body(err), status=err.http_status)


async def _end_stream(request: web.Request, response: web.StreamResponse, err: _Refused | None) -> web.StreamResponse:
    """Ends a stream with Connect's end-of-stream message (``{}``, or ``{"error": …}``), preparing the response
    first when no message was sent yet."""
    if not response.prepared:
        await response.prepare(request)
    end: dict[str, Any] = {} if err is None else {"error": _error_body(err)}
    await response.write(envelope(_END_STREAM, json.dumps(end).encode()))
    await response.write_eof()
    return response


def local_socket(cfg: Config) -> Path:
    """Where the king's gRPC server listens for its own web listener: ``<home>/king/local/grpc.sock``, the folder
    made (again) 0700. A home whose path is too long for a Unix socket gets a fresh 0700 folder under the system's
    temporary directory instead."""
    import tempfile

    folder = cfg.path("king", "local")
    if len(str(folder / "grpc.sock")) > 100:  # sun_path holds 108 bytes
        folder = Path(tempfile.mkdtemp(prefix="blendr-king-"))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    sock = folder / "grpc.sock"
    sock.unlink(missing_ok=True)  # left by a king that did not stop cleanly
    return sock


async def start_web(cfg: Config, socket_path: Path,
                    channel_factory: Callable[[Config, str], grpc.aio.Channel] = open_local_channel) -> WebServer:
    """Starts the web listener of ``cfg`` forwarding to the gRPC server on ``socket_path``.

    Raises:
        ConfigError: ``king.web_listen`` cannot be bound.
        TLSError: TLS is on and the certificate cannot be loaded.
    """
    settings = WebSettings.of(cfg)
    server = WebServer(settings, channel_factory(cfg, str(socket_path)))
    try:
        await server.start()
    except BaseException:
        await server._channel.close()
        raise
    log.info("web listener serving", url=server.url(), root=str(settings.root), tls=server.tls)
    return server
