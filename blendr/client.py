"""The renter SDK: everything ``blendr job …`` does, for scripts.

    async with KingClient("king:7480", account, ca_file="king-ca.crt") as king:
        job = await king.submit(JobRequest(gpus=1, gpu_model="h100-sxm", hours=2, max_price="3.5",
                                           workdir=Path("proj"), entrypoint="python train.py"))
        async for ev in king.watch(job.job_id):
            print(ev.kind, ev.message)

``submit`` does the renter's part of a job: it asks for a quote, checks the candidate providers' keys
against their addresses, encrypts the payload (entrypoint, environment, working directory) under a fresh key
wrapped to each candidate, signs rental intents that leave the provider to the king (the first and spares to
move the job if a provider dies) and a permit for the escrow, and submits, idempotently (a retried submit
with the same request id answers the same job). The session is renewed by signing in again when it expires.
Errors raise :class:`RenterError` subclasses with a message that says what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from blendr import jobspec
from blendr.errors import BlendrError, InvalidArgumentError
from blendr.jobspec import Spec
from blendr.units import fmt_tokens, parse_tokens


class RenterError(BlendrError):
    """Raised by the SDK when the king refuses a call or cannot be reached; ``code`` is the gRPC status."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class KingUnreachableError(RenterError):
    """Raised when the king does not answer (down, wrong address, TLS mismatch)."""


class NoProviderError(RenterError):
    """Raised when no provider can take the job now; ``closest`` lists the nearest offers."""

    def __init__(self, message: str, closest: Sequence[Any] = ()) -> None:
        super().__init__(message, grpc.StatusCode.FAILED_PRECONDITION)
        self.closest = list(closest)


@dataclass
class JobRequest:
    """A job as a renter describes it (prices in GPUTOKEN per GPU-hour)."""

    entrypoint: str
    gpus: int = 1
    hours: float = 1.0
    max_price: str = "1"
    gpu_model: str = ""
    min_vram_gb: float = 0.0
    min_tflops: float = 0.0
    workdir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    # Extra pip requirements installed for the job on the provider (``numpy==2.1``, ``./mypkg`` relative to the
    # working directory), besides a requirements.txt at the top of ``workdir``.
    pip: list[str] = field(default_factory=list)
    name: str = ""
    request_id: str = ""
    spare_intents: int = -1  # -1: as many as the king accepts
    # The longest the job may wait for a provider, in seconds (0: the king's default, an hour unless its operator
    # says otherwise); not placed by then, it ends failed with the reason and its escrow untouched.
    max_wait_s: float = 0.0
    # What pays the escrow: "tokens" (GPUTOKEN, with a permit the SDK signs) or "vouchers" (the renter's
    # ComputeVoucher GPU-hours of the job's GPU model; the job then runs at the class price, which must be at most
    # max_price, for whole GPU-hours).
    pay: str = "tokens"

    def spec(self) -> Spec:
        if self.hours <= 0:
            raise RenterError("hours must be positive", grpc.StatusCode.INVALID_ARGUMENT)
        try:
            price = parse_tokens(self.max_price, "max price")
        except BlendrError as exc:
            raise RenterError(str(exc), grpc.StatusCode.INVALID_ARGUMENT) from None
        return Spec(gpus=self.gpus, duration_s=round(self.hours * 3600), max_price_per_gpu_hour=price,
                    gpu_model=self.gpu_model, min_vram_bytes=int(self.min_vram_gb * 2**30), min_tflops=self.min_tflops)


