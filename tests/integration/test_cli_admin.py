"""The operator's commands (issue 12, "CLI to match"): ``idp user …``, ``idp client …``,
``idp merge list`` paging, and usage errors in the same one-line form as every other
failure. The commands run in the test's app context (both backends)."""

from __future__ import annotations

import contextlib
import json

import pytest
from click.testing import CliRunner

from idp import audit
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.models import Client, Person
from tests.helpers import CITIZEN_ID, CITIZEN_PHONE, make_client, make_person

PERSON_NUMBER_MASKED = "110105********002X"


@pytest.fixture
def idp(ctx, monkeypatch):
    from idp.cli import client_manage, clients, legacy, merge, user_manage, users

    for module in (client_manage, clients, legacy, merge, user_manage, users):
        monkeypatch.setattr(module, "app_context", contextlib.nullcontext)
    from idp.cli import main

    def run(*args: str):
        db.session.commit()  # nothing of the test's session stands in the command's way
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        db.session.expire_all()
        return result

    return run


def _json(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _one_line_error(result, *, as_json: bool = False) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    if as_json:
        return json.loads(lines[0])["error"]
    assert lines[0].startswith("错误/error: ")
    return lines[0]


def _events(name: str) -> list[AuditEvent]:
    audit.flush()
    # In chain order: without ORDER BY, PostgreSQL may return the rows in any order.
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.event == name)
                              .order_by(AuditEvent.seq)).all()


# -- usage errors ---------------------------------------------------------------------


@pytest.mark.parametrize("args, says", [
    (["client", "add", "--client-id", "x", "--auth-method", "bogus"], "--auth-method"),
    (["client", "add", "--client-id", "x", "--channel", "fax"], "--channel"),
    (["user", "add", "--name", "李四"], "Missing option '--id-number'"),
    (["user", "lock", "someone"], "Missing option '--reason'"),
    (["user", "list", "--per-page", "0"], "--per-page"),
    (["merge", "list", "--state", "weird"], "--state"),
    (["merge", "approve", "not-a-number"], "ITEM_ID"),
    (["client", "frobnicate"], "No such command 'frobnicate'"),
])
def test_usage_errors_are_one_line_and_exit_1_like_any_failure(idp, args, says):
    text = _one_line_error(idp(*args))
    assert says in text and "--help" in text
    assert any(f"{zh} / " in text for zh in ("缺少参数", "参数值无效", "没有这个选项", "用法错误"))
    assert says in _one_line_error(idp(*args, "--json"), as_json=True)
    # ... the same shape and status as a failure the command itself finds
    assert _one_line_error(idp("client", "show", "nobody")).startswith("错误/error: no client")


# -- people ---------------------------------------------------------------------------


def test_user_list_show_search_masked(idp):
    person = make_person()
    make_person("110101199003070011", "赵六", phone=None)
    listed = _json(idp("user", "list", "--json"))
    assert listed["total"] == 2 and not listed["truncated"] and listed["next_page"] is None
    one = _json(idp("user", "list", "--per-page", "1", "--json"))
    assert one["truncated"] and one["next_page"] == 2 and len(one["items"]) == 1
    assert "(1–1 of 2 people; next: --page 2)" in idp("user", "list", "--per-page", "1").stdout
    found = _json(idp("user", "list", "--id-number", CITIZEN_ID.lower(), "--json"))
    assert [i["id"] for i in found["items"]] == [person.id]
    by_phone = _json(idp("user", "list", "--phone", CITIZEN_PHONE, "--json"))
    assert [i["id"] for i in by_phone["items"]] == [person.id]
    shown = idp("user", "show", CITIZEN_ID)
    assert shown.exit_code == 0 and PERSON_NUMBER_MASKED in shown.stdout
    detail = _json(idp("user", "show", person.id, "--json"))
    assert detail["person"]["id_number"] == PERSON_NUMBER_MASKED
    everything = "".join(idp(*a).stdout for a in (
        ("user", "list"), ("user", "list", "--json"), ("user", "show", person.id, "--json")))
    for secret in (CITIZEN_ID, CITIZEN_PHONE, "李四"):
        assert secret not in everything
    assert [e.details["by"] for e in _events("admin.person_lookup")] == [
        "id_number", "phone", "id_number"]
    by_name = _json(idp("user", "list", "--name", "赵", "--json"))
    assert by_name["items"][0]["name"] == "赵*"
    [entry] = [e for e in _events("admin.person_lookup") if e.details["by"] == "name"]
    assert entry.details["query"] == "*" and entry.details["found"] == 1
    assert entry.actor.startswith("cli:") and "赵" not in str(entry.details)


def test_unknown_person_is_one_masked_line(idp):
    for ref in ("13900001111", "110101199003074514", "no-such-id"):
        text = _one_line_error(idp("user", "show", ref))
        assert "no person" in text
        assert "13900001111" not in text and "110101199003074514" not in text


