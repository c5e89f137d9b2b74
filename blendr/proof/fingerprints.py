"""Fingerprints: what each GPU model can do, from vendor datasheets or our own measurements.

Figures are peak throughput in TFLOP/s: FP32 on the CUDA cores (no tensor cores) and FP16/BF16 on
the tensor cores, dense (the datasheets' "with sparsity" figures halved) and with FP32
accumulation where a datasheet distinguishes. ``0.0`` means the model has no such units (BF16 on
Turing and Volta; tensor units on a CPU). ``memory_bytes`` is the datasheet capacity in GiB;
NVML reports a few percent less (ECC, reserved memory), so compare with a tolerance.

Measured figures (``measured.json`` beside this module, written from GPU runs) replace the
datasheet ones field by field and set ``measured=True``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from blendr.errors import ProofError

GIB = 2**30
MEASURED_PATH = Path(__file__).with_name("measured.json")


@dataclass(frozen=True)
class Fingerprint:
    """Throughput and memory of one device model.

    Attributes:
        key: Stable id, e.g. ``"h100-sxm"``.
        name: Human-readable model name.
        fp32_tflops: Peak FP32 (non-tensor) TFLOP/s; the proof-of-GPU challenge runs in FP32.
        fp16_tflops: Peak dense FP16 tensor TFLOP/s (0.0 when absent).
        bf16_tflops: Peak dense BF16 tensor TFLOP/s (0.0 when absent).
        memory_bytes: Device memory, or ``None`` when it is not a property of the model (CPU).
        source: Where the figures come from.
        min_fraction: Lower edge of the accepted speed band for this model, overriding the global
            one (the CPU's is wide because CPUs vary).
        measured: Whether the figures were measured by us rather than copied from a datasheet.
        max_fraction: Upper edge of the band, overriding the global one.
        element_ns: Nanoseconds per generated or hashed matrix element, besides the FLOPs: what
            small challenges spend outside the product. Negligible on a GPU (0.0); on a CPU it
            dominates below n of a few hundred.
        speed_floor: Whether the queen holds the model to the floor of its band on its own clock.
            False for the CPU reference, which proves no hardware (any machine has a CPU): only its
            deadline, a liveness bound, applies, so a CPU provider on a loaded host is not failed.
    """

    key: str
    name: str
    fp32_tflops: float
    fp16_tflops: float
    bf16_tflops: float
    memory_bytes: int | None
    source: str
    min_fraction: float | None = None
    measured: bool = False
    max_fraction: float | None = None
    element_ns: float = 0.0
    speed_floor: bool = True

    def band(self, default_min: float, default_max: float) -> tuple[float, float]:
        """Returns the accepted speed band ``(min_fraction, max_fraction)`` for this model."""
        low = self.min_fraction if self.min_fraction is not None else default_min
        high = self.max_fraction if self.max_fraction is not None else default_max
        return low, high


def _gpu(
    key: str, name: str, fp32: float, fp16: float, bf16: float, memory_gib: int, source: str
) -> Fingerprint:
    return Fingerprint(key, name, fp32, fp16, bf16, memory_gib * GIB, source)


_A100 = "NVIDIA A100 Tensor Core GPU datasheet (FP16/BF16 tensor: 624 with sparsity, 312 dense)"
_V100 = "NVIDIA Tesla V100 GPU datasheet (Volta: no BF16; FP16 is the tensor-core figure)"

DATASHEET: Mapping[str, Fingerprint] = MappingProxyType(
    {
        fp.key: fp
        for fp in (
            _gpu(
                "h100-sxm",
                "NVIDIA H100 SXM5 80GB",
                67.0,
                989.5,
                989.5,
                80,
                "NVIDIA H100 Tensor Core GPU datasheet (SXM5; FP16/BF16 1,979 with sparsity)",
            ),
            _gpu(
                "h100-pcie",
                "NVIDIA H100 PCIe 80GB",
                51.0,
                756.5,
                756.5,
                80,
                "NVIDIA H100 Tensor Core GPU datasheet (PCIe; FP16/BF16 1,513 with sparsity)",
            ),
            _gpu(
                "h200",
                "NVIDIA H200 SXM 141GB",
                67.0,
                989.5,
                989.5,
                141,
                "NVIDIA H200 Tensor Core GPU datasheet (SXM; FP16/BF16 1,979 with sparsity)",
            ),
            _gpu("a100-40gb", "NVIDIA A100 40GB", 19.5, 312.0, 312.0, 40, _A100),
            _gpu("a100-80gb", "NVIDIA A100 80GB", 19.5, 312.0, 312.0, 80, _A100),
            _gpu(
                "l40s",
                "NVIDIA L40S",
                91.6,
                362.05,
                362.05,
                48,
                "NVIDIA L40S GPU datasheet (FP16/BF16 tensor 733 with sparsity)",
            ),
            _gpu(
                "rtx-4090",
                "NVIDIA GeForce RTX 4090",
                82.6,
                165.2,
                165.2,
                24,
                "NVIDIA Ada GPU architecture whitepaper (GeForce RTX 4090; tensor with FP32 accumulate)",
            ),
            _gpu(
                "rtx-3090",
                "NVIDIA GeForce RTX 3090",
                35.6,
                71.0,
                71.0,
                24,
                "NVIDIA Ampere GA102 GPU architecture whitepaper (GeForce RTX 3090; tensor with FP32 accumulate)",
            ),
            _gpu(
                "a10",
                "NVIDIA A10",
                31.2,
                125.0,
                125.0,
                24,
                "NVIDIA A10 Tensor Core GPU datasheet (FP16/BF16 tensor 250 with sparsity)",
            ),
            _gpu(
                "t4",
                "NVIDIA T4",
                8.1,
                65.0,
                0.0,
                16,
                "NVIDIA T4 Tensor Core GPU datasheet (Turing: mixed-precision FP16/FP32 65, no BF16)",
            ),
            _gpu("v100", "NVIDIA V100 SXM2 32GB", 15.7, 125.0, 0.0, 32, _V100 + ", SXM2"),
            _gpu("v100-16gb", "NVIDIA V100 SXM2 16GB", 15.7, 125.0, 0.0, 16, _V100 + ", SXM2"),
            _gpu("v100-pcie", "NVIDIA V100 PCIe 32GB", 14.0, 112.0, 0.0, 32, _V100 + ", PCIe"),
            _gpu("v100-pcie-16gb", "NVIDIA V100 PCIe 16GB", 14.0, 112.0, 0.0, 16, _V100 + ", PCIe"),
            Fingerprint(
                key="cpu",
                name="CPU (NumPy reference)",
                fp32_tflops=0.122,
                fp16_tflops=0.0,
                bf16_tflops=0.0,
                memory_bytes=None,
                source="measured on the 2-core CI machine with bench/proof.py, numpy, 2026-11-22 (element_ns: "
                "n=1024 took 0.342 s, 0.141 s of it at the FP32 figure, the rest over 16.8M generated and hashed "
                "elements: 12 ns each, 20 allowing smaller rows)",
                min_fraction=0.001,
                measured=True,
                max_fraction=1000.0,
                element_ns=20.0,
                speed_floor=False,
            ),
        )
    }
)

_FLOAT_FIELDS = ("fp32_tflops", "fp16_tflops", "bf16_tflops", "min_fraction", "max_fraction", "element_ns")
_KNOWN_FIELDS = {f.name for f in fields(Fingerprint)} - {"key", "measured"}


def _checked_entry(key: str, raw: Any, base: Fingerprint | None) -> Fingerprint:
    if not isinstance(raw, dict) or any(name not in _KNOWN_FIELDS for name in raw):
        raise ProofError(
            f"measured fingerprint {key!r} must be an object with fields from {sorted(_KNOWN_FIELDS)}"
        )
    if not isinstance(raw.get("source"), str) or not raw["source"]:
        raise ProofError(f"measured fingerprint {key!r} needs a non-empty 'source'")
    for name in _FLOAT_FIELDS:
        value = raw.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ProofError(f"measured fingerprint {key!r}: {name} must be a non-negative number")
    if "speed_floor" in raw and not isinstance(raw["speed_floor"], bool):
        raise ProofError(f"measured fingerprint {key!r}: speed_floor must be true or false")
    memory = raw.get("memory_bytes")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0):
        raise ProofError(f"measured fingerprint {key!r}: memory_bytes must be a positive integer")
    values: dict[str, Any] = {
        name: float(v) if name in _FLOAT_FIELDS and v is not None else v for name, v in raw.items()
    }
    if base is not None:
        return replace(base, measured=True, **values)
    missing = {"name", "fp32_tflops", "fp16_tflops", "bf16_tflops", "memory_bytes"} - set(raw)
    if missing:
        raise ProofError(f"measured fingerprint {key!r} is a new model and lacks {sorted(missing)}")
    return Fingerprint(key=key, measured=True, **values)


def load_measured(path: Path | str, base: Mapping[str, Fingerprint] = DATASHEET) -> dict[str, Fingerprint]:
    """Reads measured fingerprints from a JSON file.

    The file is an object ``{key: {field: value, ...}}``. For a key already in ``base`` the given
    fields replace the base ones (``source`` is required); a new key must give every field. A
    missing file means no measurements.

    Returns:
        The measured entries only, complete and with ``measured=True``.

    Raises:
        ProofError: The file is unreadable, not JSON, or an entry is malformed.
    """
    file = Path(path)
    if not file.exists():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProofError(f"cannot read measured fingerprints from {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProofError(f"measured fingerprints in {file} must be a JSON object")
    return {key: _checked_entry(key, raw, base.get(key)) for key, raw in data.items()}


FINGERPRINTS: Mapping[str, Fingerprint] = MappingProxyType({**DATASHEET, **load_measured(MEASURED_PATH)})
"""Every known model: datasheet figures with measured ones applied."""


def get(key: str) -> Fingerprint:
    """Returns the fingerprint of ``key``.

    Raises:
        ProofError: No model has that key.
    """
    try:
        return FINGERPRINTS[key]
    except KeyError:
        raise ProofError(f"unknown device model {key!r}; known: {', '.join(sorted(FINGERPRINTS))}") from None


def _size_gib(tokens: list[str], memory_bytes: int | None) -> int | None:
    for token in tokens:
        match = re.fullmatch(r"(\d+)gb", token)
        if match:
            return int(match.group(1))
    if memory_bytes is not None and memory_bytes > 0:
        return round(memory_bytes / GIB)
    return None


def match_model(nvml_name: str, memory_bytes: int | None = None) -> str | None:
    """Maps an NVML device name to a fingerprint key.

    Args:
        nvml_name: The name NVML reports, e.g. ``"NVIDIA H100 80GB HBM3"`` or ``"Tesla T4"``;
            ``"cpu"`` maps to the CPU entry.
        memory_bytes: Total memory NVML reports; disambiguates models sold with several sizes when
            the name does not say (A100, V100); without either, those give ``None``.

    Returns:
        The key, or ``None`` for a model without a fingerprint (including look-alikes such as the
        RTX 4090 D, RTX 3090 Ti, A10G, H100 NVL or V100S, whose figures differ).
    """
    name = nvml_name.strip().lower()
    tokens = [t for t in re.split(r"[\s_\-]+", name) if t]
    if not tokens:
        return None
    if tokens[0] == "cpu":
        return "cpu"
    size = _size_gib(tokens, memory_bytes)
    if "h200" in tokens:
        return None if "nvl" in tokens else "h200"
    if "h100" in tokens:
        if "nvl" in tokens:
            return None
        if "pcie" in tokens:
            return "h100-pcie"
        if "hbm3" in tokens or "sxm5" in tokens or "sxm" in tokens:
            return "h100-sxm"
        return None
    if "a100" in tokens:
        if size is None:
            return None
        return "a100-80gb" if size > 60 else "a100-40gb"
    if "l40s" in tokens:
        return "l40s"
    if "4090" in tokens:
        rest = tokens[tokens.index("4090") + 1 :]
        return None if rest or "laptop" in tokens else "rtx-4090"
    if "3090" in tokens:
        rest = tokens[tokens.index("3090") + 1 :]
        return None if rest else "rtx-3090"
    if "a10" in tokens:
        return "a10"
    if "t4" in tokens:
        return "t4"
    if "v100" in tokens:
        if any(t.startswith("sxm") and t != "sxm2" for t in tokens):
            return None
        if size is None:
            return None
        pcie = "pcie" in tokens
        small = size <= 20
        if pcie:
            return "v100-pcie-16gb" if small else "v100-pcie"
        return "v100-16gb" if small else "v100"
    return None
