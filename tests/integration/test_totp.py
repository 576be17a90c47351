"""TOTP authenticators: enrolment needs a first code, ±1 step, no replay, tries limited,
the secret SM4-encrypted and bound to its owner, the person's own security page."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import pyotp
import pytest

from idp import audit
from idp.audit import AuditEvent
from idp.authn import totp
from idp.crypto.fieldcrypt import DecryptionError
from idp.extensions import db
from idp.models import TotpCredential
from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    CITIZEN_PHONE,
    form_fields,
    last_sms_code,
    make_person,
    query,
)

T0 = 1_750_000_005.0  # a fixed "now", mid-step


@pytest.fixture
def at(monkeypatch):
    """Set TOTP's clock: at(t)."""
    def set_clock(t: float):
        monkeypatch.setattr(totp, "_now", lambda: t)
    return set_clock


def enrolled(person, at) -> tuple[TotpCredential, pyotp.TOTP]:
    cred = totp.begin(person)
    gen = pyotp.TOTP(totp.secret_of(cred))
    at(T0)
    assert totp.confirm(cred, gen.at(T0)).ok
    return cred, gen


def test_unconfirmed_credential_does_not_count(ctx, person, at):
    cred = totp.begin(person)
    gen = pyotp.TOTP(totp.secret_of(cred))
    assert not totp.has_totp(person.id)
    assert totp.verify(person.id, gen.now()).error == "not_enrolled"
    at(T0)
    assert totp.confirm(cred, "000000" if gen.at(T0) != "000000" else "111111").error == "invalid"
    assert not totp.has_totp(person.id)
    assert totp.confirm(cred, gen.at(T0)).ok and totp.has_totp(person.id)


def test_window_is_one_step_either_side(ctx, person, at):
    cred, gen = enrolled(person, at)
    now = T0 + 300  # later than the confirmation's step
    at(now)
    assert totp.verify(person.id, gen.at(now - 60)).error == "invalid"  # two steps back
    assert totp.verify(person.id, gen.at(now + 60)).error == "invalid"  # two ahead
    assert totp.verify(person.id, gen.at(now - 30)).ok
    assert totp.verify(person.id, gen.at(now + 30)).ok


def test_a_code_is_never_accepted_twice_nor_an_older_one(ctx, person, at):
    cred, gen = enrolled(person, at)
    at(T0 + 300)
    code = gen.at(T0 + 300)
    assert totp.verify(person.id, code).ok
    assert totp.verify(person.id, code).error == "replayed"
    # The previous step is inside the window but older than the one just used.
    assert totp.verify(person.id, gen.at(T0 + 270)).error == "replayed"
    # The confirmation's own code was spent as well.
    at(T0)
    assert totp.verify(person.id, gen.at(T0)).error == "replayed"
    db.session.expire_all()
    step = int((T0 + 300) // 30)
    assert db.session.get(TotpCredential, cred.id).last_step == step
    # A second worker racing for the same step loses: the update is conditional.
    assert not totp._claim_step(cred, step)


def test_wrong_codes_rest_the_method(ctx, person, at):
    cred, gen = enrolled(person, at)
    at(T0 + 600)
    right = gen.at(T0 + 600)
    wrong = f"{(int(right) + 1) % 10 ** 6:06d}"
    for _ in range(ctx.config["STEPUP_MAX_FAILURES"]):
        assert totp.verify(person.id, wrong).error == "invalid"
    assert totp.verify(person.id, right).error == "locked"


def test_secret_is_encrypted_and_bound_to_its_owner(ctx, person):
    cred = totp.begin(person)
    secret = totp.secret_of(cred)
    assert len(secret) >= 26 and secret not in cred.secret_enc
    other = make_person(id_number="110101199003070011", name="王五", phone="13600000000")
    stolen = TotpCredential(person_id=other.id, secret_enc=cred.secret_enc)
    with pytest.raises(DecryptionError):
        totp.secret_of(stolen)


# -- the security page ---------------------------------------------------------------------


def sign_in(client):
    fields = form_fields(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={**fields, "username": CITIZEN_ID,
                                       "password": CITIZEN_PASSWORD})
    assert resp.status_code == 302


def _csrf(client, path="/account/security"):
    return form_fields(client.get(path).get_data(as_text=True))["csrf_token"]


def _real_name(person, level="L3"):
    person.assurance_level = level
    db.session.commit()


def step_up_by_sms(client, token: str) -> None:
    """The page's "先验证身份" button, an SMS code on the step-up page, and back here."""
    resp = client.post("/account/security/step-up",
                       data={"csrf_token": token, "next": "/account/security"})
    assert resp.status_code == 302 and urlsplit(resp.headers["Location"]).path == "/login/step-up"
    url = resp.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    fields = {"csrf_token": form_fields(page)["csrf_token"], "rid": query(url)["rid"]}
    assert client.post("/login/step-up", data={**fields, "action": "sms_send"}).status_code == 200
    code = last_sms_code(client.application, CITIZEN_PHONE, "stepup")
    back = client.post("/login/step-up", data={**fields, "action": "sms_verify", "code": code})
    assert back.status_code == 302 and back.headers["Location"] == "/account/security"


def _events(name: str) -> list[AuditEvent]:
    audit.flush()
    db.session.expire_all()
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)))


