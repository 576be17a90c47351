"""The review queue through the API: list (filters, paging, counts), one item, decide."""

from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import BaseModel, Field

from connectors import review
from connectors import review_listing as q
from idp.extensions import db

from .. import auth
from .spec import APIError, Paging, Strict, endpoint

ITEM = {"item_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}


class ReviewQuery(Paging):
    state: Literal["pending", "approved", "rejected", "merged", "superseded", "all"] = "pending"
    source: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=64)


class ReviewList(BaseModel):
    items: list[q.ItemRow]
    total: int
    page: int
    per_page: int


class Decision(Strict):
    note: str = Field("", max_length=500, description="Why (kept in the audit log).")
    person_id: str | None = Field(None, max_length=32)
    uscc: str | None = Field(None, max_length=40,
                             description="Credit code of the organisation (an "
                                         "organisation's item).")
    force: bool = False


class Decided(BaseModel):
    id: int
    state: str
    kind: str
    merge_record: int | None = None


@endpoint("get", "/review", summary="List review items", permission="review.read",
          tag="review", query=ReviewQuery, out=ReviewList)
def list_review(query: ReviewQuery):
    rows, total = q.list_items(query.state, query.source or None, query.reason or None,
                               query.page, query.per_page)
    return {"items": rows, "total": total, "page": query.page, "per_page": query.per_page}


@endpoint("get", "/review/{item_id}", summary="One review item with its candidates",
          permission="review.read", tag="review", out=q.ItemDetail, params=ITEM)
def get_item(item_id: int):
    info = q.detail(item_id)
    if info is None:
        raise APIError(404, "not_found", "No such review item.")
    return info


def _decide(item_id: int, action: str, body: Decision):
    kind = review.kind(item_id)
    if kind is None:
        raise APIError(404, "not_found", "No such review item.")
    kw: dict = {"by": g.admin_id, "note": body.note.strip()}
    if kind == review.ORGANISATION:
        if body.person_id:
            raise APIError(400, "invalid_request", "this item is an organisation's legacy "
                           "account: name the organisation by its credit code (uscc)")
        if action == "merge" and not body.uscc:
            raise APIError(400, "invalid_request", "uscc is required")
        if action in ("approve", "merge"):
            kw["uscc"] = body.uscc or None
    else:
        if body.uscc:
            raise APIError(400, "invalid_request", "this item is a person's legacy account: "
                           "name the person (person_id)")
        if action == "approve":
            kw["person_id"] = body.person_id
        elif action == "merge":
            if not body.person_id:
                raise APIError(400, "invalid_request", "person_id is required")
            kw["person_id"], kw["force"] = body.person_id, body.force
            if not auth.may_merge(item_id, body.person_id, body.force):
                raise APIError(403, "access_denied",
                               "merging two persons or forcing needs the admin role")
    try:
        item = getattr(review, action)(item_id, **kw)
    except review.InvalidTarget as exc:
        db.session.rollback()
        raise APIError(400, "invalid_request", str(exc)) from None
    except review.ReviewError as exc:
        db.session.rollback()
        raise APIError(409, "conflict", str(exc)) from None
    return {"id": item.id, "state": item.state, "kind": kind,
            "merge_record": (item.outcome or {}).get("merge_record")}


def _action(action: str, summary: str):
    def view(item_id: int, body: Decision):
        return _decide(item_id, action, body)
    view.__name__ = f"review_{action}"
    endpoint("post", f"/review/{{item_id}}/{action}", summary=summary,
             permission="review.decide", tag="review", body=Decision, out=Decided,
             params=ITEM, errors=(409,))(view)


_action("approve", "Approve: link to person_id, the single candidate, or a new person (an "
                   "organisation's item: to uscc, the single candidate, or a new organisation)")
_action("reject", "Reject")
_action("merge", "Link to person_id (a person the account was linked to is merged into it); "
                 "an organisation's item: to the organisation with credit code uscc")
_action("undo", "Undo the decision (and a person merge it made)")
