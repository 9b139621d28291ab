"""The shipped rules and the commented example load, and the model's vocabulary matches the decoders'."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

import decoders
from alerts import rules
from alerts.rules import (
    CATEGORIES,
    DEFAULT_RULES_FILE,
    EVENT_ATTRS,
    METRICS,
    RULE_TYPES,
    AnomalyRule,
    BatteryRule,
    BlockageRule,
    DeviceAlarmRule,
    DeviceRef,
    FloodRule,
    GatewayOfflineRule,
    OfflineRule,
    SensorFaultRule,
    SiltRule,
    WelfareRule,
    load_rules,
)
from decoders import milesight_vs373
from store.records import READING_COLUMNS

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "rules.example.yaml"


def test_the_default_rules_load_with_the_documented_values() -> None:
    ruleset = load_rules(DEFAULT_RULES_FILE)
    assert set(ruleset.routes) == {"highways", "care-team", "default"}
    assert all(route.uses_default_channels for route in ruleset.routes.values())
    flood = ruleset.rule("gully-flood")
    assert isinstance(flood, FloodRule) and flood.category == "flood"
    assert flood.levels() == (("warning", 40), ("critical", 60))
    assert flood.confirm == 2 and flood.keep_firing_for == timedelta(minutes=30) and flood.hysteresis > 0
    anomaly = ruleset.rule("gully-anomaly")
    assert isinstance(anomaly, AnomalyRule) and not anomaly.page  # on for the record, paging nobody
    assert {type(r) for r in ruleset.rules} == {
        FloodRule, SensorFaultRule, BlockageRule, SiltRule, GatewayOfflineRule, AnomalyRule, DeviceAlarmRule,
        WelfareRule, OfflineRule, BatteryRule,
    }  # fmt: skip
    fall = ruleset.rule("fall")
    assert isinstance(fall, DeviceAlarmRule) and fall.severity == "critical"
    assert fall.repeat_every == timedelta(minutes=2) and fall.route == ("care-team",)
    assert fall.matches("alarm", {"alarm_type": "fall", "alarm_status": "alarm_triggered"})
    offline = ruleset.rule("gully-offline")
    assert isinstance(offline, OfflineRule) and offline.silent_after({}) == timedelta(minutes=50)
    assert {type(r) for r in ruleset.rules} == {
        FloodRule, SensorFaultRule, BlockageRule, SiltRule, GatewayOfflineRule, AnomalyRule, DeviceAlarmRule,
        WelfareRule, OfflineRule, BatteryRule,
    }  # fmt: skip
    gully = DeviceRef("gully-0001", "gully-net", "gully")
    care = DeviceRef("care-001-bedroom", "falls-care", "care")
    assert [r.name for r in ruleset.rules_for(gully)] == [
        "gully-flood", "gully-sensor", "gully-blockage", "gully-silt", "gateway-down", "gully-anomaly",
        "gully-offline", "gully-battery",
    ]  # fmt: skip
    assert [r.name for r in ruleset.rules_for(care)] == [
        "fall", "welfare-inactivity", "welfare-bathroom", "welfare-night", "care-offline", "care-battery",
    ]  # fmt: skip


def test_the_default_rules_are_package_data() -> None:
    assert DEFAULT_RULES_FILE.parent == Path(rules.__file__).parent
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["alerts"]
    assert any(DEFAULT_RULES_FILE.match(pattern) for pattern in patterns)


def test_the_example_loads() -> None:
    ruleset = load_rules(EXAMPLE)
    assert {type(r) for r in ruleset.rules} == set(RULE_TYPES.values())
    assert ruleset.overrides["gully-0042"]["gully-offline"].disabled


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def _model_keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[str]:
    if model in seen:
        return
    seen.add(model)
    for name, info in model.model_fields.items():
        yield info.alias or name
        inner = rules._inner_model(info.annotation)
        if inner is not None:
            yield from _model_keys(inner, seen)


def test_the_example_uses_every_key() -> None:
    used = set(_keys(yaml.safe_load(EXAMPLE.read_text())))
    seen: set[type[BaseModel]] = set()
    every = {key for model in (*RULE_TYPES.values(), rules.Route) for key in _model_keys(model, seen)}
    assert every - used == set(), "docs/rules.example.yaml should show (and explain) every key"
    assert {"version", "routes", "rules", "overrides"} <= used


def test_categories_are_the_design_vocabulary() -> None:
    assert CATEGORIES == (
        "flood",
        "rising",
        "blockage",
        "silt",
        "sensor_fault",
        "offline",
        "gateway_offline",
        "battery_low",
        "fall",
        "inactivity",
        "bathroom_dwell",
        "night_activity",
        "anomaly",
    )


def test_metrics_are_the_reading_columns_plus_the_derived_ones() -> None:
    assert set(METRICS) == {"fill_pct", "level_mm", *READING_COLUMNS}
    assert set(READING_COLUMNS) <= set(decoders.VOCABULARY)


def test_vs373_vocabulary_matches_the_decoder() -> None:
    assert set(milesight_vs373.ALARM_TYPE.values()) | {"unknown"} == set(rules.VS373_ALARM_TYPES)
    assert set(milesight_vs373.ALARM_STATUS.values()) | {"unknown"} == set(rules.VS373_ALARM_STATUSES)


def _alarm_uplinks() -> Iterator[tuple[str, int, bytes]]:
    """Uplinks carrying every kind of event the decoders emit: the public examples plus alarm frames."""
    vectors = json.loads((ROOT / "tests" / "data" / "device-examples.json").read_text())
    for vector in vectors:
        if "errors" not in vector["expected"]:
            yield vector["device"], vector["f_port"], bytes.fromhex(vector["bytes_hex"])
    alarms = [
        {"alarm_id": i, "alarm_type": kind, "alarm_status": status, "region_id": 1}
        for i, (kind, status) in enumerate(
            (k, s) for k in milesight_vs373.ALARM_TYPE.values() for s in milesight_vs373.ALARM_STATUS.values()
        )
    ]
    history = [{"timestamp": 1_700_000_000 + i, **alarm} for i, alarm in enumerate(alarms)]
    yield "milesight-iot/vs373", *decoders.encode("milesight-iot/vs373", {"events": alarms, "history": history})
    yield "dragino/lmds200", 2, bytes.fromhex("0b8804b000000e")
    yield "milesight-iot/em500-udl", 85, bytes.fromhex("fffe01")


def test_every_event_the_decoders_emit_is_known_to_the_rules() -> None:
    seen: dict[str, set[str]] = {}
    decoded_events = [
        (device, decoders.normalize(device, decoders.decode(device, f_port, payload)).events)
        for device, f_port, payload in _alarm_uplinks()
    ]
    decoded_events.append(
        (
            "milesight-iot/em410-rdl",
            decoders.normalize(
                "milesight-iot/em410-rdl",
                {
                    "distance": 1000,
                    "event": [
                        {"distance": 1000, "distance_mutation": 100, "distance_alarm": "mutation alarm"},
                        {"distance_exception": "no target"},
                    ],
                },
            ).events,
        )
    )
    decoded_events.append(
        (
            "milesight-iot/em500-udl",
            decoders.normalize(
                "milesight-iot/em500-udl",
                {"distance": 210.0, "distance_mutation": 10.0, "distance_alarm": "mutation_alarm"},
            ).events,
        )
    )
    for device, events in decoded_events:
        for event in events:
            seen.setdefault(event.kind, set()).update(event.attrs)
            assert event.kind in EVENT_ATTRS, (device, event)
            allowed = EVENT_ATTRS[event.kind]
            for key, value in event.attrs.items():
                assert key in allowed, (device, event)
                values = allowed[key]
                assert values is None or value in values, (device, event)
    assert set(seen) == set(EVENT_ATTRS)  # each kind the rules know was seen, so the check checked them all
    assert {"alarm_id", "alarm_type", "alarm_status", "region_id"} <= seen["alarm"]
