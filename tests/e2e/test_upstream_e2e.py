"""Signing in with another province's or a department's account, end to end.

Our ``idp serve`` (PostgreSQL + Redis) is configured with two independent upstream
providers, each a node-oidc-provider process (tests/e2e/upstream/server.mjs):

- "zj", a provincial real-name platform: claims in the ID token, may create people (L3);
  configured as a table in IDP_UPSTREAM_IDPS;
- "dept", a department's IdP: claims only at its userinfo endpoint, the ID number in a
  custom claim "sfzh", may not create people, but checks real names (level L3, so it
  may link existing people); configured by a TOML file.

A ``requests`` session plays the browser: the relying party's authorization request →
our login page → "使用XX账号登录" → the upstream's login form → our callback → the code
at the relying party, or a readable page. The rows are read from PostgreSQL.
"""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urljoin

import psycopg
import pytest
import requests

from .conftest import provider, running
from .oauth import pkce_pair, query, redeem_code
from .upstream import NodeUpstream, sign_in

PASSWORD = "E2e-Upstream-2026"
UPSTREAM_PW = "upstream-pw"  # every upstream test account's password
LINKED = ("11010519491231002X", "陈建国")  # registered here and at zj
RENAMED = ("110101199003070011", "王小明")  # registered here; zj spells the name 王晓明
NEWCOMER = ("350102199203050040", "赵雅琴")  # only at zj (which may create people)
STRANGER = ("440305198811200054", "黄志强")  # only at dept (which may not)
CLIENT_ID, REDIRECT = "e2e-portal", "http://127.0.0.1/rp/upstream-cb"


def _account(user, sub, number, name, **extra):
    return {"username": user, "password": UPSTREAM_PW, "sub": sub,
            "claims": {"name": name, **extra, "number": number}}


def _claims(accounts, id_claim):
    """Put each account's number under the provider's claim name."""
    out = []
    for a in accounts:
        claims = dict(a["claims"])
        claims[id_claim] = claims.pop("number")
        out.append({**a, "claims": claims})
    return out


ZJ_ACCOUNTS = [_account("chen", "zj-0001", "110105491231002", LINKED[1]),  # 15 digits
               _account("wang", "zj-0002", RENAMED[0], "王晓明"),
               _account("zhao", "zj-0003", NEWCOMER[0].lower(), NEWCOMER[1])]
DEPT_ACCOUNTS = [_account("chen", "dept-77", LINKED[0], LINKED[1]),
                 _account("huang", "dept-78", STRANGER[0], STRANGER[1])]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict]:
    # The two upstreams listen on the two ports after the provider's.
    with provider(tmp_path_factory, "upstream-idp", span=3) as idp:
        work = tmp_path_factory.mktemp("upstream-e2e")
        zj_port, dept_port = idp.port + 1, idp.port + 2
        cb = idp.issuer + "/login/upstream/{}/callback"
        secrets_ = {"zj": secrets.token_urlsafe(24), "dept": secrets.token_urlsafe(24)}
        zj = NodeUpstream(port=zj_port, workdir=work, claims_in_id_token=True,
                          clients=[{"client_id": "idp-at-zj", "client_secret": secrets_["zj"],
                                    "redirect_uris": [cb.format("zj")]}])
        dept = NodeUpstream(port=dept_port, workdir=work, claims_in_id_token=False,
                            id_claim="sfzh",
                            clients=[{"client_id": "idp-at-dept", "client_secret": secrets_["dept"],
                                      "redirect_uris": [cb.format("dept")]}])
        zj.set_accounts(_claims(ZJ_ACCOUNTS, "id_number"))
        dept.set_accounts(_claims(DEPT_ACCOUNTS, "sfzh"))
        (idp.instance_path / "dept.toml").write_text(f"""
[source]
name = "dept"
kind = "oidc"
system = "dept-idp"
label = "人社部门"

[oidc]
issuer = "{dept.issuer}"
client_id = "idp-at-dept"
client_secret_env = "UPSTREAM_DEPT_SECRET"
scope = "openid profile idcard"
create = false
level = "L3"

[claims]
id_number = "sfzh"
name = "name"
""", "utf-8")
        upstreams = [{"source": {"name": "zj", "kind": "oidc", "system": "zj-idp",
                                 "label": "浙江政务服务网"},
                      "oidc": {"issuer": zj.issuer, "client_id": "idp-at-zj",
                               "client_secret": secrets_["zj"], "scope": "openid profile idcard",
                               "create": True, "level": "L3"},
                      "claims": {"id_number": "id_number", "name": "name"}},
                     "dept.toml"]
        with zj, dept:
            idp.env["IDP_UPSTREAM_IDPS"] = json.dumps(upstreams, ensure_ascii=False)
            idp.env["UPSTREAM_DEPT_SECRET"] = secrets_["dept"]
            idp.run_cli("init")
            commands = [("user", "add", "--id-number", n, "--name", name, "--password", PASSWORD)
                        for n, name in (LINKED, RENAMED)]
            commands.append(("client", "add", "--client-id", CLIENT_ID, "--name", "办事大厅门户",
                             "--redirect-uri", REDIRECT, "--first-party"))
            with ThreadPoolExecutor(max_workers=len(commands)) as pool:  # ~1 s each to start
                *added, client = pool.map(lambda argv: idp.run_cli(*argv), commands)
            people = {n: p["id"] for (n, _name), p in zip((LINKED, RENAMED), added, strict=True)}
            with running(idp):
                yield {"idp": idp, "zj": zj, "dept": dept, "people": people,
                       "secret": client["client_secret"], "db": idp.env["DATABASE_URL"]}


