// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {BridgeMessage, BridgeMessageHashing, IBridgeInbox, IBridgeReceiver} from "../interfaces/IBridge.sol";

/// @title BridgeInbox
/// @notice Executes messages from trusted source outboxes on the other chain, each at most once, when at
/// least `threshold` distinct attesters signed its EIP-712 digest (domain "BlendrBridgeInbox" / "1" /
/// block.chainid / this inbox). Pausable by GUARDIAN_ROLE, unpaused by GOVERNOR_ROLE, rate-limited to
/// `maxMessages` per fixed window of `window` seconds (windows aligned to multiples of `window`).
///
/// A delivery either executes completely or not at all: if the target reverts, the whole delivery reverts
/// with BridgeInboxTargetFailed, so the message stays deliverable later and nothing is lost. Anybody may
/// relay; the relayer pays the gas and must supply enough of it for the target.
///
/// Threshold choice: any 1 <= threshold <= n is accepted. With threshold <= n/2 two disjoint attester
/// groups could each attest conflicting messages of the same nonce (only the first delivered executes,
/// replay protection is per nonce); governance should keep threshold > n/2 in production.
contract BridgeInbox is IBridgeInbox, AccessControl, Pausable, ReentrancyGuard, EIP712 {
    /// @notice Holder of every parameter setter and of unpause.
    bytes32 public constant GOVERNOR_ROLE = keccak256("GOVERNOR_ROLE");
    /// @notice May pause deliveries (a fast-acting key, e.g. a security council).
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");
    /// @notice Most attesters the set may hold (bounds the loop in setAttesters and calldata per delivery).
    uint256 public constant MAX_ATTESTERS = 32;
    /// @notice Longest rate-limit window.
    uint64 public constant MAX_RATE_WINDOW = 30 days;
    /// @notice A pause lifts itself after this long: on ETC governance reaches the inbox only through the
    /// inbox, so a guardian key (lost or rogue) must not be able to stop it for good.
    uint64 public constant MAX_PAUSE = 3 days;
    /// @notice After a pause ends, the guardian must wait this long before pausing again, so governance's
    /// messages (e.g. revoking the guardian) always get a window to pass.
    uint64 public constant PAUSE_COOLDOWN = 1 days;

    /// @dev Everything deliver() reads and writes besides the per-message state, packed in one slot.
    struct Config {
        uint32 rateWindow; // seconds, 1..MAX_RATE_WINDOW
        uint32 rateMaxMessages; // per window, >= 1
        uint64 windowStart; // start of the window windowCount counts
        uint32 windowCount; // messages delivered in that window
        uint8 threshold; // signatures required, 1..attesters
    }

    Config private _config;
    uint64 private _pausedUntil;
    address[] private _attesters;
    mapping(address account => bool) private _isAttester;
    mapping(uint256 srcChainId => mapping(address srcOutbox => bool)) private _trusted;
    /// @dev One bit per nonce, 256 nonces per word, per source.
    mapping(uint256 srcChainId => mapping(address srcOutbox => mapping(uint256 word => uint256 bits))) private
        _executedBits;

    /// @param admin Receives DEFAULT_ADMIN_ROLE and GOVERNOR_ROLE.
    /// @param initialAttesters Initial attester set (see setAttesters).
    /// @param initialThreshold Signatures required, 1 <= threshold <= attesters.
    /// @param rateWindow Rate-limit window in seconds, 1..MAX_RATE_WINDOW.
    /// @param rateMaxMessages Deliveries allowed per window, 1..2^32-1.
    constructor(
        address admin,
        address[] memory initialAttesters,
        uint256 initialThreshold,
        uint64 rateWindow,
        uint64 rateMaxMessages
    ) EIP712("BlendrBridgeInbox", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(GOVERNOR_ROLE, admin);
        _setAttesters(initialAttesters, initialThreshold);
        _setRateLimit(rateWindow, rateMaxMessages);
    }

    // ------------------------------------------------------------------------------------------------
    // Delivery
    // ------------------------------------------------------------------------------------------------

    /// @notice Executes `message` by calling message.target.onBridgeMessage(srcChainId, sender, data).
    /// @param signatures 65-byte (r, s, v) signatures of messageDigest(message), signers strictly ascending.
    /// Requirements:
    /// - the inbox is not paused and not already inside a delivery;
    /// - message.dstChainId is this chain;
    /// - (srcChainId, srcOutbox) is a trusted source;
    /// - the (source, nonce) was not executed before;
    /// - at least `threshold` signatures, each well-formed, low-s, by an attester, signers strictly ascending;
    /// - fewer than maxMessages deliveries so far in the current rate-limit window;
    /// - message.target is a contract and its onBridgeMessage does not revert.
    function deliver(BridgeMessage calldata message, bytes[] calldata signatures)
        external
        whenNotPaused
        nonReentrant
    {
        if (message.dstChainId != block.chainid) revert BridgeInboxWrongChain(message.dstChainId);
        if (message.target.code.length == 0) revert BridgeInboxTargetNotContract(message.target);
        // Effects before the interaction: a reentrant or later delivery of this nonce sees it executed.
        // (Every check below reverts the whole transaction, so marking first is safe.)
        _markExecuted(message.srcChainId, message.srcOutbox, message.nonce);
        uint256 required = _countDelivery();
        bytes32 id = _messageHash(message);
        _verifySignatures(_hashTypedDataV4(id), signatures, required);
        emit MessageExecuted(id, message.srcChainId, message.nonce, message.srcOutbox, message.target);

        (bool ok, bytes memory reason) = message.target.call(
            abi.encodeCall(IBridgeReceiver.onBridgeMessage, (message.srcChainId, message.sender, message.data))
        );
        if (!ok) revert BridgeInboxTargetFailed(reason);
    }

    // ------------------------------------------------------------------------------------------------
    // Governance
    // ------------------------------------------------------------------------------------------------

    /// @notice Replaces the attester set and threshold; every old attester not in the new set is removed.
    /// Requirements:
    /// - the caller holds GOVERNOR_ROLE;
    /// - 1 <= newAttesters.length <= MAX_ATTESTERS and 1 <= newThreshold <= newAttesters.length;
    /// - no zero address and no duplicates in newAttesters.
    function setAttesters(address[] calldata newAttesters, uint256 newThreshold) external onlyRole(GOVERNOR_ROLE) {
        _setAttesters(newAttesters, newThreshold);
    }

    /// @notice Sets the rate limit: at most `maxMessages` deliveries per fixed window of `window` seconds.
    /// Requirements:
    /// - the caller holds GOVERNOR_ROLE;
    /// - 1 <= window <= MAX_RATE_WINDOW and 1 <= maxMessages <= 2^32-1.
    function setRateLimit(uint64 window, uint64 maxMessages) external onlyRole(GOVERNOR_ROLE) {
        _setRateLimit(window, maxMessages);
    }

    /// @notice Trusts or distrusts the outbox `srcOutbox` on chain `srcChainId`. Executed nonces are kept
    /// when a source is distrusted, so trusting it again never re-opens a delivered message.
    /// Requirements:
    /// - the caller holds GOVERNOR_ROLE;
    /// - srcChainId is neither 0 nor this chain, and srcOutbox is not the zero address.
    function setSource(uint256 srcChainId, address srcOutbox, bool trusted) external onlyRole(GOVERNOR_ROLE) {
        if (srcChainId == 0 || srcChainId == block.chainid || srcOutbox == address(0)) {
            revert BridgeInboxInvalidSource(srcChainId, srcOutbox);
        }
        _trusted[srcChainId][srcOutbox] = trusted;
        emit SourceChanged(srcChainId, srcOutbox, trusted);
    }

    /// @notice Stops all deliveries for at most MAX_PAUSE.
    /// Requirements:
    /// - the caller holds GUARDIAN_ROLE;
    /// - the inbox is not paused;
    /// - PAUSE_COOLDOWN has passed since the previous pause ended.
    function pause() external onlyRole(GUARDIAN_ROLE) {
        if (paused()) revert EnforcedPause();
        uint64 last = _pausedUntil;
        if (last != 0 && block.timestamp < last + PAUSE_COOLDOWN) revert BridgeInboxPauseCooldown(last + PAUSE_COOLDOWN);
        _pause(); // (checks paused() against the previous deadline, so it must come first)
        _pausedUntil = uint64(block.timestamp) + MAX_PAUSE;
    }

    /// @notice Resumes deliveries.
    /// @dev The guardian may resume too: on ETC governance acts through messages that this very inbox
    /// delivers, so a governor-only unpause could never happen there once the inbox is paused.
    /// Requirements:
    /// - the caller holds GUARDIAN_ROLE or GOVERNOR_ROLE;
    /// - the inbox is paused.
    function unpause() external {
        if (!hasRole(GUARDIAN_ROLE, msg.sender) && !hasRole(GOVERNOR_ROLE, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, GOVERNOR_ROLE);
        }
        _unpause();
        _pausedUntil = uint64(block.timestamp); // the cooldown runs from now
    }

    /// @notice Whether deliveries are stopped (a pause lifts itself at pausedUntil()).
    function paused() public view override returns (bool) {
        return super.paused() && block.timestamp < _pausedUntil;
    }

    /// @notice When the current (or last) pause ends.
    function pausedUntil() external view returns (uint256) {
        return _pausedUntil;
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @notice The chain-independent id of `message` (its EIP-712 struct hash; see BridgeMessageHashing),
    /// as emitted by the source outbox's MessageSent.
    /// Requirements: none.
    function messageHash(BridgeMessage calldata message) external pure returns (bytes32) {
        return _messageHash(message);
    }

    /// @notice The EIP-712 digest attesters sign for `message` on this inbox.
    /// Requirements: none.
    function messageDigest(BridgeMessage calldata message) external view returns (bytes32) {
        return _hashTypedDataV4(_messageHash(message));
    }

    /// @notice Whether message `nonce` of the outbox `srcOutbox` on `srcChainId` has been executed here.
    /// Requirements: none.
    function executed(uint256 srcChainId, address srcOutbox, uint256 nonce) external view returns (bool) {
        return _executedBits[srcChainId][srcOutbox][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    /// @notice Whether deliveries from `srcOutbox` on `srcChainId` are accepted.
    /// Requirements: none.
    function isTrustedSource(uint256 srcChainId, address srcOutbox) external view returns (bool) {
        return _trusted[srcChainId][srcOutbox];
    }

    /// @notice The current attester set, in the order it was set.
    /// Requirements: none.
    function attesters() external view returns (address[] memory) {
        return _attesters;
    }

    /// @notice Whether `account` is a current attester.
    /// Requirements: none.
    function isAttester(address account) external view returns (bool) {
        return _isAttester[account];
    }

    /// @notice Signatures a delivery needs.
    /// Requirements: none.
    function threshold() external view returns (uint256) {
        return _config.threshold;
    }

    /// @notice The rate limit and how much of it the current window has used.
    /// Requirements: none.
    function rateLimit()
        external
        view
        returns (uint64 window, uint64 maxMessages, uint64 currentWindowStart, uint64 deliveredInWindow)
    {
        Config memory cfg = _config;
        window = cfg.rateWindow;
        maxMessages = cfg.rateMaxMessages;
        currentWindowStart = uint64(block.timestamp - (block.timestamp % window));
        deliveredInWindow = currentWindowStart == cfg.windowStart ? cfg.windowCount : 0;
    }

    // ------------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------------

    /// @dev Requires a trusted source and an unexecuted nonce, and marks the nonce executed.
    function _markExecuted(uint256 srcChainId, address srcOutbox, uint256 nonce) private {
        if (!_trusted[srcChainId][srcOutbox]) revert BridgeInboxUnknownSource(srcChainId, srcOutbox);
        mapping(uint256 => uint256) storage bitmap = _executedBits[srcChainId][srcOutbox];
        uint256 word = nonce >> 8;
        uint256 bit = 1 << (nonce & 0xff);
        uint256 bits = bitmap[word];
        if (bits & bit != 0) revert BridgeInboxAlreadyExecuted(srcChainId, srcOutbox, nonce);
        bitmap[word] = bits | bit;
    }

    /// @dev Counts one delivery against the current rate-limit window; returns the signature threshold.
    function _countDelivery() private returns (uint256 required) {
        Config memory cfg = _config;
        uint64 start = uint64(block.timestamp - (block.timestamp % cfg.rateWindow));
        uint32 count = start == cfg.windowStart ? cfg.windowCount : 0;
        if (count >= cfg.rateMaxMessages) revert BridgeInboxRateLimited(start, count);
        cfg.windowStart = start;
        cfg.windowCount = count + 1;
        _config = cfg;
        return cfg.threshold;
    }

    function _messageHash(BridgeMessage calldata m) private pure returns (bytes32) {
        return BridgeMessageHashing.hash(m.srcChainId, m.srcOutbox, m.nonce, m.dstChainId, m.sender, m.target, m.data);
    }

    /// @dev Every signature must be valid and by an attester, signers strictly ascending (so distinct);
    /// since any bad signature reverts, the number of valid signatures is signatures.length.
    function _verifySignatures(bytes32 digest, bytes[] calldata signatures, uint256 required) private view {
        uint256 n = signatures.length;
        if (n < required) revert BridgeInboxNotEnoughSignatures(n, required);
        address last;
        for (uint256 i; i < n; ++i) {
            bytes calldata sig = signatures[i];
            if (sig.length != 65) revert BridgeInboxInvalidSignature(i);
            bytes32 r;
            bytes32 s;
            uint8 v;
            assembly ("memory-safe") {
                r := calldataload(sig.offset)
                s := calldataload(add(sig.offset, 32))
                v := byte(0, calldataload(add(sig.offset, 64)))
            }
            // tryRecover rejects high-s (malleable) signatures and the zero address.
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
            if (err != ECDSA.RecoverError.NoError) revert BridgeInboxInvalidSignature(i);
            if (!_isAttester[signer]) revert BridgeInboxSignerNotAttester(signer);
            if (signer <= last) revert BridgeInboxSignersNotSorted(signer);
            last = signer;
        }
    }

    function _setAttesters(address[] memory newAttesters, uint256 newThreshold) private {
        uint256 n = newAttesters.length;
        // A majority: fewer could let a minority of queens attest (and so govern ETC through the executor).
        if (n == 0 || n > MAX_ATTESTERS || newThreshold * 2 <= n || newThreshold > n) {
            revert BridgeInboxInvalidAttesterSet(n, newThreshold);
        }
        address[] storage old = _attesters;
        uint256 oldLength = old.length;
        for (uint256 i; i < oldLength; ++i) {
            _isAttester[old[i]] = false;
        }
        delete _attesters;
        for (uint256 i; i < n; ++i) {
            address a = newAttesters[i];
            if (a == address(0) || _isAttester[a]) revert BridgeInboxInvalidAttester(a);
            _isAttester[a] = true;
            _attesters.push(a);
        }
        _config.threshold = uint8(newThreshold); // <= MAX_ATTESTERS
        emit AttestersChanged(newAttesters, newThreshold);
    }

    function _setRateLimit(uint64 window, uint64 maxMessages) private {
        if (window == 0 || window > MAX_RATE_WINDOW || maxMessages == 0 || maxMessages > type(uint32).max) {
            revert BridgeInboxInvalidRateLimit(window, maxMessages);
        }
        _config.rateWindow = uint32(window);
        _config.rateMaxMessages = uint32(maxMessages);
        emit RateLimitChanged(window, maxMessages);
    }
}
