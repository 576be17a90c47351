"""Password sign-in: number forms, phone, clear messages, lockout that reveals nothing."""

from __future__ import annotations

import pytest

from tests.helpers import CITIZEN_PASSWORD, authorize_url, form_fields, query


def _login(client, rp, username, password=CITIZEN_PASSWORD):
    resp = client.get(authorize_url(rp))
    fields = form_fields(client.get(resp.headers["Location"]).get_data(as_text=True))
    return client.post("/login", data={**fields, "username": username, "password": password})


@pytest.mark.parametrize("typed", [
    "11010519491231002X", "11010519491231002x", "110105 19491231 002x",
    "１１０１０５１９４９１２３１００２Ｘ", "13912345678", "+86 139-1234-5678",
])
def test_any_ordinary_written_form_signs_in(client, person, rp, typed):
    resp = _login(client, rp, typed)
    assert resp.status_code == 302, resp.get_data(as_text=True)[-400:]
    assert resp.headers["Location"].startswith("/authorize?")
    assert any(c.startswith("idp_sso=") for c in resp.headers.getlist("Set-Cookie"))


def test_mistyped_number_names_the_expected_check_character(client, person, rp):
    resp = _login(client, rp, "110105194912310021")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "校验码" in page and "X" in page


def test_wrong_password_message_does_not_reveal_whether_account_exists(client, person, rp):
    known = _login(client, rp, "11010519491231002X", "wrong-password").get_data(as_text=True)
    unknown = _login(client, rp, "110101199003070011", "wrong-password").get_data(as_text=True)
    msg = "证件号码（或手机号码）与密码不匹配。"
    assert msg in known and msg in unknown


@pytest.mark.parametrize("who", ["11010519491231002X", "110101199003070011"])
def test_lockout_after_threshold_for_known_and_unknown_accounts(ctx, client, person, rp, who):
    threshold = ctx.config["LOCKOUT_THRESHOLD"]
    for _ in range(threshold - 1):
        assert "不匹配" in _login(client, rp, who, "nope-nope").get_data(as_text=True)
    locked = _login(client, rp, who, "nope-nope").get_data(as_text=True)
    assert "锁定" in locked
    # Even the right password is refused while locked, with the same message.
    again = _login(client, rp, who, CITIZEN_PASSWORD)
    assert again.status_code == 400 and "锁定" in again.get_data(as_text=True)


def test_lockout_expires(ctx, client, person, rp):
    ctx.config["LOCKOUT_SECONDS"] = 1
    try:
        for _ in range(ctx.config["LOCKOUT_THRESHOLD"]):
            _login(client, rp, "11010519491231002X", "nope-nope")
        import time

        time.sleep(1.3)
        resp = _login(client, rp, "11010519491231002X")
    finally:
        ctx.config["LOCKOUT_SECONDS"] = 15 * 60
    assert resp.status_code == 302


def test_locked_person_status_cannot_sign_in(ctx, client, person, rp):
    from idp.extensions import db

    person.status = "locked"
    db.session.commit()
    resp = _login(client, rp, "11010519491231002X")
    assert resp.status_code == 400


def test_sso_cookie_attributes(client, person, rp):
    resp = _login(client, rp, "11010519491231002X")
    cookie = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("idp_sso=")][0]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # The embedded demo issuer is plain http; anywhere else the cookie is Secure.
    assert "Secure" not in cookie


def test_sso_session_idle_timeout(ctx, client, person, rp):
    ctx.config["SSO_IDLE_TIMEOUT"] = 1
    try:
        _login(client, rp, "11010519491231002X")
        import time

        time.sleep(1.3)
        resp = client.get(authorize_url(rp, prompt="none"))
    finally:
        ctx.config["SSO_IDLE_TIMEOUT"] = 1800
    assert query(resp.headers["Location"])["error"] == "login_required"


def test_sso_session_absolute_timeout(ctx, client, person, rp):
    _login(client, rp, "11010519491231002X")
    ctx.config["SSO_ABSOLUTE_TIMEOUT"] = 0
    try:
        resp = client.get(authorize_url(rp, prompt="none"))
    finally:
        ctx.config["SSO_ABSOLUTE_TIMEOUT"] = 8 * 3600
    assert query(resp.headers["Location"])["error"] == "login_required"


def test_argon2id_hash_is_stored_and_upgraded(ctx, client, person, rp):
    from idp.extensions import db

    assert person.password_hash.startswith("$argon2id$")
    ctx.config["ARGON2_TIME_COST"] = 2
    ctx.extensions.pop("idp.argon2", None)
    try:
        _login(client, rp, "11010519491231002X")
        db.session.refresh(person)
        assert "t=2" in person.password_hash
    finally:
        ctx.config["ARGON2_TIME_COST"] = 1
        ctx.extensions.pop("idp.argon2", None)


