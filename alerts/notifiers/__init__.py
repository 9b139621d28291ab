"""Notification channels: a signed JSON webhook and SMTP email. The delivery loop (alerts/delivery.py)
drives them from the outbox; each notifier only sends one message and says how it failed."""

from alerts.notifiers.base import (
    CARE_CATEGORIES,
    NAME_KEYS,
    DeliveryError,
    Message,
    Notifier,
    PermanentFailure,
    TemporaryFailure,
    care_where,
    is_care,
    lookup,
    without_names,
)

__all__ = [
    "CARE_CATEGORIES",
    "NAME_KEYS",
    "DeliveryError",
    "Message",
    "Notifier",
    "PermanentFailure",
    "TemporaryFailure",
    "care_where",
    "is_care",
    "lookup",
    "without_names",
]
