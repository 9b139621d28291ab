"""The device registry as the API shows and changes it: devices with their state, found by name,
listed with filters a page at a time, created, updated and deleted.

Every query runs on the caller's connection, inside the request's `SET LOCAL ROLE`, so row-level
security decides which devices exist for it: a highways request never finds a care device, and a
twin in another application that the role cannot see is not counted as one.

Creates and updates go through the registry import (store/registry.py) as a one-row file: the same
checks, the same messages and the same rules for finding a device by name as `lorawatch devices
import`, whichever way a device enters the registry.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from store import registry, registry_csv
from store.registry import ImportResult

#: What `state` can be (docs/api.md): admin has not given it a kind yet; registered but never
#: heard; heard, but not within OFFLINE_AFTER; heard within it.
STATES: tuple[str, ...] = ("unassigned", "never_seen", "offline", "active")
#: A registered device silent this long is `offline`. A coarse registry view for lists and filters:
#: the offline alert rules judge each device by its own reporting interval and are what notifies.
OFFLINE_AFTER = timedelta(hours=24)

_COLUMNS = """
d.id, d.device_id, d.application_id, d.source, d.kind, d.sealed, d.name, d.brand_id, d.model_id,
d.latitude, d.longitude, d.sensor_height_mm, d.outlet_invert_mm, d.care_room, d.care_group, d.dev_eui,
d.attributes, d.first_seen, d.last_seen, d.created_at,
count(*) OVER (PARTITION BY d.device_id) > 1 AS shared_name,
CASE WHEN d.kind = 'unassigned' THEN 'unassigned'
     WHEN d.last_seen IS NULL THEN 'never_seen'
     WHEN d.last_seen < now() - %(offline)s::interval THEN 'offline'
     ELSE 'active' END AS state"""
_ALL = f"SELECT {_COLUMNS} FROM devices d"


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One device as the API shows it. `sealed`: it is, or once was, a care device (docs/security.md);
    `shared_name`: another device the caller can see has the same device_id in another application."""

    id: int
    device_id: str
    application_id: str
    source: str
    kind: str
    sealed: bool
    name: str | None
    brand_id: str | None
    model_id: str | None
    latitude: float | None
    longitude: float | None
    sensor_height_mm: float | None
    outlet_invert_mm: float | None
    care_room: str | None
    care_group: str | None
    dev_eui: str | None
    attributes: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    created_at: datetime
    shared_name: bool
    state: str

    @property
    def is_care(self) -> bool:
        """Special-category data: a care device, or one that ever was (every view of it is audited)."""
        return self.kind == "care" or self.sealed

    @property
    def label(self) -> str:
        """`application_id/device_id`, the name the audit log and the rules' overrides use."""
        return f"{self.application_id}/{self.device_id}"


def _params(**values: Any) -> dict[str, Any]:
    return {"offline": OFFLINE_AFTER, **values}


def named(conn: psycopg.Connection, device_id: str) -> list[DeviceView]:
    """The visible devices with this device_id, by application: none, one, or twins."""
    query = f"SELECT * FROM ({_ALL}) d WHERE device_id = %(name)s ORDER BY application_id"
    with conn.cursor(row_factory=class_row(DeviceView)) as cur:
        return cur.execute(query, _params(name=device_id)).fetchall()


def by_ref(conn: psycopg.Connection, ref: int) -> DeviceView | None:
    query = f"SELECT * FROM ({_ALL}) d WHERE id = %(ref)s"
    with conn.cursor(row_factory=class_row(DeviceView)) as cur:
        return cur.execute(query, _params(ref=ref)).fetchone()


def by_refs(conn: psycopg.Connection, refs: Sequence[int]) -> dict[int, DeviceView]:
    """The visible devices among `refs`, by id (one query for a page listing many alerts)."""
    if not refs:
        return {}
    query = f"SELECT * FROM ({_ALL}) d WHERE id = ANY(%(refs)s)"
    with conn.cursor(row_factory=class_row(DeviceView)) as cur:
        return {d.id: d for d in cur.execute(query, _params(refs=list(refs))).fetchall()}


