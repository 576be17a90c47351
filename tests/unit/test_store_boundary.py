"""Only ``idp/store`` talks to Redis, and the store interface has no operation on two
keys — together that is why no key needs a hash tag on a Redis Cluster (no command can
cross slots). A new multi-key operation must come with keys that share a hash tag."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from idp.store.base import Store

ROOT = Path(__file__).resolve().parents[2]


def _imports_redis(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "redis"
                                                for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and not node.level \
                and (node.module or "").split(".")[0] == "redis":
            return True
    return False


def test_only_the_store_imports_redis():
    offenders = [str(p.relative_to(ROOT)) for package in ("idp", "admin", "connectors")
                 for p in sorted((ROOT / package).rglob("*.py"))
                 if "store" not in p.relative_to(ROOT).parts[:2] and _imports_redis(p)]
    assert offenders == []


def test_every_store_operation_names_one_key():
    for name, method in inspect.getmembers(Store, inspect.isfunction):
        if name.startswith("_") or name == "ping":
            continue
        params = list(inspect.signature(method).parameters)
        if name.endswith("_many"):
            # A batch of one-key operations sent together; see the next test.
            assert params[1:] == ["items"], name
            continue
        assert params[1] == "key", name
        assert not any(p.endswith("keys") or p == "other_key" for p in params), name


def test_batches_are_one_key_operations_in_a_plain_pipeline():
    """A ``*_many`` operation may touch keys in different slots only because it is no
    transaction: redis-py's cluster pipeline sends each command to its own node."""
    from idp.store import redis as redis_store

    for name, method in inspect.getmembers(redis_store.RedisStore, inspect.isfunction):
        if not name.endswith("_many"):
            continue
        source = inspect.getsource(method)
        assert "pipeline(transaction=False)" in source, name
        assert "keys=[self._k(key)]" in source, name
