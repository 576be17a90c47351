"""Trusted self-service kiosks: an ID-card chip read with a face match (RFC 7523 §2.1).

A kiosk registered with channel ``kiosk``, as a confidential client with its public
keys (``jwks``), reads the card's chip, matches the face in front of it against the
chip's photo, and presents a JWT it signed to ``/token``::

    grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>

    {"iss": "<client_id>", "sub": "<ID number from the chip>", "aud": "<issuer>/token",
     "iat": …, "exp": … (at most KIOSK_ASSERTION_MAX_AGE later), "jti": "<once only>",
     "check": {"chip": true, "face_match": true, "score": 0.93}}

That is the strongest remote evidence there is (``L4``: real person, real document),
so the account is raised to ``L4`` (never lowered) and the tokens say ``acr`` L4,
``amr`` ["idcard", "face"], ``channel`` kiosk. No refresh token: the next person is
about to walk up to the screen.

The demo kiosk screen (``/demo/kiosk``, see ``idp.demo.kiosk_demo``) shows both kiosk paths.
"""

from __future__ import annotations

import math
import time

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, UnauthorizedClientError
from authlib.oauth2.rfc7523 import JWTBearerGrant
from flask import current_app
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .. import audit, policy
from ..accounts import person_by_id_number, raise_level
from ..authn import assurance
from ..clients import JWT_BEARER, find_client
from ..identity import InvalidIdNumber, mask_id_number, parse_person_id
from ..oidc import metadata
from ..oidc.grants import OpenIDToken, PolicyTokenResponse, assertion_lifetime_problem
from ..oidc.subject import Subject, new_subject
from ..oidc.tokens import issuer
from ..store import store

KIOSK_AMR = ["idcard", "face"]
KIOSK_METHOD = "kiosk_chip_face"
KIOSK_LEVEL = "L4"


def _refuse(description: str) -> InvalidGrantError:
    return InvalidGrantError(description=description)


def _score_problem(check: dict, minimum: float) -> str | None:
    """Why the face-match score cannot be believed, or None. It must be there and be a
    number from 0 to 1: ``true`` is an int in Python (and 1 ≥ any threshold), and a
    missing score would let a kiosk claim a match without saying how close it was."""
    score = check.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) \
            or not math.isfinite(score) or not 0 <= score <= 1:
        return "The assertion must state the face-match score as a number from 0 to 1."
    if score < minimum:
        return "The face-match score is below the accepted threshold."
    return None


class KioskAssertionGrant(PolicyTokenResponse, JWTBearerGrant):
    CLAIMS_OPTIONS = {
        "iss": {"essential": True},
        "sub": {"essential": True},
        "aud": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "jti": {"essential": True},
    }
    LEEWAY = 30

    def get_audiences(self):
        return [issuer() + "/token", issuer()]

    def resolve_issuer_client(self, iss):
        return find_client(iss)

    def resolve_client_public_key(self, client):
        # Asked before the signature is checked: only a kiosk that could be trusted with
        # a face match gets that far (RFC 6749 §5.2 unauthorized_client otherwise).
        self.request.idp_claimed_client = client.client_id  # for the audit of a refusal
        if client.is_public or not policy.may_use_grant(client, JWT_BEARER):
            raise UnauthorizedClientError(
                description="Only confidential kiosk clients registered for this grant may "
                            "present identity assertions.")
        if not client.jwks:
            raise UnauthorizedClientError(description="The kiosk has no registered keys.")
        try:
            return KeySet.import_key_set(client.jwks)
        except (JoseError, ValueError, KeyError, TypeError):
            raise UnauthorizedClientError(
                description="The kiosk's registered keys are unusable.") from None

    def process_assertion_claims(self, assertion):
        try:
            return super().process_assertion_claims(assertion)
        except InvalidGrantError as err:
            # joserfc's bad-signature error has no description; say what failed.
            err.description = err.description or "The assertion's signature does not " \
                "verify with this kiosk's registered key."
            raise
        except (KeyError, TypeError):  # e.g. a kid that is not in this client's key set
            raise _refuse("The assertion is not signed by this kiosk's registered key.") from None

    def verify_claims(self, claims):
        super().verify_claims(claims)
        cfg = current_app.config
        now = time.time()
        problem = assertion_lifetime_problem(claims, cfg["KIOSK_ASSERTION_MAX_AGE"],
                                             self.LEEWAY)
        if problem:
            raise _refuse(problem)
        exp = claims["exp"]
        if claims["iat"] > now + self.LEEWAY:
            raise _refuse("The assertion was issued in the future.")
        check = claims.get("check")
        if not isinstance(check, dict) or check.get("chip") is not True:
            raise _refuse("The assertion does not state a successful ID-card chip read.")
        if check.get("face_match") is not True:
            raise _refuse("The assertion does not state a passed face match.")
        problem = _score_problem(check, cfg["KIOSK_FACE_MIN_SCORE"])
        if problem:
            raise _refuse(problem)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
            raise _refuse("'jti' must be a unique string of 8 to 128 characters.")
        ttl = max(1.0, exp - now) + self.LEEWAY
        if not store().add(f"kiosk_jti:{claims['iss']}:{jti}", 1, ttl):
            raise _refuse("The assertion has been used before (jti replay).")
        self.request.idp_assertion = claims

    def authenticate_user(self, subject):
        try:
            number = parse_person_id(str(subject)).number
        except InvalidIdNumber:
            # Never echo the number: descriptions reach logs and kiosk screens.
            raise _refuse("'sub' is not a valid ID number (GB 11643).") from None
        self.request.idp_masked_number = mask_id_number(number)
        person = person_by_id_number(number)
        if person is None or person.status != "active":
            raise _refuse("No active account matches the identity document.")
        claims = self.request.idp_assertion
        return new_subject(self.request.client, person, auth_time=int(claims["iat"]),
                           amr=list(KIOSK_AMR), channel="kiosk")

    def has_granted_permission(self, client, user):
        return True  # a registered kiosk acts for whoever holds the card and the face

    def validate_token_request(self):
        try:
            super().validate_token_request()
        except OAuth2Error as err:
            # The kiosk named in 'iss', whether or not its signature held: its operator
            # wants to see attempts made in its name.
            client = getattr(self.request, "client", None)
            named = client.client_id if client else getattr(
                self.request, "idp_claimed_client", None)
            audit.record("kiosk.assertion.rejected", actor=named or "anonymous",
                         client_id=named,
                         details={"error": err.error, "reason": err.get_error_description(),
                                  "id_number": getattr(self.request, "idp_masked_number", None)})
            raise

    def token_scope(self) -> str:
        return self.request.client.get_allowed_scope(self.request.payload.scope or "")

    def sign_in_channel(self) -> str | None:
        return "kiosk"

    def before_tokens(self) -> None:
        user: Subject = self.request.user
        client = self.request.client
        raise_level(user.person, KIOSK_LEVEL, KIOSK_METHOD, actor=client.client_id)
        user.acr = assurance.session_level(user.person.assurance_level, user.amr)
        check = self.request.idp_assertion["check"]
        audit.record("kiosk.assertion.accepted", actor=client.client_id,
                     subject=user.person.id, client_id=client.client_id,
                     details={"id_number": self.request.idp_masked_number,
                              "score": check.get("score"), "acr": user.acr})


def register(app, server) -> None:
    server.register_grant(KioskAssertionGrant, [OpenIDToken()])
    metadata.publish(app, grant_types_supported=[JWT_BEARER])
