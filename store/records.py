"""Domain records shared by the store's writers and readers, and by every package that talks to them.

Write side (what ingest hands the writer): `UplinkRow`, `ReadingRow`, `EventRow`, `GatewaySeen`,
`DeviceSeen`, `DeadLetter`, bundled per uplink in `UplinkRecord`; `WriteResult` says what a batch did.
`DeviceEntry` is one row of a device registry file (what `lorawatch devices import` applies).
The per-value rows are NamedTuples, not frozen dataclasses: thousands are built per second on the
ingest hot path and a NamedTuple costs a plain tuple's construction, yet every field has a name.

Read side (what queries return, through psycopg's `class_row`): `Device`, `Uplink`, `Reading`,
`Event`, `Change`, `DeadLetterRow`. Frozen dataclasses: built once per row read, and immutable.

Notifications: `OutboxEntry` (what the alert engine enqueues) and `OutboxRow` (what a delivery loop
claims), see store/outbox.py.

Access (store/users.py, store/audit.py): `User`, `Credentials` (a user with its password hash, for
login only), `Principal` (who a session or API token authenticates), `ApiToken`, `AuditEntry`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

#: The measurement columns of `readings`, in table order (decoders' VOCABULARY names; a test keeps
#: this list, the migration and the vocabulary in step).
READING_COLUMNS: tuple[str, ...] = (
    "distance_mm", "distance2_mm", "distance_valid", "valid_samples", "battery_v", "battery_pct",
    "temperature_c", "humidity_pct", "illuminance_lux", "illuminance", "occupied", "occupancy_state",
    "motion", "motion_count", "tilted", "interrupt", "respiratory_rate", "radar_rssi", "fall_detected",
    "lying_down", "in_bed",
)  # fmt: skip
READING_INDEX = {name: i for i, name in enumerate(READING_COLUMNS)}

#: Dead-letter stages, in pipeline order (docs/ingest.md explains each).
STAGES = ("size", "topic", "json", "envelope", "decode", "range", "store", "internal")


# --- write side -------------------------------------------------------------------------------------


class UplinkRow(NamedTuple):
    """One row of `uplinks`, field for column. `application_id` is '' when the LNS names none."""

    time: datetime
    uplink_key: str
    application_id: str
    device_id: str
    source: str
    simulated: bool
    f_port: int | None
    f_cnt: int | None
    frm_payload: bytes | None
    session_key_id: str | None
    dev_addr: str | None
    frequency_hz: int | None
    spreading_factor: int | None
    bandwidth_hz: int | None
    rssi_dbm: float | None
    snr_db: float | None
    gateway_count: int
    decoded: str | None  # JSON text (the LNS's decoded payload), cast to jsonb on insert
    decoder: str | None
    rx_metadata: str | None  # JSON text


UPLINK_COLUMNS: tuple[str, ...] = UplinkRow._fields


class ReadingRow(NamedTuple):
    """The measurements of one device at one instant; `values` is indexed like READING_COLUMNS."""

    time: datetime
    values: list[Any]


class EventRow(NamedTuple):
    time: datetime
    kind: str
    event_key: str
    attrs: str  # canonical JSON text
    uplink_key: str


class GatewaySeen(NamedTuple):
    """One gateway (or Packet Broker forwarder) that heard an uplink, with the signal it heard."""

    key: str
    gateway_id: str
    eui: str | None
    packet_broker: bool
    rssi: float | None
    snr: float | None
    latitude: float | None
    longitude: float | None


@dataclass(slots=True)
class DeviceSeen:
    """What one uplink says about its device, for auto-registration and last-seen. A device is
    identified by (application_id, device_id): one name in two applications is two devices."""

    device_id: str
    source: str
    time: datetime
    application_id: str = ""
    dev_eui: str | None = None
    join_eui: str | None = None
    dev_addr: str | None = None
    model: str | None = None


@dataclass(slots=True)
class DeadLetter:
    """A rejected message (or, stage `range`, one refused value of a stored uplink) with its raw bytes.

    `field` names what was wrong (e.g. `uplink_message.f_cnt`) where one field was. The natural key
    hashes the topic and bytes (and, for a refused value, the field), so the same bad message seen
    again is one row with a higher `repeats`, never a second row."""

    time: datetime
    stage: str
    reason: str
    error_class: str | None
    topic: str | None
    device_id: str | None
    raw: bytes
    field: str | None = None

    @property
    def key(self) -> bytes:
        h = hashlib.sha256((self.topic or "").encode("utf-8", "replace"))
        h.update(b"\0")
        h.update(self.raw)
        if self.stage == "range":
            h.update(b"\0" + (self.field or self.reason).encode("utf-8", "replace"))
        return h.digest()


@dataclass(slots=True)
class UplinkRecord:
    """Everything one uplink writes. `topic` and `raw` let a record that the database refuses be
    dead-lettered whole; `dead_letters` are values refused inside an uplink that is stored."""

    uplink: UplinkRow
    device: DeviceSeen
    readings: list[ReadingRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    gateways: Sequence[GatewaySeen] = ()
    topic: str = ""
    raw: bytes = b""
    dead_letters: list[DeadLetter] = field(default_factory=list)


@dataclass(slots=True)
class WriteResult:
    """What one committed batch did. `change_id` is its change-feed entry (None: nothing new)."""

    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0  # whole messages (not `range` values)
    skipped: int = 0
    readings: int = 0
    events: int = 0
    reading_duplicates: int = 0  # readings rows already stored for that device and instant
    change_id: int | None = None
    #: fresh simulated uplinks whose device is registered: their readings and events are in the
    #: simulated_* tables, for the alert rules only
    simulated_keys: list[str] = field(default_factory=list)
    store_rejects: list[DeadLetter] = field(default_factory=list)
    value_rejects: list[DeadLetter] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """One row of a device registry file (store/registry_csv.py), parsed and checked on its own.

    `application_id` is None when the file has no such column and '' for an empty cell; either way the
    device is then found by its name (an empty cell prefers the device in no application over its
    twins: that is what `devices export` writes for one). `values` holds exactly the file's other
    columns, parsed: `kind` and text as str, numbers as float, None to set NULL. A column the file does
    not have is not in `values` and keeps what is stored. `line` is where the row starts in the file."""

    line: int
    device_id: str
    application_id: str | None
    values: dict[str, str | float | None]


# --- read side --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    id: int
    device_id: str
    application_id: str
    source: str
    kind: str
    brand_id: str | None
    model_id: str | None
    name: str | None
    latitude: float | None
    longitude: float | None
    sensor_height_mm: float | None
    outlet_invert_mm: float | None
    care_room: str | None
    care_group: str | None
    attributes: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    #: the same device_id is registered in another application too (told apart by application_id)
    shared_name: bool = False


@dataclass(frozen=True, slots=True)
class Uplink:
    time: datetime
    uplink_key: str
    application_id: str
    device_id: str
    source: str
    simulated: bool
    f_port: int | None
    f_cnt: int | None
    frm_payload: bytes | None
    decoder: str | None
    rssi_dbm: float | None
    snr_db: float | None
    gateway_count: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Reading:
    """One readings row with its device's user-facing identity. Unset measurements are None."""

    device_ref: int
    device_id: str
    application_id: str
    time: datetime
    distance_mm: float | None = None
    distance2_mm: float | None = None
    distance_valid: bool | None = None
    valid_samples: int | None = None
    battery_v: float | None = None
    battery_pct: float | None = None
    temperature_c: float | None = None
    humidity_pct: float | None = None
    illuminance_lux: float | None = None
    illuminance: int | None = None
    occupied: bool | None = None
    occupancy_state: int | None = None
    motion: bool | None = None
    motion_count: int | None = None
    tilted: bool | None = None
    interrupt: bool | None = None
    respiratory_rate: float | None = None
    radar_rssi: float | None = None
    fall_detected: bool | None = None
    lying_down: bool | None = None
    in_bed: bool | None = None


