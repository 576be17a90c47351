"""The ``idp`` command. Every command takes ``--json`` for machine-readable output;
errors are one readable line on stderr and a non-zero exit status."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .. import create_app


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=None, default=str))
    else:
        click.echo(text if text is not None else data)


def fail(message: str, as_json: bool = False, code: int = 1):
    if as_json:
        click.echo(json.dumps({"error": message}, ensure_ascii=False), err=True)
    else:
        click.echo(f"错误/error: {message}", err=True)
    sys.exit(code)


def app_context():
    from ..settings import ConfigError

    try:
        app = create_app()
    except ConfigError as exc:
        fail(str(exc), "--json" in sys.argv)
    return app.app_context()


def operator() -> str:
    """Who ran a command, for the audit log."""
    import getpass

    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:unknown"


class _Main(click.Group):
    """Turns failures no command anticipated into one readable line, not a traceback."""

    def invoke(self, ctx: click.Context):
        from sqlalchemy.exc import OperationalError, ProgrammingError

        try:
            return super().invoke(ctx)
        except (OperationalError, ProgrammingError) as exc:
            hint = "is the database initialised? run 'idp init'"
            fail(f"database error ({type(exc.orig or exc).__name__}); {hint}",
                 "--json" in sys.argv)


@click.group(cls=_Main)
def main() -> None:
    """统一身份认证平台 / unified identity authentication server."""


def _register() -> None:
    from admin.cli import admin_group

    from ..identity.cli import id_group
    from . import audit, clients, legacy, merge, orgs, server, users

    main.add_command(server.init)
    main.add_command(server.serve)
    main.add_command(users.user)
    main.add_command(clients.client)
    main.add_command(server.keys)
    main.add_command(id_group)
    main.add_command(audit.audit)
    main.add_command(orgs.org)
    main.add_command(legacy.legacy)
    main.add_command(merge.merge)
    main.add_command(admin_group)


_register()
