"""Typed wrappers over the deployed contracts: what kings, queens, providers and renters call.

Each wrapper binds a :class:`~blendr.chain.client.ChainClient` (the chain and the signing account) to one
contract from the deployment manifest. Reads return Python ints/str/dataclasses in the units their names
say (``Wei`` amounts, seconds); writes send a signed transaction and return its receipt (or raise
:class:`~blendr.errors.ContractRevertError` naming the contract's custom error).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode
from eth_utils import keccak, to_checksum_address

from blendr.chain.bridge import BridgeMessage
from blendr.errors import ChainError
from blendr.units import Wei

if TYPE_CHECKING:
    from web3.types import TxReceipt

    from blendr.chain.client import ChainClient
    from blendr.chain.manifest import Manifest


class Tier(enum.IntEnum):
    PROVIDER = 0
    QUEEN = 1
    KING = 2


class RentalStatus(enum.IntEnum):
    NONE = 0
    ACTIVE = 1
    CANCELLED = 2  # the renter cancelled; the result (verified time up to the cancel) is still to come
    SETTLED = 3
    EXPIRED = 4  # no result within the timeout: the renter reclaimed the escrow


class _Functions:
    """A contract's ``functions`` whose calls raise ChainError, not web3's errors, for arguments that do not
    fit the ABI (web3 checks them, and may raise anything from ENS name handling, when a call is built)."""

    def __init__(self, functions: Any, where: str) -> None:
        self._functions = functions
        self._where = where

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        def build(*args: Any) -> Any:
            try:
                return getattr(self._functions, name)(*args)
            except Exception as exc:  # web3 / eth-abi / ens: a wrong name, count or type of argument
                raise ChainError(f"{self._where}.{name}: the arguments do not fit the ABI: {type(exc).__name__}: "
                                 f"{str(exc)[:200]}") from exc

        return build


class _Bound:
    """A contract bound to a client."""

    NAME = ""

    def __init__(self, client: ChainClient, address: str) -> None:
        self.client = client
        self.contract = client.contract(self.NAME, address)  # ChainError for a malformed address
        self.address = to_checksum_address(address)
        self.fn = _Functions(self.contract.functions, f"{client.settings.name} {self.NAME}")

    @classmethod
    def from_manifest(cls, client: ChainClient, m: Manifest) -> Any:
        return cls(client, m.chain(client.settings.name).address(cls.NAME))

    def _call(self, fn: Any) -> Any:
        return self.client.call(fn)

    def _send(self, fn: Any, **kw: Any) -> TxReceipt:
        receipt = self.client.transact(fn, **kw)
        assert not isinstance(receipt, str)
        return receipt

    def events(self, receipt: TxReceipt, event: str) -> list[dict[str, Any]]:
        """Decoded ``event`` logs this contract emitted in ``receipt``."""
        from web3.logs import DISCARD

        ev = getattr(self.contract.events, event)()
        return [dict(e["args"]) for e in ev.process_receipt(receipt, errors=DISCARD)]


# -- ETH ---------------------------------------------------------------------------------------------
class GPUToken(_Bound):
    NAME = "GPUToken"

    def balance_of(self, who: str) -> Wei:
        return Wei(int(self._call(self.fn.balanceOf(who))))

    def allowance(self, owner: str, spender: str) -> Wei:
        return Wei(int(self._call(self.fn.allowance(owner, spender))))

    def transfer(self, to: str, amount: int) -> TxReceipt:
        return self._send(self.fn.transfer(to, amount))

    def approve(self, spender: str, amount: int) -> TxReceipt:
        return self._send(self.fn.approve(spender, amount))

    def delegate(self, to: str) -> TxReceipt:
        return self._send(self.fn.delegate(to))

    def nonces(self, owner: str) -> int:
        return int(self._call(self.fn.nonces(owner)))

    def permit_signature(self, account: Any, spender: str, value: int, deadline: int) -> tuple[int, bytes, bytes]:
        """An ERC-2612 permit by ``account`` for ``spender``: (v, r, s)."""
        return sign_permit(account, self._call(self.fn.name()), self.client.settings.chain_id, self.address, spender,
                           value, self.nonces(account.address), deadline)


def sign_permit(account: Any, token_name: str, chain_id: int, token: str, spender: str, value: int, nonce: int,
                deadline: int) -> tuple[int, bytes, bytes]:
    """An ERC-2612 permit of ``token`` by ``account`` for ``spender``, signed offline: (v, r, s)."""
    from eth_account.messages import encode_typed_data

    data = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                       {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                       {"name": "deadline", "type": "uint256"}],
        },
        "primaryType": "Permit",
        "domain": {"name": token_name, "version": "1", "chainId": chain_id, "verifyingContract": to_checksum_address(token)},
        "message": {"owner": account.address, "spender": to_checksum_address(spender), "value": value, "nonce": nonce,
                    "deadline": deadline},
    }
    sig = account.sign_message(encode_typed_data(full_message=data))
    return int(sig.v), int(sig.r).to_bytes(32, "big"), int(sig.s).to_bytes(32, "big")


class StakingManager(_Bound):
    NAME = "StakingManager"

    def stake_of(self, node: str, tier: Tier) -> Wei:
        return Wei(int(self._call(self.fn.stakeOf(node, int(tier)))))

    def min_stake(self, tier: Tier) -> Wei:
        return Wei(int(self._call(self.fn.minStake(int(tier)))))

    def stake(self, tier: Tier, amount: int) -> TxReceipt:
        return self._send(self.fn.stake(int(tier), amount))

    def stake_for(self, node: str, tier: Tier, amount: int) -> TxReceipt:
        return self._send(self.fn.stakeFor(node, int(tier), amount))

    def request_unstake(self, tier: Tier, amount: int) -> TxReceipt:
        return self._send(self.fn.requestUnstake(int(tier), amount))

    def withdraw(self, tier: Tier) -> TxReceipt:
        return self._send(self.fn.withdraw(int(tier)))

    def reserved_stake_of(self, provider: str) -> Wei:
        """Provider stake its open rentals may still slash (minStake(Provider) × slashBps per GPU rented): it
        cannot start unbonding."""
        return Wei(int(self._call(self.fn.reservedStakeOf(provider))))

    def earned(self, node: str) -> Wei:
        return Wei(int(self._call(self.fn.earned(node))))

    def claim_rewards(self) -> TxReceipt:
        return self._send(self.fn.claimRewards())


def candidate_leaf(provider: str) -> bytes:
    """A candidate's leaf in an intent's ``candidatesRoot``: keccak256(abi.encodePacked(provider))."""
    return bytes(keccak(bytes.fromhex(to_checksum_address(provider)[2:])))


def candidates_tree(providers: Sequence[str]) -> tuple[bytes, dict[str, list[bytes]]]:
    """(candidatesRoot, proof per provider) of the providers a renter wrapped its payload key for.

    The set is what counts: the providers are deduplicated and sorted by address, so the renter and the king
    build the same root from the same set. Proofs are keyed by checksummed address. No providers: the zero root.
    """
    unique = sorted({to_checksum_address(p) for p in providers}, key=lambda a: int(a, 16))
    root, proofs = sorted_pair_tree([candidate_leaf(p) for p in unique])
    return root, dict(zip(unique, proofs, strict=True))


def is_candidate(root: bytes, provider: str, proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows ``provider`` under ``root``, as GPURental checks it (OpenZeppelin's MerkleProof)."""
    node = candidate_leaf(provider)
    for sibling in proof:
        node = _pair(node, bytes(sibling))
    return node == bytes(root)


