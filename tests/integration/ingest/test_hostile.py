"""No message can stop, stall or corrupt ingest. Real Mosquitto, real TimescaleDB, real ingester.

Focused regressions feed ONE hostile message and one valid one through a running ingester and check
that the valid one is stored and the hostile one is a dead letter with the expected stage and field.
The slow "done when" test floods a `lorawatch ingest` process with 20,000 hostile messages of every
kind interleaved with 2,000 valid uplinks and checks it neither dies, stalls nor grows, that every
valid uplink comes back exactly as sent, and that `lorawatch status --json` balances to the message.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lorawatch.services import Mosquitto
from tests.integration.ingest.conftest import Publisher, running_ingester, scalar, wait_until
from tests.integration.ingest.hostile_messages import (
    Case,
    Valid,
    body_bytes,
    crash_cases,
    date_cases,
    deep_nesting,
    envelope_cases,
    field_matches,
    huge_string_cases,
    junk_cases,
    mismatch_case,
    now_utc,
    oversize_case,
    range_cases,
    valid_uplink,
    wrong_type_cases,
)
from tests.lns import example, rfc3339, topic_for, tts_uplink

_apps = itertools.count(1)


def _app() -> str:
    return f"hx-{os.getpid()}-{next(_apps)}"


def status(db: str) -> dict[str, Any]:
    """`lorawatch status --json`, the public account of what ingest did."""
    env = {**os.environ, "LORAWATCH_DATABASE_URL": db}
    out = subprocess.run(
        [sys.executable, "-m", "lorawatch", "status", "--json"], env=env, capture_output=True, timeout=60, check=True
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _stored(db: str, v: Valid, app: str) -> bool:
    n = scalar(
        db,
        "SELECT count(*) FROM uplinks WHERE application_id = %s AND device_id = %s AND f_cnt = %s",
        app,
        v.device,
        v.f_cnt,
    )
    return bool(n)


def _dead_rows(db: str, case: Case) -> list[tuple[Any, ...]]:
    """dead_letters rows for the message (stage, field, repeats, device_id), range rows included."""
    with psycopg.connect(db) as conn:
        return conn.execute(
            # a very long topic may be kept truncated: its first 1,000 characters must match
            "SELECT stage, field, repeats, device_id FROM dead_letters "
            "WHERE (raw = %s AND left(topic, 1000) = left(%s, 1000)) OR (stage = 'size' AND topic = %s) ORDER BY stage",
            (case.raw, case.topic, case.topic),
        ).fetchall()


def _device_of(case: Case) -> str:
    return case.topic.split("/")[3]


def _devices_named(case: Case) -> list[str]:
    """The device the topic names and, if the body parses, the one the body names."""
    names = [_device_of(case)]
    try:
        body = json.loads(case.raw)
        dev = body["end_device_ids"]["device_id"]
    except (ValueError, KeyError, TypeError):
        return names
    if isinstance(dev, str) and "\x00" not in dev and dev not in names:
        names.append(dev)
    return names


def _check_outcome(db: str, case: Case, app: str) -> None:
    """The hostile message is a dead letter naming its stage and field, or (where the spec allows)
    stored with the refused value NULL and a `range` dead letter for it; never stored wrong."""
    rows = _dead_rows(db, case)
    whole = [r for r in rows if r[0] != "range"]
    dev = _device_of(case)
    stored = scalar(
        db, "SELECT count(*) FROM uplinks WHERE application_id = %s AND device_id = ANY(%s)", app, _devices_named(case)
    )
    if case.partial_column and stored:
        value = scalar(
            db, f"SELECT {case.partial_column} FROM uplinks WHERE application_id = %s AND device_id = %s", app, dev
        )
        assert value is None, f"{case.kind}: stored {case.partial_column}={value!r}, a wrapped or impossible value"
        ranged = [r for r in rows if r[0] == "range"]
        assert ranged, f"{case.kind}: the refused value left no `range` dead letter"
        assert case.field is None or any(field_matches(r[1], case.field) for r in ranged), (case.kind, ranged)
        return
    assert stored == 0, f"{case.kind}: the hostile message was stored as an uplink"
    assert len(whole) == 1, f"{case.kind}: expected exactly one dead letter for the message, got {rows}"
    stage, field, repeats, _ = whole[0]
    assert repeats == 1
    if case.stage:
        assert stage == case.stage, f"{case.kind}: dead-lettered at stage {stage!r}, expected {case.stage!r}"
    if case.field:
        assert field_matches(field, case.field), f"{case.kind}: dead letter names field {field!r}, not {case.field!r}"


@pytest.fixture
def app() -> str:
    return _app()


def _feed(
    db: str, broker: Mosquitto, app: str, messages: list[tuple[str, bytes]], until: list[Valid], timeout: float = 15
) -> float:
    """Publish `messages` (QoS 1, in order) into an in-thread ingester; wait for `until` to be stored
    and every message to be accounted for. Returns the seconds that took."""
    topics = (f"v3/{app}@ttn/devices/+/up",)
    with running_ingester(db, broker.port, topics) as ing:
        pub = Publisher(broker.port)
        try:
            started = time.monotonic()
            pub.publish_many(messages)
            wait_until(lambda: all(_stored(db, v, app) for v in until), timeout=timeout, what="valid uplinks stored")
            wait_until(
                lambda: status(db)["messages"]["total"] >= len(messages), timeout=timeout, what="all messages counted"
            )
            elapsed = time.monotonic() - started
        finally:
            pub.close()
        assert ing.ready.is_set()
    return elapsed


def _balance(db: str, published: int) -> dict[str, Any]:
    s = status(db)
    m = s["messages"]
    assert m["total"] == m["stored"] + m["duplicates"] + m["dead_lettered"] + m["skipped"], m
    assert m["total"] == published, f"status counts {m['total']} messages, {published} were published: {m}"
    whole = sum(n for stage, n in s["dead_letters"].items() if stage != "range")
    assert whole == m["dead_lettered"], (s["dead_letters"], m)
    return s


# --- one hostile message next to one valid one ----------------------------------------------------


def _cases(app: str) -> dict[str, Case]:
    rng = random.Random(7)
    cases = [*crash_cases(app, rng), *range_cases(app), *envelope_cases(app), mismatch_case(app)]
    # over the ingester's 256 KiB limit, under the broker's max_packet_size (lorawatch.services)
    cases.append(oversize_case(app, 270 * 1024))
    return {c.kind: c for c in cases}


KINDS = sorted(_cases("x"))


@pytest.mark.parametrize("kind", KINDS)
def test_one_hostile_message_is_dead_lettered_and_the_valid_one_next_to_it_stored(
    db_url: str, mosquitto: Mosquitto, app: str, kind: str
) -> None:
    case = _cases(app)[kind]
    valid = valid_uplink(app, "gully-ok", 11)
    elapsed = _feed(db_url, mosquitto, app, [(case.topic, case.raw), (valid.topic, valid.raw)], [valid])
    assert elapsed < 10, f"{kind}: took {elapsed:.1f} s (a retry loop, not a dead letter)"
    _check_outcome(db_url, case, app)
    m = _balance(db_url, 2)["messages"]
    if case.partial_column and m["dead_lettered"] == 0:
        assert m["stored"] == 2, m
    else:
        assert (m["stored"], m["dead_lettered"]) == (1, 1), m
    row = scalar(
        db_url,
        "SELECT frm_payload FROM uplinks WHERE application_id = %s AND device_id = 'gully-ok' AND f_cnt = 11",
        app,
    )
    assert bytes(row) == valid.payload


def test_a_five_thousand_character_device_id_is_refused_in_seconds(db_url: str, mosquitto: Mosquitto, app: str) -> None:
    """The btree index refuses a 5,000-character random device id: that must be one dead letter,
    not a batch retried for ever with every later message stuck behind it."""
    case = _cases(app)["long_device_id"]
    assert len(_device_of(case)) == 5000
    after = [valid_uplink(app, f"gully-after-{i}", 20 + i) for i in range(3)]
    messages = [(case.topic, case.raw)] + [(v.topic, v.raw) for v in after]
    elapsed = _feed(db_url, mosquitto, app, messages, after, timeout=30)
    assert elapsed < 5, f"the valid uplinks behind it took {elapsed:.1f} s"
    _check_outcome(db_url, case, app)
    _balance(db_url, 4)


def _last_seen(db: str, app: str, device: str) -> datetime | None:
    value = scalar(db, "SELECT last_seen FROM devices WHERE application_id = %s AND device_id = %s", app, device)
    assert value is None or isinstance(value, datetime)
    return value


@pytest.mark.parametrize("kind", ["time_9999", "time_0001", "time_future_1h", "time_2014"])
def test_an_impossible_date_is_dead_lettered_and_never_moves_last_seen(
    db_url: str, mosquitto: Mosquitto, app: str, kind: str
) -> None:
    first = valid_uplink(app, "gully-dated", 1)
    case = next(c for c in date_cases(app, "gully-dated", now_utc()) if c.kind == kind)
    sentinel = valid_uplink(app, "gully-sentinel", 2)
    topics = (f"v3/{app}@ttn/devices/+/up",)
    with running_ingester(db_url, mosquitto.port, topics):
        pub = Publisher(mosquitto.port)
        try:
            pub.publish(first.topic, first.raw)
            wait_until(lambda: _stored(db_url, first, app), what="first uplink stored")
            before = _last_seen(db_url, app, "gully-dated")
            assert before is not None
            pub.publish_many([(case.topic, case.raw), (sentinel.topic, sentinel.raw)])
            wait_until(lambda: _stored(db_url, sentinel, app), what="sentinel stored")
            wait_until(lambda: status(db_url)["messages"]["total"] >= 3, what="all counted")
        finally:
            pub.close()
    assert _last_seen(db_url, app, "gully-dated") == before, f"{kind} moved devices.last_seen"
    assert scalar(db_url, "SELECT count(*) FROM uplinks WHERE device_id = 'gully-dated'") == 1
    rows = [r for r in _dead_rows(db_url, case) if r[0] != "range"]
    assert len(rows) == 1, rows
    assert rows[0][1] and "received_at" in rows[0][1], f"{kind}: dead letter names field {rows[0][1]!r}"
    _balance(db_url, 3)


def test_an_uplink_a_little_ahead_of_our_clock_is_accepted(db_url: str, mosquitto: Mosquitto, app: str) -> None:
    """Gateway/NS clocks run ahead by seconds: that is not "more than ~10 minutes after receipt"."""
    ahead = valid_uplink(app, "gully-ahead", 3, time=now_utc() + timedelta(seconds=30))
    _feed(db_url, mosquitto, app, [(ahead.topic, ahead.raw)], [ahead])
    _balance(db_url, 1)


def test_a_simulated_uplink_never_moves_a_real_devices_last_seen(db_url: str, mosquitto: Mosquitto, app: str) -> None:
    real = valid_uplink(app, "gully-real", 4)
    sim = example("tts_5_3_simulated")
    sim["end_device_ids"]["device_id"] = "gully-real"
    sim["end_device_ids"]["application_ids"]["application_id"] = app
    sim["received_at"] = rfc3339(now_utc())
    sentinel = valid_uplink(app, "gully-sentinel", 5)
    topics = (f"v3/{app}@ttn/devices/+/up",)
    with running_ingester(db_url, mosquitto.port, topics):
        pub = Publisher(mosquitto.port)
        try:
            pub.publish(real.topic, real.raw)
            wait_until(lambda: _stored(db_url, real, app), what="real uplink stored")
            before = _last_seen(db_url, app, "gully-real")
            pub.publish_many([(topic_for(sim), body_bytes(sim)), (sentinel.topic, sentinel.raw)])
            wait_until(lambda: _stored(db_url, sentinel, app), what="sentinel stored")
            wait_until(lambda: status(db_url)["messages"]["total"] >= 3, what="all counted")
        finally:
            pub.close()
    assert _last_seen(db_url, app, "gully-real") == before, "a simulated uplink moved a real device's last_seen"
    flags = scalar(db_url, "SELECT array_agg(simulated ORDER BY time) FROM uplinks WHERE device_id = 'gully-real'") or [
        False
    ]
    assert flags[0] is False and all(flags[1:]), f"simulated flags of gully-real uplinks: {flags}"
    _balance(db_url, 3)


@pytest.mark.parametrize("kind", ["simulated_string", "uplink_message_null"])
def test_envelope_type_errors_are_dead_lettered_at_stage_envelope(
    db_url: str, mosquitto: Mosquitto, app: str, kind: str
) -> None:
    case = next(c for c in envelope_cases(app) if c.kind == kind)
    valid = valid_uplink(app, "gully-ok", 6)
    _feed(db_url, mosquitto, app, [(case.topic, case.raw), (valid.topic, valid.raw)], [valid])
    _check_outcome(db_url, case, app)
    _balance(db_url, 2)


def test_the_same_device_id_in_two_applications_is_two_devices(db_url: str, mosquitto: Mosquitto) -> None:
    app_a, app_b = _app(), _app()
    t = datetime.fromisoformat("2026-02-01T10:00:00+00:00")
    bodies = [tts_uplink("twin-017", f_cnt=9, app=a, time=t) for a in (app_a, app_b)]
    assert bodies[0]["uplink_message"] == bodies[1]["uplink_message"]
    topics = (f"v3/{app_a}@ttn/devices/+/up", f"v3/{app_b}@ttn/devices/+/up")
    with running_ingester(db_url, mosquitto.port, topics):
        pub = Publisher(mosquitto.port)
        try:
            pub.publish_many([(topic_for(b), body_bytes(b)) for b in bodies])
            wait_until(lambda: status(db_url)["messages"]["total"] >= 2, what="both counted")
        finally:
            pub.close()
    with psycopg.connect(db_url) as conn:
        devices = conn.execute(
            "SELECT application_id FROM devices WHERE device_id = 'twin-017' ORDER BY application_id"
        ).fetchall()
        uplinks = conn.execute(
            "SELECT application_id, f_cnt FROM uplinks WHERE device_id = 'twin-017' ORDER BY application_id"
        ).fetchall()
        readings = conn.execute(
            "SELECT d.application_id, count(*) FROM readings r JOIN devices d ON d.id = r.device_ref "
            "WHERE d.device_id = 'twin-017' GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert devices == sorted([(app_a,), (app_b,)]), devices
    assert uplinks == sorted([(app_a, 9), (app_b, 9)]), f"one application's uplink was taken as a duplicate: {uplinks}"
    assert [n for _, n in readings] in ([], [1, 1]), f"readings per application: {readings}"
    s = _balance(db_url, 2)
    assert s["messages"]["stored"] == 2 and s["messages"]["duplicates"] == 0, s["messages"]


def test_a_topic_naming_another_device_than_the_body_is_dead_lettered(
    db_url: str, mosquitto: Mosquitto, app: str
) -> None:
    case = mismatch_case(app)
    valid = valid_uplink(app, "gully-ok", 8)
    _feed(db_url, mosquitto, app, [(case.topic, case.raw), (valid.topic, valid.raw)], [valid])
    _check_outcome(db_url, case, app)
    assert scalar(db_url, "SELECT count(*) FROM devices WHERE device_id LIKE 'bad-%%'") == 0
    assert scalar(db_url, "SELECT count(*) FROM uplinks WHERE device_id LIKE 'bad-%%'") == 0
    _balance(db_url, 2)


def test_the_second_path_150_ms_later_is_one_uplink_and_one_duplicate(
    db_url: str, mosquitto: Mosquitto, app: str
) -> None:
    t = datetime.fromisoformat("2026-03-01T08:00:00.250000+00:00")
    first = tts_uplink("gully-twice", f_cnt=42, app=app, time=t)
    second = tts_uplink("gully-twice", f_cnt=42, app=app, time=t + timedelta(milliseconds=150))
    assert first["uplink_message"]["received_at"] != second["uplink_message"]["received_at"]
    sentinel = valid_uplink(app, "gully-sentinel", 43)
    messages = [(topic_for(first), body_bytes(first)), (topic_for(second), body_bytes(second))]
    _feed(db_url, mosquitto, app, [*messages, (sentinel.topic, sentinel.raw)], [sentinel])
    times = scalar(db_url, "SELECT array_agg(time) FROM uplinks WHERE device_id = 'gully-twice'")
    assert times == [t], f"the same natural key was stored at {times}"
    readings = scalar(
        db_url,
        "SELECT count(*) FROM readings r JOIN devices d ON d.id = r.device_ref WHERE d.device_id = 'gully-twice'",
    )
    assert readings <= 1, f"{readings} readings from one uplink"
    s = _balance(db_url, 3)
    assert s["messages"]["duplicates"] == 1 and s["messages"]["stored"] == 2, s["messages"]


def test_the_same_bad_bytes_twice_are_one_dead_letter_with_two_repeats(
    db_url: str, mosquitto: Mosquitto, app: str
) -> None:
    bad = Case("junk", f"v3/{app}@ttn/devices/bad-twice/up", b"\xff\x00 not json {")
    valid = valid_uplink(app, "gully-ok", 12)
    _feed(db_url, mosquitto, app, [(bad.topic, bad.raw), (bad.topic, bad.raw), (valid.topic, valid.raw)], [valid])
    rows = _dead_rows(db_url, bad)
    assert [r[2] for r in rows] == [2], f"dead_letters rows (stage, field, repeats, device): {rows}"
    s = _balance(db_url, 3)
    assert s["messages"]["dead_lettered"] == 2, s["messages"]


def test_a_dead_letter_seen_again_in_a_later_batch_is_still_one_row(
    db_url: str, mosquitto: Mosquitto, app: str
) -> None:
    case = _cases(app)["f_cnt_2e63"]
    valid = [valid_uplink(app, "gully-ok", 13 + i) for i in range(3)]
    topics = (f"v3/{app}@ttn/devices/+/up",)
    with running_ingester(db_url, mosquitto.port, topics):
        pub = Publisher(mosquitto.port)
        try:
            for v in valid:  # three batches, each the same bad message then a valid one
                pub.publish_many([(case.topic, case.raw), (v.topic, v.raw)])
                wait_until(functools.partial(_stored, db_url, v, app), what=f"f_cnt {v.f_cnt} stored")
            wait_until(lambda: status(db_url)["messages"]["total"] >= 6, what="all counted")
        finally:
            pub.close()
    rows = [r for r in _dead_rows(db_url, case) if r[0] != "range"]
    assert [r[2] for r in rows] == [3], f"dead_letters rows (stage, field, repeats, device): {rows}"
    s = _balance(db_url, 6)
    assert (s["messages"]["stored"], s["messages"]["dead_lettered"]) == (3, 3), s["messages"]


# --- the real process -----------------------------------------------------------------------------


def _start_ingest_process(
    db: str, broker: Mosquitto, client_id: str, log: Path, batch_size: int = 200
) -> subprocess.Popen[bytes]:
    """`lorawatch ingest` as a real process, logging to `log` (as in test_faults)."""
    env = {
        **os.environ,
        "LORAWATCH_DATABASE_URL": db,
        "LORAWATCH_MQTT_URL": broker.url,
        "LORAWATCH_MQTT_CLIENT_ID": client_id,
        "LORAWATCH_MQTT_QOS": "1",
        "LORAWATCH_MQTT_TOPICS": "v3/+/devices/+/up",
        "LORAWATCH_INGEST_BATCH_MS": "20",
        "LORAWATCH_INGEST_BATCH_SIZE": str(batch_size),
    }
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lorawatch", "ingest"], env=env, stderr=sink, stdout=subprocess.DEVNULL
        )

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"ingester exited early with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        return b"ingest_ready" in log.read_bytes()

    wait_until(ready, timeout=30, what="ingester process ready")
    return proc


@pytest.fixture
def ingest_log(tmp_path: Path) -> Path:
    return tmp_path / "ingest.log"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_crash_loop_values_do_not_stop_the_process(
    db_url: str, fresh_mosquitto: Mosquitto, ingest_log: Path
) -> None:
    """Every value the database would refuse, in one process, interleaved with valid uplinks."""
    app = _app()
    rng = random.Random(11)
    bad = [*crash_cases(app, rng), *range_cases(app), *envelope_cases(app), mismatch_case(app)]
    valid = [valid_uplink(app, f"gully-{i % 3}", 100 + i) for i in range(len(bad) + 1)]
    messages: list[tuple[str, bytes]] = []
    for v, b in itertools.zip_longest(valid, bad):
        messages.append((v.topic, v.raw))
        if b is not None:
            messages.append((b.topic, b.raw))
    proc = _start_ingest_process(db_url, fresh_mosquitto, "crash-loop-ingest", ingest_log)
    pub = Publisher(fresh_mosquitto.port)
    try:
        pub.publish_many(messages)

        def done() -> bool:
            assert proc.poll() is None, f"ingester exited with {proc.returncode}: {ingest_log.read_text()[-3000:]}"
            return bool(status(db_url)["messages"]["total"] >= len(messages))

        wait_until(done, timeout=30, what="every message accounted for")
        assert proc.poll() is None
        assert all(_stored(db_url, v, app) for v in valid)
        for case in bad:
            _check_outcome(db_url, case, app)
        _balance(db_url, len(messages))
    finally:
        pub.close()
        _stop(proc)


# --- the "done when" test -------------------------------------------------------------------------

N_BAD = 20_000
N_VALID = 2_000
N_VALID_DEVICES = 20
RSS_LIMIT_MB = 400  # the process and its workers; ~170 MB seen on a 2-core machine
DEADLINE_S = 180


def _bulk(app: str, now: datetime) -> tuple[list[Case], list[Valid]]:
    rng = random.Random(20_000)
    bad: list[Case] = []
    for n in range(20):
        bad.append(deep_nesting(app, 100_000 + n if n % 2 == 0 else 40_000 + n, n))
    for n in range(5):
        bad.append(oversize_case(app, 1024 * 1024 + n, n))
        bad.extend(huge_string_cases(app, rng, n))
    n = 0
    while len(bad) < N_BAD:
        bad.extend(crash_cases(app, rng, n))
        bad.extend(range_cases(app, n))
        bad.extend(date_cases(app, f"valid-{n % N_VALID_DEVICES:02d}", now, n))
        bad.extend(envelope_cases(app, n))
        bad.append(mismatch_case(app, n))
        bad.extend(wrong_type_cases(app, n))
        for j in range(29):
            bad.extend(junk_cases(app, rng, n * 29 + j))
        n += 1
    bad = bad[:N_BAD]
    valid = [valid_uplink(app, f"valid-{f % N_VALID_DEVICES:02d}", f) for f in range(1, N_VALID + 1)]
    return bad, valid


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _descendants(pid: int) -> set[int]:
    """The process's children, grandchildren, ... (an ingester may run its pipeline in workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


