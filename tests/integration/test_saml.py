"""SAML 2.0 identity provider: a pysaml2 service provider signs in through the login
form and checks what it gets the way an SP does (signature, audience, InResponseTo,
decryption); negative paths for signing, signature wrapping, unknown SPs."""

from __future__ import annotations

import re

import pytest
from saml2 import BINDING_HTTP_REDIRECT

from idp.saml.registry import register_sp
from tests.helpers import CITIZEN_ID, CITIZEN_PASSWORD, form_fields, make_person
from tests.saml.sp import make_sp


def _idp_metadata(client) -> str:
    resp = client.get("/saml/metadata")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


@pytest.fixture
def sp(client, tmp_path):
    sp = make_sp(str(tmp_path), _idp_metadata(client))
    register_sp(sp.metadata(), client_id="sp1", name="测试 SAML 网站", first_party=True)
    return sp


def _sign_in(client, resp):
    """Follow the interaction from an SSO response to the page that posts to the SP."""
    for _ in range(6):
        if resp.status_code != 302:
            return resp
        loc = resp.headers["Location"]
        if loc.startswith("/login") or "/login?" in loc:
            page = client.get(loc)
            fields = form_fields(page.get_data(as_text=True))
            resp = client.post("/login", data={**fields, "username": CITIZEN_ID,
                                               "password": CITIZEN_PASSWORD})
        elif "/consent" in loc:
            page = client.get(loc)
            fields = form_fields(page.get_data(as_text=True))
            resp = client.post("/consent", data={**fields, "consent": "allow"})
        else:
            resp = client.get(loc)
    return resp


def _posted(resp) -> dict[str, str]:
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html[:400]
    action = re.search(r'<form id="saml-post" method="post" action="([^"]+)"', html).group(1)
    return {"action": action, **form_fields(html)}


def test_sp_initiated_redirect_binding(client, sp):
    make_person()
    req_id, info = sp.authn_request(BINDING_HTTP_REDIRECT)
    posted = _posted(_sign_in(client, client.get(info["url"])))
    assert posted["action"] == sp.acs
    assert posted["RelayState"] == "rs-1"
    response = sp.parse(posted["SAMLResponse"], {req_id: "/"})
    ava = response.ava
    assert ava["name"] == ["李四"]
    assert ava["id_number_masked"][0].startswith("110105")
    assert "id_number" not in ava
