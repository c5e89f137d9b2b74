"""Every bench's ``--quick`` mode runs, exits 0 and writes its JSON report (so the benches cannot rot).

Each bench runs as a subprocess, as ``make bench-quick`` runs it, with ``--out`` in a temporary folder: the
committed full results in ``bench/results/`` must come out unchanged. These tests check that the benches
work, not how fast the code is (speed is what the benches' own figures and targets are for).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
RUN_TIMEOUT_S = 540

# bench -> the top-level keys its report must have (besides "machine", checked for all)
EXPECTED: dict[str, set[str]] = {
    "proof": {"benchmark", "mode", "k", "target", "production_n", "target_met", "results"},
    "pool": {"benchmark", "mode", "heartbeat_ratio_vs_bare_grpc", "saturation_ratio_vs_bare_grpc",
             "cpu_per_heartbeat_vs_bare_grpc", "target_met", "params", "servers", "wall_s"},
    "gas": {"transfer_gas", "operations", "batch_gas", "rentals", "wall_s", "quick"},
    "relay": {"quick", "repeats", "batches", "rental_e2e", "assumptions", "wall_s"},
    "scheduler": {"benchmark", "mode", "scheduler", "gateway", "gateway_store", "deep_queue", "placements_per_s",
                  "p99_ms", "wall_s"},
    "outputs": {"benchmark", "mode", "sizes_mib", "goal_ratio", "target_met", "all_byte_identical", "results",
                "wall_s"},
    "honest": {"benchmark", "mode", "challenges", "false_failures", "verdicts", "failure_reasons", "load_processes",
               "goal", "target_met", "wall_s"},
    "sandbox": {"benchmark", "mode", "kinds", "skipped", "job_limits", "start_latency", "compute", "escapes",
                "target_met", "wall_s"},
    "failover": {"benchmark", "mode", "trials", "failover_s", "paused_failover_s", "place_s", "assigned_s",
                 "per_trial", "goal_s", "goal_met", "wall_s"},
}


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def run_quick(name: str, out: Path) -> dict[str, Any]:
    """Runs ``bench/<name>.py --quick --out <out>``; returns the report it wrote."""
    committed = RESULTS / f"{name}.json"
    before = _digest(committed)
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, f"bench/{name}.py --quick exited {proc.returncode}:\n{proc.stdout[-4000:]}\n" \
                                 f"{proc.stderr[-4000:]}"
    assert _digest(committed) == before, f"bench/{name}.py --quick changed the committed {committed}"
    assert out.is_file(), f"bench/{name}.py --quick wrote no report at {out}"
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    missing = (EXPECTED[name] | {"machine"}) - set(report)
    assert not missing, f"bench/{name}.py --quick report lacks {sorted(missing)}"
    return report


def _quick_flag(report: dict[str, Any]) -> bool:
    return report.get("mode") == "quick" or report.get("quick") is True


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
@pytest.mark.parametrize("name", ["proof", "pool", "gas", "relay"])
def test_quick_run_writes_its_report(name: str, tmp_path: Path) -> None:
    report = run_quick(name, tmp_path / f"{name}.json")
    assert _quick_flag(report)


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_scheduler_quick_runs_all_parts(tmp_path: Path) -> None:
    report = run_quick("scheduler", tmp_path / "scheduler.json")
    assert _quick_flag(report)
    gw, dq = report["gateway"], report["deep_queue"]
    # every job of the gateway part was placed and seen scheduled, and the bare baseline ran
    assert gw["jobs"] == gw["params"]["renters"] * gw["params"]["jobs_per_renter"] > 0
    assert gw["throughput_jobs_per_s"] > 0 and gw["baseline"]["throughput_per_s"] > 0
    assert gw["throughput_ratio"] == pytest.approx(gw["throughput_jobs_per_s"] / gw["baseline"]["throughput_per_s"],
                                                   rel=0.01)
    # the same load ran with the king's store in PostgreSQL: every job placed there too, and the ratio is theirs
    stores = report["gateway_store"]
    assert stores["postgres"]["jobs"] == stores["sqlite"]["jobs"] == gw["jobs"]
    assert stores["postgres_version"].startswith("16")
    assert stores["ratio_postgres_to_sqlite"] == pytest.approx(
        stores["postgres"]["throughput_jobs_per_s"] / stores["sqlite"]["throughput_jobs_per_s"], rel=0.01)
    # the deep queue held its jobs: one placed, the rest still queued
    assert dq["server_after"]["queued_in_scheduler"] == dq["params"]["queued"] + dq["params"]["batch"]
    assert dq["server_after"]["rentals_created"] == 1
    assert dq["health_p99_ms"] > 0 and dq["submit_ratio"] > 0
    assert dq["submit_ratio"] == pytest.approx(
        dq["deep_queue"]["submits_per_s"] / dq["empty_queue"]["submits_per_s"], rel=0.01)


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_outputs_quick_moves_every_size_byte_identical_and_against_bare_grpc(tmp_path: Path) -> None:
    report = run_quick("outputs", tmp_path / "outputs.json")
    assert _quick_flag(report) and report["all_byte_identical"]
    assert [r["size_mib"] for r in report["results"]] == report["sizes_mib"]
    for r in report["results"]:
        assert r["upload_s"] > 0 and r["get_s"] > 0 and r["bare_up_s"] > 0 and r["bare_down_s"] > 0
        assert r["ratio"] == pytest.approx((r["bare_up_s"] + r["bare_down_s"]) / (r["upload_s"] + r["get_s"]),
                                           rel=0.01)
        assert r["sealed_bytes"] > r["size_mib"] * 2**20  # sealed: the data plus headers and tags


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_honest_quick_counts_every_decided_challenge_under_load(tmp_path: Path) -> None:
    report = run_quick("honest", tmp_path / "honest.json")
    assert _quick_flag(report) and report["load_processes"] >= 1
    assert report["challenges"] >= 12 and sum(report["verdicts"].values()) == report["challenges"]
    assert report["false_failures"] == report["challenges"] - report["verdicts"].get("passed", 0)
    assert report["false_failures"] == 0, report["failure_reasons"]


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_sandbox_quick_measures_every_kind_and_the_escapes_work_only_unsandboxed(tmp_path: Path) -> None:
    report = run_quick("sandbox", tmp_path / "sandbox.json")
    assert _quick_flag(report) and report["kinds"][:2] == ["none", "bubblewrap"]
    assert set(report["kinds"]) | set(report["skipped"]) == {"none", "bubblewrap", "gvisor"}
    for kind in report["kinds"]:
        lat, comp = report["start_latency"]["kinds"][kind], report["compute"]["kinds"][kind]
        assert lat["median_first_line_s"] > 0 and comp["median_wall_s"] > 0
        assert lat["added_s"] == pytest.approx(lat["median_first_line_s"]
                                               - report["start_latency"]["kinds"]["none"]["median_first_line_s"])
        table = report["escapes"]["table"][kind]
        assert table["job's legitimate work"]["detail"] == "done", table
        if kind == "none":  # the attempts are real: unsandboxed, they work
            assert {"read provider node.key", "reach host loopback: queen",
                    "host: file planted in the provider home"} <= set(report["escapes"]["escaped"]["none"])
        else:
            assert report["escapes"]["escaped"][kind] == [], table


def test_quick_results_default_beside_the_committed_ones() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from _common import result_path
    finally:
        sys.path.remove(str(BENCH))
    assert result_path("gas", quick=False) == RESULTS / "gas.json"
    assert result_path("gas", quick=True) == RESULTS / "quick" / "gas.json"
    assert result_path("gas", quick=True, out=Path("/x/y.json")) == Path("/x/y.json")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(RESULTS / "quick" / "gas.json")], cwd=ROOT)
    assert ignored.returncode == 0, "bench/results/quick/ must be git-ignored"


def test_failover_quick_measures_a_killed_and_a_paused_leader(tmp_path: Path) -> None:
    """bench/failover.py --quick: two king processes on a real PostgreSQL; both failovers end in a placement."""
    report = run_quick("failover", tmp_path / "failover.json")
    assert _quick_flag(report) and report["trials"] == 1
    for key in ("failover_s", "paused_failover_s", "place_s"):
        assert report[key] > 0
    assert len(report["per_trial"]["kill"]) == len(report["per_trial"]["pause"]) == 1
