"""Password lockout locks the account, whatever form of its identifier is typed, counts
only wrong passwords, and bounds guesses checked in parallel (issue 10, defect 1)."""

from __future__ import annotations

import threading

import pytest

from idp.authn import password as pw
from tests.helpers import CITIZEN_ID, CITIZEN_PASSWORD, authorize_url, form_fields, make_person

PHONE = "13800138000"
UNKNOWN_ID = "110101199003070011"
UNKNOWN_PHONE = "13700001111"


@pytest.fixture
def cfg(ctx):
    saved = dict(ctx.config)
    # Parallel checks wait for each other; on a loaded machine that may take a while,
    # and how long must not decide the outcome.
    ctx.config["LOCKOUT_WAIT_SECONDS"] = 120
    yield ctx.config
    ctx.config.clear()
    ctx.config.update(saved)


@pytest.fixture
def citizen(ctx):
    return make_person(phone=PHONE)


def _lock_by_wrong_passwords(username: str, threshold: int) -> list[str | None]:
    return [pw.authenticate(username, "nope-nope").error for _ in range(threshold)]


@pytest.mark.parametrize("typed", [PHONE, "+86 138 0013 8000", "008613800138000",
                                   CITIZEN_ID.lower()])
def test_an_account_locked_by_its_id_number_is_locked_by_its_phone_too(cfg, citizen, typed):
    threshold = cfg["LOCKOUT_THRESHOLD"]
    results = _lock_by_wrong_passwords(CITIZEN_ID, threshold)
    assert results == ["bad_credentials"] * (threshold - 1) + ["locked"]
    result = pw.authenticate(typed, CITIZEN_PASSWORD)
    assert (result.person, result.error) == (None, "locked")


def test_wrong_passwords_by_phone_and_id_number_add_up(cfg, citizen):
    threshold = cfg["LOCKOUT_THRESHOLD"]
    forms = [CITIZEN_ID, PHONE, "+86 138 0013 8000", "008613800138000"]
    results = [pw.authenticate(forms[i % len(forms)], "nope-nope").error
               for i in range(threshold)]
    assert results[-1] == "locked"
    assert pw.authenticate(CITIZEN_ID, CITIZEN_PASSWORD).error == "locked"


def test_the_sign_in_page_refuses_the_phone_of_an_account_locked_by_id_number(cfg, client,
                                                                             citizen):
    from tests.helpers import make_client

    rp = make_client()
    _lock_by_wrong_passwords(CITIZEN_ID, cfg["LOCKOUT_THRESHOLD"])
    resp = client.get(authorize_url(rp))
    fields = form_fields(client.get(resp.headers["Location"]).get_data(as_text=True))
    resp = client.post("/login", data={**fields, "username": "+86 138 0013 8000",
                                       "password": CITIZEN_PASSWORD})
    assert resp.status_code == 400 and "锁定" in resp.get_data(as_text=True)


@pytest.mark.parametrize(("known", "unknown"), [(CITIZEN_ID, UNKNOWN_ID), (PHONE, UNKNOWN_PHONE)])
def test_unknown_identifiers_lock_after_the_same_count_with_the_same_answers(cfg, citizen,
                                                                           known, unknown):
    threshold = cfg["LOCKOUT_THRESHOLD"]
    seen = {}
    for who in (known, unknown):
        seen[who] = _lock_by_wrong_passwords(who, threshold + 2)
        seen[who].append(pw.authenticate(who, CITIZEN_PASSWORD).error)
    assert seen[known] == seen[unknown]
    assert seen[unknown] == ["bad_credentials"] * (threshold - 1) + ["locked"] * 4


def test_a_right_password_clears_the_count(cfg, citizen):
    threshold = cfg["LOCKOUT_THRESHOLD"]
    for _ in range(threshold - 1):
        assert pw.authenticate(PHONE, "nope-nope").error == "bad_credentials"
    assert pw.authenticate(CITIZEN_ID, CITIZEN_PASSWORD).person is not None
    for _ in range(threshold - 1):
        assert pw.authenticate(CITIZEN_ID, "nope-nope").error == "bad_credentials"
    assert pw.authenticate(PHONE, CITIZEN_PASSWORD).person is not None


def _in_parallel(ctx, count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads that all start together."""
    start = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        with ctx.app_context():
            start.wait()
            results[i] = work(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_right_passwords_in_parallel_all_sign_in_and_lock_nothing(ctx, cfg, citizen,
                                                                 monkeypatch):
    """Counting attempts before the check refused 11 of 16 and locked the account."""
    threshold = cfg["LOCKOUT_THRESHOLD"]
    real_verify = pw.verify_password
    # The first THRESHOLD checks are held until all of them are under way together: the
    # moment at which counting attempts, not failures, ran out of budget.
    together = threading.Barrier(threshold, timeout=120)
    entered = []
    lock = threading.Lock()

    def verify(stored, given):
        with lock:
            entered.append(given)
            first = len(entered) <= threshold
        if first:
            together.wait()
        return real_verify(stored, given)

    monkeypatch.setattr(pw, "verify_password", verify)
    forms = [CITIZEN_ID, PHONE, "+86 138 0013 8000", "008613800138000"]
    people = _in_parallel(ctx, 16, lambda i: pw.authenticate(forms[i % 4], CITIZEN_PASSWORD))
    assert all(r.person is not None for r in people), [r.error for r in people]
    _, _, key = pw.find_person(CITIZEN_ID)
    assert not pw.is_locked(key)
    # Nor did they use up the budget for wrong passwords.
    for _ in range(threshold - 1):
        assert pw.authenticate(CITIZEN_ID, "nope-nope").error == "bad_credentials"


@pytest.mark.parametrize("who", [CITIZEN_ID, UNKNOWN_ID])
def test_parallel_wrong_guesses_in_every_form_never_exceed_the_budget(ctx, cfg, citizen,
                                                                      monkeypatch, who):
    threshold = cfg["LOCKOUT_THRESHOLD"]
    real_verify = pw.verify_password
    checked = []

    def verify(stored, given):
        checked.append(given)
        return real_verify(stored, given)

    monkeypatch.setattr(pw, "verify_password", verify)
    forms = ([CITIZEN_ID, PHONE, "+86 138 0013 8000", "008613800138000", CITIZEN_ID.lower()]
             if who == CITIZEN_ID else [UNKNOWN_ID])
    count = threshold * 3
    errors = _in_parallel(ctx, count,
                          lambda i: pw.authenticate(forms[i % len(forms)], f"guess-{i}").error)
    assert len(checked) <= threshold
    assert set(errors) <= {"bad_credentials", "locked"}
    assert errors.count("bad_credentials") <= threshold - 1
    assert pw.authenticate(who, CITIZEN_PASSWORD).error == "locked"
