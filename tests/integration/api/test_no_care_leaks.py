"""No care data reaches a highways user through any read route, whatever the route.

A mixed world is seeded (gullies, care sensors, a care sensor re-kinded to gully, which stays sealed,
an unassigned device; readings, events, alerts and their logs on both fleets; silences; gateways
hearing both fleets) and then EVERY GET operation of the OpenAPI document is walked as highways and
as care: every path parameter filled with every id of both fleets, every query parameter tried, each
list followed through all its pages. A new GET route is walked too, and fails until the test knows
how to fill its path parameters and what it should answer (CHECKS).

Each answer (body, headers and decoded cursors) is searched for the other side's identifiers, and
its items, counts and aggregates are compared with what the role's own slice of the seed gives,
computed here from the seed alone, not by the code under test. Care is held to the same checks, so
the test cannot pass by everything being empty."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dashboard.app import create_app
from dashboard.config import ApiSettings
from store import alerts as db
from store.records import DeadLetter
from store.writer import IngestWriter
from tests.integration.api.conftest import bearer
from tests.integration.api.seed_devices import register, uplinks
from tests.integration.store.records_factory import record

#: The world's clock, set when it is built (`start_clock`): windows such as `window_hours=1` are
#: judged by the server's clock, so a NOW taken when the module was collected, minutes before the test
#: ran in a long suite, moved a reading heard 55 minutes before it out of the server's hour.
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
MIN = timedelta(minutes=1)
T = NOW - timedelta(hours=2)  # alerts open from here on
MISSING_ALERT = 10**9
FOUND = "Mrs Zedwick found on the floor"  # a carer's note: the resident's name in an alert log
WIDTHS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)

RULES_FILE = """\
version: 1
routes:
  highways: {}
  care-team: {}
rules:
  - {name: gully-flood, category: flood, type: threshold, applies_to: {kind: gully}, metric: level_mm,
     warning: {above: 500}, route: highways}
  - {name: care-fall, category: fall, type: device_alarm, applies_to: {kind: care, groups: [grp-kx42],
     devices: [radar-q7]}, event: alarm, match: {alarm_type: fall}, route: care-team}
  - {name: gateway-down, category: gateway_offline, type: gateway_offline, applies_to: {kind: gully},
     route: highways}
  - {name: any-battery, category: battery_low, type: battery, below_v: 3.1}
  - {name: named-few, category: offline, type: offline, applies_to: {devices: [radar-q8, gully-a1]},
     expected_interval: 1h}