def page(
    conn: psycopg.Connection,
    *,
    kind: str | None = None,
    state: str | None = None,
    gateway: str | None = None,
    application_id: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 100,
) -> list[DeviceView]:
    """Visible devices by (device_id, application_id), after that key, at most `limit`. `gateway`: only
    devices whose newest uplink that gateway heard (`api_devices_last_heard_via`, migration 0008)."""
    where: list[sql.Composable] = []
    values: dict[str, Any] = {"limit": limit}
    if kind is not None:
        where.append(sql.SQL("kind = %(kind)s"))
        values["kind"] = kind
    if state is not None:
        where.append(sql.SQL("state = %(state)s"))
        values["state"] = state
    if application_id is not None:
        where.append(sql.SQL("application_id = %(app)s"))
        values["app"] = application_id
    if gateway is not None:
        where.append(sql.SQL("id IN (SELECT public.api_devices_last_heard_via(%(gateway)s))"))
        values["gateway"] = gateway
    if after is not None:
        where.append(sql.SQL("(device_id, application_id) > (%(after_name)s, %(after_app)s)"))
        values["after_name"], values["after_app"] = after
    query = sql.SQL("SELECT * FROM ({all}) d{where} ORDER BY device_id, application_id LIMIT %(limit)s").format(
        all=sql.SQL(_ALL),
        where=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
    )
    with conn.cursor(row_factory=class_row(DeviceView)) as cur:
        return cur.execute(query, _params(**values)).fetchall()


def every(conn: psycopg.Connection) -> list[DeviceView]:
    """Every visible device, by name then application (what an export writes)."""
    with conn.cursor(row_factory=class_row(DeviceView)) as cur:
        return cur.execute(_ALL + " ORDER BY device_id, application_id", _params()).fetchall()


def export_csv(devices: Sequence[DeviceView]) -> str:
    """Devices as a registry file (registry_csv.EXPORT_HEADER), which `import_devices` takes back as a no-op."""
    out = io.StringIO()
    registry_csv.write_rows(({c: getattr(d, c) for c in registry_csv.EXPORT_HEADER} for d in devices), out)
    return out.getvalue()


# --- writes (admin) ----------------------------------------------------------------------------------


class AlreadyRegistered(Exception):
    """A create names a device that exists (or would adopt one registered in no application)."""

    def __init__(self, device: DeviceView) -> None:
        super().__init__(f"{device.label} is already registered")
        self.device = device


def _cell(value: object) -> str:
    """A registry cell: floats exactly (repr round-trips), None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def registry_row(device_id: str, application_id: str, values: Mapping[str, object]) -> str:
    """One device as a one-row registry file with exactly these columns: columns not given keep what
    is stored, as in any import."""
    columns = [c for c in registry_csv.VALUE_COLUMNS if c in values]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["device_id", "application_id", *columns])
    writer.writerow([device_id, application_id, *(_cell(values[c]) for c in columns)])
    return out.getvalue()


def create(conn: psycopg.Connection, device_id: str, application_id: str, values: Mapping[str, object]) -> ImportResult:
    """Register a new device (errors in the result, nothing written then). A device of that name in
    the same application, in no application (which the import would adopt), or, for a create in no
    application, in any application, is AlreadyRegistered: a create never changes a device."""
    for device in named(conn, device_id):
        if application_id in (device.application_id, "") or device.application_id == "":
            raise AlreadyRegistered(device)
    result = registry.import_devices(conn, registry_row(device_id, application_id, values))
    if result.applied and result.created != 1:  # pragma: no cover - a concurrent create between the two
        msg = f"{application_id}/{device_id} was registered concurrently"
        raise RuntimeError(msg)
    return result


def update(conn: psycopg.Connection, device: DeviceView, values: Mapping[str, object]) -> ImportResult:
    """Change the given registry columns of a stored device (the rest keep their values)."""
    return registry.import_devices(conn, registry_row(device.device_id, device.application_id, values))


def has_history(conn: psycopg.Connection, ref: int) -> bool:
    """The device has readings, events or alerts (rows that refer to it and would be orphaned), or was
    heard at all: its uplinks, found by name, would pass to a device registered anew under that name,
    and a care device's seal would go with its row (migration 0008's `devices_keep_heard`)."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM readings WHERE device_ref = %(ref)s) "
        "OR EXISTS (SELECT 1 FROM events WHERE device_ref = %(ref)s) "
        "OR EXISTS (SELECT 1 FROM alerts WHERE device_ref = %(ref)s) "
        "OR api_device_heard(%(ref)s)",
        {"ref": ref},
    ).fetchone()
    return bool(row and row[0])


def delete(conn: psycopg.Connection, ref: int) -> bool | None:
    """Delete a device that has no history: True when deleted, False when it has history (kept),
    None when it is not there. The row is locked first, so an ingest batch that is touching the
    device either commits before the history check sees its rows, or waits and then registers the
    device anew (store/writer.py), never leaving readings that point at nothing."""
    locked = conn.execute("SELECT id FROM devices WHERE id = %s FOR UPDATE", (ref,)).fetchone()
    if locked is None:
        return None
    if has_history(conn, ref):
        return False
    conn.execute("DELETE FROM devices WHERE id = %s", (ref,))
    return True


__all__ = [
    "OFFLINE_AFTER",
    "STATES",
    "AlreadyRegistered",
    "DeviceView",
    "by_ref",
    "create",
    "delete",
    "every",
    "export_csv",
    "has_history",
    "named",
    "page",
    "registry_row",
    "update",
]
