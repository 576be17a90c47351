"""The audit log through the API (audit administrator): filter, export, verify."""

from __future__ import annotations

from typing import Any, Literal

from flask import Response, g, stream_with_context
from pydantic import BaseModel, Field

from .. import audit_query
from .spec import Paging, Strict, endpoint


class AuditFilter(Strict):
    since: float | None = Field(None, ge=0, le=1e11, description="Unix time, inclusive.")
    until: float | None = Field(None, ge=0, le=1e11, description="Unix time, exclusive.")
    event: str | None = Field(None, max_length=64,
                              description='Exact, or a prefix ending in "." (login.).')
    actor: str | None = Field(None, max_length=255)
    subject: str | None = Field(None, max_length=255)
    client_id: str | None = Field(None, max_length=255)
    channel: Literal["web", "app", "kiosk", "hall", "hotline"] | None = None

    def filter(self) -> audit_query.Filter:
        return audit_query.Filter(**self.model_dump(exclude={"page", "per_page", "format"}))


class AuditQuery(AuditFilter, Paging):
    pass


class ExportQuery(AuditFilter):
    format: Literal["csv", "jsonl"] = "jsonl"


class Entry(BaseModel):
    seq: int
    ts: float
    event: str
    actor: str
    subject: str | None
    client_id: str | None
    ip: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditList(BaseModel):
    items: list[Entry]
    total: int
    page: int
    per_page: int


class Head(BaseModel):
    seq: int
    hash: str


class Verified(BaseModel):
    ok: bool
    count: int
    first_bad_seq: int | None
    reason: str | None
    head: Head
    pending: int


@endpoint("get", "/audit", summary="Audit entries, newest first (masked; this read is "
          "audited)", permission="audit.read", tag="audit", query=AuditQuery, out=AuditList)
def list_audit(query: AuditQuery):
    items, total = audit_query.page(query.filter(), query.page, query.per_page,
                                    actor=g.admin_id)
    return {"items": items, "total": total, "page": query.page, "per_page": query.per_page}


@endpoint("get", "/audit/export", summary="Export as CSV or JSON lines, oldest first (at most "
          "100 000 entries; audited)", permission="audit.export", tag="audit",
          query=ExportQuery, out=str, content_type="text/plain")
def export_audit(query: ExportQuery):
    lines = audit_query.export(query.filter(), query.format, actor=g.admin_id)
    mime = "text/csv" if query.format == "csv" else "application/x-ndjson"
    name = f"audit.{'csv' if query.format == 'csv' else 'jsonl'}"
    return Response(stream_with_context(lines), mimetype=mime + "; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@endpoint("post", "/audit/verify", summary="Verify the whole chain; the head to keep elsewhere",
          permission="audit.verify", tag="audit", out=Verified)
def verify_audit():
    return audit_query.verify(actor=g.admin_id)
