"""Score a replay's alerts against the simulator's ground-truth labels: what `lorawatch score --labels`
prints. Pure: lists of dicts in, a `Scorecard` out; reading files and the registry is the caller's.

A label is ground truth about one subject over [start, end]. Each label kind expects one alert
category, or none:

    storm -> flood (only at the flood warning level: see below)    blockage -> blockage
    silt -> silt    battery_low -> battery_low    offline -> offline (a device silent on its own)
    stuck, no_echo, tilt -> sensor_fault    fall -> fall    inactivity -> inactivity
    night_wandering -> night_activity    gateway_outage -> gateway_offline
    spike, parked_vehicle, rejoin -> nothing

**A storm** expects a flood alert only when the water reached the warning level: fill at peak =
100 * peak_mm / (sensor_height_mm - outlet_invert_mm) >= `flood_fill_pct` (60 by default, the shipped
rule's warning level). A storm below it, or on a device whose registry row lacks the geometry to
compute the fill, expects nothing. Every storm "explains" flood and rising alerts that overlap it:
they are real water, so not false, even when not expected.

**A gateway outage** is one label per device it silenced, all with the same gateway_id, start and
end; they are grouped into ONE expected outage, matched by a gateway_offline alert with that
gateway_id. An `offline` alert for one of the silenced devices during the outage is a duplicate of
the outage (the inhibition of device alerts behind a dead gateway failed), not a true positive.

**Matching.** An alert matches an expected label when its category is the expected one, its subject
is the label's (device_id equal; for the care labels the alert's device_id is one of the label's
device_ids, i.e. any device in the resident's flat, or its care_group, or else its device's in the
registry, is the label's resident; for a gateway outage the gateway_id), and it opened within
[start - pre, end + post] of the label, where (pre, post) is (0, 1 h) by default, (2 days, 1 h) for
battery_low and (1 s, 0) for fall (the alarm must open during the fall itself; the second before
allows for the VS373 dating re-sent history in whole seconds). Labels are taken in
start order and each takes the earliest matching alert not already taken as its true positive (TP);
other alerts that match it are duplicates. A label with no TP is a miss.

An alert is then, in this order: a TP; a duplicate of the first label it matches; for a flood alert
overlapping a spike, stuck, no_echo, tilt or parked_vehicle label of its device, a false positive
also counted in `false_floods_from_faults` (a fault wins over a storm that explains: a flood alert
during a stuck or tilted sensor is the sensor's doing); "explained" when it overlaps a label that
explains its category (storm: flood and rising; spike, parked_vehicle, rejoin: sensor_fault and
anomaly); otherwise a false positive (FP). "Overlaps" means the alert's [opened_at, resolved_at]
(open-ended while unresolved) meets the label's window for the alert's category as above.

**Anomaly** alerts are on for the record: counted, and marked "explained" when they overlap any label
of their subject, else "record"; never false positives. **Late or simulated** alerts (`late` or
`simulated` true) are left out of everything and only counted in the `late` column.

**Rates.** False positives are given per 100 sensor-days of the category's fleet: sensor-days =
devices of that kind in the registry x the run's span in days. flood, rising, blockage, silt,
sensor_fault and gateway_offline are gully categories; fall, inactivity, bathroom_dwell and
night_activity care ones; offline, battery_low and anomaly belong to the kind of the alert's (or
label's) device, so their row's fleet is every kind they were seen on. **Timing** of a TP: for
flood the lead time, label peak_at - opened_at (positive: warned before the peak); for the others
the delay, opened_at - label start; rows give the median and the 90th percentile (linear
interpolation) in minutes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from store import geometry

Outcome = Literal["tp", "miss", "dup", "fp", "explained", "record"]
Timing = Literal["lead", "delay"]

#: Every alert category, in the order the tables list them.
CATEGORIES: tuple[str, ...] = (
    "flood", "rising", "blockage", "silt", "sensor_fault", "offline", "gateway_offline", "battery_low",
    "fall", "inactivity", "bathroom_dwell", "night_activity", "anomaly",
)  # fmt: skip
#: The fleets (registry kinds) rates are given for.
FLEETS: tuple[str, ...] = ("gully", "care")
#: Categories only one fleet raises; the others take the kind of the alert's or label's device.
CATEGORY_FLEET: dict[str, str] = dict.fromkeys(
    ("flood", "rising", "blockage", "silt", "sensor_fault", "gateway_offline"), "gully"
) | dict.fromkeys(("fall", "inactivity", "bathroom_dwell", "night_activity"), "care")
#: The category each label kind expects (None: expects no alert). A storm's is conditional.
EXPECTS: dict[str, str | None] = {
    "storm": "flood",
    "blockage": "blockage",
    "silt": "silt",
    "battery_low": "battery_low",
    "offline": "offline",
    "stuck": "sensor_fault",
    "no_echo": "sensor_fault",
    "tilt": "sensor_fault",
    "fall": "fall",
    "inactivity": "inactivity",
    "night_wandering": "night_activity",
    "gateway_outage": "gateway_offline",
    "spike": None,
    "parked_vehicle": None,
    "rejoin": None,
}
#: Categories whose alerts a label kind makes not false when they overlap it.
EXPLAINS: dict[str, frozenset[str]] = {
    "storm": frozenset({"flood", "rising"}),
    "spike": frozenset({"sensor_fault", "anomaly"}),
    "parked_vehicle": frozenset({"sensor_fault", "anomaly"}),
    "rejoin": frozenset({"sensor_fault", "anomaly"}),
}
#: Sensor faults that can fake a flood: a flood alert over one is a false flood.
FAULTS: frozenset[str] = frozenset({"spike", "stuck", "no_echo", "tilt", "parked_vehicle"})
#: Care labels: about a resident (any device of their flat), not one device.
CARE_LABELS: frozenset[str] = frozenset({"fall", "inactivity", "night_wandering"})
#: (pre, post) around a label within which a matching alert must open.
DEFAULT_WINDOW: tuple[timedelta, timedelta] = (timedelta(0), timedelta(hours=1))
WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "battery_low": (timedelta(days=2), timedelta(hours=1)),
    # A fall must open during the fall itself; the second before it is allowed because the VS373's
    # re-sent history dates an alarm in whole seconds (a fall at 07:33:43.4 is recorded as 07:33:43).
    "fall": (timedelta(seconds=1), timedelta(0)),
}
#: A fall alert this soon after the fall came from the alarm uplink itself (sent 2-6 s after it).
FALL_AT_UPLINK = timedelta(seconds=60)


@dataclass(frozen=True)
class DeviceInfo:
    """What scoring needs of a registry row: the fleet a device belongs to, and a gully's geometry
    (to tell a storm that should flood from one that should not)."""

    device_id: str
    kind: str  # "gully" | "care" (or "unassigned": in no fleet)
    sensor_height_mm: float | None
    outlet_invert_mm: float | None
    care_group: str | None


@dataclass(frozen=True)
class Match:
    """One verdict: an expected label and its TP or miss, or an alert and what it was.

    `label` is the label dict (for a gateway outage a synthetic one: label, gateway_id, start, end,
    device_id = the first silenced device, device_ids = all of them); `category` the alert's, or the
    expected one for a miss; `minutes` the lead time (flood) or delay of a TP; `fleet` the kind it
    counts against (None: a device not in the registry)."""

    label: dict[str, Any] | None
    alert: dict[str, Any] | None
    outcome: Outcome
    category: str
    rule: str | None
    minutes: float | None
    fleet: str | None


@dataclass(frozen=True)
class Row:
    """One line of a table: a category (`name` == `category`) or a rule."""

    name: str
    category: str
    fleets: tuple[str, ...]
    alerts: int  # on-time alerts (TP + dup + FP + explained + record)
    labels: int
    tp: int
    missed: int
    recall: float | None
    fp: int
    dup: int
    explained: int
    late: int
    fp_per_100_sensor_days: float | None
    timing: Timing
    median_min: float | None
    p90_min: float | None


@dataclass(frozen=True)
class FleetTotal:
    """A fleet's bottom line: every false positive counted against it (by category or device kind) per
    100 of its sensor-days, the number that says whether a fleet's alerts can be trusted."""

    fleet: str
    devices: int
    sensor_days: float
    labels: int
    tp: int
    fp: int
    fp_per_100_sensor_days: float | None