def test_lock_unlock_reset_end_sessions(idp):
    person = make_person()
    out = _json(idp("user", "lock", CITIZEN_ID, "--reason", "被盗用", "--json"))
    assert out == {"id": person.id, "status": "locked", "assurance_level": "L2"}
    assert db.session.get(Person, person.id).status == "locked"
    (event,) = _events("admin.person.locked")
    assert event.actor.startswith("cli:") and event.subject == person.id
    assert _json(idp("user", "unlock", person.id, "--reason", "核实", "--json"))["status"] \
        == "active"
    assert "not locked" in _one_line_error(idp("user", "unlock", person.id, "--reason", "x"))
    assert "give a reason" in _one_line_error(idp("user", "lock", person.id, "--reason", " "))
    reset = _json(idp("user", "reset-authenticators", person.id, "--reason", "丢失手机",
                      "--json"))
    assert reset["reset_authenticators"] == {"totp": 0, "webauthn": 0}
    ended = _json(idp("user", "end-sessions", person.id, "--reason", "x", "--json"))
    assert ended["end_sessions"] == {"sessions": 0, "grants": 0}
    assert _events("admin.person.authenticators_reset") and \
        _events("admin.person.sessions_ended")


# -- relying parties ------------------------------------------------------------------


def test_client_add_says_what_kind_of_client_it_made(idp):
    m2m = _json(idp("client", "add", "--client-id", "batch", "--json"))
    assert "machine-to-machine" in m2m["kind"] and "no redirect URI" in m2m["kind"]
    text = idp("client", "add", "--client-id", "kiosk1", "--channel", "kiosk",
               "--grant-type", "device_code").stdout
    assert "kind: " in text and "device sign-in" in text and "no redirect URI" in text
    web = _json(idp("client", "add", "--client-id", "web1", "--redirect-uri",
                    "https://rp.example/cb", "--json"))
    assert "browser sign-in" in web["kind"] and "no redirect URI" not in web["kind"]


def test_client_list_pages_and_show_hides_the_secret(idp):
    for n in range(3):
        make_client(f"rp{n}")
    page1 = _json(idp("client", "list", "--per-page", "2", "--json"))
    assert (page1["total"], page1["truncated"], page1["next_page"]) == (3, True, 2)
    page2 = _json(idp("client", "list", "--per-page", "2", "--page", "2", "--json"))
    assert len(page2["items"]) == 1 and not page2["truncated"]
    ids = {i["client_id"] for i in page1["items"] + page2["items"]}
    assert ids == {"rp0", "rp1", "rp2"}
    assert "past the end" in idp("client", "list", "--page", "9").stdout
    assert [i["client_id"] for i in _json(idp("client", "list", "--search", "rp1",
                                              "--json"))["items"]] == ["rp1"]
    shown = _json(idp("client", "show", "rp1", "--json"))
    assert shown["has_secret"] and "client_secret" not in shown and "stats" in shown


def test_client_list_tells_the_admin_api_clients_apart(idp):
    from admin import api_credentials

    make_client("rp1")
    owner = make_person()
    made, secret = api_credentials.create("备份脚本", ["admin:review"], owner=owner.id,
                                          held={"reviewer"})
    api = _json(idp("client", "list", "--kind", "admin_api", "--json"))
    assert [(i["client_id"], i["admin_owner"], i["admin_scopes"]) for i in api["items"]] == [
        (made.client_id, owner.id, ["admin:review"])]
    assert secret not in json.dumps(api)
    parties = _json(idp("client", "list", "--kind", "relying_party", "--json"))
    assert [i["client_id"] for i in parties["items"]] == ["rp1"]
    assert "admin:review" in idp("client", "list", "--kind", "admin_api").stdout
    assert "robots" in _one_line_error(idp("client", "list", "--kind", "robots"))


def test_client_update_disable_delete(idp):
    make_client("rp1")
    out = _json(idp("client", "update", "rp1", "--add-redirect-uri", "https://rp.example/cb2",
                    "--name", "新名字", "--json"))
    assert out["changed"] == ["name", "redirect_uris"]
    row = db.session.scalar(db.select(Client).where(Client.client_id == "rp1"))
    assert row.redirect_uris == ["https://rp.example/cb", "https://rp.example/cb2"]
    assert row.name == "新名字"
    # checked as a registration would be: a plain-http redirect URI is refused
    assert "redirect" in _one_line_error(idp("client", "update", "rp1", "--redirect-uri",
                                             "http://evil.example/cb")).lower()
    assert "not a redirect URI" in _one_line_error(
        idp("client", "update", "rp1", "--remove-redirect-uri", "https://x.example/"))
    assert "nothing to change" in _one_line_error(idp("client", "update", "rp1"))
    assert _json(idp("client", "disable", "rp1", "--reason", "停用", "--json"))["status"] \
        == "disabled"
    assert _json(idp("client", "enable", "rp1", "--json"))["status"] == "active"
    assert "--yes" in _one_line_error(idp("client", "delete", "rp1"))
    assert _json(idp("client", "delete", "rp1", "--yes", "--json"))["deleted"]
    assert db.session.scalar(db.select(Client).where(Client.client_id == "rp1")) is None
    assert [e.event for e in _events("client.deleted")] == ["client.deleted"]


