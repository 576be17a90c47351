"""The single sign-on session: a random cookie naming a record in the shared store.

The cookie holds a secret token; the store key is its SHA-256, so reading the store
(or a Redis dump) does not give anyone a working cookie. The record carries a
separate public ``sid`` that goes into ID tokens and logout tokens.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, has_request_context, request

from ..devices import coarse_network, device_summary
from ..extensions import db
from ..models import Person
from ..store import store
from . import assurance, new_device


@dataclass
class SSOSession:
    key: str
    sid: str
    person_id: str
    auth_time: int
    created: float
    amr: list[str] = field(default_factory=list)
    acr: str | None = None
    channel: str = "web"
    # Seconds of inactivity that end this session; None: SSO_IDLE_TIMEOUT. Kiosk
    # sessions are much shorter, since the next person may walk up to the screen.
    idle_timeout: float | None = None
    # Shown to the person in their list of sessions: a fixed browser/system name and a
    # masked network (idp.devices), never the raw header or address.
    device: str | None = None
    network: str | None = None
    _person: Person | None = None

    @property
    def person(self) -> Person | None:
        if self._person is None:
            self._person = db.session.get(Person, self.person_id)
        return self._person

    def record(self) -> dict[str, Any]:
        return {"sid": self.sid, "person_id": self.person_id, "auth_time": self.auth_time,
                "created": self.created, "amr": self.amr, "acr": self.acr,
                "channel": self.channel, "idle_timeout": self.idle_timeout,
                "device": self.device, "network": self.network}


def _key(token: str) -> str:
    return "sso:" + hashlib.sha256(token.encode()).hexdigest()


def current() -> SSOSession | None:
    """The live session of this browser, or None (absent, idle, too old, person gone)."""
    if "idp_sso" in g:
        return g.idp_sso
    g.idp_sso = _load()
    return g.idp_sso


def _load() -> SSOSession | None:
    cfg = current_app.config
    token = request.cookies.get(cfg["SSO_COOKIE_NAME"])
    if not token or len(token) > 128:
        return None
    key = _key(token)
    data = store().get(key)
    if data is None:
        return None
    sess = _from_record(key, data)
    if time.time() - sess.created > cfg["SSO_ABSOLUTE_TIMEOUT"]:
        end(sess)
        return None
    person = sess.person
    if person is None or person.status != "active":
        end(sess)
        return None
    store().touch(key, _idle_ttl(sess))
    return sess


def _from_record(key: str, data: dict[str, Any]) -> SSOSession:
    known = {f for f in SSOSession.__dataclass_fields__ if not f.startswith("_")}
    return SSOSession(key=key, **{k: v for k, v in data.items() if k in known})


def _idle_ttl(sess: SSOSession) -> float:
    cfg = current_app.config
    left = cfg["SSO_ABSOLUTE_TIMEOUT"] - (time.time() - sess.created)
    return max(1.0, min(sess.idle_timeout or cfg["SSO_IDLE_TIMEOUT"], left))


def start(person: Person, amr: list[str], acr: str | None = None, *, channel: str = "web",
          idle_timeout: float | None = None) -> SSOSession:
    """A new session after a successful sign-in; any previous one of this browser ends
    (a new cookie value also defeats session fixation). ``acr`` defaults to what the
    account and ``amr`` together support (see ``assurance``); a caller may only lower it."""
    old = current()
    if old is not None:
        end(old)
    token = secrets.token_urlsafe(32)
    now = time.time()
    reached = assurance.session_level(person.assurance_level, amr)
    network = coarse_network(request.remote_addr)
    sess = SSOSession(key=_key(token), sid=secrets.token_urlsafe(16), person_id=person.id,
                      auth_time=int(now), created=now, amr=list(amr),
                      acr=assurance.lower(reached, acr), channel=channel,
                      idle_timeout=idle_timeout,
                      device=device_summary(request.headers.get("User-Agent")),
                      network=network[1] if network else None, _person=person)
    store().set(sess.key, sess.record(), _idle_ttl(sess))
    # The person's own index of sessions, for "where I am signed in", for ending them
    # all (password reset, lock) and for the console. Entries outlive nothing: each is
    # looked up again and dropped when its session has ended.
    store().append(_person_index(person.id), sess.key, cfg_absolute())
    g.idp_sso = sess
    g.idp_set_sso_cookie = token
    new_device.after_sign_in(person, sess)
    return sess


def elevate(sess: SSOSession, amr: list[str]) -> str:
    """Step-up: add authenticators just passed to this session and recompute its level
    from the account's (possibly just raised) level. Same cookie and ``sid``, so relying
    parties already holding tokens stay in the same session; ``auth_time`` moves, since
    the person did authenticate now (OIDC Core §2). Returns the new level."""
    if store().get(sess.key) is None:
        # Signed out (or revoked) while the step-up was being checked: stay signed out
        # rather than writing the session back to life.
        return sess.acr
    person = db.session.get(Person, sess.person_id)
    for value in amr:
        if value not in sess.amr:
            sess.amr.append(value)
    sess.acr = assurance.session_level(person.assurance_level if person else None, sess.amr)
    sess.auth_time = int(time.time())
    store().set(sess.key, sess.record(), _idle_ttl(sess))
    return sess.acr


def cfg_absolute() -> float:
    return float(current_app.config["SSO_ABSOLUTE_TIMEOUT"])


def _person_index(person_id: str) -> str:
    return f"ssop:{person_id}"


def sessions_of(person_id: str) -> list[SSOSession]:
    """The person's live sessions, newest sign-in first (not touched: listing them does
    not keep them alive)."""
    found: dict[str, SSOSession] = {}
    for key in store().members(_person_index(person_id)):
        if not isinstance(key, str) or key in found:
            continue
        data = store().get(key)
        if data is None or data.get("person_id") != person_id:
            continue
        sess = _from_record(key, data)
        if time.time() - sess.created <= cfg_absolute():
            found[key] = sess
    return sorted(found.values(), key=lambda s: s.auth_time, reverse=True)


def add_client(sess: SSOSession, client_id: str) -> None:
    """Remember that ``client_id`` holds tokens from this session (for single logout)."""
    if client_id not in session_clients(sess):
        store().append(f"ssoc:{sess.sid}", client_id, current_app.config["SSO_ABSOLUTE_TIMEOUT"])


def session_clients(sess: SSOSession) -> list[str]:
    return store().members(f"ssoc:{sess.sid}")


def end(sess: SSOSession) -> None:
    store().delete(sess.key)
    store().delete(f"ssoc:{sess.sid}")
    # Only this browser's own session clears its cookie: ending another session (the
    # person's other devices, an operator ending someone's sessions) must not sign this
    # browser out.
    current = g.get("idp_sso")
    if current is None or current.key == sess.key:
        g.idp_sso = None
        g.idp_clear_sso_cookie = current is not None or _cookie_names(sess)


def _cookie_names(sess: SSOSession) -> bool:
    """Whether this request's SSO cookie is the one of ``sess``."""
    if not has_request_context():
        return False  # an operator's command ending someone's sessions: no browser here
    token = request.cookies.get(current_app.config["SSO_COOKIE_NAME"])
    return bool(token) and len(token) <= 128 and _key(token) == sess.key


def apply_cookie(response):
    """after_request hook: write or clear the SSO cookie as this request decided."""
    cfg = current_app.config
    name = cfg["SSO_COOKIE_NAME"]
    token = g.pop("idp_set_sso_cookie", None)
    if token:
        response.set_cookie(name, token, httponly=True, samesite="Lax",
                            secure=cfg["SESSION_COOKIE_SECURE"], path="/")
    elif g.pop("idp_clear_sso_cookie", False):
        response.delete_cookie(name, path="/", httponly=True, samesite="Lax",
                               secure=cfg["SESSION_COOKIE_SECURE"])
    return response
