"""Signing in with an upstream OpenID Connect provider (issue 4).

The linking decisions are checked by calling ``connectors.oidc_upstream.link`` with
verified-claims dicts; the protocol (discovery, PKCE, state, nonce, ID token checks) is
checked against a real node-oidc-provider (tests/e2e/upstream/server.mjs) that can also
hand back spoiled ID tokens. Both backends, as every integration test.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import free_port
from tests.e2e.upstream import NodeUpstream, sign_in
from tests.helpers import (
    CITIZEN_ID,
    authorize_url,
    exchange,
    form_fields,
    make_client,
    make_person,
    pkce_pair,
    query,
)

SECRET = "upstream-client-secret-" + "x" * 16
NAME = "李四"
OTHER_ID = "110101199003070011"  # valid; no person holds it here
BAD_CHECK = "110105194912310021"  # CITIZEN_ID with a wrong check character
CALLBACK = "http://localhost/login/upstream/"
UPSTREAM_PW = "pw"  # the upstream's test accounts' password


def _decode(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def upstream_conf(name="prov", *, issuer="https://idp.prov.example", create=False, level="L3",
                  id_claim="id_number", secret=SECRET, **oidc) -> dict:
    return {"source": {"name": name, "kind": "oidc", "system": f"{name}-idp",
                       "label": "外省政务服务网", "label_en": "Other Province"},
            "oidc": {"issuer": issuer, "client_id": f"ours-at-{name}", "client_secret": secret,
                     "scope": "openid profile idcard", "create": create, "level": level, **oidc},
            "claims": {"id_number": id_claim, "name": "name"}}


# -- the linking decisions, with claims as the upstream verified them -------------------

def _link(claims, **conf):
    from connectors.oidc_upstream import link, upstream_from_dict

    return link(upstream_from_dict(upstream_conf(**conf)), claims)


def _accounts():
    from idp.extensions import db
    from idp.models import LegacyAccount

    return db.session.scalars(db.select(LegacyAccount)).all()


def _reviews():
    from idp.extensions import db
    from idp.models import ReviewItem

    return db.session.scalars(db.select(ReviewItem).order_by(ReviewItem.id)).all()


def _audit(event: str) -> list[dict]:
    from idp import audit
    from idp.extensions import db

    audit.flush()
    rows = db.session.scalars(db.select(audit.AuditEvent).where(
        audit.AuditEvent.event == event)).all()
    return [json.loads(r.details) if isinstance(r.details, str) else r.details for r in rows]


@pytest.mark.parametrize("number", [
    CITIZEN_ID, "110105491231002",  # the same citizen's legacy 15-digit number
    "１１０１０５１９４９１２３１００２ｘ", "11010519491231002x"])  # full-width, lower-case x
def test_same_number_and_name_link_and_sign_in(ctx, number):
    person = make_person()
    out = _link({"sub": "u-1", "id_number": number, "name": " 李 四"})
    assert (out.action, out.rule, out.person.id, out.linked) == (
        "signin", "id_number_and_name", person.id, True)
    [acct] = _accounts()
    assert (acct.source, acct.legacy_id, acct.state, acct.person_id, acct.rule) == (
        "prov-idp", "u-1", "merged", person.id, "id_number_and_name")
    assert _reviews() == []
    [linked] = _audit("legacy.linked")
    text = json.dumps(linked, ensure_ascii=False)
    assert CITIZEN_ID not in text and "李四" not in text and linked["rule"] == "id_number_and_name"


def test_same_number_other_name_is_queued_once(ctx):
    person = make_person()
    claims = {"sub": "u-2", "id_number": CITIZEN_ID, "name": "张三"}
    out = _link(claims)
    assert (out.action, out.rule, out.person) == ("review", "id_number_name_differs", None)
    [acct] = _accounts()
    assert (acct.state, acct.person_id) == ("queued", None)
    [item] = _reviews()
    assert (item.reason, item.candidates, item.legacy_account_id) == (
        "id_number_name_differs", [person.id], acct.id)
    # The same claims again: still waiting, no second question.
    assert _link(claims).action == "review"
    assert len(_reviews()) == 1
    # The upstream corrects the name: the open question is superseded and the link made.
    out = _link({**claims, "name": NAME})
    assert (out.action, out.person.id) == ("signin", person.id)
    assert [i.state for i in _reviews()] == ["superseded"]


def test_upstream_without_real_name_checks_cannot_take_over_an_account(ctx):
    """An upstream at L2 lets its users declare any ID number and name: claims naming an
    existing account wait for an administrator instead of signing in as its holder."""
    from connectors import review

    person = make_person()
    claims = {"sub": "u-claims", "id_number": CITIZEN_ID, "name": NAME}
    for create in (False, True):
        out = _link(claims, create=create, level="L2")
        assert (out.action, out.rule, out.person) == ("review", "upstream_not_real_name", None)
    [acct] = _accounts()
    assert (acct.state, acct.person_id) == ("queued", None)
    [item] = _reviews()
    assert (item.reason, item.candidates) == ("upstream_not_real_name", [person.id])
    review.approve(item.id, by="admin-1")
    out = _link(claims, level="L2")
    assert (out.action, out.rule, out.person.id) == ("signin", "linked_sub", person.id)


def test_invalid_check_digit_is_queued_as_invalid(ctx):
    make_person()
    out = _link({"sub": "u-3", "id_number": BAD_CHECK, "name": NAME})
    assert out.action == "review" and out.rule.startswith("invalid_id_number:")
    [acct] = _accounts()
    assert (acct.state, acct.person_id) == ("invalid", None)
    assert [i.reason for i in _reviews()] == [out.rule]


def test_unknown_number_created_only_by_a_trusted_upstream(ctx):
    from idp.extensions import db
    from idp.models import Person

    out = _link({"sub": "u-4", "id_number": OTHER_ID, "name": "王小明"})
    assert (out.action, out.rule) == ("refused", "no_match_untrusted_source")
    assert _accounts() == [] and _reviews() == []

    out = _link({"sub": "u-4", "id_number": OTHER_ID, "name": "王小明"}, create=True, level="L3")
    assert (out.action, out.rule, out.created) == ("signin", "trusted_source_new_person", True)
    person = db.session.get(Person, out.person.id)
    assert (person.id_number, person.name, person.assurance_level, person.assurance_method,
            person.password_hash) == (OTHER_ID, "王小明", "L3", "upstream:prov", None)
    assert person.assurance_verified_at and person.status == "active"
    [acct] = _accounts()
    assert (acct.state, acct.person_id, acct.rule) == (
        "created", person.id, "trusted_source_new_person")


def test_linked_sub_signs_in_by_its_link_and_records_changed_claims(ctx):
    person = make_person()
    assert _link({"sub": "u-5", "id_number": CITIZEN_ID, "name": NAME}).action == "signin"
    [acct] = _accounts()
    before = acct.fingerprint
    out = _link({"sub": "u-5", "id_number": OTHER_ID, "name": "李四四"})
    assert (out.action, out.rule, out.person.id) == ("signin", "linked_sub", person.id)
    assert sorted(out.changed) == ["id_number", "name"]
    [acct] = _accounts()
    assert acct.fingerprint != before and acct.person_id == person.id
    [change] = _audit("legacy.claims_changed")
    assert change["fields"] == ["name", "id_number"] and change["id_number_differs"] is True
    assert OTHER_ID not in json.dumps(change)
    # Unchanged claims: nothing more recorded.
    assert _link({"sub": "u-5", "id_number": OTHER_ID, "name": "李四四"}).changed == []
    assert len(_audit("legacy.claims_changed")) == 1


def test_approved_review_lets_the_next_sign_in_through(ctx):
    from connectors import review

    person = make_person()
    claims = {"sub": "u-6", "id_number": CITIZEN_ID, "name": "李思"}
    assert _link(claims).action == "review"
    [item] = _reviews()
    review.approve(item.id, by="admin-1")
    out = _link(claims)
    assert (out.action, out.rule, out.person.id) == ("signin", "linked_sub", person.id)


def test_rejected_or_locked_links_are_refused(ctx):
    from connectors import review
    from idp.extensions import db

    person = make_person()
    assert _link({"sub": "u-7", "id_number": CITIZEN_ID, "name": "李思"}).action == "review"
    review.reject(_reviews()[0].id, by="admin-1")
    assert _link({"sub": "u-7", "id_number": CITIZEN_ID, "name": "李思"}).rule == (
        "rejected_by_review")
    assert _link({"sub": "u-8", "id_number": CITIZEN_ID, "name": NAME}).action == "signin"
    person.status = "locked"
    db.session.commit()
    out = _link({"sub": "u-8", "id_number": CITIZEN_ID, "name": NAME})
    assert (out.action, out.rule) == ("refused", "person_inactive")


@pytest.mark.parametrize("claims", [
    {"sub": "u-9", "name": NAME}, {"sub": "u-9", "id_number": CITIZEN_ID},
    {"sub": "u-9", "id_number": CITIZEN_ID, "name": ""}])
def test_claims_without_number_or_name_are_refused(ctx, claims):
    make_person()
    assert _link(claims, create=True).rule == "missing_claims"
    assert _accounts() == []


def test_custom_id_claim(ctx):
    person = make_person()
    out = _link({"sub": "u-10", "sfzh": CITIZEN_ID, "id_number": OTHER_ID, "name": NAME},
                id_claim="sfzh")
    assert (out.action, out.person.id) == ("signin", person.id)


# -- configuration --------------------------------------------------------------------

def test_toml_file_and_setting(tmp_path, monkeypatch):
    from connectors.oidc_upstream import load_all

    monkeypatch.setenv("PROV_SECRET", "s3cret")
    (tmp_path / "prov.toml").write_text(
        '[source]\nname = "prov"\nkind = "oidc"\nlabel = "外省"\n'
        '[oidc]\nissuer = "https://idp.prov.example/"\nclient_id = "c1"\n'
        'client_secret_env = "PROV_SECRET"\ncreate = true\nlevel = "L3"\n'
        '[claims]\nid_number = "sfzh"\n', "utf-8")
    ups = load_all(["prov.toml", upstream_conf("dept")], base=tmp_path)
    prov = ups["prov"]
    assert (prov.issuer, prov.client_secret, prov.create, prov.level, prov.id_claim,
            prov.system, prov.name_claim) == (
        "https://idp.prov.example", "s3cret", True, "L3", "sfzh", "prov", "name")
    assert ups["dept"].system == "dept-idp" and ups["dept"].create is False


@pytest.mark.parametrize("change, message", [
    ({"oidc": {"issuer": "https://x.example", "client_id": "c", "client_secret": "s",
               "colour": "red"}}, "unknown key(s) in [oidc]: colour"),
    ({"oidc": {"issuer": "https://x.example", "client_secret": "s"}}, "[oidc] client_id"),
    ({"oidc": {"issuer": "https://x.example", "client_id": "c",
               "client_secret_env": "NOT_SET_ANYWHERE_42"}}, "NOT_SET_ANYWHERE_42"),
    ({"oidc": {"issuer": "https://x.example", "client_id": "c", "client_secret": "s",
               "level": "L5"}}, "level must be one of"),
    ({"oidc": {"issuer": "https://x.example", "client_id": "c", "client_secret": "s",
               "create": "yes"}}, "create must be true/false"),
    ({"source": {"name": "Bad Name", "kind": "oidc"}}, "[source] name"),
    ({"source": {"name": "ok", "kind": "csv"}}, "kind must be"),
])
def test_bad_configuration_is_named(change, message):
    from connectors.base import ConnectorError
    from connectors.oidc_upstream import upstream_from_dict

    doc = {"source": {"name": "ok", "kind": "oidc"}, "claims": {}}
    doc.update(change)
    with pytest.raises(ConnectorError) as exc:
        upstream_from_dict(doc, where="prov.toml")
    assert message in str(exc.value) and "prov.toml" in str(exc.value)


def test_duplicate_names_are_refused():
    from connectors.base import ConnectorError
    from connectors.oidc_upstream import load_all

    with pytest.raises(ConnectorError, match="two upstream providers are named 'prov'"):
        load_all([upstream_conf(), upstream_conf()])


def test_two_upstreams_sharing_a_system_name_are_refused():
    from connectors.base import ConnectorError
    from connectors.oidc_upstream import load_all

    other = upstream_conf("dept")
    other["source"]["system"] = "prov-idp"  # the links of 'prov' are keyed by this
    with pytest.raises(ConnectorError, match="share the system name 'prov-idp'"):
        load_all([upstream_conf(), other])


# -- the protocol, against a real upstream provider -----------------------------------

@pytest.fixture(scope="session")
def node_upstream(tmp_path_factory):
    port = free_port()
    clients = [{"client_id": f"ours-at-{n}", "client_secret": SECRET,
                "redirect_uris": [f"{CALLBACK}{n}/callback"]} for n in ("prov", "real")]
    with NodeUpstream(port=port, workdir=tmp_path_factory.mktemp("upstream"),
                      clients=clients) as up:
        yield up


@pytest.fixture
def upstream(ctx, node_upstream):
    """Our provider configured with the node upstream as "prov" (links only) and as
    "real" (a real-name platform that may create people at L3)."""
    saved = ctx.config.get("UPSTREAM_IDPS")
    ctx.config["UPSTREAM_IDPS"] = [upstream_conf(issuer=node_upstream.issuer),
                                   upstream_conf("real", issuer=node_upstream.issuer,
                                                 create=True)]
    node_upstream.set_accounts([
        {"username": "lisi", "password": "pw-lisi", "sub": "sub-lisi",
         "claims": {"name": NAME, "id_number": "１１０１０５４９１２３１００２"}},
        {"username": "other-name", "password": UPSTREAM_PW, "sub": "sub-other",
         "claims": {"name": "张三", "id_number": CITIZEN_ID}},
        {"username": "newcomer", "password": UPSTREAM_PW, "sub": "sub-new",
         "claims": {"name": "王小明", "id_number": OTHER_ID}},
        *[{"username": mode, "password": UPSTREAM_PW, "sub": f"sub-{mode}", "tamper": mode,
           "claims": {"name": NAME, "id_number": CITIZEN_ID}} for mode in TAMPER],
    ])
    yield node_upstream
    ctx.config["UPSTREAM_IDPS"] = saved


# How the upstream spoils the ID token → why we refuse it.
TAMPER = {"bad_signature": "id_token:bad_signature", "wrong_aud": "id_token:invalid_claim:aud",
          "wrong_iss": "id_token:invalid_claim:iss",
          "wrong_nonce": "id_token:invalid_claim:nonce", "expired": "id_token:expired_token:exp",
          "unknown_key": "id_token:invalid_key_id", "none": "id_token:unsupported_algorithm",
          "no_id_token": "no_id_token"}


def _start(client, name="prov", rid=None):
    resp = client.get(f"/login/upstream/{name}" + (f"?rid={rid}" if rid else ""))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    return resp.headers["Location"]


def _back(client, url):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def _upstream_login(client, username, name="prov", cancel=False):
    auth_url = _start(client, name)
    back = sign_in(requests.Session(), auth_url, CALLBACK, username=username,
                   password=UPSTREAM_PW, cancel=cancel)
    return back, _back(client, back)


def _signed_in(client) -> bool:
    return client.get_cookie("idp_sso") is not None


def test_authorization_request_goes_through_the_upstream(client, upstream):
    from idp.extensions import db

    person = make_person()
    person.assurance_level = "L3"
    db.session.commit()
    rp = make_client()
    verifier, challenge = pkce_pair()
    resp = client.get(authorize_url(rp, code_challenge=challenge, code_challenge_method="S256",
                                    nonce="rp-nonce"))
    login = resp.headers["Location"]
    page = client.get(login).get_data(as_text=True)
    rid = query(login)["rid"]
    form = page[page.index('action="/login/upstream/prov"'):]
    assert "使用外省政务服务网账号登录" in form and f'name="rid" value="{rid}"' in form

    auth_url = _start(client, rid=rid)
    q = query(auth_url)
    assert q["code_challenge_method"] == "S256" and q["nonce"] and q["state"]
    assert q["client_id"] == "ours-at-prov" and q["scope"] == "openid profile idcard"
    back = sign_in(requests.Session(), auth_url, CALLBACK, username="lisi", password="pw-lisi")
    resp = _back(client, back)
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/authorize"
    assert _signed_in(client)
    resp = client.get(resp.headers["Location"])
    while urlsplit(resp.headers["Location"]).path == "/consent":
        page = client.get(resp.headers["Location"]).get_data(as_text=True)
        assert CITIZEN_ID not in page
        resp = client.post("/consent", data={**form_fields(page), "consent": "allow"})
        if urlsplit(resp.headers["Location"]).path == "/authorize":
            resp = client.get(resp.headers["Location"])
    code = query(resp.headers["Location"])["code"]
    tokens = exchange(client, rp, code, verifier).get_json()
    claims = _decode(tokens["id_token"])
    # One factor at the upstream: L2, although the account is real-name (L3).
    assert (claims["amr"], claims["acr"], claims["nonce"]) == (["fed"], "L2", "rp-nonce")
    [acct] = _accounts()
    assert (acct.source, acct.legacy_id, acct.state, acct.person_id) == (
        "prov-idp", "sub-lisi", "merged", person.id)
    [success] = _audit("login.success")
    assert success["amr"] == ["fed"] and success["upstream"] == "prov"


def test_new_person_from_a_trusted_upstream(client, upstream):
    _back_url, resp = _upstream_login(client, "newcomer", name="real")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/")
    home = client.get("/").get_data(as_text=True)
    assert "王*" in home and "王小明" not in home and OTHER_ID not in home
    [acct] = _accounts()
    assert (acct.source, acct.state) == ("real-idp", "created")


def test_other_name_shows_review_page_and_no_sign_in(client, upstream):
    make_person()
    _url, resp = _upstream_login(client, "other-name")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "您的账号需要人工核验" in page
    assert CITIZEN_ID not in page and "张三" not in page and not _signed_in(client)
    assert [i.reason for i in _reviews()] == ["id_number_name_differs"]
    [failure] = _audit("login.failure")
    assert failure["reason"] == "upstream_review"


def test_untrusted_upstream_refuses_unknown_people(client, upstream):
    _url, resp = _upstream_login(client, "newcomer")
    assert resp.status_code == 403 and "无法使用该账号登录" in resp.get_data(as_text=True)
    assert not _signed_in(client) and _accounts() == []


def test_cancel_at_the_upstream(client, upstream):
    back, resp = _upstream_login(client, "lisi", cancel=True)
    assert query(back)["error"] == "access_denied"
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "已取消登录" in page and "Traceback" not in page
    assert not _signed_in(client)
    assert _audit("login.failure")[0]["error"] == "access_denied"


def test_state_is_single_use_bound_to_the_browser_and_checked(ctx, client, upstream):
    make_person()
    auth_url = _start(client)
    back = sign_in(requests.Session(), auth_url, CALLBACK, username="lisi", password="pw-lisi")
    state = query(back)["state"]
    tampered = back.replace(f"state={state}", f"state={state[:-2]}xy")
    for bad in (tampered, back.replace(f"state={state}", "state=")):
        resp = _back(client, bad)
        assert resp.status_code == 400 and "登录请求已过期或无效" in resp.get_data(as_text=True)
    # Another browser holding the callback URL (a leaked or planted code) gets nothing.
    assert _back(ctx.test_client(), back).status_code == 400
    assert _back(client, back).status_code == 302 and _signed_in(client)
    # Replayed: the state was used.
    assert _back(client, back).status_code == 400
    assert len(_accounts()) == 1
    reasons = [d["reason"] for d in _audit("login.failure")]
    assert reasons.count("upstream_state") == 4


def test_expired_state(ctx, client, upstream):
    make_person()
    ctx.config["UPSTREAM_STATE_TTL"] = 1
    try:
        auth_url = _start(client)
    finally:
        ctx.config["UPSTREAM_STATE_TTL"] = 600
    back = sign_in(requests.Session(), auth_url, CALLBACK, username="lisi", password="pw-lisi")
    time.sleep(1.6)
    resp = _back(client, back)
    assert resp.status_code == 400 and "登录请求已过期或无效" in resp.get_data(as_text=True)
    assert not _signed_in(client) and _accounts() == []


@pytest.mark.parametrize("mode", TAMPER)
def test_spoiled_id_tokens_are_refused(client, upstream, mode):
    make_person()
    _url, resp = _upstream_login(client, mode)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "无法验证外省政务服务网的登录结果" in page, page[:400]
    assert not _signed_in(client) and _accounts() == []
    [failure] = _audit("login.failure")
    assert (failure["reason"], failure["detail"]) == ("upstream_invalid", TAMPER[mode])


def test_authorization_response_naming_another_issuer_is_refused(client, upstream):
    make_person()
    back = sign_in(requests.Session(), _start(client), CALLBACK, username="lisi",
                   password="pw-lisi")
    assert query(back)["iss"] == upstream.issuer  # RFC 9207, sent by this upstream
    resp = _back(client, back.replace("iss=http", "iss=https"))
    assert resp.status_code == 400 and not _signed_in(client) and _accounts() == []
    assert _audit("login.failure")[0]["detail"] == "iss_mismatch"


def test_unknown_and_unreachable_upstreams(client, upstream, ctx):
    resp = client.get("/login/upstream/nowhere")
    assert resp.status_code == 404 and "未找到该登录方式" in resp.get_data(as_text=True)
    ctx.config["UPSTREAM_IDPS"] = [upstream_conf(issuer=f"http://127.0.0.1:{free_port()}")]
    resp = client.get("/login/upstream/prov")
    assert resp.status_code == 503 and "暂时无法连接" in resp.get_data(as_text=True)
    resp = client.get(f"/login/upstream/prov/callback?state={uuid.uuid4().hex}&code=x")
    assert resp.status_code == 400


def test_expired_authorization_request(client, upstream):
    resp = client.get("/login/upstream/prov?rid=not-a-request")
    assert resp.status_code == 400 and "登录请求已过期" in resp.get_data(as_text=True)
