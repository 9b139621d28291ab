"""The email channel: a short plain-text message through an SMTP server (smtplib).

The server is a URL (`LORAWATCH_SMTP_URL`, or a route's `smtp_url_env`):

- `smtp://[user@]host[:port]` (port 25): plain SMTP. A password is refused: it would cross the
  network in clear text.
- `smtp+starttls://[user:password@]host[:port]` (port 587): plain connect, then STARTTLS, which is
  required (no fallback to clear text), then login.
- `smtps://[user:password@]host[:port]` (port 465): TLS from the first byte ("implicit TLS"), then login.

User and password are percent-decoded (`%40` for `@`). Certificates are verified against the system
CAs, or the CA file the composition root loads into `ssl_context` (`LORAWATCH_SMTP_CA_FILE`).

The message: `Subject` is one summary line (severity, category, where, event); the body repeats it
with the time and the few fields that help someone act; `Message-ID` is derived from the outbox
row's idempotency key, so a repeat after a crash has the same Message-ID and a mail system or reader
that de-duplicates by it shows one message; `X-Lorawatch-Idempotency-Key` carries the key itself.
A care alert's message names the room/flat (`care_room`) and group (`care_group`), what happened and
when, and nothing else from the payload: no name, no device name, no free text.

Outcomes: accepted by the server = sent (recipients it refused while accepting others are noted in
`last_error`, not retried: retrying would mail the others twice). A 5xx reply (bad address,
authentication failed, message refused) is permanent: dead at once. A 4xx reply, a refused or lost
connection, a timeout or a TLS failure is retried with backoff.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from alerts.notifiers.base import Message, PermanentFailure, TemporaryFailure, care_where, is_care, lookup

Security = Literal["plain", "starttls", "tls"]
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("tls", 465),
}
_LABELS = {
    "flood": "flood",
    "rising": "rising water",
    "blockage": "blockage",
    "silt": "silt",
    "sensor_fault": "sensor fault",
    "offline": "device offline",
    "gateway_offline": "gateway offline",
    "battery_low": "battery low",
    "fall": "fall",
    "inactivity": "no activity",
    "bathroom_dwell": "long bathroom visit",
    "night_activity": "night activity",
    "anomaly": "anomaly",
}


#: What an email shows besides the summary line and the time: all of these for gullies and gateways,
#: only the first list for care alerts (the room/flat is in the summary line).
_CARE_FIELDS = ("rule", "category", "severity", "event")
_FIELDS = ("rule", "category", "severity", "event", "device_id", "application_id", "gateway_id", "value", "summary")


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """A parsed SMTP URL (see the module docstring)."""

    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """Parse `smtp://`, `smtp+starttls://` or `smtps://[user[:password]@]host[:port]`, with a clear
    error (never echoing the URL, which may hold a password) for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _SCHEMES:
        msg = f"SMTP URL must start with smtp://, smtp+starttls:// or smtps://, got {parts.scheme or 'no scheme'!r}"
        raise ValueError(msg)
    if not parts.hostname:
        raise ValueError("SMTP URL has no host")
    security, default_port = _SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError("SMTP URL has an invalid port") from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if password and security == "plain":
        msg = "SMTP URL smtp:// with a password would send it in clear text: use smtp+starttls:// or smtps://"
        raise ValueError(msg)
    return SmtpServer(parts.hostname, port, security, username, password)


def _alert_id(body: Mapping[str, Any]) -> Any:
    alert = body.get("alert")
    return body.get("alert_id") or (alert.get("id") if isinstance(alert, Mapping) else None)


def _when(body: Mapping[str, Any]) -> str:
    if body.get("event") == "resolved" and lookup(body, "resolved_at"):
        return str(lookup(body, "resolved_at"))
    for key in ("at", "firing_at", "opened_at"):
        if lookup(body, key):
            return str(lookup(body, key))
    return "time not given"


def _where(body: Mapping[str, Any]) -> str:
    if is_care(body):
        return care_where(body)
    device, name = lookup(body, "device_id"), lookup(body, "name")
    if device:
        return f"{device} ({name})" if name and name != device else str(device)
    gateway = lookup(body, "gateway_id")
    return f"gateway {gateway}" if gateway else str(lookup(body, "subject") or "unknown device")


def subject_line(body: Mapping[str, Any]) -> str:
    """`CRITICAL flood: gully-0042 (opened)`: severity, category, where, and what happened to the alert."""
    severity = str(lookup(body, "severity") or "alert").upper()
    category = str(lookup(body, "category") or "alert")
    event = str(body.get("event") or "opened")
    simulated = "[SIMULATED] " if body.get("simulated") else ""
    return f"{simulated}{severity} {_LABELS.get(category, category)}: {_where(body)} ({event})"


