"""What a request may carry: hostile input gets a 400 (or 404), never a 500.

One request class and one URL converter, installed by the app factory, so that every
view — ours, Authlib's, Flask-WTF's — gets the same limits without checking for them:

- JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused. Python's parser raises
  ``RecursionError`` (not ``ValueError``, so Werkzeug's ``silent=True`` does not catch
  it) on a body of a few thousand ``[``; and a merely deep document that does parse can
  still exhaust the stack in whatever walks it next. No endpoint of ours takes more than
  a handful of levels.
- JSON strings that are not text (a lone surrogate escape) are refused too, and NUL in
  any parameter, path, query, form or JSON string: PostgreSQL cannot store it.
- A body the server cannot read (gunicorn's ``InvalidChunkSize`` and friends for a
  malformed ``Transfer-Encoding: chunked``, a connection cut mid-body) is the client's
  fault, and is answered as such.
- ``<int:…>`` path segments stop at the largest value the database's ``INTEGER``
  columns hold: PostgreSQL answers a bigger literal with "integer out of range" (and
  SQLite with ``OverflowError``) instead of "no such row".
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

MAX_JSON_DEPTH = 32
DB_INT_MAX = 2**31 - 1  # SQL INTEGER, the type of every numeric primary key here

try:  # the production server; its parse errors are not OSError
    from gunicorn.http.errors import ParseException as _GunicornParseError
except ImportError:  # pragma: no cover - gunicorn is a dependency
    _GunicornParseError = OSError

# What reading ``wsgi.input`` raises when the body on the wire is malformed or cut off.
_UNREADABLE = (OSError, ValueError, _GunicornParseError)


class BodyUnreadable(BadRequest):
    description = "The request body could not be read."


class JSONTooDeep(BadRequest):
    description = f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep."


class JSONNotUnicode(BadRequest):
    description = "JSON strings must be Unicode text (no lone surrogate escapes)."


class NulCharacter(BadRequest):
    description = "The request has a NUL character, which no parameter may contain."


def check_json(value: Any) -> None:
    """Raise unless ``value`` is at most :data:`MAX_JSON_DEPTH` arrays/objects deep and
    all its strings are real text. ``"\\ud800"`` is valid JSON but no valid string: it
    cannot be encoded to UTF-8 for the database, a hash or a log line. Iterative, so
    measuring cannot overflow the stack either."""
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            if not storable_text(item):
                raise NulCharacter() if "\x00" in item else JSONNotUnicode()
            continue
        if isinstance(item, dict):
            children = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level + 1 > MAX_JSON_DEPTH:
            raise JSONTooDeep()
        stack.extend((child, level + 1) for child in children)


def _is_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(value: Any) -> bool:
    """Whether ``value`` is a string a database query can carry: for values that reach a
    look-up from somewhere the request hooks do not see (claims inside a JWT)."""
    return isinstance(value, str) and "\x00" not in value and _is_text(value)


class LimitedRequest(Request):
    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        # A BadRequest, not the ValueError ``silent=True`` swallows: a hostile body must
        # not be taken for an empty one.
        try:
            value = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            raise JSONTooDeep() from None
        check_json(value)
        return value

    def get_data(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_data(*args, **kwargs)
        except _UNREADABLE:
            raise BodyUnreadable() from None

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except _UNREADABLE:
            # Later readers (the CSRF check, the error page) see an empty form rather
            # than reading the broken stream again.
            empty: ImmutableMultiDict = ImmutableMultiDict()
            self.__dict__.update(form=empty, files=ImmutableMultiDict())
            raise BodyUnreadable() from None


class DatabaseIntConverter(IntegerConverter):
    """``<int:…>`` bounded by :data:`DB_INT_MAX` unless a rule says otherwise; a bigger
    number matches no route (404)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002
                 max: int | None = DB_INT_MAX, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def bounded_int(text: str | None, default: int, low: int, high: int) -> int | None:
    """A whole number from a query parameter within [low, high]; ``default`` when absent,
    None when it is not a number in range (the caller answers 400)."""
    if text is None or text == "":
        return default
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > len(str(high)):
        return None
    value = int(text)
    return value if low <= value <= high else None


def refuse_nul_characters() -> None:
    """Before every view: no NUL in the path, the query or a form. PostgreSQL cannot hold
    one in a text value (psycopg refuses the query), so a ``client_id`` of ``"a\\0"``
    would otherwise be a 500 wherever it is looked up; no parameter of ours needs one."""
    if "\x00" in request.path:
        raise NulCharacter()
    sources = [request.args]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        sources.append(request.form)
    for params in sources:
        for key, values in params.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                raise NulCharacter()


def install(app: Flask) -> None:
    """Before any route is added: the converter is looked up when a rule is compiled.
    (:func:`refuse_nul_characters` is a request hook the factory orders itself.)"""
    app.request_class = LimitedRequest
    app.url_map.converters["int"] = DatabaseIntConverter
