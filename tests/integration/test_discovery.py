"""Discovery (OIDC Discovery 1.0 §3) and the JWKS."""

from __future__ import annotations


def test_discovery_document(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["issuer"] == "http://localhost"
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                "end_session_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert doc[key].startswith("http://localhost/")
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert {"ES256", "RS256"} <= set(doc["id_token_signing_alg_values_supported"])
    assert {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"} <= set(
        doc["token_endpoint_auth_methods_supported"])
    assert doc["backchannel_logout_supported"] and doc["backchannel_logout_session_supported"]
    assert "idcard" in doc["scopes_supported"]
    # RFC 8414 §2: every endpoint that lists a JWT client-auth method lists its algorithms
    # (openid-client refuses private_key_jwt clients otherwise).
    for endpoint in ("token", "introspection", "revocation"):
        if "private_key_jwt" in doc[f"{endpoint}_endpoint_auth_methods_supported"]:
            assert doc[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]


def test_jwks_publishes_public_keys_only(client):
    keys = client.get("/jwks").get_json()["keys"]
    algs = {k["alg"] for k in keys}
    assert {"ES256", "RS256"} <= algs
    for k in keys:
        assert k["kid"] and k["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(k)


def test_rotation_keeps_the_old_key_published(ctx, client):
    from idp.crypto.keys import generate
    from idp.extensions import db

    before = {k["kid"] for k in client.get("/jwks").get_json()["keys"]}
    row = generate("ES256")
    db.session.commit()
    ctx.extensions["idp.keys"].invalidate()
    after = {k["kid"] for k in client.get("/jwks").get_json()["keys"]}
    assert before < after and row.kid in after


def test_old_key_leaves_the_jwks_once_its_tokens_expired(ctx, client):
    import time

    from idp.crypto.keys import generate, retire_expired, verification_window
    from idp.extensions import db
    from idp.models import SigningKey

    old_kid = ctx.extensions["idp.keys"].signing_key("RS256")[0]
    generate("RS256")
    db.session.commit()
    ring = ctx.extensions["idp.keys"]
    ring.invalidate()
    assert old_kid in {k["kid"] for k in client.get("/jwks").get_json()["keys"]}
    assert retire_expired() == []  # its tokens may still be alive
    row = db.session.get(SigningKey, old_kid)
    row.retired_at = time.time() - verification_window() - 1
    db.session.commit()
    ring.invalidate()
    assert old_kid not in {k["kid"] for k in client.get("/jwks").get_json()["keys"]}
    assert retire_expired() == [old_kid]
    assert db.session.get(SigningKey, old_kid).status == "retired"