@dataclass(frozen=True)
class Scorecard:
    """Everything `score` found: `rows` by category and `by_rule`, every verdict in `matches` (for
    drilling down and the report), the fleets' `sensor_days` and `totals`, and the counts the tables'
    footer gives. `notes` say what could not be judged (unknown label kinds, storms on gullies without
    geometry, false positives on devices outside the registry)."""

    rows: list[Row]
    by_rule: list[Row]
    matches: list[Match]
    sensor_days: dict[str, float]
    totals: list[FleetTotal]
    false_floods_from_faults: int
    fall_at_uplink: int
    storms_below_warning: int
    anomalies: int
    anomalies_overlapping: int
    late: int
    flood_fill_pct: float
    first: datetime
    last: datetime
    notes: list[str] = field(default_factory=list)


# --- reading -----------------------------------------------------------------------------------------


def load_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One JSON object per line (blank lines skipped): ALERTS.jsonl or FILE.labels.jsonl. A bad line is
    a ValueError naming the file and the line, so a truncated capture says where it broke."""
    out: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{path}:{number}: not valid JSON: {exc.msg} (column {exc.colno})"
                raise ValueError(msg) from None
            if not isinstance(value, dict):
                msg = f"{path}:{number}: expected a JSON object, got {type(value).__name__}"
                raise ValueError(msg)
            out.append(value)
    return out


def devices_from_csv(text: str) -> list[DeviceInfo]:
    """The registry CSV (`simulate --devices-out`, `devices export`) as DeviceInfo. Only device_id is
    required, as in the registry; blank cells and absent columns are None (kind: "unassigned")."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    if reader.fieldnames is None or "device_id" not in [f.strip() for f in reader.fieldnames]:
        msg = "registry CSV: the header must name device_id"
        raise ValueError(msg)
    out: list[DeviceInfo] = []
    for row in reader:
        cells = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}
        if not any(cells.values()):
            continue
        line = reader.line_num
        if not cells.get("device_id"):
            msg = f"registry CSV line {line}: no device_id"
            raise ValueError(msg)
        out.append(
            DeviceInfo(
                device_id=cells["device_id"],
                kind=(cells.get("kind") or "unassigned").lower(),
                sensor_height_mm=_number(cells, "sensor_height_mm", line),
                outlet_invert_mm=_number(cells, "outlet_invert_mm", line),
                care_group=cells.get("care_group") or None,
            )
        )
    return out