@dataclass(frozen=True)
class Pins:
    """What the renter knows independently of the king (its config): the SDK refuses a king that says otherwise.

    Without pins the SDK trusts the king for the chain and contract addresses it signs for (fine on a devnet);
    on a real network pin them, so a rogue king cannot get a permit for its own address or relay another
    king's sign-in challenge.
    """

    king: str = ""  # the king's address, as its sign-in challenge names it
    chain_id: int = 0
    rental_contract: str = ""
    token_contract: str = ""

    def check(self, what: str, chain_id: int, rental: str, token: str) -> None:
        bad = []
        if self.chain_id and chain_id != self.chain_id:
            bad.append(f"chain {chain_id} (expected {self.chain_id})")
        if self.rental_contract and rental.lower() != self.rental_contract.lower():
            bad.append(f"GPURental {rental} (expected {self.rental_contract})")
        if self.token_contract and token.lower() != self.token_contract.lower():
            bad.append(f"GPUTOKEN {token} (expected {self.token_contract})")
        if bad:
            raise RenterError(f"the king's {what} names {', '.join(bad)}: refusing to sign for it "
                              "(check [renter] in your config)", grpc.StatusCode.PERMISSION_DENIED)


@dataclass(frozen=True)
class Event:
    job_id: str
    seq: int
    kind: str
    ts: float
    message: str
    progress: float
    job: Any  # renter_pb2.Job (as it is now)
    state: str = ""  # the job's state right after this event: queued, scheduled, running, ended, settled, ...


WATCH_ATTEMPTS = 6  # tries to (re)open a job's event stream before giving up


def _reconnectable(exc: BaseException) -> bool:
    """Whether a broken event stream is worth opening again: the king was unreachable or the session expired."""
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (grpc.StatusCode.UNAVAILABLE,
                                                                    grpc.StatusCode.UNAUTHENTICATED)


def _rpc_error(exc: grpc.aio.AioRpcError, target: str) -> RenterError:
    code = exc.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return KingUnreachableError(f"the king at {target} is unreachable ({code.name}): is it running, is the "
                                    "address right, and with TLS, is --ca-file the king's CA?", code)
    return RenterError(exc.details() or code.name, code)


