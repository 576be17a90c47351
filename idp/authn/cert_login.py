"""Sign-in with a citizen's digital certificate (USB key / smart card): level ``L5``.

How the certificate reaches us. The TLS terminator in front (nginx with
``ssl_verify_client on|optional``, or the provincial gateway) runs mutual TLS with the
browser, which proves the browser holds the certificate's private key, and forwards the
certificate in ``CERT_HEADER`` (nginx: ``proxy_set_header X-SSL-Client-Cert
$ssl_client_escaped_cert;``). A certificate is public — anyone can send a copy of
someone else's — so the header means something only when *our* proxy set it:

- it is read only when ``CERT_LOGIN`` is on **and** ``TRUSTED_PROXIES`` > 0 (the
  provider is reachable only through proxies, the premise of X-Forwarded-For too);
- the proxy must overwrite or strip any copy the client sent (``proxy_set_header`` does;
  a header that arrives twice is refused, see ``cert_verify.parse_header``);
- everything the terminator may have skipped is checked again here
  (:mod:`idp.authn.cert_verify`): chain to ``CERT_CA_FILE``, validity, usage, CRL.

Then the ID number in the subject (``CERT_ID_FIELD``) must belong to an active account,
and any name the certificate states must be that account's name.

Why a confirmation button: signing in on a plain GET would let any web page sign a
visitor who has a USB key plugged in into the provider (login CSRF). The page shows
whose certificate it is (masked) and a CSRF-protected button; the POST checks the
certificate again and that it is still the one shown.

amr: tokens say ``sc`` (RFC 8176 "smart card"), the registered value relying parties
know, since the key lives on a USB key or card issued in person. The session also holds
the internal ``cert`` marker (not put in tokens), which is what sets the ``L5``
ceiling in :mod:`idp.authn.assurance`: ``sc`` alone is not enough for ``L5``, so no
other sign-in that someday reports a smart card inherits it. ``CERT_CA_FILE`` must
therefore name only CAs that issue citizens' certificates in person onto hardware.

A successful sign-in also raises the account to ``L5`` (method ``certificate``).
With ``step_up=1`` (from the step-up page) a signed-in session of the same person is
elevated in place (same ``sid``) instead of replaced.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import audit, interaction
from ..accounts import person_by_id_number, raise_level
from ..identity.masking import mask_id_number, mask_name
from ..models import Person
from . import assurance, cert_verify
from . import session as sso

log = logging.getLogger(__name__)

bp = Blueprint("certlogin", __name__)

AMR = ["sc", "cert"]
METHOD = "certificate"

_MESSAGES = {
    # reason: (HTTP status, message)
    "malformed": (400, lambda: _("无法读取您的证书，请重新插入证书介质（USB Key）后重试。")),
    "unsupported_algorithm": (403, lambda: _("暂不支持该证书的签名算法，请使用其他登录方式。")),
    "not_yet_valid": (403, lambda: _("您的证书尚未生效。")),
    "expired": (403, lambda: _("您的证书已过期，请到发证机构办理证书更新。")),
    "wrong_usage": (403, lambda: _("该证书不能用于身份认证登录（证书用途不符）。")),
    "untrusted": (403, lambda: _("该证书不是由本平台认可的证书机构签发的。")),
    "revoked": (403, lambda: _("该证书已被注销（吊销），请到发证机构办理。")),
    "crl_unavailable": (503, lambda: _("暂时无法确认证书状态，请稍后再试或选择其他登录方式。")),
    "no_id": (403, lambda: _("证书中没有可识别的公民身份号码。")),
    "not_registered": (403, lambda: _("该证书持有人尚未在本平台注册账号，"
                                      "请先注册，或到政务服务大厅窗口办理。")),
    "inactive": (403, lambda: _("该账号目前无法使用，请联系客服或到政务服务大厅窗口办理。")),
    "name_mismatch": (403, lambda: _("证书上的姓名与本平台登记的信息不一致，无法登录。")),
    "other_person": (403, lambda: _("该证书的持有人与当前登录的账号不是同一人。")),
    "changed": (409, lambda: _("证书已更换，请确认证书信息后重新登录。")),
    "unavailable": (503, lambda: _("数字证书登录暂时不可用，请选择其他登录方式。")),
}


def enabled() -> bool:
    return bool(current_app.config.get("CERT_LOGIN"))


def header_trusted() -> bool:
    """Whether a forwarded certificate header may be read at all (see module docstring)."""
    return enabled() and int(current_app.config.get("TRUSTED_PROXIES") or 0) > 0


def offered(asked: str | None) -> bool:
    """Whether the step-up page offers a certificate for ``asked``: it reaches ``L5``,
    which is only worth the USB key for the top levels. Never where no certificate
    could be read (no trusted proxy), which would be an option that cannot work."""
    return header_trusted() and assurance.rank(asked) >= assurance.rank("L4")


def _check() -> cert_verify.CertCheck | None:
    """The forwarded certificate, checked; None when there is none to read."""
    if not header_trusted():
        return None
    cfg = current_app.config
    raw = request.headers.get(cfg.get("CERT_HEADER") or "X-SSL-Client-Cert", "")
    if not raw.strip():
        return None
    if not cfg.get("CERT_CA_FILE"):
        log.error("CERT_LOGIN is on but CERT_CA_FILE is not set: certificate sign-in refused")
        return cert_verify.CertCheck("unavailable")
    try:
        return cert_verify.check(raw, ca_file=cfg["CERT_CA_FILE"],
                                 crl_file=cfg.get("CERT_CRL_FILE") or None,
                                 id_field=cfg.get("CERT_ID_FIELD") or "serialNumber")
    except cert_verify.CertConfigError as exc:
        log.error("certificate sign-in refused: %s", exc)
        return cert_verify.CertCheck("unavailable")


def _person_for(result: cert_verify.CertCheck) -> tuple[Person | None, str | None]:
    person = person_by_id_number(result.id_number)
    if person is None:
        return None, "not_registered"
    if person.status != "active":
        return person, "inactive"
    own = cert_verify.comparable_name(person.name)
    if any(cert_verify.comparable_name(n) != own for n in result.names):
        return person, "name_mismatch"
    return person, None


def _cert_details(result: cert_verify.CertCheck | None, **extra) -> dict:
    # The CA's name and the serial identify the certificate for the operator and the CA
    # without putting the holder's name or number in the log.
    details = {"method": "cert", **extra}
    if result is not None and result.leaf is not None:
        details.update(serial=result.serial, issuer=result.issuer)
    return details


def _refuse(reason: str, result, *, rid, client, person: Person | None = None,
            step_up: bool = False):
    cid = client.client_id if client else None
    event = "stepup.failure" if step_up else "login.failure"
    extra = {"reason": reason}
    if result is not None and result.detail:
        extra["check"] = result.detail
    audit.record(event, actor=person.id if step_up and person else "anonymous",
                 subject=person.id if person else None, client_id=cid,
                 details=_cert_details(result, **extra))
    status, message = _MESSAGES.get(reason, _MESSAGES["unavailable"])
    return _render(rid, client, step_up, error=message()), status


def _render(rid, client, step_up: bool, **view):
    view.setdefault("error", None)
    view.setdefault("cert", None)
    return render_template("login_cert_page.html", rid=rid, client=client, step_up=step_up,
                           enabled=enabled(), cert_url=current_app.config.get("CERT_LOGIN_URL"),
                           **view)


@bp.route("/login/cert", methods=["GET", "POST"])
def page():
    req, expired = interaction.from_page()
    if expired is not None:
        return expired
    rid = req.id if req else None
    client = req.client if req else None
    step_up = request.values.get("step_up") == "1"
    if not enabled():
        return _render(rid, client, step_up, error=_MESSAGES["unavailable"][1]()), 404
    result = _check()
    if result is None:
        # No certificate reached us: explain how to present one.
        return _render(rid, client, step_up), 200
    # Step-up elevates the signed-in session; without one it is a plain sign-in.
    sess = sso.current() if step_up else None
    if not result.ok:
        return _refuse(result.reason, result, rid=rid, client=client,
                       person=sess.person if sess else None, step_up=sess is not None)
    person, problem = _person_for(result)
    if problem:
        return _refuse(problem, result, rid=rid, client=client, person=person,
                       step_up=sess is not None)
    if sess is not None and sess.person_id != person.id:
        return _refuse("other_person", result, rid=rid, client=client, person=sess.person,
                       step_up=True)
    shown = {"name": mask_name(result.names[0] if result.names else person.name),
             "number": mask_id_number(result.id_number), "issuer": result.issuer_label,
             "not_after": result.not_after.strftime("%Y-%m-%d"),
             "fingerprint": result.fingerprint}
    if request.method == "GET":
        return _render(rid, client, step_up, cert=shown)
    if request.form.get("fingerprint") != result.fingerprint:
        status, message = _MESSAGES["changed"]
        return _render(rid, client, step_up, cert=shown, error=message()), status
    return _signed_in(person, result, sess, req=req, client=client)


def _signed_in(person: Person, result: cert_verify.CertCheck, sess, *, req, client):
    cid = client.client_id if client else None
    raise_level(person, "L5", METHOD, actor=person.id, client_id=cid)
    if sess is not None:
        before = sess.acr
        after = sso.elevate(sess, AMR)
        audit.record("stepup.success", actor=person.id, subject=person.id, client_id=cid,
                     details=_cert_details(result, amr=assurance.public_amr(AMR),
                                           sid=sess.sid, **{"from": before, "to": after}))
    else:
        sess = sso.start(person, amr=list(AMR), channel=req.channel if req else "web")
        audit.record("login.success", actor=person.id, subject=person.id, client_id=cid,
                     details=_cert_details(result, amr=assurance.public_amr(sess.amr),
                                           acr=sess.acr, sid=sess.sid))
    return redirect(req.resume_url() if req else url_for("authn.home"))


@bp.app_context_processor
def _template_helpers() -> dict:
    return {"cert_login_url": cert_login_url, "cert_login_offered": header_trusted}


def cert_login_url(rid: str | None = None, step_up: bool = False) -> str:
    """Where the certificate page is: ``CERT_LOGIN_URL`` when the terminator asks for
    certificates on an address of its own (another port of the same host, so the SSO
    and UI cookies still reach it), else this site's /login/cert."""
    base = current_app.config.get("CERT_LOGIN_URL") or url_for("certlogin.page")
    params = {k: v for k, v in (("rid", rid), ("step_up", "1" if step_up else None)) if v}
    if not params:
        return base
    return base + ("&" if "?" in base else "?") + urlencode(params)