def test_security_page_enrols_with_qr_and_confirmation_then_removes(ctx, client, person):
    _real_name(person)
    assert client.get("/account/security").headers["Location"].startswith("/login")
    sign_in(client)
    step_up_by_sms(client, _csrf(client))  # a real-name account binds at L3
    page = client.get("/account/security").get_data(as_text=True)
    assert "尚未添加身份验证器" in page
    token = _csrf(client)
    enrol = client.post("/account/security/totp/new", data={"csrf_token": token})
    html = enrol.get_data(as_text=True)
    assert enrol.status_code == 200 and 'src="data:image/svg+xml' in html
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', html).group(1)
    secret = secret.replace(" ", "")
    cred = db.session.scalar(db.select(TotpCredential).where(
        TotpCredential.person_id == person.id))
    assert totp.secret_of(cred) == secret
    uri = totp.provisioning_uri(person, cred)
    assert uri.startswith("otpauth://totp/") and "统一身份认证平台" in unquote(uri)
    assert "139****5678" in unquote(uri) and "13912345678" not in unquote(uri)

    action = f"/account/security/totp/{cred.id}/confirm"
    bad = client.post(action, data={"csrf_token": token, "code": "12345"})
    assert bad.status_code == 400 and "口令不正确" in bad.get_data(as_text=True)
    assert not totp.has_totp(person.id)
    ok = client.post(action, data={"csrf_token": token, "code": pyotp.TOTP(secret).now()})
    assert ok.status_code == 302 and "done=added" in ok.headers["Location"]
    assert totp.has_totp(person.id)
    listed = client.get("/account/security").get_data(as_text=True)
    assert f'data-totp-id="{cred.id}"' in listed

    # Someone else's credential cannot be removed from this session.
    other = make_person(id_number="110101199003070011", name="王五", phone="13600000000")
    theirs = totp.begin(other)
    resp = client.post(f"/account/security/totp/{theirs.id}/remove", data={"csrf_token": token})
    assert resp.status_code == 404
    gone = client.post(f"/account/security/totp/{cred.id}/remove", data={"csrf_token": token})
    assert gone.status_code == 302 and not totp.has_totp(person.id)