class Watch:
    """Polls the process: alive, its peak RSS (its own and with its workers'), the workers seen."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.peak_mb = 0.0  # the process and all its descendants together
        self.peak_own_mb = 0.0
        self.samples: list[tuple[float, float]] = []
        self.workers: set[int] = set()
        self.most_at_once = 0
        self.died: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            if self.proc.poll() is not None:
                self.died = self.proc.returncode
                return
            kids = _descendants(self.proc.pid)
            self.workers |= kids
            self.most_at_once = max(self.most_at_once, len(kids))
            own, total = 0.0, 0.0
            for pid in (self.proc.pid, *kids):
                try:
                    mb = _rss_mb(pid)
                except OSError:
                    continue
                own = mb if pid == self.proc.pid else own
                total += mb
            self.peak_own_mb = max(self.peak_own_mb, own)
            self.peak_mb = max(self.peak_mb, total)
            self.samples.append((round(time.monotonic() - self._started, 1), round(total)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def unlimited_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker of the test's own that passes 1 MB messages (like a broker the LNS side runs, or
    ChirpStack's external one, configured without `max_packet_size`): the ingester's own limit is
    then all that stands between a 1 MB message and the database."""
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto-unlimited"), max_packet_size=None).start()
    yield broker
    broker.stop()


