"""Connector configuration files: the happy path and clear errors for bad ones."""

from __future__ import annotations

import pytest

from connectors.base import ConnectorError
from connectors.config import load_source
from connectors.csv_source import CsvSource

GOOD = '''
[source]
name = "old-portal"
kind = "csv"
trusted = true

[fields]
legacy_id = "ID"
name = "XM"

[password]
format = "md5-salt-before"

[csv]
path = "data/users.tsv"
encoding = "gb18030"
'''


def write(tmp_path, text):
    path = tmp_path / "portal.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_resolves_relative_path(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "users.tsv").write_bytes("ID\tXM\n7\t张三\n".encode("gb18030"))
    source = load_source(write(tmp_path, GOOD))
    assert isinstance(source, CsvSource)
    assert source.name == "old-portal" and source.trusted is True
    assert source.describe() == {
        "name": "old-portal", "kind": "csv", "trusted": True, "entity": "auto",
        "location": {"path": str(tmp_path / "data" / "users.tsv"), "encoding": "gb18030",
                     "delimiter": "tab"},
        "fields": {"legacy_id": "ID", "name": "XM"}, "password_format": "md5-salt-before"}
    (row,) = list(source.rows())
    assert (row.legacy_id, row.name, row.password_format) == ("7", "张三", "md5-salt-before")


@pytest.mark.parametrize(("change", "message"), [
    (("trusted = true", "trusted = true\ncolour = 1"), r"unknown key\(s\) in \[source\]: colour"),
    (("[password]", "[extra]\nx=1\n[password]"), r"unknown table\(s\)/key\(s\) extra"),
    (('name = "XM"', 'name = "XM"\nnickname = "NC"'), r"unknown key\(s\) in \[fields\]: nick"),
    (('legacy_id = "ID"\n', ""), r"must map 'legacy_id'"),
    (('kind = "csv"', 'kind = "excel"'), r"kind 'excel' is not one of csv, sql, ldap"),
    (('kind = "csv"', ""), r"\[source\] kind is required"),
    (("trusted = true", 'trusted = "yes"'), r"\[source\] trusted must be true/false"),
    (("trusted = true", 'trusted = true\nentity = "company"'),
     r"\[source\] entity 'company' is not one of auto, person, organisation"),
    (('path = "data/users.tsv"', "path = 3"), r"\[csv\] path must be a string"),
    (('path = "data/users.tsv"\n', ""), r"\[csv\] path is required"),
    (('encoding = "gb18030"', 'encoding = "big5"'), r"unsupported encoding 'big5'"),
    (("[csv]", '[sql]\nurl = "sqlite://"\n[csv]'), r"kind is 'csv' but the file has \[sql\]"),
    (('format = "md5-salt-before"', 'format = "md5"\nsalt = "x"'),
     r"unknown key\(s\) in \[password\]: salt"),
    (('name = "XM"', 'name = ""'), r"field 'name' must name a source column"),
    (("[fields]", "fields = 1\n[x]"), r"unknown table|must be a table"),
    (("[source]", "[source\n"), r"is not valid TOML"),
])
def test_bad_config_is_a_clear_error(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(ConnectorError, match=message):
        load_source(write(tmp_path, GOOD.replace(old, new, 1)))


def test_missing_and_non_utf8_config(tmp_path):
    with pytest.raises(ConnectorError, match="cannot read connector config"):
        load_source(tmp_path / "absent.toml")
    path = tmp_path / "gbk.toml"
    path.write_bytes(GOOD.replace("old-portal", "旧门户").encode("gbk"))
    with pytest.raises(ConnectorError, match="not valid TOML|not UTF-8"):
        load_source(path)


def test_sql_and_ldap_configs(tmp_path, monkeypatch):
    sql = write(tmp_path, '[source]\nname = "db"\nkind = "sql"\n[fields]\nlegacy_id = "id"\n'
                          '[sql]\nurl_env = "LEGACY_DB"\nquery = "SELECT 1 AS id"\n')
    with pytest.raises(ConnectorError, match="url_env names 'LEGACY_DB', which is not set"):
        load_source(sql)
    monkeypatch.setenv("LEGACY_DB", "postgresql://u:pw@db.internal/legacy")
    source = load_source(sql)
    assert source.describe()["location"] == {
        "url": "postgresql+psycopg://u:***@db.internal/legacy", "query": "SELECT 1 AS id"}
    ldap = write(tmp_path, '[source]\nname = "dir"\nkind = "ldap"\n[fields]\nlegacy_id = "uid"\n'
                           '[ldap]\nurl = "ldap://127.0.0.1:1"\nbase_dn = "dc=x"\n'
                           'bind_dn = "cn=a,dc=x"\npassword = "pw1"\npage_size = 50\n')
    ldap_text = ldap.read_text()
    described = load_source(ldap).describe()
    assert described["location"]["password"] == "***" and "pw1" not in str(described)
    bad = ldap_text.replace("page_size = 50", "page_size = true")
    with pytest.raises(ConnectorError, match=r"\[ldap\] page_size must be an integer"):
        load_source(write(tmp_path, bad))
    no_base = ldap_text.replace('base_dn = "dc=x"\n', "")
    with pytest.raises(ConnectorError, match=r"\[ldap\] base_dn is required"):
        load_source(write(tmp_path, no_base))
