"""The operator's services (issue 12) the console, its API and the CLI share: lock and
unlock, end sessions, reset authenticators, reveal (audited); and relying parties'
update, disable, delete and secret rotation with a grace period."""

from __future__ import annotations

import time

import pytest

from idp import audit, client_admin, people
from idp.client_admin import ClientError
from idp.extensions import db
from idp.models import Client, Person, TotpCredential
from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    CITIZEN_PHONE,
    make_client,
    tokens_for,
)


def _events(name):
    audit.flush()
    return [e for e in audit.export(0) if e["event"] == name]


def _password_token(client, rp):
    return client.post("/token", data={"grant_type": "client_credentials"}, headers=rp.basic)


def test_search_finds_by_number_and_phone_masked_and_audits_without_the_number(ctx, person):
    found, truncated = people.search("id_number", CITIZEN_ID.lower(), actor="op1")
    assert [p.id for p in found] == [person.id] and not truncated
    assert CITIZEN_ID not in repr(found) and found[0].name != "李四"
    assert [p.id for p in people.search("phone", "+86 " + CITIZEN_PHONE, actor="op1")[0]] \
        == [person.id]
    assert people.search("name", "李", actor="op1")[0][0].id == person.id
    entry = _events("admin.person_lookup")[-1]
    assert CITIZEN_ID not in str(entry) and CITIZEN_PHONE not in str(entry)
    with pytest.raises(people.PersonError):
        people.search("id_number", "110105194912310021", actor="op1")  # bad check digit
    with pytest.raises(people.PersonError):
        people.search("phone", CITIZEN_ID, actor="op1")


def test_lock_ends_sign_in_and_tokens_unlock_restores(client, ctx, person, rp):
    tokens = tokens_for(client, rp)
    with pytest.raises(people.PersonError):
        people.lock(person.id, actor="op1", reason="  ")
    people.lock(person.id, actor="op1", reason="被盗号")
    assert db.session.get(Person, person.id).status == "locked"
    resp = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert resp.status_code == 401
    refreshed = client.post("/token", data={"grant_type": "refresh_token",
                                            "refresh_token": tokens["refresh_token"]},
                            headers=rp.basic)
    assert refreshed.status_code == 400
    login = client.post("/login", data={"username": CITIZEN_ID, "password": CITIZEN_PASSWORD})
    assert "sso" not in (login.headers.get("Set-Cookie") or "")
    assert _events("admin.person.locked")[-1]["details"]["reason"] == "被盗号"
    people.unlock(person.id, actor="op1", reason="本人到柜台核实")
    assert db.session.get(Person, person.id).status == "active"
    with pytest.raises(people.PersonError):
        people.unlock(person.id, actor="op1", reason="again")


def test_reset_authenticators_and_reveal_is_audited(ctx, person):
    db.session.add(TotpCredential(person_id=person.id, secret_enc="x", confirmed_at=time.time()))
    db.session.commit()
    assert people.detail(person.id).authenticators[0]["kind"] == "totp"
    assert people.reset_authenticators(person.id, actor="op1", reason="手机丢失") == {
        "totp": 1, "webauthn": 0}
    assert people.detail(person.id).authenticators == []
    full = people.reveal(person.id, actor="op1", reason="核对身份")
    assert full["id_number"] == CITIZEN_ID
    entry = _events("admin.person.revealed")[-1]
    assert entry["actor"] == "op1" and entry["details"]["reason"] == "核对身份"
    assert CITIZEN_ID not in str(entry)


def test_reverification_lowers_the_level(ctx, person):
    person.assurance_level = "L4"
    db.session.commit()
    people.require_reverification(person.id, actor="op1", reason="疑似冒用")
    assert db.session.get(Person, person.id).assurance_level == "L2"


