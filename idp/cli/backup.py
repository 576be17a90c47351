"""``idp backup`` and ``idp restore``: a consistent PostgreSQL dump and its way back.

``pg_dump`` reads the whole database in one snapshot (one repeatable-read transaction),
so a backup taken while the provider runs is consistent: a refresh token and the audit
entry of its issue are both in it, or neither. Beside the dump goes a manifest (JSON):
its SHA-256, the schema revision, the audit chain's head at the start, the number of
people, and the *identifier* of the key-encryption key (an HKDF output, not the key).

The KEK is never in the dump: it lives in the configuration (``IDP_KEK``), and every
secret in the database (signing keys, personal data) is sealed under keys derived from
it. A stolen backup is ciphertext; a restore needs the KEK from where operators keep it,
and ``idp restore`` refuses a backup whose KEK identifier is not the configured one
before touching the target database.

``idp restore`` loads into an empty database only (``pg_restore --single-transaction``:
all or nothing), then verifies the audit chain against the manifest's head."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import click

from .common import app_context, emit, fail


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for the pg_* tools, and the environment carrying its
    password (so it is not on a command line others can read in ``ps``)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if not u.drivername.startswith("postgresql"):
        raise click.UsageError("idp backup and idp restore need a PostgreSQL DATABASE_URL "
                               f"(this one is {u.drivername})")
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    u = u.set(drivername="postgresql", password=None)
    return u.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise click.UsageError(f"{name} not found (install the PostgreSQL client tools)")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_path(dump: Path) -> Path:
    return dump.with_name(dump.name + ".manifest.json")


def _facts() -> dict:
    """What the manifest records about the running database (in an app context)."""
    from flask import current_app
    from sqlalchemy import func, select, text

    from .. import audit
    from ..crypto.fieldcrypt import kek_id, parse_kek
    from ..extensions import db
    from ..models import Person

    seq, digest = audit.head()  # chains what is pending first
    revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    persons = db.session.scalar(select(func.count()).select_from(Person))
    db.session.remove()
    return {"audit_head": f"{seq}:{digest}", "revision": revision, "persons": persons,
            "kek_id": kek_id(parse_kek(str(current_app.config["KEK"])))}


@click.command("backup")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Dump file to write (pg_dump custom format); FILE.manifest.json beside it.")
@click.option("--json", "as_json", is_flag=True)
def backup(output: str, as_json: bool) -> None:
    """Back up the database (consistent while the provider runs; never holds the KEK)."""
    out = Path(output)
    if out.exists():
        fail(f"{out} exists; choose a new file", as_json)
    with app_context():
        from flask import current_app

        try:
            uri, env = _libpq(current_app.config["DATABASE_URL"])
            pg_dump = _tool("pg_dump")
        except click.UsageError as exc:
            fail(exc.format_message(), as_json)
        facts = _facts()
    started = time.monotonic()
    tmp = out.with_name(out.name + ".partial")
    res = subprocess.run([pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                          "--file", str(tmp), "--dbname", uri],
                         env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        tmp.unlink(missing_ok=True)
        fail("pg_dump failed: " + " ".join(res.stderr.split())[:500], as_json)
    os.chmod(tmp, 0o600)
    tmp.rename(out)
    facts.update({"file": out.name, "sha256": _sha256(out), "bytes": out.stat().st_size,
                  "created_at": int(time.time()),
                  "seconds": round(time.monotonic() - started, 2)})
    manifest_path(out).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    emit(facts, as_json, f"backup written to {out} ({facts['bytes']} bytes, "
                         f"{facts['persons']} people, audit head {facts['audit_head']}, "
                         f"{facts['seconds']}s)")


def _empty(uri: str, env: dict) -> bool:
    psql = _tool("psql")
    res = subprocess.run([psql, "--no-psqlrc", "-At", "--dbname", uri, "-c",
                          "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
                         env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise click.UsageError("cannot reach the target database: "
                               + " ".join(res.stderr.split())[:300])
    return res.stdout.strip() == "0"


@click.command("restore")
@click.argument("dump", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def restore(dump: str, as_json: bool) -> None:
    """Restore a backup into the (empty) database DATABASE_URL names, then verify the
    audit chain against the backup's manifest."""
    path = Path(dump)
    try:
        manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        fail(f"no readable manifest {manifest_path(path).name} beside the dump", as_json)
    if _sha256(path) != manifest.get("sha256"):
        fail("the dump does not match its manifest (altered or incomplete file)", as_json)
    started = time.monotonic()
    with app_context():
        from flask import current_app

        from ..crypto.fieldcrypt import kek_id, parse_kek

        if kek_id(parse_kek(str(current_app.config["KEK"]))) != manifest.get("kek_id"):
            fail("the configured IDP_KEK is not the one this backup was made under "
                 f"(backup's KEK id {manifest.get('kek_id')}); nothing restored", as_json)
        try:
            uri, env = _libpq(current_app.config["DATABASE_URL"])
            if not _empty(uri, env):
                fail("the target database is not empty; restore into a new database",
                     as_json)
            pg_restore = _tool("pg_restore")
        except click.UsageError as exc:
            fail(exc.format_message(), as_json)
    res = subprocess.run([pg_restore, "--no-owner", "--no-privileges", "--exit-on-error",
                          "--single-transaction", "--dbname", uri, str(path)],
                         env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        fail("pg_restore failed (nothing restored): "
             + " ".join(res.stderr.split())[:500], as_json)
    with app_context():
        from ..audit import verify

        seq, digest = manifest["audit_head"].split(":")
        result = verify(expected_head=(int(seq), digest))
    out = {"restored": path.name, "persons": manifest.get("persons"),
           "revision": manifest.get("revision"), "audit_ok": result.ok,
           "audit_entries": result.count, "seconds": round(time.monotonic() - started, 2)}
    if not result.ok:
        fail(f"restored, but the audit chain does not verify at entry "
             f"{result.first_bad_seq}: {result.reason}", as_json)
    emit(out, as_json, f"restored {path.name}: {out['persons']} people, audit chain "
                       f"verified ({result.count} entries), {out['seconds']}s")
