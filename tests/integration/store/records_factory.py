"""Hand-made write-side records for store tests (no pipeline in between, so each test says exactly
what reaches the writer)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from store.records import (
    READING_COLUMNS,
    READING_INDEX,
    DeadLetter,
    DeviceSeen,
    EventRow,
    GatewaySeen,
    ReadingRow,
    UplinkRecord,
    UplinkRow,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def values(**measurements: Any) -> list[Any]:
    row: list[Any] = [None] * len(READING_COLUMNS)
    for name, value in measurements.items():
        row[READING_INDEX[name]] = value
    return row


def record(
    device: str = "gully-1",
    f_cnt: int = 1,
    *,
    app: str = "app-a",
    time: datetime | None = None,
    key: str | None = None,
    simulated: bool = False,
    readings: int = 1,
    event: bool = False,
    gateway: str | None = "gw-1",
    **uplink: Any,
) -> UplinkRecord:
    t = time or T0 + timedelta(minutes=15 * f_cnt)
    uplink_key = key or f"tts:{device}:sess:{f_cnt}"
    row = UplinkRow(
        time=t,
        uplink_key=uplink_key,
        application_id=app,
        device_id=device,
        source="tts",
        simulated=simulated,
        f_port=2,
        f_cnt=f_cnt,
        frm_payload=b"\x0d\x3b",
        session_key_id="sess",
        dev_addr="260B1234",
        frequency_hz=868_100_000,
        spreading_factor=7,
        bandwidth_hz=125_000,
        rssi_dbm=-80.0,
        snr_db=7.5,
        gateway_count=1,
        decoded=None,
        decoder="lorawatch:dragino/ldds75",
        rx_metadata='[{"gateway_ids": {"gateway_id": "gw-1"}}]',
    )._replace(**uplink)
    return UplinkRecord(
        uplink=row,
        device=DeviceSeen(device, "tts", t, app, None, None, "260B1234", "dragino/ldds75"),
        readings=[
            ReadingRow(t - timedelta(minutes=i), values(distance_mm=2000.0 + f_cnt, battery_v=3.3))
            for i in range(readings)
        ],
        events=[EventRow(t, "alarm", f"k{f_cnt}", '{"id": 1}', uplink_key)] if event else [],
        gateways=[GatewaySeen(f"{gateway}:", gateway, None, False, -80.0, 7.5, None, None)] if gateway else [],
        topic=f"v3/{app}@ttn/devices/{device}/up",
        raw=f'{{"f_cnt": {f_cnt}, "device": "{device}"}}'.encode(),
    )


def dead(raw: bytes = b"not json", stage: str = "json", topic: str = "v3/app-a/devices/x/up") -> DeadLetter:
    return DeadLetter(T0, stage, f"{stage} refused", None, topic, None, raw)


__all__ = ["T0", "dead", "record", "replace", "values"]
