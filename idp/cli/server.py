"""``idp init``, ``idp serve`` and ``idp keys``."""

from __future__ import annotations

import click

from .common import app_context, emit, fail, operator


@click.command()
@click.option("--demo", is_flag=True, help="Also load the demo citizen and demo relying parties.")
@click.option("--json", "as_json", is_flag=True)
def init(demo: bool, as_json: bool) -> None:
    """Create or upgrade the database and make signing keys."""
    import os

    from ..bootstrap import initialise

    if demo:
        # The workers build their own app from the environment; an explicit
        # IDP_CHANNEL_DEMOS=false still wins.
        os.environ.setdefault("IDP_CHANNEL_DEMOS", "true")
    with app_context():
        from flask import current_app

        keys = initialise()
        out = {"database": _redact(current_app.config["DATABASE_URL"]), "new_keys": keys}
        if demo:
            from ..demo.seed import seed

            out["demo"] = seed()
    emit(out, as_json, f"initialised {out['database']}; new keys: {', '.join(keys) or 'none'}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="gunicorn worker processes")
@click.option("--threads", default=8, show_default=True, type=int)
@click.option("--worker-class", type=click.Choice(["gthread", "sync"]), default="gthread",
              show_default=True,
              help="gunicorn worker class: gthread (threads per worker, keep-alive) or sync "
                   "(one request at a time per worker, no keep-alive).")
@click.option("--demo", is_flag=True, help="Also run the two demo relying-party sites.")
def serve(host: str, port: int, workers: int | None, threads: int, worker_class: str,
          demo: bool) -> None:
    """Run the provider (gunicorn). Initialises the embedded database on first start."""
    import os

    from ..bootstrap import initialise

    problem = bind_problem(host, port)
    if problem:
        fail(problem)
    if demo:
        # The workers build their own app from the environment; an explicit
        # IDP_CHANNEL_DEMOS=false still wins.
        os.environ.setdefault("IDP_CHANNEL_DEMOS", "true")
    with app_context():
        from flask import current_app

        embedded = current_app.config["EMBEDDED"]
        if embedded:
            initialise()
        issuer = current_app.config["ISSUER"]
        instance_path = current_app.instance_path
        if demo:
            from ..demo.seed import seed

            info = seed()
            c = info["citizen"]
            click.echo(f"demo citizen: ID number {c['id_number']}  password {c['password']}")
            from ..channels import demos_enabled

            if demos_enabled({"CHANNEL_DEMOS": os.environ.get("IDP_CHANNEL_DEMOS")}):
                for label, path in (("app simulator (QR, approvals)", "/demo/app"),
                                    ("self-service kiosk", "/demo/kiosk/"),
                                    ("service-hall counter", "/demo/hall"),
                                    ("hotline agent", "/demo/hotline")):
                    click.echo(f"demo {label}: {issuer}{path}")
    if demo:
        from ..demo.sites import start_demo_sites

        for line in start_demo_sites(issuer, host, instance_path):
            click.echo(line)
    if workers is None:
        workers = 1 if embedded else 2
    from .gunicorn_app import run

    click.echo(f"idp listening on http://{host}:{port} (issuer {issuer})")
    run(host, port, workers, threads, worker_class)


def bind_problem(host: str, port: int) -> str | None:
    """Why gunicorn could not listen on ``host:port``, found before anything is announced
    or initialised (gunicorn would otherwise fail after "listening", with a traceback)."""
    import socket

    if not 1 <= port <= 65535:
        return f"--port {port} is not a TCP port (1-65535)"
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        return f"--host {host!r} cannot be resolved ({exc})"
    with socket.socket(family, kind, proto) as probe:
        # As gunicorn binds: a port held only by connections closing (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


@click.group()
def keys() -> None:
    """Token-signing keys."""


@keys.command("rotate")
@click.option("--alg", default="ES256", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def keys_rotate(alg: str, as_json: bool) -> None:
    """Make a new active key. The previous one stays published until every token it
    signed has expired; keys past that point are retired (removed from the JWKS)."""
    from ..crypto.keys import generate, retire_expired
    from ..extensions import db

    with app_context():
        try:
            row = generate(alg)
        except ValueError as exc:
            fail(str(exc), as_json)
        db.session.commit()
        retired = retire_expired()
        from .. import audit

        audit.record("keys.rotate", actor=operator(),
                     details={"kid": row.kid, "alg": row.alg, "retired": retired})
        emit({"kid": row.kid, "alg": row.alg, "retired": retired}, as_json,
             f"new active {row.alg} key {row.kid}; retired: {', '.join(retired) or 'none'}")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json: bool) -> None:
    from ..crypto.keys import retire_expired
    from ..extensions import db
    from ..models import SigningKey

    with app_context():
        retire_expired()
        rows = db.session.scalars(db.select(SigningKey).order_by(SigningKey.created_at)).all()
        data = [{"kid": r.kid, "alg": r.alg, "status": r.status, "created_at": r.created_at,
                 "retired_at": r.retired_at} for r in rows]
    emit(data, as_json, "\n".join(f"{d['kid']}\t{d['alg']}\t{d['status']}" for d in data))
