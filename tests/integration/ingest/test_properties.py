"""Property tests at the trust boundary: whatever arrives, Processor + the real writer account for it.

Inputs are arbitrary JSON (strings with NULs and lone surrogates, huge, negative and non-finite
numbers, deep-ish nesting) and mutations of valid TTS / ChirpStack uplinks (a field at a random path
replaced by a hostile value, deleted, or given another type). Each example runs through
`ingest.pipeline.Processor` and then `store.writer.IngestWriter` on the real TimescaleDB.

Properties:
* `Processor.process` never raises and returns exactly one outcome per message;
* `IngestWriter.write` raises nothing (the database is up, so not even `Outage`);
* stored + duplicates + dead_lettered + skipped == messages in the batch;
* every dead letter is one row per (topic, raw), every record is one uplinks row (stored or a duplicate);
* nothing stored is outside its column's range, wrapped, or dated where no uplink can be dated;
* a valid uplink comes back exactly as sent (f_cnt, f_port, frm_payload bytes, time).

The writer is created once per test; examples never assert absolute table counts, so Hypothesis
may replay and shrink freely (a replayed uplink is a duplicate, a replayed dead letter a repeat).
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import pipeline
from store.records import DeadLetter, UplinkRecord, WriteResult
from store.writer import IngestWriter, Outage
from tests.integration.ingest.hostile_messages import chirpstack_uplink, get_path
from tests.lns import example, rfc3339, topic_for, tts_uplink

#: the instant the ingester "received" every example; the base messages are all dated before it
RECEIVED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)
LATEST = RECEIVED + timedelta(minutes=11)  # the spec's "~10 minutes after receipt", plus slack

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # deterministic: the same examples on every run
)

_unique = itertools.count(1)

# --- hostile values -------------------------------------------------------------------------------

HOSTILE_NUMBERS: list[Any] = [
    0,
    -1,
    1,
    2**15,
    65543,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**32 + 5,
    2**33 + 9,
    2**40 + 125000,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**20,
    10**400,
    1e30,
    1e308,
    -1e308,
    1.5,
    -0.0,
    3.5e38,
    float("inf"),
    float("-inf"),
    float("nan"),
]
HOSTILE_STRINGS: list[Any] = [
    "",
    "\u0000",
    "a\u0000b",
    "\ud800",
    "x\udfffy",
    "x" * 5000,
    "12345678901234567890",
    "-868100000",
    "868100000.5",
    "NaN",
    "Infinity",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "0001-01-02T00:00:00Z",
    "2014-12-31T23:59:59Z",
    "2026-13-45T99:99:99Z",
    "not base64!",
    "=",
    "\u202e\ufeff",
    "v3/x@ttn/devices/y/up",
]
HOSTILE_VALUES: list[Any] = [
    *HOSTILE_NUMBERS,
    *HOSTILE_STRINGS,
    None,
    True,
    False,
    [],
    {},
    [1, 2],
    {"a": None},
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
]

KNOWN_KEYS = [
    "end_device_ids",
    "device_id",
    "application_ids",
    "application_id",
    "uplink_message",
    "f_cnt",
    "f_port",
    "frm_payload",
    "session_key_id",
    "received_at",
    "simulated",
    "settings",
    "frequency",
    "data_rate",
    "lora",
    "spreading_factor",
    "bandwidth",
    "rx_metadata",
    "rssi",
    "snr",
    "decoded_payload",
    "join_accept",
    "downlink_ack",
    "deduplicationId",
    "deviceInfo",
    "devEui",
    "fCnt",
    "fPort",
    "data",
    "time",
    "txInfo",
]

any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(any_char, max_size=40),
    st.sampled_from(HOSTILE_NUMBERS),
    st.sampled_from(HOSTILE_STRINGS),
)
json_key = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(any_char, max_size=12))
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(json_key, inner, max_size=5)),
    max_leaves=25,
)
hostile = st.one_of(st.sampled_from(HOSTILE_VALUES), json_value)


def hostile_time() -> st.SearchStrategy[Any]:
    moments = st.datetimes(
        min_value=datetime(1, 1, 1),  # noqa: DTZ001 (timezones are added below)
        max_value=datetime(9999, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
    return st.one_of(moments.map(rfc3339), st.sampled_from(HOSTILE_STRINGS), hostile)


#: envelopes shaped a little like TTS / ChirpStack, so the parser gets past its first checks
tts_like = st.fixed_dictionaries(
    {},
    optional={
        "end_device_ids": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "device_id": st.one_of(st.sampled_from(["gully-017", "dev-x"]), hostile),
                    "application_ids": st.one_of(
                        st.fixed_dictionaries(
                            {}, optional={"application_id": st.one_of(st.just("gully-net"), hostile)}
                        ),
                        hostile,
                    ),
                },
            ),
            hostile,
        ),
        "uplink_message": st.one_of(st.dictionaries(st.sampled_from(KNOWN_KEYS), hostile, max_size=8), hostile),
        "received_at": hostile_time(),
        "simulated": hostile,
        "join_accept": hostile,
    },
)
envelope = st.one_of(json_value, tts_like, st.dictionaries(json_key, json_value, max_size=6))


def encode(value: Any, how: str) -> bytes:
    """JSON text of `value`: surrogates either \\u-escaped (valid JSON text) or raw (invalid UTF-8)."""
    if how == "ascii":
        return json.dumps(value, ensure_ascii=True).encode()
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


topic_text = st.text(
    st.characters(min_codepoint=1, max_codepoint=0x10FFFF, exclude_categories=["Cs"], exclude_characters="+#"),
    max_size=60,
)


# --- mutations of valid uplinks -------------------------------------------------------------------

CS_TOPIC = "application/5f0c6a1e-2b7d-4c3a-9e41-7d2b8c0f9a13/device/a84041000181c2f7/event/up"


def _bases() -> dict[str, tuple[str, dict[str, Any]]]:
    gully = tts_uplink("gully-017", f_cnt=7, time=RECEIVED - timedelta(days=1))
    radar = example("tts_5_2_decoded_two_gateways_pb")
    sim = example("tts_5_3_simulated")
    cs = example("chirpstack_7_4_up")
    join = example("tts_5_4_join_accept")
    return {
        "tts_gully": (topic_for(gully), gully),
        "tts_radar": (topic_for(radar), radar),
        "tts_simulated": (topic_for(sim), sim),
        "tts_join": (topic_for(join).removesuffix("/up") + "/join", join),
        "chirpstack": (CS_TOPIC, cs),
    }


BASES = _bases()

Path = tuple[str | int, ...]


def all_paths(node: Any, prefix: Path = ()) -> Iterator[Path]:
    if isinstance(node, dict):
        items: Iterator[tuple[str | int, Any]] = iter(node.items())
    elif isinstance(node, list):
        items = iter(enumerate(node))
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from all_paths(child, (*prefix, key))


def retype(value: Any) -> list[Any]:
    """The same information in the wrong JSON type."""
    out: list[Any] = [[value], {"value": value}, None]
    if isinstance(value, bool):
        out += [str(value).lower(), int(value)]
    elif isinstance(value, int | float):
        out += [str(value), value + 0.5, bool(value)]
    elif isinstance(value, str):
        out += [123, value.encode("utf-8", "surrogatepass").hex(), value * 2]
        try:
            out.append(int(value))
        except ValueError:
            out.append(0)
    return out


@st.composite
def mutated_uplink(draw: st.DrawFn) -> tuple[str, bytes, str]:
    name = draw(st.sampled_from(sorted(BASES)))
    base_topic, base = BASES[name]
    body = copy.deepcopy(base)
    # a fresh natural key per example, so a stored mutation is a new row holding its own values
    salt = draw(st.integers(1, 2**31))
    if name == "chirpstack":
        body["deduplicationId"] = f"00000000-0000-4000-8000-{salt:012x}"
    elif name != "tts_join":
        body["correlation_ids"] = [f"as:up:{salt:026d}"]
        if "session_key_id" in body["uplink_message"]:
            body["uplink_message"]["session_key_id"] = base64.b64encode(salt.to_bytes(16, "big")).decode()
    for _ in range(draw(st.integers(1, 3))):
        paths = list(all_paths(body))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = get_path(body, path[:-1])
        op = draw(st.sampled_from(["replace", "replace", "delete", "retype"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "retype":
            parent[path[-1]] = draw(st.sampled_from(retype(parent[path[-1]])))
        else:
            parent[path[-1]] = draw(hostile)
    topic = base_topic
    if name.startswith("tts") and draw(st.booleans()):
        # the topic follows the (mutated) body where it can, so the body's values reach the parser
        try:
            app = body["end_device_ids"]["application_ids"]["application_id"]
            dev = body["end_device_ids"]["device_id"]
            if all(isinstance(s, str) and re.fullmatch(r"[^/+#\x00\ud800-\udfff]+", s) for s in (app, dev)):
                topic = base_topic.replace(f"/{base['end_device_ids']['device_id']}/", f"/{dev}/", 1).replace(
                    f"v3/{base['end_device_ids']['application_ids']['application_id']}@", f"v3/{app}@", 1
                )
        except (KeyError, TypeError):
            pass
    how = draw(st.sampled_from(["utf8", "ascii"]))
    return topic, encode(body, how), name


# --- the database side ----------------------------------------------------------------------------

#: uplinks column -> the (inclusive) range the spec or the column type allows
COLUMN_RANGE: dict[str, tuple[float, float]] = {
    "f_cnt": (0, 2**32 - 1),  # uint32 on the wire
    "f_port": (0, 255),
    "frequency_hz": (0, 2**63 - 1),
    "spreading_factor": (0, 2**15 - 1),
    "bandwidth_hz": (0, 2**31 - 1),
    "rssi_dbm": (-3.4e38, 3.4e38),  # real
    "snr_db": (-3.4e38, 3.4e38),
    "gateway_count": (0, 2**15 - 1),
}

#: body paths whose value is stored verbatim in one uplinks column: stored must equal sent (or be NULL)
VERBATIM: dict[str, dict[Path, str]] = {
    "tts": {
        ("uplink_message", "f_cnt"): "f_cnt",
        ("uplink_message", "f_port"): "f_port",
        ("uplink_message", "settings", "frequency"): "frequency_hz",
        ("uplink_message", "settings", "data_rate", "lora", "spreading_factor"): "spreading_factor",
        ("uplink_message", "settings", "data_rate", "lora", "bandwidth"): "bandwidth_hz",
    },
    "chirpstack": {
        ("fCnt",): "f_cnt",
        ("fPort",): "f_port",
        ("txInfo", "frequency"): "frequency_hz",
        ("txInfo", "modulation", "lora", "spreadingFactor"): "spreading_factor",
        ("txInfo", "modulation", "lora", "bandwidth"): "bandwidth_hz",
    },
}

_MISSING = object()


def sent_number(value: Any) -> float | None:
    """The number a body value honestly denotes (None: it denotes no number, so storing one is wrong)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return None