def test_password_session_on_a_real_name_account_cannot_add_or_remove(ctx, client, person,
                                                                      at):
    """A stolen password alone must not add the second factor that would then make it
    L3; after a step-up (SMS to the registered phone) the same person can."""
    _real_name(person)
    sign_in(client)
    page = client.get("/account/security").get_data(as_text=True)
    assert 'id="security-step-up"' in page and "先验证身份" in page
    assert 'id="totp-add"' not in page
    token = _csrf(client)
    resp = client.post("/account/security/totp/new", data={"csrf_token": token})
    assert resp.status_code == 403 and 'id="security-step-up"' in resp.get_data(as_text=True)
    assert db.session.scalar(db.select(TotpCredential.id)) is None
    # An enrolment begun elsewhere cannot be confirmed from here, nor one removed.
    begun = totp.begin(person)
    resp = client.post(f"/account/security/totp/{begun.id}/confirm",
                       data={"csrf_token": token, "code": pyotp.TOTP(totp.secret_of(begun)).now()})
    assert resp.status_code == 403 and not totp.has_totp(person.id)
    kept, _gen = enrolled(person, at)
    resp = client.post(f"/account/security/totp/{kept.id}/remove", data={"csrf_token": token})
    assert resp.status_code == 403 and totp.has_totp(person.id)
    refused = _events("totp.step_up_required")
    assert [e.subject for e in refused] == [person.id] * 3
    assert _events("totp.enrolled") == [] and _events("totp.removed") == []

    step_up_by_sms(client, token)
    page = client.get("/account/security").get_data(as_text=True)
    assert 'id="totp-add"' in page and "security-step-up" not in page
    enrol = client.post("/account/security/totp/new", data={"csrf_token": token})
    assert enrol.status_code == 200 and 'id="totp-secret"' in enrol.get_data(as_text=True)
    gone = client.post(f"/account/security/totp/{kept.id}/remove", data={"csrf_token": token})
    assert gone.status_code == 302 and not totp.has_totp(person.id)


def test_l2_account_needs_two_factors_to_add_totp(ctx, client, person):
    """A TOTP bound with a stolen password alone would, with that password, prove L3
    once the account is real-name verified: even an L2 account needs two factors."""
    assert person.assurance_level == "L2"
    sign_in(client)
    page = client.get("/account/security").get_data(as_text=True)
    assert 'id="totp-add"' not in page and "security-step-up" in page
    resp = client.post("/account/security/totp/new", data={"csrf_token": _csrf(client)})
    assert resp.status_code in (302, 403)
    assert db.session.scalar(db.select(TotpCredential.id)) is None


def test_enrolment_needs_a_recent_sign_in_and_csrf(ctx, client, person):
    sign_in(client)
    token = _csrf(client)
    assert client.post("/account/security/totp/new").status_code == 400  # no CSRF token
    saved = ctx.config["SECURITY_REAUTH_SECONDS"]
    ctx.config["SECURITY_REAUTH_SECONDS"] = -1
    try:
        resp = client.post("/account/security/totp/new", data={"csrf_token": token})
    finally:
        ctx.config["SECURITY_REAUTH_SECONDS"] = saved
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    assert db.session.scalar(db.select(TotpCredential.id)) is None


def test_parallel_wrong_codes_cannot_outrun_the_limit(ctx, person, at, monkeypatch):
    """Requests that arrive together must not all pass a "locked?" check made before any
    of them has counted its failure: each compares a code only after counting itself."""
    cred, gen = enrolled(person, at)
    at(T0 + 600)
    wrong = f"{(int(gen.at(T0 + 600)) + 1) % 10 ** 6:06d}"
    limit = ctx.config["STEPUP_MAX_FAILURES"]
    for _ in range(limit - 1):
        assert totp.verify(person.id, wrong).error == "invalid"

    compared, results = [], []
    real = totp._matching_step

    def matching_step(secret, code, when):
        # While this request compares its code, the next one arrives (and so on): all
        # of them are in flight before any has finished.
        compared.append(code)
        if len(results) + len(compared) < 6:
            results.append(totp.verify(person.id, wrong).error)
        return real(secret, code, when)

    monkeypatch.setattr(totp, "_matching_step", matching_step)
    results.append(totp.verify(person.id, wrong).error)
    assert len(compared) == 1  # only one more code was compared: the last try allowed
    assert sorted(results) == ["invalid"] + ["locked"] * (len(results) - 1)
    monkeypatch.setattr(totp, "_matching_step", real)
    assert totp.verify(person.id, gen.at(T0 + 600)).error == "locked"
