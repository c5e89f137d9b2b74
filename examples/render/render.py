"""A sample renter job: renders the Mandelbrot set tile by tile with NumPy (CuPy when a GPU is there).

Prints ``BLENDR_PROGRESS <fraction>`` lines, which BlendrChain turns into progress events, writes
``mandelbrot.png`` into ``$BLENDR_OUTPUT_DIR`` (its working directory when unset) and prints the image's SHA-256, so a renter can check the result.

    python render.py [--size 768] [--iterations 400] [--tiles 12]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import struct
import time
import zlib


def xp():
    try:
        import cupy

        cupy.zeros(1)  # raises without a usable GPU
        return cupy, "cupy (GPU)"
    except Exception:
        import numpy

        return numpy, "numpy (CPU)"


def png(pixels: bytes, width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + pixels[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=768)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--tiles", type=int, default=12)
    args = ap.parse_args()
    np, backend = xp()
    n, iters = args.size, args.iterations
    print(f"rendering a {n}x{n} Mandelbrot, {iters} iterations, with {backend}", flush=True)
    image = np.zeros((n, n), dtype=np.float32)
    rows = -(-n // args.tiles)
    start = time.time()
    for t in range(args.tiles):
        y0, y1 = t * rows, min(n, (t + 1) * rows)
        ys = np.linspace(-1.25, 1.25, n, dtype=np.float64)[y0:y1]
        xs = np.linspace(-2.1, 0.7, n, dtype=np.float64)
        c = xs[None, :] + 1j * ys[:, None]
        z = np.zeros_like(c)
        count = np.zeros(c.shape, dtype=np.float32)
        for _ in range(iters):
            mask = np.abs(z) <= 2.0
            z[mask] = z[mask] * z[mask] + c[mask]
            count += mask
        image[y0:y1] = count
        print(f"tile {t + 1}/{args.tiles} done ({time.time() - start:.1f} s)", flush=True)
        print(f"BLENDR_PROGRESS {(t + 1) / args.tiles:.3f}", flush=True)
    norm = (image / iters) ** 0.35
    rgb = np.stack([norm * 255, norm ** 2 * 200, (1 - norm) * 120 * (image < iters)], axis=-1)
    data = bytes(np.asarray(rgb.clip(0, 255), dtype=np.uint8).tobytes()) if backend.startswith("numpy") \
        else bytes(np.asnumpy(rgb.clip(0, 255).astype(np.uint8)).tobytes())
    out = png(data, n, n)
    # On BlendrChain the job's outputs go under $BLENDR_OUTPUT_DIR (sent back to the renter: `blendr job get`).
    path = os.path.join(os.environ.get("BLENDR_OUTPUT_DIR", "."), "mandelbrot.png")
    with open(path, "wb") as fh:
        fh.write(out)
    print(f"wrote mandelbrot.png ({len(out)} bytes) sha256 {hashlib.sha256(out).hexdigest()}", flush=True)


if __name__ == "__main__":
    main()
