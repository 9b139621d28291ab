"""The notifiers' pure parts: canonical bodies and signatures, care minimisation, email text, backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.delivery import RetryPolicy, body_of
from alerts.notifiers import is_care, lookup, without_names
from alerts.notifiers.email import message_id, render_text, subject_line
from alerts.notifiers.webhook import encode, sign, verify
from store.records import OutboxRow

T0 = datetime(2025, 1, 10, 6, 0, tzinfo=UTC)


def _row(payload: dict[str, Any], attempts: int = 1, created_at: datetime = T0) -> OutboxRow:
    return OutboxRow(
        1, 7, "opened", "webhook", "care-team", "https://x", payload, "key-1", "pending", attempts, T0, None,
        created_at, None, False,
    )  # fmt: skip


def test_the_body_is_canonical_and_the_signature_covers_exactly_it() -> None:
    a, b = encode({"b": 1, "a": {"y": 2, "x": 1}}), encode({"a": {"x": 1, "y": 2}, "b": 1})
    assert a == b == b'{"a":{"x":1,"y":2},"b":1}'
    header = sign(a, "k")
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify(a, "k", header)
    assert not verify(a + b" ", "k", header) and not verify(a, "other", header) and not verify(a, "k", None)


def test_care_payloads_lose_every_name_and_gain_the_key() -> None:
    payload = {
        "alert": {"category": "fall", "kind": "care", "resident": "E. Jones"},
        "where": {"care_room": "12", "care_group": "Oak House", "name": "Mrs Jones"},
        "people": [{"first_name": "Edith", "role": "resident"}],
    }
    assert is_care(payload) and lookup(payload, "care_room") == "12"
    body = body_of(_row(payload))
    assert "Jones" not in repr(body) and "Edith" not in repr(body)
    assert body["where"] == {"care_room": "12", "care_group": "Oak House"}
    assert body["people"] == [{"role": "resident"}]
    assert body["idempotency_key"] == "key-1"
    gully = {"alert": {"category": "flood", "kind": "gully"}, "where": {"name": "High St"}}
    assert not is_care(gully) and body_of(_row(gully))["where"] == {"name": "High St"}  # a gully keeps its name
    assert without_names({"name": 1, "x": [{"name": 2}]}) == {"x": [{}]}


def test_email_text_for_a_flat_care_payload_is_an_allowlist() -> None:
    body = {
        "event": "repeat", "category": "inactivity", "severity": "warning", "care_room": "3B",
        "device_id": "pir-jones", "summary": "Mr Jones has not moved", "value": 0, "idempotency_key": "k",
    }  # fmt: skip
    assert subject_line(body) == "WARNING no activity: room 3B (repeat)"
    text = render_text(body)
    assert "Jones" not in text and "pir-" not in text
    assert "where: room 3B" in text and "time not given" in text


def test_message_id_is_stable_per_key() -> None:
    assert message_id("k", "a@b.example") == message_id("k", "a@b.example") != message_id("k2", "a@b.example")
    assert message_id("k", "a@b.example").endswith("@b.example>")


def test_backoff_doubles_to_the_cap_and_gives_up_on_attempts_or_age() -> None:
    policy = RetryPolicy(max_attempts=5, max_age=timedelta(hours=1))
    assert [policy.delay(n).total_seconds() for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    assert not policy.gives_up(_row({}, attempts=4), T0)
    assert policy.gives_up(_row({}, attempts=5), T0)
    assert policy.gives_up(_row({}, attempts=1), T0 + timedelta(hours=1))
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