def test_pbkdf2_sm3_policy_and_upgrade_both_ways(ctx, client, person, rp):
    from idp.crypto.passwords import verify_password
    from idp.extensions import db

    ctx.config.update(PASSWORD_HASH="pbkdf2-sm3", PBKDF2_SM3_ITERATIONS=2_000)
    try:
        assert _login(client, rp, "11010519491231002X").status_code == 302
        db.session.refresh(person)
        assert person.password_hash.startswith("$pbkdf2-sm3$i=2000$")
        assert verify_password(person.password_hash, CITIZEN_PASSWORD)
        assert not verify_password(person.password_hash, CITIZEN_PASSWORD + "x")
        # Stronger parameters later: upgraded at the next sign-in.
        ctx.config["PBKDF2_SM3_ITERATIONS"] = 3_000
        client.post("/logout", data={})
        assert _login(client, rp, "11010519491231002X").status_code == 302
        db.session.refresh(person)
        assert person.password_hash.startswith("$pbkdf2-sm3$i=3000$")
    finally:
        ctx.config.update(PASSWORD_HASH="argon2id", PBKDF2_SM3_ITERATIONS=200_000)
    # And back to Argon2id.
    assert _login(client, rp, "11010519491231002X").status_code == 302
    db.session.refresh(person)
    assert person.password_hash.startswith("$argon2id$")


def test_pbkdf2_sm3_matches_rfc8018_definition():
    """Our stored hashes follow RFC 8018 §5.2 with HMAC-SM3 as the PRF: checked
    against the definition written out (one 32-byte block: T1 = U1 xor ... xor Uc)."""
    import hmac

    from idp.crypto.passwords import _pbkdf2_sm3

    def reference(password: bytes, salt: bytes, rounds: int) -> bytes:
        u = hmac.new(password, salt + b"\x00\x00\x00\x01", "sm3").digest()
        t = bytearray(u)
        for _ in range(rounds - 1):
            u = hmac.new(password, u, "sm3").digest()
            t = bytearray(a ^ b for a, b in zip(t, u, strict=True))
        return bytes(t)

    for rounds in (1, 2, 1000):
        assert _pbkdf2_sm3("密码password", b"NaCl-salt", rounds) == reference(
            "密码password".encode(), b"NaCl-salt", rounds)


def test_login_form_posts_over_https(client, person, rp):
    """Behind TLS Flask-WTF insists on a same-site Referer; the pages must let browsers
    send one (Referrer-Policy same-origin), or no form would ever submit."""
    page = client.get("/login", base_url="https://localhost")
    assert page.headers["Referrer-Policy"] == "same-origin"
    fields = form_fields(page.get_data(as_text=True))
    posted = {"csrf_token": fields["csrf_token"], "username": person.id_number,
              "password": CITIZEN_PASSWORD}
    resp = client.post("/login", base_url="https://localhost", data=posted,
                       headers={"Referer": "https://localhost/login"})
    assert resp.status_code == 302
    # Without the Referer a browser under no-referrer would send, the form is refused.
    resp = client.post("/login", base_url="https://localhost", data=posted)
    assert resp.status_code == 400


def test_oversized_request_bodies_are_refused_before_parsing(client):
    resp = client.post("/login", data={"username": "x" * (5 * 1024 * 1024)})
    assert resp.status_code == 413
    assert b"Traceback" not in resp.data


def test_parallel_guesses_cannot_outrun_the_lockout(ctx, person, monkeypatch):
    """Guesses arriving together are all counted before any password is checked."""
    import threading

    from idp.authn import password as pw

    threshold = ctx.config["LOCKOUT_THRESHOLD"]
    checked = []
    gate = threading.Barrier(threshold * 2)
    real_verify = pw.verify_password

    def slow_verify(stored, given):
        checked.append(given)
        return real_verify(stored, given)

    monkeypatch.setattr(pw, "verify_password", slow_verify)
    results = []
    # Read once here: ``person`` belongs to this thread's session, and threads loading
    # its expired attributes at once would share that session's connection.
    id_number = person.id_number

    def guess():
        with ctx.app_context():
            gate.wait()
            results.append(pw.authenticate(id_number, "wrong-guess").error)

    threads = [threading.Thread(target=guess) for _ in range(threshold * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(checked) <= threshold  # never more password checks than the limit allows
    assert results.count("locked") >= threshold
