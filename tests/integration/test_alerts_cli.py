"""`lorawatch alerts list|ack|resolve`, `lorawatch silences add|list|expire` and `status --json`'s alert
counts, through `lorawatch.cli.main` against a real database, with alerts made by the real engine from
uplinks stored by the real writer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from alerts.engine import Engine
from alerts.rules import RuleSet, load_rules
from lorawatch.cli import main
from store import alerts as db
from store.records import Alert
from store.writer import IngestWriter
from tests.integration.alerts.test_engine import T0, Clock, Outbox, fall, fill_distance, register_devices, uplink

RULES_YAML = """\
version: 1
routes:
  highways: {webhook: {url: "http://127.0.0.1:9/hook"}}
  care: {webhook: {url: "http://127.0.0.1:9/care"}}
  duty: {webhook: {url: "http://127.0.0.1:9/duty"}}
rules:
  - {name: fall, category: fall, type: device_alarm, applies_to: {kind: care}, event: alarm,
     match: {alarm_type: fall}, route: care, escalate: [{after: 10m, route: duty}]}
  - {name: fill, category: flood, type: threshold, applies_to: {kind: gully}, metric: fill_pct,
     warning: {above: 60}, critical: {above: 85}, hysteresis: 5, route: highways}
"""
MIN = timedelta(minutes=1)


@pytest.fixture
def rules(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> RuleSet:
    """The rules file the CLI and the test's engine share; the CLI pointed at the test database."""
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML)
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("LORAWATCH_RULES_FILE", str(path))
    monkeypatch.setenv("USER", "duty-officer")
    return load_rules(path)


@pytest.fixture
def conn(db_url: str, rules: RuleSet) -> Iterator[psycopg.Connection]:
    """Autocommit, so what the engine does is visible to the CLI's own connection at once."""
    with psycopg.connect(db_url, autocommit=True) as c:
        register_devices(c)
        yield c


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def alert(conn: psycopg.Connection, alert_id: int) -> Alert:
    found = db.get_alert(conn, alert_id)
    assert found is not None
    return found


def open_fall(
    conn: psycopg.Connection, rules: RuleSet, at: datetime = T0, now: datetime | None = None
) -> tuple[Engine, Clock, Alert]:
    """A fall at data time `at`, evaluated with the engine's clock at `now` (default: `at`)."""
    clock = Clock(now or at)
    engine = Engine(rules, clock)
    IngestWriter(conn).write([fall(at, 1)])
    engine.process(conn)
    (found,) = db.list_alerts(conn)
    return engine, clock, found


def open_flood(conn: psycopg.Connection, engine: Engine, at: datetime = T0) -> Alert:
    IngestWriter(conn).write([uplink("gully-1", at, 50, distance=fill_distance(90))])
    engine.process(conn)
    (found,) = [a for a in db.list_alerts(conn) if a.rule == "fill"]
    return found


def ticks(engine: Engine, clock: Clock, conn: psycopg.Connection, start: datetime, minutes: range) -> None:
    for minute in minutes:
        clock.now = start + minute * MIN
        engine.tick(conn)


# --- alerts list ----------------------------------------------------------------------------------------


