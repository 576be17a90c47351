"""Pushed authorization requests (RFC 9126), signed request objects (RFC 9101), the
FAPI 2.0 profile, JARM and the claims parameter, from a relying party's side."""

from __future__ import annotations

import time

from joserfc import jwt

from idp.clients import ClientError, register_client
from tests.helpers import REDIRECT, follow_login, make_client, query

from .fapi_helpers import (
    ISSUER,
    auth_params,
    authorize_with,
    code_via_par,
    exchange_code,
    keyed_client,
    new_key,
    public_jwks,
    push,
)


def _page_error(resp) -> str:
    """The error code on the person's screen (the error cannot be sent back)."""
    assert resp.status_code == 400, resp.status_code
    import re

    found = re.search(r'id="error-code">.*?<span class="code"[^>]*>([a-z_]+)<',
                      resp.get_data(as_text=True), re.S)
    assert found, resp.get_data(as_text=True)[:300]
    return found.group(1)


def test_par_then_authorize_by_reference_and_the_reference_is_single_use(client, person):
    rp = keyed_client()
    params = auth_params(rp)
    pushed = push(client, rp, params)
    assert pushed.status_code == 201 and pushed.headers["Cache-Control"] == "no-store"
    body = pushed.get_json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert 0 < body["expires_in"] <= 60
    resp = follow_login(client, authorize_with(client, rp, request_uri=body["request_uri"]))
    q = query(resp.headers["Location"])
    assert resp.headers["Location"].startswith(REDIRECT)
    assert q["state"] == params["state"] and q["iss"] == ISSUER and q["code"]
    token = exchange_code(client, rp, q["code"], params["state"])
    assert token.status_code == 200, token.get_json()
    # The same request_uri again (the browser's back button, or an attacker's copy).
    again = authorize_with(client, rp, request_uri=body["request_uri"])
    assert "invalid_request_uri" == _page_error(again)


def test_par_authenticates_the_client_as_the_token_endpoint_does(client, person):
    rp = keyed_client()
    unauthenticated = push(client, rp, auth=False)
    assert unauthenticated.status_code == 401
    assert unauthenticated.get_json()["error"] == "invalid_client"
    other = new_key()
    forged = push(client, rp, {**auth_params(rp), **_foreign_assertion(rp, other)}, auth=False)
    assert forged.status_code == 401


def _foreign_assertion(rp, key):
    from .fapi_helpers import KeyedClient

    return KeyedClient(rp.client_id, key).assertion()


def test_par_refuses_what_authorize_would_refuse(client, person):
    rp = keyed_client()
    bad_redirect = push(client, rp, auth_params(rp, redirect_uri="https://evil.example/cb"))
    assert bad_redirect.status_code == 400
    assert bad_redirect.get_json()["error"] in ("invalid_request", "invalid_redirect_uri")
    nested = push(client, rp, {**auth_params(rp), "request_uri": "urn:x"})
    assert nested.status_code == 400 and nested.get_json()["error"] == "invalid_request"
    plain_pkce = push(client, rp, auth_params(rp, code_challenge_method="plain"))
    assert plain_pkce.status_code == 400


def test_request_uri_of_another_client_is_refused(client, person):
    alice, bob = keyed_client("alice"), keyed_client("bob")
    ref = push(client, alice).get_json()["request_uri"]
    assert "invalid_request_uri" == _page_error(authorize_with(client, bob, request_uri=ref))
    # ...and the attempt did not spend alice's reference? It did: single use means any
    # presentation consumes it, so a leaked reference is dead after one try.
    assert "invalid_request_uri" == _page_error(authorize_with(client, alice, request_uri=ref))


def test_signed_request_object_by_value(client, person):
    rp = keyed_client()
    obj = rp.request_object()
    resp = follow_login(client, authorize_with(client, rp, request=obj))
    q = query(resp.headers["Location"])
    assert q["code"] and q["iss"] == ISSUER
    # The parameters came from the signed object: its state, not an outer one.
    claims = jwt.decode(obj, rp.key).claims
    assert q["state"] == claims["state"]
    assert exchange_code(client, rp, q["code"], claims["state"]).status_code == 200


def test_request_object_by_par_reference(client, person):
    rp = keyed_client()
    obj = rp.request_object()
    state = jwt.decode(obj, rp.key).claims["state"]
    pushed = push(client, rp, {"request": obj})
    assert pushed.status_code == 201, pushed.get_json()
    resp = follow_login(client, authorize_with(client, rp,
                                               request_uri=pushed.get_json()["request_uri"]))
    q = query(resp.headers["Location"])
    assert q["state"] == state and exchange_code(client, rp, q["code"], state).status_code == 200


