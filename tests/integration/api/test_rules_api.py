"""The rules routes over real HTTP: the rules in force (the file `ApiSettings.rules_file` names, else the
shipped defaults), each role seeing its fleet's and the gateway rules, and `rules/check` answering
what `lorawatch rules check` says about an uploaded file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from alerts.rules import DEFAULT_RULES_FILE, load_rules
from dashboard.api.rules import expanded_nodes
from tests.integration.api.conftest import bearer

RULES = "/api/v1/rules"
CHECK = "/api/v1/rules/check"
YAML = {"Content-Type": "application/yaml"}

MIXED = """\
version: 1
routes:
  highways: {}
  care-team: {}
rules:
  - {name: gully-flood, category: flood, type: threshold, applies_to: {kind: gully}, metric: level_mm,
     warning: {above: 500}, critical: {above: 800}, route: highways}
  - {name: fall, category: fall, type: device_alarm, applies_to: {kind: care, groups: [flat-12]}, event: alarm,
     match: {alarm_type: fall}, route: care-team, repeat_every: 2m}
  - {name: gateway-down, category: gateway_offline, type: gateway_offline, applies_to: {kind: gully}, route: highways}
  - {name: any-battery, category: battery_low, type: battery, below_v: 3.1}
  - {name: some-devices, category: offline, type: offline, applies_to: {devices: [radar-9]}, expected_interval: 1h}
  - {name: anomaly, category: anomaly, type: anomaly, applies_to: {kind: gully}, metric: distance_mm, page: false}
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(MIXED)
    return path


@pytest.fixture
def api(serve: Callable[..., str], request: pytest.FixtureRequest) -> str:
    """The API with `rules_file` in force when the test uses that fixture, else the shipped rules."""
    path = request.getfixturevalue("rules_file") if "rules_file" in request.fixturenames else None
    return serve(rules_file=path)


def names(api: str, token: str) -> list[str]:
    response = httpx.get(api + RULES, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    return [r["name"] for r in response.json()["rules"]]


def test_each_role_sees_its_fleets_rules_and_the_gateway_rules(
    rules_file: Path, api: str, people: dict[str, str]
) -> None:
    assert names(api, people["admin"]) == ["gully-flood", "fall", "gateway-down", "any-battery", "some-devices",
                                           "anomaly"]  # fmt: skip
    assert names(api, people["highways"]) == ["gully-flood", "gateway-down", "any-battery", "anomaly"]
    assert names(api, people["care"]) == ["fall", "gateway-down", "any-battery"]
    rules = {r["name"]: r for r in httpx.get(api + RULES, headers=bearer(people["care"])).json()["rules"]}
    fall = rules["fall"]
    assert (fall["category"], fall["type"], fall["severities"], fall["fleet"], fall["routes"]) == (
        "fall",
        "device_alarm",
        ["critical"],
        "care",
        ["care-team"],
    )
    assert (fall["page"], fall["repeat_every"], fall["applies_to"]["groups"]) == (True, "2m", ["flat-12"])
    assert fall["summary"].startswith("fall (fall, device_alarm)")
    admin = {r["name"]: r for r in httpx.get(api + RULES, headers=bearer(people["admin"])).json()["rules"]}
    assert admin["gully-flood"]["severities"] == ["warning", "critical"]
    assert admin["anomaly"]["page"] is False
    assert (admin["some-devices"]["fleet"], admin["any-battery"]["fleet"]) == ("admin", "all")


def test_rules_come_a_page_at_a_time(rules_file: Path, api: str, people: dict[str, str]) -> None:
    pages, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = httpx.get(api + RULES, params=params, headers=bearer(people["highways"])).json()
        pages.append([r["name"] for r in body["rules"]])
        if (cursor := body["next_cursor"]) is None:
            break
    assert pages == [["gully-flood", "gateway-down"], ["any-battery", "anomaly"]]


def test_the_shipped_defaults_without_a_rules_file(api: str, people: dict[str, str]) -> None:
    shipped = [r.name for r in load_rules(DEFAULT_RULES_FILE).rules]
    assert names(api, people["admin"]) == shipped


def test_a_broken_rules_file_in_force_is_reported_not_a_500(rules_file: Path, api: str, people: dict[str, str]) -> None:
    rules_file.write_text("version: 1\nrules:\n  - {name: x, category: weather, type: threshold}\n")
    body = httpx.get(api + RULES, headers=bearer(people["highways"])).json()
    assert body["ok"] is False and body["rules"] == []
    assert any("weather" in p for p in body["problems"])


def test_check_answers_like_the_cli(api: str, people: dict[str, str]) -> None:
    ok = httpx.post(api + CHECK, content=MIXED, headers={**YAML, **bearer(people["highways"])})
    assert ok.status_code == 200 and ok.json() == {"ok": True, "rules": 6, "routes": 3, "problems": []}
    broken = (
        "version: 1\nrules:\n  - name: level\n    category: flood\n    type: threshold\n"
        "    metric: level_mm\n    warning: {abov: 5}\n"
    )
    bad = httpx.post(api + CHECK, content=broken, headers={"Content-Type": "text/plain", **bearer(people["care"])})
    assert bad.status_code == 200
    body = bad.json()
    assert body["ok"] is False and body["rules"] == 0
    assert body["problems"][0] == "rules.yaml:7: rules[0].warning.abov: unknown key (did you mean 'above'?)"
    not_yaml = httpx.post(api + CHECK, content=b"\xff\xfe", headers={**YAML, **bearer(people["admin"])})
    assert not_yaml.json()["ok"] is False and "not UTF-8" in not_yaml.json()["problems"][0]
    control = httpx.post(api + CHECK, content="a: \x81", headers={**YAML, **bearer(people["admin"])})
    assert control.status_code == 200 and "YAML error" in control.json()["problems"][0]  # not a 500
    no_type = httpx.post(api + CHECK, content=MIXED, headers=bearer(people["admin"]))
    assert no_type.status_code == 422
    json_body = httpx.post(api + CHECK, json={"rules": []}, headers=bearer(people["admin"]))
    assert json_body.status_code == 415
    syntax = httpx.post(api + CHECK, content="rules: [", headers={**YAML, **bearer(people["admin"])})
    assert syntax.json()["ok"] is False and "YAML syntax error" in syntax.json()["problems"][0]
    assert httpx.post(api + CHECK, content=MIXED, headers=YAML).status_code == 401


def test_check_refuses_an_upload_too_large_and_an_alias_bomb(api: str, people: dict[str, str]) -> None:
    big = httpx.post(api + CHECK, content=b"#" * (1024 * 1024 + 1), headers={**YAML, **bearer(people["admin"])})
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    )
    assert expanded_nodes(bomb) > 200_000
    response = httpx.post(api + CHECK, content=bomb, headers={**YAML, **bearer(people["admin"])}, timeout=10)
    assert response.status_code == 200
    assert response.json()["ok"] is False and "aliases expand it past" in response.json()["problems"][0]


def test_expanded_nodes_counts_shared_nodes_once_per_use() -> None:
    assert expanded_nodes("a: 1") == 3  # the mapping, its key, its value
    assert expanded_nodes("a: &x [1, 2]\nb: *x\nc: *x") == 1 + 3 * (1 + 3)
    assert expanded_nodes("") == 0 and expanded_nodes("[") == 0


def test_problems_quoting_lone_surrogates_are_still_json(api: str, people: dict[str, str]) -> None:
    response = httpx.post(api + CHECK, content='{"\\udb61": 1}', headers={**YAML, **bearer(people["admin"])})
    assert response.status_code == 200
    assert any("\\udb61" in p for p in response.json()["problems"])
