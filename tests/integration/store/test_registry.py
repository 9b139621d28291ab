"""The device registry against a real TimescaleDB: upserts onto devices ingest registered, twins in two
applications, all-or-nothing imports, and export -> import as a no-op."""

from __future__ import annotations

import io

import psycopg
import pytest

from store import queries, registry
from store.records import Device
from store.writer import IngestWriter
from tests.integration.store.records_factory import record


@pytest.fixture
def conn(db_url: str):
    with psycopg.connect(db_url) as c:
        yield c


def ingest(db_url: str, *records) -> None:
    with psycopg.connect(db_url) as c:
        IngestWriter(c).write(list(records))


def devices(db_url: str) -> list[Device]:
    with psycopg.connect(db_url) as c:
        return queries.devices(c)


def named(db_url: str, device_id: str) -> list[Device]:
    with psycopg.connect(db_url) as c:
        return queries.devices_named(c, device_id)


def export(db_url: str) -> str:
    out = io.StringIO()
    with psycopg.connect(db_url) as c:
        registry.export_devices(c, out)
    return out.getvalue()


def test_an_import_upserts_onto_the_device_ingest_registered(db_url: str, conn) -> None:
    ingest(db_url, record("gully-1", 1, app="app-a"))
    (before,) = named(db_url, "gully-1")
    assert before.kind == "unassigned"
    text = (
        "device_id,kind,name,sensor_height_mm,outlet_invert_mm\ngully-1,gully,Mill Lane,1200,450\ngully-2,gully,,900,\n"
    )
    result = registry.import_devices(conn, text)
    assert (result.created, result.updated, result.unchanged, result.errors, result.applied) == (1, 1, 0, [], True)
    (after,) = named(db_url, "gully-1")
    assert (after.id, after.application_id, after.kind, after.name) == (before.id, "app-a", "gully", "Mill Lane")
    assert (after.sensor_height_mm, after.outlet_invert_mm) == (1200.0, 450.0)
    # what the file does not name is untouched: ingest's model, identity and watermarks
    assert (after.brand_id, after.model_id, after.source) == ("dragino", "ldds75", "tts")
    assert after.first_seen == before.first_seen == after.last_seen == before.last_seen
    (new,) = named(db_url, "gully-2")
    assert (new.application_id, new.source, new.kind, new.sensor_height_mm, new.name) == (
        "",
        "manual",
        "gully",
        900.0,
        None,
    )
    # ingest keeps the registry's values and adopts the new entry into the application it arrives from
    ingest(db_url, record("gully-1", 2, app="app-a"), record("gully-2", 1, app="app-a"))
    assert [(d.device_id, d.application_id, d.kind) for d in devices(db_url)] == [
        ("gully-1", "app-a", "gully"),
        ("gully-2", "app-a", "gully"),
    ]
    assert named(db_url, "gully-2")[0].sensor_height_mm == 900.0


def test_absent_columns_keep_their_values_and_empty_cells_clear_them(db_url: str, conn) -> None:
    registry.import_devices(conn, "device_id,kind,name,latitude,longitude\ng,gully,Mill Lane,51.45,-2.58\n")
    result = registry.import_devices(conn, "device_id,latitude\ng,\n")
    assert (result.created, result.updated) == (0, 1)
    (device,) = named(db_url, "g")
    assert (device.kind, device.name, device.latitude, device.longitude) == ("gully", "Mill Lane", None, -2.58)


def test_twins_in_two_applications(db_url: str, conn) -> None:
    ingest(
        db_url,
        record("shared-1", 1, app="app-a"),
        record("shared-1", 1, app="app-b", key="tts:app-b/shared-1:s:1"),
    )
    result = registry.import_devices(conn, "device_id,kind\nshared-1,gully\n")
    assert not result.applied
    assert [(e.line, e.column) for e in result.errors] == [(2, "application_id")]
    assert "'app-a', 'app-b'" in result.errors[0].reason
    text = "device_id,application_id,kind,name\nshared-1,app-b,care,Flat 2\nshared-1,app-a,gully,Mill Lane\n"
    result = registry.import_devices(conn, text)
    assert (result.created, result.updated, result.errors) == (0, 2, [])
    assert [(d.application_id, d.kind, d.name, d.shared_name) for d in named(db_url, "shared-1")] == [
        ("app-a", "gully", "Mill Lane", True),
        ("app-b", "care", "Flat 2", True),
    ]


