"""Enterprise registration (法人注册, ``/account/enterprise/register``): a signed-in,
real-name person registers an enterprise by its unified social credit code.

The code's name and legal representative are checked against the market-regulation
register (``IDP_ORG_REGISTRY``, :class:`idp.orgs.OrgRegistry`; :class:`DevRegistry`
stands in only where the development plug-ins may, the embedded default and tests).

- The register's legal representative themself (same ID number and name), with the
  name typed matching the registered one: the enterprise is registered at once and the
  person is its legal representative (:func:`idp.orgs.register_org`, audited
  ``org.add``); agents are then appointed from the enterprise page.
- Anyone else (or a code the register does not know): the application waits in the
  console's review queue, as an organisation's item of :mod:`connectors.review` (a
  ``LegacyAccount`` of source ``enterprise_registration`` whose row holds the code, the
  name typed and the applicant's internal id — never their ID number). When a reviewer
  approves it, the enterprise exists; the applicant becomes its legal representative on
  their next visit here, unless it has one already.

The account must be real-name (``L3``) and the sign-in recent at that level.
"""

from __future__ import annotations

import json
import secrets
import time

from flask import current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit, orgs, plugins
from ..authn import session as sso
from ..extensions import db
from ..identity import InvalidCreditCode, parse_credit_code
from ..identity.masking import mask_name
from ..models import LegacyAccount, Membership, ReviewItem
from ..ui import local_time
from . import recent
from .views import _english, bp

PAGE = "/account/enterprise/register"
LEVEL = "L3"
SOURCE = "enterprise_registration"
RULE = "org_registration_review"  # "org_…": connectors.review treats it as an organisation's
ROW_CONTEXT = "legacy_account.row"  # as connectors.importer, so the console can read it


class DevRegistry:
    """Development stand-in for the market-regulation register: two demo enterprises,
    one led by the demo citizen (张三), one by somebody else."""

    RECORDS = {
        "91350100M00020001J": ("福州演示贸易有限公司", "110105199003071239", "张三"),
        "91350100M0002001XA": ("福州演示物流有限公司", "350102198001011233", "王五"),
    }

    def lookup(self, uscc: str) -> orgs.RegistryRecord | None:
        found = self.RECORDS.get(uscc)
        if found is None:
            return None
        name, rep_id, rep_name = found
        return orgs.RegistryRecord(uscc=uscc, name=name, org_type="企业",
                                   legal_rep_id_number=rep_id, legal_rep_name=rep_name)


def registry():
    """The configured register; the development one where allowed; None: unavailable."""
    if current_app.config.get("ORG_REGISTRY"):
        return orgs.registry()
    return DevRegistry() if plugins.development_allowed(current_app) else None


def _norm(name: str | None) -> str:
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFKC", name or "")
                   if not ch.isspace() and ch not in "·・.．-（）()").casefold()


def _applications(person_id: str) -> list[tuple[LegacyAccount, dict]]:
    crypto = current_app.extensions["idp.fieldcrypto"]
    rows = db.session.scalars(db.select(LegacyAccount).where(
        LegacyAccount.source == SOURCE,
        LegacyAccount.legacy_id.like(f"%:{person_id}")).order_by(LegacyAccount.first_seen)).all()
    return [(row, json.loads(crypto.decrypt(row.row_enc, ROW_CONTEXT))) for row in rows]


def _settle(person_id: str) -> None:
    """An application a reviewer approved: the applicant becomes the legal
    representative, unless the enterprise has one already (then nothing changes)."""
    for row, data in _applications(person_id):
        if row.state != "merged" or not row.org_id or data.get("settled"):
            continue
        has_rep = db.session.scalar(db.select(Membership.id).where(
            Membership.org_id == row.org_id, Membership.role == "legal_rep",
            Membership.revoked_at.is_(None)).limit(1))
        if not has_rep:
            db.session.add(Membership(org_id=row.org_id, person_id=person_id, role="legal_rep",
                                      scopes=["all"], appointed_by="review"))
        data["settled"] = True
        row.row_enc = current_app.extensions["idp.fieldcrypto"].encrypt(
            json.dumps(data, ensure_ascii=False), ROW_CONTEXT)
        db.session.commit()
        if not has_rep:
            audit.record("org.registration_approved", actor=person_id,
                         subject=f"org:{data['uscc']}",
                         details={"application": row.legacy_id.split(":")[0]})