"""
RULES_SEEN = {
    "highways": ["gully-flood", "gateway-down", "any-battery"],
    "care": ["care-fall", "gateway-down", "any-battery"],
}


# --- the world ---------------------------------------------------------------------------------------


@dataclass
class Device:
    device_id: str
    app: str
    kind: str  # now
    ever_care: bool
    tokens: list[str]  # what identifies it: device_id, name, dev_eui, care room and group
    ref: int = 0
    heard: list[tuple[datetime, tuple[str, ...], bool]] = field(default_factory=list)  # time, gateways, reading

    def visible_to(self, role: str) -> bool:
        """docs/security.md, written out again: highways gully never care, care care or sealed."""
        if role == "highways":
            return self.kind == "gully" and not self.ever_care
        return self.kind == "care" or self.ever_care

    @property
    def readings(self) -> list[datetime]:
        return sorted(t for t, _, reading in self.heard if reading)

    @property
    def last_heard(self) -> datetime | None:
        return max((t for t, _, _ in self.heard), default=None)

    def state(self) -> str:
        last = self.last_heard
        if self.kind == "unassigned":
            return "unassigned"
        if last is None:
            return "never_seen"
        return "active" if NOW - last < timedelta(hours=24) else "offline"


@dataclass
class SeededAlert:
    id: int
    kind: str
    category: str
    state: str
    device: Device | None
    opened_at: datetime
    log: int  # entries in its log

    def visible_to(self, role: str) -> bool:
        """docs/security.md: gateway alerts for all; highways also its devices' (never a care one);
        care also every alert that opened as care and those of its devices."""
        if self.kind == "gateway":
            return True
        seen = self.device is not None and self.device.visible_to(role)
        return (self.kind != "care" and seen) if role == "highways" else (self.kind == "care" or seen)


@dataclass
class SeededSilence:
    id: int
    matchers: dict[str, str]
    active: bool


@dataclass
class World:
    devices: dict[str, Device]
    alerts: list[SeededAlert]
    silences: list[SeededSilence]
    gateways: list[str]
    dead_letter_id: int

    def visible(self, role: str) -> list[Device]:
        return [d for d in self.devices.values() if d.visible_to(role)]

    def hidden_from(self, role: str) -> list[Device]:
        return [d for d in self.devices.values() if not d.visible_to(role)]

    def silence_visible(self, role: str, s: SeededSilence) -> bool:
        """Migration 0009 as docs/security.md states it: pinned to the role's fleets, no care_group for
        highways, a device_id matcher naming a device the role can see."""
        kinds = {"highways": {"gully", "gateway"}, "care": {"care", "gateway"}}[role]
        if s.matchers.get("kind") not in kinds or (role == "highways" and "care_group" in s.matchers):
            return False
        name = s.matchers.get("device_id")
        return name is None or any(d.device_id == name for d in self.visible(role))


HEADER_ROWS = (
    "gully-a1,roads,gully,Mill Lane Gully,1500,300,,\n"
    "gully-a2,roads,gully,Station Road Gully,,,,\n"
    "gully-old,roads,gully,Quarry Gully,,,,\n"
    "gully-new,roads,gully,Bridge Gully,,,,\n"
    "radar-q7,homes,care,Mrs Zedwick,,,room-zq17,grp-kx42\n"
    "radar-q8,homes,care,Mr Quorley,,,room-zq18,grp-kx43\n"
    "radar-s9,homes,care,Flat Nine Sensor,,,room-zq19,grp-kx44\n"
)


def hear(db_url: str, device: Device, times: Sequence[datetime], gateways: Sequence[str], eui: str | None) -> None:
    """Uplinks with a reading each (seed_devices.uplinks), then one more carrying an event and the
    dev_eui; frame counters run on across calls, so packet loss counts every uplink as received."""
    f_cnt = len(device.heard) + 1
    if times:
        readings = [{"distance_mm": 900.0 + i, "battery_v": 3.4} for i in range(len(times))]
        f_cnts = list(range(f_cnt, f_cnt + len(times)))
        uplinks(db_url, device.device_id, times, app=device.app, gateways=gateways, f_cnts=f_cnts, readings=readings)
        device.heard += [(t, tuple(gateways), True) for t in times]
        f_cnt += len(times)
    if eui is not None:
        t = max(times) + 2 * MIN if times else NOW - 3 * MIN
        r = record(device.device_id, f_cnt, app=device.app, time=t, key=f"evt:{device.device_id}:{f_cnt}",
                   readings=0, event=True, gateway=gateways[0])  # fmt: skip
        rx = json.dumps([{"gateway_ids": {"gateway_id": g}} for g in gateways[:1]])
        r = replace(r, uplink=r.uplink._replace(rx_metadata=rx), device=replace(r.device, dev_eui=eui))
        with psycopg.connect(db_url) as conn:
            IngestWriter(conn).write([r])
        device.heard.append((t, tuple(gateways[:1]), False))


def add_alert(
    conn: psycopg.Connection, device: Device | None, kind: str, category: str, state: str, at: datetime, summary: str,
    notes: Sequence[str] = (),
) -> SeededAlert:  # fmt: skip
    """An alert as the engine stores one (store.alerts), with its log: opened, then the notes."""
    fields: dict[str, Any] = {
        "rule": f"{category}-{kind}-{at.timestamp():.0f}", "category": category, "severity": "warning",
        "subject": f"device:{device.ref}" if device else "gateway:gw-care",
        "device_ref": device.ref if device else None, "device_id": device.device_id if device else None,
        "application_id": device.app if device else None, "gateway_id": None if device else "gw-care",
        "kind": kind, "state": state, "simulated": False, "late": False, "opened_at": at,
        "firing_at": at if state != "pending" else None, "resolved_at": at + MIN if state == "resolved" else None,
        "value": 1.0, "summary": summary, "details": {"where": summary},
    }  # fmt: skip
    alert = db.insert_alert(conn, fields)
    assert alert is not None
    db.log(conn, alert.id, "engine", "opened", to_state=state, note=summary, data_time=at)
    for note in notes:
        db.log(conn, alert.id, "carer", "note", note=note)
    return SeededAlert(alert.id, kind, category, state, device, at, 1 + len(notes))


def build(db_url: str, api: str, people: dict[str, str]) -> World:
    """The mixed world, through the store's writers as the owner (and the silences through the API as
    the role that would make them)."""
    register(db_url, HEADER_ROWS)
    devices = {
        "gully-a1": Device("gully-a1", "roads", "gully", False, ["gully-a1", "Mill Lane Gully", "70B3D5FFFE0A0001"]),
        "gully-a2": Device("gully-a2", "roads", "gully", False, ["gully-a2", "Station Road Gully", "70B3D5FFFE0A0002"]),
        "gully-old": Device("gully-old", "roads", "gully", False, ["gully-old", "Quarry Gully", "70B3D5FFFE0A0003"]),
        "gully-new": Device("gully-new", "roads", "gully", False, ["gully-new", "Bridge Gully"]),
        "radar-q7": Device(
            "radar-q7", "homes", "care", True, ["radar-q7", "Mrs Zedwick", "70B3D5FFFE0C0007", "room-zq17", "grp-kx42"]
        ),
        "radar-q8": Device(
            "radar-q8", "homes", "care", True, ["radar-q8", "Mr Quorley", "70B3D5FFFE0C0008", "room-zq18", "grp-kx43"]
        ),
        "radar-s9": Device(
            "radar-s9",
            "homes",
            "care",
            True,
            ["radar-s9", "Flat Nine Sensor", "70B3D5FFFE0C0009", "room-zq19", "grp-kx44"],
        ),
        "mystery-u1": Device("mystery-u1", "misc", "unassigned", False, ["mystery-u1", "70B3D5FFFE0E0001"]),
    }
    d = devices
    hear(db_url, d["gully-a1"], [NOW - 50 * MIN, NOW - 40 * MIN, NOW - 30 * MIN], ["gw-1"], "70B3D5FFFE0A0001")
    hear(db_url, d["gully-a2"], [NOW - 45 * MIN, NOW - 25 * MIN], ["gw-1", "gw-gully"], None)
    hear(db_url, d["gully-a2"], [], ["gw-gully"], "70B3D5FFFE0A0002")  # its newest uplink: gw-gully only
    hear(db_url, d["gully-old"], [NOW - timedelta(days=2)], ["gw-gully"], "70B3D5FFFE0A0003")
    hear(db_url, d["radar-q7"], [NOW - 35 * MIN, NOW - 10 * MIN], ["gw-1"], "70B3D5FFFE0C0007")
    hear(db_url, d["radar-q8"], [NOW - 30 * MIN], ["gw-care"], "70B3D5FFFE0C0008")
    hear(db_url, d["radar-s9"], [NOW - 55 * MIN], ["gw-1"], None)
    with psycopg.connect(db_url, autocommit=True) as conn:
        refs: dict[str, int] = dict(conn.execute("SELECT device_id, id FROM devices").fetchall())
        for device in d.values():
            device.ref = refs.get(device.device_id, 0)
        care_offline_s9 = add_alert(conn, d["radar-s9"], "care", "offline", "firing", T + 5 * MIN,
                                    "offline in room-zq19", ["Flat Nine Sensor moved"])  # fmt: skip
    # The care sensor goes to a gully: it stays sealed, and keeps reporting (its history is care data).
    register(db_url, "radar-s9,homes,gully,Flat Nine Sensor,,,,\n")
    d["radar-s9"].kind = "gully"
    hear(db_url, d["radar-s9"], [NOW - 12 * MIN], ["gw-1"], "70B3D5FFFE0C0009")
    hear(db_url, d["mystery-u1"], [NOW - 33 * MIN], ["gw-1"], "70B3D5FFFE0E0001")  # never registered
    with psycopg.connect(db_url, autocommit=True) as conn:
        ref = conn.execute("SELECT id, kind FROM devices WHERE device_id = 'mystery-u1'").fetchone()
        assert ref is not None and ref[1] == "unassigned"
        d["mystery-u1"].ref = ref[0]
        alerts = [
            add_alert(conn, d["gully-a1"], "gully", "flood", "resolved", T - 60 * MIN, "flood at Mill Lane Gully"),
            add_alert(conn, d["gully-a1"], "gully", "flood", "firing", T + MIN, "flood at Mill Lane Gully", ["crew"]),
            add_alert(conn, d["gully-a2"], "gully", "battery_low", "pending", T + 2 * MIN, "battery low"),
            add_alert(conn, d["radar-q7"], "care", "fall", "firing", T + 3 * MIN, "fall in room-zq17", [FOUND]),
            add_alert(conn, d["radar-q8"], "care", "inactivity", "acknowledged", T + 4 * MIN, "quiet in room-zq18"),
            care_offline_s9,
            add_alert(conn, d["radar-s9"], "gully", "flood", "firing", T + 6 * MIN, "flood at Flat Nine Sensor"),
            add_alert(conn, d["mystery-u1"], "unassigned", "offline", "firing", T + 7 * MIN, "mystery-u1 quiet"),
            add_alert(conn, None, "gateway", "gateway_offline", "firing", T + 8 * MIN, "gw-care is down"),
        ]
        letter = DeadLetter(NOW, "decode", "decode refused", None, "v3/homes/devices/radar-q7/up", "radar-q7",
                            b"Mrs Zedwick room-zq17")  # fmt: skip
        IngestWriter(conn).write([], [letter])
        row = conn.execute("SELECT max(id) FROM dead_letters").fetchone()
        assert row is not None
        dead_letter_id = int(row[0])
    silences = []
    for role, matchers in (
        ("highways", {"category": "flood"}),
        ("highways", {"category": "silt"}),  # expired below
        ("care", {"care_group": "grp-kx42"}),
        ("care", {"care_group": "grp-kx44"}),
        ("care", {"device_id": "radar-q7", "category": "fall"}),
        ("admin", {"kind": "gateway", "gateway_id": "gw-care"}),
        ("admin", {"device_id": "radar-q8"}),  # no kind: admin only
        ("admin", {"kind": "gully", "device_id": "radar-s9"}),  # names a device highways cannot see
    ):
        made = httpx.post(f"{api}/api/v1/silences", json={"matchers": matchers}, headers=bearer(people[role]))
        assert made.status_code == 201, made.text
        silences.append(SeededSilence(made.json()["id"], made.json()["matchers"], True))
    expired = httpx.post(f"{api}/api/v1/silences/{silences[1].id}/expire", headers=bearer(people["highways"]))
    assert expired.status_code == 200, expired.text
    silences[1].active = False
    return World(devices, alerts, silences, ["gw-1", "gw-care", "gw-gully"], dead_letter_id)


# --- walking the routes ------------------------------------------------------------------------------


@dataclass
class Answer:
    """One request's pages (a list route followed through next_cursor / X-Next-Cursor)."""

    template: str
    path: dict[str, str]
    query: dict[str, str]
    pages: list[httpx.Response]

    @property
    def first(self) -> httpx.Response:
        return self.pages[0]

    @property
    def where(self) -> str:
        return f"GET {self.template} {self.path} {self.query}"

    def items(self) -> list[Any]:
        return [item for page in self.pages for item in page.json()["items"]]

    def csv_rows(self) -> list[dict[str, str]]:
        return [row for page in self.pages for row in csv.DictReader(io.StringIO(page.text))]