def test_bad_request_objects_are_refused(client, person):
    rp = keyed_client()
    now = int(time.time())
    cases = {
        "expired": rp.request_object(exp=now - 120, iat=now - 300),
        "wrong aud": rp.request_object(aud="https://other-idp.example"),
        "wrong iss": rp.request_object(iss="someone-else"),
        "no exp": rp.request_object(exp=None),
        "lives too long": rp.request_object(exp=now + 3600),
        "not yet valid": rp.request_object(nbf=now + 600),
        "unregistered key": rp.request_object(key=new_key("k1")),
        "client_id mismatch": rp.request_object(client_id="other"),
    }
    for why, obj in cases.items():
        resp = authorize_with(client, rp, request=obj)
        assert _page_error(resp) in ("invalid_request_object", "invalid_request"), why
        pushed = push(client, rp, {"request": obj})
        assert pushed.status_code == 400, why
    # alg none: no signature at all.
    header = "eyJhbGciOiJub25lIn0"
    unsigned = header + "." + rp.request_object().split(".")[1] + "."
    assert "invalid_request_object" == _page_error(authorize_with(client, rp, request=unsigned))


def test_require_signed_request_object(client, person):
    rp = keyed_client("signed-only", require_signed_request_object=True)
    plain = client.get("/authorize", query_string=auth_params(rp))
    assert _page_error(plain) == "invalid_request"
    assert push(client, rp).status_code == 400
    resp = follow_login(client, authorize_with(client, rp, request=rp.request_object()))
    assert "code" in query(resp.headers["Location"])


def test_require_par_per_client_and_server_wide(ctx, client, person, monkeypatch):
    rp = keyed_client("par-only", require_pushed_authorization_requests=True)
    direct = client.get("/authorize", query_string=auth_params(rp))
    assert _page_error(direct) == "invalid_request"
    code, state = code_via_par(client, rp)
    assert code
    other = make_client("plain-rp")
    monkeypatch.setitem(ctx.config, "REQUIRE_PUSHED_AUTHORIZATION_REQUESTS", True)
    from tests.helpers import authorize_url

    assert _page_error(client.get(authorize_url(other))) == "invalid_request"
    assert client.get("/.well-known/openid-configuration").get_json()[
        "require_pushed_authorization_requests"] is True


def test_fapi2_client_skipping_par_or_dpop_is_refused(client, person):
    rp = keyed_client("fapi", profile="fapi2")
    direct = client.get("/authorize", query_string=auth_params(rp))
    assert _page_error(direct) == "invalid_request"
    no_pkce = push(client, rp, auth_params(rp, code_challenge=None,
                                           code_challenge_method=None))
    assert no_pkce.status_code == 400 and "PKCE" in no_pkce.get_json()["error_description"]
    code, state = code_via_par(client, rp)
    bearer_only = exchange_code(client, rp, code, state)  # no DPoP proof, no certificate
    assert bearer_only.status_code == 400
    assert bearer_only.get_json()["error"] == "invalid_request"
    assert "sender-constrained" in bearer_only.get_json()["error_description"]
    code, state = code_via_par(client, rp)
    bound = exchange_code(client, rp, code, state, proof_key=new_key())
    assert bound.status_code == 200 and bound.get_json()["token_type"] == "DPoP"


def test_fapi2_registration_refuses_weak_client_authentication(ctx):
    for method in ("client_secret_basic", "none"):
        try:
            register_client(client_id=f"weak-{method}", name="x", auth_method=method,
                            secret="s" * 32 if method != "none" else None,
                            redirect_uris=[REDIRECT], security={"profile": "fapi2"})
        except ClientError as exc:
            assert "private_key_jwt" in str(exc)
        else:
            raise AssertionError(f"FAPI 2.0 with {method} was accepted")


def test_fapi2_codes_live_at_most_60_seconds(ctx, client, person, monkeypatch):
    from idp.clients import find_client
    from idp.oidc import profile

    monkeypatch.setitem(ctx.config, "AUTHORIZATION_CODE_TTL", 600)
    keyed_client("fapi", profile="fapi2")
    make_client("plain")
    assert profile.code_ttl(find_client("fapi")) == 60
    assert profile.code_ttl(find_client("plain")) == 600


def test_jarm_response_is_signed_for_the_client(client, person):
    from idp.oidc.tokens import keyring

    rp = keyed_client()
    params = auth_params(rp, response_mode="query.jwt")
    resp = follow_login(client, client.get("/authorize", query_string=params))
    q = query(resp.headers["Location"])
    assert set(q) == {"response"}  # nothing in the clear
    claims = jwt.decode(q["response"], keyring().public_keys(),
                        algorithms=keyring().algorithms()).claims
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id
    assert claims["state"] == params["state"] and claims["code"]
    assert claims["exp"] > time.time()
    assert exchange_code(client, rp, claims["code"], params["state"]).status_code == 200
    # Errors travel signed too, and fragment.jwt puts the response in the fragment.
    denied = follow_login(client, client.get("/authorize", query_string=auth_params(
        rp, response_mode="fragment.jwt", prompt="none", max_age="0")))
    location = denied.headers["Location"]
    assert "#response=" in location and "?" not in location
    token = location.split("#response=", 1)[1]
    err = jwt.decode(token, keyring().public_keys(), algorithms=keyring().algorithms()).claims
    assert err["error"] == "login_required" and err["aud"] == rp.client_id


