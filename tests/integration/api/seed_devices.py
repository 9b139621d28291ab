"""Seeding for the devices, readings and gateways API tests, through the store's own writers as the
owner: the registry import for devices, the ingest writer for uplinks and readings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

import psycopg

from store import registry
from store.records import GatewaySeen, ReadingRow
from store.writer import IngestWriter
from tests.integration.store.records_factory import record, values

HEADER = "device_id,application_id,kind,name,sensor_height_mm,outlet_invert_mm,care_room,care_group\n"


def register(db_url: str, rows: str) -> None:
    """Registry rows (HEADER's columns) imported as the owner."""
    with psycopg.connect(db_url) as conn:
        result = registry.import_devices(conn, HEADER + rows)
    assert result.applied, result.errors


def uplinks(
    db_url: str,
    device: str,
    times: Sequence[datetime],
    *,
    app: str = "app",
    gateways: Sequence[str] = ("gw-1",),
    f_cnts: Sequence[int] | None = None,
    sessions: Sequence[str] | None = None,
    readings: Sequence[Mapping[str, object]] | None = None,
    rssi: Sequence[float] | None = None,
) -> None:
    """One uplink per time (f_cnt 1, 2, ... unless given), heard by `gateways`, each carrying the
    reading given for it (or none)."""
    rx = ", ".join(f'{{"gateway_ids": {{"gateway_id": "{g}"}}}}' for g in gateways)
    records = []
    for i, t in enumerate(times):
        f_cnt = f_cnts[i] if f_cnts else i + 1
        session = sessions[i] if sessions else "sess"
        r = record(device, f_cnt, app=app, time=t, key=f"tts:{app}/{device}:{session}:{f_cnt}:{t.isoformat()}")
        r = replace(
            r,
            uplink=r.uplink._replace(
                rx_metadata=f"[{rx}]", session_key_id=session, rssi_dbm=rssi[i] if rssi else -80.0
            ),
            readings=[ReadingRow(t, values(**readings[i]))] if readings else [],
            gateways=[GatewaySeen(f"{g}:", g, None, False, -80.0, 7.5, None, None) for g in gateways],
        )
        records.append(r)
    with psycopg.connect(db_url) as conn:
        IngestWriter(conn).write(records)
        conn.commit()