def enum_values(schema: dict[str, Any]) -> list[str] | None:
    for option in (schema, *schema.get("anyOf", ())):
        if "enum" in option:
            return [str(v) for v in option["enum"]]
        if option.get("type") == "boolean":
            return ["true", "false"]
    return None


def path_values(world: World) -> dict[str, list[str]]:
    """Every value each path parameter is tried with: every id of both fleets, and one that is not."""
    return {
        "device_id": [*world.devices, "nobody-x1"],
        "alert_id": [*(str(a.id) for a in world.alerts), str(MISSING_ALERT)],
        "gateway_id": [*world.gateways, "gw-none"],
        "dead_letter_id": [str(world.dead_letter_id), str(MISSING_ALERT)],
    }


def query_values(world: World) -> dict[str, list[str]]:
    """Values tried for each query parameter that is not an enum (enums: every value)."""
    return {
        "gateway": [*world.gateways, "gw-none"],
        "application_id": ["roads", "homes", "misc", ""],
        "device": [*world.devices, "nobody-x1"],
        "since": [(T + 4 * MIN).isoformat()],
        "start": [(NOW - timedelta(days=30)).isoformat()],
        "end": [(NOW + timedelta(hours=1)).isoformat()],
        "window_hours": ["1", "720"],
        "stage": ["decode"],
        "action": ["login"],
        "actor": ["admin"],
    }


