"""Slow, obviously-correct pure-Python versions of the generator and the row hash (test oracles)."""

from __future__ import annotations

import hashlib

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1


def key(seed: bytes, device: int, which: str, index: int) -> int:
    msg = b"blendr-pog-v1" + seed + device.to_bytes(4, "big") + which.encode() + index.to_bytes(4, "big")
    return int.from_bytes(hashlib.sha256(msg).digest()[:4], "big")


def element(k: int, n: int, i: int, j: int) -> int:
    x = ((i * n + j) * 0x9E3779B1 + k) & M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return (x >> 28) - 8


def _mix64(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    x ^= x >> 31
    return x


def row_digest(values: list[int]) -> bytes:
    u = [v & M32 for v in values]
    if len(u) % 2:
        u.append(0x5BD1E995)
    words = [u[2 * j] | (u[2 * j + 1] << 32) for j in range(len(u) // 2)]
    out = b""
    for lane, (pos_mul, salt, comb, pad) in enumerate(
        [
            (0x9E3779B97F4A7C15, 0x243F6A8885A308D3, 0xD6E8FEB86659FD93, 0x6A09E667F3BCC908),
            (0xC2B2AE3D27D4EB4F, 0x13198A2E03707344, 0xFF51AFD7ED558CCD, 0xBB67AE8584CAA73B),
        ]
    ):
        h = [_mix64(w ^ ((j * pos_mul + salt) & M64)) for j, w in enumerate(words)]
        level = 0
        while len(h) > 1:
            if len(h) % 2:
                h.append(pad)
            salt_t = ((level + 1) * 0xA0761D6478BD642F + lane) & M64
            h = [
                _mix64(((((h[2 * t] * comb) & M64) ^ h[2 * t + 1]) + salt_t) & M64)
                for t in range(len(h) // 2)
            ]
            level += 1
        out += h[0].to_bytes(8, "big")
    return out
