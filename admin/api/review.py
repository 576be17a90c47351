"""The review queue through the API: list (filters, paging, counts), one item, decide,
and bulk decisions on a filtered set — the console's own service
(:mod:`admin.review_queue`): confirmed against the count the caller saw, at most
``BULK_LIMIT`` items a request, audited, and undone by batch."""

from __future__ import annotations

from typing import Literal

from flask import g
from pydantic import BaseModel, Field

from connectors import review
from connectors import review_listing as q
from idp.extensions import db

from .. import auth, review_queue
from .spec import APIError, Paging, Strict, endpoint

ITEM = {"item_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}
BATCH = {"batch": {"type": "string", "minLength": 1, "maxLength": 32,
                   "pattern": "^[0-9a-f]{1,32}$"}}


class QueueFields(Strict):
    """Which items: the same filter as the console's queue page."""

    source: str | None = Field(None, max_length=64, description="Source system, exactly.")
    reason: str | None = Field(None, max_length=64, description="Rule code, exactly.")
    since: float | None = Field(None, ge=0, le=1e11,
                                description="Queued at or after (unix time).")
    until: float | None = Field(None, ge=0, le=1e11, description="Queued before (unix time).")
    q: str | None = Field(None, max_length=64,
                          description="A legacy id, or its beginning.")

    def queue_filter(self, state: str) -> review_queue.QueueFilter:
        return review_queue.QueueFilter(state=state, source=self.source or None,
                                        reason=self.reason or None, since=self.since,
                                        until=self.until, search=self.q or None)


class ReviewQuery(QueueFields, Paging):
    state: Literal["pending", "approved", "rejected", "merged", "superseded", "all"] = "pending"


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
    rows, total = review_queue.listing(query.queue_filter(query.state), query.page,
                                       query.per_page)
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


# -- bulk decisions ----------------------------------------------------------------------


class BulkBody(QueueFields):
    action: Literal["approve", "reject"]
    expected: int = Field(ge=0, le=2**31 - 1,
                          description="How many items the filter matched when you looked "
                                      "(the total of GET /admin/api/review with the same "
                                      "filter): refused with 409 if it matches another "
                                      "number now.")
    state: Literal["pending"] = Field("pending", description="Only pending items are "
                                                             "decided in bulk.")
    note: str = Field("", max_length=500, description="Why (kept in the audit log).")


class BulkOut(BaseModel):
    batch: str | None = Field(description="Undo them all with POST "
                                          "/admin/api/review/bulk/{batch}/undo; null when "
                                          "nothing was decided.")
    action: str
    done: int
    refused: int = Field(description="Items that could not be decided this way (several "
                                     "candidates, …); they stay pending.")
    remaining: int = Field(description="Matched items beyond the limit, not attempted: the "
                                       "filter now matches remaining + refused.")
    limit: int = Field(description="At most this many items are decided per request.")


class UndoBody(Strict):
    note: str = Field("", max_length=500, description="Why (kept in the audit log).")


class BatchUndone(BaseModel):
    batch: str
    undone: int = Field(description="Items put back to pending (those decided otherwise "
                                    "since are left as they are).")


@endpoint("post", "/review/bulk", summary="Approve or reject every pending item a filter "
          f"matches, at most {review_queue.BULK_LIMIT} a request (confirmed by the count you "
          "saw; audited; undoable by batch)", permission="review.decide", tag="review",
          body=BulkBody, out=BulkOut, errors=(409,))
def bulk_decide(body: BulkBody):
    try:
        result = review_queue.bulk(body.queue_filter(body.state), body.action, by=g.admin_id,
                                   note=body.note.strip(), expected=body.expected)
    except review_queue.CountChanged as exc:
        raise APIError(409, "conflict", str(exc)) from None
    except review_queue.BulkError as exc:
        raise APIError(400, "invalid_request", str(exc)) from None
    return {"batch": result.batch if result.done else None, "action": body.action,
            "done": result.done, "refused": result.refused, "remaining": result.remaining,
            "limit": review_queue.BULK_LIMIT}


@endpoint("post", "/review/bulk/{batch}/undo", summary="Undo a bulk decision: every item of "
          "the batch still as the batch left it goes back to pending", permission="review.decide",
          tag="review", body=UndoBody, out=BatchUndone, params=BATCH)
def bulk_undo(batch: str, body: UndoBody):
    if not review_queue.batch_known(batch):
        raise APIError(404, "not_found", "No item carries this batch.")
    return {"batch": batch,
            "undone": review_queue.undo_batch(batch, by=g.admin_id, note=body.note.strip())}