def _number(cells: Mapping[str, str], column: str, line: int) -> float | None:
    text = cells.get(column) or ""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        msg = f"registry CSV line {line}: {column} is not a number: {text!r}"
        raise ValueError(msg) from None


# --- the parsed inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Alert:
    raw: dict[str, Any]
    order: int
    id: str
    rule: str
    category: str
    device_id: str | None
    gateway_id: str | None
    care_group: str | None
    opened: datetime
    resolved: datetime | None


@dataclass(frozen=True)
class _Label:
    """A label, or a gateway outage's group of labels, with the subject spelled out."""

    raw: dict[str, Any]
    order: int
    kind: str
    start: datetime
    end: datetime
    devices: frozenset[str]
    resident: str | None
    gateway_id: str | None
    expects: str | None
    peak_at: datetime | None


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        msg = f"{what}: expected an ISO 8601 time, got {value!r}"
        raise ValueError(msg)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{what}: not an ISO 8601 time: {value!r}"
        raise ValueError(msg) from None
    if at.tzinfo is None:
        msg = f"{what}: {value!r} has no time zone"
        raise ValueError(msg)
    return at


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _late(alert: _Alert) -> bool:
    """Late (raised after the fact, from delayed data) and simulated (a drill) alerts say nothing about
    how well the rules detect."""
    return bool(alert.raw.get("late") or alert.raw.get("simulated"))