def test_rotated_secret_old_one_valid_for_the_grace_period_only(client, ctx):
    rp = make_client("svc", grant_types=["client_credentials"], redirect_uris=())
    assert _password_token(client, rp).status_code == 200
    new, until = client_admin.rotate_secret("svc", actor="op1", grace_seconds=600)
    assert until and until > time.time()
    assert _password_token(client, rp).status_code == 200  # old, within grace
    rp_new = type(rp)("svc", new)
    assert _password_token(client, rp_new).status_code == 200
    row = client_admin.get("svc")
    row.secret_previous_until = time.time() - 1  # the grace period is over
    db.session.commit()
    client_admin.get("svc")
    from idp.clients import forget_client
    forget_client("svc")
    assert _password_token(client, rp).status_code == 401
    assert _password_token(client, rp_new).status_code == 200
    # no grace: the old one stops at once
    newer, until = client_admin.rotate_secret("svc", actor="op1", grace_seconds=0)
    assert until is None and _password_token(client, rp_new).status_code == 401
    with pytest.raises(ClientError):
        client_admin.rotate_secret("svc", actor="op1", grace_seconds=10**9)


def test_disable_refuses_the_client_and_revokes_delete_forgets(client, ctx, person, rp):
    tokens = tokens_for(client, rp)
    client_admin.set_status("rp1", "disabled", actor="op1", reason="停用")
    refreshed = client.post("/token", data={"grant_type": "refresh_token",
                                            "refresh_token": tokens["refresh_token"]},
                            headers=rp.basic)
    assert refreshed.status_code == 401
    assert client.get("/authorize?client_id=rp1&response_type=code&scope=openid"
                      "&redirect_uri=https://rp.example/cb").status_code == 400
    client_admin.set_status("rp1", "active", actor="op1")
    assert client_admin.delete("rp1", actor="op1")["consents"] == 1
    assert db.session.scalar(db.select(Client).where(Client.client_id == "rp1")) is None
    with pytest.raises(LookupError):
        client_admin.delete("rp1", actor="op1")


def test_update_is_checked_like_a_registration(ctx, rp):
    with pytest.raises(ClientError):
        client_admin.update("rp1", {"redirect_uris": ["http://evil.example/cb"]}, actor="op1")
    with pytest.raises(ClientError):
        client_admin.update("rp1", {"grant_types": ["urn:openid:params:grant-type:ciba"]},
                            actor="op1")  # a website may not use CIBA
    with pytest.raises(ClientError):
        client_admin.update("rp1", {"client_secret_hash": "x"}, actor="op1")
    row = client_admin.update("rp1", {"name": "新名称", "sensitive_scopes": ["idcard"],
                                      "id_token_alg": "SM2SM3",
                                      "backchannel_logout_uri": "https://rp.example/bc"},
                              actor="op1")
    info = client_admin.describe(row)
    assert info["name"] == "新名称" and info["sensitive_scopes"] == ["idcard"]
    assert info["id_token_alg"] == "SM2SM3" and info["backchannel_logout_uri"]
    assert _events("client.updated")[-1]["details"]["changed"] == [
        "backchannel_logout_uri", "id_token_alg", "name", "sensitive_scopes"]
    stats = client_admin.stats("rp1")
    assert stats.active_grants == 0


def test_name_and_legacy_searches_are_audited_without_what_was_searched(ctx, person):
    for text in ("李四", " 李四 ", "李"):
        assert [p.id for p in people.search("name", text, actor="op1")[0]] == [person.id]
    # a legacy id that cannot turn up by chance in a hash or a number of the entry
    assert people.search("legacy", "shebao-2012:zq-Ward", actor="op2") == ([], False)
    entries = _events("admin.person_lookup")[-4:]
    four, four_again, one, legacy = (e["details"] for e in entries)
    assert four["by"] == "name" and four["found"] == 1 and four["query"] == "李*"
    assert one["query"] == "*"  # a one-character name is masked completely
    # the keyed hash tells the same search again from another one, not the name itself
    assert four["query_hmac"] == four_again["query_hmac"] != one["query_hmac"]
    import hashlib

    plain = {hashlib.sha256(t.encode()).hexdigest()[:32] for t in ("李四", "李")}
    assert not plain & {four["query_hmac"], one["query_hmac"]}
    assert entries[0]["actor"] == "op1" and entries[0]["subject"] == person.id
    assert "李四" not in str(entries)
    assert legacy == {"by": "legacy", "found": 0, "source": "shebao-2012"}
    assert "zq-Ward" not in str(entries[-1]) and entries[-1]["actor"] == "op2"
