"""The device registry file: parse and check a CSV, plan its upsert against the stored devices, write one.

Pure: no I/O and no SQL. `store/registry.py` reads the stored devices and applies a plan in one
transaction; `lorawatch devices import|export` (and later the API's bulk import) only move bytes.
docs/devices.md describes the format and every rule checked here.

Checking happens in two steps, and every error of both is reported (never just the first):

1. `parse(data)` checks the file on its own: encoding, CSV syntax, the header, each cell's type and
   range. The result names the devices the file is about.
2. `plan(parsed, stored)` finds each row's device among the stored ones with those names, merges the
   row into what is stored (a column the file lacks keeps its value) and checks the merged device:
   outlet invert below the sensor, no care room on a gully, one row per device, `application_id`
   where a name is in two applications.

Errors carry the line the row starts on and the column at fault: `FILE:LINE: column COLUMN: why`.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from store.records import Device, DeviceEntry

#: The registry file's columns (DESIGN.md's contract). A file has `device_id` and any subset of the rest.
HEADER: tuple[str, ...] = (
    "device_id", "kind", "brand_id", "model_id", "name", "latitude", "longitude", "sensor_height_mm",
    "outlet_invert_mm", "care_room", "care_group",
)  # fmt: skip
#: What `devices export` writes: every column, with `application_id` to tell twins apart.
EXPORT_HEADER: tuple[str, ...] = ("device_id", "application_id", *HEADER[1:])
#: The columns an import sets (identity aside), in table order.
VALUE_COLUMNS: tuple[str, ...] = HEADER[1:]
KINDS: tuple[str, ...] = ("gully", "care", "unassigned")
NUMBER_COLUMNS: tuple[str, ...] = ("latitude", "longitude", "sensor_height_mm", "outlet_invert_mm")
TEXT_COLUMNS: tuple[str, ...] = ("brand_id", "model_id", "name", "care_room", "care_group")
IDENTIFIERS: tuple[str, ...] = ("device_id", "application_id", "brand_id", "model_id")
#: Longest identifier (what ingest accepts from a network server) and longest other text.
MAX_ID = 128
MAX_TEXT = 256
#: Columns only a gully has, and only a care sensor has.
GULLY_ONLY: tuple[str, ...] = ("sensor_height_mm", "outlet_invert_mm")
CARE_ONLY: tuple[str, ...] = ("care_room", "care_group")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_KNOWN = frozenset(EXPORT_HEADER)

Value = str | float | None
#: Reports a problem with one column of the row being checked.
Fail = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class RegistryError:
    """One problem with a registry file: where (line, column) and why."""

    line: int
    column: str | None
    reason: str

    def format(self, source: str) -> str:
        """`FILE:LINE: column COLUMN: why` (without the column part when a whole row is at fault)."""
        column = f"column {self.column}: " if self.column else ""
        return f"{source}:{self.line}: {column}{self.reason}"


@dataclass(frozen=True, slots=True)
class RegistryFile:
    """A parsed file: the value columns it has (file order, identity columns aside), whether it has an
    `application_id` column, its rows and the errors found in it on its own."""

    columns: tuple[str, ...]
    has_application: bool
    entries: list[DeviceEntry]
    errors: list[RegistryError]

    @property
    def device_ids(self) -> list[str]:
        """The names the file is about, each once (what to read from the store for `plan`)."""
        return sorted({e.device_id for e in self.entries})


@dataclass(frozen=True, slots=True)
class NewDevice:
    """A device the import creates (`values`: the file's columns; the rest take the table defaults)."""

    line: int
    application_id: str
    device_id: str
    values: dict[str, Value]


@dataclass(frozen=True, slots=True)
class DeviceUpdate:
    """A stored device (`ref` is `devices.id`) the import changes: `values` are its file columns after
    the import; `application_id` changes only when a row adopts a device registered in no application."""

    line: int
    ref: int
    application_id: str
    device_id: str
    values: dict[str, Value]


@dataclass(frozen=True, slots=True)
class RegistryPlan:
    """What applying a file would do. Nothing may be applied unless `errors` is empty."""

    columns: tuple[str, ...]
    creates: list[NewDevice] = field(default_factory=list)
    updates: list[DeviceUpdate] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RegistryError] = field(default_factory=list)