def model_of(application_id: str, device_id: str) -> str | None:
    """The registry: the mixed-batch test's gully sensors are LDDS75s; other models come from the body."""
    return "dragino/ldds75" if device_id.startswith("gully-mix-") else None


def make_processor() -> Any:
    return pipeline.Processor(model_of, limits=pipeline.Limits())


class Harness:
    """Runs batches through the Processor and one IngestWriter, then checks the database."""

    def __init__(self, url: str) -> None:
        self.writer_conn = psycopg.connect(url)
        self.writer = IngestWriter(self.writer_conn)
        self.db = psycopg.connect(url, autocommit=True)
        self.processor = make_processor()

    def close(self) -> None:
        self.writer_conn.close()
        self.db.close()

    def run(self, batch: list[tuple[str, bytes]]) -> tuple[WriteResult, list[Any]]:
        outcomes: list[Any] = []
        for topic, data in batch:
            try:
                outcomes.append(self.processor.process(topic, data, RECEIVED))
            except Exception as exc:  # pragma: no cover - the property is that this never happens
                pytest.fail(f"Processor.process raised {exc!r} on topic={topic!r} raw={data[:300]!r}")
        records = [o for o in outcomes if isinstance(o, UplinkRecord)]
        dead = [o for o in outcomes if isinstance(o, DeadLetter)]
        fresh: list[bool] = []  # the record's key is new (so its row must hold this message's values)
        seen: set[tuple[str, str, str]] = set()
        for rec in records:
            ident = (rec.uplink.uplink_key, rec.uplink.application_id, rec.uplink.device_id)
            existed = self.db.execute(
                "SELECT 1 FROM uplinks WHERE uplink_key = %s AND application_id = %s AND device_id = %s LIMIT 1", ident
            ).fetchone()
            fresh.append(existed is None and ident not in seen)
            seen.add(ident)
        skipped: dict[str, int] = {}
        for o in outcomes:
            if isinstance(o, pipeline.Skipped):
                skipped[o.kind] = skipped.get(o.kind, 0) + 1
        assert len(records) + len(dead) + sum(skipped.values()) == len(batch), outcomes
        try:
            result = self.writer.write(records, dead=dead, skipped=skipped)
        except Outage as exc:  # the database is up: an Outage here is a lie
            pytest.fail(f"write raised Outage with the database up: {exc!r}")
        except Exception as exc:
            pytest.fail(f"write raised {type(exc).__name__} (only Outage is allowed): {exc!r}\n{batch!r:.2000}")
        total = result.stored + result.duplicates + result.dead_lettered + result.skipped
        assert total == len(batch), (result, batch)
        assert result.skipped == sum(skipped.values()), result
        assert result.dead_lettered == len(dead) + len(result.store_rejects), result
        assert result.stored + result.duplicates == len(records) - len(result.store_rejects), result
        self.check_dead(dead + list(result.store_rejects), batch)
        rejected = {(d.topic, d.raw) for d in result.store_rejects}
        for rec, new in zip(records, fresh, strict=True):
            if (rec.topic, rec.raw) not in rejected:
                self.check_stored(rec, verbatim=new)
        return result, outcomes

    def check_dead(self, dead: list[DeadLetter], batch: list[tuple[str, bytes]]) -> None:
        sent = set(batch)
        for d in dead:
            assert d.stage, d
            # an oversize message may keep only a prefix of its bytes
            carried = (d.topic, d.raw) in sent or (d.stage == "size" and any(t == d.topic for t, _ in batch))
            assert carried, f"dead letter does not carry the message's own topic and bytes: {d!r:.500}"
            (rows,) = self.db.execute(
                "SELECT count(*) FROM dead_letters WHERE key = %s AND topic IS NOT DISTINCT FROM %s AND stage = %s",
                (d.key, d.topic, d.stage),
            ).fetchone() or (0,)
            assert rows == 1, f"{rows} dead_letters rows for one message (stage {d.stage}, field {d.field})"
            if d.stage != "size":
                (same,) = self.db.execute(
                    "SELECT raw = %s FROM dead_letters WHERE key = %s", (d.raw, d.key)
                ).fetchone() or (None,)
                assert same, "dead_letters.raw is not the message's bytes"

    def check_stored(self, rec: UplinkRecord, *, verbatim: bool) -> None:
        u = rec.uplink
        rows = self.db.execute(
            "SELECT time, f_cnt, f_port, frequency_hz, spreading_factor, bandwidth_hz, rssi_dbm, snr_db, "
            "gateway_count, device_id, application_id FROM uplinks "
            "WHERE uplink_key = %s AND application_id = %s AND device_id = %s",
            (u.uplink_key, u.application_id, u.device_id),
        ).fetchall()
        assert len(rows) == 1, f"{len(rows)} uplinks rows for key {u.uplink_key!r} (stored or duplicate: exactly 1)"
        cols = ["time", "f_cnt", "f_port", "frequency_hz", "spreading_factor", "bandwidth_hz", "rssi_dbm", "snr_db"]
        cols += ["gateway_count", "device_id", "application_id"]
        row = dict(zip(cols, rows[0], strict=True))
        t = row["time"]
        assert EARLIEST <= t <= LATEST, f"stored an uplink dated {t} (received {RECEIVED}): {rec.raw[:400]!r}"
        for column, (lo, hi) in COLUMN_RANGE.items():
            v = row[column]
            assert v is None or (math.isfinite(v) and lo <= v <= hi), f"{column}={v!r} stored: {rec.raw[:400]!r}"
        (last_seen,) = self.db.execute(
            "SELECT last_seen FROM devices WHERE application_id = %s AND device_id = %s",
            (u.application_id, u.device_id),
        ).fetchone() or (None,)
        assert last_seen is None or EARLIEST <= last_seen <= LATEST, f"devices.last_seen moved to {last_seen}"
        if not verbatim or rec.raw[:1] != b"{":
            return
        try:
            body = json.loads(rec.raw)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        source = "tts" if rec.topic.startswith("v3/") else "chirpstack"
        if source == "tts":
            m = re.fullmatch(r"v3/([^/]+)/devices/([^/]+)/up", rec.topic)
            if m:
                assert row["device_id"] == m.group(2), f"stored device {row['device_id']!r} from topic {rec.topic!r}"
        for path, column in VERBATIM[source].items():
            try:
                value = get_path(body, path)
            except (KeyError, IndexError, TypeError):
                continue
            if value is None:
                continue
            stored = row[column]
            if stored is None:
                continue
            number = sent_number(value)
            assert number is not None and stored == number, (
                f"{'.'.join(map(str, path))} sent as {value!r:.60} but {column}={stored!r} stored: {rec.raw[:400]!r}"
            )


