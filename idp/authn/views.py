"""Sign-in and consent pages."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from .. import audit, interaction, orgs
from ..extensions import db
from ..identity.masking import mask_id_number, mask_name
from ..models import Consent
from ..oidc.claims import describe_claims, describe_scopes
from ..oidc.claims_request import essential_claims, to_consent
from . import password
from . import session as sso

bp = Blueprint("authn", __name__)


def _request_expired():
    return interaction.expired_page()


@bp.route("/login", methods=["GET", "POST"])
def login():
    req, expired = interaction.from_page()
    if expired is not None:
        return expired
    client = req.client if req else None
    # An organisation in the hint names whom to act for, not the person signing in.
    hint = (req.login_hint or "") if req and not req.org_hint else ""
    error = None
    if request.method == "POST":
        username = request.form.get("username", "")
        result = password.authenticate(username, request.form.get("password", ""))
        cid = client.client_id if client else None
        if result.person is not None:
            sess = sso.start(result.person, amr=["pwd"], channel=req.channel if req else "web")
            audit.record("login.success", actor=result.person.id, subject=result.person.id,
                         client_id=cid,
                         details={"amr": sess.amr, "acr": sess.acr, "sid": sess.sid})
            return redirect(req.resume_url() if req else url_for("authn.home"))
        audit.record("login.failure", actor="anonymous", client_id=cid,
                     details={"reason": result.error, "username": username})
        if result.error == "invalid_number":
            error = result.detail_en if str(get_locale()) == "en" else result.detail
        elif result.error == "locked":
            error = _("登录失败次数过多，账号已暂时锁定，请 %(minutes)d 分钟后再试。",
                      minutes=max(1, current_app.config["LOCKOUT_SECONDS"] // 60))
        else:
            error = _("证件号码（或手机号码）与密码不匹配。")
        hint = username
    return render_template("login.html", rid=req.id if req else None, client=client,
                           error=error, username=hint), (
        400 if error else 200)


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    req = interaction.load(request.values.get("rid"))
    sess = sso.current()
    if req is None or sess is None:
        return _request_expired()
    client = req.client
    if client is None:
        return render_template("error.html", title=_("未知的应用"), detail=""), 400
    scope = client.get_allowed_scope(" ".join(req.scopes))
    # Claims the request asks for by name (OIDC ``claims``): listed, each declinable.
    named = to_consent(req.claims, client, scope)
    if request.method == "POST":
        if request.form.get("consent") == "allow":
            declined = set(request.form.getlist("decline_claim")) & set(named)
            given = set(named) - declined
            for attempt in range(2):
                row = db.session.get(Consent, (sess.person_id, client.client_id))
                if row is None:
                    row = Consent(person_id=sess.person_id, client_id=client.client_id,
                                  scopes="", claims="")
                    db.session.add(row)
                row.scopes = " ".join(sorted(set(row.scopes.split()) | set(scope.split())))
                row.claims = " ".join(sorted((set((row.claims or "").split()) | given)
                                             - declined))
                try:
                    db.session.commit()
                    break
                except IntegrityError:
                    # The same person consenting to this client in another browser at
                    # this very moment made the row first: add to that one.
                    db.session.rollback()
                    if attempt:
                        raise
            req.consented = True
            req.claims_declined = sorted(declined)
            details = {"scope": scope}
            if named:
                details.update(claims=sorted(given), claims_declined=sorted(declined))
            audit.record("consent.granted", actor=sess.person_id, subject=sess.person_id,
                         client_id=client.client_id, details=details)
        else:
            req.denied = True
            audit.record("consent.denied", actor=sess.person_id, subject=sess.person_id,
                         client_id=client.client_id, details={"scope": scope})
        req.save()
        return redirect(req.resume_url())
    person = sess.person
    essential = essential_claims(req.claims)
    return render_template("consent.html", rid=req.id, client=client, items=describe_scopes(scope),
                           claims=[(n, text, n in essential) for n, text in describe_claims(named)],
                           who=mask_name(person.name), number=mask_id_number(person.id_number))


@bp.route("/org/select", methods=["GET", "POST"])
def select_org():
    """Choose which organisation to act for in this authorization (no new password:
    the SSO session stands; every new request with scope ``org`` asks again)."""
    req = interaction.load(request.values.get("rid"))
    sess = sso.current()
    client = req.client if req else None
    if req is None or sess is None or client is None:
        return _request_expired()
    options = orgs.eligible(orgs.memberships_of(sess.person_id), client)
    if request.method == "POST":
        chosen = request.form.get("membership_id")
        if chosen not in {m.id for m, _o in options}:
            return render_template("error.html", title=_("无法代表该企业"),
                                   detail=_("您选择的企业不在可代表的范围内。")), 400
        req.membership_id = chosen
        req.save()
        return redirect(req.resume_url())
    en = str(get_locale()) == "en"
    names = orgs.ROLE_NAMES_EN if en else orgs.ROLE_NAMES
    return render_template("org_select.html", rid=req.id, client=client,
                           options=[(m, o, names[m.role]) for m, o in options])


@bp.get("/")
def home():
    sess = sso.current()
    person = sess.person if sess else None
    return render_template("home.html", person=person, acr=sess.acr if sess else None,
                           who=mask_name(person.name) if person else None,
                           number=mask_id_number(person.id_number) if person else None)