# --- step 1: the file on its own -------------------------------------------------------------------


def parse(data: bytes | str) -> RegistryFile:
    """Parse a registry file (UTF-8, with or without a byte-order mark). Blank lines are skipped and
    cells are stripped of surrounding whitespace."""
    errors: list[RegistryError] = []
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            reason = f"not UTF-8 text (byte 0x{data[exc.start]:02x}): save the file as UTF-8"
            return RegistryFile((), False, [], [RegistryError(line, None, reason)])
    else:
        text = data.removeprefix("\ufeff")
    rows = _rows(text, errors)
    if rows is None:
        return RegistryFile((), False, [], errors)
    rows = [(line, cells) for line, cells in rows if any(c.strip() for c in cells)]
    if not rows:
        return RegistryFile((), False, [], [RegistryError(1, None, "no header: the file is empty")])
    header_line, header = rows[0]
    index = _header(header_line, [h.strip() for h in header], errors)
    if "device_id" not in index:
        reason = "missing: the header must name device_id (and any of " + ", ".join(EXPORT_HEADER[1:]) + ")"
        errors.append(RegistryError(header_line, "device_id", reason))
        return RegistryFile((), False, [], errors)
    columns = tuple(c for c in index if c in VALUE_COLUMNS)
    entries = []
    width = len(header)
    for line, row in rows[1:]:
        cells = row
        if len(cells) > width and not any(c.strip() for c in cells[width:]):
            cells = cells[:width]  # trailing empty cells, as spreadsheets write them
        if len(cells) != width:
            errors.append(RegistryError(line, None, f"{len(row)} cells, but the header has {width} columns"))
            continue
        entry = _entry(line, cells, index, errors)
        if entry is not None:
            entries.append(entry)
    return RegistryFile(columns, "application_id" in index, entries, errors)


def _rows(text: str, errors: list[RegistryError]) -> list[tuple[int, list[str]]] | None:
    """(line the record starts on, cells) for every record; None after a CSV syntax error."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    done = 0
    try:
        for cells in reader:
            rows.append((done + 1, cells))
            done = reader.line_num
    except csv.Error as exc:
        errors.append(RegistryError(done + 1, None, f"not valid CSV: {exc}"))
        return None
    return rows


def _header(line: int, names: list[str], errors: list[RegistryError]) -> dict[str, int]:
    """Column name -> cell index, for the known columns named once; errors for the rest."""
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            errors.append(RegistryError(line, f"#{i + 1}", "has no name in the header"))
        elif name not in _KNOWN:
            known = ", ".join(EXPORT_HEADER)
            errors.append(RegistryError(line, name, f"unknown column (the columns are {known})"))
        elif name in index:
            errors.append(RegistryError(line, name, "appears twice in the header"))
        else:
            index[name] = i
    return index


def _entry(line: int, cells: list[str], index: dict[str, int], errors: list[RegistryError]) -> DeviceEntry | None:
    """One row checked cell by cell (None when any cell is wrong; its errors are in `errors`)."""
    before = len(errors)

    def fail(column: str, reason: str) -> None:
        errors.append(RegistryError(line, column, reason))

    device_id = cells[index["device_id"]].strip()
    if not device_id:
        fail("device_id", "empty: every row names its device")
    else:
        _check_text("device_id", device_id, fail)
    application_id: str | None = None
    if "application_id" in index:
        application_id = cells[index["application_id"]].strip()
        _check_text("application_id", application_id, fail)
    values: dict[str, Value] = {}
    for column in VALUE_COLUMNS:
        if column in index:
            values[column] = _value(column, cells[index[column]].strip(), fail)
    if len(errors) > before:
        return None
    return DeviceEntry(line, device_id, application_id, values)


def _check_text(column: str, text: str, fail: Fail) -> bool:
    limit = MAX_ID if column in IDENTIFIERS else MAX_TEXT
    if len(text) > limit:
        fail(column, f"{len(text)} characters long, over the limit of {limit}")
        return False
    bad = next((ch for ch in text if unicodedata.category(ch) == "Cc"), None)
    if bad is not None:
        fail(column, f"contains the control character U+{ord(bad):04X}")
        return False
    return True


def _value(column: str, cell: str, fail: Fail) -> Value:
    """A cell's value (an empty cell is None, i.e. NULL); `fail` is told what is wrong with it."""
    if column == "kind":
        kind = cell.lower()
        if kind not in KINDS:
            shown = repr(cell) if cell else "empty"
            fail(column, f"{shown}: must be one of {', '.join(KINDS)}")
        return kind
    if not cell:
        return None
    if column in TEXT_COLUMNS:
        return cell if _check_text(column, cell, fail) else None
    if not _NUMBER.fullmatch(cell):
        fail(column, f"{cell!r} is not a number (use digits and a decimal point, e.g. 1250 or 51.4545)")
        return None
    number = float(cell)
    reason = _out_of_range(column, number)
    if reason:
        fail(column, f"{cell}: {reason}")
    return number


