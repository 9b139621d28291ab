"""`GET /api/v1/audit`: the audit log, newest first, for admin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from dashboard.deps import RequestContext, require
from dashboard.pagination import Cursor, Limit, Page, decode_cursor, page
from dashboard.params import Timestamp
from store import audit

router = APIRouter(prefix="/api/v1", tags=["audit"])


class AuditItem(BaseModel):
    id: int
    at: AwareDatetime
    actor: str
    actor_role: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    ip: str | None


@router.get("/audit", summary="Audit log entries, newest first (admin)")
def audit_log(
    ctx: Annotated[RequestContext, require("admin")],
    limit: Limit = 100,
    cursor: Cursor = None,
    since: Annotated[Timestamp | None, Query(description="only entries at or after this time")] = None,
    action: Annotated[str | None, Query(pattern=r"^[a-z0-9_.:-]{1,64}$", description="only this action")] = None,
    actor: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.@:-]{1,200}$", description="only this actor")] = None,
) -> Page[AuditItem]:
    after = decode_cursor(cursor, int)
    rows = audit.entries(
        ctx.conn, before_id=after[0] if after else None, since=since, action=action, actor=actor, limit=limit + 1
    )
    items, next_cursor = page(rows, limit, key=lambda e: (e.id,))
    return Page[AuditItem](
        items=[AuditItem.model_validate(e, from_attributes=True) for e in items], next_cursor=next_cursor
    )