def get_operations() -> dict[str, dict[str, Any]]:
    document = create_app(ApiSettings.for_openapi()).openapi()
    return {path: item["get"] for path, item in document["paths"].items() if "get" in item}


def fetch(client: httpx.Client, token: str, template: str, path: dict[str, str], query: dict[str, str]) -> Answer:
    url = template
    for name, value in path.items():
        url = url.replace(f"{{{name}}}", value)
    pages: list[httpx.Response] = []
    cursor: str | None = None
    while True:
        response = client.get(url, params={**query, **({"cursor": cursor} if cursor else {})}, headers=bearer(token))
        pages.append(response)
        cursor = response.headers.get("x-next-cursor")
        if response.status_code == 200 and response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict) and "next_cursor" in body:
                cursor = body["next_cursor"]
        if cursor is None:
            return Answer(template, path, query, pages)
        assert len(pages) < 300, f"GET {url} {query}: pagination did not end"


def walk(client: httpx.Client, token: str, world: World, problems: list[str]) -> list[Answer]:
    """Every GET operation, every path value, with no query, each query value alone, and each of those
    again a page of 2 at a time when the route pages."""
    answers = []
    fills, values = path_values(world), query_values(world)
    for template, op in sorted(get_operations().items()):
        params = op.get("parameters", [])
        in_path = [p["name"] for p in params if p["in"] == "path"]
        unknown = [name for name in in_path if name not in fills]
        if unknown:
            problems.append(f"GET {template}: the test does not know how to fill path parameter(s) {unknown}")
            continue
        variants: list[dict[str, str]] = [{}]
        for p in params:
            if p["in"] != "query" or p["name"] in ("limit", "cursor"):
                continue
            tried = enum_values(p.get("schema", {})) or values.get(p["name"])
            if tried is None:
                problems.append(f"GET {template}: the test does not know what to send as ?{p['name']}")
                continue
            variants += [{p["name"]: v} for v in tried]
        if any(p["name"] == "limit" for p in params):
            variants += [{**v, "limit": "2"} for v in variants]
        combos: list[dict[str, str]] = [{}]
        for name in in_path:
            combos = [{**c, name: v} for c in combos for v in fills[name]]
        answers += [fetch(client, token, template, c, v) for c in combos for v in variants]
    return answers


