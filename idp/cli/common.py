"""What every ``idp`` command shares: output (``--json`` or text), one-line failures, the
operator's name for the audit log, and an app context.

Commands outside this package (``admin.cli``) use these too, so this module imports none
of the commands nor the app factory: the ``idp`` group hands it the factory
(:func:`use_app_factory`) when it is loaded."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

_factory: Callable[[], Any] | None = None


def use_app_factory(factory: Callable[[], Any]) -> None:
    global _factory
    _factory = factory


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


def wants_json() -> bool:
    """For failures found before a command has parsed its own ``--json`` flag."""
    return "--json" in sys.argv


def app_context():
    from ..settings import ConfigError

    if _factory is None:
        raise RuntimeError("the idp command group has not been loaded")
    try:
        app = _factory()
    except ConfigError as exc:
        fail(str(exc), wants_json())
    return app.app_context()


def operator() -> str:
    """Who ran a command, for the audit log."""
    import getpass

    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:unknown"