def candidates_root(providers: Sequence[str]) -> bytes:
    """The ``candidatesRoot`` a renter signs for these candidate providers (see :func:`candidates_tree`)."""
    return candidates_tree(providers)[0]


@dataclass(frozen=True)
class RentalIntent:
    """What a renter signs (EIP-712 ``RentalIntent`` in GPURental's domain).

    ``scheduler`` is the only account that may create the rental and cancel it for the renter (the king's
    address); with ``provider`` zero, the king may choose only a provider under ``candidates_root``
    (:func:`candidates_root`; ignored, and signed as zero by our clients, when the intent names its provider).
    """

    renter: str
    provider: str
    gpus: int
    spec_hash: bytes
    max_price_per_gpu_hour: int  # token wei per GPU-hour
    duration: int  # seconds
    nonce: int
    deadline: int  # unix seconds
    candidates_root: bytes  # 32 bytes
    scheduler: str

    def as_tuple(self) -> tuple[Any, ...]:
        return (to_checksum_address(self.renter), to_checksum_address(self.provider), self.gpus, self.spec_hash,
                self.max_price_per_gpu_hour, self.duration, self.nonce, self.deadline, self.candidates_root,
                to_checksum_address(self.scheduler))

    def typed_data(self, chain_id: int, rental: str) -> dict[str, Any]:
        return {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                 {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                "RentalIntent": [
                    {"name": "renter", "type": "address"}, {"name": "provider", "type": "address"},
                    {"name": "gpus", "type": "uint32"}, {"name": "specHash", "type": "bytes32"},
                    {"name": "maxPricePerGpuHour", "type": "uint256"}, {"name": "duration", "type": "uint64"},
                    {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint64"},
                    {"name": "candidatesRoot", "type": "bytes32"}, {"name": "scheduler", "type": "address"}],
            },
            "primaryType": "RentalIntent",
            "domain": {"name": "BlendrGPURental", "version": "1", "chainId": chain_id,
                       "verifyingContract": to_checksum_address(rental)},
            "message": {"renter": to_checksum_address(self.renter), "provider": to_checksum_address(self.provider),
                        "gpus": self.gpus, "specHash": self.spec_hash, "maxPricePerGpuHour": self.max_price_per_gpu_hour,
                        "duration": self.duration, "nonce": self.nonce, "deadline": self.deadline,
                        "candidatesRoot": self.candidates_root, "scheduler": to_checksum_address(self.scheduler)},
        }

    def sign(self, account: Any, chain_id: int, rental: str) -> bytes:
        from eth_account.messages import encode_typed_data

        return bytes(account.sign_message(encode_typed_data(full_message=self.typed_data(chain_id, rental))).signature)

    def voucher_typed_data(self, chain_id: int, rental: str, voucher_id: int) -> dict[str, Any]:
        """EIP-712 ``VoucherRentalIntent(RentalIntent intent,uint256 voucherId)``: this intent, paid with
        ComputeVoucher GPU-hours of class ``voucher_id`` (GPURental.createRentalWithVouchers)."""
        plain = self.typed_data(chain_id, rental)
        return {
            "types": {**plain["types"], "VoucherRentalIntent": [{"name": "intent", "type": "RentalIntent"},
                                                                {"name": "voucherId", "type": "uint256"}]},
            "primaryType": "VoucherRentalIntent",
            "domain": plain["domain"],
            "message": {"intent": plain["message"], "voucherId": voucher_id},
        }

    def sign_vouchers(self, account: Any, chain_id: int, rental: str, voucher_id: int) -> bytes:
        """The renter's signature of this intent paid with vouchers of class ``voucher_id``."""
        from eth_account.messages import encode_typed_data

        data = self.voucher_typed_data(chain_id, rental, voucher_id)
        return bytes(account.sign_message(encode_typed_data(full_message=data)).signature)

    def rental_id(self, chain_id: int, rental: str) -> int:
        """The rental's id on chain: keccak256(abi.encode(chainid, GPURental, renter, nonce))."""
        return int.from_bytes(keccak(encode(["uint256", "address", "address", "uint256"],
                                            [chain_id, to_checksum_address(rental), self.renter, self.nonce])), "big")


@dataclass(frozen=True)
class RentalInfo:
    renter: str
    provider: str
    scheduler: str  # the intent's scheduler, the only one that may cancel for the renter (zero once it lost the role)
    status: RentalStatus
    rated: bool
    gpus: int
    start: int
    duration: int
    end: int
    cancelled_at: int
    price_per_gpu_hour: Wei
    escrow: Wei


class GPURental(_Bound):
    NAME = "GPURental"

    def is_scheduler(self, who: str) -> bool:
        """Whether ``who`` holds SCHEDULER_ROLE (may create rentals: a king's key)."""
        return bool(self._call(self.fn.hasRole(self._call(self.fn.SCHEDULER_ROLE()), who)))

    def create(self, intent: RentalIntent, signature: bytes, price_per_gpu_hour: int, queen: str,
               provider: str | None = None, proof: Sequence[bytes] = ()) -> TxReceipt:
        """Creates the rental (the intent's scheduler, with SCHEDULER_ROLE); the renter must have approved the
        escrow.

        ``provider`` is the scheduler's choice for an intent that leaves it open (zero), with ``proof`` that it
        is under the intent's ``candidates_root`` (:func:`candidates_tree`); default the intent's provider.
        """
        return self._send(self.fn.createRental(intent.as_tuple(), signature, price_per_gpu_hour, queen,
                                               provider or intent.provider, list(proof)))

    def create_with_permit(self, intent: RentalIntent, signature: bytes, price_per_gpu_hour: int, queen: str,
                           permit_value: int, permit_deadline: int, v: int, r: bytes, s: bytes,
                           provider: str | None = None, proof: Sequence[bytes] = ()) -> TxReceipt:
        """:meth:`create` after the renter's ERC-2612 permit (value, deadline, v, r, s) for GPURental."""
        return self._send(self.fn.createRentalWithPermit(
            intent.as_tuple(), signature, price_per_gpu_hour, queen, provider or intent.provider, list(proof),
            (permit_value, permit_deadline, v, r, s)))

    def create_with_vouchers(self, intent: RentalIntent, voucher_id: int, signature: bytes, queen: str,
                             provider: str | None = None, proof: Sequence[bytes] = ()) -> TxReceipt:
        """Creates the rental paid with the renter's ComputeVoucher GPU-hours of class ``voucher_id`` at the class
        price; ``signature`` is :meth:`RentalIntent.sign_vouchers`'s."""
        return self._send(self.fn.createRentalWithVouchers(intent.as_tuple(), voucher_id, signature, queen,
                                                           provider or intent.provider, list(proof)))

    def voucher_intent_digest(self, intent: RentalIntent, voucher_id: int) -> bytes:
        return bytes(self._call(self.fn.voucherIntentDigest(intent.as_tuple(), voucher_id)))

    def fee_burn_bps(self) -> int:
        """Share of every protocol fee that is burned, in basis points."""
        return int(self._call(self.fn.feeBurnBps()))

    def fee_burn_totals(self) -> tuple[Wei, Wei]:
        """(burned, pending): protocol fees burned so far, and the burn share the next collectFees burns."""
        burned, pending = self._call(self.fn.feeBurnTotals())
        return Wei(int(burned)), Wei(int(pending))

    def pending_fees(self) -> tuple[Wei, Wei]:
        """(to the treasury, to burn): protocol fees settled and not yet collected."""
        treasury, burn = self._call(self.fn.pendingFees())
        return Wei(int(treasury)), Wei(int(burn))

    def collect_fees(self) -> TxReceipt:
        """Pays the pending fees out: the treasury's share to the treasury, the burn share burned (anyone may)."""
        return self._send(self.fn.collectFees())

    def cancel(self, rental_id: int) -> TxReceipt:
        return self._send(self.fn.cancelRental(rental_id))

    def reclaim(self, rental_id: int) -> TxReceipt:
        """Refunds an unsettled rental's escrow to its renter after the result timeout (anyone may call it)."""
        return self._send(self.fn.reclaimEscrow(rental_id))

    def slash_bps(self) -> int:
        """The share of a provider's per-GPU minimum stake a failed verification slashes (basis points); each open
        rental reserves it."""
        return int(self._call(self.fn.slashBps()))

    def reserved_gpus_of(self, provider: str) -> int:
        """GPUs under ``provider``'s open rentals (each holds minStake(Provider) × slashBps of its stake)."""
        return int(self._call(self.fn.reservedGpusOf(provider)))

    def feedback(self, rental_id: int, rating: int) -> TxReceipt:
        return self._send(self.fn.submitFeedback(rental_id, rating))

    def rental(self, rental_id: int) -> RentalInfo:
        r = self._call(self.fn.rental(rental_id))
        return RentalInfo(r[0], r[1], r[2], RentalStatus(int(r[3])), bool(r[4]), int(r[5]), int(r[6]), int(r[7]),
                          int(r[8]), int(r[9]), Wei(int(r[10])), Wei(int(r[11])))

    def intent_digest(self, intent: RentalIntent) -> bytes:
        return bytes(self._call(self.fn.intentDigest(intent.as_tuple())))


@dataclass(frozen=True)
class VoucherClass:
    """A ComputeVoucher class: one token of it is one GPU-hour of ``model``, backed by ``price_per_hour``."""

    id: int
    model: str
    price_per_hour: Wei  # GPUTOKEN wei locked per voucher (and paid per GPU-hour of a rental)
    on_sale: bool


class ComputeVoucher(_Bound):
    """GPU-hours as ERC-1155 tokens, one id per GPU class (model at a price), fully backed by GPUTOKEN."""

    NAME = "ComputeVoucher"

    def classes(self) -> list[VoucherClass]:
        """Every class ever listed, by id."""
        return [self.class_of(i) for i in range(1, int(self._call(self.fn.classCount())) + 1)]

    def class_of(self, voucher_id: int) -> VoucherClass:
        """Raises ContractRevertError (ComputeVoucherUnknownClass) for an id never listed."""
        model, price, on_sale = self._call(self.fn.classOf(voucher_id))
        return VoucherClass(voucher_id, str(model), Wei(int(price)), bool(on_sale))

    def current_class_of(self, model: str) -> int:
        """The id of ``model``'s class on sale now; 0 when none is."""
        return int(self._call(self.fn.currentClassOf(model)))

    def price_of(self, voucher_id: int) -> Wei:
        return Wei(int(self._call(self.fn.priceOf(voucher_id))))

    def balance_of(self, who: str, voucher_id: int) -> int:
        """Vouchers (GPU-hours) of class ``voucher_id`` held by ``who``."""
        return int(self._call(self.fn.balanceOf(who, voucher_id)))

    def balances(self, who: str) -> dict[int, int]:
        """``who``'s nonzero voucher balances by class id."""
        n = int(self._call(self.fn.classCount()))
        if n == 0:
            return {}
        ids = list(range(1, n + 1))
        values = self._call(self.fn.balanceOfBatch([who] * n, ids))
        return {i: int(v) for i, v in zip(ids, values, strict=True) if int(v)}

    def total_backing(self) -> Wei:
        return Wei(int(self._call(self.fn.totalBacking())))

    def total_supply(self, voucher_id: int) -> int:
        return int(self._call(self.fn.totalSupply(voucher_id)))

    def redeem_fee_bps(self) -> int:
        return int(self._call(self.fn.redeemFeeBps()))

    def total_burned(self) -> Wei:
        """GPUTOKEN burned from redemption fees."""
        return Wei(int(self._call(self.fn.totalBurned())))

    def buy(self, voucher_id: int, hours: int, to: str | None = None) -> TxReceipt:
        """Buys ``hours`` vouchers of the class for ``to`` (default: the caller); needs a GPUTOKEN allowance."""
        return self._send(self.fn.buy(voucher_id, hours, to or self.client.address))

    def redeem(self, voucher_id: int, hours: int, to: str | None = None) -> TxReceipt:
        """Redeems the caller's vouchers for their GPUTOKEN less the redemption fee, paid to ``to``."""
        return self._send(self.fn.redeem(self.client.address, voucher_id, hours, to or self.client.address))

    def transfer(self, to: str, voucher_id: int, hours: int) -> TxReceipt:
        """ERC-1155 safeTransferFrom of the caller's vouchers."""
        return self._send(self.fn.safeTransferFrom(self.client.address, to, voucher_id, hours, b""))


class TokenDistributor(_Bound):
    NAME = "TokenDistributor"

    def claim(self, epoch: int, kind: int, account: str, amount: int, proof: Sequence[bytes]) -> TxReceipt:
        return self._send(self.fn.claim(epoch, kind, account, amount, list(proof)))


# -- bridge (both chains) ------------------------------------------------------------------------------
class BridgeOutbox(_Bound):
    NAME = "BridgeOutbox"

    def messages(self, receipt: TxReceipt) -> list[BridgeMessage]:
        """The bridge messages this outbox emitted in ``receipt``."""
        return [BridgeMessage.from_event(a, self.client.settings.chain_id, self.address)
                for a in self.events(receipt, "MessageSent")]


class BridgeInbox(_Bound):
    NAME = "BridgeInbox"

    def deliver(self, msg: BridgeMessage, signatures: Sequence[bytes]) -> TxReceipt:
        return self._send(self.fn.deliver(msg.as_tuple(), list(signatures)))

    def executed(self, msg: BridgeMessage) -> bool:
        return bool(self._call(self.fn.executed(msg.src_chain_id, msg.src_outbox, msg.nonce)))

    def digest(self, msg: BridgeMessage) -> bytes:
        return bytes(self._call(self.fn.messageDigest(msg.as_tuple())))

    def attesters(self) -> list[str]:
        return [str(a) for a in self._call(self.fn.attesters())]

    def threshold(self) -> int:
        return int(self._call(self.fn.threshold()))


# -- ETC ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChallengeResult:
    """A rental's cumulative challenge counts, as a queen reports them in a batch."""

    rental_id: int
    issued: int
    passed: int
    failed: int
    missed: int

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.rental_id, self.issued, self.passed, self.failed, self.missed)

    def leaf(self, batch_id: bytes) -> bytes:
        return bytes(keccak(encode(["bytes32", "uint256", "uint32", "uint32", "uint32", "uint32"],
                                   [batch_id, *self.as_tuple()])))