# --- what an answer may contain ----------------------------------------------------------------------


def decoded_cursors(response: httpx.Response) -> list[str]:
    cursors = [response.headers.get("x-next-cursor")]
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict):
            cursors.append(body.get("next_cursor"))
    out = []
    for c in cursors:
        if isinstance(c, str):
            out.append(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)).decode("utf-8", "replace"))
    return out


def shape_leaks(value: Any, hidden_refs: set[int], hidden_alerts: set[int]) -> list[str]:
    """Ids of hidden rows in id fields: alerts (id, device_ref, subject), devices (id), alert_id(s)."""
    found: list[str] = []
    if isinstance(value, list):
        for v in value:
            found += shape_leaks(v, hidden_refs, hidden_alerts)
    elif isinstance(value, dict):
        if {"rule", "subject", "device_ref"} <= value.keys():
            if value.get("id") in hidden_alerts:
                found.append(f"alert id {value['id']}")
            if value.get("device_ref") in hidden_refs or value.get("subject") in {f"device:{r}" for r in hidden_refs}:
                found.append(f"alert {value.get('id')} of hidden device {value.get('device_ref')}")
        if {"device_id", "sealed", "kind"} <= value.keys() and value.get("id") in hidden_refs:
            found.append(f"device ref {value['id']}")
        for key in ("alert_id", "alert_ids"):
            ids = value.get(key)
            for i in ids if isinstance(ids, list) else [ids]:
                if i in hidden_alerts:
                    found.append(f"{key} {i}")
        for v in value.values():
            found += shape_leaks(v, hidden_refs, hidden_alerts)
    return found


