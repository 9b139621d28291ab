"""The rule model the engine builds on: selection, overrides, the rule types' helpers, routes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from alerts.rules import (
    DEFAULT_ROUTE,
    BatteryRule,
    DeviceAlarmRule,
    DeviceRef,
    OfflineRule,
    Route,
    RuleSet,
    ThresholdRule,
    format_duration,
    parse_duration,
    parse_rules,
)
from store.records import Device

RULES = """\
version: 1
routes:
  highways: {webhook: {url: https://h.example/hook, secret_env: HW_SECRET}}
  care-team: {}
rules:
  - name: gully-fill
    category: flood
    type: threshold
    applies_to: {kind: gully}
    metric: fill_pct
    warning: {above: 60}
    critical: {above: 85}
    hysteresis: 5
    for: 5m
    keep_firing_for: 15m
    route: highways
  - name: fall
    category: fall
    type: device_alarm
    applies_to: {kind: care, groups: [oak-house]}
    event: alarm
    match: {alarm_type: fall}
    route: care-team
  - name: offline
    category: offline
    type: offline
    expected_interval: 15m
  - name: pilot
    category: sensor_fault
    type: threshold
    applies_to: {kind: gully, devices: [gully-0001, other-app/gully-0002], applications: [gully-net, other-app]}
    metric: distance_mm
    warning: {below: 300}
    disabled: true
overrides:
  gully-0042:
    gully-fill: {critical: {above: 95}}
    offline: {disabled: true}
  other-app/gully-0002:
    pilot: {disabled: false}
"""


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return parse_rules(RULES, "test.yaml")


def gully(device_id: str, application_id: str = "gully-net", **attributes: object) -> DeviceRef:
    return DeviceRef(device_id, application_id, "gully", None, attributes)


def names(ruleset: RuleSet, device: DeviceRef) -> list[str]:
    return [rule.name for rule in ruleset.rules_for(device)]


def test_durations() -> None:
    assert parse_duration("30s") == timedelta(seconds=30)
    assert parse_duration("5m") == timedelta(minutes=5)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    for bad in ("5", "", "m", "1.5h", "-5m", "5 min"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
    assert [format_duration(parse_duration(t)) for t in ("0s", "90s", "1h30m", "1d", "2w")] == [
        "0s",
        "1m30s",
        "1h30m",
        "1d",
        "2w",
    ]


def test_the_loaded_model(ruleset: RuleSet) -> None:
    fill = ruleset.rule("gully-fill")
    assert isinstance(fill, ThresholdRule)
    assert (fill.for_, fill.keep_firing_for, fill.route, fill.repeat_every) == (
        timedelta(minutes=5),
        timedelta(minutes=15),
        ("highways",),
        None,
    )
    offline = ruleset.rule("offline")
    assert isinstance(offline, OfflineRule)
    assert offline.route == (DEFAULT_ROUTE,) and offline.severity == "warning" and offline.missed == 3
    assert set(ruleset.routes) == {"highways", "care-team", DEFAULT_ROUTE}
    assert ruleset.routes[DEFAULT_ROUTE].uses_default_channels
    assert [r.name for r in ruleset.rules] == ["gully-fill", "fall", "offline", "pilot"]


def test_models_are_frozen(ruleset: RuleSet) -> None:
    fill = ruleset.rule("gully-fill")
    with pytest.raises(ValidationError):
        setattr(fill, "metric", "level_mm")  # noqa: B010 (an assignment mypy would refuse to type)
    fall = ruleset.rule("fall")
    assert isinstance(fall, DeviceAlarmRule)
    with pytest.raises(TypeError):
        fall.match["alarm_type"] = ("dwell",)  # type: ignore[index]


def test_applies_to_filters_are_anded(ruleset: RuleSet) -> None:
    assert names(ruleset, gully("gully-0007")) == ["gully-fill", "offline"]
    care = DeviceRef("care-001-bedroom", "falls-care", "care", "oak-house")
    assert names(ruleset, care) == ["fall", "offline"]
    elsewhere = DeviceRef("care-002-bedroom", "falls-care", "care", "elm-court")
    assert names(ruleset, elsewhere) == ["offline"]
    assert names(ruleset, DeviceRef("x", kind="unassigned")) == ["offline"]


def test_file_overrides_replace_whole_keys(ruleset: RuleSet) -> None:
    [fill] = ruleset.rules_for(gully("gully-0042"))  # offline is disabled for it
    assert isinstance(fill, ThresholdRule)
    assert fill.critical is not None and fill.critical.above == 95
    assert fill.warning is not None and fill.warning.above == 60 and fill.hysteresis == 5
    tuned = ruleset.overrides["gully-0042"]["gully-fill"]
    assert tuned == fill
    assert ruleset.rule("gully-fill") != fill  # the file's rule is untouched


def test_a_disabled_rule_can_be_enabled_for_one_device(ruleset: RuleSet) -> None:
    assert "pilot" not in names(ruleset, gully("gully-0001"))  # listed, but the rule is disabled
    assert "pilot" in names(ruleset, gully("gully-0002", "other-app"))  # enabled by its override
    assert "pilot" not in names(ruleset, gully("gully-0002", "gully-net"))  # same name, other application


def test_registry_attributes_override_after_the_file(ruleset: RuleSet) -> None:
    device = gully("gully-0042", rules={"gully-fill": {"for": "10m"}, "offline": {"disabled": False}})
    fill, offline = ruleset.rules_for(device)
    assert isinstance(fill, ThresholdRule) and isinstance(offline, OfflineRule)
    assert fill.for_ == timedelta(minutes=10)
    assert fill.critical is not None and fill.critical.above == 95  # the file's override still applies
    assert ruleset.problems_for(device) == ()
    assert ruleset.rules_for(device) == (fill, offline)  # cached, same answer


def test_a_bad_registry_override_is_ignored_and_reported(ruleset: RuleSet) -> None:
    device = gully(
        "gully-0009",
        rules={
            "gully-fill": {"critical": {"abov": 10}},
            "offline": {"disabled": "sometimes"},
            "nope": {},
            "fall": {"severity": "info"},  # does not apply to a gully: ignored
        },
    )
    assert names(ruleset, device) == ["gully-fill", "offline"]  # as the file says
    fill = ruleset.rules_for(device)[0]
    assert fill == ruleset.rule("gully-fill")
    assert ruleset.problems_for(device) == (
        "device gully-0009: attributes.rules.gully-fill.critical.abov: unknown key (did you mean 'above'?)",
        "device gully-0009: attributes.rules.offline.disabled: expected true or false, got 'sometimes'",
        "device gully-0009: attributes.rules.nope: no rule named 'nope' (defined: gully-fill, fall, offline, pilot)",
    )
    fixed = gully("gully-0009", rules={"gully-fill": {"name": "x"}})
    assert ruleset.problems_for(fixed) == (
        "device gully-0009: attributes.rules.gully-fill.name: cannot be overridden per device",
    )
    assert ruleset.problems_for(gully("g", rules=["offline"])) == (
        "device g: attributes.rules: must be a mapping of rule name to override",
    )


def test_a_store_device_is_a_device(ruleset: RuleSet) -> None:
    device = Device(
        id=1,
        device_id="gully-0042",
        application_id="gully-net",
        source="tts",
        kind="gully",
        brand_id="dragino",
        model_id="ldds75",
        name=None,
        latitude=None,
        longitude=None,
        sensor_height_mm=1000.0,
        outlet_invert_mm=400.0,
        care_room=None,
        care_group=None,
        attributes={"rules": {"offline": {"disabled": False, "missed": 6}}},
        first_seen=None,
        last_seen=None,
    )
    _, offline = ruleset.rules_for(device)
    assert isinstance(offline, OfflineRule) and offline.missed == 6


def test_threshold_levels_and_hysteresis(ruleset: RuleSet) -> None:
    rule = ruleset.rule("gully-fill")
    assert isinstance(rule, ThresholdRule)
    assert rule.direction == "above"
    assert [rule.severity_at(v) for v in (10, 60, 60.5, 85, 90)] == [None, None, "warning", "warning", "critical"]
    assert (rule.exit_value("warning"), rule.exit_value("critical")) == (55, 80)
    assert rule.holds("critical", 81) and not rule.holds("critical", 79.9)
    assert rule.holds("warning", 55) and not rule.holds("warning", 54)
    clear = ThresholdRule.model_validate(
        {**_threshold(), "clear": {"below": 40}, "hysteresis": 2, "metric": "level_mm"}
    )
    assert (clear.exit_value("warning"), clear.exit_value("critical")) == (40, 83)
    below = ThresholdRule.model_validate(
        {**_threshold(), "metric": "distance_mm", "warning": {"below": 400}, "critical": {"below": 300}}
    )
    assert below.direction == "below" and below.severity_at(250) == "critical" and below.severity_at(350) == "warning"
    assert below.holds("warning", 400) and not below.holds("warning", 401)
    with pytest.raises(ValueError, match="no critical level"):
        ThresholdRule.model_validate({**_threshold(), "critical": None}).exit_value("critical")


def _threshold() -> dict[str, object]:
    return {
        "name": "t",
        "category": "flood",
        "type": "threshold",
        "metric": "fill_pct",
        "warning": {"above": 60},
        "critical": {"above": 85},
    }


def test_device_alarm_defaults_follow_the_vs373(ruleset: RuleSet) -> None:
    fall = ruleset.rule("fall")
    assert isinstance(fall, DeviceAlarmRule)
    assert (fall.id_attr, fall.status_attr, fall.opens_on, fall.clears_on) == (
        "alarm_id",
        "alarm_status",
        ("alarm_triggered",),
        ("alarm_deactivated",),
    )
    assert fall.severity == "critical" and fall.on_device_clear == "record"
    assert fall.repeat_every == timedelta(minutes=2)  # falls repeat every 2 minutes unless told otherwise
    triggered = {"alarm_id": 7, "alarm_type": "fall", "alarm_status": "alarm_triggered"}
    assert fall.matches("alarm", triggered) and fall.action(triggered) == "open" and fall.alarm_key(triggered) == "7"
    assert fall.action({**triggered, "alarm_status": "alarm_deactivated"}) == "clear"
    assert fall.action({**triggered, "alarm_status": "alarm_ignored"}) is None
    assert not fall.matches("alarm", {**triggered, "alarm_type": "dwell"})
    assert not fall.matches("distance_alarm", triggered)
    assert fall.alarm_key({"alarm_type": "fall"}) is None


def test_device_alarm_without_status_and_without_repeats() -> None:
    rule = DeviceAlarmRule.model_validate(
        {"name": "d", "category": "blockage", "type": "device_alarm", "event": "distance_alarm", "severity": "warning"}
    )
    assert rule.status_attr is None and rule.action({}) == "open" and rule.repeat_every is None
    quiet = DeviceAlarmRule.model_validate(
        {"name": "f", "category": "fall", "type": "device_alarm", "event": "alarm", "repeat_every": None}
    )
    assert quiet.repeat_every is None
    any_status = DeviceAlarmRule.model_validate(
        {"name": "f", "category": "fall", "type": "device_alarm", "event": "alarm", "status_attr": None}
    )
    assert any_status.opens_on == () and any_status.action({"alarm_status": "alarm_ignored"}) == "open"


def test_offline_interval_from_attributes(ruleset: RuleSet) -> None:
    rule = ruleset.rule("offline")
    assert isinstance(rule, OfflineRule)
    assert rule.silent_after({}) == timedelta(minutes=45)
    assert rule.interval_for({"uplink_interval": "20m"}) == timedelta(minutes=20)
    assert rule.interval_for({"uplink_interval": 600}) == timedelta(minutes=10)
    for unusable in ("often", 0, -5, True, None, float("nan")):
        assert rule.interval_for({"uplink_interval": unusable}) == timedelta(minutes=15)


def test_battery_low_and_recovered() -> None:
    rule = BatteryRule.model_validate(
        {
            "name": "b",
            "category": "battery_low",
            "type": "battery",
            "below_v": 3.1,
            "below_pct": 15,
            "clear_above_v": 3.2,
        }
    )
    assert rule.low(3.05, None) and rule.low(None, 10) and not rule.low(3.15, 50) and not rule.low(None, None)
    assert not rule.recovered(3.15, None)  # above the threshold, inside the clear band
    assert rule.recovered(3.3, None) and rule.recovered(None, 15)
    assert not rule.recovered(3.3, 10)


def test_route_resolution_from_the_environment(ruleset: RuleSet) -> None:
    env = {
        "LORAWATCH_WEBHOOK_URL": "https://default.example/hook",
        "LORAWATCH_WEBHOOK_SECRET": "s3cret",
        "LORAWATCH_EMAIL_TO": "a@council.example, b@council.example",
        "LORAWATCH_SMTP_URL": "smtp://mail.council.example",
    }
    care = ruleset.delivery("care-team", env)
    assert (care.webhook_url, care.webhook_secret, care.email_to, care.smtp_url) == (
        "https://default.example/hook",
        "s3cret",
        ("a@council.example", "b@council.example"),
        "smtp://mail.council.example",
    )
    assert "s3cret" not in repr(care) and care.missing == ()
    highways = ruleset.delivery("highways", env)
    assert highways.webhook_url == "https://h.example/hook" and highways.email_to == ()
    assert highways.webhook_secret is None and highways.missing == ("HW_SECRET",)
    nothing = ruleset.delivery(DEFAULT_ROUTE, {})
    assert nothing.empty and nothing.missing == ("LORAWATCH_WEBHOOK_URL", "LORAWATCH_EMAIL_TO")
    no_smtp = Route.model_validate({"email": {"to": "x@council.example"}}).resolve("r", {})
    assert no_smtp.empty and no_smtp.missing == ("LORAWATCH_SMTP_URL",)


def test_rule_routes_include_escalations() -> None:
    rule = ThresholdRule.model_validate(
        {
            **_threshold(),
            "route": ["a", "b"],
            "escalate": [{"after": "15m", "route": "c"}, {"after": "1h", "route": ["a", "d"]}],
        }
    )
    assert rule.routes == ("a", "b", "c", "d")
    assert [step.after for step in rule.escalate] == [timedelta(minutes=15), timedelta(hours=1)]
