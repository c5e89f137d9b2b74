"""One contract suite run against every Store adapter (MemoryStore, SQLiteStore and PostgresStore on a real
PostgreSQL)."""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from blendr.errors import FencedError, StoreError, StoreUnavailableError
from blendr.store import MemoryStore, PostgresStore, SQLiteStore, Store, open_store
from blendr.store.base import prefix_upper_bound


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "state" / "node.db")
    else:
        s = PostgresStore(request.getfixturevalue("postgres_url"))
    with s:
        yield s


def keys(pairs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [k for k, _ in pairs]


# --- get / put / delete ---------------------------------------------------------------------------


def test_get_missing_returns_none(store: Store) -> None:
    assert store.get("pool", "nope") is None


def test_put_then_get_round_trips_json(store: Store) -> None:
    value = {"address": "0xabc", "devices": 2, "ok": True, "score": 0.5, "tags": ["a", "b"], "x": None}
    store.put("pool", "p1", value)
    assert store.get("pool", "p1") == value


def test_put_replaces(store: Store) -> None:
    store.put("pool", "p1", {"v": 1})
    store.put("pool", "p1", {"v": 2})
    assert store.get("pool", "p1") == {"v": 2}
    assert store.count("pool") == 1


def test_tuples_come_back_as_lists(store: Store) -> None:
    store.put("ns", "k", {"t": (1, 2)})
    assert store.get("ns", "k") == {"t": [1, 2]}


def test_namespaces_are_separate(store: Store) -> None:
    store.put("a", "k", {"v": "a"})
    store.put("b", "k", {"v": "b"})
    assert store.get("a", "k") == {"v": "a"}
    assert store.get("b", "k") == {"v": "b"}
    assert store.delete("a", "k") is True
    assert store.get("b", "k") == {"v": "b"}
    assert keys(store.scan("b")) == ["k"]


def test_delete_reports_whether_something_was_deleted(store: Store) -> None:
    store.put("ns", "k", {"v": 1})
    assert store.delete("ns", "k") is True
    assert store.get("ns", "k") is None
    assert store.delete("ns", "k") is False
    assert store.delete("other", "k") is False


def test_empty_key_is_allowed(store: Store) -> None:
    store.put("ns", "", {"v": 0})
    assert store.get("ns", "") == {"v": 0}
    assert keys(store.scan("ns")) == [""]


# --- values are copies ----------------------------------------------------------------------------


def test_mutating_the_put_value_does_not_change_stored_state(store: Store) -> None:
    value: dict[str, Any] = {"list": [1], "nested": {"a": 1}}
    store.put("ns", "k", value)
    value["list"].append(2)
    value["nested"]["a"] = 99
    value["new"] = True
    assert store.get("ns", "k") == {"list": [1], "nested": {"a": 1}}


def test_mutating_a_returned_value_does_not_change_stored_state(store: Store) -> None:
    store.put("ns", "k", {"list": [1], "nested": {"a": 1}})
    got = store.get("ns", "k")
    assert got is not None
    got["list"].append(2)
    got["nested"]["a"] = 99
    ((_, scanned),) = store.scan("ns")
    scanned["list"].append(3)
    assert store.get("ns", "k") == {"list": [1], "nested": {"a": 1}}


# --- invalid input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"obj": object()},
        {"set": {1, 2}},
        {"bytes": b"raw"},
        {"nan": math.nan},
        {"inf": math.inf},
        {(1, 2): "tuple key"},
    ],
    ids=["object", "set", "bytes", "nan", "inf", "tuple-key"],
)
def test_non_json_value_raises_store_error_and_stores_nothing(store: Store, value: dict[Any, Any]) -> None:
    with pytest.raises(StoreError, match="ns/k"):
        store.put("ns", "k", value)
    with pytest.raises(StoreError):
        store.put_if_absent("ns", "k", value)
    assert store.get("ns", "k") is None