def leaks(answer: Answer, tokens: Sequence[str], hidden_refs: set[int], hidden_alerts: set[int]) -> list[str]:
    found = []
    for page in answer.pages:
        text = "\n".join([page.text, *(f"{k}: {v}" for k, v in page.headers.items()), *decoded_cursors(page)])
        found += [f"{answer.where}: {token!r} in the answer" for token in tokens if token in text]
        if page.headers.get("content-type", "").startswith("application/json"):
            found += [f"{answer.where}: {leak}" for leak in shape_leaks(page.json(), hidden_refs, hidden_alerts)]
    return found


# --- what an answer must say, from the seed alone ----------------------------------------------------

Check = Callable[[World, str, Answer], list[str]]


def expect(answer: Answer, status: int, code: str | None = None) -> list[str]:
    """Every page answered `status` (and, for an error, with this error code)."""
    bad = []
    for page in answer.pages:
        got = page.json().get("error", {}).get("code") if page.status_code >= 400 else None
        if page.status_code != status or (code is not None and got != code):
            bad.append(f"{answer.where}: {page.status_code} {page.text[:200]}, wanted {status} {code or ''}")
    return bad


def same(answer: Answer, got: object, wanted: object) -> list[str]:
    return [] if got == wanted else [f"{answer.where}: got {got!r}, wanted {wanted!r}"]


def device_of(world: World, role: str, answer: Answer) -> Device | None:
    """The device the path names, if the role may see it (and the application_id filter keeps it)."""
    d = world.devices.get(answer.path["device_id"])
    if d is None or not d.visible_to(role):
        return None
    app = answer.query.get("application_id")
    return None if app is not None and app != d.app else d


def not_found_unless(world: World, role: str, answer: Answer) -> tuple[Device | None, list[str]]:
    """404 `no such device` (the same as for a device that does not exist) for one the role cannot see."""
    d = device_of(world, role, answer)
    if d is None:
        problems = expect(answer, 404, "not_found")
        problems += same(answer, answer.first.json()["error"]["message"], "no such device") if not problems else []
        return None, problems
    return d, expect(answer, 200)


def in_range(world: World, answer: Answer) -> tuple[datetime, datetime]:
    end = datetime.fromisoformat(answer.query["end"]) if "end" in answer.query else NOW + MIN
    start = datetime.fromisoformat(answer.query["start"]) if "start" in answer.query else end - timedelta(hours=24)
    return start, end


def wanted_buckets(d: Device, answer: Answer, world: World) -> dict[str, int]:
    start, end = in_range(world, answer)
    width = WIDTHS[answer.query["bucket"]]
    counts = Counter(t - (t - _EPOCH) % width for t in d.readings if start <= t < end)
    return {k.isoformat(): v for k, v in sorted(counts.items())}


def check_devices(world: World, role: str, answer: Answer) -> list[str]:
    problems = expect(answer, 200)
    if problems:
        return problems
    q = answer.query
    wanted = [
        d.device_id
        for d in sorted(world.visible(role), key=lambda d: (d.device_id, d.app))
        if q.get("kind", d.kind) == d.kind
        and q.get("state", d.state()) == d.state()
        and q.get("application_id", d.app) == d.app
        and ("gateway" not in q or (d.heard and q["gateway"] in max(d.heard)[1]))
    ]
    return same(answer, [i["device_id"] for i in answer.items()], wanted)


def check_export(world: World, role: str, answer: Answer) -> list[str]:
    problems = expect(answer, 200)
    wanted = sorted((d.device_id, d.app) for d in world.visible(role))
    return problems or same(answer, [(r["device_id"], r["application_id"]) for r in answer.csv_rows()], wanted)


def check_device(world: World, role: str, answer: Answer) -> list[str]:
    d, problems = not_found_unless(world, role, answer)
    if d is None or problems:
        return problems
    body = answer.first.json()
    return same(answer, (body["device_id"], body["kind"], body["sealed"]), (d.device_id, d.kind, d.ever_care))


def check_readings(world: World, role: str, answer: Answer) -> list[str]:
    d, problems = not_found_unless(world, role, answer)
    if d is None or problems:
        return problems
    if "bucket" in answer.query:
        got = {b["start"].replace("Z", "+00:00"): b["readings"] for b in answer.items() if b["readings"]}
        got = {datetime.fromisoformat(k).isoformat(): v for k, v in got.items()}
        return same(answer, got, wanted_buckets(d, answer, world))
    start, end = in_range(world, answer)
    wanted = [t for t in d.readings if start <= t < end]
    return same(answer, [datetime.fromisoformat(r["time"]) for r in answer.items()], wanted)