def _parse_alert(raw: dict[str, Any], order: int, registry: Mapping[str, DeviceInfo]) -> _Alert:
    """An alert's care group is its own, else its device's in the registry: alerts rarely carry one."""
    what = f"alert {raw.get('id', f'#{order + 1}')}"
    for key in ("rule", "category", "opened_at"):
        if key not in raw:
            msg = f"{what}: no {key}"
            raise ValueError(msg)
    resolved = raw.get("resolved_at")
    device_id = _text(raw.get("device_id"))
    device = registry.get(device_id) if device_id is not None else None
    return _Alert(
        raw=raw,
        order=order,
        id=str(raw.get("id", order)),
        rule=str(raw["rule"]),
        category=str(raw["category"]),
        device_id=device_id,
        gateway_id=_text(raw.get("gateway_id")),
        care_group=_text(raw.get("care_group")) or (device.care_group if device is not None else None),
        opened=_time(raw["opened_at"], f"{what} opened_at"),
        resolved=None if resolved is None else _time(resolved, f"{what} resolved_at"),
    )


def _parse_label(raw: dict[str, Any], order: int) -> _Label:
    for key in ("label", "device_id", "start", "end"):
        if key not in raw:
            msg = f"label #{order + 1}: no {key}"
            raise ValueError(msg)
    kind = str(raw["label"])
    what = f"label #{order + 1} ({kind})"
    devices = {str(raw["device_id"])}
    resident = None
    if kind in CARE_LABELS:
        devices |= {str(d) for d in raw.get("device_ids") or ()}
        resident = _text(raw.get("resident"))
    peak = raw.get("peak_at")
    return _Label(
        raw=raw,
        order=order,
        kind=kind,
        start=_time(raw["start"], f"{what} start"),
        end=_time(raw["end"], f"{what} end"),
        devices=frozenset(devices),
        resident=resident,
        gateway_id=_text(raw.get("gateway_id")),
        expects=EXPECTS.get(kind),
        peak_at=None if peak is None else _time(peak, f"{what} peak_at"),
    )


def _outages(labels: Sequence[_Label]) -> list[_Label]:
    """One expected outage per (gateway_id, start, end), over every device it silenced."""
    groups: dict[tuple[str | None, datetime, datetime], list[_Label]] = {}
    for label in labels:
        groups.setdefault((label.gateway_id, label.start, label.end), []).append(label)
    out = []
    for (gateway_id, start, end), members in groups.items():
        devices = frozenset().union(*(m.devices for m in members))
        raw = {
            "label": "gateway_outage",
            "gateway_id": gateway_id,
            "start": members[0].raw["start"],
            "end": members[0].raw["end"],
            "device_id": min(devices),
            "device_ids": sorted(devices),
        }
        first = members[0]
        out.append(
            _Label(raw, first.order, "gateway_outage", start, end, devices, None, gateway_id, "gateway_offline", None)
        )
    return out


def _fill_pct(label: _Label, devices: Mapping[str, DeviceInfo]) -> float | None:
    """A storm's fill at its peak, exactly as the flood rule computes fill (store.geometry); None
    without the geometry. peak_mm is water above the outlet invert, so the level is invert + peak."""
    device = devices.get(str(label.raw["device_id"]))
    peak = label.raw.get("peak_mm")
    if device is None or device.outlet_invert_mm is None or not isinstance(peak, int | float):
        return None
    return geometry.fill_pct(device.outlet_invert_mm + peak, device.sensor_height_mm, device.outlet_invert_mm)


# --- matching ----------------------------------------------------------------------------------------


def _window(category: str, label: _Label) -> tuple[datetime, datetime]:
    pre, post = WINDOWS.get(category, DEFAULT_WINDOW)
    return label.start - pre, label.end + post


def _about(label: _Label, alert: _Alert) -> bool:
    """Is the alert about the label's subject? A gateway outage's subject is its gateway for gateway
    alerts and the devices it silenced for device alerts."""
    if label.kind == "gateway_outage" and alert.category == "gateway_offline":
        return alert.gateway_id is not None and alert.gateway_id == label.gateway_id
    if alert.device_id is not None and alert.device_id in label.devices:
        return True
    return label.resident is not None and alert.care_group == label.resident


def _opened_within(label: _Label, alert: _Alert) -> bool:
    low, high = _window(alert.category, label)
    return low <= alert.opened <= high


