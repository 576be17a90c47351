"""Two ``idp serve`` processes behind one issuer, as behind a load balancer.

They share one PostgreSQL database, one Redis prefix and one IDP_SECRET_KEY, and
nothing else (each has its own instance directory). Whatever one instance starts (an
SSO session, a pending authorization request, a CSRF-protected form, a code, a
token) the other must honour, and whatever one ends the other must see as ended.
Cookies belong to a host, not a port, so one requests.Session on 127.0.0.1 carries
the provider's cookies to both, as a browser would behind one hostname.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

import idp.crypto.jose_sm2 as _sm2_jose  # noqa: F401  # joserfc learns the JWKS's SM2 keys

from .conftest import LiveIdP, backend_env, free_port, running

CITIZEN_ID = "11010519491231002X"
CITIZEN_PASSWORD = "Cluster-Pass-2026"
REDIRECT = "http://127.0.0.1/cluster/cb"
TIMEOUT = 10


class Cluster:
    def __init__(self, one: LiveIdP, two: LiveIdP, client_id: str, secret: str):
        self.one, self.two = one, two
        self.client_id, self.secret = client_id, secret
        self.issuer = one.issuer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with backend_env() as shared:
        p1 = free_port()
        p2 = free_port()
        while p2 == p1:
            p2 = free_port()
        issuer = f"http://127.0.0.1:{p1}"  # the same IDP_ISSUER for both
        one = LiveIdP(port=p1, issuer=issuer, shared_env=shared,
                      instance_path=tmp_path_factory.mktemp("instance-1"))
        two = LiveIdP(port=p2, issuer=issuer, shared_env=shared,
                      instance_path=tmp_path_factory.mktemp("instance-2"))
        one.run_cli("init")
        two.run_cli("user", "add", "--id-number", CITIZEN_ID, "--name", "赵六",
                    "--password", CITIZEN_PASSWORD)
        client = two.run_cli("client", "add", "--client-id", "cluster-rp", "--redirect-uri",
                             REDIRECT)
        with running(one, two):
            yield Cluster(one, two, client["client_id"], client["client_secret"])


# -- a browser, by hand ---------------------------------------------------------

def hidden_fields(page: str) -> dict[str, str]:
    fields = {}
    for tag in re.findall(r"<input\b[^>]*>", page):
        attrs = {k: html.unescape(v) for k, v in re.findall(r'(\w+)="([^"]*)"', tag)}
        if attrs.get("type") == "hidden" and "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize_params(cluster: Cluster, **extra) -> tuple[dict[str, str], str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": cluster.client_id,
              "redirect_uri": REDIRECT, "scope": "openid profile",
              "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
              "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return params, verifier


def sign_in(session: requests.Session, start: LiveIdP, params: dict[str, str],
            post_to: LiveIdP | None = None) -> tuple[str, list[str]]:
    """Run an authorization request from ``start`` through login and consent; forms
    are posted to ``post_to`` (default: the instance that served them). Returns the
    redirect to the client and the trail of requests."""
    trail = []
    resp = session.get(start.url("/authorize"), params=params, allow_redirects=False,
                       timeout=TIMEOUT)
    for _ in range(10):
        trail.append(f"{resp.request.method} {resp.url} {resp.status_code}")
        if resp.status_code != 302:
            raise AssertionError(f"unexpected answer: {trail}\n{resp.text[:800]}")
        location = urljoin(resp.url, resp.headers["Location"])
        if location.startswith(REDIRECT):
            return location, trail
        path = urlsplit(location).path
        if path in ("/login", "/consent"):
            page = session.get(location, timeout=TIMEOUT)
            trail.append(f"GET {page.url} {page.status_code}")
            assert page.status_code == 200, page.text[:800]
            target = post_to or _instance_of(location, start, post_to)
            form = hidden_fields(page.text)
            if path == "/login":
                form.update(username=CITIZEN_ID, password=CITIZEN_PASSWORD)
            else:
                form["consent"] = "allow"
            resp = session.post(target.url(path), data=form, allow_redirects=False,
                                timeout=TIMEOUT)
        else:
            resp = session.get(location, allow_redirects=False, timeout=TIMEOUT)
    raise AssertionError(f"too many redirects: {trail}")


def _instance_of(url: str, *candidates: LiveIdP | None) -> LiveIdP:
    for idp in candidates:
        if idp is not None and url.startswith(idp.base_url):
            return idp
    raise AssertionError(f"{url} is on neither instance")


def exchange(idp: LiveIdP, cluster: Cluster, code: str, verifier: str) -> dict:
    resp = requests.post(idp.url("/token"), auth=(cluster.client_id, cluster.secret),
                         timeout=TIMEOUT, data={"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": REDIRECT,
                                                "code_verifier": verifier})
    assert resp.status_code == 200, resp.text
    return resp.json()


def silent_authorize(session: requests.Session, idp: LiveIdP, cluster: Cluster):
    """``prompt=none`` at ``idp``: (query of the redirect to the client, verifier)."""
    params, verifier = authorize_params(cluster, prompt="none")
    resp = session.get(idp.url("/authorize"), params=params, allow_redirects=False,
                       timeout=TIMEOUT)
    assert resp.status_code == 302, resp.text[:800]
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT), location  # never the login page
    q = query(location)
    assert q["state"] == params["state"]
    if "code" in q:
        assert q["iss"] == cluster.issuer  # RFC 9207 (error responses: see test_openid_client)
    return q, verifier


# -- tests ----------------------------------------------------------------------------

def test_both_instances_publish_one_issuer_and_one_key_set(cluster):
    d1, d2 = cluster.one.discovery(), cluster.two.discovery()
    assert d1 == d2 and d1["issuer"] == cluster.issuer
    jwks1 = requests.get(cluster.one.url("/jwks"), timeout=TIMEOUT).json()
    jwks2 = requests.get(cluster.two.url("/jwks"), timeout=TIMEOUT).json()
    assert jwks1 == jwks2 and jwks1["keys"]


def test_sso_session_code_token_and_logout_across_instances(cluster):
    one, two = cluster.one, cluster.two
    browser = requests.Session()
    params, verifier = authorize_params(cluster)
    location, trail = sign_in(browser, one, params)
    assert any("/login" in step for step in trail) and "code" in query(location)
    exchange(one, cluster, query(location)["code"], verifier)  # instance 1's own code
    sso = browser.cookies.get("idp_sso")
    assert sso, "no SSO cookie after sign-in"

    # Instance 2, with nothing but the SSO cookie: a code at once, no login page.
    elsewhere = requests.Session()
    elsewhere.cookies.set("idp_sso", sso)
    q, verifier2 = silent_authorize(elsewhere, two, cluster)
    assert "code" in q and "error" not in q, q

    tokens = exchange(two, cluster, q["code"], verifier2)
    keys = KeySet.import_key_set(requests.get(one.url("/jwks"), timeout=TIMEOUT).json())
    id_token = jwt.decode(tokens["id_token"], keys, algorithms=["ES256", "RS256"]).claims
    assert id_token["iss"] == cluster.issuer and id_token["aud"] == [cluster.client_id]
    assert id_token["nonce"] and id_token["sid"]

    # The access token from instance 2 works at instance 1.
    info = requests.get(one.url("/userinfo"), timeout=TIMEOUT,
                        headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == id_token["sub"] and info.json()["name"] == "赵六"

    # Revoked at instance 1, refused at instance 2.
    revoke = requests.post(one.url("/revoke"), auth=(cluster.client_id, cluster.secret),
                           data={"token": tokens["access_token"]}, timeout=TIMEOUT)
    assert revoke.status_code == 200
    info2 = requests.get(two.url("/userinfo"), timeout=TIMEOUT,
                         headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert info2.status_code == 401

    # Logout at instance 2 (id_token_hint of this session: no confirmation needed).
    out = elsewhere.get(two.url("/logout"), params={"id_token_hint": tokens["id_token"]},
                        allow_redirects=False, timeout=TIMEOUT)
    assert out.status_code == 200, out.text[:500]
    assert "idp_sso=;" in out.headers.get("Set-Cookie", "")  # cookie cleared

    # Instance 1 no longer knows the session, even shown the old cookie.
    assert browser.cookies.get("idp_sso") == sso
    q, _ = silent_authorize(browser, one, cluster)
    assert q.get("error") == "login_required" and "code" not in q, q


def test_forms_served_by_one_instance_are_accepted_by_the_other(cluster):
    """The pending authorization request (Redis), the UI cookie and its CSRF token
    (signed with the shared IDP_SECRET_KEY) travel between instances."""
    one, two = cluster.one, cluster.two
    browser = requests.Session()
    params, verifier = authorize_params(cluster)
    location, trail = sign_in(browser, one, params, post_to=two)
    assert any(f"GET {one.base_url}/login" in step for step in trail), trail
    tokens = exchange(one, cluster, query(location)["code"], verifier)
    assert tokens["id_token"]

    # Logout without id_token_hint asks first; the confirmation comes from instance 2
    # and is posted to instance 1.
    page = browser.get(two.url("/logout"), timeout=TIMEOUT)
    assert page.status_code == 200 and 'name="confirm"' in page.text
    form = hidden_fields(page.text)
    assert form.get("confirm") == "yes" and form.get("csrf_token")
    done = browser.post(one.url("/logout"), data=form, allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 200, done.text[:500]
    assert browser.cookies.get("idp_sso") is None

    q, _ = silent_authorize(browser, two, cluster)
    assert q.get("error") == "login_required", q


def test_tampered_csrf_token_is_refused(cluster):
    """The cross-instance form test above proves something only if a bad token fails."""
    browser = requests.Session()
    page = browser.get(cluster.one.url("/login"), timeout=TIMEOUT)
    form = hidden_fields(page.text)
    form.update(csrf_token=form["csrf_token"][:-4] + "AAAA", username=CITIZEN_ID,
                password=CITIZEN_PASSWORD)
    resp = browser.post(cluster.two.url("/login"), data=form, allow_redirects=False,
                        timeout=TIMEOUT)
    assert resp.status_code == 400
    assert browser.cookies.get("idp_sso") is None