def check_readings_csv(world: World, role: str, answer: Answer) -> list[str]:
    d, problems = not_found_unless(world, role, answer)
    if d is None or problems:
        return problems
    rows = answer.csv_rows()
    if "bucket" in answer.query:
        got = {
            datetime.fromisoformat(r["start"]).isoformat(): int(r["count"])
            for r in rows
            if r["quantity"] == "distance_mm"
        }
        return same(answer, got, wanted_buckets(d, answer, world))
    start, end = in_range(world, answer)
    return same(answer, [datetime.fromisoformat(r["time"]) for r in rows], [t for t in d.readings if start <= t < end])


def check_health(world: World, role: str, answer: Answer) -> list[str]:
    d, problems = not_found_unless(world, role, answer)
    if d is None or problems:
        return problems
    since = NOW - timedelta(hours=int(answer.query.get("window_hours", "24")))
    body = answer.first.json()
    wanted = (d.device_id, sum(1 for t, _, _ in d.heard if t >= since))
    return same(answer, (body["device_id"], body["packets"]["received"]), wanted)


def gateway_numbers(world: World, role: str, gateway: str, window_hours: int) -> tuple[int, int, str | None]:
    """devices_heard, uplinks_heard, last_heard of one gateway over the role's devices only."""
    since = NOW - timedelta(hours=window_hours)
    heard = [(d.device_id, t) for d in world.visible(role) for t, gws, _ in d.heard if gateway in gws and t >= since]
    last = max((t for _, t in heard), default=None)
    return len({name for name, _ in heard}), len(heard), last.isoformat() if last else None


def gateway_shown(g: dict[str, Any]) -> tuple[int, int, str | None]:
    last = g["last_heard"]
    return g["devices_heard"], g["uplinks_heard"], datetime.fromisoformat(last).isoformat() if last else None


def check_gateways(world: World, role: str, answer: Answer) -> list[str]:
    problems = expect(answer, 200)
    if problems:
        return problems
    hours = int(answer.query.get("window_hours", "24"))
    got = {g["gateway_id"]: gateway_shown(g) for g in answer.items()}
    return same(answer, got, {gw: gateway_numbers(world, role, gw, hours) for gw in world.gateways})


def check_gateway(world: World, role: str, answer: Answer) -> list[str]:
    gw = answer.path["gateway_id"]
    if gw not in world.gateways:
        return expect(answer, 404, "not_found")
    hours = int(answer.query.get("window_hours", "24"))
    return expect(answer, 200) or same(
        answer, gateway_shown(answer.first.json()), gateway_numbers(world, role, gw, hours)
    )


STATES = {"open": {"pending", "firing", "acknowledged"}}


def check_alerts(world: World, role: str, answer: Answer) -> list[str]:
    problems = expect(answer, 200)
    if problems:
        return problems
    q = answer.query
    shown = [
        a
        for a in world.alerts
        if a.visible_to(role)
        and ("state" not in q or a.state in STATES.get(q["state"], {q["state"]}))
        and q.get("category", a.category) == a.category
        and ("device" not in q or (a.device is not None and a.device.device_id == q["device"]))
        and ("since" not in q or a.opened_at >= datetime.fromisoformat(q["since"]))
    ]
    wanted = [a.id for a in sorted(shown, key=lambda a: (a.opened_at, a.id), reverse=True)]
    return same(answer, [i["id"] for i in answer.items()], wanted)


def check_alert(world: World, role: str, answer: Answer) -> list[str]:
    alert_id = int(answer.path["alert_id"])
    alert = next((a for a in world.alerts if a.id == alert_id and a.visible_to(role)), None)
    if alert is None:  # hidden exactly like a missing one
        problems = expect(answer, 404, "not_found")
        return problems or same(answer, answer.first.json()["error"]["message"], f"there is no alert {alert_id}")
    body = answer.first.json()
    return expect(answer, 200) or same(answer, (body["id"], len(body["log"])), (alert.id, alert.log))


