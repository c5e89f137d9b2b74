from __future__ import annotations

import json
from pathlib import Path

import pytest

from blendr.errors import ProofError
from blendr.proof import fingerprints
from blendr.proof.fingerprints import DATASHEET, FINGERPRINTS, GIB, get, load_measured, match_model

REQUIRED = [
    "h100-sxm", "h100-pcie", "h200", "a100-40gb", "a100-80gb", "l40s",
    "rtx-4090", "rtx-3090", "a10", "t4", "v100", "cpu",
]  # fmt: skip


@pytest.mark.parametrize("key", REQUIRED)
def test_required_entries(key: str) -> None:
    fp = get(key)
    assert fp.key == key
    assert fp.source.strip()
    assert fp.fp32_tflops > 0
    assert fp.fp16_tflops >= 0
    assert fp.bf16_tflops >= 0
    if key != "cpu":
        assert fp.memory_bytes is not None
        assert fp.memory_bytes % GIB == 0
        assert fp.fp16_tflops > fp.fp32_tflops  # tensor cores beat CUDA cores on every GPU listed


def test_some_datasheet_figures() -> None:
    assert (get("h100-sxm").fp32_tflops, get("h100-sxm").bf16_tflops) == (67.0, 989.5)
    assert get("a100-80gb").memory_bytes == 80 * GIB
    assert get("t4").bf16_tflops == 0.0
    cpu = get("cpu")
    assert cpu.measured
    assert cpu.memory_bytes is None
    assert cpu.min_fraction == 0.001
    assert cpu.band(0.5, 1.5) == (0.001, 1000.0)
    assert get("t4").band(0.5, 1.5) == (0.5, 1.5)


def test_unknown_key_raises() -> None:
    with pytest.raises(ProofError, match="unknown device model 'b200'"):
        get("b200")


@pytest.mark.parametrize(
    ("name", "memory", "key"),
    [
        ("NVIDIA H100 80GB HBM3", None, "h100-sxm"),
        ("NVIDIA H100 PCIe", None, "h100-pcie"),
        ("NVIDIA H100 NVL", None, None),
        ("NVIDIA H200", None, "h200"),
        ("NVIDIA A100-SXM4-40GB", None, "a100-40gb"),
        ("NVIDIA A100-SXM4-80GB", None, "a100-80gb"),
        ("NVIDIA A100 80GB PCIe", None, "a100-80gb"),
        ("NVIDIA A100-PCIE-40GB", None, "a100-40gb"),
        ("NVIDIA A100-SXM4", 81920 * 2**20, "a100-80gb"),
        ("NVIDIA A100-SXM4", None, None),
        ("NVIDIA L40S", None, "l40s"),
        ("NVIDIA L40", None, None),
        ("NVIDIA GeForce RTX 4090", None, "rtx-4090"),
        ("NVIDIA GeForce RTX 4090 D", None, None),
        ("NVIDIA GeForce RTX 3090", None, "rtx-3090"),
        ("NVIDIA GeForce RTX 3090 Ti", None, None),
        ("NVIDIA A10", None, "a10"),
        ("NVIDIA A10G", None, None),
        ("Tesla T4", None, "t4"),
        ("Tesla V100-SXM2-32GB", None, "v100"),
        ("Tesla V100-SXM2-16GB", None, "v100-16gb"),
        ("Tesla V100-PCIE-32GB", None, "v100-pcie"),
        ("Tesla V100-PCIE-16GB", None, "v100-pcie-16gb"),
        ("Tesla V100-SXM2", 16160 * 2**20, "v100-16gb"),
        ("Tesla V100S-PCIE-32GB", None, None),
        ("cpu", None, "cpu"),
        ("AMD Instinct MI300X", None, None),
        ("", None, None),
    ],
)
def test_match_model(name: str, memory: int | None, key: str | None) -> None:
    assert match_model(name, memory) == key
    if key is not None:
        assert key in FINGERPRINTS


def test_shipped_measurements_file_is_valid() -> None:
    assert isinstance(load_measured(fingerprints.MEASURED_PATH), dict)


def test_load_measured_overrides_and_adds(tmp_path: Path) -> None:
    path = tmp_path / "measured.json"
    path.write_text(
        json.dumps(
            {
                "h100-sxm": {"fp32_tflops": 51.2, "source": "measured on an H100 SXM, 2026-11-22"},
                "rtx-5090": {
                    "name": "NVIDIA GeForce RTX 5090",
                    "fp32_tflops": 104.8,
                    "fp16_tflops": 209.5,
                    "bf16_tflops": 209.5,
                    "memory_bytes": 32 * GIB,
                    "source": "measured",
                },
            }
        )
    )
    measured = load_measured(path)
    assert measured["h100-sxm"].fp32_tflops == 51.2
    assert measured["h100-sxm"].bf16_tflops == DATASHEET["h100-sxm"].bf16_tflops
    assert measured["h100-sxm"].measured
    assert measured["rtx-5090"].memory_bytes == 32 * GIB
    assert load_measured(tmp_path / "absent.json") == {}


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        json.dumps({"t4": {"fp32_tflops": 8.0}}),  # no source
        json.dumps({"t4": {"fp32_tflops": "fast", "source": "x"}}),
        json.dumps({"t4": {"memory_bytes": -1, "source": "x"}}),
        json.dumps({"t4": {"colour": "green", "source": "x"}}),
        json.dumps({"new": {"fp32_tflops": 1.0, "source": "x"}}),  # new model, fields missing
    ],
)
def test_load_measured_rejects_malformed(tmp_path: Path, content: str) -> None:
    path = tmp_path / "measured.json"
    path.write_text(content)
    with pytest.raises(ProofError):
        load_measured(path)
