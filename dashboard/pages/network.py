"""Device health: every device the role can see with its last seen, battery, signal and packet loss,
grouped by the gateway that heard its newest uplink; the gateways and their devices; and (admin) the
dead letters with their reasons — what the network and the pipeline refused, and why.

Care devices are care data: care sees them (by flat and room, never a name), each view audited;
highways sees gullies only, by row-level security.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from dashboard.pages.web import Page, PageContext, PageError, for_roles, render
from store import dead_letters, network, radio
from store.network import DeviceHealth

router = APIRouter(include_in_schema=False)

GATEWAY_WINDOW = timedelta(hours=24)
LOW_BATTERY_V = 3.3
WEAK_RSSI_DBM = -115.0
DEAD_LETTER_STAGES = ("topic", "json", "envelope", "decode", "range", "store")

AdminPage = Annotated[PageContext, for_roles("admin")]
GatewayId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._:@-]{1,128}$")]


def _audit_care(page: PageContext, devices: list[DeviceHealth], where: str) -> None:
    care = [f"{d.application_id}/{d.device_id}" for d in devices if d.kind == "care" or d.sealed]
    if care:
        page.audit("care_health_viewed", None, {"devices": care, "page": where})


def _by_gateway(devices: list[DeviceHealth]) -> list[tuple[str, list[DeviceHealth]]]:
    groups: dict[str, list[DeviceHealth]] = defaultdict(list)
    for d in devices:
        groups[d.gateway or ""].append(d)
    return sorted(groups.items(), key=lambda kv: (kv[0] == "", kv[0]))


@router.get("/network")
def network_page(page: Page) -> HTMLResponse:
    devices = network.device_health(page.conn)
    _audit_care(page, devices, "network")
    now = page.now
    newest = max((d.last_seen for d in devices if d.last_seen), default=now)
    gateways = radio.gateways(page.conn, min(now, newest) - GATEWAY_WINDOW, after=None, limit=500)
    if page.role != "admin":  # a gateway that heard none of its devices is not one of its pages
        gateways = [g for g in gateways if g.uplinks_heard > 0]
    return render(
        page,
        "network.html",
        groups=_by_gateway(devices),
        devices=devices,
        gateways=gateways,
        low_battery_v=LOW_BATTERY_V,
        weak_rssi_dbm=WEAK_RSSI_DBM,
        window=network.WINDOW,
    )


@router.get("/network/gateways/{gateway_id}")
def gateway_page(page: Page, gateway_id: GatewayId) -> HTMLResponse:
    devices = [d for d in network.device_health(page.conn) if d.gateways and gateway_id in d.gateways]
    now = page.now
    newest = max((d.last_seen for d in devices if d.last_seen), default=now)
    gateway = radio.gateway(page.conn, gateway_id, min(now, newest) - GATEWAY_WINDOW)
    if gateway is None:
        raise PageError(404, "No such gateway", f"No gateway {gateway_id!r} has heard a device you can see.")
    if page.role != "admin" and not devices and gateway.uplinks_heard == 0:
        raise PageError(404, "No such gateway", f"No gateway {gateway_id!r} has heard a device you can see.")
    _audit_care(page, devices, "gateway")
    return render(
        page,
        "gateway.html",
        gateway=gateway,
        devices=devices,
        show_times=page.role == "admin",
        low_battery_v=LOW_BATTERY_V,
        weak_rssi_dbm=WEAK_RSSI_DBM,
        window=network.WINDOW,
    )


@router.get("/network/dead-letters")
def dead_letters_page(
    page: AdminPage,
    stage: Annotated[str | None, Query(pattern=r"^(topic|json|envelope|decode|range|store)$")] = None,
) -> HTMLResponse:
    rows = dead_letters.dead_letters(page.conn, stage=stage or None, limit=200)
    return render(page, "dead_letters.html", rows=rows, stage=stage, stages=DEAD_LETTER_STAGES)