def _overlaps(label: _Label, alert: _Alert) -> bool:
    low, high = _window(alert.category, label)
    return alert.opened <= high and (alert.resolved is None or alert.resolved >= low)


def _matches(label: _Label, alert: _Alert) -> bool:
    return alert.category == label.expects and _about(label, alert) and _opened_within(label, alert)


def _duplicates(label: _Label, alert: _Alert) -> bool:
    """Matches, or an offline alert for a device silenced by this gateway outage."""
    if _matches(label, alert):
        return True
    outage = label.kind == "gateway_outage" and alert.category == "offline"
    return outage and _about(label, alert) and _opened_within(label, alert)


class _Index:
    """Alerts (or labels) by the subjects they can be about, so matching is not all against all."""

    def __init__(self) -> None:
        self.device: dict[str, list[int]] = {}
        self.group: dict[str, list[int]] = {}
        self.gateway: dict[str, list[int]] = {}

    def add(self, i: int, devices: Iterable[str], group: str | None, gateway: str | None) -> None:
        for d in devices:
            self.device.setdefault(d, []).append(i)
        if group is not None:
            self.group.setdefault(group, []).append(i)
        if gateway is not None:
            self.gateway.setdefault(gateway, []).append(i)

    def find(self, devices: Iterable[str], group: str | None, gateway: str | None) -> list[int]:
        found: set[int] = set()
        for d in devices:
            found.update(self.device.get(d, ()))
        if group is not None:
            found.update(self.group.get(group, ()))
        if gateway is not None:
            found.update(self.gateway.get(gateway, ()))
        return sorted(found)


def score(
    alerts: Sequence[Mapping[str, Any]],
    labels: Sequence[Mapping[str, Any]],
    devices: Sequence[DeviceInfo],
    first: datetime,
    last: datetime,
    *,
    flood_fill_pct: float = 60.0,
) -> Scorecard:
    """Compare `alerts` (ALERTS.jsonl) with `labels` (FILE.labels.jsonl) over the run `first`..`last`
    on the fleet `devices`, by the rules in this module's docstring."""
    if first.tzinfo is None or last.tzinfo is None:
        msg = "first and last must be aware datetimes"
        raise ValueError(msg)
    if last < first:
        msg = f"the run ends ({last.isoformat()}) before it starts ({first.isoformat()})"
        raise ValueError(msg)
    registry = {d.device_id: d for d in devices}
    parsed = [_parse_alert(dict(a), i, registry) for i, a in enumerate(alerts)]
    late = [a for a in parsed if _late(a)]
    on_time = sorted((a for a in parsed if not _late(a)), key=lambda a: (a.opened, a.order))
    all_labels = [_parse_label(dict(raw), i) for i, raw in enumerate(labels)]
    targets, below, notes = _targets(all_labels, registry, flood_fill_pct)
    matches, false_floods = _classify(on_time, all_labels, targets, registry)
    counts = Counter(d.kind for d in devices)
    days = (last - first).total_seconds() / 86400.0
    sensor_days = {f: counts[f] * days for f in FLEETS}
    rows, by_rule = _tables(matches, late, sensor_days, counts)
    totals = []
    for fleet in FLEETS:
        if counts[fleet]:
            mine = [m for m in matches if m.fleet == fleet]
            fp = sum(m.outcome == "fp" for m in mine)
            labelled = sum(m.outcome in ("tp", "miss") for m in mine)
            tp = sum(m.outcome == "tp" for m in mine)
            totals.append(
                FleetTotal(fleet, counts[fleet], sensor_days[fleet], labelled, tp, fp, _rate(fp, sensor_days[fleet]))
            )
    homeless = sum(m.fleet is None and m.outcome == "fp" for m in matches)
    if homeless:
        notes.append(f"{homeless} false positives on devices not in the registry are in no fleet's total")
    at_uplink = sum(
        m.outcome == "tp"
        and m.category == "fall"
        and m.minutes is not None
        and m.minutes * 60 <= FALL_AT_UPLINK.total_seconds()
        for m in matches
    )
    anomalies = [m for m in matches if m.category == "anomaly"]
    return Scorecard(
        rows=rows,
        by_rule=by_rule,
        matches=matches,
        sensor_days=sensor_days,
        totals=totals,
        false_floods_from_faults=false_floods,
        fall_at_uplink=at_uplink,
        storms_below_warning=below,
        anomalies=len(anomalies),
        anomalies_overlapping=sum(m.outcome == "explained" for m in anomalies),
        late=len(late),
        flood_fill_pct=flood_fill_pct,
        first=first,
        last=last,
        notes=notes,
    )