def test_a_bad_file_applies_nothing_and_reports_every_row(db_url: str, conn) -> None:
    ingest(db_url, record("gully-1", 1, app="app-a"))
    registry.import_devices(conn, "device_id,kind,sensor_height_mm,outlet_invert_mm\ngully-1,gully,1000,400\n")
    before = export(db_url)
    text = (
        "device_id,kind,name,latitude,sensor_height_mm,outlet_invert_mm,care_room\n"
        "gully-1,gully,renamed,51.4,,,\n"  # 2: fine on its own
        "gully-2,gully,new,95,1200,300,\n"  # 3: latitude
        "gully-3,pipe,new,51.4,1200,300,\n"  # 4: kind
        "gully-4,gully,new,51.4,1200,1300,\n"  # 5: invert above the sensor
        "care-1,gully,new,51.4,,,bedroom\n"  # 6: a gully with a room
        "gully-1,gully,again,51.4,,,\n"  # 7: twice
        "gully-5,gully,new,51.4,1200,300,\n"  # 8: fine
    )
    result = registry.import_devices(conn, text)
    assert not result.applied
    assert [(e.line, e.column) for e in result.errors] == [
        (3, "latitude"),
        (4, "kind"),
        (5, "outlet_invert_mm"),
        (6, "care_room"),
        (7, "device_id"),
    ]
    assert export(db_url) == before  # not a single row applied: not even lines 2 and 8
    assert [d.device_id for d in devices(db_url)] == ["gully-1"]


def test_an_invert_is_checked_against_the_stored_height(db_url: str, conn) -> None:
    registry.import_devices(conn, "device_id,kind,sensor_height_mm\ng,gully,1000\n")
    result = registry.import_devices(conn, "device_id,outlet_invert_mm\ng,1000\n")
    assert [(e.line, e.column) for e in result.errors] == [(2, "outlet_invert_mm")]
    assert "(stored)" in result.errors[0].reason
    assert named(db_url, "g")[0].outlet_invert_mm is None


def test_export_then_import_is_a_no_op(db_url: str, conn) -> None:
    ingest(
        db_url,
        record("gully-1", 1, app="app-a"),
        record("shared-1", 1, app="app-a"),
        record("shared-1", 1, app="app-b", key="tts:app-b/shared-1:s:1"),
    )
    text = (
        "device_id,application_id,kind,name,latitude,longitude,sensor_height_mm,outlet_invert_mm,care_room,care_group\n"
        'gully-1,app-a,gully,"Mill Lane, by the ""Bell""",51.454512345678901,-2.58790001,'
        "1234.5678,0.30000000000000004,,\n"
        "shared-1,app-b,care,Flat 2 bedroom,,,,,bedroom,Flat 2\n"
        "spare-1,,unassigned,Spare,1e-7,,,,,\n"
    )
    assert registry.import_devices(conn, text).errors == []
    first = export(db_url)
    assert len(first.splitlines()) == 5  # header, gully-1, shared-1 twice, spare-1
    result = registry.import_devices(conn, first)
    assert (result.created, result.updated, result.unchanged, result.errors) == (0, 0, 4, [])
    assert export(db_url) == first
    (gully,) = named(db_url, "gully-1")
    assert (gully.latitude, gully.outlet_invert_mm) == (51.454512345678901, 0.30000000000000004)


def test_a_dry_run_writes_nothing(db_url: str, conn) -> None:
    result = registry.import_devices(conn, "device_id,kind\ng-1,gully\ng-2,care\n", dry_run=True)
    assert (result.created, result.applied, result.errors) == (2, False, [])
    assert devices(db_url) == []


def test_thousands_of_rows_import_in_one_go(db_url: str, conn) -> None:
    rows = "".join(f"gully-{i:05d},gully,{51 + i / 1e5},1200,{300 + i % 100}\n" for i in range(5000))
    text = "device_id,kind,latitude,sensor_height_mm,outlet_invert_mm\n" + rows
    assert registry.import_devices(conn, text).created == 5000
    result = registry.import_devices(conn, text.replace(",1200,", ",1300,"))
    assert (result.created, result.updated) == (0, 5000)
    assert {d.sensor_height_mm for d in devices(db_url)} == {1300.0}
