"""`GET /api/v1/alerts`, `GET /api/v1/alerts/{id}` and people's actions on an alert: `ack`, `assign`,
`note`, `resolve` (docs/api.md).

Visibility is row-level security's: every query runs under the user's role, so an alert the role
cannot see is a 404 exactly like one that does not exist (never a 403, which would confirm it exists).

The actions are the CLI's (`lorawatch alerts ack|assign|note|resolve`): the same `Engine` methods,
run on the request's connection under the user's role, which may update an alert's action columns
and append to its log and nothing else. The one thing those methods do that the role may not is
write the outbox: a resolve hands its "resolved" notice to the alert worker instead (`hand_over`,
alerts/engine.py), which makes the same notification the CLI makes at once.

Audit: every view of a care alert (one row per request, listing the ids a page showed) and every
action, with ids and states only, never a note's text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerts.engine import Engine, LifecycleError
from alerts.rules import CATEGORIES, Category, parse_rules
from dashboard.deps import Acting, RequestContext
from dashboard.errors import ApiError, ErrorBody
from dashboard.pagination import Cursor, Limit, Page, decode_cursor, page
from dashboard.params import Timestamp
from store import alert_views, audit
from store.alert_views import ShownAlert
from store.records import Alert

router = APIRouter(prefix="/api/v1", tags=["alerts"])

AlertState = Literal["pending", "firing", "acknowledged", "resolved"]
StateFilter = Literal["open", "pending", "firing", "acknowledged", "resolved"]
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the alert's id")]
#: Free text that PostgreSQL can store (no NUL) and a person would write.
NoteText = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]+$")]
PersonName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
DeviceName = Annotated[str, Query(pattern=r"^[A-Za-z0-9._:@-]{1,128}$", description="only this device's (device_id)")]

#: The people side of the engine needs no rules when it hands notices over (the worker decides who
#: hears what, with the rules file and the routes' environment it has): an empty rule set, parsed once.
_NO_RULES = parse_rules("version: 1\nrules: []\n", "<api>")
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "The alert's state does not allow this (e.g. acknowledging a resolved alert)",
    }
}


def _now() -> datetime:
    return datetime.now(UTC)


class AlertItem(BaseModel):
    """An alert. `opened_at`, `firing_at`, `resolved_at` are data times; `acknowledged_at` is when a
    person acted. `care`: the alert is care data (its views are audited)."""

    id: int
    rule: str
    category: Category
    severity: Literal["critical", "warning", "info"]
    state: AlertState
    kind: str
    subject: str
    device_ref: int | None
    device_id: str | None
    application_id: str | None
    gateway_id: str | None
    simulated: bool
    late: bool
    opened_at: AwareDatetime
    firing_at: AwareDatetime | None
    resolved_at: AwareDatetime | None
    acknowledged_at: AwareDatetime | None
    acknowledged_by: str | None
    resolved_by: str | None
    assignee: str | None
    value: float | None
    summary: str
    details: dict[str, Any]
    device_alarm_id: str | None
    notified_at: AwareDatetime | None
    notifications: int
    escalation_level: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    time_to_acknowledge_s: float | None
    time_to_resolve_s: float | None
    care: bool

    @classmethod
    def of(cls, alert: Alert, care: bool) -> AlertItem:
        fields = {name: getattr(alert, name) for name in alert.__slots__}
        return cls(
            **fields,
            time_to_acknowledge_s=alert.time_to_acknowledge,
            time_to_resolve_s=alert.time_to_resolve,
            care=care,
        )


class LogItem(BaseModel):
    """One entry of an alert's trail: who (`engine`, `clock`, `delivery` or a person's name) did what."""

    id: int
    at: AwareDatetime
    data_time: AwareDatetime | None
    actor: str
    action: str
    from_state: str | None
    to_state: str | None
    note: str | None


class AlertDetail(AlertItem):
    """An alert and its whole log, oldest first."""

    log: list[LogItem]


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: NoteText | None = None


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: PersonName
    note: NoteText | None = None


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: NoteText


def _not_found(alert_id: int) -> ApiError:
    return ApiError(404, "not_found", f"there is no alert {alert_id}")


def _record(ctx: RequestContext, action: str, target: str | None, detail: dict[str, Any]) -> None:
    p = ctx.principal
    audit.record(ctx.conn, actor=p.username, actor_role=p.role, action=action, target=target, detail=detail, ip=ctx.ip)


@router.get("/alerts", summary="Alerts your role can see, newest first")
def list_alerts(
    ctx: Acting,
    limit: Limit = 100,
    cursor: Cursor = None,
    state: Annotated[
        StateFilter | None, Query(description="one state, or `open` (pending, firing or acknowledged)")
    ] = None,
    category: Annotated[Category | None, Query(description=f"one of {', '.join(CATEGORIES)}")] = None,
    device: DeviceName | None = None,
    since: Annotated[Timestamp | None, Query(description="only alerts opened at or after this time")] = None,
) -> Page[AlertItem]:
    after = decode_cursor(cursor, datetime, int)
    rows = alert_views.alerts(
        ctx.conn,
        state=state,
        category=category,
        device_id=device,
        since=since,
        after=(after[0], after[1]) if after else None,
        limit=limit + 1,
    )
    shown, next_cursor = page(rows, limit, key=lambda s: (s.alert.opened_at, s.alert.id))
    care = [s.alert.id for s in shown if s.care]
    if care:
        _record(ctx, "care_alerts_listed", None, {"alert_ids": care})
    return Page[AlertItem](items=[AlertItem.of(s.alert, s.care) for s in shown], next_cursor=next_cursor)


@router.get("/alerts/{alert_id}", summary="One alert with its log (who did what, when, why)")
def get_alert(ctx: Acting, alert_id: AlertId) -> AlertDetail:
    shown = alert_views.alert(ctx.conn, alert_id)
    if shown is None:
        raise _not_found(alert_id)
    if shown.care:
        _record(ctx, "care_alert_viewed", f"alert:{alert_id}", {"alert_id": alert_id})
    log = [LogItem.model_validate(e, from_attributes=True) for e in alert_views.log(ctx.conn, alert_id)]
    return AlertDetail(**AlertItem.of(shown.alert, shown.care).model_dump(), log=log)


def _act(
    ctx: RequestContext,
    alert_id: int,
    action: str,
    do: Callable[[Engine, str], Alert],
    detail: dict[str, Any],
) -> AlertItem:
    """Run one of the engine's people actions as the user, or answer 404 (not visible) / 409 (refused),
    and audit it in the same transaction."""
    shown: ShownAlert | None = alert_views.alert(ctx.conn, alert_id)
    if shown is None:
        raise _not_found(alert_id)
    try:
        updated = do(Engine(_NO_RULES, _now), ctx.principal.username)
    except LifecycleError as exc:
        raise ApiError(409, "invalid_transition", str(exc)) from None
    _record(
        ctx,
        action,
        f"alert:{alert_id}",
        {"alert_id": alert_id, "kind": shown.alert.kind, "from_state": shown.alert.state, "to_state": updated.state}
        | detail,
    )
    return AlertItem.of(updated, shown.care)


OptionalAction = Annotated[ActionBody | None, Body(description="optional: `note`, why or what was done")]


@router.post(
    "/alerts/{alert_id}/ack", summary="Acknowledge: you have it, repeats and escalation stop", responses=_CONFLICT
)
def acknowledge(ctx: Acting, alert_id: AlertId, body: OptionalAction = None) -> AlertItem:
    note = body.note if body else None
    return _act(
        ctx,
        alert_id,
        "alert_acknowledged",
        lambda engine, by: engine.acknowledge(ctx.conn, alert_id, by, note),
        {"note": note is not None},
    )


@router.post("/alerts/{alert_id}/assign", summary="Give an open alert to someone", responses=_CONFLICT)
def assign(ctx: Acting, alert_id: AlertId, body: AssignBody) -> AlertItem:
    return _act(
        ctx,
        alert_id,
        "alert_assigned",
        lambda engine, by: engine.assign(ctx.conn, alert_id, body.assignee, by, body.note),
        {"assignee": body.assignee, "note": body.note is not None},
    )


@router.post("/alerts/{alert_id}/note", summary="Add a note to an alert, open or resolved", responses=_CONFLICT)
def note(ctx: Acting, alert_id: AlertId, body: NoteBody) -> AlertItem:
    return _act(
        ctx, alert_id, "alert_noted", lambda engine, by: engine.note(ctx.conn, alert_id, by, body.text), {"note": True}
    )


@router.post(
    "/alerts/{alert_id}/resolve",
    summary="Resolve by hand (whoever was told of it hears it is over)",
    responses=_CONFLICT,
)
def resolve(ctx: Acting, alert_id: AlertId, body: OptionalAction = None) -> AlertItem:
    note = body.note if body else None
    return _act(
        ctx,
        alert_id,
        "alert_resolved",
        lambda engine, by: engine.resolve(ctx.conn, alert_id, by, note, hand_over=True),
        {"note": note is not None},
    )
