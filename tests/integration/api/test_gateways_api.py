"""Gateways and device health over real HTTP, and the SQL functions behind them (migration 0008):
their visibility rule agrees with the devices policies for every role, so no count includes a device
the role cannot see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from psycopg import sql

from store import audit
from tests.integration.api.conftest import bearer
from tests.integration.api.seed_devices import register, uplinks

NOW = datetime.now(UTC).replace(microsecond=0)
ROLES = ("lorawatch_admin", "lorawatch_highways", "lorawatch_care")


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


@pytest.fixture
def heard(db_url: str) -> str:
    """gully-1 and care-1 heard by gw-1 (care-1 by gw-2 too), gully-2 by gw-2 two days ago; gw-3 last
    heard a care device only."""
    register(db_url, "gully-1,app,gully,,,,,\ngully-2,app,gully,,,,,\ncare-1,app,care,,,,,\ncare-2,app,care,,,,,\n")
    uplinks(db_url, "gully-1", [ago(50), ago(40), ago(30)], readings=[{"battery_v": 3.4}] * 3)
    uplinks(db_url, "care-1", [ago(20), ago(10)], gateways=["gw-1", "gw-2"])
    uplinks(db_url, "gully-2", [NOW - timedelta(days=2)], gateways=["gw-2"])
    uplinks(db_url, "care-2", [ago(5)], gateways=["gw-3"])
    return db_url


def gateways(client: httpx.Client, token: str, **params: object) -> dict[str, dict[str, object]]:
    body = client.get("/api/v1/gateways", params=params, headers=bearer(token)).json()  # type: ignore[arg-type]
    return {g["gateway_id"]: g for g in body["items"]}


def test_gateway_counts_are_the_roles_own(api: str, people: dict[str, str], heard: str) -> None:
    with httpx.Client(base_url=api) as client:
        admin, highways, care = (gateways(client, people[r]) for r in ("admin", "highways", "care"))
        assert set(admin) == set(highways) == set(care) == {"gw-1", "gw-2", "gw-3"}
        counts = {
            role: {g: (v["devices_heard"], v["uplinks_heard"]) for g, v in seen.items()}
            for role, seen in (("admin", admin), ("highways", highways), ("care", care))
        }
        assert counts["admin"] == {"gw-1": (2, 5), "gw-2": (1, 2), "gw-3": (1, 1)}
        assert counts["highways"] == {"gw-1": (1, 3), "gw-2": (0, 0), "gw-3": (0, 0)}
        assert counts["care"] == {"gw-1": (1, 2), "gw-2": (1, 2), "gw-3": (1, 1)}
        assert highways["gw-3"]["last_heard"] is None and care["gw-3"]["last_heard"] is not None
        # gw-3 hears only a care device: its own last uplink would time that device for highways.
        assert admin["gw-3"]["last_seen"] is not None
        assert all(g["first_seen"] is None and g["last_seen"] is None for g in [*highways.values(), *care.values()])
        # A wider window takes in gully-2, two days ago.
        wide = gateways(client, people["highways"], window_hours=72)
        assert wide["gw-2"]["devices_heard"] == 1 and wide["gw-2"]["window_hours"] == 72
        # Pages by id.
        first = client.get("/api/v1/gateways", params={"limit": 2}, headers=bearer(people["care"])).json()
        rest = client.get(
            "/api/v1/gateways", params={"cursor": first["next_cursor"]}, headers=bearer(people["care"])
        ).json()
        assert [g["gateway_id"] for g in first["items"] + rest["items"]] == ["gw-1", "gw-2", "gw-3"]
        one = client.get("/api/v1/gateways/gw-1", headers=bearer(people["highways"]))
        assert one.status_code == 200 and one.json()["devices_heard"] == 1
        assert client.get("/api/v1/gateways/gw-9", headers=bearer(people["admin"])).status_code == 404
        assert client.get("/api/v1/gateways").status_code == 401


def test_health_estimates_loss_and_counts_resets(api: str, people: dict[str, str], db_url: str) -> None:
    register(db_url, "gully-1,app,gully,,,,,\ncare-1,app,care,,,,,\n")
    # f_cnt 10, 11, 13, 14 (12 lost), then a rejoin: 1, 2, 5 (3 and 4 lost). Received 7, expected 10.
    f_cnts = [10, 11, 13, 14, 1, 2, 5]
    sessions = ["s1"] * 4 + ["s2"] * 3
    times = [ago(70 - 10 * i) for i in range(7)]
    rssi = [-90.0, -88.0, -86.0, -84.0, -82.0, -80.0, -78.0]
    readings = [{"battery_v": 3.5}] * 3 + [{"battery_pct": 71.0}] + [{"distance_mm": 10.0}] * 3
    uplinks(db_url, "gully-1", times, f_cnts=f_cnts, sessions=sessions, rssi=rssi, readings=readings)
    uplinks(db_url, "care-1", [ago(5)])
    with httpx.Client(base_url=api) as client:
        health = client.get("/api/v1/devices/gully-1/health", headers=bearer(people["highways"]))
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["packets"] == {"received": 7, "expected": 10, "lost": 3, "loss_ratio": 0.3, "resets": 1}
        assert body["signal"]["rssi_dbm"] == -78.0 and body["signal"]["gateways"] == ["gw-1"]
        assert body["signal"]["rssi_mean_dbm"] == pytest.approx(-84.0)
        assert body["battery"]["battery_pct"] == 71.0 and body["battery"]["battery_v"] is None
        assert body["state"] == "active"
        assert client.get("/api/v1/devices/care-1/health", headers=bearer(people["highways"])).status_code == 404
        care = client.get("/api/v1/devices/care-1/health", headers=bearer(people["care"])).json()
        assert care["packets"]["received"] == 1 and care["battery"] is None
        quiet = client.get(
            "/api/v1/devices/gully-1/health", params={"window_hours": 1}, headers=bearer(people["admin"])
        )
        assert quiet.json()["packets"]["received"] == 5  # those 70 and 60 minutes ago are outside the hour
    with psycopg.connect(db_url) as conn:
        viewed = audit.entries(conn, action="care_health_viewed")
    assert [(e.actor, e.target, e.detail) for e in viewed] == [
        ("care", "device:app/care-1", {"devices": ["app/care-1"], "window_hours": 24})
    ]


def test_the_functions_see_what_the_policies_show(db_url: str, api_db_url: str) -> None:
    """Every kind and seal, every role: a device's uplinks come back from api_uplink_radio, and count at
    its gateway, exactly when the devices policy shows the device to that role."""
    register(db_url, "g,app,gully,,,,,\nc,app,care,,,,,\nu,app,unassigned,,,,,\nwas,app,care,,,,,\n")
    with psycopg.connect(db_url) as owner:
        owner.execute("UPDATE devices SET kind = 'gully' WHERE device_id = 'was'")  # reassigned: sealed
    for name in ("g", "c", "u", "was"):
        uplinks(db_url, name, [ago(5)])
    with psycopg.connect(db_url) as owner:
        refs: dict[str, int] = dict(owner.execute("SELECT device_id, id FROM devices").fetchall())
    seen = {}
    with psycopg.connect(api_db_url) as conn:
        for role in ROLES:
            with conn.transaction():
                conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                visible = {r[0] for r in conn.execute("SELECT device_id FROM devices")}
                radio = {
                    name
                    for name, ref in refs.items()
                    if conn.execute("SELECT count(*) FROM api_uplink_radio(%s, %s, %s)", (ref, ago(60), NOW)).fetchone()
                    != (0,)
                }
                heard = conn.execute(
                    "SELECT devices FROM api_gateway_activity(%s) WHERE gateway_id = 'gw-1'", (ago(60),)
                ).fetchone()
                via = {r[0] for r in conn.execute("SELECT api_devices_last_heard_via('gw-1')")}
            assert radio == visible, role
            assert (heard[0] if heard else 0) == len(visible), role
            assert via == {refs[n] for n in visible}, role
            seen[role] = visible
    assert seen == {
        "lorawatch_admin": {"g", "c", "u", "was"}, "lorawatch_highways": {"g"}, "lorawatch_care": {"c", "was"}
    }  # fmt: skip
    # Not the login itself, and not the helpers: only the three functions, only for the three roles.
    for function in ("api_uplink_radio(integer, timestamptz, timestamptz)", "api_device_visible(text, boolean)"):
        with psycopg.connect(db_url) as owner:
            allowed = owner.execute(
                "SELECT has_function_privilege('lorawatch_api', %s, 'EXECUTE')", (function,)
            ).fetchone()
        assert allowed == (False,), function
