"""The authenticators proven on endpoints of their own: the step-up page only offers
them (a script or a link) — a passkey's JSON ceremony (:mod:`idp.authn.webauthn_views`),
the face capture page, the certificate page — or, for an upstream provider, not at all."""

from __future__ import annotations

from flask import current_app

from .. import assurance, cert_login, face, passkeys
from .base import Goal


class Passkey:
    """A WebAuthn credential with user verification: multi-factor by itself (``L3``),
    ``L4`` when it was bound by an ``L4`` session (:mod:`idp.authn.passkeys`)."""

    name = "passkey"
    amr = ("hwk", "L4key")
    level = "L4"
    # The partial checks again, for the person's own level, before it shows the button.
    template = "step_up_passkey.html"
    after_realname = True

    def available_for(self, person) -> bool:
        return bool(passkeys.credentials_of(person.id))

    def reaches(self, goal: Goal) -> bool:
        return passkeys.reaches(goal.sess, goal.account, goal.asked)


class FaceMatch:
    """A live capture matched against the register's ID-card photo (:mod:`idp.authn.face`):
    it raises an ``L3`` account to ``L4`` as it succeeds."""

    name = "face"
    amr = ("face",)
    level = "L4"
    template = "step_up_face_link.html"
    after_realname = True

    def available_for(self, person) -> bool:
        return face.enabled()

    def reaches(self, goal: Goal) -> bool:
        # The register's photo is of a verified number, so the account is L3 first; the
        # match itself then makes it L4.
        return (face.enabled() and assurance.rank(goal.account) >= assurance.rank("L3")
                and goal.reached_with(["face"], "L4"))


class Certificate:
    """A citizen's digital certificate on a USB key or card (:mod:`idp.authn.cert_login`):
    ``L5``. It proves the real name by itself, so it needs no register check first."""

    name = "cert"
    amr = tuple(cert_login.AMR)
    level = "L5"
    template = "login_cert_stepup.html"
    after_realname = False

    def available_for(self, person) -> bool:
        return cert_login.header_trusted()

    def reaches(self, goal: Goal) -> bool:
        return cert_login.offered(goal.asked)


class Upstream:
    """A sign-in at an upstream OpenID provider (:mod:`idp.authn.upstream_views`): one
    factor (``fed``), since we cannot see which factors the upstream checked. Offered on
    the sign-in page only; it never raises a session at step-up."""

    name = "upstream"
    amr = ("fed",)
    level = "L2"

    def available_for(self, person) -> bool:
        return bool(current_app.config.get("UPSTREAM_IDPS"))
