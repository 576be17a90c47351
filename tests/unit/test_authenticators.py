"""The authenticator registry (idp.authn.factors): what each one declares agrees with the
level arithmetic, and the step-up page offers exactly what it offered before the page
became a loop over the registry."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

import idp
from idp.authn import assurance, cert_login, face, factors, passkeys, totp
from idp.authn.factors import FormStepUp, Goal, StepUp, realname_first

PUBLIC_AMR = {"pwd", "sms", "otp", "hwk", "swk", "face", "sc", "fed"}
TEMPLATES = Path(idp.__file__).parent / "templates"


@pytest.mark.parametrize("auth", factors.REGISTERED, ids=lambda a: a.name)
def test_each_authenticator_declares_what_it_proves(auth):
    assert isinstance(auth, factors.Authenticator)
    assert auth.level in assurance.LEVELS
    public = assurance.public_amr(auth.amr)
    assert public and set(public) <= PUBLIC_AMR, auth.amr
    # The declared level is what the assurance rules make of its amr, so neither can
    # drift from the other.
    assert assurance.authenticator_level(auth.amr) == auth.level
    if isinstance(auth, StepUp):
        assert (TEMPLATES / auth.template).is_file(), auth.template
        assert isinstance(auth.after_realname, bool)


def test_registry_names_and_form_actions_are_unique():
    names = [a.name for a in factors.REGISTERED]
    assert len(names) == len(set(names))
    assert {"password", "sms", "totp", "passkey", "face", "cert", "upstream"} <= set(names)
    actions = [act for a in factors.REGISTERED if isinstance(a, FormStepUp) for act in a.actions]
    assert len(actions) == len(set(actions))
    assert set(actions) == {"sms_send", "sms_verify", "totp", "password"}
    # The page's own actions belong to no authenticator.
    assert factors.owner_of("give_up") is None
    assert factors.owner_of(realname_first.ACTION) is None
    assert factors.owner_of("sms_verify").name == "sms"


def _before(person, sess, asked):
    """What stepup._options computed before the registry (kept here as the oracle)."""
    realname_needed = (assurance.rank(asked) >= assurance.rank("L3")
                       and assurance.rank(person.assurance_level) < assurance.rank("L3"))
    account = "L3" if realname_needed else person.assurance_level

    def reaches(amr, level=account):
        return assurance.meets(assurance.session_level(level, [*sess.amr, *amr]), asked)

    opts = {
        "sms": bool(person.phone_enc) and reaches(["sms"]),
        "totp": totp.has_totp(person.id) and reaches(["otp"]),
        "password": bool(person.password_hash) and "pwd" not in sess.amr and reaches(["pwd"]),
        "passkey": passkeys.reaches(sess, account, asked),
        "face": (face.enabled() and assurance.rank(account) >= assurance.rank("L3")
                 and reaches(["face"], "L4")),
    }
    others = any(opts.values())
    opts["cert"] = cert_login.offered(asked)
    opts["any"] = others or opts["cert"]
    opts["realname"] = realname_needed and others
    return opts


def _session(person, amr):
    return SimpleNamespace(person_id=person.id, amr=list(amr))


def _offered(person, amr, asked):
    return factors.offer(Goal(person, _session(person, amr), asked)).flags()


@pytest.fixture
def cert_on(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "CERT_LOGIN", True)
    monkeypatch.setitem(ctx.config, "TRUSTED_PROXIES", 1)


def test_the_cases_the_step_up_tests_rely_on(ctx, person, monkeypatch):
    person.assurance_level = "L3"
    # A password session on a real-name account: a second factor or a face reaches L3.
    assert _offered(person, ["pwd"], "L3") == {
        "sms": True, "totp": False, "password": False, "passkey": False, "face": True,
        "cert": False, "any": True, "realname": False}
    # An SMS sign-in: the password is the second factor, another SMS is not.
    opts = _offered(person, ["sms"], "L3")
    assert opts["password"] and not opts["sms"]
    # L4 on an L3 account: only the face match raises it.
    opts = _offered(person, ["pwd"], "L4")
    assert opts["face"] and not (opts["sms"] or opts["password"] or opts["realname"])
    monkeypatch.setitem(ctx.config, "FACE_VERIFIER", "off")
    assert _offered(person, ["pwd"], "L4")["any"] is False
    # A self-declared account verifies its real name before any factor.
    person.assurance_level = "L2"
    opts = _offered(person, ["pwd"], "L3")
    assert opts["realname"] and opts["sms"]


def test_a_certificate_needs_no_real_name_step(ctx, person, cert_on, monkeypatch):
    monkeypatch.setitem(ctx.config, "FACE_VERIFIER", "off")
    assert person.assurance_level == "L2"
    opts = _offered(person, ["pwd"], "L4")
    assert opts["cert"] and opts["any"] and not opts["realname"]
    assert _offered(person, ["pwd"], "L3")["cert"] is False  # the USB key is for L4/L5


@pytest.mark.parametrize("with_cert", [False, True])
def test_options_are_what_they_were(ctx, person, monkeypatch, request, with_cert):
    """Every combination of account level, session amr, level asked, enrolments, face
    service and certificate set-up gives the same options as the old if/elif code."""
    from idp.extensions import db
    from idp.models import WebAuthnCredential

    if with_cert:
        request.getfixturevalue("cert_on")
    cred = totp.begin(person)  # unconfirmed: not enrolled yet
    levels = ["L2", "L3", "L4", "L5"]
    amrs = [["pwd"], ["sms"], ["pwd", "sms"], ["hwk"], ["fed"], ["pwd", "face"]]
    asked = [None, "L2", "L3", "L4", "L5"]
    enrolments = ["none", "totp", "passkey_l2", "passkey_l4"]
    for enrolled in enrolments:
        if enrolled == "totp":
            cred.confirmed_at = 1.0
        if enrolled.startswith("passkey"):
            db.session.add(WebAuthnCredential(
                person_id=person.id, credential_id=f"cred-{enrolled}", public_key="x",
                level="L4" if enrolled == "passkey_l4" else "L2"))
        db.session.commit()
        for verifier in ("dev", "off"):
            monkeypatch.setitem(ctx.config, "FACE_VERIFIER", verifier)
            for level, amr, wanted in itertools.product(levels, amrs, asked):
                person.assurance_level = level
                sess = _session(person, amr)
                case = (enrolled, verifier, level, amr, wanted)
                assert _offered(person, amr, wanted) == _before(person, sess, wanted), case
