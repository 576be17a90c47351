"""An independent CAS client, the ``python-cas`` library, against ``idp serve``.

Ticket validation (CAS 2.0 and 3.0 with attributes), proxy tickets and the single
logout request are python-cas's own code; the browser part is plain HTTP with a cookie
jar through the provider's login form. Nothing of the provider is imported."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cas import CASClientV2, CASClientV3

from tests.cas_helpers import Service

from .cas_provider import BACKEND, CITIZEN_ID, CITIZEN_PASSWORD, TICKET_TTL
from .conftest import LiveIdP


@pytest.fixture(scope="module")
def cas_idp(cas_setup) -> LiveIdP:
    return cas_setup.idp


@pytest.fixture(scope="module")
def services(cas_setup) -> tuple[Service, Service]:
    return cas_setup.app, cas_setup.callback


def client(idp: LiveIdP, service: str, version: int = 3, **kwargs):
    cls = CASClientV3 if version == 3 else CASClientV2
    return cls(service_url=service, server_url=idp.base_url + "/cas/", **kwargs)


def sign_in(idp: LiveIdP, cas,
            browser: requests.Session | None = None) -> tuple[str, requests.Session]:
    """Follow python-cas's login URL through the login form; the service ticket the
    browser brings back to the service."""
    browser = browser or requests.Session()
    resp = browser.get(cas.get_login_url(), allow_redirects=False)
    for _ in range(6):
        loc = resp.headers.get("Location", "")
        if loc.startswith(cas.service_url):
            return parse_qs(urlsplit(loc).query)["ticket"][0], browser
        if urlsplit(loc).path == "/login":
            page = browser.get(idp.base_url + loc if loc.startswith("/") else loc)
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                     page.text))
            resp = browser.post(idp.base_url + "/login", allow_redirects=False,
                                data={**fields, "username": CITIZEN_ID,
                                      "password": CITIZEN_PASSWORD})
        else:
            resp = browser.get(idp.base_url + loc if loc.startswith("/") else loc,
                               allow_redirects=False)
    raise AssertionError(f"no ticket: {resp.status_code} {resp.text[:300]}")


def test_cas3_ticket_with_attributes_single_use(cas_idp, services):
    app, _ = services
    cas = client(cas_idp, app.base + "/app/home")
    ticket, _ = sign_in(cas_idp, cas)
    user, attributes, pgtiou = cas.verify_ticket(ticket)
    assert user and pgtiou is None
    assert attributes["name"] == "王五"
    assert attributes["id_number_masked"] == "110105********002X"
    assert attributes["phone_number"] == "13912345678"
    assert "id_number" not in attributes
    assert attributes["acr"] == "L2" and attributes["channel"] == "web"
    assert cas.verify_ticket(ticket)[0] is None  # replayed


def test_cas2_and_sso(cas_idp, services):
    app, _ = services
    first = client(cas_idp, app.base + "/app/a", version=2)
    ticket, browser = sign_in(cas_idp, first)
    user, attributes, _ = first.verify_ticket(ticket)
    assert user and not attributes  # CAS 2.0: no attributes
    # the same browser gets a ticket for another page without the password
    second = client(cas_idp, app.base + "/app/b")
    resp = browser.get(second.get_login_url(), allow_redirects=False)
    loc = resp.headers["Location"]
    assert loc.startswith(second.service_url + "?ticket=ST-")
    assert second.verify_ticket(parse_qs(urlsplit(loc).query)["ticket"][0])[0] == user


def test_ticket_for_another_service_is_refused(cas_idp, services):
    app, _ = services
    cas = client(cas_idp, app.base + "/app/home")
    ticket, _ = sign_in(cas_idp, cas)
    other = client(cas_idp, app.base + "/app/other")
    assert other.verify_ticket(ticket)[0] is None
    assert cas.verify_ticket(ticket)[0] is None  # and it is used up


def test_expired_ticket_is_refused(cas_idp, services):
    app, _ = services
    cas = client(cas_idp, app.base + "/app/home")
    ticket, _ = sign_in(cas_idp, cas)
    time.sleep(TICKET_TTL + 0.5)  # past the ticket's whole lifetime
    assert cas.verify_ticket(ticket)[0] is None


def test_proxy_ticket_through_https_callback(cas_idp, services):
    app, callback = services
    cas = client(cas_idp, app.base + "/app/home", proxy_callback=callback.base + "/pgt")
    ticket, _ = sign_in(cas_idp, cas)
    user, _, pgtiou = cas.verify_ticket(ticket)
    assert user and pgtiou and callback.gets[-1]["pgtIou"] == pgtiou
    # python-cas asks /cas/proxy for a ticket to its own service_url: the backend's
    backend = client(cas_idp, BACKEND)
    pt = backend.get_proxy_ticket(callback.gets[-1]["pgtId"])
    assert pt.startswith("PT-")
    assert backend.verify_ticket(pt)[0] is None  # serviceValidate takes no proxy ticket
    pt = backend.get_proxy_ticket(callback.gets[-1]["pgtId"])
    backend.url_suffix = "p3/proxyValidate"
    proxied_user, attributes, _ = backend.verify_ticket(pt)
    assert proxied_user == user and attributes["name"] == "王五"


def test_proxy_callback_over_http_is_refused(cas_idp, services):
    app, _ = services
    calls = len(app.gets)
    cas = client(cas_idp, app.base + "/app/home", proxy_callback=app.base + "/app/pgt")
    ticket, _ = sign_in(cas_idp, cas)
    assert cas.verify_ticket(ticket)[0] is None
    assert len(app.gets) == calls  # the provider never called it


def test_single_logout_request_is_the_one_python_cas_accepts(cas_idp, services):
    app, _ = services
    cas = client(cas_idp, app.base + "/app/home")
    ticket, browser = sign_in(cas_idp, cas)
    assert cas.verify_ticket(ticket)[0]
    before = len(app.posts)
    page = browser.get(cas.get_logout_url())
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    assert fields.get("confirm") == "yes"
    browser.post(cas_idp.base_url + "/cas/logout", data=fields)
    posts = app.wait_posts(before + 1)
    assert CASClientV3.verify_logout_request(posts[before]["logoutRequest"], ticket)
    # signed out: python-cas's login URL leads to the login form again
    resp = browser.get(cas.get_login_url(), allow_redirects=False)
    assert urlsplit(resp.headers["Location"]).path == "/login"
