"""Proxy-granting tickets (CAS 3.0 §2.5.4): the callback to ``pgtUrl``.

A ``pgtUrl`` must be https — never plain http, not even on loopback, since the PGT it
receives lets its holder sign in to other services as the person — and must be one of
the validating client's own registered service URLs, so the server is never made to call
an address nobody registered. The callback checks the certificate (``CAS_PROXY_CA_FILE``,
else the system's CAs), follows no redirect, and counts only HTTP 200 as delivered."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import requests
from authlib.common.urls import add_params_to_uri
from flask import current_app

from .services import matches
from .tickets import PGT, PGTIOU, Ticket, issue, new_id, revoke

log = logging.getLogger(__name__)


class CallbackRefused(Exception):
    """The pgtUrl is not acceptable (INVALID_PROXY_CALLBACK)."""


def check_callback(pgt_url: str, client) -> None:
    try:
        parts = urlsplit(pgt_url)
    except ValueError:
        raise CallbackRefused("the pgtUrl is not a URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise CallbackRefused("the pgtUrl must be an https URL")
    if not any(matches(p, pgt_url) for p in client.cas_services):
        raise CallbackRefused("the pgtUrl is not a registered URL of this service")


def grant(pgt_url: str, client, validated: Ticket) -> str | None:
    """Make a PGT for the validated ticket and deliver it to ``pgt_url``; the PGTIOU to
    put in the response, or None when the callback did not answer 200 (the validation
    then succeeds without one, §2.5.4)."""
    check_callback(pgt_url, client)
    cfg = current_app.config
    pgt = issue(Ticket(kind=PGT, client_id=client.client_id, service=pgt_url,
                       person_id=validated.person_id, sid=validated.sid,
                       auth_time=validated.auth_time, scope=validated.scope,
                       acr=validated.acr, amr=validated.amr, channel=validated.channel,
                       membership_id=validated.membership_id,
                       new_login=validated.new_login,
                       proxies=[pgt_url, *validated.proxies]))
    iou = new_id(PGTIOU)
    try:
        resp = requests.get(add_params_to_uri(pgt_url, [("pgtId", pgt), ("pgtIou", iou)]),
                            timeout=float(cfg["CAS_PROXY_CALLBACK_TIMEOUT"]),
                            verify=cfg.get("CAS_PROXY_CA_FILE") or True,
                            allow_redirects=False)
        delivered = resp.status_code == 200
        reason = f"HTTP {resp.status_code}"
    except requests.RequestException as exc:
        delivered, reason = False, type(exc).__name__
    if not delivered:
        log.warning("CAS proxy callback for %s failed: %s", client.client_id, reason)
        revoke(pgt)
        return None
    return iou