@pytest.fixture
def harness(db_url: str) -> Iterator[Harness]:
    h = Harness(db_url)
    yield h
    h.close()


def _run_property(harness: Harness, strategy: st.SearchStrategy[list[tuple[str, bytes]]]) -> None:
    @SETTINGS
    @given(strategy)
    def prop(batch: list[tuple[str, bytes]]) -> None:
        harness.run(batch)

    prop()


# --- the properties -------------------------------------------------------------------------------

tts_topic = st.one_of(
    st.sampled_from(
        [
            "v3/gully-net@ttn/devices/gully-017/up",
            "v3/gully-net/devices/gully-017/up",
            "v3/falls-care@acme-health/devices/radar-room-12/up",
            "v3/x@ttn/devices/dev-x/up",
            "v3/gully-net@ttn/devices/gully-017/join",
            "v3/gully-net@ttn/devices/gully-017/up/normalized",
            CS_TOPIC,
            "application/x/device/y/event/up",
        ]
    ),
    topic_text,
)
arbitrary_message = st.tuples(tts_topic, st.tuples(envelope, st.sampled_from(["utf8", "ascii"]))).map(
    lambda t: (t[0], encode(t[1][0], t[1][1]))
)
raw_message = st.tuples(tts_topic, st.binary(max_size=300))