def _rows(world, sql: str, *args) -> list[tuple]:
    with psycopg.connect(world["db"]) as conn:
        return conn.execute(sql, args).fetchall()


def _follow(browser: requests.Session, url: str, stop_at: str) -> str | requests.Response:
    """GET ``url`` and its redirects: the URL once one leads to ``stop_at``, else the page."""
    resp = browser.get(url, allow_redirects=False, timeout=15)
    for _ in range(10):
        if resp.status_code not in (302, 303):
            return resp
        location = urljoin(resp.url, resp.headers["Location"])
        if location.startswith(stop_at):
            return location
        resp = browser.get(location, allow_redirects=False, timeout=15)
    raise AssertionError("redirect loop")


def _sign_in_with(world, upstream: str, username: str) -> tuple[str | requests.Response, str]:
    """The whole dance in a fresh browser; (code URL or final page, PKCE verifier)."""
    idp = world["idp"]
    browser = requests.Session()
    verifier, challenge = pkce_pair()
    auth = idp.url("/authorize?" + urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": "openid profile", "state": "rp-state", "nonce": "rp-nonce",
        "code_challenge": challenge, "code_challenge_method": "S256"}))
    login = _follow(browser, auth, REDIRECT)
    assert isinstance(login, requests.Response) and login.status_code == 200, login
    form = re.search(rf'<form method="get" action="([^"]*/login/upstream/{upstream})">\s*'
                     r'<input type="hidden" name="rid" value="([^"]+)">', login.text)
    assert form, login.text[:3000]
    start = browser.get(urljoin(login.url, html.unescape(form.group(1))), timeout=15,
                        params={"rid": html.unescape(form.group(2))}, allow_redirects=False)
    assert start.status_code == 302, start.text[:500]
    up = world[upstream]
    assert start.headers["Location"].startswith(up.issuer + "/auth?")
    back = sign_in(browser, start.headers["Location"], idp.url("/login/upstream/"),
                   username=username, password=UPSTREAM_PW)
    return _follow(browser, back, REDIRECT), verifier


def _id_token(world, code_url: str, verifier: str) -> dict:
    idp = world["idp"]
    q = query(code_url)
    assert q["state"] == "rp-state", q
    claims = redeem_code(idp, CLIENT_ID, world["secret"], q["code"], REDIRECT, verifier)
    assert claims["iss"] == idp.issuer and claims["aud"] in (CLIENT_ID, [CLIENT_ID])
    assert claims["nonce"] == "rp-nonce"
    return claims


def _links(world, source: str) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in _rows(
        world, "SELECT legacy_id, state, rule, person_id FROM legacy_account WHERE source = %s",
        source)}