def _targets(
    labels: Sequence[_Label], registry: Mapping[str, DeviceInfo], flood_fill_pct: float
) -> tuple[list[_Label], int, list[str]]:
    """The labels that expect an alert, in start order (gateway outages grouped); how many storms
    stayed below the warning level; notes on labels that could not be judged."""
    targets: list[_Label] = []
    below = no_geometry = 0
    for label in labels:
        if label.kind == "storm":
            fill = _fill_pct(label, registry)
            if fill is None:
                no_geometry += 1
            elif fill >= flood_fill_pct:
                targets.append(label)
            else:
                below += 1
        elif label.expects is not None and label.kind != "gateway_outage":
            targets.append(label)
    targets += _outages([label for label in labels if label.kind == "gateway_outage"])
    targets.sort(key=lambda t: (t.start, t.order))
    notes = []
    if no_geometry:
        notes.append(
            f"{no_geometry} storm labels on devices without sensor_height_mm and outlet_invert_mm in the "
            "registry expect no flood alert"
        )
    unknown = Counter(label.kind for label in labels if label.kind not in EXPECTS)
    if unknown:
        kinds = ", ".join(f"{k} ({n})" for k, n in sorted(unknown.items()))
        notes.append(f"labels of kinds the scorecard does not know were ignored: {kinds}")
    return targets, below, notes


def _classify(
    alerts: Sequence[_Alert], labels: Sequence[_Label], targets: Sequence[_Label], registry: Mapping[str, DeviceInfo]
) -> tuple[list[Match], int]:
    """Every target's TP or miss and every alert's verdict (see the module docstring), and how many
    false positives were floods over a sensor fault."""

    def kind_of(device_id: str | None) -> str | None:
        device = registry.get(device_id) if device_id is not None else None
        return device.kind if device is not None and device.kind in FLEETS else None

    alert_index = _Index()
    for i, a in enumerate(alerts):
        alert_index.add(i, () if a.device_id is None else (a.device_id,), a.care_group, a.gateway_id)
    label_index = _Index()
    for i, label in enumerate(labels):
        label_index.add(i, label.devices, label.resident, label.gateway_id)

    def candidates(label: _Label) -> list[int]:
        return alert_index.find(label.devices, label.resident, label.gateway_id)

    matches: list[Match] = []
    taken: dict[int, _Label] = {}  # alert -> the label it is the TP of
    for target in targets:
        assert target.expects is not None
        free = [i for i in candidates(target) if i not in taken and _matches(target, alerts[i])]
        if free:
            taken[min(free, key=lambda i: (alerts[i].opened, alerts[i].order))] = target
        else:
            fleet = CATEGORY_FLEET.get(target.expects) or kind_of(str(target.raw["device_id"]))
            matches.append(Match(target.raw, None, "miss", target.expects, None, None, fleet))
    claims: dict[int, _Label] = {}  # alert -> the first label it duplicates
    for target in targets:
        for i in candidates(target):
            if i not in taken and i not in claims and _duplicates(target, alerts[i]):
                claims[i] = target

    false_floods = 0
    for i, alert in enumerate(alerts):
        subject = () if alert.device_id is None else (alert.device_id,)
        near = [labels[j] for j in label_index.find(subject, alert.care_group, alert.gateway_id)]
        near = [label for label in near if _about(label, alert) and _overlaps(label, alert)]
        faults = [label for label in near if label.kind in FAULTS]
        explains = [label for label in near if alert.category in EXPLAINS.get(label.kind, ())]
        why: _Label | None
        outcome: Outcome
        minutes = None
        if alert.category == "anomaly":
            why = near[0] if near else None
            outcome = "record" if why is None else "explained"
        elif i in taken:
            why, outcome = taken[i], "tp"
            minutes = _minutes(why, alert)
        elif i in claims:
            why, outcome = claims[i], "dup"
        elif alert.category == "flood" and faults:
            why, outcome = faults[0], "fp"
            false_floods += 1
        elif explains:
            why, outcome = explains[0], "explained"
        else:
            why, outcome = None, "fp"
        fleet = CATEGORY_FLEET.get(alert.category) or kind_of(alert.device_id)
        matches.append(
            Match(None if why is None else why.raw, alert.raw, outcome, alert.category, alert.rule, minutes, fleet)
        )
    return matches, false_floods


