"""Bad rules files: each problem is reported with the file, the line and the key, and all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from alerts.rules import RulesError, load_rules, parse_rules

GOOD_RULE = """\
  - name: gully-fill
    category: flood
    type: threshold
    metric: fill_pct
    warning: {above: 60}
    critical: {above: 85}
    route: highways
"""


TYPES = (
    "(one of: threshold, device_alarm, offline, battery, flood, sensor_fault, blockage, silt, gateway_offline, "
    "welfare, anomaly)"
)


def problems(tmp_path: Path, text: str) -> list[str]:
    """The messages for `text` written to a file, with the `FILE:` prefix checked and removed."""
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(RulesError) as info:
        load_rules(path)
    messages = list(info.value.messages)
    assert messages and all(m.startswith(f"{path}:") for m in messages), messages
    assert str(info.value) == "\n".join(messages)
    return [m.removeprefix(f"{path}:") for m in messages]


def with_rules(rules: str, extra: str = "") -> str:
    return f"version: 1\nroutes:\n  highways: {{}}\nrules:\n{rules}{extra}"


def test_unknown_nested_key_names_file_line_and_path(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE.replace("warning: {above: 60}", "warning: {abov: 60}"))
    assert problems(tmp_path, text) == ["9: rules[0].warning.abov: unknown key (did you mean 'above'?)"]


def test_unknown_key_in_block_style_points_at_the_key_line(tmp_path: Path) -> None:
    rule = GOOD_RULE.replace("    warning: {above: 60}\n", "    warning:\n      above: 60\n      hysterisis: 5\n")
    assert problems(tmp_path, with_rules(rule)) == ["11: rules[0].warning.hysterisis: unknown key"]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE, "overides: {}\n")
    assert problems(tmp_path, text) == ["12: overides: unknown key (did you mean 'overrides'?)"]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("5", "rules[0].for: 5 is not a duration: write a number and a unit, e.g. 30s, 5m, 2h or 1d"),
        ("soon", "rules[0].for: 'soon' is not a duration: write a number and a unit, e.g. 30s, 5m, 2h or 1d"),
        ("-5m", "rules[0].for: '-5m' is not a duration"),
    ],
)
def test_bad_duration(tmp_path: Path, written: str, message: str) -> None:
    text = with_rules(GOOD_RULE + f"    for: {written}\n")
    [found] = problems(tmp_path, text)
    assert found.startswith(f"12: {message}")


def test_zero_repeat_is_refused(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE + "    repeat_every: 0s\n")
    assert problems(tmp_path, text) == ["12: rules[0].repeat_every: must be longer than 0s"]


def test_bad_category_lists_the_vocabulary(tmp_path: Path) -> None:
    [found] = problems(tmp_path, with_rules(GOOD_RULE.replace("category: flood", "category: flod")))
    assert found.startswith("6: rules[0].category: 'flod' is not a category (one of: flood, rising, blockage,")
    assert found.endswith("night_activity, anomaly)")


def test_bad_severity(tmp_path: Path) -> None:
    rule = "  - {name: o, category: offline, type: offline, expected_interval: 15m, severity: urgent}\n"
    assert problems(tmp_path, with_rules(rule)) == [
        "5: rules[0].severity: 'urgent' is not a severity (one of: critical, warning, info)"
    ]


def test_unknown_route_names_the_defined_ones(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE.replace("route: highways", "route: higways"))
    assert problems(tmp_path, text) == ["11: rules[0].route: no route named 'higways' (defined: default, highways)"]


def test_unknown_route_in_a_list_and_in_an_escalation(tmp_path: Path) -> None:
    rule = GOOD_RULE.replace("route: highways", "route: [highways, x]") + (
        "    escalate:\n      - {after: 15m, route: highways}\n      - {after: 30m, route: duty}\n"
    )
    assert problems(tmp_path, with_rules(rule)) == [
        "11: rules[0].route[1]: no route named 'x' (defined: default, highways)",
        "14: rules[0].escalate[1].route: no route named 'duty' (defined: default, highways)",
    ]


def test_unknown_metric_suggests_the_closest(tmp_path: Path) -> None:
    [found] = problems(tmp_path, with_rules(GOOD_RULE.replace("metric: fill_pct", "metric: fil_pct")))
    assert found.startswith("8: rules[0].metric: unknown metric 'fil_pct' (did you mean 'fill_pct'? one of: fill_pct,")


def test_duplicate_rule_names(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE + GOOD_RULE)
    assert problems(tmp_path, text) == ["12: rules[1].name: duplicate rule name 'gully-fill' (first used at line 5)"]


def test_threshold_without_levels(tmp_path: Path) -> None:
    rule = GOOD_RULE.replace("    warning: {above: 60}\n", "").replace("    critical: {above: 85}\n", "")
    assert problems(tmp_path, with_rules(rule)) == [
        "5: rules[0]: a threshold rule needs a warning or a critical level (or both)"
    ]


def test_warning_above_critical_for_an_above_rule(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE.replace("warning: {above: 60}", "warning: {above: 90}"))
    assert problems(tmp_path, text) == [
        "9: rules[0].warning: warning threshold 90 must be below critical threshold 85 "
        "(in an 'above' rule warning comes first)"
    ]


def test_warning_below_critical_for_a_below_rule(tmp_path: Path) -> None:
    rule = GOOD_RULE.replace("{above: 60}", "{below: 300}").replace("{above: 85}", "{below: 400}")
    rule = rule.replace("fill_pct", "distance_mm")
    assert problems(tmp_path, with_rules(rule)) == [
        "9: rules[0].warning: warning threshold 300 must be above critical threshold 400 "
        "(in a 'below' rule warning comes first)"
    ]


def test_levels_in_two_directions(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE.replace("critical: {above: 85}", "critical: {below: 85}"))
    assert problems(tmp_path, text) == ["10: rules[0].critical: warning is above and critical is below: use one"]


def test_a_level_needs_exactly_one_direction(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE.replace("warning: {above: 60}", "warning: {above: 60, below: 10}"))
    assert problems(tmp_path, text) == ["9: rules[0].warning: give above or below (exactly one)"]


def test_percentages_stay_within_0_to_100(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE.replace("critical: {above: 85}", "critical: {above: 150}"))
    assert problems(tmp_path, text) == ["10: rules[0].critical.above: fill_pct is a percentage: 0 to 100"]


def test_clear_must_go_the_other_way_and_lie_outside_the_levels(tmp_path: Path) -> None:
    wrong_way = with_rules(GOOD_RULE + "    clear: {above: 50}\n")
    assert problems(tmp_path, wrong_way) == ["12: rules[0].clear: the levels are 'above', so clear must be 'below'"]
    inside = with_rules(GOOD_RULE + "    clear: {below: 70}\n")
    [found] = problems(tmp_path, inside)
    assert found.startswith("12: rules[0].clear.below: clear below 70 is inside the warning level")


def test_severity_on_a_threshold_rule_says_why(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE + "    severity: critical\n")
    assert problems(tmp_path, text) == [
        "12: rules[0].severity: unknown key: threshold rules take their severity from the warning and critical levels"
    ]


def test_a_key_of_another_rule_type(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE + "    missed: 3\n")
    assert problems(tmp_path, text) == [
        "12: rules[0].missed: unknown key for a threshold rule (it belongs to offline rules)"
    ]


def test_unknown_and_missing_rule_type(tmp_path: Path) -> None:
    text = with_rules(
        "  - {name: a, category: flood, type: treshold}\n  - {name: b, category: flood}\n  - not a mapping\n"
    )
    assert problems(tmp_path, text) == [
        "5: rules[0].type: unknown rule type 'treshold' " + TYPES,
        "6: rules[1].type: required key is missing " + TYPES,
        "7: rules[2]: a rule must be a mapping (name, category, type, ...)",
    ]


def test_missing_required_keys(tmp_path: Path) -> None:
    text = with_rules("  - name: o\n    category: offline\n    type: offline\n")
    assert problems(tmp_path, text) == ["5: rules[0].expected_interval: required key is missing"]


def test_bad_names(tmp_path: Path) -> None:
    text = "version: 1\nroutes:\n  Highways: {}\nrules:\n" + GOOD_RULE.replace("name: gully-fill", "name: Gully Fill")
    found = problems(tmp_path, text)
    assert found[0] == "3: routes.Highways: 'Highways' is not a valid name: use lowercase letters, digits, '_' and '-'"
    assert "5: rules[0].name: 'Gully Fill' is not a valid name: use lowercase letters, digits, '_' and '-'" in found


def test_yaml_numbers_where_text_is_expected_say_to_quote(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE + "    applies_to: {devices: [gully-0001, 0042]}\n")
    assert problems(tmp_path, text) == [
        "12: rules[0].applies_to.devices[1]: expected text, got 0042 (quote it: '0042')"
    ]


def test_device_alarm_attributes_are_checked_against_the_decoders(tmp_path: Path) -> None:
    rule = (
        "  - name: fall\n    category: fall\n    type: device_alarm\n    event: alarm\n    match: {alarm_type: fal}\n"
    )
    assert problems(tmp_path, with_rules(rule)) == [
        "9: rules[0].match.alarm_type: 'fal' is not an alarm_type of alarm events (one of: fall, motionless, dwell, "
        "out_of_bed, occupied, vacant, bradynea, tachypnea, lying_down, unknown)"
    ]
    rule = rule.replace("alarm_type: fal", "alarm_kind: fall")
    assert problems(tmp_path, with_rules(rule)) == [
        "9: rules[0].match.alarm_kind: alarm events have no attribute 'alarm_kind' "
        "(they have: alarm_id, alarm_type, alarm_status, region_id)"
    ]
    rule = rule.replace("alarm_kind: fall", "alarm_type: fall") + "    opens_on: [triggered]\n"
    [found] = problems(tmp_path, with_rules(rule))
    assert found.startswith("10: rules[0].opens_on: 'triggered' is not an alarm_status of alarm events")


def test_unknown_event_kind_and_for_on_a_device_alarm(tmp_path: Path) -> None:
    rule = "  - name: fall\n    category: fall\n    type: device_alarm\n    event: fall\n    for: 1m\n"
    assert problems(tmp_path, with_rules(rule)) == [
        "8: rules[0].event: 'fall' is not an event kind (one of: alarm, distance_alarm, distance_exception, "
        "device_reset)",
        "9: rules[0].for: unknown key: a device alarm opens at the uplink that carries it; `for` does not apply",
    ]


def test_type_fixes_the_category_of_offline_and_battery_rules(tmp_path: Path) -> None:
    rule = "  - {name: o, category: gateway_offline, type: offline, expected_interval: 15m}\n"
    assert problems(tmp_path, with_rules(rule)) == ["5: rules[0].category: an offline rule's category must be offline"]


def test_escalation_steps_come_later_and_later(tmp_path: Path) -> None:
    rule = GOOD_RULE + "    escalate:\n      - {after: 30m, route: highways}\n      - {after: 15m, route: highways}\n"
    assert problems(tmp_path, with_rules(rule)) == [
        "14: rules[0].escalate[1].after: escalation steps must come later and later: 15m is not after 30m"
    ]


def test_battery_rules_need_a_threshold(tmp_path: Path) -> None:
    rule = "  - {name: b, category: battery_low, type: battery, clear_above_v: 3.2}\n"
    assert problems(tmp_path, with_rules(rule)) == ["5: rules[0]: a battery rule needs below_v or below_pct (or both)"]
    rule = "  - {name: b, category: battery_low, type: battery, below_v: yes}\n"
    assert problems(tmp_path, with_rules(rule)) == ["5: rules[0].below_v: expected a number, got yes"]


def test_routes_are_checked(tmp_path: Path) -> None:
    text = (
        "version: 1\nroutes:\n  highways:\n    webhook: {url: ftp://x, secret: abc}\n"
        "  care:\n    email: {to: [not-an-address], to_env: X}\n  ops:\n    webhook: {secret_env: lower_case}\n"
        "rules: []\n"
    )
    assert problems(tmp_path, text) == [
        "4: routes.highways.webhook.secret: unknown key: secrets never go in the rules file: "
        "name an environment variable with secret_env",
        "4: routes.highways.webhook.url: 'ftp://x' is not an http:// or https:// URL",
        "6: routes.care.email.to[0]: 'not-an-address' is not an email address",
        "8: routes.ops.webhook.secret_env: 'lower_case' is not an environment variable name "
        "(capitals, digits and '_', e.g. LORAWATCH_WEBHOOK_SECRET)",
    ]


def test_overrides_naming_an_unknown_rule_or_a_fixed_key(tmp_path: Path) -> None:
    text = with_rules(
        GOOD_RULE,
        "overrides:\n  gully-0042:\n    gully-fil: {critical: {above: 95}}\n    gully-fill: {category: silt}\n",
    )
    assert problems(tmp_path, text) == [
        "14: overrides.gully-0042.gully-fil: no rule named 'gully-fil' (defined: gully-fill)",
        "15: overrides.gully-0042.gully-fill.category: cannot be overridden per device (it says what the rule is)",
    ]


def test_an_override_that_breaks_the_rule_is_reported_at_the_override(tmp_path: Path) -> None:
    text = with_rules(
        GOOD_RULE,
        "overrides:\n"
        "  gully-0042:\n    gully-fill:\n      critical: {above: 50}\n"
        "  gully-0043:\n    gully-fill:\n      for: 5\n      hold: 1m\n",
    )
    assert problems(tmp_path, text) == [
        "14: overrides.gully-0042.gully-fill: warning threshold 60 must be below critical threshold 50 "
        "(in an 'above' rule warning comes first)",
        "18: overrides.gully-0043.gully-fill.for: 5 is not a duration: write a number and a unit, e.g. 30s, 5m, "
        "2h or 1d",
        "19: overrides.gully-0043.gully-fill.hold: unknown key",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """\
        version: 2
        routes:
          highways: {}
        rules:
          - name: gully-fill
            category: flod
            type: threshold
            metric: fill_pct
            warning: {abov: 60}
            critical: {above: 85}
            route: nowhere
          - name: gully-fill
            category: offline
            type: offline
            expected_interval: 15
        overrides:
          gully-1: {nope: {disabled: true}}
        """
    assert problems(tmp_path, text) == [
        "1: version: unsupported version 2 (this lorawatch reads version 1)",
        "6: rules[0].category: 'flod' is not a category (one of: flood, rising, blockage, silt, sensor_fault, "
        "offline, gateway_offline, battery_low, fall, inactivity, bathroom_dwell, night_activity, anomaly)",
        "9: rules[0].warning.abov: unknown key (did you mean 'above'?)",
        "11: rules[0].route: no route named 'nowhere' (defined: default, highways)",
        "12: rules[1].name: duplicate rule name 'gully-fill' (first used at line 5)",
        "15: rules[1].expected_interval: 15 is not a duration: write a number and a unit, e.g. 30s, 5m, 2h or 1d",
        "17: overrides.gully-1.nope: no rule named 'nope' (defined: gully-fill)",
    ]


def test_a_repeated_yaml_key_is_an_error_not_last_one_wins(tmp_path: Path) -> None:
    text = with_rules(GOOD_RULE + "    critical: {above: 95}\n")
    assert problems(tmp_path, text) == ["12: rules[0].critical: duplicate key (first given at line 10)"]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    [found] = problems(tmp_path, with_rules(GOOD_RULE + "    for: [5m\n"))
    assert found.startswith("13: YAML syntax error:")


def test_a_control_character_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    [found] = problems(tmp_path, with_rules(GOOD_RULE) + "\x81\n")
    assert found.startswith("1: YAML error:") and "#x0081" in found


def test_file_level_problems(tmp_path: Path) -> None:
    assert problems(tmp_path, "") == ["1: the rules file is empty: it needs at least `version: 1` and `rules:`"]
    assert problems(tmp_path, "- a\n- b\n") == [
        "1: a rules file is a mapping with version, routes, rules and overrides"
    ]
    assert problems(tmp_path, "routes: {}\n") == [
        "1: rules: required key is missing (a list of rules; `rules: []` for none)",
        "1: version: required key is missing (write `version: 1` at the top)",
    ]
    assert problems(tmp_path, "version: 1\nrules: {a: 1}\n") == [
        "2: rules: must be a list of rules (each item starting with `- name:`)"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match=r"missing.yaml: cannot read the rules file: No such file"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1\n# caf\xe9\n")
    with pytest.raises(RulesError, match="not UTF-8 text"):
        load_rules(bad)


def test_parse_rules_names_its_source() -> None:
    with pytest.raises(RulesError) as info:
        parse_rules("version: 1\nrules: []\nextra: 1\n", "inline")
    assert info.value.messages == ("inline:3: extra: unknown key",)
