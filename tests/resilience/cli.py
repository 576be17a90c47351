"""The ``idp`` command run inside the test process, with a provider's environment.

Starting ``idp`` as a process costs a second or more of imports (several on a busy
two-core machine); the resilience tests run the same click commands through click's
``CliRunner`` instead wherever the command is preparation (``init``, ``user add``,
``client add``) or a check (``audit verify``, ``kek status``). What the operator times
— ``idp backup``, ``idp restore``, ``idp kek rotate`` — still runs as its own process
(``LiveIdP.run_cli``). Each run builds its app from exactly the environment given (every
``IDP_*``, ``DATABASE_URL`` and ``REDIS_URL`` of the test process itself is hidden)."""

from __future__ import annotations

import gc
import json
import os
from typing import Any


def _json(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        # A command may print progress lines first; its answer is the last line.
        try:
            return json.loads(text.splitlines()[-1])
        except ValueError:
            return None


def run(env: dict[str, str], *args: str, check: bool = True) -> Any:
    """``idp ARGS --json`` with ``env``: the parsed answer; with ``check=False``,
    ``(exit code, parsed answer or None, stderr)``."""
    from click.testing import CliRunner

    from idp.cli import main

    hidden = {k: None for k in os.environ
              if k.startswith("IDP_") or k in ("DATABASE_URL", "REDIS_URL")}
    argv = [*args] if "--json" in args else [*args, "--json"]
    res = CliRunner().invoke(main, argv, env={**hidden, **env}, catch_exceptions=False)
    gc.collect()  # the command's app and its database pool go now, not at some later GC
    parsed = _json(res.stdout)
    if not check:
        return res.exit_code, parsed, res.stderr
    if res.exit_code != 0:
        raise AssertionError(f"`idp {' '.join(args)}` exited {res.exit_code}:\n"
                             f"{res.stderr}\n{res.stdout}")
    if parsed is None:
        raise AssertionError(f"`idp {' '.join(args)}` printed no JSON:\n{res.stdout}")
    return parsed
