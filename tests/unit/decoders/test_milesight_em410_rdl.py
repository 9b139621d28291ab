"""Milesight EM410-RDL: derived edge cases from devices.md, normalisation, property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from decoders.milesight_em410_rdl import ALARMS, CODEC, EXCEPTIONS, HISTORY_EVENTS
from tests.unit.decoders.level_checks import (
    assert_round_trip,
    decode_or_reject,
    names,
    ports,
    scaled,
    tlv_dicts,
)

TS = "00e1f565"  # 1710612736


def test_minus_20_c_at_1000_mm() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("036738ff0482e803"))
    assert decoded == {"temperature": -20.0, "distance": 1000}
    assert names(CODEC.normalize(decoded)) == {
        "temperature_c": -20.0,
        "distance_mm": 1000.0,
        "distance_valid": 1.0,
    }


def test_threshold_alarm() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("8482e80301"))
    assert decoded == {"distance": 1000, "event": [{"distance": 1000, "distance_alarm": "threshold alarm"}]}
    normalized = CODEC.normalize(decoded)
    assert [(e.kind, e.attrs["distance_alarm"]) for e in normalized.events] == [("distance_alarm", "threshold alarm")]
    assert names(normalized)["distance_mm"] == 1000.0


def test_mutation_alarm() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("9482e803640002"))
    assert decoded == {
        "distance": 1000,
        "event": [{"distance": 1000, "distance_mutation": 100, "distance_alarm": "mutation alarm"}],
    }


def test_no_target_exception() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("b482fdff02"))
    assert decoded == {"event": [{"distance_exception": "no target"}]}
    normalized = CODEC.normalize(decoded)
    assert names(normalized) == {"distance_valid": 0.0}
    assert [e.kind for e in normalized.events] == ["distance_exception"]


def test_history_with_no_target() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("20ce" + TS + "fdff0101000000"))
    assert decoded == {
        "history": [{"timestamp": 1710612736, "distance_sensor_status": "no target", "temperature": 25.7}]
    }
    timed = {m.name: m.value for m in CODEC.normalize(decoded).measurements if m.time is not None}
    assert timed == {"distance_valid": 0.0, "temperature_c": 25.7}


def test_history_mutation_and_tilt_events() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("20ce" + TS + "e803feff320030"))
    assert decoded["history"] == [
        {
            "timestamp": 1710612736,
            "distance": 1000,
            "temperature_sensor_status": "disabled",
            "event": ["mutation alarm", "tilt alarm"],
            "distance_mutation": 50,
        }
    ]
    normalized = CODEC.normalize(decoded)
    assert [e.kind for e in normalized.events] == ["distance_alarm"]
    assert all(e.time is not None for e in normalized.events)
    assert {m.name for m in normalized.measurements} == {"distance_mm", "distance_valid", "tilted"}


def test_periodic_special_values_are_no_reading() -> None:
    decoded = CODEC.decode(85, bytes.fromhex("0482fdff"))
    assert decoded == {"distance": -3}
    assert names(CODEC.normalize(decoded)) == {"distance_valid": 0.0}


@given(st.binary(max_size=48), ports(CODEC))
def test_arbitrary_bytes_decode_or_reject(payload: bytes, port: int) -> None:
    decode_or_reject(CODEC, port, payload)


I16 = st.integers(-32768, 32767)
THRESHOLD = st.fixed_dictionaries({"distance": I16, "distance_alarm": st.sampled_from(sorted(ALARMS.values()))})
MUTATION = st.fixed_dictionaries(
    {"distance": I16, "distance_mutation": I16, "distance_alarm": st.sampled_from(sorted(ALARMS.values()))}
)
EXCEPTION = st.fixed_dictionaries(
    {"distance_exception": st.sampled_from(sorted(EXCEPTIONS.values()))},
    optional={"distance": I16.filter(lambda d: d not in (-3, -1))},
)


@st.composite
def history_items(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {"timestamp": draw(st.integers(0, 2**32 - 1))}
    if draw(st.booleans()):
        item["distance"] = draw(I16.filter(lambda d: d not in (-3, -2, -1)))
    else:
        item["distance_sensor_status"] = draw(st.sampled_from(["no target", "sensor exception", "disabled"]))
    if draw(st.booleans()):
        item["temperature"] = draw(I16.filter(lambda t: t not in (-2, -1)).map(lambda t: t / 10))
    else:
        item["temperature_sensor_status"] = draw(st.sampled_from(["disabled", "sensor exception"]))
    events = [e for e in HISTORY_EVENTS if draw(st.booleans())]
    if events:
        item["event"] = events
    if "mutation alarm" in events:
        item["distance_mutation"] = draw(I16)
    return item


@st.composite
def decoded_dicts(draw: st.DrawFn) -> dict[str, Any]:
    decoded: dict[str, Any] = draw(
        tlv_dicts(
            {},
            {
                "battery": st.integers(0, 255),
                "temperature": scaled(16, 10, signed=True),
                "distance": I16,
                "position": st.sampled_from(["normal", "tilt"]),
                "radar_signal_rssi": scaled(16, 100, signed=True),
                "history": st.lists(history_items(), min_size=1, max_size=3),
            },
        )
    )
    events = draw(st.lists(THRESHOLD | MUTATION | EXCEPTION, max_size=3))
    if events:
        decoded["event"] = events
        alarms = [e for e in events if "distance_alarm" in e]
        if alarms:
            decoded["distance"] = alarms[-1]["distance"]
    return decoded


@given(decoded_dicts())
def test_round_trip(decoded: dict[str, Any]) -> None:
    assert_round_trip(CODEC, decoded)
