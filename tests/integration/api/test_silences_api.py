"""The silences routes over real HTTP against a live uvicorn server on the real database: add, list
(active by default, all=true), expire, validation, each role's reach (highways never sees or makes a
silence over care data, by the route and by row-level security), and the engine honouring them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from alerts.engine import Engine
from store import alerts as db
from store import audit, outbox
from tests.integration.alerts.test_engine import Clock, register_devices
from tests.integration.alerts.test_lifecycle import RULES, level, write
from tests.integration.api.conftest import bearer

SILENCES = "/api/v1/silences"


@pytest.fixture
def owner(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        register_devices(conn)  # gully-1 (gully), radar-1 (care, flat-12)
        yield conn


def add(api: str, token: str, matchers: dict[str, str], **extra: Any) -> httpx.Response:
    return httpx.post(api + SILENCES, json={"matchers": matchers, **extra}, headers=bearer(token))


def listed(api: str, token: str, **params: Any) -> list[dict[str, Any]]:
    response = httpx.get(api + SILENCES, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def expire(api: str, token: str, silence_id: int) -> httpx.Response:
    return httpx.post(f"{api}{SILENCES}/{silence_id}/expire", headers=bearer(token))


def test_add_list_expire(api: str, people: dict[str, str], owner: psycopg.Connection) -> None:
    token = people["admin"]
    before = datetime.now(UTC)
    made = add(api, token, {"category": "flood", "device_id": "gully-1"}, duration="30m", comment="jetting crew")
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["matchers"] == {"category": "flood", "device_id": "gully-1"}  # admin's: exactly as given
    assert (silence["created_by"], silence["comment"], silence["active"], silence["expired_at"]) == (
        "admin",
        "jetting crew",
        True,
        None,
    )
    span = datetime.fromisoformat(silence["ends_at"]) - datetime.fromisoformat(silence["starts_at"])
    assert span.total_seconds() == 1800 and datetime.fromisoformat(silence["starts_at"]) >= before
    default = add(api, token, {"rule": "fall"}).json()
    assert (
        datetime.fromisoformat(default["ends_at"]) - datetime.fromisoformat(default["starts_at"])
    ).total_seconds() == 7200
    assert [s["id"] for s in listed(api, token)] == [default["id"], silence["id"]]  # newest first
    # The engine's own view: both in force now.
    assert {sid for sid, _ in db.active_silences(owner, datetime.now(UTC))} == {silence["id"], default["id"]}

    ended = expire(api, token, silence["id"])
    assert ended.status_code == 200 and ended.json()["active"] is False and ended.json()["expired_at"] is not None
    assert [s["id"] for s in listed(api, token)] == [default["id"]]
    assert [s["id"] for s in listed(api, token, all="true")] == [default["id"], silence["id"]]
    again = expire(api, token, silence["id"])
    assert again.status_code == 409 and "already ended or been expired" in again.json()["error"]["message"]
    assert expire(api, token, 10**9).status_code == 404
    trail = [(e.action, e.target) for e in reversed(audit.entries(owner, limit=100))]
    assert trail == [
        ("silence_added", f"silence:{silence['id']}"),
        ("silence_added", f"silence:{default['id']}"),
        ("silence_expired", f"silence:{silence['id']}"),
    ]


def test_pages_follow_the_cursor(api: str, people: dict[str, str], owner: psycopg.Connection) -> None:
    made = [add(api, people["admin"], {"rule": f"r{i}"}).json()["id"] for i in range(5)]
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(api + SILENCES, params=params, headers=bearer(people["admin"])).json()
        seen += [s["id"] for s in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"matchers": {}}, "body.matchers"),
        ({"matchers": {"colour": "red"}}, "body.matchers.colour"),
        ({"matchers": {"category": "weather"}}, "body.matchers.category"),
        ({"matchers": {"rule": "fall"}, "duration": "0h"}, "body.duration"),
        ({"matchers": {"rule": "fall"}, "duration": "2 hours"}, "body.duration"),
        ({}, "body.matchers"),
    ],
)
def test_a_bad_silence_is_422_naming_the_field(
    api: str, people: dict[str, str], owner: psycopg.Connection, body: dict[str, Any], field: str
) -> None:
    response = httpx.post(api + SILENCES, json=body, headers=bearer(people["admin"]))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(field), response.text
    assert listed(api, people["admin"], all="true") == []


def test_highways_silences_are_pinned_to_its_fleet_and_never_reach_care_data(
    api: str, people: dict[str, str], owner: psycopg.Connection
) -> None:
    token = people["highways"]
    pinned = add(api, token, {"category": "offline"})
    assert pinned.status_code == 201 and pinned.json()["matchers"] == {"category": "offline", "kind": "gully"}
    assert add(api, token, {"kind": "gateway", "gateway_id": "gw-1"}).status_code == 201
    assert add(api, token, {"device_id": "gully-1"}).status_code == 201
    for matchers, key in (
        ({"care_group": "flat-12"}, "care_group"),
        ({"kind": "care"}, "kind"),
        ({"kind": "unassigned"}, "kind"),
        ({"device_id": "radar-1"}, "device_id"),  # a care device: answered as for one that does not exist
        ({"device_id": "no-such-device"}, "device_id"),
    ):
        refused = add(api, token, matchers)
        assert refused.status_code == 403, (matchers, refused.text)
        assert refused.json()["error"]["message"].startswith(f"matchers.{key}:")
    # Care: pinned to care; may not reach into the gully fleet.
    care = add(api, people["care"], {"care_group": "flat-12"})
    assert care.status_code == 201 and care.json()["matchers"] == {"care_group": "flat-12", "kind": "care"}
    assert add(api, people["care"], {"kind": "gully"}).status_code == 403
    assert add(api, people["care"], {"device_id": "gully-1"}).status_code == 403


def test_each_role_sees_and_expires_only_the_silences_of_its_fleet(
    api: str, people: dict[str, str], owner: psycopg.Connection
) -> None:
    admin = people["admin"]
    unpinned = add(api, admin, {"category": "offline"}).json()["id"]  # could hold back either fleet: admin only
    care_group = add(api, admin, {"kind": "care", "care_group": "flat-12"}).json()["id"]
    care_device = add(api, admin, {"kind": "gully", "device_id": "radar-1"}).json()["id"]  # a care device's id
    gully = add(api, people["highways"], {"category": "flood"}).json()["id"]
    gateway = add(api, people["care"], {"kind": "gateway"}).json()["id"]
    assert {s["id"] for s in listed(api, admin)} == {unpinned, care_group, care_device, gully, gateway}
    assert {s["id"] for s in listed(api, people["highways"])} == {gully, gateway}
    assert {s["id"] for s in listed(api, people["care"])} == {care_group, gateway}
    for hidden in (unpinned, care_group, care_device):
        assert expire(api, people["highways"], hidden).status_code == 404
    assert expire(api, people["care"], gully).status_code == 404
    assert expire(api, people["highways"], gateway).status_code == 200  # both fleets' concern


def test_the_database_refuses_a_highways_silence_over_care_data_whatever_the_route_does(
    owner: psycopg.Connection, api_db_url: str
) -> None:
    now = datetime.now(UTC)
    with psycopg.connect(api_db_url) as conn:
        for matchers in ({"category": "offline"}, {"kind": "gully", "care_group": "flat-12"}, {"kind": "care"},
                         {"kind": "gully", "device_id": "radar-1"}):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), conn.transaction():
                conn.execute("SET LOCAL ROLE lorawatch_highways")
                conn.execute(
                    "INSERT INTO silences (matchers, ends_at, created_by) VALUES (%s, %s, 'h')",
                    (Jsonb(matchers), now.replace(year=now.year + 1)),
                )
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():  # only expired_at may change
            conn.execute("SET LOCAL ROLE lorawatch_highways")
            conn.execute("UPDATE silences SET ends_at = now()")


def test_the_engine_honours_an_api_silence_and_a_highways_one_spares_care_alerts(
    api: str, people: dict[str, str], owner: psycopg.Connection
) -> None:
    """A highways silence on every critical alert holds back the gully's flood and not the care fall."""
    from tests.integration.alerts.test_engine import T0, fall

    assert add(api, people["highways"], {"severity": "critical"}).status_code == 201
    engine = Engine(RULES, Clock(datetime.now(UTC)))  # silences are judged on the engine's clock
    write(owner, [level(0, 900, 1), fall(T0, 2)])
    engine.process(owner)
    states = {a.rule: (a.state, a.severity) for a in db.list_alerts(owner)}
    assert states == {"level": ("firing", "critical"), "fall": ("firing", "critical")}
    assert [(r.payload["alert"]["rule"], r.event) for r in outbox.rows(owner)] == [("fall", "opened")]