def _out_of_range(column: str, number: float) -> str | None:
    if not math.isfinite(number):
        return "not a finite number"
    if column == "latitude" and not -90.0 <= number <= 90.0:
        return "a latitude is between -90 and 90"
    if column == "longitude" and not -180.0 <= number <= 180.0:
        return "a longitude is between -180 and 180"
    if column == "sensor_height_mm" and number <= 0:
        return "the sensor height above the gully floor must be above 0"
    if column == "outlet_invert_mm" and number < 0:
        return "the outlet invert height above the gully floor must be 0 or more"
    return None


# --- step 2: against what is stored -----------------------------------------------------------------


def plan(parsed: RegistryFile, stored: Sequence[Device]) -> RegistryPlan:
    """Resolve each row to a stored device (or a new one), merge and check it. `stored` must hold every
    device named in the file (`parsed.device_ids`); others are ignored. Row errors from `parse` are
    carried over, so the plan's errors are all the file's errors."""
    errors = list(parsed.errors)
    by_name: dict[str, list[Device]] = {}
    for stored_device in stored:
        by_name.setdefault(stored_device.device_id, []).append(stored_device)
    names_in_file: dict[str, list[DeviceEntry]] = {}
    for entry in parsed.entries:
        names_in_file.setdefault(entry.device_id, []).append(entry)
    creates: list[NewDevice] = []
    updates: list[DeviceUpdate] = []
    unchanged = 0
    targets: dict[object, int] = {}  # device ref or new identity -> the line that claimed it
    for entry in parsed.entries:
        found = _resolve(entry, by_name.get(entry.device_id, []), names_in_file[entry.device_id], errors)
        if found is None:
            continue
        device, application_id = found
        key: object = device.id if device is not None else (application_id, entry.device_id)
        if key in targets:
            reason = f"{entry.device_id!r} is already on line {targets[key]}: one row per device"
            errors.append(RegistryError(entry.line, "device_id", reason))
            continue
        targets[key] = entry.line
        current = _current(device)
        merged = current | entry.values
        if not _check_merged(entry, merged, errors):
            continue
        if device is None:
            creates.append(NewDevice(entry.line, application_id, entry.device_id, dict(entry.values)))
        elif merged != current or application_id != device.application_id:
            updates.append(DeviceUpdate(entry.line, device.id, application_id, entry.device_id, dict(entry.values)))
        else:
            unchanged += 1
    errors.sort(key=lambda e: (e.line, _column_order(e.column)))
    return RegistryPlan(parsed.columns, creates, updates, unchanged, errors)