class KingClient:
    """A renter's connection to one king (async; use ``async with``)."""

    def __init__(self, target: str, account: Any, *, ca_file: str | Path | None = None, insecure: bool = False,
                 timeout_s: float = 30.0, pins: Pins | None = None) -> None:
        self.target = target
        self.account = account
        self.timeout_s = timeout_s
        self.pins = pins or Pins()
        self.targets = [t.strip() for t in target.split(",") if t.strip()] or [target]
        opts = [("grpc.max_receive_message_length", 32 * 2**20), ("grpc.max_send_message_length", 32 * 2**20)]
        creds = None
        if not insecure:
            if ca_file is None:
                raise RenterError("pass the king's CA certificate (--ca-file), or --insecure for a plaintext devnet")
            try:
                root = Path(ca_file).expanduser().read_bytes()
            except OSError as exc:
                raise RenterError(f"cannot read the king's CA certificate {ca_file}: {exc.strerror}") from None
            creds = grpc.ssl_channel_credentials(root_certificates=root)
        from protos.blendr.v1 import renter_pb2_grpc

        self._channels = [grpc.aio.insecure_channel(t, options=opts) if creds is None
                          else grpc.aio.secure_channel(t, creds, options=opts) for t in self.targets]
        self._stubs = [renter_pb2_grpc.RenterGatewayStub(ch) for ch in self._channels]
        self._i = 0  # the king in use (several: kings sharing one store, each tried in turn when one is unreachable)
        self._token = ""
        self._expires = 0.0

    async def __aenter__(self) -> KingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for ch in self._channels:
            await ch.close()

    @property
    def _stub(self) -> Any:
        return self._stubs[self._i]

    @property
    def _target(self) -> str:
        return self.targets[self._i]

    def _failover(self) -> None:
        """The king in use is unreachable: use the next one (several kings: king.ha)."""
        self._i = (self._i + 1) % len(self.targets)

    # ------------------------------------------------------------------ calls
    async def sign_in(self) -> str:
        """Signs in with the wallet key; returns the session token (kept for later calls)."""
        from eth_account.messages import encode_defunct

        from protos.blendr.v1 import renter_pb2 as rpb

        for left in range(len(self.targets) - 1, -1, -1):
            try:
                c = await self._stub.GetSignInChallenge(rpb.SignInChallengeRequest(address=self.account.address),
                                                        timeout=self.timeout_s)
                self._check_challenge(c.message)
                sig = bytes(self.account.sign_message(encode_defunct(text=c.message)).signature)
                s = await self._stub.SignIn(rpb.SignInRequest(challenge_id=c.challenge_id,
                                                              address=self.account.address, signature=sig),
                                            timeout=self.timeout_s)
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or not left:
                    raise _rpc_error(exc, self._target) from None
                self._failover()  # several kings: sign in at the next one
        self._token, self._expires = s.token, s.expires_unix
        return str(s.token)

    def _check_challenge(self, text: str) -> None:
        """Signs only an EIP-4361 sign-in to BlendrChain (its statement) for this renter, naming one king (and,
        when pinned, this king and chain). Raises RenterError (PERMISSION_DENIED) for anything else."""
        from blendr.siwe import KING_RESOURCE, STATEMENT, parse_message

        try:
            m = parse_message(text)
        except InvalidArgumentError:
            m = None
        kings = [] if m is None else [r[len(KING_RESOURCE):].lower() for r in m.resources
                                      if r.startswith(KING_RESOURCE)]
        ok = (m is not None and m.statement == STATEMENT and m.address == self.account.address
              and len(kings) == 1 and m.request_id != "")
        if ok and self.pins.king and kings[0] != self.pins.king.lower():
            ok = False
        if ok and m is not None and self.pins.chain_id and m.chain_id != self.pins.chain_id:
            ok = False
        if not ok:
            raise RenterError("the king's sign-in challenge is not a sign-in to this king for this wallet: "
                              "refusing to sign it", grpc.StatusCode.PERMISSION_DENIED)

    async def _call(self, name: str, request: Any, *, auth: bool = True) -> Any:
        if auth and (not self._token or self._expires < time.time() + 30):
            await self.sign_in()
        # Several kings: an unreachable one (or one whose leader is changing) is left for the next, a few rounds
        # over all of them with growing waits; requests are idempotent (a job's request id, a cancel), so a call
        # that reached a king before it died is not done twice.
        tries = 1 if len(self.targets) == 1 else 3 * len(self.targets)
        reauthed = False
        attempt = 0
        while True:
            md = (("authorization", f"Bearer {self._token}"),) if auth else ()
            try:
                return await getattr(self._stub, name)(request, metadata=md, timeout=self.timeout_s)
            except grpc.aio.AioRpcError as exc:
                if auth and not reauthed and exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    reauthed = True
                    await self.sign_in()  # the session expired or the king forgot it: sign in again, once
                    continue
                attempt += 1
                # a king that does not answer in time (paused, overloaded) is left for the next one too
                moving = exc.code() == grpc.StatusCode.UNAVAILABLE or (
                    exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and len(self.targets) > 1)
                if not moving or attempt >= tries:
                    raise _rpc_error(exc, self._target) from None
                self._failover()
                if attempt % len(self.targets) == 0:
                    await asyncio.sleep(min(4.0, 0.5 * 2 ** (attempt // len(self.targets))))

    async def quote(self, spec: Spec) -> Any:
        from protos.blendr.v1 import renter_pb2 as rpb

        return await self._call("GetQuote", rpb.QuoteRequest(spec=_spec_pb(spec)))

    async def wallet(self) -> Any:
        from protos.blendr.v1 import renter_pb2 as rpb

        return await self._call("GetWallet", rpb.GetWalletRequest())

    async def offers(self) -> list[Any]:
        from protos.blendr.v1 import renter_pb2 as rpb

        return list((await self._call("ListOffers", rpb.ListOffersRequest(), auth=False)).offers)

    async def proposals(self, states: list[str] | None = None, limit: int = 0) -> list[Any]:
        """Governance proposals as the king follows them, newest first (no sign-in needed). ``states``: names
        such as ``"active"`` or ``"executed"`` (default: all); ``limit``: at most this many (0: 50)."""
        from protos.blendr.v1 import renter_pb2 as rpb

        pb_states = [rpb.ProposalState.Value(f"PROPOSAL_STATE_{s.upper()}") for s in (states or [])]
        req = rpb.ListProposalsRequest(states=pb_states, limit=limit)  # type: ignore[arg-type]
        return list((await self._call("ListProposals", req, auth=False)).proposals)

    async def proposal(self, proposal_id: int | str) -> Any:
        """One governance proposal, its tallies and its calls in plain words (NOT_FOUND: no such proposal)."""
        from protos.blendr.v1 import renter_pb2 as rpb

        return await self._call("GetProposal", rpb.GetProposalRequest(proposal_id=str(proposal_id)), auth=False)

    async def get(self, job_id: str) -> Any:
        from protos.blendr.v1 import renter_pb2 as rpb

        return await self._call("GetJob", rpb.GetJobRequest(job_id=job_id))

    async def get_output(self, job_id: str, dest: str | Path) -> int:
        """Fetches the job's outputs, decrypts them with this wallet's key and unpacks them into ``dest`` (absent
        or an empty directory) as they arrive; returns the number of files. The download is opened and unpacked
        in a worker thread through a bounded pipe (:class:`~blendr.outputs.ChunkPipe`: never whole in memory,
        nothing spooled to disk); if it breaks or does not open, ``dest`` is left as it was found.

        Raises:
            RenterError: the king refused (NOT_FOUND: no such job of this wallet, or its outputs expired;
                FAILED_PRECONDITION: not arrived yet, or failed, with why), or the outputs do not open or hold an
                unsafe entry (INVALID_ARGUMENT; nothing is left in ``dest``).
        """
        from blendr.outputs import ChunkPipe, OutputError, output_aad, unpack_outputs
        from protos.blendr.v1 import renter_pb2 as rpb

        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise RenterError(f"{dest} exists and is not an empty directory", grpc.StatusCode.INVALID_ARGUMENT)
        if not self._token or self._expires < time.time() + 30:
            await self.sign_in()
        dest.parent.mkdir(parents=True, exist_ok=True)
        pipe = ChunkPipe()
        key = bytes(self.account.key)

        def unpack(attempt: int) -> int:
            try:
                return unpack_outputs(pipe, key, output_aad(job_id, attempt), dest)
            finally:
                pipe.close()  # the feeder stops waiting for room

        unpacking: asyncio.Future[int] | None = None
        call = self._stub.GetJobOutput(rpb.GetJobOutputRequest(job_id=job_id),
                                       metadata=(("authorization", f"Bearer {self._token}"),),
                                       timeout=max(self.timeout_s, 3600.0))
        broke = ""
        try:
            try:
                async for chunk in call:
                    if unpacking is None:
                        unpacking = asyncio.ensure_future(asyncio.to_thread(unpack, int(chunk.attempt)))
                    if pipe.full():
                        await asyncio.to_thread(pipe.wait_room)
                    if pipe.closed:  # the unpacking stopped (it failed): no use reading on
                        call.cancel()
                        break
                    pipe.feed(chunk.data)
            except grpc.aio.AioRpcError as exc:
                broke = f"{exc.code().name}: {exc.details()}"
                if unpacking is None:
                    raise _rpc_error(exc, self._target) from None
                pipe.end(broke)
                with contextlib.suppress(OutputError):
                    await unpacking
                raise _rpc_error(exc, self._target) from None
            pipe.end()
            if unpacking is None:
                raise RenterError(f"the king sent no outputs of job {job_id}", grpc.StatusCode.UNAVAILABLE)
            try:
                return await unpacking
            except OutputError as exc:
                raise RenterError(f"the job's outputs cannot be used: {exc}", grpc.StatusCode.INVALID_ARGUMENT) \
                    from None
        except BaseException:
            pipe.end("the download was stopped")
            call.cancel()
            if unpacking is not None and not unpacking.done():
                # the worker raises on the ended pipe and clears dest; wait for it so dest is settled
                with contextlib.suppress(BaseException):
                    await asyncio.shield(unpacking)
            raise

    async def cancel(self, job_id: str, reason: str = "") -> Any:
        from protos.blendr.v1 import renter_pb2 as rpb

        return await self._call("CancelJob", rpb.CancelJobRequest(job_id=job_id, reason=reason))

    async def list(self, states: Sequence[str] = (), limit: int = 50) -> list[Any]:
        from protos.blendr.v1 import renter_pb2 as rpb

        pbs = [getattr(rpb, f"JOB_STATE_{s.upper()}") for s in states]
        return list((await self._call("ListJobs", rpb.ListJobsRequest(states=pbs, limit=limit))).jobs)

    async def watch(self, job_id: str, after_seq: int = 0) -> AsyncIterator[Event]:
        """Every event of the job after ``after_seq`` until its last; reconnects (from the last seq) if the
        stream breaks.

        Raises:
            RenterError: the king refused the watch, or stayed unreachable through ``WATCH_ATTEMPTS``
                reconnects with no event in between.
        """
        from protos.blendr.v1 import renter_pb2 as rpb

        seq = after_seq
        while True:
            call, ev = await self._open_watch(job_id, seq)
            try:
                while ev is not grpc.aio.EOF:
                    seq = ev.seq
                    yield Event(ev.job_id, ev.seq, rpb.JobEventKind.Name(ev.kind)[len("JOB_EVENT_KIND_"):].lower(),
                                ev.ts_unix, ev.message, ev.progress, ev.job,
                                rpb.JobState.Name(ev.state or ev.job.state)[len("JOB_STATE_"):].lower())
                    ev = await call.read()
                return
            except grpc.aio.AioRpcError as exc:
                if not _reconnectable(exc):
                    raise _rpc_error(exc, self._target) from None
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                    self._token = ""
                # the stream broke after delivering events: reconnect from ``seq`` with a fresh budget
            finally:
                call.cancel()  # a watcher that stops early ends the stream on the king too

    async def _open_watch(self, job_id: str, seq: int) -> tuple[Any, Any]:
        """Opens WatchJob after ``seq`` and reads its first message (``grpc.aio.EOF`` if none), retrying an
        unreachable king or an expired session with bounded, jittered exponential waits."""
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        from protos.blendr.v1 import renter_pb2 as rpb

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(WATCH_ATTEMPTS),
                wait=wait_exponential_jitter(initial=1.0, max=10.0, jitter=0.5),
                retry=retry_if_exception(_reconnectable),
                reraise=True,
            ):
                with attempt:
                    if attempt.retry_state.attempt_number > 1 and len(self.targets) > 1:
                        self._failover()  # the king watched (or the last one tried) is unreachable: the next one
                    if not self._token or self._expires < time.time() + 30:
                        await self.sign_in()
                    md = (("authorization", f"Bearer {self._token}"),)
                    call = self._stub.WatchJob(rpb.WatchJobRequest(job_id=job_id, after_seq=seq), metadata=md)
                    try:
                        return call, await call.read()
                    except grpc.aio.AioRpcError as exc:
                        call.cancel()
                        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                            self._token = ""  # sign in again on the next attempt
                        raise
        except grpc.aio.AioRpcError as exc:
            raise _rpc_error(exc, self._target) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def submit(self, req: JobRequest) -> Any:
        """Quotes, encrypts, signs and submits ``req``; returns the job (``renter_pb2.Job``).

        Raises:
            NoProviderError: nothing can run the job now at that price (``closest`` has the nearest offers).
            RenterError: the king refused the job (bad spec, balance, size limit, ...), with its reason.
        """
        return await self.send(await self.prepare(req))

    async def send(self, sub: Any) -> Any:
        """Submits a prepared ``SubmitJobRequest`` (again, for an idempotent retry)."""
        return await self._call("SubmitJob", sub)

    async def prepare(self, req: JobRequest, *, max_payload_bytes: int = 8 * 2**20) -> Any:
        """The signed, encrypted ``SubmitJobRequest`` for ``req`` (see :meth:`submit`)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        from eth_utils import is_address

        from blendr.chain.contracts import RentalIntent, candidates_root
        from blendr.payload import JobPayload, address_of_public_key, pack_workdir, public_key_of, seal
        from protos.blendr.v1 import renter_pb2 as rpb

        spec = req.spec()
        try:
            jobspec.validate(spec)
            tar = pack_workdir(req.workdir, max_bytes=max_payload_bytes) if req.workdir is not None else b""
            # outputs come back sealed to this wallet's key (inside the sealed payload: no one on the way can swap it)
            payload = JobPayload(req.entrypoint, dict(req.env), tar, pip=tuple(req.pip),
                                 output_key=public_key_of(bytes(self.account.key))).encode()
        except BlendrError as exc:
            raise RenterError(str(exc), grpc.StatusCode.INVALID_ARGUMENT) from None
        if not 0 <= req.max_wait_s < 2**32:
            raise RenterError("max wait must be 0 (the king's default) or a positive number of seconds",
                              grpc.StatusCode.INVALID_ARGUMENT)
        voucher_id = 0
        if req.pay == "vouchers":
            voucher_id, spec = await _pick_voucher_class(self, spec)
        elif req.pay != "tokens":
            raise RenterError(f"pay with 'tokens' or 'vouchers', not {req.pay!r}", grpc.StatusCode.INVALID_ARGUMENT)
        q = await self.quote(spec)
        self.pins.check("quote", int(q.chain_id), q.rental_contract, q.token_contract)
        if not q.candidates:
            raise NoProviderError(q.reason or "no provider can take this job now", q.closest)
        request_id = req.request_id or "r-" + secrets.token_hex(12)
        aad = request_id.encode()
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        ciphertext = nonce + AESGCM(key).encrypt(nonce, payload, aad)
        keys = []
        for c in q.candidates:
            # The renter checks each key against its provider's address: the king cannot slip its own key in
            # under a real provider's name.
            if len(c.public_key) != 64 or address_of_public_key(bytes(c.public_key)).lower() != c.provider.lower():
                continue
            keys.append(rpb.WrappedKey(provider=c.provider, sealed_key=seal(key, bytes(c.public_key), aad=aad)))
        if not keys:
            raise NoProviderError("no candidate provider has a valid public key")
        # The intents bind the king (only it may place them or cancel their rentals) and the providers the key
        # is wrapped for (the king may place the job on no other).
        if not is_address(q.scheduler):
            raise RenterError("the king named no valid scheduler address in its quote: refusing to sign",
                              grpc.StatusCode.FAILED_PRECONDITION)
        root = candidates_root([k.provider for k in keys])
        sh = jobspec.spec_hash(spec, ciphertext)
        n = q.intents if req.spare_intents < 0 else min(q.intents, 1 + req.spare_intents)
        deadline = min(int(time.time()) + 86400, int(q.max_intent_deadline))
        intents = []
        for _ in range(max(1, n)):
            nonce_int = int.from_bytes(os.urandom(32), "big")
            it = RentalIntent(self.account.address, jobspec.ZERO_ADDRESS, spec.gpus, sh, spec.max_price_per_gpu_hour,
                              spec.duration_s, nonce_int, deadline, root, q.scheduler)
            sig = (it.sign_vouchers(self.account, q.chain_id, q.rental_contract, voucher_id) if voucher_id
                   else it.sign(self.account, q.chain_id, q.rental_contract))
            intents.append(rpb.SignedIntent(nonce=nonce_int.to_bytes(32, "big"), deadline=deadline, signature=sig))
        w = await self.wallet()
        self.pins.check("wallet", int(w.chain_id), w.rental_contract, w.token_contract)
        if (w.rental_contract.lower(), w.token_contract.lower()) != (q.rental_contract.lower(), q.token_contract.lower()):
            raise RenterError("the king named different contracts in its quote and wallet: refusing to sign",
                              grpc.StatusCode.PERMISSION_DENIED)
        need = int(q.max_escrow) * len(intents)
        permit = None
        if voucher_id:
            return rpb.SubmitJobRequest(request_id=request_id, spec=_spec_pb(spec), name=req.name, spec_hash=sh,
                                        intents=intents, payload=rpb.EncryptedPayload(ciphertext=ciphertext, keys=keys),
                                        max_wait_s=math.ceil(req.max_wait_s), voucher_id=voucher_id)
        if int(w.allowance) < need:
            value = int(w.allowance) + need
            v, r, s = _permit(self.account, w, value, deadline)
            permit = rpb.Permit(value=str(value), deadline=deadline, v=v, r=r, s=s)
        if int(w.balance) < int(q.max_escrow):
            raise RenterError(f"insufficient balance: you hold {fmt_tokens(int(w.balance))} GPUTOKEN and this job "
                              f"can lock up to {fmt_tokens(int(q.max_escrow))} in escrow",
                              grpc.StatusCode.FAILED_PRECONDITION)
        return rpb.SubmitJobRequest(request_id=request_id, spec=_spec_pb(spec), name=req.name, spec_hash=sh,
                                    intents=intents, permit=permit,
                                    payload=rpb.EncryptedPayload(ciphertext=ciphertext, keys=keys),
                                    max_wait_s=math.ceil(req.max_wait_s))


async def _pick_voucher_class(king: KingClient, spec: Spec) -> tuple[int, Spec]:
    """The voucher class that pays ``spec`` (its model, enough GPU-hours, priced at most the spec's max price) and
    the spec at that class's price. Raises RenterError when none can."""
    if not spec.gpu_model:
        raise RenterError("a job paid with vouchers names its GPU model (--gpu-model): vouchers are per model",
                          grpc.StatusCode.INVALID_ARGUMENT)
    if (spec.gpus * spec.duration_s) % 3600:
        raise RenterError("vouchers are whole GPU-hours: make GPUs x hours a whole number",
                          grpc.StatusCode.INVALID_ARGUMENT)
    need = spec.gpus * spec.duration_s // 3600
    w = await king.wallet()
    held = [v for v in w.vouchers if v.gpu_model == spec.gpu_model]
    usable = [v for v in held if v.hours >= need and int(v.price_per_gpu_hour) <= spec.max_price_per_gpu_hour]
    if not usable:
        have = ", ".join(f"{v.hours} h of class {v.id} at {fmt_tokens(int(v.price_per_gpu_hour))}/h" for v in held)
        raise RenterError(f"no voucher class of {spec.gpu_model} with {need} GPU-hours at most "
                          f"{fmt_tokens(spec.max_price_per_gpu_hour)}/h (you hold: {have or 'none'}); buy some with "
                          f"`blendr vouchers buy --gpu-model {spec.gpu_model} --hours {need}`",
                          grpc.StatusCode.FAILED_PRECONDITION)
    best = min(usable, key=lambda v: (int(v.price_per_gpu_hour), v.id))
    return int(best.id), replace(spec, max_price_per_gpu_hour=int(best.price_per_gpu_hour))


def _spec_pb(spec: Spec) -> Any:
    from protos.blendr.v1 import renter_pb2 as rpb

    return rpb.JobSpec(gpus=spec.gpus, gpu_model=spec.gpu_model, min_vram_bytes=spec.min_vram_bytes,
                       min_tflops=spec.min_tflops, duration_s=spec.duration_s,
                       max_price_per_gpu_hour=str(spec.max_price_per_gpu_hour))


def _permit(account: Any, w: Any, value: int, deadline: int) -> tuple[int, bytes, bytes]:
    """An ERC-2612 permit of GPUTOKEN for GPURental, signed offline from what the king reports."""
    from blendr.chain.contracts import sign_permit

    return sign_permit(account, w.token_name, int(w.chain_id), w.token_contract, w.rental_contract, value,
                       int(w.permit_nonce), deadline)
