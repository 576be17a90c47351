"""一次认证、多点互联: every channel ends in the same kind of tokens, from the same issuer,
about the same ``sub``; only ``channel``, ``amr``, ``acr`` (and ``act``) say where, how and
how strongly. One citizen goes through the website, the mobile app, a kiosk screen (device
grant), a trusted kiosk's card reader and a service-hall counter, in one test."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from idp.clients import register_client
from idp.extensions import db
from idp.models import Person
from tests.helpers import RP, exchange, get_code
from tests.integration import test_ciba as hall
from tests.integration import test_device_grant as screen
from tests.integration import test_kiosk_assertion as card


def _verified(client, token: str) -> dict:
    """Checked the way any relying party checks it: the published JWKS and the issuer."""
    keys = KeySet.import_key_set(client.get("/jwks").get_json())
    claims = jwt.decode(token, keys, algorithms=["ES256", "RS256", "SM2SM3"]).claims
    assert claims["iss"] == client.get("/.well-known/openid-configuration").get_json()["issuer"]
    return claims


def _app_client() -> RP:
    register_client(client_id="gov-app", name="政务服务App", secret=None, auth_method="none",
                    redirect_uris=["cn.gov.app:/cb"], grant_types=["authorization_code",
                                                                   "refresh_token"],
                    post_logout_redirect_uris=[], backchannel_logout_uri=None, first_party=True,
                    sensitive_scopes=[], channel="app", jwks=None, id_token_alg=None)
    return RP("gov-app", None, "cn.gov.app:/cb")


def test_one_identity_across_every_channel(ctx, client, person, rp):
    person.assurance_level = "L3"  # real-name verified
    db.session.commit()
    seen: dict[str, dict] = {}

    # Website: authorization code + PKCE, password.
    code, _q, verifier = get_code(client, rp)
    seen["web"] = _verified(client, exchange(client, rp, code, verifier).get_json()["id_token"])

    # Mobile app: the same flow as a public client; the browser's SSO session carries over.
    app = _app_client()
    code, _q, verifier = get_code(client, app)
    seen["app"] = _verified(client, exchange(client, app, code, verifier).get_json()["id_token"])

    # Kiosk screen without a reader: device grant approved on the phone's browser.
    tv = screen.device_client()
    started = screen.start(client, tv).get_json()
    assert screen.decide(client, started["user_code"]).status_code == 200
    seen["device"] = _verified(client, screen.poll(client, tv, started["device_code"])
                               .get_json()["id_token"])

    # Trusted kiosk: ID-card chip read and face match, signed by the kiosk's key.
    key = card.kiosk()
    resp = card.exchange(client, card.assertion(key))
    seen["card"] = _verified(client, resp.get_json()["id_token"])

    # Service-hall counter: CIBA, approved on the app, the clerk in ``act``.
    counter = hall.ciba_client()
    aid = hall.start(client, counter)
    hall.approve(aid, amr=["pwd", "sms"], acr="L3")
    seen["hall"] = _verified(client, hall.poll(client, counter, aid).get_json()["id_token"])

    assert {c["sub"] for c in seen.values()} == {person.id}
    assert {c["iss"] for c in seen.values()} == {"http://localhost"}
    where = {k: (c.get("channel"), c.get("acr"), tuple(c.get("amr", [])), c.get("act"))
             for k, c in seen.items()}
    assert where == {
        "web": ("web", "L2", ("pwd",), None),
        "app": ("app", "L2", ("pwd",), None),
        "device": ("kiosk", "L2", ("pwd",), None),
        "card": ("kiosk", "L4", ("idcard", "face"), None),
        # The kiosk's chip read raised the account to L4; the app's approval proved two
        # factors, so the counter's tokens say L3 — what was reached, never more.
        "hall": ("hall", "L3", ("pwd", "sms"), {"sub": hall.CLERK, "client_id": "hall1"}),
    }
    db.session.expire_all()
    assert db.session.get(Person, person.id).assurance_level == "L4"