def test_non_mapping_value_raises_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="mapping"):
        store.put("ns", "k", [1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ns", "key"),
    [("", "k"), ("ns", "a\x00b"), ("n\x00s", "k"), ("ns", "\ud800"), ("ns", 5)],
    ids=["empty-ns", "nul-key", "nul-ns", "surrogate-key", "int-key"],
)
def test_invalid_namespace_or_key_raises_store_error(store: Store, ns: str, key: str) -> None:
    with pytest.raises(StoreError):
        store.put(ns, key, {"v": 1})
    with pytest.raises(StoreError):
        store.get(ns, key)


def test_negative_limit_raises_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="limit"):
        store.scan("ns", limit=-1)


def test_closed_store_raises_store_error(tmp_path: Path, postgres_url: str) -> None:
    for s in (MemoryStore(), SQLiteStore(tmp_path / "x.db"), PostgresStore(postgres_url)):
        s.close()
        s.close()  # idempotent
        with pytest.raises(StoreError, match="closed"):
            s.get("ns", "k")
        with pytest.raises(StoreError, match="closed"):
            s.put("ns", "k", {})


# --- scan / count -----------------------------------------------------------------------------------


@pytest.fixture
def filled(store: Store) -> Store:
    for k in ["job/2", "job/10", "job/1", "jobs", "joa", "job/", "k", "a"]:
        store.put("ns", k, {"k": k})
    store.put("other", "job/3", {"k": "other"})
    return store


def test_scan_orders_by_key(filled: Store) -> None:
    assert keys(filled.scan("ns")) == ["a", "joa", "job/", "job/1", "job/10", "job/2", "jobs", "k"]
    assert [v["k"] for _, v in filled.scan("ns")] == keys(filled.scan("ns"))


def test_scan_prefix(filled: Store) -> None:
    assert keys(filled.scan("ns", "job/")) == ["job/", "job/1", "job/10", "job/2"]
    assert keys(filled.scan("ns", "job/1")) == ["job/1", "job/10"]
    assert keys(filled.scan("ns", "zzz")) == []
    assert keys(filled.scan("missing-ns")) == []


def test_scan_prefix_is_literal_and_case_sensitive(store: Store) -> None:
    for k in ["a%b", "axb", "a_b", "A_B", "a*b"]:
        store.put("ns", k, {})
    assert keys(store.scan("ns", "a%")) == ["a%b"]
    assert keys(store.scan("ns", "a_")) == ["a_b"]
    assert keys(store.scan("ns", "a*")) == ["a*b"]
    assert store.count("ns", "a") == 4


def test_scan_limit(filled: Store) -> None:
    assert keys(filled.scan("ns", "job/", limit=2)) == ["job/", "job/1"]
    assert filled.scan("ns", limit=0) == []
    assert len(filled.scan("ns", limit=100)) == 8


def test_scan_reverse(filled: Store) -> None:
    assert keys(filled.scan("ns", "job/", reverse=True)) == ["job/2", "job/10", "job/1", "job/"]
    assert keys(filled.scan("ns", reverse=True, limit=2)) == ["k", "jobs"]


def test_scan_start_after_pages_through_keys(filled: Store) -> None:
    assert keys(filled.scan("ns", "job/", start_after="job/1")) == ["job/10", "job/2"]
    assert keys(filled.scan("ns", "job/", start_after="job/10", reverse=True)) == ["job/1", "job/"]
    # A cursor that is not itself a key still works.
    assert keys(filled.scan("ns", start_after="b")) == [
        "joa",
        "job/",
        "job/1",
        "job/10",
        "job/2",
        "jobs",
        "k",
    ]

    pages: list[str] = []
    cursor: str | None = None
    while True:
        page = filled.scan("ns", limit=3, start_after=cursor)
        if not page:
            break
        pages.extend(keys(page))
        cursor = page[-1][0]
    assert pages == keys(filled.scan("ns"))

    back: list[str] = []
    cursor = None
    while page := filled.scan("ns", "job/", limit=1, reverse=True, start_after=cursor):
        back.extend(keys(page))
        cursor = page[-1][0]
    assert back == ["job/2", "job/10", "job/1", "job/"]


