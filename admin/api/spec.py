"""One declaration per endpoint: its path, permission, request and response models —
from which both the validation and the OpenAPI 3.1 document come.

Why pydantic rather than marshmallow + apispec: pydantic v2 emits JSON Schema 2020-12,
which is exactly the schema dialect of OpenAPI 3.1, so the models' schemas go into the
document untouched (apispec targets OpenAPI 3.0's schema subset and needs a plugin per
field type); and the same model validates the request, so the document cannot drift from
what the code accepts. Responses are passed through their model too: a view returning
something outside its declared schema fails in tests, not in a client.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .. import auth

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api")
PREFIX = "/admin/api"
MAX_ID = 2**31 - 1  # ids beyond the database's integer are nobody's


class APIError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class ErrorOut(BaseModel):
    error: str
    error_description: str | None = None
    acr_values: str | None = None


def _ascii_int(value: Any) -> Any:
    """Query numbers are plain ASCII digits only ("٣" or "1e9" are not page numbers)."""
    if isinstance(value, str):
        if not re.fullmatch(r"-?[0-9]{1,12}", value):
            raise ValueError("a whole number of at most 12 digits")
        return int(value)
    return value


QueryInt = Annotated[int, BeforeValidator(_ascii_int)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Paging(Strict):
    page: QueryInt = Field(1, ge=1, le=1_000_000)
    per_page: QueryInt = Field(20, ge=1, le=200)


@dataclass
class Op:
    method: str
    path: str
    summary: str
    permission: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    out: Any
    status: int
    errors: tuple[int, ...]
    params: dict[str, dict] = field(default_factory=dict)
    content_type: str = "application/json"


OPS: list[Op] = []

_DESCRIPTIONS = {200: "OK", 201: "Created", 400: "The request is malformed or invalid.",
                 401: "No credentials: sign in (session) or send a bearer token.",
                 403: "Signed in, but not permitted (role, scope, level or CSRF).",
                 404: "No such object.", 409: "The object changed or is in another state.",
                 413: "The request body is too large."}


def _flask_rule(path: str, params: dict[str, dict]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        kind = "int:" if params.get(name, {}).get("type") == "integer" else ""
        return f"<{kind}{name}>"
    return re.sub(r"\{(\w+)\}", repl, path)


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise APIError(400, "invalid_request", f"{where}: {first.get('msg')}") from None


def _query_dict() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        out[key] = values[0] if len(values) == 1 else values
    return out


def endpoint(method: str, path: str, *, summary: str, permission: str, tag: str,
             out: Any, body: type[BaseModel] | None = None,
             query: type[BaseModel] | None = None, status: int = 200,
             errors: tuple[int, ...] = (), params: dict[str, dict] | None = None,
             content_type: str = "application/json") -> Callable:
    """Register ``view(**path_params, body=…, query=…)`` at ``PREFIX + path``."""
    params = params or {}

    def deco(fn: Callable) -> Callable:
        def view(**kwargs: Any):
            extra: dict[str, Any] = {}
            if query is not None:
                extra["query"] = _validate(query, _query_dict())
            if body is not None:
                data = request.get_json(silent=True) if request.data else {}
                if data is None:
                    raise APIError(400, "invalid_request", "the body must be JSON")
                extra["body"] = _validate(body, data)
            for name, schema in params.items():
                if schema.get("type") == "integer" and not 1 <= kwargs[name] <= MAX_ID:
                    raise APIError(404, "not_found", "No such object.")
            result = fn(**kwargs, **extra)
            if isinstance(result, Response):
                return result
            if out is None:
                return Response(status=204)
            from pydantic import TypeAdapter
            data = TypeAdapter(out).dump_python(TypeAdapter(out).validate_python(
                result, from_attributes=True), mode="json")
            return jsonify(data), status

        view.__name__ = fn.__name__
        guarded = auth.require(permission, api=True)(view)
        bp.add_url_rule(_flask_rule(path, params), endpoint=fn.__name__, view_func=guarded,
                        methods=[method.upper()])
        OPS.append(Op(method.lower(), path, summary, permission, tag, body, query, out,
                      status, tuple(errors), params, content_type))
        return fn
    return deco


@bp.errorhandler(APIError)
def _api_error(err: APIError):
    return jsonify(error=err.error, error_description=err.description), err.status


# -- the document ----------------------------------------------------------------------


class _Schemas:
    """Collects model schemas into components, with $refs pointing there."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, model: Any) -> dict[str, Any]:
        from pydantic import TypeAdapter

        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}",
                                                mode="serialization")
        for name, sub in schema.pop("$defs", {}).items():
            self.components[name] = sub
        name = getattr(model, "__name__", None)
        if name and isinstance(model, type) and "properties" in schema:
            self.components[name] = schema
            return {"$ref": f"#/components/schemas/{name}"}
        return schema

    def input(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}",
                                         mode="validation")
        for name, sub in schema.pop("$defs", {}).items():
            self.components[name] = sub
        self.components[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        out.append({"name": name, "in": "query", "required": name in required,
                    "schema": prop})
    return out


def openapi_document() -> dict[str, Any]:
    schemas = _Schemas()
    error_ref = schemas.ref(ErrorOut)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPS:
        responses: dict[str, Any] = {}
        if op.out is None:
            responses["204"] = {"description": "Done."}
        elif op.content_type == "application/json":
            responses[str(op.status)] = {"description": _DESCRIPTIONS.get(op.status, "OK"),
                                         "content": {"application/json": {
                                             "schema": schemas.ref(op.out)}}}
        else:  # an export: one media type per format
            responses[str(op.status)] = {"description": "OK", "content": {
                t: {"schema": {"type": "string"}}
                for t in ("text/csv", "application/x-ndjson")}}
        codes = {401, 403, *op.errors}
        if op.body is not None or op.query is not None or op.method != "get":
            codes.add(400)  # a write's CSRF refusal is a 400 too
        if op.params:
            codes.add(404)
        if op.body is not None:
            codes.add(413)
        for code in sorted(codes):
            responses[str(code)] = {"description": _DESCRIPTIONS[code],
                                    "content": {"application/json": {"schema": error_ref}}}
        item: dict[str, Any] = {
            "summary": op.summary, "operationId": f"{op.method}_{op.path}".replace("/", "_")
            .replace("{", "").replace("}", "").replace("-", "_"),
            "tags": [op.tag], "responses": responses,
            "description": f"Needs the permission `{op.permission}`.",
            "security": [{"ssoSession": []}] + (
                [{"adminClient": [scope]}] if (scope := _scope_of(op.permission)) else [])}
        parameters = [{"name": n, "in": "path", "required": True, "schema": s}
                      for n, s in op.params.items()]
        if op.query is not None:
            parameters += _query_params(op.query)
        if parameters:
            item["parameters"] = parameters
        if op.body is not None:
            item["requestBody"] = {"required": False, "content": {"application/json": {
                "schema": schemas.input(op.body)}}}
        paths.setdefault(PREFIX + op.path, {})[op.method] = item
    issuer = current_app.config["ISSUER"].rstrip("/")
    from ..roles import SCOPES
    return {
        "openapi": "3.1.0",
        "info": {"title": "统一身份认证平台 admin API", "version": "2",
                 "description": "People, relying parties, the review queue, the audit log, "
                                "signing keys and figures. Personal data is masked except "
                                "where an endpoint says otherwise (and audits it). "
                                "Authenticate with the SSO session cookie of a person "
                                "holding an admin role at acr L3 (send X-CSRFToken from "
                                "GET /admin/api/csrf on every POST/PUT/DELETE), or with a "
                                "client-credentials access token of an admin API client."},
        "servers": [{"url": issuer}],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "ssoSession": {"type": "apiKey", "in": "cookie",
                               "name": current_app.config["SSO_COOKIE_NAME"],
                               "description": "Plus the X-CSRFToken header on writes."},
                "adminClient": {"type": "oauth2", "flows": {"clientCredentials": {
                    "tokenUrl": issuer + "/token",
                    "scopes": {s: f"Admin API: {', '.join(p)}*" for s, p in SCOPES.items()}}}},
            }},
    }


def _scope_of(permission: str) -> str | None:
    from ..roles import SCOPES

    for scope, prefixes in SCOPES.items():
        if permission.startswith(prefixes):
            return scope
    return None  # session only (e.g. making an API client: a person must do that)
