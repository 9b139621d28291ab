"""The device-health page's numbers: every visible device with its last seen, battery, signal and
packet loss, and the gateway that heard its newest uplink (the page groups devices by it).

Radio data comes through `api_device_radio_summary` (migration 0011): the API roles have no grant on
uplinks, and the function returns radio columns only, for devices the request's role can see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row

#: The window of uplinks each device's figures cover, up to its newest uplink.
WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    ref: int
    device_id: str
    application_id: str
    kind: str
    sealed: bool
    name: str | None
    model_id: str | None
    care_room: str | None
    care_group: str | None
    last_seen: datetime | None
    battery_v: float | None
    battery_pct: float | None
    uplinks: int | None
    f_cnt_first: int | None
    f_cnt_last: int | None
    rssi_dbm: float | None
    snr_db: float | None
    gateways: list[str] | None

    @property
    def loss_pct(self) -> float | None:
        """Frames missing from the counter span of its newest session in the window (None: too few)."""
        if self.uplinks is None or self.f_cnt_first is None or self.f_cnt_last is None:
            return None
        expected = self.f_cnt_last - self.f_cnt_first + 1
        if expected < 2 or expected < self.uplinks:
            return None
        return 100.0 * (expected - self.uplinks) / expected

    @property
    def gateway(self) -> str | None:
        return self.gateways[0] if self.gateways else None


_HEALTH = """
SELECT d.id AS ref, d.device_id, d.application_id, d.kind, d.sealed, d.name, d.model_id, d.care_room, d.care_group,
       d.last_seen, b.battery_v::float8 AS battery_v, b.battery_pct::float8 AS battery_pct,
       r.uplinks, r.f_cnt_first, r.f_cnt_last, r.rssi_dbm::float8 AS rssi_dbm, r.snr_db::float8 AS snr_db,
       r.gateways
FROM devices d
LEFT JOIN public.api_device_radio_summary(%(window)s) r ON r.device_ref = d.id
LEFT JOIN LATERAL (
    SELECT battery_v, battery_pct FROM readings
    WHERE device_ref = d.id AND time >= d.last_seen - %(window)s AND time <= d.last_seen
      AND (battery_v IS NOT NULL OR battery_pct IS NOT NULL)
    ORDER BY time DESC LIMIT 1
) b ON true
ORDER BY d.kind, d.device_id, d.application_id"""


def device_health(conn: psycopg.Connection) -> list[DeviceHealth]:
    """Every device the role can see, with its radio and battery over WINDOW up to its newest uplink."""
    with conn.cursor(row_factory=class_row(DeviceHealth)) as cur:
        return cur.execute(_HEALTH, {"window": WINDOW}).fetchall()