def _audit(world, event: str) -> list[dict]:
    rows = _rows(world, "SELECT details FROM audit_event WHERE event = %s UNION ALL "
                        "SELECT details FROM audit_pending WHERE event = %s", event, event)
    return [json.loads(d) if isinstance(d, str) else d for (d,) in rows]


def test_linked_by_number_and_name_then_by_sub(world):
    result, verifier = _sign_in_with(world, "zj", "chen")
    assert isinstance(result, str), result.text[:1000]
    claims = _id_token(world, result, verifier)
    person = world["people"][LINKED[0]]
    assert (claims["sub"] != LINKED[0], claims["amr"], claims["acr"]) == (True, ["fed"], "L2")
    assert _links(world, "zj-idp")["zj-0001"] == ("merged", "id_number_and_name", person)
    first = claims["sub"]

    # The upstream now says something else about the person: the link still holds.
    world["zj"].set_accounts(_claims([_account("chen", "zj-0001", "110105491231002", "陈建民"),
                                      *ZJ_ACCOUNTS[1:]], "id_number"))
    try:
        result, verifier = _sign_in_with(world, "zj", "chen")
    finally:
        world["zj"].set_accounts(_claims(ZJ_ACCOUNTS, "id_number"))
    assert isinstance(result, str), result.text[:1000]
    assert _id_token(world, result, verifier)["sub"] == first
    assert _links(world, "zj-idp")["zj-0001"][2] == person
    change = [c for c in _audit(world, "legacy.claims_changed") if c["legacy_id"] == "zj-0001"]
    assert change and change[0]["fields"] == ["name"]
    assert "陈建民" not in json.dumps(change, ensure_ascii=False)


def test_other_name_is_queued_for_review(world):
    result, _v = _sign_in_with(world, "zj", "wang")
    assert isinstance(result, requests.Response) and result.status_code == 200
    assert "您的账号需要人工核验" in result.text
    assert RENAMED[0] not in result.text and "王晓明" not in result.text
    assert "idp_sso" not in result.cookies and _links(world, "zj-idp")["zj-0002"][:2] == (
        "queued", "id_number_name_differs")
    assert _rows(world, "SELECT r.reason, r.state, r.candidates FROM review_item r "
                        "JOIN legacy_account a ON a.id = r.legacy_account_id "
                        "WHERE a.legacy_id = 'zj-0002'") == [
        ("id_number_name_differs", "pending", [world["people"][RENAMED[0]]])]


def test_trusted_upstream_creates_the_person(world):
    result, verifier = _sign_in_with(world, "zj", "zhao")
    assert isinstance(result, str), result.text[:1000]
    claims = _id_token(world, result, verifier)
    assert (claims["amr"], claims["acr"]) == (["fed"], "L2")
    state, rule, person_id = _links(world, "zj-idp")["zj-0003"]
    assert (state, rule) == ("created", "trusted_source_new_person")
    assert _rows(world, "SELECT name, assurance_level, assurance_method, password_hash "
                        "FROM person WHERE id = %s", person_id) == [
        (NEWCOMER[1], "L3", "upstream:zj", None)]


def test_department_claims_from_userinfo_link(world):
    result, verifier = _sign_in_with(world, "dept", "chen")
    assert isinstance(result, str), result.text[:1000]
    assert _id_token(world, result, verifier)["amr"] == ["fed"]
    assert _links(world, "dept-idp")["dept-77"] == (
        "merged", "id_number_and_name", world["people"][LINKED[0]])


def test_untrusted_department_refuses_unknown_people(world):
    result, _v = _sign_in_with(world, "dept", "huang")
    assert isinstance(result, requests.Response) and result.status_code == 403
    assert "无法使用该账号登录" in result.text and STRANGER[0] not in result.text
    assert "dept-78" not in _links(world, "dept-idp")
    assert not _rows(world, "SELECT 1 FROM audit_pending WHERE details::text LIKE %s "
                            "UNION ALL SELECT 1 FROM audit_event WHERE details::text LIKE %s",
                     f"%{STRANGER[0]}%", f"%{STRANGER[0]}%")
