"""gRPC server and channel construction with the settings every BlendrChain node shares.

Servers get bounded message sizes, keepalive, the standard health service, TLS unless it is
explicitly turned off, and :class:`~blendr.rpc.interceptor.ErrorInterceptor` in front of every service
(servicers raise :class:`~blendr.errors.BlendrError`; it answers with the mapped status). Channels get the
same bounds and keepalive, and callers pass a deadline on every call (``RPCConfig.call_timeout_s``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from blendr.config import Config, RPCConfig
from blendr.errors import ConfigError, TLSError
from blendr.rpc.interceptor import ErrorInterceptor


def _options(rpc: RPCConfig, *, server: bool) -> list[tuple[str, Any]]:
    opts: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", rpc.max_message_bytes),
        ("grpc.max_receive_message_length", rpc.max_message_bytes),
        ("grpc.keepalive_time_ms", int(rpc.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(rpc.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if server:
        # Accept client pings as often as clients are configured to send them.
        opts.append(("grpc.http2.min_ping_interval_without_data_ms", int(rpc.keepalive_time_s * 1000 / 2)))
    return opts


@dataclass
class ServerHandle:
    """A started server, its bound port and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: Any
    tls: bool
    probe: grpc.aio.Server | None = None  # the plaintext health listener (rpc.health_listen), when set
    probe_port: int | None = None

    async def stop(self, grace: float) -> None:
        """Mark every service NOT_SERVING, then stop, letting calls finish for ``grace`` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.probe is not None:
            await self.probe.stop(0)


def server_cert_files(cfg: Config) -> tuple[Path, Path] | None:
    """The server's certificate and key files (``rpc.cert_file``/``rpc.key_file``, else the devnet CA's node
    certificate, issued when needed); None when TLS is off.

    Raises:
        ConfigError: only one of the two settings is set.
        TLSError: the devnet TLS material cannot be made.
    """
    if not cfg.rpc.tls:
        return None
    from blendr.rpc import tls

    if cfg.rpc.cert_file or cfg.rpc.key_file:
        if not (cfg.rpc.cert_file and cfg.rpc.key_file):
            raise ConfigError("config rpc.cert_file and rpc.key_file must be set together")
        return Path(cfg.rpc.cert_file), Path(cfg.rpc.key_file)
    files = tls.devnet_tls(cfg.home, cfg.rpc.hostnames)
    assert files.cert is not None and files.key is not None
    return files.cert, files.key


def server_credentials(cfg: Config) -> grpc.ServerCredentials | None:
    """TLS credentials for a server from config, generating the devnet CA and a node cert when needed."""
    files = server_cert_files(cfg)
    if files is None:
        return None
    from blendr.rpc import tls

    return tls.load_server_credentials(*files)


def trust_anchor(cfg: Config) -> Path:
    """The CA file a client uses: ``rpc.ca_file``, else ``<home>/tls/ca.crt``.

    Raises:
        TLSError: no CA file is configured or present.
    """
    path = Path(cfg.rpc.ca_file).expanduser() if cfg.rpc.ca_file else cfg.path("tls", "ca.crt")
    if not path.is_file():
        raise TLSError(
            f"no CA certificate at {path}: pass --ca-file with the queen's <home>/tls/ca.crt "
            "(or --insecure for a plaintext devnet)"
        )
    return path


def channel_credentials(cfg: Config, ca_file: str = "") -> grpc.ChannelCredentials | None:
    """Client TLS credentials from config (None when TLS is off); ``ca_file`` overrides the trust anchor."""
    if not cfg.rpc.tls:
        return None
    from blendr.rpc import tls

    if ca_file:
        path = Path(ca_file).expanduser()
        if not path.is_file():
            raise TLSError(f"no CA certificate at {path}")
        return tls.load_channel_credentials(path)
    return tls.load_channel_credentials(trust_anchor(cfg))


async def start_health_listener(listen: str, servicer: Any) -> tuple[grpc.aio.Server, int]:
    """A plaintext listener that serves only ``grpc.health.v1.Health`` from ``servicer`` (``rpc.health_listen``).

    Kubernetes' native ``grpc`` probes cannot speak TLS; this lets them ask a node that serves everything else
    over TLS. It answers nothing but health, and reports exactly what the node's own health service does (the same
    servicer object), so a probe sees NOT_SERVING as soon as the node begins to shut down.

    Raises:
        ConfigError: the address cannot be bound.
    """
    probe = grpc.aio.server(options=[("grpc.max_receive_message_length", 4096), ("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, probe)
    try:
        port = probe.add_insecure_port(listen)
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {listen} (rpc.health_listen): {exc}") from None
    if port == 0:
        raise ConfigError(f"cannot listen on {listen} (rpc.health_listen): address in use or invalid")
    await probe.start()
    return probe, port


async def start_health_only(cfg: Config) -> ServerHandle | None:
    """For a node without a gRPC server of its own (the provider agent): its health service on
    ``rpc.health_listen`` alone, SERVING from now until :meth:`ServerHandle.stop`. None when the setting is empty."""
    if not cfg.rpc.health_listen:
        return None
    servicer = health.aio.HealthServicer()
    probe, port = await start_health_listener(cfg.rpc.health_listen, servicer)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return ServerHandle(server=probe, port=port, health=servicer, tls=False)


async def start_server(
    cfg: Config,
    listen: str,
    register: Sequence[Any],
    *,
    service_names: Sequence[str],
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    health_listen: str = "",
    local_socket: str = "",
) -> ServerHandle:
    """Build, bind and start a ``grpc.aio`` server.

    Args:
        cfg: The node config (TLS, sizes, keepalive).
        listen: ``HOST:PORT``; port 0 binds a free port (returned in the handle).
        register: Callables ``f(server)`` that add servicers.
        service_names: Fully qualified service names reported SERVING by the health service.
        interceptors: Further interceptors, run inside the :class:`ErrorInterceptor` that every server gets
            (so errors raised by the behaviours they wrap are mapped like the servicers' own).
        health_listen: ``HOST:PORT`` of a plaintext listener serving only this server's health service
            (:func:`start_health_listener`); empty: none.
        local_socket: The path of a Unix socket on which the same server also listens, without TLS, for this
            process's own clients (the king's web listener forwards through it); the caller keeps it in a
            directory only this user may enter. Empty: none.

    Raises:
        ConfigError: the address cannot be bound.
        TLSError: TLS material is missing or invalid.
    """
    server = grpc.aio.server(options=_options(cfg.rpc, server=True),
                             interceptors=[ErrorInterceptor(), *interceptors])
    for add in register:
        add(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    creds = server_credentials(cfg)
    try:
        port = server.add_secure_port(listen, creds) if creds else server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc}") from None
    if port == 0:
        raise ConfigError(f"cannot listen on {listen}: address in use or invalid")
    try:
        if local_socket and server.add_insecure_port(f"unix:{local_socket}") == 0:
            raise RuntimeError("address in use or invalid")
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on the local socket {local_socket}: {exc}") from None
    await server.start()
    probe, probe_port = None, None
    if health_listen:
        try:
            probe, probe_port = await start_health_listener(health_listen, health_servicer)
        except ConfigError:
            await server.stop(0)
            raise
    for name in (*service_names, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return ServerHandle(server=server, port=port, health=health_servicer, tls=creds is not None, probe=probe,
                        probe_port=probe_port)


def open_channel(cfg: Config, target: str, *, ca_file: str = "", tls_name: str = "") -> grpc.aio.Channel:
    """A channel to ``target`` (``HOST:PORT``) with TLS per config, bounded sizes and keepalive.

    ``ca_file`` trusts that CA instead of ``rpc.ca_file`` (a queen's king has its own CA). ``tls_name``: the name
    the server's certificate must carry, when it is not the target's host (kings that reach each other at their pod
    addresses and share one certificate issued for their Service's name).
    """
    creds = channel_credentials(cfg, ca_file)
    opts = _options(cfg.rpc, server=False)
    if creds is None:
        return grpc.aio.insecure_channel(target, options=opts)
    if tls_name:
        opts.append(("grpc.ssl_target_name_override", tls_name))
    return grpc.aio.secure_channel(target, creds, options=opts)


def open_local_channel(cfg: Config, socket_path: str) -> grpc.aio.Channel:
    """A channel to this process's own server on its Unix socket (``start_server(local_socket=…)``): no TLS (the
    socket's directory admits only this user), the same bounded sizes and keepalive as every channel."""
    return grpc.aio.insecure_channel(f"unix:{socket_path}", options=_options(cfg.rpc, server=False))