def _minutes(label: _Label, alert: _Alert) -> float | None:
    """A TP's timing: a flood's lead time before the storm's peak, anything else's delay after the
    label's start. None for a flood on a storm label without peak_at."""
    if alert.category == "flood":
        return None if label.peak_at is None else (label.peak_at - alert.opened).total_seconds() / 60.0
    return (alert.opened - label.start).total_seconds() / 60.0


def _tables(
    matches: Sequence[Match], late: Sequence[_Alert], sensor_days: Mapping[str, float], counts: Mapping[str, int]
) -> tuple[list[Row], list[Row]]:
    """The rows by category, then by (rule, category). A rule's labels are its category's in the fleets
    it raised alerts on; its misses are those labels it did not take (another rule may have)."""
    late_by_category = Counter(a.category for a in late)
    late_by_rule = Counter((a.rule, a.category) for a in late)
    seen = {m.category for m in matches} | set(late_by_category)
    categories = [c for c in CATEGORIES if c in seen] + sorted(seen - set(CATEGORIES))
    rows = []
    for category in categories:
        mine = [m for m in matches if m.category == category]
        labelled = sum(m.outcome in ("tp", "miss") for m in mine)
        fleets = _fleets(category, mine, counts)
        rows.append(_row(category, category, mine, labelled, late_by_category[category], fleets, sensor_days))
    by_rule = []
    keys = {(m.rule, m.category) for m in matches if m.rule is not None} | set(late_by_rule)
    for rule, category in sorted(keys, key=lambda k: (_category_order(k[1]), k[0])):
        mine = [m for m in matches if m.rule == rule and m.category == category]
        fleets = _fleets(category, mine, counts)
        labelled = sum(m.category == category and m.outcome in ("tp", "miss") and m.fleet in fleets for m in matches)
        rows_late = late_by_rule[(rule, category)]
        by_rule.append(_row(rule, category, mine, labelled, rows_late, fleets, sensor_days))
    return rows, by_rule


def _category_order(category: str) -> int:
    return CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES)


def _fleets(category: str, matches: Iterable[Match], counts: Mapping[str, int]) -> tuple[str, ...]:
    """The fleets a row's rate is over: the category's own, else the kinds its alerts and labels were
    on, else every fleet in the registry."""
    if category in CATEGORY_FLEET:
        return (CATEGORY_FLEET[category],)
    seen = {m.fleet for m in matches if m.fleet is not None}
    return tuple(f for f in FLEETS if f in seen) or tuple(f for f in FLEETS if counts.get(f))


def _row(
    name: str,
    category: str,
    mine: Sequence[Match],
    labelled: int,
    late: int,
    fleets: tuple[str, ...],
    sensor_days: Mapping[str, float],
) -> Row:
    tp = [m for m in mine if m.outcome == "tp"]
    fp = sum(m.outcome == "fp" for m in mine)
    minutes = sorted(m.minutes for m in tp if m.minutes is not None)
    return Row(
        name=name,
        category=category,
        fleets=fleets,
        alerts=sum(m.alert is not None for m in mine),
        labels=labelled,
        tp=len(tp),
        missed=labelled - len(tp),
        recall=len(tp) / labelled if labelled else None,
        fp=fp,
        dup=sum(m.outcome == "dup" for m in mine),
        explained=sum(m.outcome == "explained" for m in mine),
        late=late,
        fp_per_100_sensor_days=None if category == "anomaly" else _rate(fp, sum(sensor_days[f] for f in fleets)),
        timing="lead" if category == "flood" else "delay",
        median_min=_percentile(minutes, 0.5),
        p90_min=_percentile(minutes, 0.9),
    )


