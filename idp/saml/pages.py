"""The pages SAML shows the person itself (never a redirect to an unregistered URL)."""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _


def error_page(title: str, detail: str, status: int = 400):
    # Titles and details are fixed strings of this package (msgids), never request data.
    return render_template("error.html", title=_(title), detail=_(detail)), status


def repost(action: str):
    """A cross-site POST (HTTP-POST binding) carries no SameSite=Lax cookie, so the
    person would look signed out: the same form is posted again from our own page,
    where the browser sends them."""
    fields = {k: v for k, v in request.form.items() if k in ("SAMLRequest", "RelayState")}
    return render_template("saml/repost.html", action=action, fields=fields)
