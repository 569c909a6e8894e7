"""The roster cache on real SQLite files: lookups, deltas, full-sync swaps, crashes in the middle of a sync."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import tracemalloc

import pytest

from daemon.errors import StoreError
from daemon.roster import RosterCache, RosterEntry, RosterMeta


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "roster.db")


@pytest.fixture
def cache(path):
    with RosterCache(path) as cache:
        yield cache


def test_lookup_ignores_ascii_case_both_ways(cache):
    cache.apply_delta([RosterEntry("AbC123", "active"), ("xyz9", "inactive")], "1", None, 10.0)
    assert cache.lookup("abc123") == cache.lookup("ABC123") == "active"
    assert cache.lookup("XYZ9") == "inactive"
    assert cache.lookup("abc1234") is None


def test_lookup_does_not_fold_non_ascii_letters(cache):
    cache.apply_delta([("k123", "active")], "1", None, 10.0)
    assert cache.lookup("\u212a123") is None  # KELVIN SIGN lower-cases to 'k' in Unicode, not in ASCII


def test_delta_upserts_and_tombstones_delete(cache):
    cache.apply_delta([("A1", "active"), ("B2", "active"), ("C3", "inactive")], "1", '"e1"', 10.0)
    cache.apply_delta([("a1", "inactive"), ("B2", "deleted"), ("never-seen", "deleted"), ("D4", "active")],
                      "2", '"e2"', 20.0)
    assert [cache.lookup(i) for i in ("a1", "b2", "c3", "d4")] == ["inactive", None, "inactive", "active"]
    assert cache.meta() == RosterMeta(cursor="2", etag='"e2"', synced_at=20.0, size=3)


def test_a_bad_entry_rejects_the_whole_delta_and_keeps_the_cursor(cache):
    cache.apply_delta([("A1", "active")], "1", None, 10.0)
    with pytest.raises(StoreError, match="status must be"):
        cache.apply_delta([("B2", "active"), ("C3", "banned")], "2", None, 20.0)
    with pytest.raises(StoreError, match="non-empty"):
        cache.apply_delta([("", "active")], "2", None, 20.0)
    assert cache.lookup("b2") is None
    assert cache.meta() == RosterMeta(cursor="1", etag=None, synced_at=10.0, size=1)


def test_a_page_is_applied_in_order_when_an_id_is_deleted_and_given_again(cache):
    cache.apply_delta([("A1", "active"), ("B2", "active")], "1", None, 10.0)
    page = [("a1", "deleted"), ("A1", "inactive"), ("B2", "deleted"), ("C3", "active"), ("c3", "inactive"),
            ("C3", "deleted"), ("b2", "active")]
    cache.apply_delta(page, "2", None, 20.0)
    assert [cache.lookup(i) for i in ("a1", "b2", "c3")] == ["inactive", "active", None]
    assert cache.size() == 2
    with cache.begin_full_sync() as sync:
        sync.add(page)
        sync.commit("3", None, 30.0)
    assert [cache.lookup(i) for i in ("a1", "b2", "c3")] == ["inactive", "active", None]
    assert cache.size() == 2


@pytest.mark.parametrize(("entry", "complaint"), [
    (("B2", "banned"), "status must be"), (("B2", ["active"]), "status must be"), ((b"B2", "active"), "non-empty"),
    (("", "active"), "non-empty"), ((None, "active"), "non-empty"), (("B2",), "not a .client_id, status. pair"),
    ("B22", "not a .client_id, status. pair"), (7, "not a .client_id, status. pair"),
])
def test_one_bad_entry_late_in_a_page_rejects_the_page(cache, entry, complaint):
    good = [(f"K{n}", "active") for n in range(500)]
    with pytest.raises(StoreError, match=complaint):
        cache.apply_delta([*good, entry, *good[:3]], "2", None, 20.0)
    with pytest.raises(StoreError, match=complaint), cache.begin_full_sync() as sync:
        sync.add([*good, entry])
    assert cache.size() == 0 and cache.lookup("K1") is None


def test_put_records_a_link_without_moving_the_cursor(cache):
    cache.apply_delta([("A1", "inactive")], "7", None, 10.0)
    cache.put("NEW1", "active")
    cache.put("a1", "active")
    assert cache.lookup("new1") == cache.lookup("A1") == "active"
    assert cache.meta() == RosterMeta(cursor="7", etag=None, synced_at=10.0, size=2)
    with pytest.raises(StoreError, match="active or inactive"):
        cache.put("X1", "deleted")


def test_full_sync_serves_the_old_roster_until_commit(cache, path):
    cache.apply_delta([("OLD1", "active"), ("BOTH", "inactive")], "1", None, 10.0)
    with cache.begin_full_sync() as sync:
        sync.add([("NEW1", "active"), ("both", "active")])
        sync.add([("NEW2", "inactive"), ("unknown", "deleted")])
        assert (cache.lookup("old1"), cache.lookup("new1"), cache.lookup("both")) == ("active", None, "inactive")
        sync.commit("100", '"full"', 50.0)
    assert (cache.lookup("old1"), cache.lookup("new1"), cache.lookup("both")) == (None, "active", "active")
    assert cache.meta() == RosterMeta(cursor="100", etag='"full"', synced_at=50.0, size=3)
    assert sorted(os.listdir(os.path.dirname(path))) == ["roster.db", "roster.db-shm", "roster.db-wal"]


def test_full_sync_tombstone_removes_an_id_received_on_an_earlier_page(cache):
    with cache.begin_full_sync() as sync:
        sync.add([("GONE", "active"), ("STAYS", "active")])
        sync.add([("gone", "deleted")])
        sync.commit("5", None, 1.0)
    assert (cache.lookup("gone"), cache.lookup("stays"), cache.size()) == (None, "active", 1)


def test_a_link_during_a_full_sync_survives_the_swap_unless_the_server_knows_the_id(cache):
    with cache.begin_full_sync() as sync:
        sync.add([("SERVER", "inactive")])
        cache.put("LINKED", "active")
        cache.put("server", "active")
        sync.commit("5", None, 1.0)
    assert (cache.lookup("linked"), cache.lookup("server"), cache.size()) == ("active", "inactive", 2)


def test_deltas_and_second_full_syncs_are_refused_while_one_is_open(cache):
    sync = cache.begin_full_sync()
    with pytest.raises(StoreError, match="full sync is in progress"):
        cache.apply_delta([("A1", "active")], "1", None, 1.0)
    with pytest.raises(StoreError, match="full sync is in progress"):
        cache.begin_full_sync()
    sync.abort()
    cache.apply_delta([("A1", "active")], "1", None, 1.0)
    assert cache.lookup("a1") == "active"


def test_abort_and_an_error_inside_the_block_delete_the_partial_file(cache, path):
    cache.apply_delta([("OLD1", "active")], "1", None, 10.0)
    with pytest.raises(RuntimeError), cache.begin_full_sync() as sync:
        sync.add([("NEW1", "active")])
        raise RuntimeError("connection lost")
    assert not os.path.exists(path + ".new")
    with pytest.raises(StoreError, match="already committed or aborted"):
        sync.add([("NEW2", "active")])
    assert cache.lookup("old1") == "active" and cache.lookup("new1") is None


def test_lookups_during_a_swap_see_old_or_new_never_an_error(cache):
    cache.apply_delta([("ID1", "inactive")], "1", None, 10.0)
    seen, errors, stop = set(), [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                seen.add(cache.lookup("id1"))
            except Exception as exc:  # noqa: BLE001 - any error here is the failure under test
                errors.append(exc)

    reader = threading.Thread(target=hammer)
    reader.start()
    try:
        for n in range(20):
            with cache.begin_full_sync() as sync:
                sync.add([("ID1", "active" if n % 2 == 0 else "inactive")])
                sync.commit(str(n + 2), None, 10.0 + n)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert seen <= {"active", "inactive"}


def test_a_swap_is_refused_while_another_process_has_the_roster_open(cache, path):
    cache.apply_delta([("OLD1", "active")], "1", None, 10.0)
    other = sqlite3.connect(path)  # e.g. an operator's sqlite3 shell: it keeps the old WAL alive
    other.execute("SELECT count(*) FROM roster").fetchone()
    try:
        with pytest.raises(StoreError, match="another process"), cache.begin_full_sync() as sync:
            sync.add([("NEW1", "active")])
            sync.commit("2", None, 20.0)
    finally:
        other.close()
    assert (cache.lookup("old1"), cache.lookup("new1"), cache.meta().cursor) == ("active", None, "1")
    assert not os.path.exists(path + ".new")
    cache.apply_delta([("NEW1", "active")], "2", None, 20.0)
    assert cache.lookup("new1") == "active"


def test_an_abandoned_full_sync_is_cleaned_up_at_reopen(path):
    cache = RosterCache(path)
    cache.apply_delta([("OLD1", "active")], "1", '"e"', 10.0)
    cache.begin_full_sync().add([("NEW1", "active")])
    assert os.path.exists(path + ".new")
    cache._reader.close(), cache._writer.close()  # the process dies: nothing is closed in order
    with RosterCache(path) as reopened:
        assert not os.path.exists(path + ".new")
        assert (reopened.lookup("old1"), reopened.lookup("new1")) == ("active", None)
        assert reopened.meta() == RosterMeta(cursor="1", etag='"e"', synced_at=10.0, size=1)


_SYNC_UNTIL_KILLED = textwrap.dedent("""
    import sys
    from daemon.roster import RosterCache
    cache = RosterCache(sys.argv[1])
    cache.apply_delta([("OLD1", "active"), ("OLD2", "inactive")], "1", None, 10.0)
    sync = cache.begin_full_sync()
    page = 0
    while True:
        sync.add((f"NEW{page}x{i}", "active") for i in range(500))
        page += 1
        print("page", page, flush=True)