def test_count(filled: Store) -> None:
    assert filled.count("ns") == 8
    assert filled.count("ns", "job/") == 4
    assert filled.count("ns", "job") == 5
    assert filled.count("other") == 1
    assert filled.count("missing") == 0


UNICODE_KEYS = ["z", "é", "ÿ", "Ā", "中", "\uffff", "\U0001f600", "\U0010ffff", "a\U0010ffff", "a\U0010ffffb"]


def test_unicode_keys_order_by_utf8_bytes(store: Store) -> None:
    for k in UNICODE_KEYS:
        store.put("ns", k, {"k": k})
    expected = sorted(UNICODE_KEYS, key=lambda k: k.encode("utf-8"))
    # U+FFFF < U+1F600 in UTF-8 byte order, unlike UTF-16 code unit order.
    assert expected.index("\uffff") < expected.index("\U0001f600")
    assert keys(store.scan("ns")) == expected
    assert keys(store.scan("ns", reverse=True)) == expected[::-1]
    assert keys(store.scan("ns", "a\U0010ffff")) == ["a\U0010ffff", "a\U0010ffffb"]
    assert keys(store.scan("ns", "\U0010ffff")) == ["\U0010ffff"]
    assert store.get("ns", "中") == {"k": "中"}


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound("ab") == "ac"
    assert prefix_upper_bound("a\U0010ffff") == "b"
    assert prefix_upper_bound("\U0010ffff\U0010ffff") is None
    assert prefix_upper_bound("a\ud7ff") == "a\ue000"


# --- batch ------------------------------------------------------------------------------------------


def test_batch_applies_all_writes_in_order(store: Store) -> None:
    store.put("ns", "gone", {"v": 0})
    with store.batch() as b:
        b.put("ns", "a", {"v": 1})
        b.put("ns", "b", {"v": 2})
        b.delete("ns", "gone")
        b.put("ns", "a", {"v": 3})
        b.put("ns", "tmp", {"v": 4})
        b.delete("ns", "tmp")
        # Nothing is visible before the block exits.
        assert store.get("ns", "a") is None
        assert store.get("ns", "gone") == {"v": 0}
    assert store.scan("ns") == [("a", {"v": 3}), ("b", {"v": 2})]


def test_batch_discards_everything_when_the_block_raises(store: Store) -> None:
    store.put("ns", "keep", {"v": 0})
    with pytest.raises(RuntimeError, match="boom"), store.batch() as b:
        b.put("ns", "a", {"v": 1})
        b.delete("ns", "keep")
        raise RuntimeError("boom")
    assert store.get("ns", "a") is None
    assert store.get("ns", "keep") == {"v": 0}


def test_batch_rejects_bad_value_when_added(store: Store) -> None:
    with pytest.raises(StoreError), store.batch() as b:
        b.put("ns", "a", {"v": 1})
        b.put("ns", "b", {"v": object()})
    assert store.count("ns") == 0


def test_batch_value_is_copied_when_added(store: Store) -> None:
    value: dict[str, Any] = {"v": [1]}
    with store.batch() as b:
        b.put("ns", "a", value)
        value["v"].append(2)
    assert store.get("ns", "a") == {"v": [1]}


def test_empty_batch_is_fine(store: Store) -> None:
    with store.batch():
        pass
    assert store.count("ns") == 0


# --- put_if_absent ----------------------------------------------------------------------------------


def test_put_if_absent_inserts_once(store: Store) -> None:
    assert store.put_if_absent("idem", "req-1", {"answer": 1}) is True
    assert store.put_if_absent("idem", "req-1", {"answer": 2}) is False
    assert store.get("idem", "req-1") == {"answer": 1}
    store.delete("idem", "req-1")
    assert store.put_if_absent("idem", "req-1", {"answer": 3}) is True
    assert store.get("idem", "req-1") == {"answer": 3}


# --- open_store ------------------------------------------------------------------------------------


