"""``idp user list|show|lock|unlock|reset-authenticators|end-sessions|reverify``, on the
service functions the admin console and its API use (:mod:`idp.people`): the same
checks, the same audit entries, the same masking. ``idp user add`` is in
:mod:`idp.cli.users`.

A person is named by their internal id, or by an ID number or mobile number (looked up
through the blind indexes, audited as the console's search is). Output is masked; no
command here prints a name, ID number or phone in full, nor echoes one back in an
error."""

from __future__ import annotations

import re

import click

from .common import app_context, emit, fail, operator
from .paging import page_note, paging_options
from .users import user

_PHONE = re.compile(r"\+?(86)?[\s-]*1[3-9]\d[\s-]*\d{4}[\s-]*\d{4}")
_reason = click.option("--reason", required=True, help="Why (kept in the audit log).")


def _person(ref: str, as_json: bool):
    """The person ``ref`` names; fails with one masked line when none (or several)."""
    from .. import people
    from ..identity.masking import mask_text

    found = people.get(ref)
    if found is not None:
        return found
    kind = "phone" if _PHONE.fullmatch(ref.strip()) else "id_number"
    shown = mask_text(ref)
    try:
        matches, _truncated = people.search(kind, ref, actor=operator())
    except people.PersonError as exc:
        fail(f"no person {shown!r}: not an internal id, and {exc}", as_json)
    if not matches:
        fail(f"no person {shown!r}", as_json)
    if len(matches) > 1:
        fail(f"{len(matches)} people have this phone number; name one by internal id: "
             + ", ".join(m.id for m in matches), as_json)
    return people.get(matches[0].id)


def _summary(s) -> dict:
    return {"id": s.id, "name": s.name, "id_number": s.id_number, "phone": s.phone,
            "status": s.status, "assurance_level": s.assurance_level,
            "created_at": s.created_at}


@user.command("list")
@click.option("--status", default=None, type=click.Choice(["active", "locked", "merged"]))
@click.option("--id-number", default=None, help="Exactly this ID number (any usual form).")
@click.option("--phone", default=None, help="Exactly this mobile number.")
@click.option("--name", default=None, help="A name, or its beginning (results masked).")
@click.option("--legacy", default=None, metavar="SOURCE:ID", help="A legacy account.")
@paging_options
@click.option("--json", "as_json", is_flag=True)
def user_list(status, id_number, phone, name, legacy, page, per_page, as_json) -> None:
    """People, masked; newest first, or those matching one search."""
    from .. import people

    searches = [(k, v) for k, v in (("id_number", id_number), ("phone", phone),
                                    ("name", name), ("legacy", legacy)) if v]
    if len(searches) > 1:
        fail("search by one of --id-number, --phone, --name, --legacy at a time", as_json)
    if searches and (status or page != 1):
        fail("--status and --page list everyone; a search returns one short list", as_json)
    with app_context():
        if searches:
            kind, text = searches[0]
            try:
                rows, truncated = people.search(kind, text, actor=operator(), limit=per_page)
            except people.PersonError as exc:
                fail(str(exc), as_json)
            items = [_summary(s) for s in rows]
            out = {"items": items, "truncated": truncated}
            note = (f"(the first {len(items)} matches; more match: narrow the search or "
                    f"raise --per-page)") if truncated else f"({len(items)} found)"
        else:
            rows, total = people.listing(status=status, page=page, per_page=per_page)
            items = [_summary(s) for s in rows]
            paged = page_note(page, per_page, len(items), total, "people")
            out = {"items": items, "page": page, "per_page": per_page, "total": total,
                   "truncated": paged.truncated, "next_page": paged.next_page}
            note = paged.text
    emit(out, as_json, "\n".join([f"{i['id']}\t{i['status']}\t{i['assurance_level']}\t"
                                  f"{i['name']}\t{i['id_number']}\t{i['phone']}"
                                  for i in items] + [note]))


@user.command("show")
@click.argument("person")
@click.option("--json", "as_json", is_flag=True)
def user_show(person: str, as_json: bool) -> None:
    """A person's account, masked: level and how it was reached, authenticators,
    sessions, consents, legacy accounts, enterprises. PERSON: internal id, ID number
    or mobile number."""
    from .. import people

    with app_context():
        found = _person(person, as_json)
        out = people.detail(found.id).as_dict()
    p = out["person"]
    lines = [f"{p['id']}  {p['name']}  {p['id_number']}  {p['phone'] or '-'}",
             f"status: {p['status']}  level: {p['assurance_level']} "
             f"({out['assurance_method'] or 'self-declared'})  "
             f"password: {'yes' if out['has_password'] else 'no'}"]
    for title, key, fmt in (
            ("authenticators", "authenticators", "{kind} {name}"),
            ("sessions", "sessions", "{sid} {channel} {acr} {device} {network}"),
            ("consents", "consents", "{client_id} {scopes}"),
            ("legacy accounts", "legacy_accounts", "{source}:{legacy_id} {state} {rule}"),
            ("enterprises", "enterprises", "{org} {role}")):
        lines.append(f"{title}: {len(out[key])}")
        lines += ["  " + fmt.format_map(item) for item in out[key]]
    emit(out, as_json, "\n".join(lines))


def _act(action: str, person: str, reason: str, as_json: bool) -> None:
    from .. import people

    with app_context():
        found = _person(person, as_json)
        try:
            result = getattr(people, action)(found.id, actor=operator(), reason=reason)
        except people.PersonError as exc:
            fail(str(exc), as_json)
        except LookupError as exc:
            fail(str(exc.args[0]) if exc.args else "not found", as_json)
        if isinstance(result, dict):
            out = {"id": found.id, action: result}
        else:
            out = {"id": result.id, "status": result.status,
                   "assurance_level": result.assurance_level}
    detail = ", ".join(f"{k} {v}" for k, v in (out.get(action) or {}).items()) or \
        f"status {out.get('status')}, level {out.get('assurance_level')}"
    emit(out, as_json, f"{action.replace('_', ' ')}: person {out['id']} ({detail})")


@user.command("lock")
@click.argument("person")
@_reason
@click.option("--json", "as_json", is_flag=True)
def user_lock(person: str, reason: str, as_json: bool) -> None:
    """No sign-in of any kind until unlocked; sessions and tokens end now."""
    _act("lock", person, reason, as_json)


@user.command("unlock")
@click.argument("person")
@_reason
@click.option("--json", "as_json", is_flag=True)
def user_unlock(person: str, reason: str, as_json: bool) -> None:
    _act("unlock", person, reason, as_json)


@user.command("reset-authenticators")
@click.argument("person")
@_reason
@click.option("--json", "as_json", is_flag=True)
def user_reset_authenticators(person: str, reason: str, as_json: bool) -> None:
    """Remove every TOTP and security key (a lost phone or key); sessions end."""
    _act("reset_authenticators", person, reason, as_json)


@user.command("end-sessions")
@click.argument("person")
@_reason
@click.option("--json", "as_json", is_flag=True)
def user_end_sessions(person: str, reason: str, as_json: bool) -> None:
    """End every session (relying parties told by back-channel logout) and revoke
    every grant."""
    _act("end_sessions", person, reason, as_json)


@user.command("reverify")
@click.argument("person")
@_reason
@click.option("--json", "as_json", is_flag=True)
def user_reverify(person: str, reason: str, as_json: bool) -> None:
    """Lower the account to the self-declared level so real-name verification runs
    again on the next service that needs it."""
    _act("require_reverification", person, reason, as_json)
