"""The short-lived store's contract, identical on the embedded SQL backend and Redis."""

from __future__ import annotations

import threading
import time

from idp.store import store


def test_set_get_delete_and_expiry(ctx):
    s = store()
    s.set("k", {"a": 1}, 10)
    assert s.get("k") == {"a": 1}
    s.set("k", [2], 10)
    assert s.get("k") == [2]
    s.delete("k")
    assert s.get("k") is None
    s.set("short", 1, 0.3)
    time.sleep(0.45)
    assert s.get("short") is None


def test_add_only_once_until_expired(ctx):
    s = store()
    assert s.add("jti", 1, 0.3) is True
    assert s.add("jti", 1, 0.3) is False
    time.sleep(0.45)
    assert s.add("jti", 1, 10) is True


def test_take_is_single_use_under_concurrency(ctx):
    s = store()
    s.set("code", {"v": 1}, 10)
    results = []

    def grab():
        with ctx.app_context():
            results.append(store().take("code"))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r for r in results if r is not None] == [{"v": 1}]


def test_incr_counts_within_a_window(ctx):
    s = store()
    assert [s.incr("c", 0.4) for _ in range(3)] == [1, 2, 3]
    time.sleep(0.55)
    assert s.incr("c", 10) == 1


def test_append_members_touch(ctx):
    s = store()
    assert s.members("list") == []
    s.append("list", "a", 10)
    s.append("list", {"b": 2}, 10)
    assert s.members("list") == ["a", {"b": 2}]
    s.set("t", 1, 0.3)
    assert s.touch("t", 10) is True
    time.sleep(0.45)
    assert s.get("t") == 1
    assert s.touch("missing", 10) is False


def test_append_many_appends_each_list(ctx):
    """One round trip for several lists (the token endpoint's grant indexes): each list
    gets its value, existing members stay, and a longer time to live wins."""
    s = store()
    s.append("many:a", "old", 10)
    s.append_many([("many:a", "x", 0.3), ("many:b", {"y": 1}, 0.3), ("many:c", "z", 10)])
    assert s.members("many:a") == ["old", "x"]
    assert s.members("many:b") == [{"y": 1}]
    assert s.members("many:c") == ["z"]
    time.sleep(0.45)
    assert s.members("many:a") == ["old", "x"]  # kept by its earlier 10 s
    assert s.members("many:b") == []
    s.append_many([])


def test_incr_is_atomic_under_concurrency(ctx):
    """Every caller gets its own number: lockouts and rate limits rely on it."""
    s = store()
    got, gate = [], threading.Barrier(12)

    def bump():
        with ctx.app_context():
            gate.wait()
            got.append(s.incr("race", 30))

    threads = [threading.Thread(target=bump) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 13))
