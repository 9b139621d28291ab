"""`GET /api/v1/dead-letters` and `GET /api/v1/dead-letters/{id}`: messages ingest refused, for admin
(docs/api.md).

Admin only, twice over: `require("admin")` answers 403 to the other roles, and only lorawatch_admin
has a grant on the table (migration 0009). A dead letter's raw bytes may be anything a device or the
network server sent, care payloads included, so no other role may read them. A page lists the
messages without their bytes; one message carries them as base64 (they are rarely valid UTF-8), and
reading one is audited.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel

from dashboard.deps import RequestContext, require
from dashboard.errors import ApiError
from dashboard.pagination import Cursor, Limit, Page, decode_cursor, page
from dashboard.params import Timestamp
from store import audit, dead_letters

router = APIRouter(prefix="/api/v1", tags=["dead-letters"])

Admin = Annotated[RequestContext, require("admin")]


class DeadLetterItem(BaseModel):
    """A refused message without its bytes. `stage`: where it was refused (topic, json, envelope,
    decode, range, store, ...); `repeats`: how often the same bytes came, first and last time."""

    id: int
    first_time: AwareDatetime
    last_time: AwareDatetime
    repeats: int
    stage: str
    reason: str
    field: str | None
    error_class: str | None
    topic: str | None
    device_id: str | None
    size: int


class DeadLetterDetail(DeadLetterItem):
    """A refused message with its raw bytes, base64 (RFC 4648, with padding)."""

    raw_base64: str


@router.get("/dead-letters", summary="Messages ingest refused, newest first (admin)")
def list_dead_letters(
    ctx: Admin,
    limit: Limit = 100,
    cursor: Cursor = None,
    stage: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$", description="only this stage")] = None,
    device: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9._:@-]{1,128}$", description="only this device's (device_id)")
    ] = None,
    since: Annotated[Timestamp | None, Query(description="only those last seen at or after this time")] = None,
) -> Page[DeadLetterItem]:
    after = decode_cursor(cursor, int)
    rows = dead_letters.dead_letters(
        ctx.conn, stage=stage, device_id=device, since=since, before_id=after[0] if after else None, limit=limit + 1
    )
    items, next_cursor = page(rows, limit, key=lambda d: (d.id,))
    return Page[DeadLetterItem](
        items=[DeadLetterItem.model_validate(d, from_attributes=True) for d in items], next_cursor=next_cursor
    )


@router.get("/dead-letters/{dead_letter_id}", summary="One refused message with its raw bytes (admin)")
def get_dead_letter(
    ctx: Admin, dead_letter_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="the dead letter's id")]
) -> DeadLetterDetail:
    row = dead_letters.dead_letter(ctx.conn, dead_letter_id)
    if row is None:
        raise ApiError(404, "not_found", f"there is no dead letter {dead_letter_id}")
    raw = bytes(row.raw)
    # The bytes may be any message a device sent, a care sensor's included: every read is on record.
    p = ctx.principal
    audit.record(ctx.conn, actor=p.username, actor_role=p.role, action="dead_letter_viewed",
                 target=f"dead_letter:{row.id}", detail={"dead_letter_id": row.id}, ip=ctx.ip)  # fmt: skip
    return DeadLetterDetail(
        id=row.id,
        first_time=row.first_time,
        last_time=row.last_time,
        repeats=row.repeats,
        stage=row.stage,
        reason=row.reason,
        field=row.field,
        error_class=row.error_class,
        topic=row.topic,
        device_id=row.device_id,
        size=len(raw),
        raw_base64=base64.b64encode(raw).decode("ascii"),
    )
