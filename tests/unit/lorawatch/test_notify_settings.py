"""Notification settings: validation that never echoes a secret, and the wiring of per-route secrets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from alerts.notifiers.email import EmailNotifier, SmtpServer
from alerts.notifiers.webhook import WebhookNotifier
from alerts.rules import parse_rules
from lorawatch.notify import notifiers, retry_policy
from lorawatch.settings import Settings

RULES = """
version: 1
routes:
  highways: {}
  care-team:
    webhook: {url: https://care.example/hook, secret_env: CARE_SECRET}
    email: {to: [care@council.example], smtp_url_env: CARE_SMTP}
  open: {webhook: {url: https://open.example/hook}}
rules:
  - name: fall
    category: fall
    type: device_alarm
    event: alarm
    match: {alarm_type: fall}
    route: care-team
"""


def test_smtp_url_is_checked_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWATCH_SMTP_URL", "smtp://alerts:hunter2@relay.example")
    with pytest.raises(ValidationError, match="clear text") as info:
        Settings()
    assert "hunter2" not in str(info.value)
    monkeypatch.setenv("LORAWATCH_SMTP_URL", "smtps://alerts:hunter2@relay.example")
    monkeypatch.setenv("LORAWATCH_WEBHOOK_SECRET", "hook-key")
    s = Settings()
    assert "hunter2" not in repr(s) and "hook-key" not in repr(s)


def test_the_lease_must_outlast_the_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWATCH_DELIVERY_TIMEOUT_S", "60")
    with pytest.raises(ValidationError, match="LORAWATCH_DELIVERY_LEASE_S"):
        Settings()
    monkeypatch.setenv("LORAWATCH_DELIVERY_LEASE_S", "180")
    policy = retry_policy(Settings())
    assert policy.lease == timedelta(seconds=180)
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 8, 9, 50)] == [5, 10, 20, 600, 600, 600]


def test_routes_get_their_own_secret_and_smtp_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORAWATCH_WEBHOOK_SECRET", "default-key")
    monkeypatch.setenv("LORAWATCH_SMTP_URL", "smtp://relay.example")
    env = {"CARE_SECRET": "care-key", "CARE_SMTP": "smtps://care:pw@care-relay.example"}
    webhook, email = notifiers(Settings(), parse_rules(RULES), env)
    assert isinstance(webhook, WebhookNotifier) and isinstance(email, EmailNotifier)
    assert webhook.secret_for("highways") == "default-key"  # {} = the default channels
    assert webhook.secret_for("care-team") == "care-key"
    assert webhook.secret_for("open") is None  # its own webhook, no secret: unsigned
    assert email.server_for("highways") == SmtpServer("relay.example", 25, "plain")
    assert email.server_for("care-team") == SmtpServer("care-relay.example", 465, "tls", "care", "pw")
    assert "care-key" not in repr(webhook) and "pw" not in repr(email)
