"""Gateways and device radio health.

`GET /gateways` and `/gateways/{gateway_id}`: the gateways that have heard any device (a gateway is
not care data, so every role sees every gateway), with the activity of the devices the caller's role
can see: how many of them it heard in the window, how many of their uplinks, and when it last heard
one. Those numbers are counted by PostgreSQL for the role (store/radio.py), so a highways user's
counts never include a care device. The total uplink counter of `gateways` is not shown for that
reason.

`GET /devices/{device_id}/health`: last seen, battery, signal and packet loss estimated from frame
counter gaps over a window (store/radio.py `packet_loss` says how resets are told from losses).
A view of a care device's health is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel

from dashboard.api.devices import AllowingRoute, ApplicationQuery, DeviceIdPath, Kind, State, audit_care, find_device
from dashboard.deps import Acting
from dashboard.errors import ApiError, ErrorBody
from dashboard.pagination import Cursor, Limit, Page, decode_cursor, page
from store import radio
from store.radio import GatewayView

router = APIRouter(prefix="/api/v1", tags=["gateways"], route_class=AllowingRoute)

WindowHours = Annotated[int, Query(ge=1, le=24 * 30, description="the window, in hours up to now (1 to 720)")]
_CONFLICT = {"model": ErrorBody, "description": "The device_id is in several applications (pass application_id)"}


class GatewayOut(BaseModel):
    """A gateway id (Packet Broker forwarders all share `packetbroker`). `first_seen`/`last_seen`: the
    gateway's own, for any device, shown to admin only (null for the others: for a gateway only care
    devices use, its last uplink would tell highways when a care sensor last sent, e.g. a motion
    event). `devices_heard`, `uplinks_heard`, `last_heard`: devices you can see, within the window."""

    gateway_id: str
    packet_broker: bool
    euis: list[str]
    latitude: float | None
    longitude: float | None
    first_seen: AwareDatetime | None
    last_seen: AwareDatetime | None
    window_hours: int
    devices_heard: int
    uplinks_heard: int
    last_heard: AwareDatetime | None


class BatteryOut(BaseModel):
    at: AwareDatetime
    battery_v: float | None
    battery_pct: float | None


class SignalOut(BaseModel):
    """The newest uplink's signal (best over the gateways that heard it) and the window's means."""

    at: AwareDatetime
    rssi_dbm: float | None
    snr_db: float | None
    gateways: list[str]
    rssi_mean_dbm: float | None
    snr_mean_db: float | None


class PacketsOut(BaseModel):
    """Frames in the window by frame counter: `expected` from the counter's steps, `lost` those never
    received, `resets` counter restarts (rejoin, reboot), which are not losses."""

    received: int
    expected: int
    lost: int
    loss_ratio: float | None
    resets: int


class HealthOut(BaseModel):
    device_id: str
    application_id: str
    kind: Kind
    state: State
    last_seen: AwareDatetime | None
    window_start: AwareDatetime
    window_end: AwareDatetime
    battery: BatteryOut | None
    signal: SignalOut | None
    packets: PacketsOut


def gateway_out(g: GatewayView, window_hours: int, role: str) -> GatewayOut:
    own = role == "admin"  # the gateway's own times include every device's uplinks
    return GatewayOut(
        gateway_id=g.gateway_id, packet_broker=g.packet_broker, euis=g.euis, latitude=g.latitude,
        longitude=g.longitude, first_seen=g.first_seen if own else None, last_seen=g.last_seen if own else None,
        window_hours=window_hours,
        devices_heard=g.devices_heard, uplinks_heard=g.uplinks_heard, last_heard=g.last_heard,
    )  # fmt: skip


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


@router.get("/gateways", summary="Gateways by id, with the devices you can see that each heard recently")
def list_gateways(
    ctx: Acting, limit: Limit = 100, cursor: Cursor = None, window_hours: WindowHours = 24
) -> Page[GatewayOut]:
    after = decode_cursor(cursor, str)
    since = datetime.now(UTC) - timedelta(hours=window_hours)
    rows = radio.gateways(ctx.conn, since, after=after[0] if after else None, limit=limit + 1)
    items, next_cursor = page(rows, limit, key=lambda g: (g.gateway_id,))
    gateways = [gateway_out(g, window_hours, ctx.principal.role) for g in items]
    return Page[GatewayOut](items=gateways, next_cursor=next_cursor)


@router.get("/gateways/{gateway_id}", summary="One gateway")
def get_gateway(
    ctx: Acting,
    gateway_id: Annotated[str, Path(min_length=1, max_length=128)],
    window_hours: WindowHours = 24,
) -> GatewayOut:
    found = radio.gateway(ctx.conn, gateway_id, datetime.now(UTC) - timedelta(hours=window_hours))
    if found is None:
        raise ApiError(404, "not_found", "no such gateway")
    return gateway_out(found, window_hours, ctx.principal.role)


@router.get(
    "/devices/{device_id}/health",
    summary="A device's last uplink, battery, signal and packet loss over a window",
    responses={409: _CONFLICT},
)
def device_health(
    ctx: Acting, device_id: DeviceIdPath, application_id: ApplicationQuery = None, window_hours: WindowHours = 24
) -> HealthOut:
    device = find_device(ctx, device_id, application_id)
    end = datetime.now(UTC)
    start = end - timedelta(hours=window_hours)
    samples = radio.samples(ctx.conn, device.id, start, end)
    battery = radio.battery(ctx.conn, device.id, start, end)
    loss = radio.packet_loss(samples)
    signal = None
    if samples:
        last = samples[-1]
        signal = SignalOut(
            at=last.time, rssi_dbm=last.rssi_dbm, snr_db=last.snr_db, gateways=last.gateways,
            rssi_mean_dbm=_mean([s.rssi_dbm for s in samples]), snr_mean_db=_mean([s.snr_db for s in samples]),
        )  # fmt: skip
    audit_care(ctx, "care_health_viewed", [device], window_hours=window_hours)
    return HealthOut(
        device_id=device.device_id,
        application_id=device.application_id,
        kind=device.kind,  # type: ignore[arg-type]  # the table's CHECK keeps it to Kind
        state=device.state,  # type: ignore[arg-type]  # device_views.STATES
        last_seen=device.last_seen,
        window_start=start,
        window_end=end,
        battery=BatteryOut(at=battery.time, battery_v=battery.battery_v, battery_pct=battery.battery_pct)
        if battery
        else None,
        signal=signal,
        packets=PacketsOut(
            received=loss.received, expected=loss.expected, lost=loss.lost, loss_ratio=loss.ratio, resets=loss.resets
        ),
    )