def test_open_store(tmp_path: Path) -> None:
    with open_store("memory://") as m:
        assert isinstance(m, MemoryStore)
    for target in (tmp_path / "a.db", str(tmp_path / "b.db"), f"sqlite://{tmp_path / 'c.db'}"):
        with open_store(target) as s:
            assert isinstance(s, SQLiteStore)
            s.put("ns", "k", {"v": 1})
    assert (tmp_path / "c.db").exists()
    with pytest.raises(StoreError, match="unknown store URL scheme 'mysql'"):
        open_store("mysql://db/x")


def test_open_store_opens_postgres(postgres_url: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        with open_store(url) as s:
            assert isinstance(s, PostgresStore)
            s.put("ns", "k", {"v": 1})
            assert s.get("ns", "k") == {"v": 1}


# --- property test: a random sequence of operations against a dict model ----------------------------

NAMESPACES = st.sampled_from(["a", "b"])
KEYS = st.text(alphabet="ab/é中\U0001f600\U0010ffff", max_size=3)
VALUES = st.fixed_dictionaries(
    {"n": st.integers(-(2**53), 2**53)},
    optional={
        "s": st.text(max_size=5),
        "l": st.lists(st.booleans(), max_size=3),
        "f": st.floats(allow_nan=False, allow_infinity=False),
    },
)
BATCH_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), NAMESPACES, KEYS, VALUES),
        st.tuples(st.just("delete"), NAMESPACES, KEYS, st.none()),
    ),
    max_size=6,
)


class _Abort(Exception):
    pass


def _machine(factory: Callable[[Path], Store]) -> type[RuleBasedStateMachine]:
    class StoreMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tmp = Path(tempfile.mkdtemp(prefix="blendr-store-"))
            self.store = factory(self.tmp)
            self.model: dict[tuple[str, str], dict[str, Any]] = {}

        def teardown(self) -> None:
            self.store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

        @initialize()
        def start(self) -> None:
            assert self.store.count("a") == 0

        @rule(ns=NAMESPACES, key=KEYS, value=VALUES)
        def put(self, ns: str, key: str, value: dict[str, Any]) -> None:
            self.store.put(ns, key, value)
            self.model[(ns, key)] = value

        @rule(ns=NAMESPACES, key=KEYS)
        def delete(self, ns: str, key: str) -> None:
            assert self.store.delete(ns, key) is ((ns, key) in self.model)
            self.model.pop((ns, key), None)

        @rule(ns=NAMESPACES, key=KEYS, value=VALUES)
        def put_if_absent(self, ns: str, key: str, value: dict[str, Any]) -> None:
            inserted = self.store.put_if_absent(ns, key, value)
            assert inserted is ((ns, key) not in self.model)
            self.model.setdefault((ns, key), value)

        @rule(ops=BATCH_OPS, fail=st.booleans())
        def batch(self, ops: list[tuple[str, str, str, dict[str, Any] | None]], fail: bool) -> None:
            try:
                with self.store.batch() as b:
                    for kind, ns, key, value in ops:
                        if kind == "put":
                            assert value is not None
                            b.put(ns, key, value)
                        else:
                            b.delete(ns, key)
                    if fail:
                        raise _Abort
            except _Abort:
                return
            for kind, ns, key, value in ops:
                if kind == "put":
                    assert value is not None
                    self.model[(ns, key)] = value
                else:
                    self.model.pop((ns, key), None)

        @rule(ns=NAMESPACES, key=KEYS)
        def get(self, ns: str, key: str) -> None:
            assert self.store.get(ns, key) == self.model.get((ns, key))

        @rule(
            ns=NAMESPACES,
            prefix=KEYS,
            limit=st.none() | st.integers(0, 4),
            reverse=st.booleans(),
            start_after=st.none() | KEYS,
        )
        def scan(
            self, ns: str, prefix: str, limit: int | None, reverse: bool, start_after: str | None
        ) -> None:
            expected = sorted(
                ((k, v) for (n, k), v in self.model.items() if n == ns and k.startswith(prefix)),
                key=lambda kv: kv[0].encode("utf-8"),
                reverse=reverse,
            )
            if start_after is not None:
                cursor = start_after.encode("utf-8")
                expected = [
                    kv for kv in expected if (kv[0].encode() < cursor if reverse else kv[0].encode() > cursor)
                ]
            if limit is not None:
                expected = expected[:limit]
            assert (
                self.store.scan(ns, prefix, limit=limit, reverse=reverse, start_after=start_after) == expected
            )

        @precondition(lambda self: bool(self.model))
        @rule(ns=NAMESPACES, prefix=KEYS)
        def count(self, ns: str, prefix: str) -> None:
            expected = sum(1 for (n, k) in self.model if n == ns and k.startswith(prefix))
            assert self.store.count(ns, prefix) == expected

        @invariant()
        def sizes_match(self) -> None:
            for ns in ("a", "b"):
                assert self.store.count(ns) == sum(1 for n, _ in self.model if n == ns)

    return StoreMachine