def test_arbitrary_json_envelopes_are_each_accounted_for_exactly_once(harness: Harness) -> None:
    _run_property(harness, st.lists(st.one_of(arbitrary_message, raw_message), min_size=1, max_size=4))


def test_mutated_uplinks_are_each_accounted_for_and_nothing_wrong_is_stored(harness: Harness) -> None:
    message = mutated_uplink().map(lambda m: (m[0], m[1]))
    _run_property(harness, st.lists(message, min_size=1, max_size=4))


def test_mixed_batches_of_mutations_junk_and_valid_uplinks(harness: Harness) -> None:
    """One bad message in a batch must not take the good ones down with it."""

    def valid(n: int) -> tuple[str, bytes]:
        body = tts_uplink(f"gully-mix-{n}", f_cnt=n, time=RECEIVED - timedelta(hours=1))
        return topic_for(body), json.dumps(body).encode()

    @SETTINGS
    @given(st.lists(st.one_of(mutated_uplink().map(lambda m: (m[0], m[1])), arbitrary_message), max_size=5))
    def prop(bad: list[tuple[str, bytes]]) -> None:
        good = [valid(next(_unique)) for _ in range(2)]
        result, outcomes = harness.run([good[0], *bad, good[1]])
        for (topic, _), outcome in zip([good[0], good[1]], [outcomes[0], outcomes[-1]], strict=True):
            assert isinstance(outcome, UplinkRecord), (
                f"valid uplink not accepted next to hostile ones: {outcome!r:.300}"
            )
            assert (outcome.topic, outcome.raw) not in {(d.topic, d.raw) for d in result.store_rejects}, (
                f"valid uplink refused by the store because of its batch: {topic}"
            )
        assert result.stored >= 2

    prop()