@pytest.mark.slow
def test_twenty_thousand_hostile_messages_neither_stop_stall_nor_corrupt_ingest(
    db_url: str, unlimited_mosquitto: Mosquitto, ingest_log: Path
) -> None:
    broker = unlimited_mosquitto
    app = "hostile-net"
    bad, valid = _bulk(app, now_utc())
    messages = [(c.topic, c.raw) for c in bad] + [(v.topic, v.raw) for v in valid]
    random.Random(3).shuffle(messages)
    assert len(set(messages)) == len(messages) == N_BAD + N_VALID, "every message must be distinct"
    partial = {_device_of(c): c for c in bad if c.partial_column}
    print(f"\nhostile mix: {len(messages)} messages, {sum(len(p) for _, p in messages) / 1e6:.1f} MB")

    proc = _start_ingest_process(db_url, broker, "hostile-ingest", ingest_log)
    watch = Watch(proc)
    pub = Publisher(broker.port)
    sender = threading.Thread(target=pub.publish_many, args=(messages,), daemon=True)
    started = time.monotonic()
    try:
        sender.start()
        total = 0
        while time.monotonic() - started < DEADLINE_S:
            assert watch.died is None, f"ingester died ({watch.died}): {ingest_log.read_text(errors='replace')[-3000:]}"
            total = status(db_url)["messages"]["total"]
            if total >= len(messages):
                break
            time.sleep(2)
        elapsed = time.monotonic() - started
        sender.join(30)
        assert not sender.is_alive(), "the publisher did not finish"
        print(
            f"accounted for {total}/{len(messages)} in {elapsed:.1f} s; peak RSS {watch.peak_mb:.0f} MB "
            f"(main process {watch.peak_own_mb:.0f} MB; {len(watch.workers)} child processes seen, "
            f"at most {watch.most_at_once} at once)"
        )
        assert total >= len(messages), f"stalled: {total}/{len(messages)} accounted for after {DEADLINE_S} s"
        time.sleep(1.5)  # anything late (a redelivery) would show up now
        assert proc.poll() is None, f"ingester exited with {proc.returncode}"
        assert watch.died is None
        assert watch.peak_mb < RSS_LIMIT_MB, f"peak RSS {watch.peak_mb:.0f} MB"
        assert len(watch.workers) == watch.most_at_once, (
            f"{len(watch.workers)} child processes came and went, at most {watch.most_at_once} at once: "
            "a worker was replaced (crashed?) mid-run"
        )

        s = _balance(db_url, len(messages))
        m = s["messages"]
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                "SELECT device_id, f_cnt, f_port, frm_payload, time FROM uplinks WHERE device_id LIKE 'valid-%%'"
            ).fetchall()
            others = conn.execute(
                "SELECT device_id, spreading_factor, bandwidth_hz, rssi_dbm FROM uplinks "
                "WHERE device_id NOT LIKE 'valid-%%'"
            ).fetchall()
            last_seen: dict[str, datetime | None] = dict(
                conn.execute("SELECT device_id, last_seen FROM devices").fetchall()
            )
            dead = conn.execute(
                "SELECT topic, encode(sha256(raw), 'hex'), stage, field FROM dead_letters WHERE stage <> 'range'"
            ).fetchall()
            foreign_readings = conn.execute(
                "SELECT count(*) FROM readings r JOIN devices d ON d.id = r.device_ref "
                "WHERE d.device_id NOT LIKE 'valid-%%'"
            ).fetchone()

        # every valid uplink exactly as sent, once
        got = sorted((d, f, p, bytes(b), t) for d, f, p, b, t in rows)
        want = sorted((v.device, v.f_cnt, v.f_port, v.payload, v.time) for v in valid)
        assert len(rows) == N_VALID, f"{len(rows)} valid-* uplinks stored, {N_VALID} sent"
        assert got == want, "stored valid uplinks differ from what was sent"

        # nothing hostile stored, except where a refused value may be NULL inside a stored uplink
        for device, sf, bw, rssi in others:
            assert device in partial, f"hostile message stored as an uplink: device {device[:80]!r}"
            column = partial[device].partial_column
            value = {"spreading_factor": sf, "bandwidth_hz": bw, "rssi_dbm": rssi}[column or ""]
            assert value is None, f"{partial[device].kind}: {column}={value!r} stored"
        assert m["stored"] == N_VALID + len(others), m
        if not others:
            assert foreign_readings == (0,), f"readings stored for hostile messages: {foreign_readings}"

        # impossible dates never moved last_seen of the real devices they named
        newest: dict[str, datetime] = {}
        for v in valid:
            newest[v.device] = max(newest.get(v.device, v.time), v.time)
        for device, t in newest.items():
            seen = last_seen.get(device)
            assert seen is not None and t <= seen <= now_utc() + timedelta(minutes=10), (
                f"{device}: last_seen {seen} (newest valid uplink {t})"
            )
        assert not [d for d in last_seen if not d.startswith("valid-") and d not in partial], "devices from junk"

        # each hostile message is one dead letter, at the stage and naming the field the spec says
        by_message = {(topic, digest): (stage, field) for topic, digest, stage, field in dead}
        by_topic = {topic: (stage, field) for topic, _, stage, field in dead}
        # a very long topic may be kept truncated: match those on the bytes and the topic's start
        by_digest = {(topic[:1000], digest): (stage, field) for topic, digest, stage, field in dead}
        stages: dict[str, int] = {}
        for c in bad:
            digest = hashlib.sha256(c.raw).hexdigest()
            found = by_message.get((c.topic, digest)) or by_digest.get((c.topic[:1000], digest))
            if found is None and c.stage == "size":
                found = by_topic.get(c.topic)
            if found is None:
                assert _device_of(c) in partial, f"{c.kind}: no dead letter"
                continue
            stage, field = found
            stages[stage] = stages.get(stage, 0) + 1
            if c.stage:
                assert stage == c.stage, f"{c.kind}: stage {stage!r}, expected {c.stage!r}"
            if c.field and not (c.partial_column and stage == "range"):
                assert field_matches(field, c.field), f"{c.kind}: field {field!r}, expected {c.field!r}"
        print(f"dead letters by stage: {dict(sorted(stages.items()))}; status: {m}")
        tracebacks = ingest_log.read_text(errors="replace").count("Traceback")
        print(f"tracebacks in the ingest log: {tracebacks}; RSS samples (s, MB): {watch.samples[::40]}")
    finally:
        watch.stop()
        pub.close()
        _stop(proc)


