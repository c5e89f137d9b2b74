"""The dApp's renter logic (web/src/lib, TypeScript) against the Python client and the king, byte for byte.

The TypeScript is built once into a Node-runnable bundle (web/scripts/xtest.ts with Vite's library mode) and
driven one JSON request per call. Checked: the same text forms (float repr, canonical JSON, token amounts);
a payload the page encrypts opens and unpacks in Python, and what Python seals opens in the page; the same
specHash, candidatesRoot, EIP-712 digests and signatures; a submission the page builds passes the king's own
intake (KingCore over the fake chain); outputs a provider seals open in the page.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account

from blendr import jobspec
from blendr.chain.contracts import RentalIntent, candidates_root, sign_permit
from blendr.errors import InvalidArgumentError
from blendr.jobspec import Spec
from blendr.outputs import output_aad, pack_outputs
from blendr.payload import JobPayload, open_sealed, pack_workdir, public_key_of, seal, unpack
from blendr.proof.fingerprints import FINGERPRINTS
from blendr.store import MemoryStore
from blendr.units import fmt_bytes, fmt_duration, fmt_tokens, parse_tokens
from king import convert
from king.context import JobsConfig
from king.core import KingCore
from king.job import JobState
from king.pricing import Pricer, PricingParams, tokens
from king.rentals import TOKEN_NAME, intent_digest, permit_digest, voucher_intent_digest
from king.scheduler import ProviderOffer, Scheduler
from protos.blendr.v1 import renter_pb2 as rpb
from tests.fakes.queens import FakeClock, FakeQueens
from tests.fakes.rental_chain import CHAIN_ID, RENTAL_ADDRESS, SCHEDULER, TOKEN_ADDRESS, FakeRentalChain

ROOT = Path(__file__).resolve().parents[3]
VITE = ROOT / "node_modules" / ".bin" / "vite"
MODEL = "h100-sxm"


@pytest.fixture(scope="module")
def xtest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle, built once for this module (skipped without Node or the npm packages)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the dApp's cross-language tests need Node 20+")
    if not VITE.exists():
        pytest.skip(f"{VITE} is missing: run `npm ci` at the repository root for the dApp's cross-language tests")
    out = tmp_path_factory.mktemp("xtest")
    env = {**os.environ, "XTEST_OUT": str(out), "VITE_CONFIG_NATIVE_IGNORE_WARNING": "true"}
    done = subprocess.run([str(VITE), "build", "--config", "web/scripts/xtest.vite.config.mts"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "xtest.mjs"


def js(bundle: Path, command: str, request: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(["node", str(bundle), command], input=json.dumps(request), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def keypair() -> tuple[bytes, bytes, str]:
    """(private key, 64-byte public key, address) of a fresh secp256k1 key."""
    acct = Account.create()
    priv = bytes(acct.key)
    return priv, public_key_of(priv), acct.address


# ------------------------------------------------------------------------------------------ text forms
def test_text_forms_are_pythons(xtest: Path) -> None:
    floats = [0.0, -0.0, 1.5, 1e16, 1e15, 9999999999999998.0, 1e-5, 0.0001, 123.456, 0.1, 2.5e-7, 1e22, 5e-324,
              1.7976931348623157e308, 3.0]
    fixed = [[1.125, 2], [0.5, 0], [1.5, 0], [2.5, 0], [1.005, 2], [1.015, 2], [4050 / 3600, 2], [73.25, 1], [0.05, 1]]
    docs: list[Any] = [{"b": 1.0, "a": "é\u2028\u007f\"\\\n\x01", "c": ["x", {"z": "y", "é": 2.5}]}, "😀"]
    wei = ["2500000000000000000", "-100000000000000000", "1", "0", "500000", "1500000", "2500000",
           "123456789123456789123456789"]
    amounts = ["2.5", "1e3", "-1", "-0", "abc", ".5", "5.", "+2", "1E-19", " 3 ", "inf", "NaN", "1.2.3", "0.000000000000000001"]
    durations = [3600, 4050, 5400, 120, 42, 86400 * 30, 59.9]
    sizes = [1536, 12, 2**30 + 2**29, 3 * 2**20, 1024]
    got = js(xtest, "text", {"floats": floats, "fixed": fixed, "docs": docs, "wei": wei, "amounts": amounts,
                             "durations": durations, "sizes": sizes})
    assert got["repr"] == [repr(x) for x in floats]
    assert got["fixed"] == [f"{x:.{p}f}" for x, p in fixed]
    assert got["json"] == [[json.dumps(d, sort_keys=True, separators=(",", ":")),
                            json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False)] for d in docs]
    assert got["tokens"] == [fmt_tokens(int(w)) for w in wei]

    def parsed(a: str) -> str:
        try:
            return str(parse_tokens(a))
        except InvalidArgumentError as exc:
            return f"error: {exc}"

    assert [g.startswith("error") for g in got["parsed"]] == [parsed(a).startswith("error") for a in amounts]
    assert [g for g in got["parsed"] if not g.startswith("error")] == [
        p for p in map(parsed, amounts) if not p.startswith("error")]
    assert got["durations"] == [fmt_duration(d) for d in durations]
    assert got["sizes"] == [fmt_bytes(n) for n in sizes]


# ------------------------------------------------------------------------------------------ payloads
WORKDIR = {
    "train.py": (b"print('hi')\n", 0o644),
    "run.sh": (b"#!/bin/sh\necho run\n", 0o755),
    "data/a.bin": (bytes(range(256)) * 40, 0o644),
    "data/sub/b.txt": (b"b\n", 0o644),
    "data/big.ckpt": (b"x" * 100, 0o644),
    "notes/é-ü.md": ("ünïcode\n".encode(), 0o644),
    "deep/" + "d" * 60 + "/" + "f" * 70 + ".txt": (b"long name\n", 0o644),
    ".git/HEAD": (b"ref: refs/heads/main\n", 0o644),
    "__pycache__/x.pyc": (b"\0", 0o644),
    "pkg/__pycache__/y.pyc": (b"\0", 0o644),
    "logs/1.log": (b"log\n", 0o644),
    "out/keep.txt": (b"k\n", 0o644),
    ".blendrignore": (b"# generated\n*.ckpt\nlogs/\n/out\n", 0o644),
}
EXPECTED = {"train.py", "run.sh", "data/a.bin", "data/sub/b.txt", "notes/é-ü.md",
            "deep/" + "d" * 60 + "/" + "f" * 70 + ".txt", ".blendrignore"}


def _files() -> list[dict[str, Any]]:
    return [{"path": p, "data": d.hex(), "mode": m} for p, (d, m) in WORKDIR.items()]


def _members(tar_gz: bytes) -> list[tuple[str, bool, int, int]]:
    with tarfile.open(fileobj=io.BytesIO(tar_gz), mode="r:gz") as tar:
        return [(m.name, m.isdir(), m.mode, m.size) for m in tar]


def test_workdir_tar_has_pack_workdirs_layout(xtest: Path, tmp_path: Path) -> None:
    src = tmp_path / "proj"
    for rel, (data, mode) in WORKDIR.items():
        p = src / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        p.chmod(mode)
    ours = bytes.fromhex(js(xtest, "pack", {"files": _files()})["tar_gz"])
    theirs = pack_workdir(src)
    # the same members in the same order (pkg/ holds only a cache: an empty directory entry in both)
    assert _members(ours) == _members(theirs)
    assert {n for n, is_dir, _, _ in _members(ours) if not is_dir} == EXPECTED


def test_too_large_workdir_is_refused_with_size_and_limit(xtest: Path) -> None:
    got = js(xtest, "pack", {"files": [{"path": "w.bin", "data": "00" * 3000}], "max_bytes": 2048})
    assert got["error"] == "PayloadTooLargeError" and got["code"] == "RESOURCE_EXHAUSTED"
    assert got["message"] == ("workdir proj is 2.9 KB, over the 2 KB limit; add a .blendrignore or trim it")
    got = js(xtest, "pack", {"files": [{"path": "../escape", "data": "00"}]})
    assert got["error"] == "PayloadError"


def test_payload_the_page_encrypts_opens_and_unpacks_in_python(xtest: Path, tmp_path: Path) -> None:
    (p1, pub1, a1), (p2, pub2, a2), (_, pub3, _) = keypair(), keypair(), keypair()
    _, out_pub, _ = keypair()
    impostor = Account.create().address  # advertises provider 3's key under its own name: left out
    got = js(xtest, "encrypt", {
        "files": _files(), "entrypoint": "python train.py --lr 0.1", "env": {"SEED": "7", "NAME": "ünï"},
        "pip": ["numpy==2.1", "./mypkg"], "output_key": out_pub.hex(), "request_id": "r-0123456789abcdef01234567",
        "candidates": [{"provider": a1, "public_key": pub1.hex()}, {"provider": a2.lower(), "public_key": pub2.hex()},
                       {"provider": impostor, "public_key": pub3.hex()}]})
    assert [k["provider"].lower() for k in got["keys"]] == [a1.lower(), a2.lower()]
    aad = b"r-0123456789abcdef01234567"
    ct = bytes.fromhex(got["ciphertext"])
    for priv, k in zip((p1, p2), got["keys"], strict=True):
        key = open_sealed(bytes.fromhex(k["sealed_key"]), priv, aad=aad)
        doc = AESGCM(key).decrypt(ct[:12], ct[12:], aad)
        assert doc == bytes.fromhex(got["doc"])
    payload = JobPayload.decode(doc)
    assert payload.entrypoint == "python train.py --lr 0.1"
    assert payload.env == {"SEED": "7", "NAME": "ünï"} and payload.pip == ("numpy==2.1", "./mypkg")
    assert payload.output_key == out_pub
    # byte-identical document framing to Python's
    assert JobPayload(payload.entrypoint, payload.env, payload.workdir_tar, pip=payload.pip,
                      output_key=out_pub).encode() == doc
    dest = tmp_path / "job"
    unpack(payload.workdir_tar, dest)
    found = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()}
    assert found == EXPECTED
    for rel in EXPECTED:
        data, mode = WORKDIR[rel]
        assert (dest / rel).read_bytes() == data
        assert (dest / rel).stat().st_mode & 0o777 == mode
    with pytest.raises(Exception, match="authentication failed"):
        open_sealed(bytes.fromhex(got["keys"][0]["sealed_key"]), p1, aad=b"r-another-job-000000000")


def test_no_candidate_with_its_own_key_is_no_provider(xtest: Path) -> None:
    _, pub, _ = keypair()
    got = js(xtest, "encrypt", {"files": [], "entrypoint": "true", "output_key": "", "request_id": "r-" + "0" * 24,
                                "candidates": [{"provider": Account.create().address, "public_key": pub.hex()},
                                               {"provider": Account.create().address, "public_key": "00" * 64}]})
    assert got["error"] == "NoProviderError"


def test_sealing_works_both_ways(xtest: Path) -> None:
    priv, pub, _ = keypair()
    aad = b"job-1"
    sealed = seal(b"python sealed this", pub, aad=aad)
    assert bytes.fromhex(js(xtest, "open", {"sealed": sealed.hex(), "private_key": priv.hex(),
                                            "aad": aad.hex()})["plaintext"]) == b"python sealed this"
    wrong = js(xtest, "open", {"sealed": sealed.hex(), "private_key": priv.hex(), "aad": b"job-2".hex()})
    assert wrong["error"] == "PayloadError"
    eph, _, _ = keypair()
    for key in (pub, b"\x04" + pub):
        got = js(xtest, "seal", {"plaintext": b"the page sealed this".hex(), "public_key": key.hex(), "aad": aad.hex(),
                                 "ephemeral_key": eph.hex(), "nonce": "11" * 12})
        blob = bytes.fromhex(got["sealed"])
        assert blob[0] == 1 and blob[1:66] == b"\x04" + public_key_of(eph) and blob[66:78] == b"\x11" * 12
        assert open_sealed(blob, priv, aad=aad) == b"the page sealed this"


# ------------------------------------------------------------------------------------------ hashes, signatures
def test_hashes_digests_and_signatures_are_the_pythons(xtest: Path) -> None:
    cases, expected = [], []
    for min_tflops in (0.0, 12.5, 1e-5, 1e16):
        for n_providers in (0, 1, 2, 3, 5):
            renter = Account.create()
            spec = Spec(gpus=3, duration_s=5400, max_price_per_gpu_hour=tokens("2.75") + 1, gpu_model=MODEL,
                        min_vram_bytes=80 * 2**30, min_tflops=min_tflops)
            ct = os.urandom(333)
            providers = [Account.create().address for _ in range(n_providers)]
            listed = providers + [p.lower() for p in providers[:1]]  # a duplicate, differently spelled
            nonce, deadline = int.from_bytes(os.urandom(32), "big"), 1_900_000_000
            cases.append({
                "spec": {"gpus": 3, "duration_s": 5400, "max_price_per_gpu_hour": str(spec.max_price_per_gpu_hour),
                         "gpu_model": MODEL, "min_vram_bytes": str(spec.min_vram_bytes), "min_tflops": min_tflops},
                "ciphertext": ct.hex(), "providers": listed, "private_key": bytes(renter.key).hex(),
                "intent": {"provider": "0x" + "00" * 20, "nonce": str(nonce), "deadline": str(deadline),
                           "scheduler": SCHEDULER},
                "chain_id": str(CHAIN_ID), "rental": RENTAL_ADDRESS.lower(), "voucher_id": "7",
                "permit": {"token_name": TOKEN_NAME, "token": TOKEN_ADDRESS, "value": str(2**200), "nonce": "3",
                           "deadline": str(deadline)}})
            sh = jobspec.spec_hash(spec, ct)
            root = candidates_root(listed)
            intent = RentalIntent(renter.address, jobspec.ZERO_ADDRESS, 3, sh, spec.max_price_per_gpu_hour, 5400,
                                  nonce, deadline, root, SCHEDULER)
            v, r, s = sign_permit(renter, TOKEN_NAME, CHAIN_ID, TOKEN_ADDRESS, RENTAL_ADDRESS, 2**200, 3, deadline)
            expected.append({
                "spec_hash": sh.hex(), "candidates_root": root.hex(),
                "intent_digest": intent_digest(intent, CHAIN_ID, RENTAL_ADDRESS).hex(),
                "voucher_digest": voucher_intent_digest(intent, 7, CHAIN_ID, RENTAL_ADDRESS).hex(),
                "permit_digest": permit_digest(renter.address, RENTAL_ADDRESS, 2**200, 3, deadline,
                                               token_name=TOKEN_NAME, chain_id=CHAIN_ID, token=TOKEN_ADDRESS).hex(),
                # deterministic (RFC 6979) signatures: the same bytes as eth-account's
                "intent_signature": intent.sign(renter, CHAIN_ID, RENTAL_ADDRESS).hex(),
                "voucher_signature": intent.sign_vouchers(renter, CHAIN_ID, RENTAL_ADDRESS, 7).hex(),
                "permit_signature": (r + s + bytes([v])).hex(),
            })
    assert js(xtest, "hashes", {"cases": cases})["cases"] == expected


# ------------------------------------------------------------------------------------------ the king's intake
class King:
    """A KingCore over the fake chain with providers whose node keys are real (the renter checks them)."""

    def __init__(self, allowance: int, balance: int = tokens("1000")) -> None:
        self.clock = FakeClock()
        self.chain = FakeRentalChain(now=self.clock.time)
        self.renter = Account.create()
        self.chain.fund(self.renter.address, balance, allowance=allowance)
        sched = Scheduler(Pricer(PricingParams(base_per_gpu_hour={MODEL: tokens("2")}, surge=0.0)),
                          known_models=FINGERPRINTS)
        self.queens = FakeQueens()
        self.core = KingCore(MemoryStore(), self.clock, sched, self.chain, self.queens, JobsConfig())
        self.keys = [keypair() for _ in range(3)]
        self.queen = Account.create().address

    async def start(self) -> None:
        await self.core.prepare()
        self.core.load()
        self.queens.connect(self.queen)
        self.core.on_queen_connected(self.queen)
        offers = [(ProviderOffer(a, self.queen, MODEL, 8, 80 * 2**30, 60.0, tokens("1"), 5000, 1.0), pub, 0)
                  for _, pub, a in self.keys]
        self.core.on_snapshot(self.queen, 1, offers)

    def quote(self, spec: Spec) -> bytes:
        q = self.core.quote(spec)
        ch = self.chain
        return convert.quote_to_proto(q, [int(self.core.scheduler.quote(o.gpu_model)) for o in q.closest],
                                      intents=self.core.cfg.max_intents, chain_id=ch.chain_id,
                                      rental_contract=ch.rental_address, token_contract=ch.token_address,
                                      max_intent_deadline=int(self.clock.time()) + self.core.cfg.max_intent_deadline_s,
                                      scheduler=ch.scheduler).SerializeToString()

    async def wallet(self) -> bytes:
        w = await self.core.wallet(self.renter.address)
        ch = self.chain
        return convert.wallet_to_proto(w, chain_id=ch.chain_id, token_name=ch.token_name, token_contract=ch.token_address,
                                       rental_contract=ch.rental_address).SerializeToString()

    async def build(self, xtest: Path, spec: Spec, quoted: Spec | None = None, **extra: Any) -> dict[str, Any]:
        return js(xtest, "submit", {
            "quote": self.quote(quoted or spec).hex(), "wallet": (await self.wallet()).hex(),
            "spec": {"gpus": spec.gpus, "duration_s": spec.duration_s,
                     "max_price_per_gpu_hour": str(spec.max_price_per_gpu_hour), "gpu_model": spec.gpu_model,
                     "min_vram_bytes": str(spec.min_vram_bytes), "min_tflops": spec.min_tflops},
            "name": "from the page", "entrypoint": "python train.py", "env": {"A": "1"},
            "files": [{"path": "train.py", "data": b"print(1)\n".hex()}], "output_key": keypair()[1].hex(),
            "private_key": bytes(self.renter.key).hex(), "now": self.clock.time(), **extra})


SPEC = Spec(gpus=2, duration_s=7200, max_price_per_gpu_hour=tokens("3"), gpu_model=MODEL)


@pytest.mark.parametrize("allowance", [0, tokens("1000")])
async def test_a_submission_the_page_builds_passes_the_kings_intake(xtest: Path, tmp_path: Path, allowance: int) -> None:
    king = King(allowance=allowance)
    await king.start()
    got = await king.build(xtest, SPEC, request_id="r-page-0000000000000001", spare_intents=1)
    req = rpb.SubmitJobRequest.FromString(bytes.fromhex(got["request"]))
    assert len(req.intents) == 2 and req.request_id == "r-page-0000000000000001"
    assert req.HasField("permit") == (allowance == 0)  # a permit only when the allowance is short
    job = await king.core.submit(king.renter.address, convert.submission_from_proto(req, king.core.cfg.candidates))
    assert job.state == JobState.QUEUED and job.name == "from the page"
    assert sorted(job.candidates) == sorted(a for _, _, a in king.keys)
    assert job.permit is None or job.permit.value == tokens("3") * 2 * 2 * 2  # allowance 0 + 2 intents x escrow
    # a provider of the job opens the payload
    priv = king.keys[0][0]
    sealed = next(k.sealed_key for k in req.payload.keys if k.provider.lower() == king.keys[0][2].lower())
    aad = req.request_id.encode()
    key = open_sealed(sealed, priv, aad=aad)
    doc = JobPayload.decode(AESGCM(key).decrypt(req.payload.ciphertext[:12], req.payload.ciphertext[12:], aad))
    assert doc.entrypoint == "python train.py" and doc.env == {"A": "1"}
    unpack(doc.workdir_tar, tmp_path / "w")
    assert (tmp_path / "w" / "train.py").read_bytes() == b"print(1)\n"
    # the same request again is the same job (idempotent)
    again = await king.core.submit(king.renter.address, convert.submission_from_proto(req, king.core.cfg.candidates))
    assert again.job_id == job.job_id


async def test_a_voucher_paid_submission_the_page_builds_passes_the_kings_intake(xtest: Path) -> None:
    king = King(allowance=0, balance=0)
    king.chain.voucher_prices[7] = tokens("2.5")
    king.chain.voucher_models[7] = MODEL
    king.chain.vouchers[(king.renter.address, 7)] = 4
    spec = Spec(gpus=2, duration_s=3600, max_price_per_gpu_hour=tokens("2.5"), gpu_model=MODEL)
    await king.start()
    req = rpb.SubmitJobRequest.FromString(bytes.fromhex((await king.build(xtest, spec, voucher_id="7"))["request"]))
    assert req.voucher_id == 7 and not req.HasField("permit")
    job = await king.core.submit(king.renter.address, convert.submission_from_proto(req, king.core.cfg.candidates))
    assert job.state == JobState.QUEUED and job.voucher_id == 7


async def test_the_king_refuses_a_page_submission_that_was_changed(xtest: Path) -> None:
    king = King(allowance=0)
    await king.start()
    req = rpb.SubmitJobRequest.FromString(bytes.fromhex((await king.build(xtest, SPEC))["request"]))
    req.spec.gpus = 1  # the intents signed 2 GPUs
    with pytest.raises(InvalidArgumentError, match="spec_hash"):
        await king.core.submit(king.renter.address, convert.submission_from_proto(req, king.core.cfg.candidates))


async def test_the_page_refuses_what_the_python_client_refuses(xtest: Path) -> None:
    king = King(allowance=0, balance=tokens("1"))
    await king.start()
    got = await king.build(xtest, SPEC)
    assert got["error"] == "InsufficientBalanceError"
    assert got["message"] == "insufficient balance: you hold 1 GPUTOKEN and this job can lock up to 12 in escrow"
    nobody = Spec(gpus=2, duration_s=7200, max_price_per_gpu_hour=tokens("0.5"), gpu_model=MODEL)
    got = await king.build(xtest, nobody)
    assert got["error"] == "NoProviderError" and got["message"] == king.core.quote(nobody).reason
    got = await king.build(xtest, Spec(gpus=0, duration_s=7200, max_price_per_gpu_hour=1), quoted=SPEC)
    assert got == {"error": "InvalidArgumentError", "code": "INVALID_ARGUMENT", "message": "gpus must be at least 1"}


# ------------------------------------------------------------------------------------------ outputs
@pytest.mark.parametrize("chunk", [0, 1000, 65536])
def test_outputs_a_provider_seals_open_in_the_page(xtest: Path, tmp_path: Path, chunk: int) -> None:
    priv, pub, _ = keypair()
    src = tmp_path / "out"
    (src / "ckpt").mkdir(parents=True)
    (src / "ckpt" / "model.bin").write_bytes(os.urandom(3 * 2**20 + 5))  # several 1 MiB records
    (src / "metrics.json").write_text('{"loss": 0.1}')
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / ("n" * 120 + ".txt")).write_text("long")
    buf = io.BytesIO()
    pack_outputs(src, buf, pub, output_aad("j-0123456789abcdef0123", 2))
    got = js(xtest, "outputs", {"sealed": buf.getvalue().hex(), "private_key": priv.hex(),
                                "job_id": "j-0123456789abcdef0123", "attempt": 2, "chunk": chunk})
    files = {f["path"]: (bytes.fromhex(f["data"]), f["executable"]) for f in got["files"]}
    assert files == {"ckpt/model.bin": ((src / "ckpt" / "model.bin").read_bytes(), False),
                     "metrics.json": (b'{"loss": 0.1}', False), "run.sh": (b"#!/bin/sh\n", True),
                     "n" * 120 + ".txt": (b"long", False)}
    other = js(xtest, "outputs", {"sealed": buf.getvalue().hex(), "private_key": priv.hex(),
                                  "job_id": "j-0123456789abcdef0123", "attempt": 3, "chunk": chunk})
    assert other["error"] == "OutputError"
    cut = js(xtest, "outputs", {"sealed": buf.getvalue()[:-20].hex(), "private_key": priv.hex(),
                                "job_id": "j-0123456789abcdef0123", "attempt": 2, "chunk": chunk})
    assert cut["error"] == "OutputError"