# --- round trip -----------------------------------------------------------------------------------

uplink_times = st.datetimes(
    min_value=datetime(2015, 1, 2),  # noqa: DTZ001
    max_value=RECEIVED.replace(tzinfo=None),
    timezones=st.just(UTC),
)
valid_fields = st.tuples(
    st.integers(1, 2**32 - 1),  # f_cnt (0 is omitted on the wire: tested elsewhere)
    st.integers(1, 223),  # f_port of application data
    st.binary(min_size=1, max_size=222),
    uplink_times,
    st.sampled_from(["tts", "chirpstack"]),
)


def test_a_valid_uplink_comes_back_exactly_as_sent(harness: Harness) -> None:
    @SETTINGS
    @given(valid_fields)
    def prop(fields: tuple[int, int, bytes, datetime, str]) -> None:
        f_cnt, f_port, payload, when, lns = fields
        n = next(_unique)
        if lns == "tts":
            body = tts_uplink(f"dev-rt-{n}", f_cnt=f_cnt, f_port=f_port, payload=payload, time=when, model=None)
            topic = topic_for(body)
        else:
            topic, body = chirpstack_uplink(
                f"{n:016x}", f_cnt, f_port, payload, when, f"00000000-0000-4000-8000-{n:012x}"
            )
        data = json.dumps(body).encode()
        result, (outcome,) = harness.run([(topic, data)])
        assert isinstance(outcome, UplinkRecord), f"valid {lns} uplink not accepted: {outcome!r:.400}"
        assert result.stored == 1, result
        u = outcome.uplink
        row = harness.db.execute(
            "SELECT f_cnt, f_port, frm_payload, time FROM uplinks WHERE uplink_key = %s AND device_id = %s",
            (u.uplink_key, u.device_id),
        ).fetchone()
        assert row is not None
        assert (row[0], row[1], bytes(row[2]), row[3]) == (f_cnt, f_port, payload, when)
        sent = body["data"] if lns == "chirpstack" else body["uplink_message"]["frm_payload"]
        assert base64.b64decode(sent) == payload

    prop()


# --- the size limit (a boundary, not a property) --------------------------------------------------


def _padded(size: int) -> tuple[str, bytes]:
    body = tts_uplink("gully-size", f_cnt=next(_unique), time=RECEIVED - timedelta(hours=2))
    body["padding"] = ""
    pad = size - len(json.dumps(body).encode())
    body["padding"] = "p" * pad
    data = json.dumps(body).encode()
    assert len(data) == size
    return topic_for(body), data


@pytest.mark.parametrize(
    ("size", "dead"), [(256 * 1024, False), (256 * 1024 + 1, True), (1024 * 1024, True)], ids=["256KiB", "+1", "1MiB"]
)
def test_messages_over_256_kib_are_dead_lettered_at_stage_size(harness: Harness, size: int, dead: bool) -> None:
    topic, data = _padded(size)
    result, (outcome,) = harness.run([(topic, data)])
    if dead:
        assert isinstance(outcome, DeadLetter) and outcome.stage == "size", f"{outcome!r:.300}"
        assert result.dead_lettered == 1
    else:
        assert not (isinstance(outcome, DeadLetter) and outcome.stage == "size"), "exactly 256 KiB is not over it"