_SETTINGS = settings(
    max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

TestMemoryStoreMachine = _machine(lambda _tmp: MemoryStore()).TestCase
TestMemoryStoreMachine.settings = _SETTINGS

TestSQLiteStoreMachine = _machine(lambda tmp: SQLiteStore(tmp / "model.db")).TestCase
TestSQLiteStoreMachine.settings = _SETTINGS


def test_postgres_store_machine(postgres_url: str) -> None:
    """The same model-based run against PostgreSQL (one database, emptied for each example)."""
    from hypothesis.stateful import run_state_machine_as_test

    def fresh(_tmp: Path) -> Store:
        s = PostgresStore(postgres_url)
        s._run("reset", lambda c: c.execute("DELETE FROM blendr_kv"), retry=True)
        return s

    run_state_machine_as_test(_machine(fresh), settings=settings(
        max_examples=15, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]))


# --- leases and fencing ------------------------------------------------------------------------------


def test_a_lease_is_taken_renewed_and_refused_to_others(store: Store) -> None:
    assert store.read_lease("lead") is None
    a = store.acquire_lease("lead", "a", 30.0, "a:1")
    assert (a.holder, a.epoch, a.address) == ("a", 1, "a:1") and a.held and a.expires_at > a.now + 29
    again = store.acquire_lease("lead", "a", 30.0, "a:1")
    assert again.epoch == 1 and again.expires_at >= a.expires_at
    b = store.acquire_lease("lead", "b", 30.0, "b:1")
    assert (b.holder, b.epoch, b.address) == ("a", 1, "a:1")  # refused: a holds it
    assert store.release_lease("lead", "b") is False
    assert store.release_lease("lead", "a") is True
    b = store.acquire_lease("lead", "b", 30.0, "b:1")
    assert (b.holder, b.epoch) == ("b", 2)
    assert store.acquire_lease("other", "a", 30.0).epoch == 1  # leases are separate


def test_a_lapsed_lease_goes_to_the_next_holder_at_the_next_epoch(store: Store) -> None:
    store.acquire_lease("lead", "a", 0.3)
    while (lease := store.read_lease("lead")) is not None and lease.held:
        time.sleep(0.02)
    assert store.acquire_lease("lead", "a", 0.3).epoch == 1  # renewed by the same holder after a lapse: same epoch
    while (lease := store.read_lease("lead")) is not None and lease.held:
        time.sleep(0.02)
    b = store.acquire_lease("lead", "b", 30.0)
    assert (b.holder, b.epoch) == ("b", 2)