def _resolve(
    entry: DeviceEntry, named: list[Device], same_name: list[DeviceEntry], errors: list[RegistryError]
) -> tuple[Device | None, str] | None:
    """(the stored device the row is about or None for a new one, its application_id after the import);
    None after an error."""
    app = entry.application_id
    if app:  # named exactly; a device of that name in no application is adopted, as ingest would
        for device in named:
            if device.application_id == app:
                return device, app
        for device in named:
            if device.application_id == "":
                return device, app
        return None, app
    if app == "":
        for device in named:
            if device.application_id == "":
                return device, ""
    if len(named) == 1:
        return named[0], named[0].application_id
    if len(named) > 1:
        apps = ", ".join(repr(d.application_id) for d in named)
        reason = f"required: {entry.device_id!r} is registered in several applications ({apps})"
        errors.append(RegistryError(entry.line, "application_id", reason))
        return None
    # A new device in no application next to a row naming an application for that name: the same
    # device or a twin? (Next to a row without one, it is simply there twice: `plan` says so.)
    other = next((e for e in same_name if e.application_id), None)
    if other is not None:
        reason = f"required: {entry.device_id!r} is also on line {other.line} ({other.application_id!r})"
        errors.append(RegistryError(entry.line, "application_id", reason))
        return None
    return None, ""


def _current(device: Device | None) -> dict[str, Value]:
    """The stored values of the import's columns (a new device: the table's defaults)."""
    if device is None:
        return dict.fromkeys(VALUE_COLUMNS) | {"kind": "unassigned"}
    values: dict[str, Value] = {c: getattr(device, c) for c in VALUE_COLUMNS}
    return values


def _check_merged(entry: DeviceEntry, merged: dict[str, Value], errors: list[RegistryError]) -> bool:
    """The rules that involve more than one column, on the device as it would be after the import."""
    before = len(errors)
    given = entry.values

    def show(column: str) -> str:
        value = merged[column]
        text = _format(value) if isinstance(value, float) else repr(value)
        return f"{column} {text}" + ("" if column in given else " (stored)")

    height, invert = merged["sensor_height_mm"], merged["outlet_invert_mm"]
    if isinstance(height, float) and isinstance(invert, float) and invert >= height:
        column = "outlet_invert_mm" if "outlet_invert_mm" in given else "sensor_height_mm"
        reason = f"{show('outlet_invert_mm')} must be below {show('sensor_height_mm')}"
        errors.append(RegistryError(entry.line, column, reason))
    kind = merged["kind"]
    for wrong_kind, columns, right in (("gully", CARE_ONLY, "care"), ("care", GULLY_ONLY, "gully")):
        if kind != wrong_kind:
            continue
        for column in columns:
            if merged[column] is not None:
                at = column if column in given else "kind"
                reason = f"a {wrong_kind} sensor has no {column}, but {show(column)} is set (empty it, or kind {right})"
                errors.append(RegistryError(entry.line, at, reason))
    return len(errors) == before


def _column_order(column: str | None) -> int:
    if column in EXPORT_HEADER:
        return EXPORT_HEADER.index(column)
    return len(EXPORT_HEADER)


# --- writing ---------------------------------------------------------------------------------------


def _format(value: object) -> str:
    """A cell: floats exactly (integral ones without a fraction), None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    return str(value)


def write_rows(rows: Iterable[Mapping[str, object]], out: TextIO) -> int:
    """Rows (column -> value; a missing column is empty) as a registry file with `EXPORT_HEADER`;
    returns how many were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    n = 0
    for row in rows:
        writer.writerow([_format(row.get(column)) for column in EXPORT_HEADER])
        n += 1
    return n


def device_row(device: Device) -> dict[str, object]:
    """A stored device as a registry row (what `devices export` writes for it)."""
    return {column: getattr(device, column) for column in EXPORT_HEADER}


def write_devices(devices: Iterable[Device], out: TextIO) -> int:
    """Stored devices as a registry file that imports back as a no-op."""
    return write_rows(map(device_row, devices), out)
