"""Every security event leaves a masked entry in the SM3 chain."""

from __future__ import annotations

import json

from idp import audit
from idp.audit import AuditEvent
from idp.extensions import db
from tests.helpers import (
    CITIZEN_ID,
    authorize_url,
    exchange,
    form_fields,
    get_code,
    make_client,
    tokens_for,
)


def _events():
    return db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.seq)).all()


def test_protocol_events_are_audited_masked_and_chained(client, person, rp):
    resp = client.get(authorize_url(rp))
    fields = form_fields(client.get(resp.headers["Location"]).get_data(as_text=True))
    client.post("/login", data={**fields, "username": CITIZEN_ID, "password": "wrong-one"})
    body = tokens_for(client, rp, scope="openid profile")
    client.post("/revoke", headers=rp.basic, data={"token": body["access_token"]})
    code, _, verifier = get_code(client, rp)
    exchange(client, rp, code, verifier)
    exchange(client, rp, code, verifier)  # replay
    client.get("/logout?id_token_hint=" + body["id_token"])
    svc = make_client("svc", grant_types=["client_credentials"], redirect_uris=())
    client.post("/token", headers=svc.basic, data={"grant_type": "client_credentials"})

    audit.flush()  # chain what is still pending (normally within a second)
    db.session.expire_all()
    rows = _events()
    names = [r.event for r in rows]
    for expected in ("login.failure", "login.success", "consent.granted", "token.issued",
                     "token.revoked", "grant.revoked", "logout"):
        assert expected in names, names
    failure = next(r for r in rows if r.event == "login.failure")
    assert failure.details["reason"] == "bad_credentials"
    dump = json.dumps([{c: getattr(r, c) for c in ("actor", "subject", "details")} for r in rows],
                      ensure_ascii=False)
    assert CITIZEN_ID not in dump and "110105********002X" in dump
    assert "李四" not in dump  # the citizen's name never reaches the log
    replay = [r for r in rows if r.event == "grant.revoked"
              and r.details["reason"] == "authorization code replayed"]
    assert replay and replay[0].details["access_tokens"] >= 1
    cc = [r for r in rows if r.event == "token.issued"
          and r.details["grant_type"] == "client_credentials"]
    assert cc and cc[0].actor == "svc"
    result = audit.verify()
    assert result.ok and result.count == len(rows)


def test_tampering_with_a_recorded_event_is_detected(client, person, rp):
    tokens_for(client, rp)
    audit.flush()
    db.session.expire_all()
    rows = _events()
    assert audit.verify().ok
    victim = rows[len(rows) // 2]
    victim.details = {**victim.details, "scope": "openid idcard"}
    db.session.commit()
    result = audit.verify()
    assert not result.ok and result.first_bad_seq == victim.seq