def test_fenced_writes_land_only_at_the_holders_epoch(store: Store) -> None:
    store.acquire_lease("lead", "a", 30.0)
    view = store.fenced("lead", "a", 1)
    view.put("ns", "k", {"v": 1})
    with view.batch() as b:
        b.put("ns", "k2", {"v": 2})
        b.delete("ns", "k")
    assert view.put_if_absent("ns", "k3", {"v": 3}) is True
    assert store.get("ns", "k") is None and store.get("ns", "k2") == {"v": 2} and view.get("ns", "k3") == {"v": 3}
    store.release_lease("lead", "a")
    store.acquire_lease("lead", "b", 30.0)
    for write in (lambda: view.put("ns", "k", {"v": "stale"}), lambda: view.delete("ns", "k2"),
                  lambda: view.put_if_absent("ns", "k4", {"v": "stale"})):
        with pytest.raises(FencedError, match="epoch 2"):
            write()
    with pytest.raises(FencedError), view.batch() as b:
        b.put("ns", "k5", {"v": "stale"})
        b.put("ns", "k6", {"v": "stale"})
    assert store.get("ns", "k") is None and store.get("ns", "k2") == {"v": 2}
    assert store.get("ns", "k4") is None and store.get("ns", "k5") is None and store.get("ns", "k6") is None
    view.close()  # the view owns nothing
    store.put("ns", "still", {"open": True})
    store.fenced("lead", "b", 2).put("ns", "k", {"v": "b"})
    assert store.get("ns", "k") == {"v": "b"}


def test_a_fenced_write_after_the_lease_lapsed_is_refused(store: Store) -> None:
    store.acquire_lease("lead", "a", 0.3)
    view = store.fenced("lead", "a", 1)
    while (lease := store.read_lease("lead")) is not None and lease.held:
        time.sleep(0.02)
    with pytest.raises(FencedError, match="lapsed"):
        view.put("ns", "k", {"v": 1})
    store.acquire_lease("lead", "a", 30.0)  # renewed: nobody took it meanwhile, the same epoch writes again
    view.put("ns", "k", {"v": 1})
    assert store.get("ns", "k") == {"v": 1}


@pytest.mark.parametrize("bad", [("", "a", 1.0), ("l", "", 1.0), ("l", "a", 0.0), ("l", "a", math.inf),
                                 ("l", "a", -1.0), ("x" * 201, "a", 1.0), ("l", "a\x00", 1.0)])
def test_bad_lease_arguments_raise_store_error(store: Store, bad: tuple[str, str, float]) -> None:
    with pytest.raises(StoreError):
        store.acquire_lease(*bad)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_racing_holders_get_one_lease(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Eight holders, each on its own connection, ask at once: one holds it, the rest see that one."""
    url = str(tmp_path / "race.db") if kind == "sqlite" else request.getfixturevalue("postgres_url")
    stores = [open_store(url) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    got: list[str] = []

    def ask(i: int) -> None:
        barrier.wait()
        got.append(stores[i].acquire_lease("lead", f"h{i}", 30.0).holder)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert len(got) == 8 and len(set(got)) == 1


def test_postgres_comes_back_after_a_restart(postgres_server: Any, postgres_url: str) -> None:
    """A write while PostgreSQL is down raises StoreUnavailableError (UNAVAILABLE on the wire); once it is back, the
    same store object works again on a fresh connection, and nothing written before is lost."""
    s = PostgresStore(postgres_url)
    s.put("ns", "before", {"v": 1})
    postgres_server.stop()
    try:
        with pytest.raises(StoreUnavailableError) as err:
            s.put("ns", "during", {"v": 2})
        assert "postgres@" not in str(err.value) and "127.0.0.1" in str(err.value)
    finally:
        postgres_server.start()
    assert s.get("ns", "before") == {"v": 1}
    s.put("ns", "after", {"v": 3})
    assert s.get("ns", "after") == {"v": 3} and s.get("ns", "during") is None
    postgres_server.restart()  # a restart between two calls: the next call reconnects by itself
    assert s.get("ns", "after") == {"v": 3}
    s.close()


def test_a_postgres_url_names_no_password_in_errors() -> None:
    with pytest.raises(StoreError) as err:
        PostgresStore("postgresql://blendr:s3cret-pw@127.0.0.1:1/blendr", connect_timeout_s=1)
    assert "s3cret-pw" not in str(err.value) and "127.0.0.1:1/blendr" in str(err.value)


def test_a_postgres_database_that_is_not_utf8_is_refused(postgres_server: Any) -> None:
    import psycopg

    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE ascii_store ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    try:
        with pytest.raises(StoreError, match="not UTF8"):
            PostgresStore(postgres_server.database_url("ascii_store"))
    finally:
        postgres_server.drop("ascii_store")
