"""Acting for an enterprise: memberships, selection at sign-in, the org claim, and
revocation that reaches live tokens at once."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import orgs
from idp.extensions import db
from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    authorize_url,
    exchange,
    form_fields,
    make_client,
    make_person,
    pkce_pair,
    query,
)

USCC = "91350100M000100Y43"
OTHER_USCC = "91110108551385082Q"
AGENT_ID = "110101199003070011"


@pytest.fixture
def world(ctx):
    rep = make_person()  # CITIZEN_ID: the legal representative
    agent = make_person(AGENT_ID, name="王经办", phone="13700000000")
    org = orgs.register_org(USCC, "福州某某科技有限公司", CITIZEN_ID, actor="test")
    m = orgs.grant(org, AGENT_ID, "agent", ["tax"], None, by="test")
    return {"rep": rep, "agent": agent, "org": org, "membership": m}


def _sign_in_and_pick(client, rp, username, pick=None, **params):
    """Authorize with scope org; sign in; choose ``pick`` (credit code) on the selection
    page. Returns the last response."""
    verifier, challenge = pkce_pair()
    params.setdefault("scope", "openid profile org offline_access")
    resp = client.get(authorize_url(rp, code_challenge=challenge, code_challenge_method="S256",
                                    **params))
    for _ in range(6):
        if resp.status_code != 302:
            break
        loc = resp.headers["Location"]
        path = urlsplit(loc).path
        if path == "/login":
            fields = form_fields(client.get(loc).get_data(as_text=True))
            resp = client.post("/login", data={**fields, "username": username,
                                               "password": CITIZEN_PASSWORD})
        elif path == "/org/select":
            page = client.get(loc).get_data(as_text=True)
            fields = form_fields(page)
            import re

            choices = dict(re.findall(r'value="([0-9a-f]{32})" class="org" data-uscc="([^"]+)"',
                                      page))
            by_uscc = {v: k for k, v in choices.items()}
            resp = client.post("/org/select", data={**fields, "membership_id": by_uscc[pick]})
        elif path == "/authorize":
            resp = client.get(loc)
        else:
            break
    resp.verifier = verifier
    return resp


def _tokens(client, rp, resp):
    q = query(resp.headers["Location"])
    body = exchange(client, rp, q["code"], resp.verifier).get_json()
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    return body, jwt.decode(body["id_token"], jwks, algorithms=["ES256"]).claims


def test_agent_picks_the_enterprise_and_every_token_says_so(client, world):
    rp = make_client("etax", first_party=True)
    resp = _sign_in_and_pick(client, rp, AGENT_ID, pick=USCC)
    body, idt = _tokens(client, rp, resp)
    expected = {"uscc": USCC, "name": "福州某某科技有限公司", "role": "agent", "scopes": ["tax"]}
    assert idt["org"] == expected
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.get_json()["org"] == expected
    rs = make_client("rs", grant_types=["client_credentials"], redirect_uris=())
    intro = client.post("/introspect", headers=rs.basic, data={"token": body["access_token"]})
    assert intro.get_json()["active"] is True


def test_revocation_ends_refresh_introspection_and_userinfo_at_once(client, world):
    rp = make_client("etax", first_party=True)
    body, _ = _tokens(client, rp, _sign_in_and_pick(client, rp, AGENT_ID, pick=USCC))
    rs = make_client("rs", grant_types=["client_credentials"], redirect_uris=())
    orgs.revoke(world["membership"], by="legal-rep")
    intro = client.post("/introspect", headers=rs.basic, data={"token": body["access_token"]})
    assert intro.get_json() == {"active": False}
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
    assert info.status_code == 401
    resp = client.post("/token", headers=rp.basic, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert resp.get_json()["error"] == "invalid_grant"


def test_person_without_membership_gets_a_clear_refusal(client, world):
    make_person("110101199003070038", name="路人甲", phone="13600000000")
    rp = make_client("etax", first_party=True)
    resp = _sign_in_and_pick(client, rp, "110101199003070038", state="s1")
    assert resp.status_code == 403
    page = resp.get_data(as_text=True)
    assert "无法代表该企业办理业务" in page and "法定代表人或管理员" in page
    import re

    back = re.search(r'class="button" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    q = query(back)
    assert back.startswith(rp.redirect_uri) and q["error"] == "access_denied"
    assert q["state"] == "s1"


def test_login_hint_naming_the_enterprise_preselects_or_refuses(client, world):
    rp = make_client("etax", first_party=True)
    resp = _sign_in_and_pick(client, rp, AGENT_ID, login_hint=USCC, scope="openid")
    _, idt = _tokens(client, rp, resp)  # no selection page: the hint chose
    assert idt["org"]["uscc"] == USCC
    resp = client.get(authorize_url(rp, login_hint=OTHER_USCC))
    assert resp.status_code == 403 and OTHER_USCC in resp.get_data(as_text=True)


def test_client_requirements_filter_roles_and_scopes(client, world):
    reps_only = make_client("bank", first_party=True, org_roles=["legal_rep"])
    resp = _sign_in_and_pick(client, reps_only, AGENT_ID)
    assert resp.status_code == 403
    social = make_client("social", first_party=True, org_scopes=["social-security"])
    assert _sign_in_and_pick(client, social, AGENT_ID).status_code == 403
    other = client.application.test_client()  # another browser: the legal representative
    resp = _sign_in_and_pick(other, social, CITIZEN_ID, pick=USCC)
    _, idt = _tokens(other, social, resp)
    assert idt["org"]["role"] == "legal_rep" and idt["org"]["scopes"] == ["all"]


def test_expired_or_future_appointments_are_not_offered(client, world):
    m = world["membership"]
    m.valid_until = time.time() - 1
    db.session.commit()
    rp = make_client("etax", first_party=True)
    assert _sign_in_and_pick(client, rp, AGENT_ID).status_code == 403
    with pytest.raises(orgs.OrgError, match="future"):
        orgs.grant(world["org"], AGENT_ID, "agent", ["tax"], time.time() - 10, by="t")


def test_switching_enterprise_needs_no_password_and_prompt_none_asks_for_selection(client, world):
    second = orgs.register_org(OTHER_USCC, "北京另一家有限公司", CITIZEN_ID, actor="test")
    orgs.grant(second, AGENT_ID, "agent", ["all"], None, by="test")
    rp = make_client("etax", first_party=True)
    _, first = _tokens(client, rp, _sign_in_and_pick(client, rp, AGENT_ID, pick=USCC))
    resp = client.get(authorize_url(rp, scope="openid org"))
    assert urlsplit(resp.headers["Location"]).path == "/org/select"  # no /login
    resp = _sign_in_and_pick(client, rp, AGENT_ID, pick=OTHER_USCC)
    _, again = _tokens(client, rp, resp)
    assert first["org"]["uscc"] == USCC and again["org"]["uscc"] == OTHER_USCC
    assert first["sid"] == again["sid"]
    resp = client.get(authorize_url(rp, scope="openid org", prompt="none"))
    assert query(resp.headers["Location"])["error"] == "account_selection_required"


def test_registration_checks(ctx, world):
    with pytest.raises(orgs.OrgError, match="already exists"):
        orgs.register_org(USCC, "x", CITIZEN_ID, actor="t")
    with pytest.raises(orgs.OrgError, match="invalid credit code"):
        orgs.register_org("91350100M000100Y44", "x", CITIZEN_ID, actor="t")
    with pytest.raises(orgs.OrgError, match="no person"):
        orgs.register_org(OTHER_USCC, "x", "110101199003070054", actor="t")
    with pytest.raises(orgs.OrgError, match="legal representative"):
        orgs.revoke(orgs.memberships_of(world["rep"].id)[0][0], by="t")
    with pytest.raises(orgs.OrgError, match="only the legal representative"):
        orgs.grant(world["org"], AGENT_ID, "admin", ["all"], None, by="t", by_role="admin")


def test_acting_for_the_enterprise_is_audited(client, world):
    from idp import audit
    from idp.audit import AuditEvent

    rp = make_client("etax", first_party=True)
    _sign_in_and_pick(client, rp, AGENT_ID, pick=USCC)
    audit.flush()
    rows = db.session.scalars(db.select(AuditEvent).where(
        AuditEvent.subject == f"org:{USCC}")).all()
    assert {r.event for r in rows} >= {"org.add", "org.grant", "org.act"}
    act = next(r for r in rows if r.event == "org.act")
    assert act.actor == world["agent"].id and act.client_id == "etax"


class RegisterOfLegalEntities:
    """A registry plugged in through configuration, as a deployment would plug in the
    market-regulation register (here answering from a fixed table)."""

    TABLE = {OTHER_USCC: ("北京登记名称有限公司", "有限责任公司")}

    def lookup(self, uscc):
        if uscc not in self.TABLE:
            return None
        name, kind = self.TABLE[uscc]
        return orgs.RegistryRecord(uscc=uscc, name=name, org_type=kind)


def test_registry_lookup_supplies_the_registered_name(ctx, world):
    ctx.config["ORG_REGISTRY"] = "tests.integration.test_orgs:RegisterOfLegalEntities"
    ctx.extensions.pop("idp.org_registry", None)
    try:
        org = orgs.register_org(OTHER_USCC, None, CITIZEN_ID, actor="t")
        assert (org.name, org.org_type) == ("北京登记名称有限公司", "有限责任公司")
        with pytest.raises(orgs.OrgError, match="name is needed"):
            orgs.register_org("91110000600037341L", None, CITIZEN_ID, actor="t")
    finally:
        ctx.config["ORG_REGISTRY"] = None
        ctx.extensions.pop("idp.org_registry", None)


def test_appointing_again_replaces_the_earlier_appointment(client, world):
    rp = make_client("etax", first_party=True)
    body, _ = _tokens(client, rp, _sign_in_and_pick(client, rp, AGENT_ID, pick=USCC))
    orgs.grant(world["org"], AGENT_ID, "agent", ["tax", "social-security"], None, by="rep")
    mine = [m for m, o in orgs.memberships_of(world["agent"].id) if o.id == world["org"].id]
    assert [m.scopes for m in mine] == [["social-security", "tax"]]
    # Tokens from the replaced appointment ended with it.
    resp = client.post("/token", headers=rp.basic, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]})
    assert resp.get_json()["error"] == "invalid_grant"