def test_the_roles_hold_only_the_silence_grants_the_routes_need(db_url: str) -> None:
    """SELECT, INSERT of the columns a new silence sets and UPDATE of expired_at, under row-level
    security; never DELETE or TRUNCATE (a silence stays on record), and nothing for the login itself."""
    with psycopg.connect(db_url) as conn:

        def can(query: str, *args: str) -> bool:
            row = conn.execute(query, args).fetchone()
            return bool(row and row[0])

        for role in ("lorawatch_admin", "lorawatch_highways", "lorawatch_care", "lorawatch_api"):
            granted = role != "lorawatch_api"
            table = {
                privilege
                for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
                if can("SELECT has_table_privilege(%s, 'silences', %s)", role, privilege)
            }
            assert table == ({"SELECT"} if granted else set()), role
            columns = {
                (column, privilege)
                for column in (
                    "id",
                    "matchers",
                    "starts_at",
                    "ends_at",
                    "created_by",
                    "comment",
                    "expired_at",
                    "created_at",
                )
                for privilege in ("INSERT", "UPDATE")
                if can("SELECT has_column_privilege(%s, 'silences', %s, %s)", role, column, privilege)
            }
            expected = {(c, "INSERT") for c in ("matchers", "starts_at", "ends_at", "created_by", "comment")}
            assert columns == ((expected | {("expired_at", "UPDATE")}) if granted else set()), role