def render_text(body: Mapping[str, Any]) -> str:
    """The plain-text body. For care alerts only room/flat, group, category, severity, event, time,
    rule, alert id and link: an allowlist, so nothing the engine adds later can leak a name."""
    care = is_care(body)
    lines = [subject_line(body), "", f"when: {_when(body)}", f"where: {_where(body)}"]
    values = {key: lookup(body, key) for key in (_CARE_FIELDS if care else _FIELDS)}
    values["alert_id"] = _alert_id(body)
    lines += [f"{key}: {value}" for key, value in values.items() if value not in (None, "")]
    if not care and lookup(body, "latitude") is not None and lookup(body, "longitude") is not None:
        lines.append(f"position: {lookup(body, 'latitude')}, {lookup(body, 'longitude')}")
    if lookup(body, "url"):
        lines += ["", f"details (sign in): {lookup(body, 'url')}"]
    lines += ["", f"idempotency key: {body.get('idempotency_key', '')}"]
    return "\n".join(lines) + "\n"


def message_id(idempotency_key: str, sender: str) -> str:
    """A Message-ID that is the same for every repeat of one outbox row (hash: keys may hold any text)."""
    domain = sender.rpartition("@")[2] or "lorawatch.invalid"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}.lorawatch@{domain}>"


def build_message(message: Message, sender: str, to: Sequence[str]) -> EmailMessage:
    """The email for one delivery attempt (same headers and text on every repeat but the Date)."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(to)
    email["Subject"] = subject_line(message.body)
    email["Date"] = format_datetime(message.now)
    email["Message-ID"] = message_id(message.idempotency_key, sender)
    email["X-Lorawatch-Idempotency-Key"] = message.idempotency_key
    email["X-Lorawatch-Event"] = message.event
    email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to an alert
    email.set_content(render_text(message.body))
    return email


class EmailNotifier:
    """Mails messages to their outbox `target` (comma-separated addresses), one SMTP session each.

    `server` is used for every route unless `route_servers` names the route (a rules-file route with
    its own `smtp_url_env`). `ssl_context` verifies the server (default: the system CAs)."""

    channel = "email"

    def __init__(
        self,
        *,
        server: SmtpServer | None,
        sender: str,
        route_servers: Mapping[str, SmtpServer] | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self._server = server
        self._route_servers = dict(route_servers or {})
        self.sender = sender
        self.timeout = timeout
        self._context = ssl_context or ssl.create_default_context()
        self._local_hostname = local_hostname

    def __repr__(self) -> str:  # SmtpServer hides the password already; keep the rest short
        return f"EmailNotifier(server={self._server!r}, routes={sorted(self._route_servers)})"

    def server_for(self, route: str) -> SmtpServer | None:
        return self._route_servers.get(route, self._server)

    def send(self, message: Message) -> str | None:
        to = [a.strip() for a in message.target.split(",") if a.strip()]
        if not to:
            raise PermanentFailure("email target has no address")
        server = self.server_for(message.route)
        if server is None:
            raise PermanentFailure(f"no SMTP server configured for route {message.route!r}")
        email = build_message(message, self.sender, to)
        try:
            refused = self._deliver(server, email, to)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            reason = "every recipient refused: " + _refusals(exc.recipients)
            raise (PermanentFailure(reason) if all(c >= 500 for c in codes) else TemporaryFailure(reason)) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed, ...
            error = exc.smtp_error
            text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            reason = f"SMTP {exc.smtp_code} {' '.join(text.split())[:200]}"
            raise (PermanentFailure(reason) if exc.smtp_code >= 500 else TemporaryFailure(reason)) from None
        except smtplib.SMTPNotSupportedError as exc:  # e.g. STARTTLS or AUTH not offered: configuration
            raise PermanentFailure(f"SMTP server does not support it: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, lost connection, timeout, TLS, DNS
            raise TemporaryFailure(f"SMTP {type(exc).__name__}: {exc}") from None
        return f"refused by the server: {_refusals(refused)}" if refused else None

    def _deliver(self, server: SmtpServer, email: EmailMessage, to: Sequence[str]) -> dict[str, tuple[int, bytes]]:
        smtp: smtplib.SMTP
        if server.security == "tls":
            smtp = smtplib.SMTP_SSL(
                server.host,
                server.port,
                timeout=self.timeout,
                context=self._context,
                local_hostname=self._local_hostname,
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=self.timeout, local_hostname=self._local_hostname)
        try:
            smtp.ehlo()
            if server.security == "starttls":
                smtp.starttls(context=self._context)  # raises if not offered: never fall back to clear text
                smtp.ehlo()
            if server.username:
                smtp.login(server.username, server.password or "")
            refused = smtp.send_message(email, from_addr=self.sender, to_addrs=list(to))
        except BaseException:
            smtp.close()
            raise
        # Accepted: from here on nothing may turn this into a failure (a retry would mail it twice).
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
        return dict(refused)


def _refusals(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} ({code} {' '.join(text.decode('utf-8', 'replace').split())[:80]})"
        for address, (code, text) in sorted(recipients.items())
    )