def test_claims_parameter_acr_essential_asks_for_the_level(client, person):
    import json

    rp = make_client("claims-rp")
    from tests.helpers import authorize_url

    follow_login(client, client.get(authorize_url(rp)))  # signed in at L2 with a password
    wanted = json.dumps({"id_token": {"acr": {"essential": True, "values": ["L4"]}}})
    resp = client.get(authorize_url(rp, claims=wanted, prompt="none"))
    assert query(resp.headers["Location"])["error"] == "interaction_required"
    for bad in ("not json", json.dumps([1]), json.dumps({"id_token": {"acr": 5}}),
                json.dumps({"other": {}})):
        resp = client.get(authorize_url(rp, claims=bad))
        q = query(resp.headers["Location"])
        assert q["error"] == "invalid_request" and "claims" in q["error_description"]


def test_discovery_lists_what_is_supported(client):
    d = client.get("/.well-known/openid-configuration").get_json()
    assert d["pushed_authorization_request_endpoint"] == ISSUER + "/par"
    assert d["request_parameter_supported"] is True
    assert d["request_uri_parameter_supported"] is False  # only our own PAR references
    assert "none" not in d["request_object_signing_alg_values_supported"]
    assert {"ES256", "PS256", "SM2SM3"} <= set(d["request_object_signing_alg_values_supported"])
    assert {"ES256", "PS256"} <= set(d["dpop_signing_alg_values_supported"])
    assert d["claims_parameter_supported"] is True
    assert {"private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"} <= set(
        d["token_endpoint_auth_methods_supported"])
    assert d["tls_client_certificate_bound_access_tokens"] is True
    assert d["authorization_response_iss_parameter_supported"] is True
    assert set(d["authorization_signing_alg_values_supported"]) <= {"ES256", "RS256", "SM2SM3"}


def test_jwks_uri_registration_refuses_private_addresses(ctx):
    for uri in ("https://127.0.0.1/jwks", "https://10.1.2.3/jwks", "https://[::1]/jwks",
                "http://rp.example/jwks", "https://169.254.169.254/latest"):
        try:
            register_client(client_id="by-ref", name="x", auth_method="private_key_jwt",
                            redirect_uris=[REDIRECT], security={"jwks_uri": uri})
        except ClientError as exc:
            assert "jwks_uri" in str(exc)
        else:
            raise AssertionError(f"jwks_uri {uri} was accepted")


def test_jwks_uri_keys_are_fetched_cached_and_refetched_on_unknown_kid(ctx, client, person,
                                                                      monkeypatch):
    """A key set by reference, served from a real local HTTP server (private addresses
    allowed for this test only, as CLIENT_FETCH_ALLOW_PRIVATE documents)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from .fapi_helpers import KeyedClient

    served = {"jwks": public_jwks(new_key("k1")), "hits": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            served["hits"] += 1
            body = json.dumps(served["jwks"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setitem(ctx.config, "CLIENT_FETCH_ALLOW_PRIVATE", True)
        monkeypatch.setitem(ctx.config, "CLIENT_JWKS_REFETCH_INTERVAL", 0)
        key1 = new_key("k1")
        served["jwks"] = public_jwks(key1)
        register_client(client_id="by-ref", name="x", auth_method="private_key_jwt",
                        redirect_uris=[REDIRECT],
                        security={"jwks_uri": f"http://127.0.0.1:{srv.server_port}/jwks"})
        rp = KeyedClient("by-ref", key1)
        assert push(client, rp).status_code == 201
        assert push(client, rp).status_code == 201
        assert served["hits"] == 1  # cached
        # The client rotates: a new kid makes us fetch again.
        key2 = new_key("k2")
        served["jwks"] = public_jwks(key2)
        assert push(client, KeyedClient("by-ref", key2)).status_code == 201
        assert served["hits"] == 2
        # With private addresses refused again, the same registration cannot fetch.
        monkeypatch.setitem(ctx.config, "CLIENT_FETCH_ALLOW_PRIVATE", False)
        from idp.oidc import client_keys

        client_keys.forget("by-ref")
        refused = push(client, KeyedClient("by-ref", key2))
        assert refused.status_code == 401
        assert refused.get_json()["error"] == "invalid_client"
        assert "jwks_uri" in refused.get_json()["error_description"]
    finally:
        srv.shutdown()
