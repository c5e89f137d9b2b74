"""Behaviour specific to the SQLite adapter: durability, sharing a file, WAL, errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from blendr.errors import StoreError
from blendr.store import SQLiteStore
from blendr.store.sqlite import SCHEMA_VERSION


def test_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    with SQLiteStore(path) as s:
        s.put("ns", "k", {"v": 1})
    assert path.is_file()


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as s:
        s.put("pool", "p1", {"devices": 2})
        with s.batch() as b:
            b.put("pool", "p2", {"devices": 4})
        assert s.put_if_absent("idem", "r1", {"ok": True})
    with SQLiteStore(path) as s:
        assert s.get("pool", "p1") == {"devices": 2}
        assert s.get("pool", "p2") == {"devices": 4}
        assert s.put_if_absent("idem", "r1", {"ok": False}) is False


def test_two_objects_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as a, SQLiteStore(path) as b:
        a.put("ns", "from-a", {"v": 1})
        assert b.get("ns", "from-a") == {"v": 1}
        b.put("ns", "from-b", {"v": 2})
        with b.batch() as batch:
            batch.delete("ns", "from-a")
        assert a.scan("ns") == [("from-b", {"v": 2})]
        assert a.put_if_absent("ns", "race", {"by": "a"}) is True
        assert b.put_if_absent("ns", "race", {"by": "b"}) is False


def test_another_process_writes_and_this_one_reads(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SQLiteStore(path) as s:
        s.put("allowlist", "0x01", {"by": "queen"})
        script = textwrap.dedent(
            """
            import sys
            from blendr.store import SQLiteStore
            with SQLiteStore(sys.argv[1]) as s:
                assert s.get("allowlist", "0x01") == {"by": "queen"}
                s.put("allowlist", "0x02", {"by": "cli"})
            """
        )
        subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
        assert s.scan("allowlist") == [("0x01", {"by": "queen"}), ("0x02", {"by": "cli"})]


def test_wal_mode_is_on(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    finally:
        conn.close()
    assert row == (str(SCHEMA_VERSION),)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(StoreError, match=rf"newer BlendrChain.*{path.name}|{path.name}.*newer BlendrChain"):
        SQLiteStore(path)


def test_corrupt_file_raises_store_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a sqlite database, just some text" * 100)
    with pytest.raises(StoreError, match=str(path)):
        SQLiteStore(path)


def test_unusable_directory_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="directory"):
        SQLiteStore(blocker / "sub" / "state.db")


def test_concurrent_writes_from_threads_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    shared = SQLiteStore(path)
    second = SQLiteStore(path)  # a second connection contends for the file lock too
    errors: list[BaseException] = []
    threads_n, per_thread = 8, 50

    def writer(t: int) -> None:
        store = shared if t % 2 else second
        try:
            for i in range(per_thread):
                store.put("ns", f"t{t}/{i:03d}", {"t": t, "i": i})
                with store.batch() as b:
                    b.put("batch", f"t{t}/{i:03d}", {"t": t})
                store.put_if_absent("idem", f"k{i:03d}", {"winner": t})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    try:
        assert shared.count("ns") == threads_n * per_thread
        assert second.count("batch") == threads_n * per_thread
        assert shared.count("idem") == per_thread
        assert shared.get("ns", "t3/049") == {"t": 3, "i": 49}
    finally:
        shared.close()
        second.close()
