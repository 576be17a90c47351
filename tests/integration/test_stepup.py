"""Step-up to the level a client asks for (acr_values): SMS, TOTP, password after an SMS
sign-in, real-name verification of an L2 account, refusal when the level is out of reach."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import audit
from idp.audit import AuditEvent
from idp.authn import totp
from idp.extensions import db
from idp.models import Person
from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PHONE,
    authorize_url,
    exchange,
    follow_login,
    form_fields,
    last_sms_code,
    pkce_pair,
    query,
    tokens_for,
)


def set_level(person, level: str) -> None:
    person.assurance_level = level
    db.session.commit()


class Flow:
    """One authorization request of ``rp`` asking for ``acr_values``, up to the step-up page."""

    def __init__(self, client, rp, acr_values="L3", **params):
        self.client, self.rp = client, rp
        self.verifier, challenge = pkce_pair()
        self.state = "st-" + acr_values.replace(" ", "-")
        resp = follow_login(client, client.get(authorize_url(
            rp, acr_values=acr_values, code_challenge=challenge, code_challenge_method="S256",
            state=self.state, **params)))
        self.first = resp
        loc = resp.headers.get("Location", "")
        if urlsplit(loc).path == "/login/step-up":
            self.rid = query(loc)["rid"]
            page = client.get(loc)
            assert page.status_code == 200
            self.html = page.get_data(as_text=True)
            self.csrf = form_fields(self.html)["csrf_token"]

    def post(self, action: str, **data):
        resp = self.client.post("/login/step-up", data={"csrf_token": self.csrf,
                                                        "rid": self.rid, "action": action, **data})
        self.html = resp.get_data(as_text=True)
        return resp

    def finish(self, resp) -> dict:
        """From the step-up page's redirect to the ID token's claims."""
        assert resp.status_code == 302, self.html[-600:]
        final = follow_login(self.client, resp)
        q = query(final.headers["Location"])
        assert q.get("state") == self.state and "code" in q, q
        body = exchange(self.client, self.rp, q["code"], self.verifier).get_json()
        jwks = KeySet.import_key_set(self.client.get("/jwks").get_json())
        return jwt.decode(body["id_token"], jwks, algorithms=["ES256", "RS256"]).claims


def _events(name: str):
    audit.flush()
    db.session.expire_all()
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)).all()


def test_sms_step_up_from_l2_session_to_l3(ctx, client, person, rp):
    set_level(person, "L3")
    flow = Flow(client, rp)
    assert "stepup-sms" in flow.html and "realname-form" not in flow.html
    assert "139****5678" in flow.html
    sent = flow.post("sms_send")
    assert sent.status_code == 200 and 'name="code"' in flow.html
    code = last_sms_code(ctx, CITIZEN_PHONE, "stepup")
    wrong = flow.post("sms_verify", code=f"{(int(code) + 1) % 10 ** 6:06d}")
    assert wrong.status_code == 400 and "验证码错误" in flow.html
    claims = flow.finish(flow.post("sms_verify", code=code))
    assert claims["acr"] == "L3"
    assert set(claims["amr"]) == {"pwd", "sms"}
    ok = _events("stepup.success")
    assert [(e.details["from"], e.details["to"]) for e in ok] == [("L2", "L3")]
    assert _events("stepup.failure")[0].details["reason"] == "invalid"
    # The session now holds L3: the next request for L3 needs nothing more.
    again = tokens_for(client, rp, acr_values="L3")
    assert again["id_token"]


def test_totp_step_up(ctx, client, person, rp, monkeypatch):
    set_level(person, "L3")
    cred = totp.begin(person)
    gen = pyotp.TOTP(totp.secret_of(cred))
    an_hour_ago = time.time() - 3600  # confirmed then, so "now" is still unused
    monkeypatch.setattr(totp, "_now", lambda: an_hour_ago)
    assert totp.confirm(cred, gen.at(an_hour_ago)).ok
    monkeypatch.undo()
    flow = Flow(client, rp)
    assert "stepup-totp" in flow.html
    wrong = flow.post("totp", code="000000" if gen.now() != "000000" else "111111")
    assert wrong.status_code == 400 and "动态口令错误" in flow.html
    claims = flow.finish(flow.post("totp", code=gen.now()))
    assert claims["acr"] == "L3" and set(claims["amr"]) == {"pwd", "otp"}


def test_real_name_verification_raises_an_l2_account_then_a_second_factor(ctx, client, person,
                                                                          rp):
    assert person.assurance_level == "L2"
    flow = Flow(client, rp)
    assert "realname-form" in flow.html and "stepup-sms" not in flow.html
    # No skipping ahead to the second factor.
    assert flow.post("sms_send").status_code == 400 and "请先完成实名核验" in flow.html
    refused = flow.post("realname", name="张三", id_number=CITIZEN_ID)
    assert refused.status_code == 400 and "不一致" in flow.html
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L2"

    done = flow.post("realname", name=" 李 四", id_number="110105 19491231 002x")
    assert done.status_code == 200 and "实名核验已通过" in flow.html
    assert "stepup-sms" in flow.html and "realname-form" not in flow.html
    db.session.expire_all()
    raised = db.session.get(Person, person.id)
    assert (raised.assurance_level, raised.assurance_method) == ("L3", "register")
    assert raised.assurance_verified_at is not None
    events = _events("assurance.raised")
    assert [(e.details["from"], e.details["to"]) for e in events] == [("L2", "L3")]

    flow.post("sms_send")
    claims = flow.finish(flow.post("sms_verify", code=last_sms_code(ctx, CITIZEN_PHONE, "stepup")))
    assert claims["acr"] == "L3" and set(claims["amr"]) == {"pwd", "sms"}


def test_real_name_refused_when_not_in_the_register(ctx, client, person, rp):
    saved = ctx.config["REALNAME_DEV_NOT_IN_REGISTER"]
    ctx.config["REALNAME_DEV_NOT_IN_REGISTER"] = [CITIZEN_ID]
    try:
        flow = Flow(client, rp)
        resp = flow.post("realname", name="李四", id_number=CITIZEN_ID)
    finally:
        ctx.config["REALNAME_DEV_NOT_IN_REGISTER"] = saved
    assert resp.status_code == 400 and "未在人口信息库中查到" in flow.html
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L2"
    assert _events("assurance.refused")[0].details["reason"] == "not_in_register"


def test_real_name_attempts_are_limited(ctx, client, person, rp):
    flow = Flow(client, rp)
    for _ in range(ctx.config["REALNAME_DAILY_TRIES"]):
        flow.post("realname", name="李四", id_number="110101199003070011")  # valid, not theirs
    resp = flow.post("realname", name="李四", id_number=CITIZEN_ID)  # now right, but too late
    assert resp.status_code == 400 and "次数已用完" in flow.html
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L2"


@pytest.mark.parametrize("acr_values", ["L4", "L4 L5"])
def test_unreachable_level_is_refused_with_unmet_authentication_requirements(
        ctx, client, person, rp, acr_values, monkeypatch):
    set_level(person, "L3")
    monkeypatch.setitem(ctx.config, "FACE_VERIFIER", "off")  # no online face match here
    flow = Flow(client, rp, acr_values=acr_values)
    assert "无法在此达到该认证等级" in flow.html and "stepup-sms" not in flow.html
    # A factor that cannot reach the level is refused even if posted.
    assert flow.post("sms_send").status_code == 400
    back = flow.post("give_up")
    assert back.status_code == 302
    final = client.get(back.headers["Location"])
    assert final.headers["Location"].startswith(rp.redirect_uri)
    q = query(final.headers["Location"])
    assert q["error"] == "unmet_authentication_requirements"
    assert q["iss"] == "http://localhost" and q["state"] == flow.state and "code" not in q
    assert _events("stepup.unmet")[0].details["asked"] == "L4"


def test_prompt_none_below_the_asked_level_is_interaction_required(ctx, client, person, rp):
    set_level(person, "L3")
    tokens_for(client, rp)  # an L2 session and consent
    resp = client.get(authorize_url(rp, acr_values="L3", prompt="none", state="s-none"))
    q = query(resp.headers["Location"])
    assert resp.headers["Location"].startswith(rp.redirect_uri)
    assert q["error"] == "interaction_required" and q["state"] == "s-none"
    assert q["iss"] == "http://localhost"


def test_sms_signed_in_session_steps_up_with_the_password(ctx, client, person, rp):
    set_level(person, "L3")
    token = form_fields(client.get("/login/sms").get_data(as_text=True))["csrf_token"]
    client.post("/login/sms", data={"csrf_token": token, "action": "send",
                                    "phone": CITIZEN_PHONE})
    signed_in = client.post("/login/sms", data={
        "csrf_token": token, "action": "verify", "phone": CITIZEN_PHONE,
        "code": last_sms_code(ctx, CITIZEN_PHONE, "login")})
    assert signed_in.status_code == 302
    flow = Flow(client, rp)
    # A second SMS proves nothing new; the password does.
    assert "stepup-password" in flow.html and "stepup-sms" not in flow.html
    assert flow.post("password", password="not-the-password").status_code == 400
    claims = flow.finish(flow.post("password", password="Correct-Horse-9"))
    assert claims["acr"] == "L3" and set(claims["amr"]) == {"sms", "pwd"}


def test_step_up_forms_need_csrf(ctx, client, person, rp):
    set_level(person, "L3")
    flow = Flow(client, rp)
    resp = client.post("/login/step-up", data={"rid": flow.rid, "action": "sms_send"})
    assert resp.status_code == 400 and "页面已过期" in resp.get_data(as_text=True)
