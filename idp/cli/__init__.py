"""The ``idp`` command. Every command takes ``--json`` for machine-readable output;
errors are one readable line on stderr and a non-zero exit status.

The commands are attached on first use rather than at import: ``admin.cli`` imports
:mod:`idp.cli.common`, which loads this package first, and only the app factory
(:func:`idp.cli_commands`) may name ``admin`` at all."""

from __future__ import annotations

import importlib
import sys

import click

from .. import cli_commands, create_app
from .common import app_context, emit, fail, operator, use_app_factory, wants_json

__all__ = ["app_context", "emit", "fail", "main", "operator"]

use_app_factory(create_app)


class _Main(click.Group):
    """Turns failures no command anticipated into one readable line, not a traceback."""

    _loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from ..identity.cli import id_group
        from . import accounts, audit, backup, clients, kek, legacy, merge, orgs, server, users

        for command in (server.init, server.serve, users.user, clients.client, server.keys,
                        id_group, audit.audit, orgs.org, legacy.legacy, merge.merge,
                        accounts.account, backup.backup, backup.restore, kek.kek,
                        *cli_commands()):
            self.add_command(command)
        # Commands that join the groups above (idp user list, idp client show, ...).
        for module in ("client_manage", "user_manage", "client_onboarding"):
            importlib.import_module(f"{__name__}.{module}")

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._load()
        return super().get_command(ctx, cmd_name)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        """Click's own usage errors (a bad ``--auth-method``, a missing option, an
        unknown command) in the form of every other failure: one bilingual line (JSON
        with ``--json``) and exit status 1, not click's usage block and status 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        as_json = "--json" in (sys.argv[1:] if args is None else list(args))
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()  # a bare group prints its help, as before
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            message = _zh(exc) + " ".join(exc.format_message().split())
            ctx = getattr(exc, "ctx", None)
            if isinstance(exc, click.UsageError) and ctx is not None:
                message += f" (see '{ctx.command_path} --help')"
            fail(message, as_json)
        except click.Abort:
            fail("aborted", as_json)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):
        from sqlalchemy.exc import OperationalError, ProgrammingError

        try:
            return super().invoke(ctx)
        except (OperationalError, ProgrammingError) as exc:
            hint = "is the database initialised? run 'idp init'"
            fail(f"database error ({type(exc.orig or exc).__name__}); {hint}", wants_json())


def _zh(exc: click.ClickException) -> str:
    """The Chinese half of a usage error (click's own text is English)."""
    for kind, words in ((click.MissingParameter, "缺少参数"), (click.BadParameter, "参数值无效"),
                        (click.NoSuchOption, "没有这个选项"), (click.UsageError, "用法错误")):
        if isinstance(exc, kind):
            return words + " / "
    return ""


@click.group(cls=_Main)
def main() -> None:
    """统一身份认证平台 / unified identity authentication server."""
