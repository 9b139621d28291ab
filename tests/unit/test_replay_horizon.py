"""The replay's batch span (`lorawatch.scoring.horizon`): the shortest data time in which a rule, as a
registered device has it, can come due after an observation. Too long a span lets a batch hold
readings after a clock pass it should have waited for; `score` would judge silences and `for`s late."""

from __future__ import annotations

from datetime import timedelta

from alerts.rules import DEFAULT_RULES_FILE, DeviceRef, load_rules, parse_rules
from lorawatch.scoring import MAX_SPAN, MIN_SPAN, horizon

RULES = load_rules(DEFAULT_RULES_FILE)
TEXT = DEFAULT_RULES_FILE.read_text()


def gully(device_id: str = "gully-0001", **attributes: object) -> DeviceRef:
    return DeviceRef(device_id, "gully-net", "gully", None, attributes)


def test_the_shipped_rules_allow_the_longest_span_for_a_gully_fleet() -> None:
    # gully-flood keeps firing 30 min after the water falls; gully-offline waits 3 x 15 min and 5 min.
    assert horizon(RULES, [gully(), gully("gully-0002")]) == MAX_SPAN


def test_a_device_that_reports_often_goes_silent_sooner() -> None:
    # 3 missed 3-minute uplinks and 5 minutes' grace: its offline alert can come due 14 minutes after
    # it is heard (the rule's own expected_interval, 15 min, is for devices that do not say).
    assert horizon(RULES, [gully(), gully("gully-0002", uplink_interval="3m")]) == timedelta(minutes=14)


def test_an_override_that_shortens_a_rule_shortens_the_span() -> None:
    rules = parse_rules(TEXT + "\noverrides:\n  gully-0002:\n    gully-flood: {keep_firing_for: 10m}\n")
    assert horizon(rules, [gully()]) == MAX_SPAN
    assert horizon(rules, [gully(), gully("gully-0002")]) == timedelta(minutes=10)


def test_a_rule_that_judges_no_registered_device_does_not_count() -> None:
    rules = parse_rules(TEXT.replace("watch: inactivity\n    min_for: 2h", "watch: inactivity\n    min_for: 5m"))
    resident = DeviceRef("vs373-01", "care", "care", "flat-1", {})
    assert horizon(rules, [gully()]) == MAX_SPAN
    assert horizon(rules, [gully(), resident]) == timedelta(minutes=5)


def test_the_span_stays_within_its_bounds() -> None:
    assert horizon(RULES, []) == MAX_SPAN  # no device: nothing can come due
    rules = parse_rules(TEXT + "\noverrides:\n  gully-0001:\n    gully-flood: {keep_firing_for: 10s}\n")
    assert horizon(rules, [gully()]) == MIN_SPAN  # batches no shorter than a minute
