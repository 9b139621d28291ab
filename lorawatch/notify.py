"""Wiring of notification delivery from the settings and the rules file's routes.

Why here: settings and the environment are read only in the composition root. The notifiers get
their secrets as plain arguments, per route: a route with its own `secret_env` or `smtp_url_env`
(docs/alerts.md) gets that variable's value, every other route the defaults
(`LORAWATCH_WEBHOOK_SECRET`, `LORAWATCH_SMTP_URL`).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

import psycopg

from alerts.delivery import Delivery, RetryPolicy
from alerts.notifiers.base import Notifier
from alerts.notifiers.email import EmailNotifier, SmtpServer, parse_smtp_url
from alerts.notifiers.webhook import WebhookNotifier
from alerts.rules import RuleSet
from lorawatch import __version__
from lorawatch.settings import Settings


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        first_delay=timedelta(seconds=settings.delivery_first_retry_s),
        max_delay=timedelta(seconds=settings.delivery_max_retry_s),
        max_attempts=settings.delivery_max_attempts,
        max_age=timedelta(hours=settings.delivery_max_age_h),
        lease=timedelta(seconds=settings.delivery_lease_s),
    )


def notifiers(settings: Settings, rules: RuleSet | None = None, env: Mapping[str, str] | None = None) -> list[Notifier]:
    """The webhook and email notifiers, with each route's secret and SMTP server from `env` (the
    process environment, passed in by the caller)."""
    default_secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    default_smtp = parse_smtp_url(settings.smtp_url.get_secret_value()) if settings.smtp_url else None
    route_secrets: dict[str, str | None] = {}
    route_smtp: dict[str, SmtpServer] = {}
    if rules is not None:
        for name, route in rules.routes.items():
            if route.uses_default_channels:
                continue  # the defaults above, from the settings
            resolved = route.resolve(name, env or {})
            if route.webhook is not None:
                route_secrets[name] = resolved.webhook_secret
            if route.email is not None and resolved.smtp_url:
                route_smtp[name] = parse_smtp_url(resolved.smtp_url)
    context = ssl.create_default_context(cafile=str(settings.smtp_ca_file) if settings.smtp_ca_file else None)
    return [
        WebhookNotifier(
            secret=default_secret,
            route_secrets=route_secrets,
            timeout=settings.delivery_timeout_s,
            user_agent=f"lorawatch/{__version__}",
        ),
        EmailNotifier(
            server=default_smtp,
            route_servers=route_smtp,
            sender=settings.email_from,
            timeout=settings.delivery_timeout_s,
            ssl_context=context,
        ),
    ]


def build_delivery(
    settings: Settings,
    conninfo: str,
    *,
    clock: Callable[[], datetime],
    rules: RuleSet | None = None,
    env: Mapping[str, str] | None = None,
) -> Delivery:
    """The delivery loop for `lorawatch alerts run`: `run(stop)` it on a thread of its own."""
    return Delivery(
        lambda: psycopg.connect(conninfo),
        notifiers(settings, rules, env),
        clock=clock,
        policy=retry_policy(settings),
        concurrency=settings.delivery_concurrency,
        poll=settings.delivery_poll_s,
        listen=conninfo,
    )
