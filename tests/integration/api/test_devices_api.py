"""The devices routes over real HTTP against a live server on the real database: filters, pagination,
visibility by role (404 for what a role cannot see), admin-only writes, the registry's checks, CSV
import and export, DELETE's refusal to orphan history, and audit entries for care views."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from store import audit
from store.registry_csv import EXPORT_HEADER
from tests.integration.api.conftest import bearer
from tests.integration.api.seed_devices import register, uplinks

DEVICES = "/api/v1/devices"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def fleet(db_url: str) -> str:
    """gully-1 heard via gw-1 an hour ago; gully-2 heard via gw-2 three days ago (offline); gully-3
    never heard; care-1 heard via gw-1; new-1 unassigned; 'twin' a gully in two applications."""
    register(
        db_url,
        "gully-1,app,gully,Gully one,1500,300,,\n"
        "gully-2,app,gully,,,,,\n"
        "gully-3,app,gully,,,,,\n"
        "care-1,app,care,Flat 4 bedroom,,,bedroom,flat-4\n"
        "new-1,app,unassigned,,,,,\n"
        "twin,app-a,gully,,,,,\n"
        "twin,app-b,gully,,,,,\n",
    )
    uplinks(db_url, "gully-1", [NOW - timedelta(hours=1)], readings=[{"distance_mm": 900.0}])
    uplinks(db_url, "gully-2", [NOW - timedelta(days=3)], gateways=["gw-2"])
    uplinks(db_url, "care-1", [NOW - timedelta(minutes=30)])
    return db_url


def names(body: dict[str, object]) -> list[str]:
    items = body["items"]
    assert isinstance(items, list)
    return [f"{d['application_id']}/{d['device_id']}" for d in items]


def all_pages(client: httpx.Client, token: str, **params: object) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get(DEVICES, params=query, headers=bearer(token))  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        seen += names(r.json())
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


def audit_rows(db_url: str, action: str) -> list[tuple[str, str | None, dict[str, object]]]:
    with psycopg.connect(db_url) as conn:
        return [(e.actor, e.target, e.detail) for e in audit.entries(conn, action=action, limit=100)]


def test_list_pages_and_filters_by_role(api: str, people: dict[str, str], fleet: str) -> None:
    everything = ["app/care-1", "app/gully-1", "app/gully-2", "app/gully-3", "app/new-1", "app-a/twin", "app-b/twin"]
    gullies = ["app/gully-1", "app/gully-2", "app/gully-3", "app-a/twin", "app-b/twin"]
    with httpx.Client(base_url=api) as client:
        assert all_pages(client, people["admin"], limit=2) == everything
        assert all_pages(client, people["highways"], limit=2) == gullies
        assert all_pages(client, people["care"], limit=1) == ["app/care-1"]
        assert all_pages(client, people["admin"], kind="care") == ["app/care-1"]
        assert all_pages(client, people["highways"], kind="care") == []
        assert all_pages(client, people["admin"], state="active") == ["app/care-1", "app/gully-1"]
        assert all_pages(client, people["admin"], state="offline") == ["app/gully-2"]
        assert all_pages(client, people["admin"], state="unassigned") == ["app/new-1"]
        assert "app/gully-3" in all_pages(client, people["admin"], state="never_seen")
        assert all_pages(client, people["admin"], gateway="gw-1") == ["app/care-1", "app/gully-1"]
        assert all_pages(client, people["highways"], gateway="gw-1") == ["app/gully-1"]
        assert all_pages(client, people["admin"], gateway="gw-2") == ["app/gully-2"]
        assert all_pages(client, people["admin"], application_id="app-b") == ["app-b/twin"]
        one = client.get(DEVICES, params={"kind": "gully", "limit": 1}, headers=bearer(people["admin"])).json()
        assert one["items"][0]["state"] == "active" and one["items"][0]["sensor_height_mm"] == 1500
        assert client.get(DEVICES).status_code == 401
        bad = client.get(DEVICES, params={"state": "asleep"}, headers=bearer(people["admin"]))
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == ["query", "state"]
    # A page showing care-1 is audited for whoever saw it; a highways page never shows it.
    listed = audit_rows(fleet, "care_devices_listed")
    assert {actor for actor, _, _ in listed} == {"admin", "care"}
    assert all(detail == {"devices": ["app/care-1"]} for _, _, detail in listed)


def test_get_one_device_by_role_and_application(api: str, people: dict[str, str], fleet: str) -> None:
    with httpx.Client(base_url=api) as client:
        care = client.get(f"{DEVICES}/care-1", headers=bearer(people["care"]))
        assert care.status_code == 200 and care.json()["care_room"] == "bedroom"
        hidden = client.get(f"{DEVICES}/care-1", headers=bearer(people["highways"]))
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "not_found"
        assert client.get(f"{DEVICES}/new-1", headers=bearer(people["highways"])).status_code == 404
        assert client.get(f"{DEVICES}/gully-1", headers=bearer(people["care"])).status_code == 404
        assert client.get(f"{DEVICES}/new-1", headers=bearer(people["admin"])).json()["state"] == "unassigned"
        twin = client.get(f"{DEVICES}/twin", headers=bearer(people["highways"]))
        assert twin.status_code == 409 and twin.json()["error"]["code"] == "ambiguous_device"
        assert "'app-a', 'app-b'" in twin.json()["error"]["message"]
        b = client.get(f"{DEVICES}/twin", params={"application_id": "app-b"}, headers=bearer(people["highways"]))
        assert b.status_code == 200 and b.json()["application_id"] == "app-b" and b.json()["shared_name"] is True
        assert client.get(f"{DEVICES}/gully-1", headers=bearer(people["highways"])).json()["care_room"] is None
    viewed = audit_rows(fleet, "care_device_viewed")
    assert viewed == [("care", "device:app/care-1", {"devices": ["app/care-1"]})]


def test_writes_are_admin_only(api: str, people: dict[str, str], fleet: str) -> None:
    with httpx.Client(base_url=api) as client:
        for role in ("highways", "care"):
            h = bearer(people[role])
            assert client.post(DEVICES, json={"device_id": "x-1"}, headers=h).status_code == 403
            assert client.patch(f"{DEVICES}/gully-1", json={"name": "x"}, headers=h).status_code == 403
            assert client.delete(f"{DEVICES}/gully-3", headers=h).status_code == 403
            imported = client.post(
                f"{DEVICES}/import", content="device_id\nx-1\n", headers={**h, "Content-Type": "text/csv"}
            )
            assert imported.status_code == 403
        # 403 before anything else: a highways user cannot probe for a care device's name by creating it.
        r = client.post(
            DEVICES, json={"device_id": "care-1", "application_id": "app"}, headers=bearer(people["highways"])
        )
        assert r.status_code == 403
        assert client.get(f"{DEVICES}/x-1", headers=bearer(people["admin"])).status_code == 404


def test_create_update_with_the_registry_checks(api: str, people: dict[str, str], fleet: str) -> None:
    admin = bearer(people["admin"])
    with httpx.Client(base_url=api) as client:
        made = client.post(
            DEVICES,
            json={"device_id": "gully-9", "application_id": "app", "kind": "gully", "sensor_height_mm": 1200},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        assert made.json()["state"] == "never_seen" and made.json()["source"] == "manual"
        again = client.post(DEVICES, json={"device_id": "gully-9", "application_id": "app"}, headers=admin)
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_registered"
        # The registry's cross-field rules, each naming the field at fault.
        wrong = client.post(
            DEVICES, json={"device_id": "gully-10", "kind": "gully", "care_room": "kitchen"}, headers=admin
        )
        assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "registry_conflict"
        assert wrong.json()["error"]["message"].startswith("care_room: a gully sensor has no care_room")
        low = client.patch(f"{DEVICES}/gully-9", json={"outlet_invert_mm": 1300}, headers=admin)
        assert low.status_code == 409
        message = low.json()["error"]["message"]
        assert message.startswith("outlet_invert_mm: ") and "sensor_height_mm 1200 (stored)" in message
        typed = client.post(DEVICES, json={"device_id": "gully-11", "latitude": 91}, headers=admin)
        assert typed.status_code == 422 and typed.json()["error"]["details"][0]["loc"] == ["body", "latitude"]
        assert client.post(DEVICES, json={"device_id": "gully-11", "colour": "red"}, headers=admin).status_code == 422
        changed = client.patch(
            f"{DEVICES}/gully-9", json={"outlet_invert_mm": 200, "name": "Nine", "kind": None}, headers=admin
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["outlet_invert_mm"], changed.json()["name"], changed.json()["kind"]) == (
            200,
            "Nine",
            "gully",
        )
        cleared = client.patch(f"{DEVICES}/gully-9", json={"name": None}, headers=admin).json()
        assert cleared["name"] is None and cleared["outlet_invert_mm"] == 200
        assert client.patch(f"{DEVICES}/twin", json={"name": "t"}, headers=admin).status_code == 409
        assert client.patch(f"{DEVICES}/nothing", json={"name": "t"}, headers=admin).status_code == 404
        # A twin in another application is a new device; in no application, it would be ambiguous.
        twin = client.post(DEVICES, json={"device_id": "gully-9", "application_id": "app-c"}, headers=admin)
        assert twin.status_code == 201
        assert client.post(DEVICES, json={"device_id": "gully-9"}, headers=admin).status_code == 409
    assert [t for _, t, _ in audit_rows(fleet, "device_created")] == ["device:app-c/gully-9", "device:app/gully-9"]
    assert audit_rows(fleet, "device_updated")[-1][2] == {"fields": ["name", "outlet_invert_mm"]}


def test_delete_refuses_to_orphan_history(api: str, people: dict[str, str], fleet: str) -> None:
    admin = bearer(people["admin"])
    with httpx.Client(base_url=api) as client:
        kept = client.delete(f"{DEVICES}/gully-1", headers=admin)
        assert kept.status_code == 409 and kept.json()["error"]["code"] == "device_has_history"
        assert client.get(f"{DEVICES}/gully-1", headers=admin).status_code == 200
        assert client.delete(f"{DEVICES}/gully-3", headers=admin).status_code == 204
        assert client.get(f"{DEVICES}/gully-3", headers=admin).status_code == 404
        assert client.delete(f"{DEVICES}/gully-3", headers=admin).status_code == 404
        assert client.delete(f"{DEVICES}/twin", headers=admin).status_code == 409
        assert client.delete(f"{DEVICES}/twin", params={"application_id": "app-a"}, headers=admin).status_code == 204
    assert audit_rows(fleet, "device_deleted")[0][1] == "device:app-a/twin"


def test_a_device_that_was_heard_is_kept(api: str, api_db_url: str, people: dict[str, str], fleet: str) -> None:
    """Uplinks name their device: a gully registered anew as care-1 would inherit the care sensor's
    radio history (times, signal), unsealed, for highways to see."""
    admin = bearer(people["admin"])
    with httpx.Client(base_url=api) as client:
        for heard in ("care-1", "gully-2"):  # uplinks, no readings
            kept = client.delete(f"{DEVICES}/{heard}", headers=admin)
            assert kept.status_code == 409 and kept.json()["error"]["code"] == "device_has_history", heard
    with psycopg.connect(api_db_url) as conn, conn.transaction():  # whatever a route does
        conn.execute("SET LOCAL ROLE lorawatch_admin")
        with pytest.raises(psycopg.errors.RestrictViolation, match="care-1 was heard"):
            conn.execute("DELETE FROM devices WHERE device_id = 'care-1'")


def test_import_export_round_trip(api: str, people: dict[str, str], fleet: str) -> None:
    admin = {**bearer(people["admin"]), "Content-Type": "text/csv"}
    with httpx.Client(base_url=api) as client:
        exported = client.get(f"{DEVICES}/export", headers=admin)
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        lines = exported.text.splitlines()
        assert lines[0] == ",".join(EXPORT_HEADER)
        assert len(lines) == 8
        back = client.post(f"{DEVICES}/import", content=exported.text, headers=admin)
        assert back.status_code == 200, back.text
        assert back.json() == {"created": 0, "updated": 0, "unchanged": 7, "applied": True, "dry_run": False}
        # A highways export holds its own devices only, and a care device's export is audited.
        highways = client.get(f"{DEVICES}/export", headers=bearer(people["highways"])).text
        assert "care-1" not in highways and "new-1" not in highways and len(highways.splitlines()) == 6
        # Dry run: the counts, nothing written.
        new = "device_id,application_id,kind\ngully-20,app,gully\ngully-2,app,care\n"
        dry = client.post(f"{DEVICES}/import", params={"dry_run": "true"}, content=new, headers=admin)
        assert dry.json() == {"created": 1, "updated": 1, "unchanged": 0, "applied": False, "dry_run": True}
        assert client.get(f"{DEVICES}/gully-20", headers=admin).status_code == 404
        # Errors: every one, by line and column; nothing applied.
        bad = "device_id,application_id,kind,latitude\ngully-21,app,gully,95\ngully-22,app,pond,1\ntwin,,gully,\n"
        refused = client.post(f"{DEVICES}/import", content=bad, headers=admin)
        assert refused.status_code == 422
        locs = [d["loc"] for d in refused.json()["error"]["details"]]
        assert locs == [["body", 2, "latitude"], ["body", 3, "kind"], ["body", 4, "application_id"]]
        assert refused.json()["error"]["message"].startswith("body.2.latitude: 95: a latitude is between")
        assert client.get(f"{DEVICES}/gully-21", headers=admin).status_code == 404
        applied = client.post(f"{DEVICES}/import", content=new, headers=admin)
        assert applied.json()["applied"] is True
        assert client.get(f"{DEVICES}/gully-2", headers=admin).json()["kind"] == "care"
    exports = audit_rows(fleet, "care_devices_exported")
    assert [(actor, detail) for actor, _, detail in exports] == [("admin", {"devices": ["app/care-1"]})]
    assert audit_rows(fleet, "devices_imported")[0][2] == {"created": 1, "updated": 1}