def test_alerts_list_json_has_the_documented_fields(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, _, falling = open_fall(conn, rules)
    flooding = open_flood(conn, engine, T0 + MIN)
    code, out, _ = cli(capsys, "alerts", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [a["id"] for a in listed] == [flooding.id, falling.id]  # newest first
    required = {"category", "rule", "severity", "device_id", "gateway_id", "opened_at", "resolved_at", "simulated"}
    for item in listed:
        assert required <= set(item)
    by_rule: dict[str, dict[str, Any]] = {a["rule"]: a for a in listed}
    f = by_rule["fall"]
    assert (f["category"], f["severity"], f["device_id"], f["state"], f["simulated"]) == (
        "fall",
        "critical",
        "radar-1",
        "firing",
        False,
    )
    assert datetime.fromisoformat(f["opened_at"]) == T0 and f["resolved_at"] is None
    w = by_rule["fill"]
    assert (w["category"], w["severity"], w["device_id"]) == ("flood", "critical", "gully-1")
    assert datetime.fromisoformat(w["opened_at"]) == T0 + MIN


def test_alerts_list_shows_open_alerts_by_default_and_every_one_with_state_all(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "alerts", "list") == (0, "no open alerts\n", "")
    engine, clock, falling = open_fall(conn, rules)
    code, out, _ = cli(capsys, "alerts", "list")
    assert code == 0 and str(falling.id) in out and "firing" in out and "radar-1" in out and "fall" in out
    clock.now = T0 + 3 * MIN
    engine.resolve(conn, falling.id, "carer")
    assert cli(capsys, "alerts", "list", "--json")[1].strip() == "[]"
    assert cli(capsys, "alerts", "list", "--state", "open") == (0, "no open alerts\n", "")
    code, out, _ = cli(capsys, "alerts", "list", "--state", "all", "--json")
    (done,) = json.loads(out)
    assert done["id"] == falling.id and done["state"] == "resolved"
    assert datetime.fromisoformat(done["resolved_at"]) == T0 + 3 * MIN


# --- alerts ack / resolve -------------------------------------------------------------------------------


def test_ack_from_the_cli_records_who_and_why_and_stops_repeats_and_escalation(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, clock, falling = open_fall(conn, rules)
    box = Outbox(conn)
    ticks(engine, clock, conn, T0, range(1, 5))
    assert [r.event for r in box.rows] == ["opened", "repeat", "repeat"]
    before = datetime.now(UTC)
    code, out, err = cli(capsys, "alerts", "ack", str(falling.id), "--by", "x", "--note", "y")
    after = datetime.now(UTC)
    assert (code, err) == (0, "")
    assert out.strip() == f"alert {falling.id} acknowledged by x"
    acked = alert(conn, falling.id)
    assert (acked.state, acked.acknowledged_by) == ("acknowledged", "x")
    assert acked.time_to_acknowledge is not None and acked.time_to_acknowledge >= 0
    assert acked.acknowledged_at is not None and before <= acked.acknowledged_at <= after
    log = [(actor, action, src, dst, note) for _, actor, action, src, dst, note in db.alert_log(conn, falling.id)]
    assert ("x", "acknowledged", "firing", "acknowledged", "y") in log
    ticks(engine, clock, conn, T0, range(5, 40))
    assert [r.event for r in box.rows] == ["opened", "repeat", "repeat"]  # no repeat, no escalation
    code, out, err = cli(capsys, "alerts", "ack", str(falling.id), "--by", "z")  # already acknowledged
    assert (code, out) == (1, "") and "acknowledged" in err and "Traceback" not in err
    assert alert(conn, falling.id).acknowledged_by == "x"


def test_ack_without_by_names_the_user(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, falling = open_fall(conn, rules)
    code, out, _ = cli(capsys, "alerts", "ack", str(falling.id))
    assert code == 0 and "by duty-officer" in out
    assert alert(conn, falling.id).acknowledged_by == "duty-officer"


def test_acknowledging_a_resolved_alert_from_the_cli_is_refused_with_a_clear_message(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, _clock, falling = open_fall(conn, rules)
    engine.resolve(conn, falling.id, "carer")
    before = (alert(conn, falling.id), db.alert_log(conn, falling.id))
    code, out, err = cli(capsys, "alerts", "ack", str(falling.id), "--by", "x", "--note", "y")
    assert (code, out) == (1, "")
    assert err.startswith("lorawatch: ") and f"alert {falling.id}" in err and "resolved" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (alert(conn, falling.id), db.alert_log(conn, falling.id)) == before
    code, _, err = cli(capsys, "alerts", "ack", "4242")
    assert code == 1 and "no alert 4242" in err and "Traceback" not in err


def test_resolve_from_the_cli_sends_the_resolved_notice_once(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, clock, falling = open_fall(conn, rules)
    box = Outbox(conn)
    code, out, err = cli(capsys, "alerts", "resolve", str(falling.id), "--by", "carer", "--note", "she is fine")
    assert (code, err) == (0, "") and out.strip() == f"alert {falling.id} resolved by carer"
    done = alert(conn, falling.id)
    assert (done.state, done.resolved_by) == ("resolved", "carer") and done.resolved_at is not None
    assert [(r.event, r.route) for r in box.rows] == [("opened", "care"), ("resolved", "care")]
    log = [(actor, action, note) for _, actor, action, _, _, note in db.alert_log(conn, falling.id)]
    assert ("carer", "resolved", "she is fine") in log
    code, _, err = cli(capsys, "alerts", "resolve", str(falling.id))
    assert code == 1 and "already resolved" in err
    ticks(engine, clock, conn, T0, range(1, 30))
    assert len(box.rows) == 2


# --- silences -------------------------------------------------------------------------------------------


def test_silences_add_list_expire_hold_back_and_then_release_one_notification(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "silences", "add", "--match", "category=fall", "--for", "2h", "--comment", "drill")
    assert (code, err) == (0, "") and out.startswith("silence ")
    sid = int(out.split()[1].rstrip(":"))
    code, out, _ = cli(capsys, "silences", "list", "--json")
    (listed,) = json.loads(out)
    assert (listed["id"], listed["matchers"], listed["comment"], listed["created_by"]) == (
        sid,
        {"category": "fall"},
        "drill",
        "duty-officer",
    )
    assert listed["expired_at"] is None
    ends = datetime.fromisoformat(listed["ends_at"]) - datetime.fromisoformat(listed["starts_at"])
    assert ends == timedelta(hours=2)

    now = datetime.now(UTC)  # the CLI's silences run on the wall clock
    engine, clock, falling = open_fall(conn, rules, at=now - timedelta(seconds=5), now=now)
    box = Outbox(conn)
    assert falling.state == "firing"  # recorded
    ticks(engine, clock, conn, now, range(1, 6))
    assert box.rows == []

    code, out, err = cli(capsys, "silences", "expire", str(sid))
    assert (code, err) == (0, "") and out.strip() == f"silence {sid} expired"
    ticks(engine, clock, conn, now, range(6, 7))
    clock.now += timedelta(seconds=20)
    engine.tick(conn)
    assert [(r.event, r.route) for r in box.rows] == [("opened", "care")]

    assert cli(capsys, "silences", "list", "--json")[1].strip() == "[]"
    (expired,) = json.loads(cli(capsys, "silences", "list", "--all", "--json")[1])
    assert expired["id"] == sid and expired["expired_at"] is not None
    code, _, err = cli(capsys, "silences", "expire", str(sid))
    assert code == 1 and f"silence {sid}" in err


def test_a_cli_silence_on_another_device_does_not_hold_back_this_one(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "silences", "add", "--match", "device_id=gully-1", "--for", "1h")[0] == 0
    assert cli(capsys, "silences", "add", "--match", "category=flood", "--match", "device_id=radar-1")[0] == 0
    now = datetime.now(UTC)
    engine, _clock, _ = open_fall(conn, rules, at=now - timedelta(seconds=5), now=now)
    box = Outbox(conn)
    assert [(r.event, r.route) for r in box.rows] == [("opened", "care")]
    open_flood(conn, engine, now - timedelta(seconds=4))  # gully-1's flood is silenced
    assert [(r.event, r.route) for r in box.rows] == [("opened", "care")]
    assert {a.rule for a in db.list_alerts(conn)} == {"fall", "fill"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--match", "colour=red"], "a silence matches on"),
        (["--match", "category"], "KEY=VALUE"),
        ([], "at least one --match"),
        (["--match", "category=fall", "--for", "5"], "--for '5'"),
        (["--match", "category=fall", "--for", "0s"], "--for"),
    ],
)
def test_a_bad_silence_is_refused_with_a_clear_message(
    rules: RuleSet, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "silences", "add", *argv)
    assert code == 2 and out == "" and message in err and "Traceback" not in err
    assert json.loads(cli(capsys, "silences", "list", "--all", "--json")[1]) == []


# --- status --------------------------------------------------------------------------------------------


def test_status_json_counts_open_alerts_by_category(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(cli(capsys, "status", "--json")[1])
    assert (data["open_alerts"], data["open_alerts_by_category"]) == (0, {})
    engine, _clock, falling = open_fall(conn, rules)
    open_flood(conn, engine, T0 + MIN)
    data = json.loads(cli(capsys, "status", "--json")[1])
    assert (data["open_alerts"], data["open_alerts_by_category"]) == (2, {"fall": 1, "flood": 1})
    assert cli(capsys, "alerts", "ack", str(falling.id), "--by", "x")[0] == 0
    data = json.loads(cli(capsys, "status", "--json")[1])
    assert data["open_alerts"] == 2  # acknowledged is still open
    assert cli(capsys, "alerts", "resolve", str(falling.id), "--by", "x")[0] == 0
    data = json.loads(cli(capsys, "status", "--json")[1])
    assert (data["open_alerts"], data["open_alerts_by_category"]) == (1, {"flood": 1})


def test_assign_note_and_show_keep_the_trail(
    conn: psycopg.Connection, rules: RuleSet, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, falling = open_fall(conn, rules)
    code, out, _ = cli(capsys, "alerts", "assign", str(falling.id), "sam", "--by", "lead", "--note", "nearest")
    assert code == 0 and "assigned to sam" in out
    assert alert(conn, falling.id).assignee == "sam"
    assert cli(capsys, "alerts", "note", str(falling.id), "resident back in bed", "--by", "sam")[0] == 0
    code, out, _ = cli(capsys, "alerts", "show", str(falling.id), "--json")
    shown = json.loads(out)
    assert code == 0 and shown["assignee"] == "sam"
    assert (shown["time_to_acknowledge_s"], shown["time_to_resolve_s"]) == (None, None)  # still open, unacknowledged
    trail = [(e["actor"], e["action"], e["note"]) for e in shown["log"]]
    assert ("lead", "assigned", "to sam: nearest") in trail and ("sam", "note", "resident back in bed") in trail
    assert cli(capsys, "alerts", "show", "999999")[0] == 1
