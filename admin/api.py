"""The admin REST API (``/admin/api/…``), described at ``/admin/api/openapi.json``.

Authentication is the console's own: the browser's single sign-on session with an
admin role at ``L3`` (:mod:`admin.auth`), and on every POST the CSRF token in an
``X-CSRFToken`` header (``GET /admin/api/csrf`` hands it out; the app-wide
``CSRFProtect`` checks it). No bearer tokens: an admin action is always a person at a
verified level, never a stored client secret, and one scheme means one thing to audit.
Errors are JSON ``{"error": …, "error_description": …}``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from flask_wtf.csrf import CSRFError, generate_csrf

from connectors import review
from connectors import review_listing as q
from idp.extensions import db
from idp.http_limits import bounded_int

from . import auth

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api")
MAX_PAGE = 1_000_000


def _error(error: str, description: str, status: int):
    return jsonify(error=error, error_description=description), status


@bp.errorhandler(CSRFError)
def _csrf(err):
    return _error("invalid_csrf_token", "Send the token of GET /admin/api/csrf in X-CSRFToken.",
                  400)


@bp.errorhandler(404)
def _missing(err):
    return _error("not_found", "No such review item or path.", 404)


@bp.get("/csrf")
@auth.require(api=True)
def csrf_token():
    return jsonify(csrf_token=generate_csrf())


@bp.get("/review")
@auth.require(api=True)
def list_review():
    state = request.args.get("state", "pending")
    if state not in (*review.STATES, "all"):
        return _error("invalid_request", f"state must be one of {', '.join(review.STATES)}, all",
                      400)
    # Bounded above too: the offset (page - 1) × per_page goes to the database, which
    # refuses a number wider than its integer type with an error, not an empty page.
    page = bounded_int(request.args.get("page"), 1, 1, MAX_PAGE)
    per_page = bounded_int(request.args.get("per_page"), q.PER_PAGE, 1, 200)
    if page is None or per_page is None:
        return _error("invalid_request",
                      f"page and per_page must be whole numbers, 1 ≤ page ≤ {MAX_PAGE}, "
                      "1 ≤ per_page ≤ 200", 400)
    rows, total = q.list_items(state, request.args.get("source") or None,
                               request.args.get("reason") or None, page, per_page)
    return jsonify(items=[r.__dict__ for r in rows], total=total, page=page,
                   per_page=per_page)


@bp.get("/review/<int:item_id>")
@auth.require(api=True)
def get_item(item_id: int):
    info = q.detail(item_id)
    if info is None:
        return _missing(None)
    return jsonify(info.as_dict())


@bp.post("/review/<int:item_id>/<action>")
@auth.require(api=True)
def decide(item_id: int, action: str):
    if action not in ("approve", "reject", "undo", "merge"):
        return _missing(None)
    body = request.get_json(silent=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        return _error("invalid_request", "the body must be a JSON object", 400)
    note = body.get("note") or ""
    person_id, uscc = body.get("person_id"), body.get("uscc")
    if not all(isinstance(v, str) for v in (note, person_id or "", uscc or "")):
        return _error("invalid_request", "note, person_id and uscc must be strings", 400)
    kind = review.kind(item_id)
    if kind is None:
        return _missing(None)
    kw: dict = {"by": g.admin_id, "note": note.strip()[:500]}
    if kind == review.ORGANISATION:
        if person_id:
            return _error("invalid_request", "this item is an organisation's legacy account: "
                          "name the organisation by its credit code (uscc)", 400)
        if action == "merge" and not uscc:
            return _error("invalid_request", "uscc is required", 400)
        if action in ("approve", "merge"):
            kw["uscc"] = uscc or None
    else:
        if uscc:
            return _error("invalid_request", "this item is a person's legacy account: name "
                          "the person (person_id)", 400)
        if action == "approve":
            kw["person_id"] = person_id
        elif action == "merge":
            if not person_id:
                return _error("invalid_request", "person_id is required", 400)
            kw["person_id"], kw["force"] = person_id, body.get("force") is True
            if not auth.may_merge(item_id, person_id, kw["force"]):
                return _error("access_denied", "merging two persons or forcing needs the "
                              "admin role", 403)
    try:
        item = getattr(review, action)(item_id, **kw)
    except review.InvalidTarget as exc:
        db.session.rollback()
        return _error("invalid_request", str(exc), 400)
    except review.ReviewError as exc:
        db.session.rollback()
        return _error("conflict", str(exc), 409)
    return jsonify(id=item.id, state=item.state, kind=kind,
                   merge_record=(item.outcome or {}).get("merge_record"))


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


def _op(summary: str, *, body: dict | None = None, params: list | None = None) -> dict:
    op: dict = {"summary": summary, "security": [{"ssoSession": [], "csrfHeader": []}],
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {
                        "schema": {"type": "object"}}}},
                    "401": {"$ref": "#/components/responses/Error"},
                    "403": {"$ref": "#/components/responses/Error"},
                    "404": {"$ref": "#/components/responses/Error"},
                    "409": {"$ref": "#/components/responses/Error"}}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": body}}}
    return op


def _item_id() -> dict:
    return {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def openapi_document() -> dict:
    note = {"type": "string", "maxLength": 500, "description": "Why (kept in the audit log)."}
    uscc = {"type": "string", "description": "Unified social credit code (GB 32100) of the "
                                             "organisation, for an organisation's item."}
    query = [{"name": n, "in": "query", "required": False, "schema": s} for n, s in (
        ("state", {"type": "string", "enum": [*review.STATES, "all"], "default": "pending"}),
        ("source", {"type": "string"}), ("reason", {"type": "string"}),
        ("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1}),
        ("per_page", {"type": "integer", "minimum": 1, "maximum": 200,
                      "default": q.PER_PAGE}))]
    review_path = "/admin/api/review/{item_id}"
    return {
        "openapi": "3.1.0",
        "info": {"title": "统一身份认证平台 admin API", "version": "1",
                 "description": "The legacy-account review queue. Personal data is always "
                                "masked. Authenticate with the SSO session cookie of a person "
                                "holding an admin role at acr L3; send X-CSRFToken on POST."},
        "paths": {
            "/admin/api/csrf": {"get": _op("The CSRF token for this session")},
            "/admin/api/review": {"get": _op("List review items", params=query)},
            review_path: {"get": _op("One review item with its candidates",
                                     params=[_item_id()])},
            review_path + "/approve": {"post": _op(
                "Approve: link to person_id, the single candidate, or a new person (an "
                "organisation's item: to uscc, the single candidate organisation, or a new "
                "organisation from the row's credit code)",
                params=[_item_id()], body={"type": "object", "properties": {
                    "person_id": {"type": "string"}, "uscc": uscc, "note": note}})},
            review_path + "/reject": {"post": _op(
                "Reject", params=[_item_id()],
                body={"type": "object", "properties": {"note": note}})},
            review_path + "/merge": {"post": _op(
                "Link to person_id; a person the account was linked to is merged into it. "
                "An organisation's item: link to the organisation with credit code uscc",
                params=[_item_id()], body={"type": "object", "properties": {
                    "person_id": {"type": "string"}, "uscc": uscc,
                    "force": {"type": "boolean"}, "note": note}})},
            review_path + "/undo": {"post": _op(
                "Undo the decision (and a person merge it made)", params=[_item_id()],
                body={"type": "object", "properties": {"note": note}})},
        },
        "components": {
            "securitySchemes": {
                "ssoSession": {"type": "apiKey", "in": "cookie",
                               "name": current_app.config["SSO_COOKIE_NAME"]},
                "csrfHeader": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"}},
            "responses": {"Error": {"description": "Error", "content": {"application/json": {
                "schema": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"},
                    "error_description": {"type": "string"}}}}}}}},
    }
