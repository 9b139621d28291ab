"""`GET /api/v1/silences`, `POST /api/v1/silences`, `POST /api/v1/silences/{id}/expire`
(docs/api.md).

A silence holds back the notifications of every alert its matchers match (the alerts are still
recorded), like `lorawatch silences add`. Which silences a role sees, makes and expires is row-level
security's (migration 0009): highways only silences pinned to `kind` gully or gateway, care only to
care or gateway, admin all. The route pins a highways or care silence to the role's fleet when the
matchers name no kind (alerts/silences.py says why it must), and refuses one beyond the role's reach
with a 403 naming the matcher; the database refuses it too if this code ever let one through.

Expiring is a POST, not a DELETE: the silence stays on record (who silenced what, when, until when).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from alerts.rules import Category, parse_duration
from alerts.silences import SILENCE_KEYS, OutOfReach, scoped
from dashboard.api.devices import AllowingRoute
from dashboard.deps import Acting
from dashboard.errors import ApiError, ErrorBody
from dashboard.pagination import Cursor, Limit, Page, decode_cursor, page
from store import alerts as alert_store
from store import audit
from store import silences as silence_store
from store.silences import Silence

#: AllowingRoute: this path has two routes (GET, POST), and a 405 must name both in `Allow`.
router = APIRouter(prefix="/api/v1", tags=["silences"], route_class=AllowingRoute)

SilenceId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the silence's id")]
_Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@/-]+$")]
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The silence has already ended or been expired"}
}


class Matchers(BaseModel):
    """What the silence matches: every matcher given must match (AND). At least one is required:
    silencing everything is not allowed. A highways or care silence without `kind` is pinned to the
    role's fleet (`gully`, `care`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    rule: _Name | SkipJsonSchema[None] = None
    category: Category | SkipJsonSchema[None] = None
    severity: Literal["critical", "warning", "info"] | SkipJsonSchema[None] = None
    device_id: _Name | SkipJsonSchema[None] = None
    application_id: _Name | SkipJsonSchema[None] = None
    gateway_id: _Name | SkipJsonSchema[None] = None
    kind: Literal["gully", "care", "unassigned", "gateway"] | SkipJsonSchema[None] = None
    care_group: _Name | SkipJsonSchema[None] = None

    @field_validator(*SILENCE_KEYS, mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        if value is None:  # leave a matcher out instead: null is not "match anything"
            msg = "must be a string (leave the matcher out instead of sending null)"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _not_everything(self) -> Matchers:
        if not self.given():
            msg = "a silence needs at least one matcher (silencing everything is not allowed)"
            raise ValueError(msg)
        return self

    def given(self) -> dict[str, str]:
        return {k: v for k in SILENCE_KEYS if (v := getattr(self, k)) is not None}


class NewSilence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: Matchers
    duration: str = Field(
        "2h",
        pattern=r"^[1-9][0-9]{0,4}[smhdw]$",
        description="how long from now: a number and one unit, s, m, h, d or w (30m, 2h, 1d); default 2h",
    )
    comment: str = Field("", max_length=500, pattern=r"^[^\x00]*$", description="why")


class SilenceItem(BaseModel):
    """A silence. `active`: in force now (started, not ended, not expired by hand)."""

    id: int
    matchers: dict[str, str]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    created_by: str
    comment: str
    expired_at: AwareDatetime | None
    created_at: AwareDatetime
    active: bool

    @classmethod
    def of(cls, s: Silence, now: datetime) -> SilenceItem:
        return cls(
            id=s.id,
            matchers={str(k): str(v) for k, v in s.matchers.items()},
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            created_by=s.created_by,
            comment=s.comment,
            expired_at=s.expired_at,
            created_at=s.created_at,
            active=s.active(now),
        )


def _not_found(silence_id: int) -> ApiError:
    return ApiError(404, "not_found", f"there is no silence {silence_id}")


@router.get("/silences", summary="Silences your role can see, newest first (active ones unless all=true)")
def list_silences(
    ctx: Acting,
    limit: Limit = 100,
    cursor: Cursor = None,
    all_: Annotated[bool, Query(alias="all", description="also the ended and expired ones")] = False,
) -> Page[SilenceItem]:
    after = decode_cursor(cursor, int)
    now = datetime.now(UTC)
    rows = silence_store.silences(
        ctx.conn, active_at=None if all_ else now, before_id=after[0] if after else None, limit=limit + 1
    )
    items, next_cursor = page(rows, limit, key=lambda s: (s.id,))
    return Page[SilenceItem](items=[SilenceItem.of(s, now) for s in items], next_cursor=next_cursor)


@router.post("/silences", status_code=201, summary="Silence matching alerts' notifications for a while")
def add_silence(ctx: Acting, body: NewSilence) -> SilenceItem:
    p = ctx.principal
    try:
        matchers = scoped(p.role, body.matchers.given())
    except OutOfReach as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    now = datetime.now(UTC)
    ends = now + parse_duration(body.duration)
    try:
        with ctx.conn.transaction():
            silence_id = alert_store.add_silence(ctx.conn, matchers, now, ends, p.username, body.comment)
    except psycopg.errors.InsufficientPrivilege:  # the policy's device check: not a device this role can see
        raise ApiError(
            403, "forbidden", f"matchers.device_id: your role can see no device called {matchers.get('device_id')}"
        ) from None
    audit.record(
        ctx.conn,
        actor=p.username,
        actor_role=p.role,
        action="silence_added",
        target=f"silence:{silence_id}",
        detail={"silence_id": silence_id, "keys": sorted(matchers), "kind": matchers.get("kind")},
        ip=ctx.ip,
    )
    made = silence_store.silence(ctx.conn, silence_id)
    assert made is not None  # just inserted, and the policy that let it in lets the role see it
    return SilenceItem.of(made, now)


@router.post("/silences/{silence_id}/expire", summary="End a silence now (it stays on record)", responses=_CONFLICT)
def expire_silence(ctx: Acting, silence_id: SilenceId) -> SilenceItem:
    p = ctx.principal
    if silence_store.silence(ctx.conn, silence_id) is None:
        raise _not_found(silence_id)
    now = datetime.now(UTC)
    if not alert_store.expire_silence(ctx.conn, silence_id, now):
        raise ApiError(409, "not_active", f"silence {silence_id} has already ended or been expired")
    audit.record(
        ctx.conn,
        actor=p.username,
        actor_role=p.role,
        action="silence_expired",
        target=f"silence:{silence_id}",
        detail={"silence_id": silence_id},
        ip=ctx.ip,
    )
    done = silence_store.silence(ctx.conn, silence_id)
    assert done is not None
    return SilenceItem.of(done, now)
