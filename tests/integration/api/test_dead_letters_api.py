"""The dead-letters routes over real HTTP: admin only (403 for the others, and no grant for them in
the database either), stage and device filters, pagination, and the raw bytes round-tripping through
base64 exactly."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from store import audit
from store.records import DeadLetter
from store.writer import IngestWriter
from tests.integration.api.conftest import bearer

DEAD = "/api/v1/dead-letters"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
#: Bytes that are not UTF-8, a NUL, and every byte value: what ingest keeps when it cannot parse.
RAW = bytes(range(256)) + b"\xff\xfe{not json"


@pytest.fixture
def dead(db_url: str) -> Iterator[dict[str, bytes]]:
    """Five dead letters written by the real writer (one of them seen twice), by topic."""
    letters = {
        "t/json": (b'{"broken', "json", None),
        "t/raw": (RAW, "decode", "gully-1"),
        "t/env": (b"{}", "envelope", None),
        "t/range": (b'{"f_cnt": -1}', "range", "gully-1"),
        "t/size": (b"x" * 5000, "size", None),
    }
    with psycopg.connect(db_url) as conn:
        writer = IngestWriter(conn)
        for i, (topic, (raw, stage, device)) in enumerate(letters.items()):
            letter = DeadLetter(T0 + timedelta(minutes=i), stage, f"{stage} refused", "ValueError", topic, device, raw)
            writer.write([], [letter])
        writer.write(
            [], [DeadLetter(T0 + timedelta(hours=1), "json", "json refused", None, "t/json", None, b'{"broken')]
        )
    yield {topic: raw for topic, (raw, _, _) in letters.items()}


def get(api: str, token: str, path: str = DEAD, **params: Any) -> httpx.Response:
    return httpx.get(api + path, params=params, headers=bearer(token))


@pytest.mark.parametrize("role", ["highways", "care"])
def test_only_admin_may_read_them(api: str, people: dict[str, str], dead: dict[str, bytes], role: str) -> None:
    for path in (DEAD, f"{DEAD}/1"):
        response = get(api, people[role], path)
        assert response.status_code == 403, response.text
        assert response.json()["error"] == {"code": "forbidden", "message": "this needs the role admin"}
    assert httpx.get(api + DEAD).status_code == 401


def test_no_other_role_has_a_grant_on_the_table(db_url: str) -> None:
    with psycopg.connect(db_url) as owner:
        for role, expected in (("lorawatch_admin", True), ("lorawatch_highways", False), ("lorawatch_care", False),
                               ("lorawatch_api", False)):  # fmt: skip
            assert owner.execute("SELECT has_table_privilege(%s, 'dead_letters', 'SELECT')", (role,)).fetchone() == (
                expected,
            )
            for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                held = owner.execute("SELECT has_table_privilege(%s, 'dead_letters', %s)", (role, privilege)).fetchone()
                assert held == (False,), (role, privilege)


def test_list_newest_first_with_filters_and_pages(api: str, people: dict[str, str], dead: dict[str, bytes]) -> None:
    token = people["admin"]
    body = get(api, token, limit=100).json()
    topics = [d["topic"] for d in body["items"]]
    assert topics == ["t/size", "t/range", "t/env", "t/raw", "t/json"] and body["next_cursor"] is None
    json_letter = body["items"][-1]
    assert (json_letter["stage"], json_letter["reason"], json_letter["repeats"]) == ("json", "json refused", 2)
    assert json_letter["last_time"].startswith("2026-11-01T04:00:00")
    assert "raw_base64" not in json_letter and body["items"][0]["size"] == 5000
    seen, cursor = [], None
    while True:
        page = get(api, token, limit=2, **({"cursor": cursor} if cursor else {})).json()
        seen += [d["topic"] for d in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == topics
    assert [d["topic"] for d in get(api, token, stage="json").json()["items"]] == ["t/json"]
    assert [d["topic"] for d in get(api, token, device="gully-1").json()["items"]] == ["t/range", "t/raw"]
    since = (T0 + timedelta(minutes=30)).isoformat()
    assert [d["topic"] for d in get(api, token, since=since).json()["items"]] == ["t/json"]  # seen again at 04:00
    assert get(api, token, stage="NOT A STAGE").status_code == 422


def test_one_carries_its_raw_bytes_as_base64_exactly(
    api: str, people: dict[str, str], dead: dict[str, bytes], db_url: str
) -> None:
    items = get(api, people["admin"], limit=100).json()["items"]
    by_topic = {d["topic"]: d["id"] for d in items}
    for topic, raw in dead.items():
        response = get(api, people["admin"], f"{DEAD}/{by_topic[topic]}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert base64.b64decode(body["raw_base64"], validate=True) == raw
        assert body["size"] == len(raw) and body["topic"] == topic
    assert get(api, people["admin"], f"{DEAD}/{10**9}").status_code == 404
    with psycopg.connect(db_url) as owner:
        viewed = [e for e in audit.entries(owner, limit=100) if e.action == "dead_letter_viewed"]
    assert len(viewed) == len(dead) and {e.actor for e in viewed} == {"admin"}