""")


def test_sigkill_in_the_middle_of_a_full_sync_keeps_the_old_roster(path):
    child = subprocess.Popen([sys.executable, "-c", _SYNC_UNTIL_KILLED, path], stdout=subprocess.PIPE, text=True)
    try:
        while child.stdout.readline().split() != ["page", "5"]:
            assert child.poll() is None, "the syncing child died on its own"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert os.path.exists(path + ".new")
    with RosterCache(path) as reopened:
        assert not os.path.exists(path + ".new")
        assert (reopened.lookup("old1"), reopened.lookup("old2"), reopened.lookup("new0x1")) == \
            ("active", "inactive", None)
        assert reopened.meta() == RosterMeta(cursor="1", etag=None, synced_at=10.0, size=2)
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()


def test_memory_stays_flat_while_a_large_full_sync_streams_in(cache):
    pages, per_page = 200, 1000

    def page(n):
        return ((f"M{n:04d}{i:05d}", "active") for i in range(per_page))

    tracemalloc.start()
    try:
        with cache.begin_full_sync() as sync:
            for n in range(pages):
                sync.add(page(n))
            sync.commit("9", None, 1.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cache.size() == pages * per_page
    assert peak < 2_000_000  # one page's rows; holding all 200k entries would take well over 20 MB


def test_meta_and_entries_survive_reopen(path):
    with RosterCache(path) as cache:
        assert cache.meta() == RosterMeta(cursor=None, etag=None, synced_at=None, size=0)
        with cache.begin_full_sync() as sync:
            sync.add([("A1", "active")])
            sync.commit("3", '"e3"', 30.0)
        cache.apply_delta([("B2", "inactive")], "4", '"e4"', 40.0)
    with RosterCache(path) as cache:
        assert cache.meta() == RosterMeta(cursor="4", etag='"e4"', synced_at=40.0, size=2)
        assert (cache.lookup("a1"), cache.lookup("b2")) == ("active", "inactive")


def test_a_roster_from_a_newer_tagd_is_refused(path):
    RosterCache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer than this tagd"):
        RosterCache(path)


def test_a_closed_cache_raises_a_store_error(path):
    cache = RosterCache(path)
    cache.close()
    cache.close()
    with pytest.raises(StoreError):
        cache.lookup("a1")
    with pytest.raises(StoreError, match="closed"):
        cache.put("A1", "active")


def test_status_reading_the_roster_during_a_full_sync_leaves_the_sync_intact(tmp_path):
    from daemon.status import store_counts

    path = tmp_path / "roster.db"
    with RosterCache(str(path)) as roster:
        build = roster.begin_full_sync()
        build.add([("A123", "active")])
        counts = store_counts(str(tmp_path))  # `tagd status` while the daemon is still starting up
        assert counts["roster_size"] == 0 and (tmp_path / "roster.db.new").exists()
        build.commit("c1", None, 1.0)
        assert roster.lookup("a123") == "active"
