"""The demo citizen and the two demo relying parties (idempotent)."""

from __future__ import annotations

import json
import os
import secrets

from flask import current_app

from ..accounts import create_person, person_by_identifier
from ..clients import register_client
from ..extensions import db
from ..models import Client
from .urls import demo_site_url

DEMO_CITIZEN = {"id_number": "110105199003071239", "name": "张三", "phone": "13800138000",
                "password": "Demo@2026"}

# The demo citizen is this company's legal representative (see /account/).
DEMO_ORG = {"uscc": "91350100M000100Y43", "name": "福州演示科技有限公司"}

DEMO_SITES = [
    {"key": "province", "client_id": "province-portal", "name": "省政务服务网", "port_offset": 1},
    {"key": "city", "client_id": "city-social-security", "name": "市社会保障局网站",
     "port_offset": 2},
]


# A CAS-protected site beside them (idp.demo.cas_site), on the third port after the
# provider's.
CAS_SITE = {"key": "fund", "client_id": "city-housing-fund-cas", "name": "市住房公积金中心",
            "port_offset": 3}


def secrets_path() -> str:
    return os.path.join(current_app.instance_path, "demo_clients.json")


def seed() -> dict:
    issuer = current_app.config["ISSUER"]
    out = {"citizen": {k: DEMO_CITIZEN[k] for k in ("id_number", "password")}, "sites": []}
    if person_by_identifier(DEMO_CITIZEN["id_number"], phone=False).person is None:
        create_person(DEMO_CITIZEN["id_number"], DEMO_CITIZEN["name"], DEMO_CITIZEN["password"],
                      DEMO_CITIZEN["phone"], level="L3")
    from ..orgs import find_org, register_org

    if find_org(DEMO_ORG["uscc"]) is None:
        register_org(DEMO_ORG["uscc"], DEMO_ORG["name"], DEMO_CITIZEN["id_number"],
                     actor="demo")
    out["organisation"] = DEMO_ORG
    try:
        with open(secrets_path(), encoding="utf-8") as fh:
            known = json.load(fh)
    except (OSError, ValueError):
        known = {}
    for site in DEMO_SITES:
        url = demo_site_url(issuer, site)
        row = db.session.scalar(db.select(Client).where(Client.client_id == site["client_id"]))
        if row is not None and site["client_id"] in known:
            out["sites"].append({"name": site["name"], "url": url})
            continue
        if row is not None:  # secret lost: register afresh
            db.session.delete(row)
            db.session.commit()
        secret = secrets.token_urlsafe(24)
        register_client(
            client_id=site["client_id"], name=site["name"], secret=secret,
            auth_method="client_secret_basic", redirect_uris=[url + "/callback"],
            grant_types=["authorization_code", "refresh_token"],
            post_logout_redirect_uris=[url + "/"],
            backchannel_logout_uri=url + "/backchannel-logout", first_party=True,
            sensitive_scopes=[], channel="web", jwks=None, id_token_alg=None)
        known[site["client_id"]] = secret
        out["sites"].append({"name": site["name"], "url": url})
    _seed_demo_app(issuer)
    out["cas_site"] = _seed_cas_site(issuer)
    from .saml_site import seed_saml_site

    out["saml_site"] = seed_saml_site(issuer, current_app.instance_path)
    _seed_ciba_clients(known)
    fd = os.open(secrets_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(known, fh)
    return out


def _seed_cas_site(issuer: str) -> dict:
    url = demo_site_url(issuer, CAS_SITE)
    row = db.session.scalar(db.select(Client).where(Client.client_id == CAS_SITE["client_id"]))
    if row is not None and row.cas_services != [url + "/*"]:  # the issuer's port changed
        db.session.delete(row)
        db.session.commit()
        row = None
    if row is None:
        register_client(client_id=CAS_SITE["client_id"], name=CAS_SITE["name"],
                        protocol="cas", services=[url + "/*"], first_party=True)
    return {"name": CAS_SITE["name"], "url": url, "protocol": "cas"}


def _seed_demo_app(issuer: str) -> None:
    """The app simulator at /demo/app: a first-party public client of channel "app"."""
    from .app_sim import DEMO_APP_CLIENT_ID

    uri = issuer + "/demo/app"
    row = db.session.scalar(db.select(Client).where(Client.client_id == DEMO_APP_CLIENT_ID))
    if row is not None and row.redirect_uris == [uri]:
        return
    if row is not None:  # the issuer moved: register afresh
        db.session.delete(row)
        db.session.commit()
    register_client(
        client_id=DEMO_APP_CLIENT_ID, name="政务服务App（演示）", secret=None, auth_method="none",
        redirect_uris=[uri], grant_types=["authorization_code", "refresh_token"],
        post_logout_redirect_uris=[], backchannel_logout_uri=None, first_party=True,
        sensitive_scopes=[], channel="app", jwks=None, id_token_alg=None)


# The counter-clerk and hotline-agent consoles (/demo/hall, /demo/hotline; idp.channels.ciba).
DEMO_CIBA_CLIENTS = [
    # The counter clerk checks ID cards in person (in_person_check=document).
    {"client_id": "demo-hall", "name": "政务服务大厅窗口（演示）", "channel": "hall",
     "in_person_checks": True},
    {"client_id": "demo-hotline", "name": "12345 政务服务热线（演示）", "channel": "hotline"},
]


def _seed_ciba_clients(known: dict) -> None:
    from ..clients import CIBA, forget_client

    for c in DEMO_CIBA_CLIENTS:
        row = db.session.scalar(db.select(Client).where(Client.client_id == c["client_id"]))
        in_person = c.get("in_person_checks", False)
        if row is not None and c["client_id"] in known:
            if bool(row.meta("in_person_checks")) != in_person:
                # A demo database seeded before the permission existed.
                meta = {k: v for k, v in (row.client_metadata or {}).items()
                        if k != "in_person_checks"}
                if in_person:
                    meta["in_person_checks"] = True
                row.client_metadata = meta
                db.session.commit()
                forget_client(row.client_id)
            continue
        if row is not None:  # secret lost: register afresh
            db.session.delete(row)
            db.session.commit()
        secret = secrets.token_urlsafe(24)
        register_client(
            client_id=c["client_id"], name=c["name"], secret=secret,
            auth_method="client_secret_basic", redirect_uris=[], grant_types=[CIBA],
            post_logout_redirect_uris=[], backchannel_logout_uri=None, first_party=True,
            sensitive_scopes=[], channel=c["channel"], jwks=None, id_token_alg=None,
            in_person_checks=in_person)
        known[c["client_id"]] = secret
