"""The one root error of BlendrChain and its specific subclasses.

Every error our code raises on purpose derives from :class:`BlendrError`. Transport layers (gRPC
servicers, the CLI) map these to precise status codes or exit messages; nothing else is caught broadly.
"""

from __future__ import annotations


class BlendrError(Exception):
    """Root of every error BlendrChain raises on purpose."""


class ConfigError(BlendrError):
    """Raised when a config file, environment variable or flag is missing, unknown or out of range."""


class IdentityError(BlendrError):
    """Raised when a node key file is missing, unreadable, malformed or has unsafe permissions."""


class SignatureError(BlendrError):
    """Raised when a signature is malformed, does not recover to the expected address, or is replayed."""


class AuthenticationError(BlendrError):
    """Raised when a sign-in or a session token is missing, forged, replayed or expired."""


class AlreadyExistsError(BlendrError):
    """Raised when an idempotency key (a request id) is reused with different parameters."""


class PermissionDeniedError(BlendrError):
    """Raised when an authenticated identity is not allowed to do what it asked (e.g. join a pool)."""


class InvalidArgumentError(BlendrError):
    """Raised when a request or message is malformed or a value is out of range."""


class ResourceExhaustedError(BlendrError):
    """Raised when a request asks for more than a configured bound (message size, matrix size, count)."""


class NotFoundError(BlendrError):
    """Raised when a named entity (provider, challenge, key) does not exist."""


class FailedPreconditionError(BlendrError):
    """Raised when a request is valid but the system is not in a state to serve it."""


class DeadlineExceededError(BlendrError):
    """Raised when a peer does not send what it must within the allowed time (e.g. the admission handshake)."""


class StoreError(BlendrError):
    """Raised when the durable store cannot be opened, read or written."""


class StoreUnavailableError(StoreError):
    """Raised when the store's server cannot be reached (a PostgreSQL restart, a dropped connection); retry later."""


class FencedError(StoreError):
    """Raised when a write (or a chain transaction) is refused because the lease it was made under is no longer held
    at that epoch: another node took it over (king.ha)."""


class TLSError(BlendrError):
    """Raised when TLS material (CA, certificate, key) is missing, invalid or cannot be generated."""


class ProofError(BlendrError):
    """Raised when proof-of-GPU parameters are invalid or a proof cannot be computed."""


class ChallengeExpiredError(ProofError):
    """Raised by a prover that passes a challenge's deadline before finishing its work."""


class ComputeError(BlendrError):
    """Raised when the compute runtime (Ray, CuPy, NVML) fails or is misconfigured."""


class UnavailableError(BlendrError):
    """Raised when a peer (queen, RPC endpoint) cannot be reached after the bounded retries."""


class ChainError(BlendrError):
    """Raised when a chain operation fails for a reason that retrying will not fix."""


class ContractRevertError(ChainError):
    """Raised when a contract call or transaction reverts; ``error`` names the custom error when known."""

    def __init__(self, message: str, *, error: str = "", data: str = "", tx_hash: str = "") -> None:
        super().__init__(message)
        self.error = error
        self.data = data
        self.tx_hash = tx_hash


class ReorgError(ChainError):
    """Raised when the chain reorganized deeper than the follower's remembered history can undo."""