def test_bulk_mix_is_what_the_done_when_test_says() -> None:
    """The hostile set itself: every kind the spec names is in it, and no two messages are the same."""
    bad, valid = _bulk("hostile-net", now_utc())
    kinds = {c.kind for c in bad}
    for kind in (
        "f_cnt_2e63",
        "f_cnt_1e30",
        "frequency_20_digits",
        "nul_device_id",
        "nul_decoded_string",
        "long_device_id",
        "long_session_key_id",
        "sf_65543",
        "sf_2e33",
        "bw_2e40",
        "rssi_1e308",
        "f_cnt_negative",
        "f_cnt_above_2e32",
        "time_9999",
        "time_0001",
        "simulated_string",
        "uplink_message_null",
        "topic_mismatch",
        "oversize",
        "random_bytes",
        "deep_arrays",
        "deep_objects",
        "huge_session_key_id",
        "non_utf8",
        "nul_bytes",
        "empty",
        "json_scalar_or_array",
        "f_cnt_object",
    ):
        assert kind in kinds, kind
    assert len(bad) == N_BAD and len(valid) == N_VALID
    assert len({v.f_cnt for v in valid}) == N_VALID
    assert len({(c.topic, c.raw) for c in bad}) == N_BAD
    assert sum(1 for c in bad if len(c.raw) >= 1024 * 1024) == 5
    assert max(len(c.raw) for c in bad if c.kind.startswith("deep")) < 256 * 1024  # reaches the parser