def _rate(fp: int, sensor_days: float) -> float | None:
    return 100.0 * fp / sensor_days if sensor_days > 0 else None


def _percentile(ordered: Sequence[float], q: float) -> float | None:
    """The q-quantile of sorted values by linear interpolation between closest ranks (numpy's default)."""
    if not ordered:
        return None
    at = q * (len(ordered) - 1)
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


# --- output ------------------------------------------------------------------------------------------


def as_json(card: Scorecard) -> dict[str, Any]:
    """The scorecard as plain JSON types (times as ISO 8601), for machines and tests."""
    out = asdict(card)
    out["first"] = card.first.isoformat()
    out["last"] = card.last.isoformat()
    for key in ("rows", "by_rule"):
        for row in out[key]:
            row["fleets"] = list(row["fleets"])
    return out


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _grid(header: Sequence[str], body: Sequence[Sequence[str]], left: int) -> list[str]:
    """Columns padded to their widest cell: the first `left` aligned left, the rest right."""
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header))]
    lines = []
    for r in (header, *body):
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return lines


COLUMNS: tuple[str, ...] = (
    "alerts", "labels", "TP", "missed", "recall", "FP", "dup", "expl", "late", "FP/100sd", "timing", "median min",
    "p90 min",
)  # fmt: skip


def row_cells(row: Row) -> list[str]:
    """A row's cells under COLUMNS, as both the text table and the HTML report show them."""
    scored = row.category != "anomaly"  # anomalies are counted, never matched or judged false
    return [
        str(row.alerts),
        str(row.labels) if scored else "-",
        str(row.tp) if scored else "-",
        str(row.missed) if scored else "-",
        _pct(row.recall),
        str(row.fp) if scored else "-",
        str(row.dup),
        str(row.explained),
        str(row.late),
        _num(row.fp_per_100_sensor_days, 2),
        row.timing if row.tp else "-",
        _num(row.median_min),
        _num(row.p90_min),
    ]


def footer(card: Scorecard) -> list[str]:
    """The lines that say how to read the tables, and what they leave out."""
    days = (card.last - card.first).total_seconds() / 86400.0
    lines = []
    for total in card.totals:
        lines.append(
            f"{total.fleet} fleet: {total.devices} devices x {days:.2f} days = "
            f"{total.sensor_days:.1f} sensor-days; {total.labels} labels, {total.tp} TP, {total.fp} false positives"
            f" = {_num(total.fp_per_100_sensor_days, 2)} per 100 sensor-days"
        )
    falls = next((r.tp for r in card.rows if r.category == "fall"), 0)
    lines += [
        "timing: flood is lead time (label peak_at - alert opened_at; positive = warned before the peak), the "
        "others delay (opened_at - label start), in minutes; FP/100sd = false positives per 100 sensor-days of "
        "the category's fleet",
        f"storms expect a flood alert at >= {card.flood_fill_pct:g}% fill at peak; {card.storms_below_warning} "
        "below that expect none (their flood and rising alerts are explained, not false)",
        f"false floods from sensor faults (spike, stuck, no_echo, tilt, parked_vehicle): "
        f"{card.false_floods_from_faults}",
    ]
    if falls:
        lines.append(f"falls alerted within 60 s of the fall (at the alarm uplink): {card.fall_at_uplink} of {falls}")
    lines += [
        f"anomaly alerts are on for the record: {card.anomalies} raised, {card.anomalies_overlapping} overlap a "
        "label; they are never counted as false positives",
        f"late or simulated alerts: {card.late}, left out of everything but the late column",
    ]
    return lines + card.notes


def format_table(card: Scorecard) -> str:
    """The scorecard as plain aligned text: by category, by rule, then a line per fleet and the notes."""
    by_category = _grid(("category", *COLUMNS), [[r.name, *row_cells(r)] for r in card.rows], 1)
    by_rule = _grid(("rule", "category", *COLUMNS), [[r.name, r.category, *row_cells(r)] for r in card.by_rule], 2)
    return "\n".join([*by_category, "", *by_rule, "", *footer(card)]) + "\n"
