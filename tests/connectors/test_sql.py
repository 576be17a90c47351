"""SQL connector against a real PostgreSQL database and a SQLite file."""

from __future__ import annotations

import sqlite3
import time
import tracemalloc

import psycopg
import pytest

from connectors.base import ConnectorError
from connectors.config import load_source
from connectors.sql_source import SqlSource
from tests import backends

FIELDS = {"legacy_id": "yhid", "name": "xm", "id_number": "sfzh", "phone": "sj",
          "password_hash": "mm", "password_salt": "yan", "created_at": "cjsj"}
DATA = [
    (1, "张三", "11010519491231002X", "13800138000", "abc", "s1", "2019-01-02 03:04:05"),
    (2, "李䶮", " 440301199001011234 ", None, None, None, None),
    (None, "无ID", None, None, None, None, None),
    (4, "王五", "", "", "", "", None),
]
N_BIG = 100_000
DDL = ("CREATE TABLE {t} (yhid INTEGER, xm TEXT, sfzh TEXT, sj TEXT, mm TEXT, yan TEXT, "
       "cjsj {ts})")


@pytest.fixture(scope="module")
def pg_url():
    problem = backends.pg_available()
    if problem:
        pytest.fail(f"PostgreSQL on 127.0.0.1 is required (scripts/test.sh starts it): {problem}")
    name, url = backends.create_pg_database()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DDL.format(t="legacy.yh", ts="TIMESTAMP").replace(
                "CREATE TABLE", "CREATE SCHEMA legacy; CREATE TABLE"))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO legacy.yh VALUES (%s,%s,%s,%s,%s,%s,%s)", DATA)
            conn.execute("CREATE TABLE big (id INTEGER, xm TEXT, sfzh TEXT)")
            with conn.cursor().copy("COPY big (id, xm, sfzh) FROM STDIN") as copy:
                for i in range(N_BIG):
                    copy.write_row((i, f"张三{i % 97}", f"1101051949123{i % 10000:04d}X"))
        yield url
    finally:
        backends.drop_pg_database(name)


@pytest.fixture
def sqlite_path(tmp_path):
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.execute(DDL.format(t="yh", ts="TEXT"))
        conn.executemany("INSERT INTO yh VALUES (?,?,?,?,?,?,?)", DATA)
    return path


def check_rows(source):
    rows = list(source.rows())
    assert [r.legacy_id for r in rows] == ["1", "2", "4"]
    first, second, third = rows
    assert first.name == "张三" and first.id_number == "11010519491231002X"
    assert first.password_hash == "abc" and first.password_salt == "s1"
    assert first.created_at in ("2019-01-02T03:04:05", "2019-01-02 03:04:05")
    assert second.name == "李䶮" and second.id_number == "440301199001011234"
    assert second.phone is None
    assert third.id_number is None and third.password_hash is None
    assert source.error_count == 1
    assert "missing legacy id" in str(source.errors[0])
    return rows


def test_postgres_table(pg_url):
    source = SqlSource("pg", FIELDS, url=pg_url, table="legacy.yh", batch_size=2)
    rows = check_rows(source)
    assert rows[0].created_at == "2019-01-02T03:04:05"
    assert source.describe()["location"] == {"url": pg_url.replace(
        "postgresql://", "postgresql+psycopg://"), "table": "legacy.yh"}


def test_postgres_query_and_fingerprints(pg_url):
    query = "SELECT * FROM legacy.yh ORDER BY yhid NULLS FIRST"
    source = SqlSource("pg", FIELDS, url=pg_url, query=query)
    fingerprints = [r.fingerprint() for r in check_rows(source)]
    assert fingerprints == [r.fingerprint() for r in source.rows()]


def test_postgres_streams_with_flat_memory(pg_url):
    source = SqlSource("pg", {"legacy_id": "id", "name": "xm", "id_number": "sfzh"},
                       url=pg_url, table="big")
    start = time.perf_counter()
    count = sum(1 for _ in source.rows())
    elapsed = time.perf_counter() - start
    assert count == N_BIG
    print(f"\nSQL (PostgreSQL, table, stream_results): {count / elapsed:,.0f} rows/s")
    tracemalloc.start()
    try:
        count = sum(1 for _ in source.rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == N_BIG
    assert peak < 6 * 1024 * 1024, f"peak {peak} bytes"


def test_postgres_errors_are_clear(pg_url):
    with pytest.raises(ConnectorError, match="table 'nope' does not exist"):
        list(SqlSource("pg", FIELDS, url=pg_url, table="nope").rows())
    with pytest.raises(ConnectorError, match=r"no column\(s\) 'sj', 'mm', 'yan', 'cjsj'"):
        list(SqlSource("pg", FIELDS, url=pg_url,
                       query="SELECT yhid, xm, sfzh FROM legacy.yh").rows())
    with pytest.raises(ConnectorError, match="query failed"):
        list(SqlSource("pg", FIELDS, url=pg_url, query="SELEKT 1").rows())


def test_connection_failure_redacts_password():
    source = SqlSource("pg", FIELDS, url="postgresql://u:hunter2@127.0.0.1:1/x",
                       table="t")
    assert "hunter2" not in str(source.describe())
    with pytest.raises(ConnectorError, match="cannot connect") as info:
        list(source.rows())
    assert "hunter2" not in str(info.value)


def test_sqlite_table_and_query(sqlite_path):
    check_rows(SqlSource("lite", FIELDS, url=f"sqlite:///{sqlite_path}", table="yh"))
    check_rows(SqlSource("lite", FIELDS, url=f"sqlite:///{sqlite_path}",
                         query="SELECT * FROM yh WHERE xm <> :skip".replace(":skip", "'x'")))


def test_sqlite_from_config_with_relative_path(sqlite_path):
    config = sqlite_path.parent / "lite.toml"
    config.write_text(
        '[source]\nname = "lite"\nkind = "sql"\ntrusted = true\n'
        '[fields]\n' + "".join(f'{k} = "{v}"\n' for k, v in FIELDS.items()) +
        '[password]\nformat = "md5-salt-before"\n'
        '[sql]\nurl = "sqlite:///legacy.db"\ntable = "yh"\nbatch_size = 2\n',
        encoding="utf-8")
    source = load_source(config)
    assert source.trusted is True
    rows = check_rows(source)
    assert rows[0].password_format == "md5-salt-before"
    assert source.describe()["location"]["url"] == f"sqlite:///{sqlite_path}"


def test_bad_sql_options():
    with pytest.raises(ConnectorError, match="exactly one of 'query' or 'table'"):
        SqlSource("s", FIELDS, url="sqlite://", query="SELECT 1", table="t")
    with pytest.raises(ConnectorError, match="exactly one of 'query' or 'table'"):
        SqlSource("s", FIELDS, url="sqlite://")
    with pytest.raises(ConnectorError, match="not a database URL"):
        SqlSource("s", FIELDS, url="not a url", table="t")
    with pytest.raises(ConnectorError, match="cannot use database URL"):
        list(SqlSource("s", FIELDS, url="nosuchdb://x/y", table="t").rows())
