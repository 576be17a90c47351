"""Plug-ins chosen by a setting: the SMS gateway, the real-name register, the face
comparison service.

Each setting names a built-in (``"dev"``, ``"http"``…) or ``"package.module:Class"``.
Left unset (None), a setting gets the built-in ``"dev"`` plug-in only where nobody can
be harmed by it — the embedded default and tests. A deployment on an external database
gets *nothing* instead: the dev plug-ins answer without asking any real service (codes
written to a file, every real-name or face check passed), and shipping one to
production by omission would hand out sign-ins and assurance levels. ``"off"`` turns a
feature off explicitly.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)

OFF = ("", "off", "none", "false")


class PluginError(RuntimeError):
    """The setting names nothing loadable."""


def development_allowed(app: Flask) -> bool:
    return bool(app.config.get("EMBEDDED") or app.testing)


def chosen(setting: str, app: Flask | None = None) -> str | None:
    """The plug-in name in effect for ``setting``: None when off or unset in production."""
    app = app or current_app
    name = app.config.get(setting)
    if name is None:
        return "dev" if development_allowed(app) else None
    name = str(name).strip()
    return None if name.lower() in OFF else name


def load(setting: str, builtins: dict[str, Callable[[], Any]], *,
         unset: Callable[[], Any] | None = None) -> Any:
    """The plug-in object for ``setting``, made once per app. ``unset`` makes the
    stand-in used when the feature is off (e.g. one that always fails); without it an
    unconfigured feature raises :class:`PluginError`."""
    app = current_app
    key = f"idp.plugin.{setting}"
    obj = app.extensions.get(key)
    if obj is not None:
        return obj
    name = chosen(setting, app)
    if name is None:
        if unset is None:
            raise PluginError(f"{setting} is off: the feature is not available")
        log.warning("%s is not configured: the feature is unavailable", setting)
        obj = unset()
    elif name in builtins:
        obj = builtins[name]()
    else:
        module, _, cls = name.partition(":")
        if not module or not cls:
            raise PluginError(f"{setting} {name!r}: expected one of "
                              f"{', '.join(sorted(builtins))} or package.module:Class")
        try:
            obj = getattr(importlib.import_module(module), cls)()
        except (ImportError, AttributeError) as exc:
            raise PluginError(f"{setting} {name!r} cannot be loaded: {exc}") from None
    app.extensions[key] = obj
    return obj
