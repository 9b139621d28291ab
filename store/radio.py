"""Radio health of a device (signal, frame counter gaps, battery) and gateway activity, for the API.

The API roles have no grant on `uplinks` (raw payloads). What these need of it comes through the
SECURITY DEFINER functions of migration 0008, which return radio metadata only and only for devices
the request's role can see: `api_uplink_radio` (one device's uplinks), `api_gateway_activity` (devices
heard per gateway) and `api_devices_last_heard_via`. So every count here is of visible devices.

Packet loss is estimated from gaps in the LoRaWAN frame counter (`packet_loss`, pure): a device
counts its uplinks, so between two received frames with counters a < b, b - a - 1 were sent and not
received. The counter restarts when a device rejoins (new session) or reboots without persisting
it; those restarts are counted, never read as loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

#: LoRaWAN's MAX_FCNT_GAP: a network server drops a frame that jumps the counter further, so a larger
#: forward jump is a counter that restarted (e.g. a 32-bit counter seen as 16 bits), not lost frames.
MAX_FCNT_GAP = 16384
_U32 = 2**32


@dataclass(frozen=True, slots=True)
class RadioSample:
    """One uplink's radio metadata (from `api_uplink_radio`)."""

    time: datetime
    f_cnt: int | None
    new_session: bool
    rssi_dbm: float | None
    snr_db: float | None
    gateways: list[str]


@dataclass(frozen=True, slots=True)
class PacketLoss:
    """Frames received and (by counter gaps) expected; `resets` counter restarts, each starting a new run."""

    received: int
    expected: int
    resets: int

    @property
    def lost(self) -> int:
        return self.expected - self.received

    @property
    def ratio(self) -> float | None:
        """Lost over expected (None with nothing expected)."""
        return self.lost / self.expected if self.expected else None


def packet_loss(samples: Sequence[RadioSample]) -> PacketLoss:
    """Frame counter gaps over uplinks in time order. Each uplink with a counter is one frame received.
    Between consecutive ones: a step forward by d (1 <= d <= MAX_FCNT_GAP) means d - 1 were lost; the
    same counter again is a repeat (not counted twice); a step back, a step over MAX_FCNT_GAP or a new
    session is a reset, after which counting starts again. A 32-bit wrap (near 2**32 back to near 0)
    is a step forward. Losses before the first frame of the window, or after a reset before the
    first frame of the new run, cannot be seen and are not counted."""
    received = expected = resets = 0
    previous: int | None = None
    for sample in samples:
        f_cnt = sample.f_cnt
        if f_cnt is None:
            continue
        step = None if previous is None else (f_cnt - previous) % _U32
        if step == 0:
            continue  # the same frame again
        received += 1
        if step is None:
            expected += 1
        elif sample.new_session or step > MAX_FCNT_GAP:
            resets += 1
            expected += 1
        else:
            expected += step
        previous = f_cnt
    return PacketLoss(received, expected, resets)


def samples(conn: psycopg.Connection, ref: int, start: datetime, end: datetime) -> list[RadioSample]:
    """One device's uplinks in [start, end), oldest first (none when the role cannot see it)."""
    with conn.cursor(row_factory=class_row(RadioSample)) as cur:
        return cur.execute("SELECT * FROM public.api_uplink_radio(%s, %s, %s)", (ref, start, end)).fetchall()


@dataclass(frozen=True, slots=True)
class Battery:
    """The newest reading with a battery value in the window."""

    time: datetime
    battery_v: float | None
    battery_pct: float | None


def battery(conn: psycopg.Connection, ref: int, start: datetime, end: datetime) -> Battery | None:
    with conn.cursor(row_factory=class_row(Battery)) as cur:
        return cur.execute(
            "SELECT time, battery_v, battery_pct FROM readings WHERE device_ref = %s AND time >= %s AND time < %s "
            "AND (battery_v IS NOT NULL OR battery_pct IS NOT NULL) ORDER BY time DESC LIMIT 1",
            (ref, start, end),
        ).fetchone()


@dataclass(frozen=True, slots=True)
class GatewayView:
    """A gateway by its id: `gateways` rows of that id merged (Packet Broker forwarders share the id
    `packetbroker`), with the activity of the devices the caller can see since the window's start."""

    gateway_id: str
    packet_broker: bool
    euis: list[str]
    latitude: float | None
    longitude: float | None
    first_seen: datetime
    last_seen: datetime
    devices_heard: int
    uplinks_heard: int
    last_heard: datetime | None


_GATEWAYS = """
SELECT g.gateway_id, bool_or(g.packet_broker) AS packet_broker,
       coalesce(array_agg(DISTINCT g.eui ORDER BY g.eui) FILTER (WHERE g.eui IS NOT NULL), '{}') AS euis,
       (array_agg(g.latitude ORDER BY g.last_seen DESC)
            FILTER (WHERE g.latitude IS NOT NULL AND g.longitude IS NOT NULL))[1] AS latitude,
       (array_agg(g.longitude ORDER BY g.last_seen DESC)
            FILTER (WHERE g.latitude IS NOT NULL AND g.longitude IS NOT NULL))[1] AS longitude,
       min(g.first_seen) AS first_seen, max(g.last_seen) AS last_seen,
       coalesce(a.devices, 0) AS devices_heard, coalesce(a.uplinks, 0) AS uplinks_heard, a.last_heard
FROM gateways g
LEFT JOIN public.api_gateway_activity(%(since)s) a ON a.gateway_id = g.gateway_id
WHERE g.gateway_id <> '' AND {where}
GROUP BY g.gateway_id, a.devices, a.uplinks, a.last_heard
ORDER BY g.gateway_id LIMIT %(limit)s"""


def gateways(conn: psycopg.Connection, since: datetime, *, after: str | None, limit: int) -> list[GatewayView]:
    """Gateways by id, after `after` (the cursor), at most `limit`."""
    query = _GATEWAYS.replace("{where}", "(%(after)s::text IS NULL OR g.gateway_id > %(after)s)")
    with conn.cursor(row_factory=class_row(GatewayView)) as cur:
        return cur.execute(query, {"since": since, "after": after, "limit": limit}).fetchall()


def gateway(conn: psycopg.Connection, gateway_id: str, since: datetime) -> GatewayView | None:
    query = _GATEWAYS.replace("{where}", "g.gateway_id = %(id)s")
    with conn.cursor(row_factory=class_row(GatewayView)) as cur:
        return cur.execute(query, {"since": since, "id": gateway_id, "limit": 1}).fetchone()


__all__ = [
    "MAX_FCNT_GAP",
    "Battery",
    "GatewayView",
    "PacketLoss",
    "RadioSample",
    "battery",
    "gateway",
    "gateways",
    "packet_loss",
    "samples",
]
