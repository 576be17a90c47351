"""Pairwise subject identifiers (OIDC Core §8.1) keyed with HMAC-SM3."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.clients import ClientError
from tests.helpers import make_client, tokens_for


def _claims(client, token):
    return jwt.decode(token, KeySet.import_key_set(client.get("/jwks").get_json()),
                      algorithms=["ES256", "RS256"]).claims


def _pairwise(cid, host, **kw):
    return make_client(cid, first_party=True, subject_type="pairwise",
                       redirect_uris=(f"https://{host}/cb",), **kw)


def test_sectors_get_unlinkable_subjects_and_one_sector_shares_one(client, person):
    tax_a = _pairwise("tax-a", "tax.example")
    tax_b = _pairwise("tax-b", "tax.example")
    health = _pairwise("health", "health.example")
    public = make_client("plain", first_party=True)
    subs = {}
    for rp in (tax_a, tax_b, health, public):
        body = tokens_for(client, rp)
        subs[rp.client_id] = _claims(client, body["id_token"])["sub"]
        info = client.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
        assert info.status_code == 200 and info.get_json()["sub"] == subs[rp.client_id]
        at = _claims(client, body["access_token"])
        assert at["sub"] == subs[rp.client_id]
        assert person.id not in json.dumps(at) or rp is public
    assert subs["tax-a"] == subs["tax-b"]
    assert subs["tax-a"] != subs["health"]
    assert person.id not in (subs["tax-a"], subs["health"])
    assert subs["plain"] == person.id


def test_refresh_and_introspection_keep_the_pairwise_subject(client, person):
    rp = _pairwise("tax-a", "tax.example")
    body = tokens_for(client, rp)
    sub = _claims(client, body["id_token"])["sub"]
    new = client.post("/token", headers=rp.basic, data={
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"]}).get_json()
    assert _claims(client, new["id_token"])["sub"] == sub
    intro = client.post("/introspect", headers=rp.basic,
                        data={"token": new["refresh_token"]}).get_json()
    assert intro["active"] and intro["sub"] == sub


def test_pairwise_needs_one_host_or_a_sector_identifier(ctx):
    with pytest.raises(ClientError, match="sector-identifier-uri"):
        make_client("multi", subject_type="pairwise",
                    redirect_uris=("https://a.example/cb", "https://b.example/cb"))


class _SectorDoc:
    def __init__(self, body: bytes):
        self.hits = 0
        doc = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                doc.hits += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sector.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_sector_identifier_uri_on_a_private_address_is_not_fetched(ctx):
    # The document server is on loopback: a registration pointing there must not make the
    # provider call into its own network (server-side request forgery), as with jwks_uri.
    doc = _SectorDoc(b'["https://a.example/cb"]')
    try:
        with pytest.raises(ClientError, match="loopback, private or reserved"):
            make_client("ssrf", subject_type="pairwise", sector_uri=doc.url.replace(
                "http://127.0.0.1", "https://127.0.0.1"), redirect_uris=("https://a.example/cb",))
        with pytest.raises(ClientError, match="could not be fetched: must be an https URL"):
            make_client("ssrf2", subject_type="pairwise", sector_uri=doc.url,
                        redirect_uris=("https://a.example/cb",))
        assert doc.hits == 0
    finally:
        doc.server.shutdown()


def test_sector_identifier_uri_must_list_the_redirect_uris(ctx, client, person, monkeypatch):
    monkeypatch.setitem(ctx.config, "CLIENT_FETCH_ALLOW_PRIVATE", True)  # a local test server
    uris = ["https://a.example/cb", "https://b.example/cb"]
    doc = _SectorDoc(json.dumps(uris).encode())
    try:
        one = make_client("one", first_party=True, subject_type="pairwise", sector_uri=doc.url,
                          redirect_uris=tuple(uris))
        two = make_client("two", first_party=True, subject_type="pairwise", sector_uri=doc.url,
                          redirect_uris=("https://b.example/cb",))
        s1 = _claims(client, tokens_for(client, one)["id_token"])["sub"]
        s2 = _claims(client, tokens_for(client, two)["id_token"])["sub"]
        assert s1 == s2
        with pytest.raises(ClientError, match="does not list"):
            make_client("three", subject_type="pairwise", sector_uri=doc.url,
                        redirect_uris=("https://c.example/cb",))
    finally:
        doc.server.shutdown()