@dataclass(frozen=True, slots=True)
class Event:
    device_ref: int
    device_id: str
    application_id: str
    time: datetime
    kind: str
    event_key: str
    attrs: dict[str, Any]
    uplink_key: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One committed ingest batch in the change feed: what it stored, by device and time.

    `reading_keys` and `event_keys` are exactly the rows this batch inserted (device_ref, time), so a
    consumer that reads them never misses a late reading and never sees one twice; `seen` is each
    device's newest fresh uplink in the batch (alive, whether or not it carried a reading) through each
    set of gateways that carried it (one entry for most devices)."""

    id: int
    committed_at: datetime
    uplinks: int
    readings: int
    events: int
    reading_keys: list[tuple[int, datetime]]
    event_keys: list[tuple[int, datetime, str, str]]  # device_ref, time, kind, event_key
    seen: list[tuple[int, datetime]]
    #: uplink keys of the batch's simulated uplinks (their readings/events: simulated_readings/_events)
    simulated_uplinks: list[str] = field(default_factory=list)
    #: for each `seen` entry, its set of gateways (the entry's time is the newest uplink through it)
    seen_gateways: list[tuple[str, ...]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    id: int
    first_time: datetime
    last_time: datetime
    repeats: int
    stage: str
    reason: str
    field: str | None
    error_class: str | None
    topic: str | None
    device_id: str | None
    raw: bytes


# --- notification outbox ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A notification the engine enqueues (store.outbox.enqueue), in the transaction of the alert change
    that causes it. `payload` is the JSON body delivered; `idempotency_key` is unique, so enqueuing the
    same notification twice is a no-op, and it travels in the body so a receiver can drop a repeat."""

    alert_id: int | None
    event: str  # opened, repeat, escalated, acknowledged, resolved
    channel: str  # webhook | email
    route: str  # the rules file's route name (the notifier looks up its secret / SMTP server by it)
    target: str  # URL, or comma-separated addresses; never a secret
    payload: Mapping[str, Any]
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One `outbox` row as a delivery loop claimed it (store.outbox.claim_due). `attempts` already
    counts the attempt being made and `next_attempt_at` is the end of its lease. `simulated` is true
    when the payload says `"simulated": true` or its alert row is simulated: never sent anywhere real."""

    id: int
    alert_id: int | None
    event: str
    channel: str
    route: str
    target: str
    payload: dict[str, Any]
    idempotency_key: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    simulated: bool


@dataclass(frozen=True, slots=True)
class Alert:
    """One alerts row (see migration 0004). `subject` is `device:<ref>` or `gateway:<key>`."""

    id: int
    rule: str
    category: str
    severity: str
    subject: str
    device_ref: int | None
    device_id: str | None
    application_id: str | None
    gateway_id: str | None
    kind: str
    state: str
    simulated: bool
    late: bool
    opened_at: datetime
    firing_at: datetime | None
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_by: str | None
    assignee: str | None
    value: float | None
    summary: str
    details: dict[str, Any]
    device_alarm_id: str | None
    notified_at: datetime | None
    notifications: int
    escalation_level: int
    created_at: datetime
    updated_at: datetime

    @property
    def time_to_acknowledge(self) -> float | None:
        """Seconds from firing (notified) to a person acknowledging it; None until both happened."""
        if self.firing_at is None or self.acknowledged_at is None:
            return None
        return max(0.0, (self.acknowledged_at - self.firing_at).total_seconds())

    @property
    def time_to_resolve(self) -> float | None:
        """Seconds from opening to resolution; None while open."""
        return None if self.resolved_at is None else (self.resolved_at - self.opened_at).total_seconds()

    def as_json(self) -> dict[str, Any]:
        """The alert as JSON (`alerts list --json`, the API, notifications): times in ISO 8601, and
        `time_to_acknowledge_s` / `time_to_resolve_s`."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        out["time_to_acknowledge_s"] = self.time_to_acknowledge
        out["time_to_resolve_s"] = self.time_to_resolve
        return out


# --- access -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """One users row without its password hash (what listing and the API show)."""

    id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What login needs to judge a password: kept apart from `User` so a hash never travels further."""

    id: int
    username: str
    role: str
    disabled: bool
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request's session cookie or API token authenticates, with what it needs next: the
    session's CSRF token (None for API tokens, which are CSRF-exempt) and the credential's id (the
    session's token hash or the API token's id), to revoke or touch it."""

    user_id: int
    username: str
    role: str
    via: str  # 'session' | 'token'
    credential: bytes | str = field(repr=False)
    csrf_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One api_tokens row without its secret hash."""

    id: str
    username: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit_log row (migration 0007)."""

    id: int
    at: datetime
    actor: str
    actor_role: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    ip: str | None

    def as_json(self) -> dict[str, Any]:
        """The entry as JSON (`lorawatch audit --json`, the API): the time in ISO 8601."""
        values = {name: getattr(self, name) for name in self.__slots__}
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
