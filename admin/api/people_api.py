"""People and roles through the API (security administrator): search, a person's page,
lock / unlock, reset authenticators, end sessions, re-verification, reveal, roles."""

from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import BaseModel, Field

from idp import people
from idp.models import ADMIN_ROLES

from .. import roles
from .spec import APIError, Paging, Strict, endpoint

PERSON = {"person_id": {"type": "string", "minLength": 1, "maxLength": 32,
                        "pattern": "^[0-9a-f]{1,32}$"}}


class PeopleQuery(Paging):
    status: Literal["active", "locked", "merged"] | None = None


class PersonOut(BaseModel):
    id: str
    name: str
    id_number: str
    phone: str
    status: str
    assurance_level: str
    created_at: float


class PeopleList(BaseModel):
    items: list[PersonOut]
    total: int
    page: int
    per_page: int


class SearchBody(Strict):
    kind: Literal["id_number", "phone", "name", "legacy"]
    q: str = Field(min_length=1, max_length=128,
                   description="The ID number or phone (exact), a name (beginning), or a "
                               "legacy account as source:legacy-id. Sent in the body, so it "
                               "is never in a URL or an access log.")


class SearchOut(BaseModel):
    items: list[PersonOut]
    truncated: bool


class Reason(Strict):
    reason: str = Field(min_length=1, max_length=500, description="Kept in the audit log.")


class Revealed(BaseModel):
    name: str
    id_number: str
    phone: str


class Ended(BaseModel):
    sessions: int
    grants: int


class Reset(BaseModel):
    totp: int
    webauthn: int


class RoleRow(BaseModel):
    person_id: str
    role: str
    granted_by: str
    granted_at: float
    name: str | None


class RoleBody(Strict):
    role: Literal[ADMIN_ROLES]  # type: ignore[valid-type]


class RolesOut(BaseModel):
    person_id: str
    roles: list[str]


def _person(person_id: str):
    person = people.get(person_id)
    if person is None:
        raise APIError(404, "not_found", "No such person.")
    return person


def _call(fn, person_id: str, **kw):
    _person(person_id)
    try:
        return fn(person_id, actor=g.admin_id, **kw)
    except people.PersonError as exc:
        raise APIError(409, "conflict", str(exc)) from None


@endpoint("get", "/people", summary="List people (masked), newest first",
          permission="people.read", tag="people", query=PeopleQuery, out=PeopleList)
def list_people(query: PeopleQuery):
    rows, total = people.listing(status=query.status, page=query.page, per_page=query.per_page)
    return {"items": rows, "total": total, "page": query.page, "per_page": query.per_page}


@endpoint("post", "/people/search", summary="Find people by ID number, phone, name or legacy "
          "account (masked results; look-ups by number are audited)",
          permission="people.read", tag="people", body=SearchBody, out=SearchOut)
def search_people(body: SearchBody):
    try:
        found, truncated = people.search(body.kind, body.q, actor=g.admin_id)
    except people.PersonError as exc:
        raise APIError(400, "invalid_request", str(exc)) from None
    return {"items": found, "truncated": truncated}


@endpoint("get", "/people/{person_id}", summary="A person's page (masked)",
          permission="people.read", tag="people", out=people.Detail, params=PERSON)
def get_person(person_id: str):
    info = people.detail(person_id)
    if info is None:
        raise APIError(404, "not_found", "No such person.")
    return info


@endpoint("post", "/people/{person_id}/lock", summary="Lock: no sign-in; sessions and tokens "
          "end now", permission="people.write", tag="people", body=Reason, out=PersonOut,
          params=PERSON, errors=(409,))
def lock_person(person_id: str, body: Reason):
    return people.summary(_call(people.lock, person_id, reason=body.reason))


@endpoint("post", "/people/{person_id}/unlock", summary="Unlock a locked account",
          permission="people.write", tag="people", body=Reason, out=PersonOut,
          params=PERSON, errors=(409,))
def unlock_person(person_id: str, body: Reason):
    return people.summary(_call(people.unlock, person_id, reason=body.reason))


@endpoint("post", "/people/{person_id}/reset-authenticators", summary="Remove every TOTP and "
          "WebAuthn credential", permission="people.write", tag="people", body=Reason,
          out=Reset, params=PERSON, errors=(409,))
def reset_authenticators(person_id: str, body: Reason):
    return _call(people.reset_authenticators, person_id, reason=body.reason)


@endpoint("post", "/people/{person_id}/end-sessions", summary="End every session (back-channel "
          "logout to relying parties) and revoke every grant", permission="people.write",
          tag="people", body=Reason, out=Ended, params=PERSON, errors=(409,))
def end_sessions(person_id: str, body: Reason):
    return _call(people.end_sessions, person_id, reason=body.reason)


@endpoint("post", "/people/{person_id}/reverify", summary="Ask for real-name verification again "
          "(the account falls back to L2)", permission="people.write", tag="people",
          body=Reason, out=PersonOut, params=PERSON, errors=(409,))
def reverify(person_id: str, body: Reason):
    return people.summary(_call(people.require_reverification, person_id, reason=body.reason))


@endpoint("post", "/people/{person_id}/reveal", summary="Name, ID number and phone in full "
          "(audited, with the reason)", permission="people.reveal", tag="people", body=Reason,
          out=Revealed, params=PERSON, errors=(409,))
def reveal(person_id: str, body: Reason):
    return _call(people.reveal, person_id, reason=body.reason)


# -- roles ---------------------------------------------------------------------------


@endpoint("get", "/roles", summary="Who holds which admin role", permission="roles.read",
          tag="roles", out=list[RoleRow])
def list_roles():
    from idp.identity.masking import mask_name

    return [{"person_id": r.person_id, "role": r.role, "granted_by": r.granted_by,
             "granted_at": r.granted_at, "name": mask_name(p.name) if p else None}
            for r, p in roles.listing()]


def _change_role(person_id: str, role: str, grant: bool):
    person = _person(person_id)
    by_person = g.admin_owner  # an API client acts for its owner: not for themselves either
    try:
        if grant:
            roles.grant_to(person, role, by=g.admin_id, by_person=by_person)
        else:
            roles.revoke_from(person, role, by=g.admin_id, by_person=by_person)
    except roles.RoleError as exc:
        raise APIError(409, "conflict", str(exc)) from None
    return {"person_id": person.id, "roles": sorted(roles.roles_of(person.id))}


@endpoint("post", "/people/{person_id}/roles", summary="Grant an admin role (never to "
          "yourself; the three separated roles exclude each other)", permission="roles.write",
          tag="roles", body=RoleBody, out=RolesOut, params=PERSON, errors=(409,))
def grant_role(person_id: str, body: RoleBody):
    return _change_role(person_id, body.role, True)


@endpoint("post", "/people/{person_id}/roles/revoke", summary="Revoke an admin role",
          permission="roles.write", tag="roles", body=RoleBody, out=RolesOut, params=PERSON,
          errors=(409,))
def revoke_role(person_id: str, body: RoleBody):
    return _change_role(person_id, body.role, False)