def _state_name(row: LegacyAccount, data: dict) -> str:
    if row.state == "queued":
        return _("等待人工审核")
    if row.state == "rejected":
        return _("审核未通过")
    if row.state == "merged":
        return _("审核通过，已登记")
    return _("已处理")


def _page(*, errors: dict | None = None, form: dict | None = None, status: int = 200,
          done: str | None = None):
    sess = sso.current()
    apps = [{"uscc": d.get("uscc"), "name": d.get("name"), "state": _state_name(r, d),
             "code": r.state, "when": local_time(r.first_seen)}
            for r, d in _applications(sess.person_id)]
    return render_template("account/enterprise_register.html", errors=errors or {},
                           form=form or {}, applications=apps, available=registry() is not None,
                           who=mask_name(sess.person.name), done=done), status


@bp.get("/enterprise/register")
def enterprise_register():
    refused = recent.gate(PAGE, "enterprise_register", LEVEL)
    if refused is not None:
        return refused
    _settle(sso.current().person_id)
    return _page(done=request.args.get("done"))


@bp.post("/enterprise/register")
def enterprise_register_submit():
    refused = recent.gate(PAGE, "enterprise_register", LEVEL)
    if refused is not None:
        return refused
    sess = sso.current()
    person = sess.person
    reg = registry()
    typed_code = request.form.get("uscc", "").strip()[:64]
    typed_name = request.form.get("org_name", "").strip()[:255]
    form = {"uscc": typed_code, "org_name": typed_name}
    if reg is None:
        return _page(form=form, status=503)
    try:
        code = parse_credit_code(typed_code).code
    except InvalidCreditCode as exc:
        return _page(form=form, status=400, errors={
            "uscc": _("统一社会信用代码有误：%(detail)s",
                      detail=exc.message_en if _english() else exc.message)})
    if not typed_name:
        return _page(form=form, status=400, errors={"org_name": _("请填写企业名称。")})
    if orgs.find_org(code) is not None:
        return _page(form=form, status=409, errors={"uscc": _(
            "该企业已在本平台登记。如需代表企业办事，请联系其法定代表人或管理员为您授权。")})
    if any(d.get("uscc") == code and r.state == "queued" for r, d in _applications(person.id)):
        return _page(form=form, status=409,
                     errors={"uscc": _("您已提交过该企业的登记申请，请等待审核。")})
    record = reg.lookup(code)
    if (record is not None and record.legal_rep_id_number == person.id_number
            and _norm(record.legal_rep_name) == _norm(person.name)
            and _norm(record.name) == _norm(typed_name)):
        orgs.register_org(code, record.name, person.id_number, actor=person.id)
        return redirect(url_for(".org_page", uscc=code))
    _queue(person.id, code, typed_name, "registered_rep_differs" if record else "not_in_register")
    return redirect(url_for(".enterprise_register", done="queued"))


def _queue(person_id: str, code: str, name: str, why: str) -> None:
    crypto = current_app.extensions["idp.fieldcrypto"]
    application = secrets.token_hex(8)
    data = {"credit_code": code, "uscc": code, "name": name, "applicant": person_id,
            "why": why}
    row = LegacyAccount(source=SOURCE, legacy_id=f"{application}:{person_id}",
                        fingerprint=secrets.token_hex(16), state="queued", rule=RULE,
                        row_enc=crypto.encrypt(json.dumps(data, ensure_ascii=False),
                                               ROW_CONTEXT),
                        run_id=application, first_seen=time.time(), last_seen=time.time())
    db.session.add(row)
    db.session.flush()
    db.session.add(ReviewItem(legacy_account_id=row.id, reason=RULE, candidates=[]))
    db.session.commit()
    audit.record("org.registration_queued", actor=person_id, subject=f"org:{code}",
                 details={"application": application, "why": why})
