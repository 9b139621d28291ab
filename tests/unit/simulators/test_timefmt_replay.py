"""Timestamp formatting and parsing, capture lines, and the replay time shift."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators import capture, ids, replay, timefmt
from simulators.timefmt import NS

BASE = 1_762_155_738 * NS  # 2025-11-03T07:42:18Z


@pytest.mark.parametrize(
    ("frac", "tts", "chirpstack"),
    [
        (0, "2025-11-03T07:42:18Z", "2025-11-03T07:42:18+00:00"),
        (702_000_000, "2025-11-03T07:42:18.702Z", "2025-11-03T07:42:18.702+00:00"),
        (702_266_000, "2025-11-03T07:42:18.702266Z", "2025-11-03T07:42:18.702266+00:00"),
        (702_266_803, "2025-11-03T07:42:18.702266803Z", "2025-11-03T07:42:18.702266803+00:00"),
    ],
)
def test_fractions_are_trimmed_to_0_3_6_or_9_digits(frac, tts, chirpstack):
    assert timefmt.tts_time(BASE + frac) == tts
    assert timefmt.chirpstack_time(BASE + frac) == chirpstack
    assert timefmt.parse_ns(tts) == timefmt.parse_ns(chirpstack) == BASE + frac


@given(st.integers(min_value=-(10**9) * NS, max_value=(10**10) * NS))
def test_tts_times_parse_by_arithmetic_as_by_datetime(ns):
    """parse_ns reads TTS's `Z` form without a datetime; it agrees with the general path (the same
    instant written with `+00:00`) over four centuries, leap days included."""
    assert timefmt.parse_ns(timefmt.tts_time(ns)) == timefmt.parse_ns(timefmt.chirpstack_time(ns)) == ns


@pytest.mark.parametrize(
    "text",
    ["2025-02-29T00:00:00Z", "2025-11-03T24:00:00Z", "2025-11-03T07:60:00Z", "2025-11-03T07:42:60Z",
     "2025-11-03T07:42:18.Z", "2025-11-03T07:42:18.7022668031Z", "2025-11-03 07:42:18Z", "2025-11-03T07:42:18"],
)  # fmt: skip
def test_impossible_tts_times_are_refused(text):
    with pytest.raises(ValueError):  # the general path says what is wrong
        timefmt.parse_ns(text)


def test_shift_keeps_the_digits_and_the_suffix():
    assert timefmt.shift_text("2025-11-03T07:42:18.702266803Z", 3 * NS) == "2025-11-03T07:42:21.702266803Z"
    assert timefmt.shift_text("2025-11-03T23:59:59.10+00:00", 2 * NS) == "2025-11-04T00:00:01.10+00:00"
    assert timefmt.shift_text("not a time", NS) == "not a time"


def test_ulids_are_crockford_and_carry_their_millisecond():
    import random

    value = ids.ulid(random.Random(1), 1_762_155_738_702)
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    assert len(value) == 26 and set(value) <= set(alphabet)
    number = 0
    for ch in value:
        number = number * 32 + alphabet.index(ch)
    assert number >> 80 == 1_762_155_738_702


TTS = json.dumps(
    {
        "end_device_ids": {"device_id": "gully-017"},
        "received_at": "2025-11-03T07:42:18.913402117Z",
        "uplink_message": {
            "frm_payload": "ASwOEA==",
            "decoded_payload": {"note": "time: 2025-11-03T07:42:18Z stays"},
            "rx_metadata": [{"time": "2025-11-03T07:42:18.652118Z", "received_at": "2025-11-03T07:42:18.684530921Z"}],
            "settings": {"frequency": "867300000", "time": "2025-11-03T07:42:18.652118Z"},
            "received_at": "2025-11-03T07:42:18.702266803Z",
        },
    }
)
CHIRPSTACK = (
    '{"deduplicationId": "9b1e", "time": "2025-11-03T07:42:18.702266+00:00", '
    '"rxInfo": [{"gwTime": "2025-11-03T07:42:18.652118+00:00", '
    '"nsTime": "2025-11-03T07:42:18.690113+00:00"}]}'
)


def test_replay_shifts_every_time_field_and_nothing_else():
    offset = 86_400 * NS
    shifted = replay.shift_payload(TTS, offset)
    before, after = json.loads(TTS), json.loads(shifted)
    assert after["received_at"] == "2025-11-04T07:42:18.913402117Z"
    assert after["uplink_message"]["received_at"] == "2025-11-04T07:42:18.702266803Z"
    assert after["uplink_message"]["rx_metadata"][0] == {
        "time": "2025-11-04T07:42:18.652118Z",
        "received_at": "2025-11-04T07:42:18.684530921Z",
    }
    assert after["uplink_message"]["settings"]["time"] == "2025-11-04T07:42:18.652118Z"
    after["received_at"] = before["received_at"]
    after["uplink_message"]["received_at"] = before["uplink_message"]["received_at"]
    after["uplink_message"]["rx_metadata"] = before["uplink_message"]["rx_metadata"]
    after["uplink_message"]["settings"] = before["uplink_message"]["settings"]
    assert after == before
    assert len(shifted) == len(TTS)
    cs = json.loads(replay.shift_payload(CHIRPSTACK, offset))
    assert cs["time"] == "2025-11-04T07:42:18.702266+00:00"
    assert cs["rxInfo"][0] == {
        "gwTime": "2025-11-04T07:42:18.652118+00:00",
        "nsTime": "2025-11-04T07:42:18.690113+00:00",
    }


def test_replay_moves_the_first_message_to_now():
    messages = [capture.Message("t", TTS, BASE), capture.Message("t", TTS, BASE + 90 * NS)]
    now = BASE + 10 * 86_400 * NS + 400_000_000
    offset = replay.offset_to_now(BASE, now)
    out = list(replay.shifted(messages, offset))
    assert offset % NS == 0 and abs(out[0].time_ns - now) < NS
    assert out[1].time_ns - out[0].time_ns == 90 * NS


def test_a_fast_replay_ends_now_so_nothing_is_dated_in_the_future():
    now = BASE + 10 * 86_400 * NS
    last = BASE + 7 * 86_400 * NS
    offset = replay.offset_for(BASE, last, None, now)
    assert abs(last + offset - now) < NS


def test_a_paced_replay_dates_each_message_no_later_than_its_publication():
    now, span = BASE + 30 * 86_400 * NS, 86_400 * NS
    offset = replay.offset_for(BASE, BASE + span, 60.0, now)
    for t in (BASE, BASE + span // 2, BASE + span):
        published_at = now + (t - BASE) / 60.0
        assert t + offset <= published_at + NS
    assert abs((BASE + span + offset) - (now + span / 60.0)) < NS  # the last one lands when it is sent
    assert abs(replay.offset_for(BASE, BASE + span, 1.0, now) - (now - BASE)) < NS  # real time: first at now


def test_capture_lines_round_trip(tmp_path):
    messages = [
        capture.Message("v3/a@b/devices/c/up", TTS, BASE + 123_456_789, 1, False),
        capture.Message("raw", b"\x00\xff", BASE, 0, True),
    ]
    path = tmp_path / "cap.jsonl"
    with path.open("w") as out:
        assert capture.write(messages, out) == 2
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {
        "topic": "v3/a@b/devices/c/up",
        "payload": TTS,
        "received_at": "2025-11-03T07:42:18.123456789Z",
        "qos": 1,
        "retain": False,
    }
    assert "payload_base64" in lines[1]
    assert list(capture.read(path)) == messages


def test_a_bad_capture_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"topic": "x", "payload": "y", "received_at": "2025-11-03T07:42:18Z"}\n{"topic": 1}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a capture line"):
        list(capture.read(path))
