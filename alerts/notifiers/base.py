"""What every notifier shares: the message it is handed, how it reports failure, and care minimisation.

A notifier only sends. It does no retrying, no bookkeeping and reads no clock or environment: the
delivery loop (alerts/delivery.py) owns attempts, backoff and the outbox, and the composition root
hands the notifier its secrets. That keeps each notifier a small function of (message) -> sent or
an exception that says whether trying again could help.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

#: Categories whose alerts are about a person in a care setting (special-category health data).
CARE_CATEGORIES = frozenset({"fall", "inactivity", "bathroom_dwell", "night_activity"})

#: Keys that can carry a person's name. A care notification says what happened, where (room or
#: flat) and when, never who (docs/alerts.md, "Notifications"): these are dropped from a care
#: payload at any depth before any channel sees it, a backstop for an engine that put one in.
NAME_KEYS = frozenset({
    "name", "device_name", "display_name", "full_name", "first_name", "last_name",
    "resident", "resident_name", "person", "person_name", "patient", "patient_name",
})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery attempt of one outbox row.

    `body` is the outbox payload as it will be sent: with `idempotency_key` set to the row's key and,
    for a care alert, name-like keys removed. `now` is the delivery loop's clock at the attempt (the
    email's Date header comes from it, never from the system clock)."""

    outbox_id: int
    alert_id: int | None
    event: str
    channel: str
    route: str
    target: str
    body: Mapping[str, Any]
    idempotency_key: str
    attempt: int
    now: datetime


class DeliveryError(Exception):
    """A send that did not succeed. `permanent`: trying the same message again cannot succeed (a bad
    request, a refused recipient), so the row goes dead at once; otherwise it is retried with backoff.
    `retry_after` (seconds) is the receiver's own request (HTTP Retry-After), honoured up to the
    policy's longest delay."""

    permanent: ClassVar[bool] = False

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class TemporaryFailure(DeliveryError):
    """The channel is down, slow or busy: try again later."""

    permanent = False


class PermanentFailure(DeliveryError):
    """The message or its configuration is wrong: retrying the same thing cannot help."""

    permanent = True


class Notifier(Protocol):
    """Sends one message on one channel. Returns None, or a note worth keeping (recipients a server
    refused while accepting others); raises DeliveryError when it did not send. Called from worker
    threads of the delivery loop, so it must be safe to call concurrently."""

    channel: str  # the outbox `channel` it serves: 'webhook' or 'email'

    def send(self, message: Message) -> str | None: ...


#: Where `lookup` looks for a field the top level does not have: the engine nests the alert's own
#: fields under `alert` and the device's location (gully name and position, or care room and group)
#: under `where`.
NESTED = ("alert", "where")


def lookup(payload: Mapping[str, Any], key: str) -> Any:
    """`payload[key]`, else `payload["alert"][key]`, else `payload["where"][key]` (None if none has it),
    so notifiers read a flat payload and the engine's nested one alike."""
    value = payload.get(key)
    if value is not None:
        return value
    for section in NESTED:
        inner = payload.get(section)
        if isinstance(inner, Mapping) and inner.get(key) is not None:
            return inner[key]
    return None


def is_care(payload: Mapping[str, Any]) -> bool:
    """True for a notification about a care setting: the alert's device kind is `care`, its category
    is a care category, or it names a care room or group."""
    return (
        lookup(payload, "kind") == "care"
        or lookup(payload, "category") in CARE_CATEGORIES
        or bool(lookup(payload, "care_room"))
        or bool(lookup(payload, "care_group"))
    )


def without_names(value: Any) -> Any:
    """`value` with every NAME_KEYS entry removed from every mapping inside it (lists are walked)."""
    if isinstance(value, Mapping):
        return {k: without_names(v) for k, v in value.items() if k not in NAME_KEYS}
    if isinstance(value, list):
        return [without_names(v) for v in value]
    return value


def care_where(payload: Mapping[str, Any]) -> str:
    """Where a care alert is, in the only terms a notification may use: room/flat and group."""
    room, group = lookup(payload, "care_room"), lookup(payload, "care_group")
    parts = [f"room {room}" if room else "", str(group) if group else ""]
    return ", ".join(p for p in parts if p) or "room not registered"
