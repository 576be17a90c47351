"""LDAP connector against a real OpenLDAP slapd started by the test on a loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import ldap3
import pytest

from connectors.base import ConnectorError
from connectors.config import load_source
from connectors.ldap_source import LdapSource

SUFFIX = "dc=gov,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "s3cret-pw"
N_PEOPLE = 1200  # above slapd's default size limit (500), so paging is required
FIELDS = {"legacy_id": "uid", "name": "cn", "id_number": "employeeNumber",
          "phone": "mobile", "email": "mail", "password_hash": "userPassword"}

SLAPD_CONF = """
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
database mdb
maxsize 104857600
suffix "{suffix}"
rootdn "{root}"
rootpw {pw}
directory {dir}/db
access to attrs=userPassword by self write by * none
access to * by * read
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_slapd() -> str:
    path = shutil.which("slapd") or shutil.which("slapd", path="/usr/sbin:/usr/local/sbin")
    if not path:
        pytest.fail("OpenLDAP slapd is required (scripts/setup.sh --test installs slapd)")
    return path


@pytest.fixture(scope="module")
def ldap_url(tmp_path_factory):
    slapd = find_slapd()
    folder = tmp_path_factory.mktemp("slapd")
    (folder / "db").mkdir()
    conf = folder / "slapd.conf"
    conf.write_text(SLAPD_CONF.format(dir=folder, suffix=SUFFIX, root=ROOT_DN, pw=ROOT_PW))
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    proc = subprocess.Popen([slapd, "-d", "0", "-f", str(conf), "-h", url + "/"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    pytest.fail(f"slapd did not start: {out[-2000:]}")
                time.sleep(0.1)
        load(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def load(url: str) -> None:
    conn = ldap3.Connection(ldap3.Server(url), ROOT_DN, ROOT_PW, auto_bind=True)
    conn.add(SUFFIX, ["dcObject", "organization"], {"dc": "gov", "o": "政务"})
    people = f"ou=people,{SUFFIX}"
    conn.add(people, ["organizationalUnit"], {"ou": "people"})
    conn.add(f"uid=zhang,{people}", ["inetOrgPerson"], {
        "uid": "zhang", "cn": "张三", "sn": "张", "employeeNumber": " 11010519491231002X ",
        "mobile": "13800138000", "mail": ["zhang@example.cn", "z2@example.cn"],
        "userPassword": "{MD5}4QrcOUm6Wau+VuBX8g+IPg=="})
    conn.add(f"cn=noid,{people}", ["inetOrgPerson"], {"cn": "无ID", "sn": "x"})
    for i in range(N_PEOPLE):
        assert conn.add(f"uid=p{i:05d},{people}", ["inetOrgPerson"],
                        {"uid": f"p{i:05d}", "cn": f"李䶮{i}", "sn": "李"}), conn.result
    conn.unbind()


def source(url: str, **kw) -> LdapSource:
    opts = {"base_dn": SUFFIX, "bind_dn": ROOT_DN, "password": ROOT_PW,
            "filter": "(objectClass=inetOrgPerson)", "page_size": 100, **kw}
    return LdapSource("dir", FIELDS, url=url, **opts)


def test_paged_search_maps_attributes(ldap_url):
    src = source(ldap_url)
    rows = {r.legacy_id: r for r in src.rows()}
    assert len(rows) == N_PEOPLE + 1
    zhang = rows["zhang"]
    assert zhang.name == "张三" and zhang.id_number == "11010519491231002X"
    assert zhang.phone == "13800138000" and zhang.email == "zhang@example.cn"
    assert zhang.password_hash == "{MD5}4QrcOUm6Wau+VuBX8g+IPg=="
    assert rows["p00007"].name == "李䶮7" and rows["p00007"].phone is None
    assert src.error_count == 1
    assert str(src.errors[0]).startswith(f"cn=noid,ou=people,{SUFFIX}: missing legacy id")
    assert zhang.fingerprint() == next(
        r for r in src.rows() if r.legacy_id == "zhang").fingerprint()


def test_anonymous_bind_within_and_beyond_the_size_limit(ldap_url):
    src = source(ldap_url, bind_dn=None, password=None, filter="(uid=p000*)")
    rows = list(src.rows())
    assert len(rows) == 100
    assert all(r.password_hash is None for r in rows)  # the ACL hides it
    # slapd's default size limit (500) applies to anonymous paged searches too: the
    # truncated read must fail loudly, after the rows it did deliver.
    got = []
    with pytest.raises(ConnectorError, match="sizeLimitExceeded.*size limit"):
        got.extend(source(ldap_url, bind_dn=None, password=None, page_size=200).rows())
    assert 0 < len(got) <= 500


def test_dn_as_legacy_id_and_case_insensitive_attributes(ldap_url):
    src = LdapSource("dir", {"legacy_id": "dn", "name": "CN"}, url=ldap_url,
                     base_dn=f"ou=people,{SUFFIX}", filter="(uid=zhang)", scope="level")
    (row,) = list(src.rows())
    assert row.legacy_id == f"uid=zhang,ou=people,{SUFFIX}" and row.name == "张三"


def test_config_file_and_describe_redacts_password(ldap_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LEGACY_LDAP_PW", ROOT_PW)
    config = tmp_path / "dir.toml"
    config.write_text(
        '[source]\nname = "dir"\nkind = "ldap"\n'
        '[fields]\n' + "".join(f'{k} = "{v}"\n' for k, v in FIELDS.items()) +
        f'[ldap]\nurl = "{ldap_url}"\nbind_dn = "{ROOT_DN}"\n'
        'password_env = "LEGACY_LDAP_PW"\n'
        f'base_dn = "{SUFFIX}"\nfilter = "(uid=zhang)"\n', encoding="utf-8")
    src = load_source(config)
    assert ROOT_PW not in str(src.describe())
    assert src.describe()["location"]["password"] == "***"
    (row,) = list(src.rows())
    assert row.password_hash.startswith("{MD5}")


def test_errors_are_clear(ldap_url):
    with pytest.raises(ConnectorError, match="cannot connect/bind") as info:
        list(source(ldap_url, password="wrong").rows())
    assert "wrong" not in str(info.value)
    with pytest.raises(ConnectorError, match="search under 'dc=nope' failed"):
        list(source(ldap_url, base_dn="dc=nope").rows())
    with pytest.raises(ConnectorError, match="cannot connect/bind"):
        list(source(f"ldap://127.0.0.1:{free_port()}", timeout=2).rows())
    with pytest.raises(ConnectorError, match="must start with ldap://"):
        source("http://x")
    with pytest.raises(ConnectorError, match="filter must be an LDAP filter"):
        source(ldap_url, filter="uid=x")
