"""CAS single logout (CAS 3.0 §2.3.3): when a session ends, each service that received
a service ticket from it gets a SAML ``LogoutRequest`` POSTed to its service URL
(``logoutRequest=…``) naming that ticket in ``SessionIndex``; the session's
proxy-granting tickets stop working at once.

Registered with :mod:`idp.single_logout`, so the person's own logout anywhere (OIDC,
CAS or SAML), a password reset or an operator ending sessions all reach CAS services
too. Delivery is on a small thread pool with retries, like OIDC back-channel logout, so
a slow service never holds up the person signing out."""

from __future__ import annotations

import logging
import secrets
import xml.etree.ElementTree as ET  # noqa: S405 - building, never parsing
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from flask import current_app

from .. import single_logout
from . import tickets

log = logging.getLogger(__name__)

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cas-logout")


def logout_request(ticket: str) -> str:
    root = ET.Element(f"{{{SAMLP}}}LogoutRequest", {
        "ID": "LR-" + secrets.token_hex(16), "Version": "2.0",
        "IssueInstant": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})
    # The CAS specification's placeholder: services find the session by SessionIndex.
    ET.SubElement(root, f"{{{SAML}}}NameID").text = "@NOT_USED@"
    ET.SubElement(root, f"{{{SAMLP}}}SessionIndex").text = ticket
    return ET.tostring(root, encoding="unicode")


def notify(client_ids: list[str], person_id: str, sid: str) -> list:
    """Logout requests for the session's service tickets; returns the futures (tests wait
    on them; the request does not)."""
    issued = tickets.end_session(sid)
    wanted = set(client_ids)
    cfg = current_app.config
    futures = []
    for entry in issued:
        if entry.get("client_id") not in wanted:
            continue
        futures.append(_pool.submit(
            _deliver, entry["client_id"], entry["service"], logout_request(entry["ticket"]),
            cfg["BACKCHANNEL_LOGOUT_ATTEMPTS"], cfg["BACKCHANNEL_LOGOUT_BACKOFF"],
            cfg["BACKCHANNEL_LOGOUT_TIMEOUT"]))
    return futures


def _deliver(client_id: str, service: str, body: str, attempts: int, backoff: float,
             timeout: float) -> bool:
    return single_logout.deliver("CAS logout request", client_id, service,
                                 {"logoutRequest": body}, attempts=attempts,
                                 backoff=backoff, timeout=timeout, redirect_ok=True)


single_logout.register("cas", notify)