def _pair(a: bytes, b: bytes) -> bytes:
    return bytes(keccak(a + b) if a < b else keccak(b + a))


def results_tree(batch_id: bytes, results: Sequence[ChallengeResult]) -> tuple[bytes, list[list[bytes]]]:
    """(root, proof per result) exactly as WorkVerification builds its results root."""
    return sorted_pair_tree([r.leaf(batch_id) for r in results])


def sorted_pair_tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """(root, proof per leaf) of a Merkle tree that OpenZeppelin's ``MerkleProof.verify`` accepts.

    Each level pairs neighbours with sorted-pair keccak; an odd last node moves up unchanged (WorkVerification
    builds its results root the same way). No leaves: the zero root.
    """
    if not leaves:
        return b"\0" * 32, []
    level = list(leaves)
    proofs: list[list[bytes]] = [[] for _ in leaves]
    index = list(range(len(leaves)))  # position of each leaf's node in the current level
    while len(level) > 1:
        nxt = [_pair(level[2 * i], level[2 * i + 1]) for i in range(len(level) // 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        for k, pos in enumerate(index):
            sibling = pos ^ 1
            if sibling < len(level) and not (len(level) % 2 and pos == len(level) - 1):
                proofs[k].append(level[sibling])
            index[k] = pos // 2
        level = nxt
    return level[0], proofs


class WorkVerification(_Bound):
    NAME = "WorkVerification"

    def submit_batch(self, batch_id: bytes, records_root: bytes, results: Sequence[ChallengeResult]) -> TxReceipt:
        return self._send(self.fn.submitBatch(batch_id, records_root, [r.as_tuple() for r in results]))

    def finalize(self, batch_id: bytes, result: ChallengeResult, proof: Sequence[bytes]) -> TxReceipt:
        return self._send(self.fn.finalize(result.rental_id, batch_id, result.as_tuple(), list(proof)))

    def expire(self, rental_id: int) -> TxReceipt:
        return self._send(self.fn.expire(rental_id))

    def task(self, rental_id: int) -> Any:
        return self._call(self.fn.taskOf(rental_id))

    def challenge_interval(self) -> int:
        return int(self._call(self.fn.challengeInterval()))

    def max_batch_size(self) -> int:
        return int(self._call(self.fn.maxBatchSize()))

    def verify_record(self, queen: str, batch_id: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
        return bool(self._call(self.fn.verifyRecord(queen, batch_id, leaf, list(proof))))


class ReputationSystem(_Bound):
    NAME = "ReputationSystem"

    def score(self, provider: str) -> int:
        """The provider's score in basis points (0..10000)."""
        return int(self._call(self.fn.score(provider)))


class Governance(_Bound):
    """The Governor: proposals execute through the timelock (and, for ETC parameters, over the bridge)."""

    NAME = "Governance"

    def propose(self, targets: Sequence[str], values: Sequence[int], calldatas: Sequence[bytes],
                description: str) -> int:
        """Submits a proposal; returns its id."""
        r = self._send(self.fn.propose(list(targets), list(values), list(calldatas), description))
        return int(self.events(r, "ProposalCreated")[0]["proposalId"])

    def cast_vote(self, proposal_id: int, support: int) -> TxReceipt:
        """support: 0 against, 1 for, 2 abstain."""
        return self._send(self.fn.castVote(proposal_id, support))

    def queue(self, targets: Sequence[str], values: Sequence[int], calldatas: Sequence[bytes],
              description: str) -> TxReceipt:
        return self._send(self.fn.queue(list(targets), list(values), list(calldatas), keccak(text=description)))

    def execute(self, targets: Sequence[str], values: Sequence[int], calldatas: Sequence[bytes],
                description: str) -> TxReceipt:
        return self._send(self.fn.execute(list(targets), list(values), list(calldatas), keccak(text=description)))

    def state(self, proposal_id: int) -> int:
        """OpenZeppelin ProposalState: 0 Pending, 1 Active, 2 Canceled, 3 Defeated, 4 Succeeded, 5 Queued,
        6 Expired, 7 Executed."""
        return int(self._call(self.fn.state(proposal_id)))

    def votes(self, account: str, timepoint: int) -> Wei:
        """Votes of ``account`` at ``timepoint``, a past unix second (the governor's clock is timestamps)."""
        return Wei(int(self._call(self.fn.getVotes(account, timepoint))))


def bridge_call(target: str, calldata: bytes, value: int = 0) -> bytes:
    """The payload BridgeGovernanceExecutor runs on ETC: abi.encode(target, value, calldata)."""
    return bytes(encode(["address", "uint256", "bytes"], [to_checksum_address(target), value, calldata]))
