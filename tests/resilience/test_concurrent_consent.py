"""One person's first consent to one client from two browsers at the same moment (found
by the fault run, whose clients all started with a first sign-in together, as a 500):
both requests find no consent row and both insert one; the second commit meets the
first's row. It must add to that row and go on, not fail.

The moment is held open: the second browser's read of the consent row is made to come
back empty although the first browser's row is committed — what it reads when it reads
just before that commit."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.helpers import (
    CITIZEN_ID,
    CITIZEN_PASSWORD,
    authorize_url,
    form_fields,
    make_client,
    make_person,
    query,
)
from tests.resilience import flows


def _consent_page(browser, rp) -> dict:
    """Signed in, the consent page open (not answered yet): its form."""
    resp = browser.get(authorize_url(rp))
    for _ in range(6):
        loc = resp.headers["Location"]
        path = urlsplit(loc).path
        if path == "/consent":
            return form_fields(browser.get(loc).get_data(as_text=True))
        if path == "/login":
            page = browser.get(loc).get_data(as_text=True)
            resp = browser.post("/login", data={**form_fields(page), "username": CITIZEN_ID,
                                                "password": CITIZEN_PASSWORD})
        else:
            resp = browser.get(loc)
    raise AssertionError("no consent page")


def _code(browser, resp, rp) -> str | None:
    """Follow the consent's answer back through /authorize to the client: the code."""
    for _ in range(3):
        assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
        loc = resp.headers["Location"]
        if loc.startswith(rp.redirect_uri):
            return query(loc).get("code")
        resp = browser.get(loc)
    return None


def test_two_first_consents_at_once_both_go_through(tmp_path, monkeypatch):
    from idp.extensions import db
    from idp.models import Consent

    app = flows.provider(str(tmp_path))
    with app.app_context():
        make_person()
        rp = make_client("rp-consent")  # not first-party: it asks for consent
        one, two = app.test_client(), app.test_client()
        form_one, form_two = _consent_page(one, rp), _consent_page(two, rp)
        first = one.post("/consent", data={**form_one, "consent": "allow"})
        assert _code(one, first, rp)

        real_get, calls = db.session.get, []

        def read_before_the_other_commit(entity, ident, *a, **kw):
            calls.append(entity)
            if entity is Consent and calls.count(Consent) == 1:
                return None
            return real_get(entity, ident, *a, **kw)

        monkeypatch.setattr(db.session, "get", read_before_the_other_commit)
        second = two.post("/consent", data={**form_two, "consent": "allow"})
        monkeypatch.undo()
        assert calls.count(Consent) == 2  # the conflict was met and the row read again
        assert _code(two, second, rp)
        rows = db.session.scalars(db.select(Consent)).all()
        assert len(rows) == 1 and "openid" in rows[0].scopes.split()
        db.session.remove()
