"""Userinfo, introspection, revocation and refresh tokens (OIDC Core §5.3, RFC 7662,
RFC 7009, RFC 6749 §6 with rotation and reuse detection)."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers import make_client, tokens_for


def bearer(token):
    return {"Authorization": "Bearer " + token}


def refresh(client, rp, token, **extra):
    return client.post("/token", headers=rp.basic,
                       data={"grant_type": "refresh_token", "refresh_token": token, **extra})


def test_userinfo_get_and_post(client, person, rp):
    body = tokens_for(client, rp, scope="openid profile phone")
    info = client.get("/userinfo", headers=bearer(body["access_token"]))
    data = info.get_json()
    assert info.status_code == 200
    assert data["sub"] == person.id and data["name"] == "李四"
    assert data["phone_number"] == "13912345678"
    assert data["id_number_masked"] == "110105********002X" and "id_number" not in data
    post = client.post("/userinfo", data={"access_token": body["access_token"]})
    assert post.get_json() == data


def test_userinfo_without_token_or_with_garbage(client):
    resp = client.get("/userinfo")
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = client.get("/userinfo", headers=bearer("not.a.jwt"))
    assert resp.status_code == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_id_token_is_not_an_access_token(client, person, rp):
    body = tokens_for(client, rp)
    resp = client.get("/userinfo", headers=bearer(body["id_token"]))
    assert resp.status_code == 401


def test_access_token_for_another_audience_is_refused(ctx, client, person, rp):
    from idp.oidc.tokens import sign

    now = int(time.time())
    forged = sign({"iss": "http://localhost", "aud": "https://other-api.example", "sub": person.id,
                   "client_id": rp.client_id, "scope": "openid", "iat": now, "exp": now + 60,
                   "jti": "x1"}, "ES256", typ="at+jwt")
    assert client.get("/userinfo", headers=bearer(forged)).status_code == 401
    good = sign({"iss": "http://localhost", "aud": "http://localhost", "sub": person.id,
                 "client_id": rp.client_id, "scope": "openid", "iat": now, "exp": now + 60,
                 "jti": "x2"}, "ES256", typ="at+jwt")
    assert client.get("/userinfo", headers=bearer(good)).status_code == 200
    expired = sign({"iss": "http://localhost", "aud": "http://localhost", "sub": person.id,
                    "client_id": rp.client_id, "scope": "openid", "iat": now - 120,
                    "exp": now - 60, "jti": "x3"}, "ES256", typ="at+jwt")
    assert client.get("/userinfo", headers=bearer(expired)).status_code == 401


def test_token_signed_by_a_foreign_key_is_refused(client, person, rp):
    from joserfc.jwk import ECKey

    now = int(time.time())
    key = ECKey.generate_key("P-256")
    forged = jwt.encode({"alg": "ES256", "typ": "at+jwt"},
                        {"iss": "http://localhost", "aud": "http://localhost", "sub": person.id,
                         "client_id": rp.client_id, "scope": "openid", "iat": now,
                         "exp": now + 60, "jti": "f"}, key)
    assert client.get("/userinfo", headers=bearer(forged)).status_code == 401


def test_userinfo_needs_openid_scope(client, ctx):
    svc = make_client("svc", grant_types=["client_credentials"], redirect_uris=())
    at = client.post("/token", headers=svc.basic,
                     data={"grant_type": "client_credentials"}).get_json()["access_token"]
    assert client.get("/userinfo", headers=bearer(at)).status_code in (401, 403)


def test_introspection_and_revocation_of_access_token(client, person, rp):
    rs = make_client("resource-server", grant_types=["client_credentials"], redirect_uris=())
    body = tokens_for(client, rp)
    at = body["access_token"]
    resp = client.post("/introspect", headers=rs.basic, data={"token": at})
    data = resp.get_json()
    assert data["active"] is True and data["client_id"] == rp.client_id
    assert data["sub"] == person.id and data["token_type"] == "Bearer"
    # Revocation by a client that does not own the token: 200 but no effect.
    assert client.post("/revoke", headers=rs.basic, data={"token": at}).status_code == 200
    assert client.post("/introspect", headers=rs.basic, data={"token": at}).get_json()["active"]
    # The owner revokes it.
    assert client.post("/revoke", headers=rp.basic, data={"token": at}).status_code == 200
    assert client.post("/introspect", headers=rs.basic,
                       data={"token": at}).get_json() == {"active": False}
    assert client.get("/userinfo", headers=bearer(at)).status_code == 401


def test_introspection_requires_client_authentication(client, person, rp):
    body = tokens_for(client, rp)
    resp = client.post("/introspect", data={"token": body["access_token"]})
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_client"
    resp = client.post("/introspect", headers=rp.basic, data={})
    assert resp.get_json()["error"] == "invalid_request"
    resp = client.post("/introspect", headers=rp.basic, data={"token": "unknown"})
    assert resp.get_json() == {"active": False}


def test_refresh_rotates_and_reuse_revokes_the_family(client, person, rp):
    body = tokens_for(client, rp, scope="openid profile offline_access")
    r1 = body["refresh_token"]
    resp = refresh(client, rp, r1)
    new = resp.get_json()
    assert resp.status_code == 200 and new["refresh_token"] != r1 and new["id_token"]
    # The ID token of a refresh keeps the original sign-in's sid and auth_time.
    jwks = KeySet.import_key_set(client.get("/jwks").get_json())
    first = jwt.decode(body["id_token"], jwks, algorithms=["ES256"]).claims
    again = jwt.decode(new["id_token"], jwks, algorithms=["ES256"]).claims
    assert first["sid"] == again["sid"] and first["auth_time"] == again["auth_time"]
    # Reusing r1 (already rotated) is refused and kills the family, r2 included.
    reuse = refresh(client, rp, r1)
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    assert refresh(client, rp, new["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert client.get("/userinfo", headers=bearer(new["access_token"])).status_code == 401
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 401


def test_two_racing_refreshes_with_one_token_get_tokens_once(ctx, client, person, rp,
                                                             monkeypatch):
    """A thief and the client present the same refresh token at the same moment: both
    pass the lookup before either rotates it. Only one may get tokens, and the loser is
    reuse (the family is revoked)."""
    from idp.oidc import grants

    body = tokens_for(client, rp, scope="openid profile offline_access")
    rt = body["refresh_token"]
    racer = {}
    original = grants.RefreshTokenGrant.authenticate_user

    def interleaved(self, token):
        # The other request runs to completion between this one's lookup and its issue.
        if not racer:
            racer["started"] = True
            racer["resp"] = refresh(ctx.test_client(), rp, rt)
        return original(self, token)

    monkeypatch.setattr(grants.RefreshTokenGrant, "authenticate_user", interleaved)
    late = refresh(client, rp, rt)
    first = racer["resp"]
    assert first.status_code == 200, first.get_json()
    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"
    # Reuse detected: what the first racer got is revoked too.
    monkeypatch.undo()
    assert refresh(client, rp, first.get_json()["refresh_token"]).get_json()["error"] == \
        "invalid_grant"
    assert client.get("/userinfo", headers=bearer(first.get_json()["access_token"])
                      ).status_code == 401


def test_refresh_cannot_widen_scope_and_is_bound_to_client(client, person, rp):
    body = tokens_for(client, rp, scope="openid profile")
    resp = refresh(client, rp, body["refresh_token"], scope="openid profile phone")
    assert resp.get_json()["error"] == "invalid_scope"
    other = make_client("rp2")
    resp = refresh(client, other, body["refresh_token"])
    assert resp.get_json()["error"] == "invalid_grant"
    narrowed = refresh(client, rp, body["refresh_token"], scope="openid")
    assert narrowed.status_code == 200 and narrowed.get_json()["scope"] == "openid"


def test_revoking_refresh_token_ends_the_grant(client, person, rp):
    body = tokens_for(client, rp)
    resp = client.post("/revoke", headers=rp.basic,
                       data={"token": body["refresh_token"], "token_type_hint": "refresh_token"})
    assert resp.status_code == 200
    assert refresh(client, rp, body["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 401


def test_public_client_can_revoke_its_own_token(client, person):
    app = make_client("app", public=True)
    body = tokens_for(client, app)
    resp = client.post("/revoke", data={"token": body["refresh_token"], "client_id": "app"})
    assert resp.status_code == 200
    resp = client.post("/token", data={"grant_type": "refresh_token", "client_id": "app",
                                       "refresh_token": body["refresh_token"]})
    assert resp.get_json()["error"] == "invalid_grant"


def test_revocation_unsupported_hint(client, person, rp):
    resp = client.post("/revoke", headers=rp.basic,
                       data={"token": "x", "token_type_hint": "weird"})
    assert resp.get_json()["error"] == "unsupported_token_type"


def test_refresh_fails_for_deactivated_person(client, person, rp):
    from idp.extensions import db

    body = tokens_for(client, rp)
    person.status = "locked"
    db.session.commit()
    resp = refresh(client, rp, body["refresh_token"])
    assert resp.status_code == 400
    assert client.get("/userinfo", headers=bearer(body["access_token"])).status_code == 401