def check_silences(world: World, role: str, answer: Answer) -> list[str]:
    problems = expect(answer, 200)
    everything = answer.query.get("all") == "true"
    wanted = sorted(
        (s.id for s in world.silences if world.silence_visible(role, s) and (everything or s.active)), reverse=True
    )
    return problems or same(answer, [s["id"] for s in answer.items()], wanted)


def check_rules(world: World, role: str, answer: Answer) -> list[str]:
    names = [r["name"] for page in answer.pages for r in page.json()["rules"]]
    return expect(answer, 200) or same(answer, names, RULES_SEEN[role])


def check_me(world: World, role: str, answer: Answer) -> list[str]:
    return expect(answer, 200) or same(answer, answer.first.json()["username"], role)


def admin_only(world: World, role: str, answer: Answer) -> list[str]:
    return expect(answer, 403, "forbidden")


def ok(world: World, role: str, answer: Answer) -> list[str]:
    return expect(answer, 200)


#: What each GET route must answer a role, from the seed. A GET route missing here fails the test.
CHECKS: dict[str, Check] = {
    "/healthz": ok,
    "/readyz": ok,
    "/api/v1/auth/me": check_me,
    "/api/v1/devices": check_devices,
    "/api/v1/devices/export": check_export,
    "/api/v1/devices/{device_id}": check_device,
    "/api/v1/devices/{device_id}/readings": check_readings,
    "/api/v1/devices/{device_id}/readings.csv": check_readings_csv,
    "/api/v1/devices/{device_id}/health": check_health,
    "/api/v1/gateways": check_gateways,
    "/api/v1/gateways/{gateway_id}": check_gateway,
    "/api/v1/alerts": check_alerts,
    "/api/v1/alerts/{alert_id}": check_alert,
    "/api/v1/silences": check_silences,
    "/api/v1/rules": check_rules,
    "/api/v1/dead-letters": admin_only,
    "/api/v1/dead-letters/{dead_letter_id}": admin_only,
    "/api/v1/audit": admin_only,
}


@pytest.fixture
def leak_api(serve: Callable[..., str], tmp_path: Path) -> str:
    """The API with a rules file that names care groups and devices in rules highways must not see."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_FILE)
    return serve(rules_file=rules)


def start_clock() -> None:
    global NOW, T
    NOW = datetime.now(UTC).replace(second=0, microsecond=0)
    T = NOW - timedelta(hours=2)


@pytest.fixture
def world(db_url: str, leak_api: str, people: dict[str, str]) -> Iterator[World]:
    start_clock()
    yield build(db_url, leak_api, people)


def test_highways_sees_nothing_of_care_through_any_get_route(
    leak_api: str, people: dict[str, str], world: World
) -> None:
    """Every GET route as highways and as care: no identifier or id of the other side (care and
    unassigned devices, for highways), every list, count and aggregate the role's own slice."""
    problems: list[str] = []
    missing = sorted(set(get_operations()) - CHECKS.keys())
    problems += [f"GET {t}: no entry in CHECKS (say what it must answer each role)" for t in missing]
    problems += [f"CHECKS names {t}, which is no GET route" for t in sorted(CHECKS.keys() - set(get_operations()))]
    seen_text: dict[str, str] = {}
    with httpx.Client(base_url=leak_api, timeout=30) as client:
        for role in ("highways", "care"):
            answers = walk(client, people[role], world, problems)
            others = world.hidden_from(role)
            tokens = [t for d in others for t in d.tokens]
            hidden_refs = {d.ref for d in others}
            hidden_alerts = {a.id for a in world.alerts if not a.visible_to(role)}
            for answer in answers:
                problems += [f"{role}: {p}" for p in leaks(answer, tokens, hidden_refs, hidden_alerts)]
                if any(page.status_code >= 500 for page in answer.pages):
                    problems.append(f"{role}: {answer.where}: server error {answer.first.text[:200]}")
                    continue
                check = CHECKS.get(answer.template)
                if check is not None:
                    problems += [f"{role}: {p}" for p in check(world, role, answer)]
            seen_text[role] = "\n".join(page.text for a in answers for page in a.pages)
    # Not empty by accident: each role's own identifiers did come back through these routes.
    for role in ("highways", "care"):
        for d in world.visible(role):
            absent = [t for t in d.tokens if t not in seen_text[role]]
            problems += [f"{role} never saw its own {d.device_id}'s {t!r}" for t in absent]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:200])
