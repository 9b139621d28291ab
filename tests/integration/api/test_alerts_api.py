"""The alerts routes over real HTTP against a live uvicorn server on the real database: filters and
pagination, row-level security's 404s, people's actions through the engine's lifecycle (409 when the
state refuses), the audit trail, and the notification side handed to the real alert worker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from alerts.engine import Engine
from alerts.worker import AlertWorker
from store import alerts as db
from store import audit, notices, outbox
from store.records import Alert
from tests.integration.alerts.test_engine import T0, Clock, fall, register_devices, write
from tests.integration.alerts.test_lifecycle import RULES
from tests.integration.api.conftest import bearer

ALERTS = "/api/v1/alerts"
MIN = timedelta(minutes=1)


@pytest.fixture
def owner(db_url: str) -> Iterator[psycopg.Connection]:
    """The owner's connection (autocommit, as the engine's passes commit), with a gully `gully-1` and
    a care radar `radar-1` registered. `alert_notices` is emptied around the test: the suite's
    fixture does not know the table yet."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM alert_notices")
        register_devices(conn)
        yield conn
        conn.execute("DELETE FROM alert_notices")


def refs(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT device_id, id FROM devices").fetchall())


def seed(
    conn: psycopg.Connection,
    device: str | None,
    *,
    category: str = "flood",
    state: str = "firing",
    at: datetime = T0,
    rule: str | None = None,
) -> Alert:
    """An alert as the engine stores one: of a registered device, or of gateway gw-1 (`device` None)."""
    by_name = refs(conn)
    kind = "gateway" if device is None else ("care" if device.startswith("radar") else "gully")
    subject = "gateway:gw-1" if device is None else f"device:{by_name[device]}"
    fields: dict[str, Any] = {
        "rule": rule or f"{category}-{at.timestamp():.0f}",
        "category": category,
        "severity": "warning",
        "subject": subject,
        "device_ref": None if device is None else by_name[device],
        "device_id": device,
        "application_id": None if device is None else "app",
        "gateway_id": "gw-1" if device is None else None,
        "kind": kind,
        "state": state,
        "simulated": False,
        "late": False,
        "opened_at": at,
        "firing_at": at if state != "pending" else None,
        "resolved_at": at + MIN if state == "resolved" else None,
        "value": 1.0,
        "summary": f"{category} at {device}",
        "details": {},
    }
    alert = db.insert_alert(conn, fields)
    assert alert is not None
    db.log(conn, alert.id, "engine", "opened", to_state=state, note="seeded", data_time=at)
    return alert


def get(api: str, token: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(api + path, params=params, headers=bearer(token))


def post(api: str, token: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(api + path, json=body, headers=bearer(token))


def ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def all_pages(api: str, token: str, limit: int, **params: Any) -> tuple[list[int], int]:
    """Every id, following next_cursor, and how many pages it took."""
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        body = get(api, token, ALERTS, **query).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


def audit_rows(conn: psycopg.Connection, action: str | None = None) -> list[Any]:
    return [e for e in reversed(audit.entries(conn, limit=1000)) if action is None or e.action == action]


@pytest.fixture
def fleet(owner: psycopg.Connection) -> dict[str, Alert]:
    """Seven alerts, opened a minute apart: gullies (one resolved, one pending), care (a fall and an
    offline), a gateway's, and two at the same time (the tie the id breaks)."""
    return {
        "flood": seed(owner, "gully-1", at=T0),
        "old_flood": seed(owner, "gully-1", state="resolved", at=T0 - 60 * MIN),
        "battery": seed(owner, "gully-1", category="battery_low", state="pending", at=T0 + MIN),
        "fall": seed(owner, "radar-1", category="fall", at=T0 + 2 * MIN),
        "care_offline": seed(owner, "radar-1", category="offline", state="acknowledged", at=T0 + 3 * MIN),
        "gateway": seed(owner, None, category="gateway_offline", at=T0 + 4 * MIN),
        "tie": seed(owner, "gully-1", category="silt", at=T0 + 4 * MIN),
    }


# --- listing ----------------------------------------------------------------------------------------


def test_admin_lists_every_alert_newest_first_across_pages(
    api: str, people: dict[str, str], fleet: dict[str, Alert]
) -> None:
    newest_first = sorted(fleet.values(), key=lambda a: (a.opened_at, a.id), reverse=True)
    seen, pages = all_pages(api, people["admin"], limit=2)
    assert seen == [a.id for a in newest_first]
    assert pages == 4  # 2 + 2 + 2 + 1
    body = get(api, people["admin"], ALERTS, limit=100).json()
    assert body["next_cursor"] is None
    assert body["items"][0]["opened_at"].startswith("2026-11-01T03:04:00")
    flood = next(i for i in body["items"] if i["id"] == fleet["flood"].id)
    assert (flood["state"], flood["category"], flood["device_id"], flood["care"]) == (
        "firing",
        "flood",
        "gully-1",
        False,
    )
    fall_item = next(i for i in body["items"] if i["id"] == fleet["fall"].id)
    assert fall_item["care"] is True and fall_item["kind"] == "care"


def test_filters_by_state_category_device_and_since(api: str, people: dict[str, str], fleet: dict[str, Alert]) -> None:
    token = people["admin"]
    open_ = {fleet[k].id for k in ("flood", "battery", "fall", "care_offline", "gateway", "tie")}
    assert set(ids(get(api, token, ALERTS, state="open"))) == open_
    assert ids(get(api, token, ALERTS, state="resolved")) == [fleet["old_flood"].id]
    assert ids(get(api, token, ALERTS, state="pending")) == [fleet["battery"].id]
    assert ids(get(api, token, ALERTS, state="acknowledged")) == [fleet["care_offline"].id]
    assert ids(get(api, token, ALERTS, category="flood")) == [fleet["flood"].id, fleet["old_flood"].id]
    assert set(ids(get(api, token, ALERTS, device="radar-1"))) == {fleet["fall"].id, fleet["care_offline"].id}
    since = (T0 + 3 * MIN).isoformat()
    assert set(ids(get(api, token, ALERTS, since=since))) == {fleet[k].id for k in ("care_offline", "gateway", "tie")}
    both = get(api, token, ALERTS, state="open", device="gully-1", since=T0.isoformat())
    assert ids(both) == [fleet["tie"].id, fleet["battery"].id, fleet["flood"].id]
    # Pages of a filtered list stay inside the filter.
    assert all_pages(api, token, limit=1, device="gully-1", state="open")[0] == ids(both)
    bad = get(api, token, ALERTS, state="sleeping")
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("query.state")
    assert get(api, token, ALERTS, cursor="bm90IGEgY3Vyc29y").status_code == 400


# --- visibility -------------------------------------------------------------------------------------


def test_each_role_lists_only_what_row_level_security_shows_it(
    api: str, people: dict[str, str], fleet: dict[str, Alert]
) -> None:
    gully = {fleet[k].id for k in ("flood", "old_flood", "battery", "tie")}
    care = {fleet[k].id for k in ("fall", "care_offline")}
    gateway = {fleet["gateway"].id}
    assert set(all_pages(api, people["highways"], limit=2)[0]) == gully | gateway
    assert set(all_pages(api, people["care"], limit=2)[0]) == care | gateway
    assert ids(get(api, people["highways"], ALERTS, device="radar-1")) == []


def test_a_care_alert_is_404_to_highways_exactly_like_a_missing_one(
    api: str, people: dict[str, str], fleet: dict[str, Alert], owner: psycopg.Connection
) -> None:
    care_id, missing = fleet["fall"].id, 10**9

    def call(alert_id: int, path: str) -> httpx.Response:
        if not path:
            return get(api, people["highways"], f"{ALERTS}/{alert_id}")
        body = {"assignee": "sam"} if path == "/assign" else ({"text": "x"} if path == "/note" else None)
        return post(api, people["highways"], f"{ALERTS}/{alert_id}{path}", body)

    for path in ("", "/ack", "/assign", "/note", "/resolve"):
        hidden, absent = call(care_id, path), call(missing, path)
        assert hidden.status_code == absent.status_code == 404, (path, hidden.text)
        assert hidden.json()["error"]["code"] == absent.json()["error"]["code"] == "not_found"
        assert hidden.json()["error"]["message"] == f"there is no alert {care_id}"
    # Nothing moved, nothing was logged against the care alert.
    after = db.get_alert(owner, care_id)
    assert after is not None and (after.state, after.assignee) == ("firing", None)
    assert [row[2] for row in db.alert_log(owner, care_id)] == ["opened"]
    # And care cannot see a gully alert.
    assert get(api, people["care"], f"{ALERTS}/{fleet['flood'].id}").status_code == 404


def test_one_alert_comes_with_its_log(api: str, people: dict[str, str], fleet: dict[str, Alert]) -> None:
    response = get(api, people["highways"], f"{ALERTS}/{fleet['flood'].id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["state"], body["care"]) == (fleet["flood"].id, "firing", False)
    assert [(e["actor"], e["action"], e["to_state"], e["note"]) for e in body["log"]] == [
        ("engine", "opened", "firing", "seeded")
    ]
    assert body["log"][0]["data_time"].startswith("2026-11-01T03:00:00")


# --- actions ----------------------------------------------------------------------------------------


def test_ack_assign_note_resolve_record_the_user_and_refused_moves_are_409(
    api: str, people: dict[str, str], fleet: dict[str, Alert], owner: psycopg.Connection
) -> None:
    token, alert_id = people["highways"], fleet["flood"].id
    acked = post(api, token, f"{ALERTS}/{alert_id}/ack", {"note": "crew on the way"})
    assert acked.status_code == 200, acked.text
    assert (acked.json()["state"], acked.json()["acknowledged_by"]) == ("acknowledged", "highways")
    again = post(api, token, f"{ALERTS}/{alert_id}/ack")
    assert again.status_code == 409
    assert again.json()["error"] == {
        "code": "invalid_transition",
        "message": f"alert {alert_id} is acknowledged: only a pending or firing alert can be acknowledged",
    }
    assigned = post(api, token, f"{ALERTS}/{alert_id}/assign", {"assignee": "Sam Jones", "note": "his patch"})
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "Sam Jones"
    noted = post(api, token, f"{ALERTS}/{alert_id}/note", {"text": "leaves in the grate"})
    assert noted.status_code == 200
    done = post(api, token, f"{ALERTS}/{alert_id}/resolve", {"note": "jetted"})
    assert done.status_code == 200
    assert (done.json()["state"], done.json()["resolved_by"]) == ("resolved", "highways")
    assert done.json()["time_to_resolve_s"] is not None
    for path, body in (("ack", None), ("resolve", None), ("assign", {"assignee": "x"})):
        refused = post(api, token, f"{ALERTS}/{alert_id}/{path}", body)
        assert refused.status_code == 409, path
        assert f"alert {alert_id}" in refused.json()["error"]["message"]
        assert "resolved" in refused.json()["error"]["message"]
    # A note on a resolved alert is fine (what was found afterwards).
    assert post(api, token, f"{ALERTS}/{alert_id}/note", {"text": "checked next day"}).status_code == 200
    trail = [(actor, action, src, dst, note) for _, actor, action, src, dst, note in db.alert_log(owner, alert_id)]
    assert trail == [
        ("engine", "opened", None, "firing", "seeded"),
        ("highways", "acknowledged", "firing", "acknowledged", "crew on the way"),
        ("highways", "assigned", None, None, "to Sam Jones: his patch"),
        ("highways", "note", None, None, "leaves in the grate"),
        ("highways", "resolved", "acknowledged", "resolved", "jetted"),
        ("highways", "note", None, None, "checked next day"),
    ]


def test_bad_action_bodies_are_422_naming_the_field(api: str, people: dict[str, str], fleet: dict[str, Alert]) -> None:
    token, path = people["admin"], f"{ALERTS}/{fleet['flood'].id}"
    for suffix, body, field in (
        ("/assign", {}, "body.assignee"),
        ("/note", {"text": ""}, "body.text"),
        ("/ack", {"note": "x", "colour": "red"}, "body.colour"),
        ("/note", {"text": "a\u0000b"}, "body.text"),
    ):
        response = post(api, token, path + suffix, body)
        assert response.status_code == 422, (suffix, response.text)
        assert response.json()["error"]["message"].startswith(field), response.text


# --- audit ------------------------------------------------------------------------------------------


def test_care_views_and_every_action_are_audited_without_note_text(
    api: str, people: dict[str, str], fleet: dict[str, Alert], owner: psycopg.Connection
) -> None:
    secret = "she said her name is Mrs Example"
    care = people["care"]
    assert get(api, care, f"{ALERTS}/{fleet['fall'].id}").status_code == 200
    listed = ids(get(api, care, ALERTS, limit=100))
    assert set(listed) == {fleet["fall"].id, fleet["care_offline"].id, fleet["gateway"].id}
    assert get(api, people["highways"], ALERTS).status_code == 200  # no care alert on its page: not audited
    assert get(api, people["highways"], f"{ALERTS}/{fleet['flood'].id}").status_code == 200  # not care: not audited
    assert post(api, care, f"{ALERTS}/{fleet['fall'].id}/ack", {"note": secret}).status_code == 200
    assert post(api, care, f"{ALERTS}/{fleet['fall'].id}/note", {"text": secret}).status_code == 200
    assert post(api, care, f"{ALERTS}/{fleet['fall'].id}/resolve", {"note": secret}).status_code == 200
    assert post(api, people["highways"], f"{ALERTS}/{fleet['flood'].id}/assign", {"assignee": "sam"}).status_code == 200
    rows = audit_rows(owner)
    got = [(e.actor, e.actor_role, e.action, e.target) for e in rows]
    fall_target = f"alert:{fleet['fall'].id}"
    assert got == [
        ("care", "care", "care_alert_viewed", fall_target),
        ("care", "care", "care_alerts_listed", None),
        ("care", "care", "alert_acknowledged", fall_target),
        ("care", "care", "alert_noted", fall_target),
        ("care", "care", "alert_resolved", fall_target),
        ("highways", "highways", "alert_assigned", f"alert:{fleet['flood'].id}"),
    ]
    assert rows[1].detail == {"alert_ids": [fleet["care_offline"].id, fleet["fall"].id]}  # the care ones, page order
    assert rows[2].detail == {
        "alert_id": fleet["fall"].id,
        "kind": "care",
        "from_state": "firing",
        "to_state": "acknowledged",
        "note": True,
    }
    assert rows[5].detail["assignee"] == "sam"
    assert all(secret not in str(e.detail) for e in rows)
    assert all(e.ip == "127.0.0.1" for e in rows)


def test_a_refused_action_changes_nothing_and_leaves_no_audit_row(
    api: str, people: dict[str, str], fleet: dict[str, Alert], owner: psycopg.Connection
) -> None:
    alert_id = fleet["old_flood"].id
    assert post(api, people["admin"], f"{ALERTS}/{alert_id}/ack").status_code == 409
    assert audit_rows(owner) == []
    assert [row[2] for row in db.alert_log(owner, alert_id)] == ["opened"]


# --- the notification side --------------------------------------------------------------------------


def notified_fall(owner: psycopg.Connection) -> tuple[Engine, Clock, Alert]:
    """A fall on radar-1 that fired and was notified (the care route), by the real engine."""
    clock = Clock(T0)
    engine = Engine(RULES, clock)
    write(owner, [fall(T0, 1)])
    assert engine.process(owner) == 1
    (alert,) = db.list_alerts(owner)
    assert alert.rule == "fall" and alert.notifications == 1
    return engine, clock, alert


def events(owner: psycopg.Connection) -> list[tuple[str, str]]:
    return [(r.event, r.route) for r in outbox.rows(owner)]


def test_an_ack_through_the_api_stops_repeats_and_escalation(
    api: str, people: dict[str, str], owner: psycopg.Connection
) -> None:
    engine, clock, alert = notified_fall(owner)
    assert post(api, people["care"], f"{ALERTS}/{alert.id}/ack").status_code == 200
    for minutes in (3, 11, 30):  # past the 2-minute repeat and the 10-minute escalation to duty
        clock.now = T0 + minutes * MIN
        engine.tick(owner, clock.now)
    assert events(owner) == [("opened", "care")]
    acked = db.get_alert(owner, alert.id)
    assert acked is not None and (acked.state, acked.escalation_level) == ("acknowledged", 0)


def run_worker(db_url: str, tick_s: float) -> tuple[threading.Event, threading.Thread, AlertWorker]:
    worker = AlertWorker(db_url, RULES, tick_s=tick_s)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    assert worker.ready.wait(20), "the alert worker did not start"
    return stop, thread, worker


def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_resolve_through_the_api_is_told_once_by_the_worker_even_one_started_later(
    api: str, people: dict[str, str], owner: psycopg.Connection, db_url: str
) -> None:
    _, _, alert = notified_fall(owner)
    response = post(api, people["care"], f"{ALERTS}/{alert.id}/resolve", {"note": "she is fine"})
    assert response.status_code == 200, response.text
    # The API could not write the outbox: the notice waits for a worker (none runs yet).
    assert events(owner) == [("opened", "care")]
    assert notices.waiting(owner) == 1
    # A worker starting now sends it before anything else (its clock pass is a minute away).
    stop, thread, _ = run_worker(db_url, tick_s=60)
    try:
        wait_for(lambda: len(outbox.rows(owner)) == 2)
    finally:
        stop.set()
        thread.join(20)
    assert events(owner) == [("opened", "care"), ("resolved", "care")]
    resolved = outbox.rows(owner)[-1].payload
    assert (resolved["event"], resolved["notification"], resolved["alert"]["state"]) == ("resolved", 2, "resolved")
    assert resolved["where"] == {"care_room": "bathroom", "care_group": "flat-12"}  # never the device's name
    assert notices.waiting(owner) == 0
    # Draining again, by a second worker or the clock's pass, tells nobody twice.
    engine = Engine(RULES, Clock(datetime.now(UTC)))
    assert engine.send_notices(owner) == 0
    with owner.transaction():  # even a notice handed over twice for one alert (as a stale retry might)
        owner.execute("INSERT INTO alert_notices (alert_id, event) VALUES (%s, 'resolved')", (alert.id,))
    assert engine.send_notices(owner) == 1
    assert events(owner) == [("opened", "care"), ("resolved", "care")]


def test_the_running_workers_clock_pass_sends_the_notice(
    api: str, people: dict[str, str], owner: psycopg.Connection, db_url: str
) -> None:
    _, _, alert = notified_fall(owner)
    stop, thread, _ = run_worker(db_url, tick_s=0.2)
    try:
        assert post(api, people["admin"], f"{ALERTS}/{alert.id}/resolve").status_code == 200
        wait_for(lambda: len(outbox.rows(owner)) == 2)
        time.sleep(0.5)  # a few more passes
    finally:
        stop.set()
        thread.join(20)
    assert events(owner) == [("opened", "care"), ("resolved", "care")]
    assert notices.waiting(owner) == 0


def test_resolving_an_alert_nobody_was_told_of_hands_nothing_over(
    api: str, people: dict[str, str], fleet: dict[str, Alert], owner: psycopg.Connection
) -> None:
    assert post(api, people["highways"], f"{ALERTS}/{fleet['flood'].id}/resolve").status_code == 200
    assert notices.waiting(owner) == 0


def test_the_hand_over_function_queues_only_what_the_callers_transaction_resolved(
    owner: psycopg.Connection, api_db_url: str
) -> None:
    """SECURITY DEFINER runs as the owner, so the function itself must be narrow: a role that calls it
    directly for an alert it did not just resolve (a care alert, for highways) queues nothing."""
    _, _, alert = notified_fall(owner)
    Engine(RULES, Clock(T0 + MIN)).resolve(owner, alert.id, "carer", hand_over=True)  # the owner's own call
    owner.execute("DELETE FROM alert_notices")
    with psycopg.connect(api_db_url) as conn:
        conn.execute("SET ROLE lorawatch_highways")
        conn.execute("SELECT hand_over_alert_notice(%s, 'resolved')", (alert.id,))  # no error, no answer
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM alert_notices")
        conn.rollback()
        conn.execute("SET ROLE lorawatch_highways")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO alert_notices (alert_id, event) VALUES (%s, 'resolved')", (alert.id,))
    assert notices.waiting(owner) == 0
