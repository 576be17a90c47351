"""``idp org add|grant|revoke|list``."""

from __future__ import annotations

import datetime as dt

import click

from .common import app_context, emit, fail, operator


@click.group("org")
def org() -> None:
    """Enterprises and organisations (unified social credit codes) and who acts for them."""


def _until(text: str | None, as_json: bool) -> float | None:
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        fail(f"--until must be a date like 2027-12-31, not {text!r}", as_json)
    # Valid through the whole day named, in China Standard Time.
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(),
                              tzinfo=dt.timezone(dt.timedelta(hours=8)))
    return end.timestamp()


@org.command("add")
@click.option("--uscc", required=True, help="Unified social credit code (GB 32100).")
@click.option("--name", default=None, help="Registered name (looked up when omitted).")
@click.option("--legal-rep", "legal_rep", required=True, help="Legal representative's ID number.")
@click.option("--json", "as_json", is_flag=True)
def org_add(uscc: str, name: str | None, legal_rep: str, as_json: bool) -> None:
    from ..orgs import OrgError, register_org

    with app_context():
        try:
            row = register_org(uscc, name, legal_rep, actor=operator())
        except OrgError as exc:
            fail(str(exc), as_json)
        out = {"uscc": row.uscc, "name": row.name, "org_type": row.org_type}
    emit(out, as_json, f"registered {out['name']} ({out['uscc']})")


@org.command("grant")
@click.option("--uscc", required=True)
@click.option("--id-number", required=True, help="The person appointed.")
@click.option("--role", default="agent", type=click.Choice(["agent", "admin"]), show_default=True)
@click.option("--scope", "scopes", multiple=True, required=True,
              help="Business scope: all, tax, social-security, … (repeatable).")
@click.option("--until", default=None, help="Last day of the appointment (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True)
def org_grant(uscc, id_number, role, scopes, until, as_json) -> None:
    from ..orgs import OrgError, find_org, grant

    with app_context():
        row = find_org(uscc)
        if row is None:
            fail(f"no organisation with credit code {uscc}", as_json)
        try:
            m = grant(row, id_number, role, list(scopes), _until(until, as_json), by=operator())
        except OrgError as exc:
            fail(str(exc), as_json)
        out = {"membership": m.id, "uscc": row.uscc, "role": m.role, "scopes": m.scopes,
               "valid_until": m.valid_until}
    emit(out, as_json, f"appointed {role} for {row.uscc}: membership {m.id}")


@org.command("revoke")
@click.option("--uscc", required=True)
@click.option("--id-number", required=True)
@click.option("--role", default=None, type=click.Choice(["agent", "admin"]),
              help="Only this role (default: every appointment of the person).")
@click.option("--json", "as_json", is_flag=True)
def org_revoke(uscc, id_number, role, as_json) -> None:
    from ..accounts import person_by_identifier
    from ..extensions import db
    from ..identity import InvalidIdNumber
    from ..models import Membership
    from ..orgs import OrgError, find_org, revoke

    with app_context():
        row = find_org(uscc)
        if row is None:
            fail(f"no organisation with credit code {uscc}", as_json)
        try:
            person = person_by_identifier(id_number, phone=False).person
        except InvalidIdNumber as exc:
            fail(f"invalid ID number: {exc.message_en}", as_json)
        query = db.select(Membership).where(
            Membership.org_id == row.id, Membership.person_id == (person.id if person else ""),
            Membership.revoked_at.is_(None), Membership.role != "legal_rep")
        if role:
            query = query.where(Membership.role == role)
        found = db.session.scalars(query).all()
        if not found:
            fail("this person holds no revocable appointment for the organisation", as_json)
        grants = 0
        for m in found:
            try:
                grants += revoke(m, by=operator())
            except OrgError as exc:
                fail(str(exc), as_json)
        out = {"uscc": row.uscc, "revoked": [m.id for m in found], "grants_ended": grants}
    emit(out, as_json, f"revoked {len(found)} appointment(s); {grants} live grant(s) ended")


@org.command("list")
@click.option("--json", "as_json", is_flag=True)
def org_list(as_json: bool) -> None:
    from ..extensions import db
    from ..identity.masking import mask_id_number, mask_name
    from ..models import Organisation
    from ..orgs import members

    with app_context():
        out = []
        for row in db.session.scalars(db.select(Organisation).order_by(Organisation.uscc)):
            out.append({"uscc": row.uscc, "name": row.name, "org_type": row.org_type,
                        "members": [{"membership": m.id, "role": m.role, "scopes": m.scopes,
                                     "name": mask_name(p.name),
                                     "id_number": mask_id_number(p.id_number),
                                     "valid": m.is_valid(), "valid_until": m.valid_until,
                                     "revoked_at": m.revoked_at}
                                    for m, p in members(row)]})
    emit(out, as_json, "\n".join(f"{o['uscc']}  {o['name']}  ({len(o['members'])} members)"
                                 for o in out))
