"""Enterprise registration (法人注册): the registered legal representative completes it at
once; anyone else waits in the console's review queue and becomes the legal
representative once a reviewer approves; a real-name account and a recent sign-in."""

from __future__ import annotations

from urllib.parse import urlsplit

from idp import orgs
from idp.extensions import db
from idp.models import LegacyAccount, Membership, ReviewItem
from tests.helpers import CITIZEN_PASSWORD, form_fields, make_person
from tests.integration.test_account_pages import age_session, events

DEMO_ID = "110105199003071239"  # the dev register's legal representative of the first
LED_BY_DEMO = "91350100M00020001J"  # 福州演示贸易有限公司
LED_BY_OTHER = "91350100M0002001XA"  # 福州演示物流有限公司 (王五)


def _citizen(ctx, level="L3"):
    person = make_person(id_number=DEMO_ID, name="张三", phone="13800138000")
    person.assurance_level = level
    db.session.commit()
    return person


def _signed_in(ctx, step_up=True):
    browser = ctx.test_client()
    page = browser.get("/login").get_data(as_text=True)
    browser.post("/login", data={**form_fields(page), "username": DEMO_ID,
                                 "password": CITIZEN_PASSWORD})
    if step_up:  # an L3 account needs an L3 session: the password plus an SMS code
        from tests.helpers import last_sms_code

        resp = browser.get("/account/enterprise/register")
        loc = resp.headers["Location"]
        rid = dict(p.split("=") for p in urlsplit(loc).query.split("&"))["rid"]
        token = form_fields(browser.get(loc).get_data(as_text=True))["csrf_token"]
        browser.post("/login/step-up", data={"csrf_token": token, "rid": rid,
                                              "action": "sms_send"})
        browser.post("/login/step-up", data={
            "csrf_token": token, "rid": rid, "action": "sms_verify",
            "code": last_sms_code(ctx, "13800138000", "stepup")})
    return browser


def _submit(browser, uscc, name):
    page = browser.get("/account/enterprise/register")
    assert page.status_code == 200, page.headers.get("Location")
    token = form_fields(page.get_data(as_text=True))["csrf_token"]
    return browser.post("/account/enterprise/register", data={
        "csrf_token": token, "uscc": uscc, "org_name": name})


def test_the_registered_legal_representative_registers_at_once(ctx):
    person = _citizen(ctx)
    browser = _signed_in(ctx)
    resp = _submit(browser, LED_BY_DEMO.lower(), "福州演示贸易有限公司")
    assert resp.status_code == 302 and resp.headers["Location"] == f"/account/org/{LED_BY_DEMO}"
    org = orgs.find_org(LED_BY_DEMO)
    assert org is not None and orgs.manager_role(person.id, org) == "legal_rep"
    assert browser.get(f"/account/org/{LED_BY_DEMO}").status_code == 200  # appoint agents
    assert events("org.add")
    again = _submit(browser, LED_BY_DEMO, "福州演示贸易有限公司")
    assert again.status_code == 409


def test_anyone_else_waits_for_review_then_becomes_the_legal_representative(ctx):
    from connectors import review

    person = _citizen(ctx)
    browser = _signed_in(ctx)
    resp = _submit(browser, LED_BY_OTHER, "福州演示物流有限公司")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("done=queued")
    assert orgs.find_org(LED_BY_OTHER) is None
    item = db.session.scalars(db.select(ReviewItem)).one()
    account = db.session.get(LegacyAccount, item.legacy_account_id)
    assert review.kind_of(item, account) == review.ORGANISATION  # in the console's queue
    assert DEMO_ID not in account.row_enc and DEMO_ID not in account.legacy_id
    page = browser.get("/account/enterprise/register").get_data(as_text=True)
    assert "等待人工审核" in page
    review.approve(item.id, by="reviewer", note="营业执照已核")
    page = browser.get("/account/enterprise/register").get_data(as_text=True)
    assert "审核通过" in page
    org = orgs.find_org(LED_BY_OTHER)
    assert orgs.manager_role(person.id, org) == "legal_rep"
    # Settled once: a second visit adds nothing.
    browser.get("/account/enterprise/register")
    assert db.session.scalar(db.select(db.func.count()).select_from(Membership).where(
        Membership.org_id == org.id)) == 1


def test_a_wrong_code_or_name_is_explained_at_the_field(ctx):
    _citizen(ctx)
    browser = _signed_in(ctx)
    bad = _submit(browser, LED_BY_DEMO[:-1] + "0", "x")
    html = bad.get_data(as_text=True)
    assert bad.status_code == 400 and 'id="uscc-error"' in html and 'aria-invalid="true"' in html
    # The register's name differs from the one typed: not at once, to review instead.
    queued = _submit(browser, LED_BY_DEMO, "别的公司")
    assert queued.headers["Location"].endswith("done=queued")
    assert orgs.find_org(LED_BY_DEMO) is None


def test_a_self_declared_account_or_stale_session_is_sent_to_verify_first(ctx):
    _citizen(ctx, level="L2")
    browser = _signed_in(ctx, step_up=False)
    # L2 account, fresh L2 session: the real-name level is asked (a step-up).
    resp = browser.get("/account/enterprise/register")
    assert urlsplit(resp.headers["Location"]).path == "/login/step-up"
    age_session(ctx, browser, ctx.config["SECURITY_REAUTH_SECONDS"] + 5)
    resp = browser.post("/account/enterprise/register", data={"uscc": LED_BY_DEMO})
    assert resp.status_code in (302, 400)  # no CSRF token, or sent to sign in again
    assert orgs.find_org(LED_BY_DEMO) is None


def test_the_application_shows_in_the_console_queue(ctx):
    import json

    from idp.models import AdminRole
    from tests.integration.test_admin_console import sign_in

    _citizen(ctx)
    _submit(_signed_in(ctx), LED_BY_OTHER, "福州演示物流有限公司")
    reviewer = make_person(id_number="350102198001011233", name="审核员", phone="13900001111")
    reviewer.assurance_level = "L3"
    db.session.add(AdminRole(person_id=reviewer.id, role="reviewer", granted_by="test"))
    db.session.commit()
    console = ctx.test_client()
    sign_in(console, ctx, reviewer)
    listing = console.get("/admin/api/review?state=pending")
    assert listing.status_code == 200
    body = json.dumps(listing.get_json(), ensure_ascii=False)
    assert listing.get_json()["total"] == 1 and DEMO_ID not in body
    assert console.get("/admin/review").status_code == 200