def test_rotate_secret_keeps_the_old_one_for_the_grace_period(idp):
    rp = make_client("rp1")
    out = _json(idp("client", "rotate-secret", "rp1", "--grace", "600", "--json"))
    assert out["client_secret"] != rp.secret and out["previous_valid_until"]
    row = db.session.scalar(db.select(Client).where(Client.client_id == "rp1"))
    assert row.check_client_secret(out["client_secret"]) and row.check_client_secret(rp.secret)
    again = _json(idp("client", "rotate-secret", "rp1", "--grace", "0", "--json"))
    db.session.refresh(row)
    assert again["previous_valid_until"] is None
    assert row.check_client_secret(again["client_secret"])
    assert not row.check_client_secret(out["client_secret"])
    make_client("app1", public=True)
    assert "not a secret" in _one_line_error(idp("client", "rotate-secret", "app1"))


# -- the review queue and the import ---------------------------------------------------

HEADER = "编号,姓名,身份证号,手机\n"


def _config(tmp_path, lines: list[str]) -> str:
    (tmp_path / "old.csv").write_text(HEADER + "".join(x + "\n" for x in lines),
                                      encoding="utf-8")
    (tmp_path / "old.toml").write_text(
        '[source]\nname = "shebao"\nkind = "csv"\n\n[fields]\nlegacy_id = "编号"\n'
        'name = "姓名"\nid_number = "身份证号"\nphone = "手机"\n\n[csv]\npath = "old.csv"\n',
        encoding="utf-8")
    return str(tmp_path / "old.toml")


def test_merge_list_pages_filters_and_says_when_it_stops(idp, tmp_path):
    rows = [f"q{n},某人{n},,1390000{n:04d}" for n in range(5)] + ["bad,钱七,110105194912310021,"]
    assert _json(idp("legacy", "import", "--config", _config(tmp_path, rows), "--quiet",
                     "--json"))["queued"] == 5
    # five queued and one invalid row: six questions for a reviewer
    first = _json(idp("merge", "list", "--per-page", "4", "--json"))
    assert (first["total"], first["truncated"], first["next_page"]) == (6, True, 2)
    last = _json(idp("merge", "list", "--per-page", "4", "--page", "2", "--json"))
    assert len(last["items"]) == 2 and not last["truncated"] and last["next_page"] is None
    assert {i["id"] for i in first["items"]}.isdisjoint(i["id"] for i in last["items"])
    text = idp("merge", "list", "--per-page", "4").stdout
    assert text.strip().splitlines()[-1] == "(1–4 of 6 review items; next: --page 2)"
    invalid = _json(idp("merge", "list", "--state", "all", "--rule",
                        "invalid_id_number:check_digit", "--json"))
    assert [i["legacy_id"] for i in invalid["items"]] == ["bad"]
    assert _json(idp("merge", "list", "--source", "elsewhere", "--json"))["total"] == 0


def test_legacy_import_reports_rejects_and_progress_when_piped(idp, ctx, tmp_path):
    cfg = _config(tmp_path, ["a1,李四,110101199003070011,", "a2,短行", "a3,王五,,"])
    res = idp("legacy", "import", "--config", cfg, "--progress-interval", "0",
              "--batch-size", "1")
    assert res.exit_code == 0, res.stderr
    progress = res.stderr.strip().splitlines()
    assert progress[0].startswith("进度 progress: ") and "/3" in progress[0] and "%" in progress[0]
    assert progress[-1].startswith("完成 done: 100.0%  3/3  ")
    assert all("\r" not in line for line in progress)
    assert "rejected: 1" in res.stdout and "import-rejects" in res.stdout
    summary = _json(idp("legacy", "import", "--config", cfg, "--json", "--quiet",
                        "--dry-run"))
    assert summary["rejected"] == 1 and summary["reject_report"].startswith(ctx.instance_path)
    with open(summary["reject_report"], encoding="utf-8-sig") as fh:
        assert "line 3" in fh.read()
    quiet = idp("legacy", "import", "--config", cfg, "--quiet", "--reject-report",
                str(tmp_path / "r.csv"))
    assert quiet.stderr == "" and (tmp_path / "r.csv").exists()


def test_an_unknown_password_format_stops_the_import_before_any_row(idp, tmp_path):
    cfg = _config(tmp_path, ["a1,李四,110101199003070011,"])
    with open(cfg, "a", encoding="utf-8") as fh:
        fh.write('\n[password]\nformat = "md6"\n')
    text = _one_line_error(idp("legacy", "import", "--config", cfg, "--quiet"))
    assert "unknown password format 'md6'" in text and "md5" in text
    assert db.session.scalar(db.select(db.func.count()).select_from(Person)) == 0
