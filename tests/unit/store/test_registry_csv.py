"""The device registry file on its own (parse) and against stored devices (plan), without a database."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pytest

from store.records import Device
from store.registry_csv import EXPORT_HEADER, HEADER, RegistryError, parse, plan, write_devices, write_rows

FULL = ",".join(HEADER)


def stored(device_id: str, app: str = "", ref: int = 1, **values: Any) -> Device:
    fields: dict[str, Any] = dict.fromkeys(HEADER[1:]) | {"kind": "unassigned"} | values
    return Device(
        id=ref,
        device_id=device_id,
        application_id=app,
        source="tts",
        attributes={},
        first_seen=None,
        last_seen=None,
        **fields,
    )


def where(errors: list[RegistryError]) -> list[tuple[int, str | None]]:
    return [(e.line, e.column) for e in errors]


# --- parse ------------------------------------------------------------------------------------------


def test_a_full_row_parses_to_typed_values() -> None:
    text = f"{FULL}\ngully-0001,Gully,dragino,ldds75,Mill Lane,51.4545,-2.5879,1200,450.5,,\n"
    parsed = parse(text)
    assert parsed.errors == []
    (entry,) = parsed.entries
    assert (entry.line, entry.device_id, entry.application_id) == (2, "gully-0001", None)
    assert entry.values == {
        "kind": "gully",
        "brand_id": "dragino",
        "model_id": "ldds75",
        "name": "Mill Lane",
        "latitude": 51.4545,
        "longitude": -2.5879,
        "sensor_height_mm": 1200.0,
        "outlet_invert_mm": 450.5,
        "care_room": None,
        "care_group": None,
    }
    assert parsed.columns == HEADER[1:] and not parsed.has_application


def test_only_the_columns_in_the_header_are_set() -> None:
    parsed = parse("name,device_id\n Mill Lane , gully-1 \n")
    assert parsed.errors == []
    assert parsed.columns == ("name",)
    assert parsed.entries[0].values == {"name": "Mill Lane"}  # cells are stripped
    assert parsed.entries[0].device_id == "gully-1"


def test_an_empty_application_cell_is_not_a_missing_column() -> None:
    parsed = parse("device_id,application_id,kind\ng-1,,gully\ng-2,app-a,care\n")
    assert [(e.device_id, e.application_id) for e in parsed.entries] == [("g-1", ""), ("g-2", "app-a")]
    assert parsed.has_application and parsed.columns == ("kind",)


def test_utf8_with_a_byte_order_mark_and_crlf_lines() -> None:
    body = "device_id,name\r\ngully-1,Chemin de l’Église\r\n"
    plain, bom = parse(body.encode()), parse(b"\xef\xbb\xbf" + body.encode())
    assert plain == bom
    assert bom.errors == [] and bom.entries[0].values == {"name": "Chemin de l’Église"}


def test_a_file_that_is_not_utf8_is_refused_with_its_line() -> None:
    parsed = parse(b"device_id,name\ngully-1,ok\ngully-2,Caf\xe9\n")
    assert where(parsed.errors) == [(3, None)]
    assert "not UTF-8" in parsed.errors[0].reason and not parsed.entries


@pytest.mark.parametrize(
    ("header", "column", "why"),
    [
        ("device_id,kind,colour", "colour", "unknown column"),
        ("device_id,name,name", "name", "appears twice"),
        ("device_id,,name", "#2", "has no name"),
    ],
)
def test_header_errors_name_the_column(header: str, column: str, why: str) -> None:
    parsed = parse(f"{header}\ng-1,gully,y\n")
    assert [(e.line, e.column) for e in parsed.errors] == [(1, column)]
    assert why in parsed.errors[0].reason


def test_a_header_without_device_id_stops_there() -> None:
    parsed = parse("name,kind\nMill Lane,gully\n")
    assert where(parsed.errors) == [(1, "device_id")] and not parsed.entries


def test_an_empty_file_is_an_error() -> None:
    assert where(parse("").errors) == [(1, None)]
    assert where(parse("\n\n").errors) == [(1, None)]


def test_every_bad_cell_is_reported_with_line_and_column() -> None:
    rows = [
        "gully-1,gully,dragino,ldds75,ok,51.4,-2.5,1200,400,,",  # line 2: fine
        "gully-2,drain,dragino,ldds75,x,91,-2.5,1200,400,,",  # kind, latitude
        "gully-3,gully,dragino,ldds75,x,51.4,east,0,-1,,",  # longitude, height, invert
        ",gully,,,,,,,,,",  # device_id
        "gully-5,,,,na\x00me,1e3,nan,inf,1_000,,",  # kind empty, NUL, latitude, longitude, height, invert
        "gully-6,care,,,x,51.4,-2.5,,,bedroom,flat-6",  # fine
    ]
    parsed = parse(FULL + "\n" + "\n".join(rows) + "\n")
    assert [e.device_id for e in parsed.entries] == ["gully-1", "gully-6"]
    assert where(parsed.errors) == [
        (3, "kind"),
        (3, "latitude"),
        (4, "longitude"),
        (4, "sensor_height_mm"),
        (4, "outlet_invert_mm"),
        (5, "device_id"),
        (6, "kind"),
        (6, "name"),
        (6, "latitude"),
        (6, "longitude"),
        (6, "sensor_height_mm"),
        (6, "outlet_invert_mm"),
    ]
    reasons = {(e.line, e.column): e.reason for e in parsed.errors}
    assert "must be one of gully, care, unassigned" in reasons[3, "kind"]
    assert "between -90 and 90" in reasons[3, "latitude"]
    assert "not a number" in reasons[4, "longitude"]
    assert "control character U+0000" in reasons[6, "name"]
    assert "empty" in reasons[6, "kind"]


def test_numbers_accept_plain_decimal_and_exponent_forms() -> None:
    parsed = parse("device_id,latitude,longitude,sensor_height_mm\ng,-0.5,+.25,1.2e3\n")
    assert parsed.errors == []
    assert parsed.entries[0].values == {"latitude": -0.5, "longitude": 0.25, "sensor_height_mm": 1200.0}


@pytest.mark.parametrize("cell", ['"1,5"', "1.2.3", "0x10", "12mm", "Infinity"])
def test_anything_else_is_not_a_number(cell: str) -> None:
    parsed = parse(f"device_id,sensor_height_mm\ng,{cell}\n")
    assert where(parsed.errors) == [(2, "sensor_height_mm")]


def test_ids_and_text_have_length_limits() -> None:
    parsed = parse(f"device_id,name\n{'d' * 129},ok\ng-2,{'n' * 257}\ng-3,{'n' * 256}\n")
    assert where(parsed.errors) == [(2, "device_id"), (3, "name")]
    assert "over the limit of 128" in parsed.errors[0].reason


def test_rows_of_the_wrong_width_are_refused_but_trailing_empty_cells_are_not() -> None:
    parsed = parse("device_id,kind,name\ng-1,gully\ng-2,gully,a,b\ng-3,gully,c,,\n")
    assert where(parsed.errors) == [(2, None), (3, None)]
    assert "2 cells, but the header has 3 columns" in parsed.errors[0].reason
    assert [e.device_id for e in parsed.entries] == ["g-3"]


def test_line_numbers_are_physical_lines_past_blank_lines_and_multiline_cells() -> None:
    text = 'device_id,name\n\ng-1,"two\nlines"\n\n,x\ng-7,ok\n'
    parsed = parse(text)
    assert where(parsed.errors) == [(3, "name"), (6, "device_id")]  # a line break is a control character
    assert [(e.line, e.device_id) for e in parsed.entries] == [(7, "g-7")]


def test_broken_quoting_is_a_csv_error_at_its_line() -> None:
    parsed = parse('device_id,name\ng-1,ok\ng-2,"unterminated\n')
    assert where(parsed.errors) == [(3, None)] and "not valid CSV" in parsed.errors[0].reason


def test_errors_format_as_file_line_column_why() -> None:
    assert RegistryError(7, "latitude", "too far north").format("fleet.csv") == (
        "fleet.csv:7: column latitude: too far north"
    )
    assert RegistryError(3, None, "2 cells").format("fleet.csv") == "fleet.csv:3: 2 cells"


# --- plan -------------------------------------------------------------------------------------------


def test_a_row_without_application_updates_the_one_device_of_that_name() -> None:
    p = plan(parse("device_id,kind,sensor_height_mm\ngully-1,gully,1200\n"), [stored("gully-1", "app-a", 5)])
    assert p.errors == [] and p.creates == []
    (update,) = p.updates
    assert (update.ref, update.application_id, update.values) == (
        5,
        "app-a",
        {"kind": "gully", "sensor_height_mm": 1200.0},
    )


def test_a_name_not_stored_is_created_in_no_application() -> None:
    p = plan(parse("device_id,kind\ngully-1,gully\n"), [])
    assert p.errors == [] and p.updates == []
    assert [(c.application_id, c.device_id, c.values) for c in p.creates] == [("", "gully-1", {"kind": "gully"})]


def test_twins_need_an_application_id() -> None:
    twins = [stored("shared", "app-a", 1), stored("shared", "app-b", 2)]
    p = plan(parse("device_id,name\nshared,x\n"), twins)
    assert where(p.errors) == [(2, "application_id")]
    assert "required" in p.errors[0].reason and "'app-a', 'app-b'" in p.errors[0].reason
    p = plan(parse("device_id,application_id,name\nshared,app-b,B\nshared,app-a,A\n"), twins)
    assert p.errors == []
    assert [(u.ref, u.values["name"]) for u in p.updates] == [(2, "B"), (1, "A")]


def test_an_empty_application_cell_prefers_the_device_in_no_application() -> None:
    twins = [stored("shared", "", 1), stored("shared", "app-a", 2)]
    p = plan(parse("device_id,application_id,name\nshared,,none\nshared,app-a,A\n"), twins)
    assert p.errors == []
    assert [(u.ref, u.application_id) for u in p.updates] == [(1, ""), (2, "app-a")]


def test_a_named_application_adopts_a_device_registered_in_none() -> None:
    p = plan(parse("device_id,application_id,kind\ngully-1,app-a,gully\n"), [stored("gully-1", "", 3)])
    assert p.errors == [] and p.creates == []
    assert [(u.ref, u.application_id) for u in p.updates] == [(3, "app-a")]


def test_a_named_application_not_stored_is_created_there() -> None:
    p = plan(parse("device_id,application_id\ngully-1,app-b\n"), [stored("gully-1", "app-a", 3)])
    assert [(c.application_id, c.device_id) for c in p.creates] == [("app-b", "gully-1")]


def test_a_device_twice_in_one_file_is_an_error_on_the_second_row() -> None:
    text = "device_id,application_id,name\ngully-1,app-a,a\ngully-2,,b\ngully-1,app-a,c\n"
    p = plan(parse(text), [stored("gully-1", "app-a", 1)])
    assert where(p.errors) == [(4, "device_id")] and "already on line 2" in p.errors[0].reason
    # also when one row names the application and the other finds the device by name
    p = plan(parse(text.replace("app-a,c", ",c")), [stored("gully-1", "app-a", 1)])
    assert where(p.errors) == [(4, "device_id")]
    # and for a device not stored yet
    p = plan(parse("device_id,name\ngully-1,a\ngully-2,b\ngully-1,c\n"), [])
    assert where(p.errors) == [(4, "device_id")] and "already on line 2" in p.errors[0].reason


def test_a_new_device_without_application_next_to_another_row_of_its_name_is_ambiguous() -> None:
    p = plan(parse("device_id,application_id\ngully-1,\ngully-1,app-a\n"), [])
    assert where(p.errors) == [(2, "application_id")] and "also on line 3" in p.errors[0].reason


def test_the_outlet_invert_must_be_below_the_sensor() -> None:
    p = plan(parse("device_id,sensor_height_mm,outlet_invert_mm\ng,900,900\n"), [])
    assert where(p.errors) == [(2, "outlet_invert_mm")]
    assert p.errors[0].reason == "outlet_invert_mm 900 must be below sensor_height_mm 900"


def test_the_outlet_invert_is_checked_against_the_stored_sensor_height() -> None:
    device = stored("g", "app", 1, kind="gully", sensor_height_mm=1000.0, outlet_invert_mm=400.0)
    p = plan(parse("device_id,outlet_invert_mm\ng,1000.5\n"), [device])
    assert where(p.errors) == [(2, "outlet_invert_mm")]
    assert p.errors[0].reason == "outlet_invert_mm 1000.5 must be below sensor_height_mm 1000 (stored)"
    p = plan(parse("device_id,sensor_height_mm\ng,350\n"), [device])
    assert where(p.errors) == [(2, "sensor_height_mm")]
    assert "outlet_invert_mm 400 (stored)" in p.errors[0].reason
    assert plan(parse("device_id,sensor_height_mm\ng,\n"), [device]).errors == []  # cleared: nothing to compare


def test_a_gully_has_no_care_room_and_a_care_sensor_no_geometry() -> None:
    text = "device_id,kind,care_room,sensor_height_mm\ng-1,gully,bedroom,\nc-1,care,,1200\nu-1,unassigned,hall,1200\n"
    p = plan(parse(text), [])
    assert where(p.errors) == [(2, "care_room"), (3, "sensor_height_mm")]
    assert "kind care" in p.errors[0].reason and "kind gully" in p.errors[1].reason


def test_a_new_kind_is_checked_against_the_stored_columns() -> None:
    device = stored("c-1", "app", 1, kind="care", care_room="bedroom", care_group="flat-1")
    p = plan(parse("device_id,kind\nc-1,gully\n"), [device])
    assert where(p.errors) == [(2, "kind"), (2, "kind")]
    assert "care_room 'bedroom' (stored)" in p.errors[0].reason
    assert plan(parse("device_id,kind,care_room,care_group\nc-1,gully,,\n"), [device]).errors == []


def test_rows_that_change_nothing_are_unchanged() -> None:
    device = stored("g", "app", 1, kind="gully", name="Mill Lane", sensor_height_mm=1200.0)
    p = plan(parse("device_id,kind,name,sensor_height_mm\ng,gully,Mill Lane,1200.0\n"), [device])
    assert (p.creates, p.updates, p.unchanged) == ([], [], 1)
    p = plan(parse("device_id,name\ng,\n"), [device])
    assert [u.values for u in p.updates] == [{"name": None}]


def test_plan_errors_and_parse_errors_are_reported_together_in_line_order() -> None:
    twins = [stored("shared", "a", 1), stored("shared", "b", 2)]
    p = plan(parse("device_id,latitude\nshared,1\ng-2,100\n"), twins)
    assert where(p.errors) == [(2, "application_id"), (3, "latitude")]


# --- writing ----------------------------------------------------------------------------------------


def test_written_devices_parse_back_to_a_no_op() -> None:
    devices = [
        stored("gully-1", "app-a", 1, kind="gully", brand_id="dragino", model_id="ldds75", name='Mill "Lane", N',
               latitude=51.454512345678, longitude=-2.5879, sensor_height_mm=1200.0, outlet_invert_mm=0.1 + 0.2),
        stored("shared", "", 2),
        stored("shared", "app-b", 3, kind="care", care_room="bed room", care_group="flat-1", latitude=1e-7),
    ]  # fmt: skip
    out = io.StringIO()
    assert write_devices(devices, out) == 3
    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(EXPORT_HEADER)
    assert 'gully-1,app-a,gully,dragino,ldds75,"Mill ""Lane"", N",51.454512345678,-2.5879,1200,' in text
    parsed = parse(text)
    assert parsed.errors == []
    p = plan(parsed, devices)
    assert (p.errors, p.creates, p.updates, p.unchanged) == ([], [], [], 3)
    # the same values differing in the last bit are a change
    nudged = replace(devices[0], outlet_invert_mm=0.3)
    assert [u.ref for u in plan(parsed, [nudged, *devices[1:]]).updates] == [1]


def test_rows_with_missing_columns_write_empty_cells() -> None:
    out = io.StringIO()
    write_rows([{"device_id": "g", "kind": "gully", "sensor_height_mm": 1200.5}], out)
    assert out.getvalue().splitlines()[1] == "g,,gully,,,,,,1200.5,,,"
