"""Email delivery through a real SMTP server (aiosmtpd) on loopback: plain, STARTTLS with login, implicit
TLS; the care message's room without a name; permanent and temporary refusals; a server that is down."""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from alerts.delivery import Delivery
from alerts.notifiers.email import EmailNotifier, SmtpServer, message_id, parse_smtp_url
from lorawatch.services import free_port
from store import outbox
from tests.integration.alerts.notify_helpers import Clock, audit, care_payload, enqueue, outbox_rows

SENDER = "lorawatch@council.example"


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it accepted; `refuse_rcpt` / `data_reply` script refusals."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    data_reply: str = "250 OK"
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.data_reply.startswith("250"):
            return self.data_reply
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 OK"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl is on every machine the tests run on)."""
    root = tmp_path_factory.mktemp("smtp-tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


def _client_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


def _authenticator(mailbox: Mailbox) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"alerts", b"p@ss")
        if ok:
            mailbox.logins.append(mechanism)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


@pytest.fixture
def plain_smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def _delivery(db_url: str, clock: Clock, server: SmtpServer | None, context: ssl.SSLContext | None = None) -> Delivery:
    notifier = EmailNotifier(server=server, sender=SENDER, timeout=5.0, ssl_context=context)
    return Delivery(lambda: psycopg.connect(db_url), [notifier], clock=clock)


def test_plain_smtp_delivers_one_message_per_row(db_url: str, plain_smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = plain_smtp
    clock = Clock()
    (key,) = enqueue(db_url, 1, channel="email", target="duty@council.example, eng@council.example", now=clock())
    assert _delivery(db_url, clock, parse_smtp_url(f"smtp://127.0.0.1:{port}")).run_once() == 1
    ((envelope, message),) = mailbox.messages
    assert envelope.mail_from == SENDER
    assert sorted(envelope.rcpt_tos) == ["duty@council.example", "eng@council.example"]
    assert message["Subject"] == "CRITICAL flood: gully-0042 (High Street outside no. 12) (opened)"
    assert message["Message-ID"].strip() == message_id(key, SENDER)
    assert message["X-Lorawatch-Idempotency-Key"] == key
    text = message.get_content()
    assert "when: 2025-01-10T06:05:00+00:00" in text and "value: 91.0" in text and key in text
    (row,) = outbox_rows(db_url)
    assert (row.state, row.attempts) == ("sent", 1)


def test_starttls_with_login(db_url: str, tls_files: tuple[Path, Path]) -> None:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(tls_files),
        require_starttls=True,
        authenticator=_authenticator(mailbox),
        auth_require_tls=True,
        auth_required=True,
        auth_exclude_mechanism=["LOGIN"],  # smtplib's AUTH LOGIN after a failed PLAIN stalls aiosmtpd
    )
    controller.start()
    try:
        clock = Clock()
        enqueue(db_url, 2, channel="email", target="duty@council.example", now=clock())
        server = parse_smtp_url(f"smtp+starttls://alerts:p%40ss@127.0.0.1:{port}")
        assert _delivery(db_url, clock, server, _client_context(tls_files)).run_once() == 2
        assert len(mailbox.messages) == 2 and len(mailbox.logins) == 2
        # a wrong password is a 535: permanent, dead at once
        enqueue(db_url, 1, channel="email", target="duty@council.example", now=clock())
        wrong = parse_smtp_url(f"smtp+starttls://alerts:nope@127.0.0.1:{port}")
        _delivery(db_url, clock, wrong, _client_context(tls_files)).run_once()
        states = [(r.state, (r.last_error or "")[:8]) for r in outbox_rows(db_url)]
        assert states == [("sent", ""), ("sent", ""), ("dead", "SMTP 535")]
        # a server certificate we do not trust: not sent, retried (never falls back to clear text)
        enqueue(db_url, 1, channel="email", target="duty@council.example", now=clock())
        _delivery(db_url, clock, server, ssl.create_default_context()).run_once()
        last = outbox_rows(db_url)[-1]
        assert last.state == "pending" and "CERTIFICATE_VERIFY_FAILED" in (last.last_error or "")
        assert len(mailbox.messages) == 2
    finally:
        controller.stop()


def test_implicit_tls(db_url: str, tls_files: tuple[Path, Path]) -> None:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=_server_context(tls_files))
    controller.start()
    try:
        clock = Clock()
        enqueue(db_url, 1, channel="email", target="duty@council.example", now=clock())
        server = parse_smtp_url(f"smtps://127.0.0.1:{port}")
        assert _delivery(db_url, clock, server, _client_context(tls_files)).run_once() == 1
        assert len(mailbox.messages) == 1
    finally:
        controller.stop()


def test_care_email_names_the_room_never_the_resident(db_url: str, plain_smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = plain_smtp
    clock = Clock()

    def leaky(alert_id: int) -> dict[str, Any]:
        body = care_payload(alert_id)
        body["where"] = {**body["where"], "name": "Mrs Edith Jones"}
        body["alert"] = {**body["alert"], "summary": "Edith Jones fell", "resident": "Edith Jones"}
        body["url"] = "https://lorawatch.council.example/alerts/1"
        return body

    enqueue(db_url, 1, channel="email", target="care@council.example", route="care-team", payload=leaky, now=clock())
    _delivery(db_url, clock, parse_smtp_url(f"smtp://127.0.0.1:{port}")).run_once()
    ((envelope, message),) = mailbox.messages
    raw = envelope.original_content or b""
    assert b"Edith" not in raw and b"Jones" not in raw and b"radar-flat12" not in raw
    assert message["Subject"] == "CRITICAL fall: room 12, Oak House (opened)"
    text = message.get_content()
    assert "where: room 12, Oak House" in text
    assert "when: 2025-01-10T03:12:00+00:00" in text
    assert "https://lorawatch.council.example/alerts/1" in text


def test_refusals_permanent_temporary_and_partial(db_url: str, plain_smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = plain_smtp
    mailbox.refuse_rcpt = {"nobody@council.example": "550 no such user", "full@council.example": "452 mailbox full"}
    clock = Clock()
    server = parse_smtp_url(f"smtp://127.0.0.1:{port}")
    enqueue(db_url, 1, channel="email", target="nobody@council.example", now=clock())
    enqueue(db_url, 1, channel="email", target="full@council.example", now=clock())
    enqueue(db_url, 1, channel="email", target="nobody@council.example,duty@council.example", now=clock())
    _delivery(db_url, clock, server).run_once()
    rows = outbox_rows(db_url)
    assert [r.state for r in rows] == ["dead", "pending", "sent"]
    assert "550" in (rows[0].last_error or "") and "452" in (rows[1].last_error or "")
    assert "nobody@council.example (550" in (rows[2].last_error or "")  # noted, not retried
    assert [sorted(e.rcpt_tos) for e, _ in mailbox.messages] == [["duty@council.example"]]
    # a 451 on DATA is temporary
    mailbox.refuse_rcpt = {}
    mailbox.data_reply = "451 try again later"
    enqueue(db_url, 1, channel="email", target="duty@council.example", now=clock())
    clock.advance(3600)
    _delivery(db_url, clock, server).run_once()
    assert [r.state for r in outbox_rows(db_url)] == ["dead", "pending", "sent", "pending"]
    mailbox.data_reply = "250 OK"
    clock.advance(3600)
    _delivery(db_url, clock, server).run_once()
    assert [r.state for r in outbox_rows(db_url)] == ["dead", "sent", "sent", "sent"]  # 452 retried too


def test_smtp_down_then_up_delivers_once(db_url: str) -> None:
    mailbox, port = Mailbox(), free_port()
    clock = Clock()
    keys = enqueue(db_url, 3, channel="email", target="duty@council.example", now=clock())
    delivery = _delivery(db_url, clock, parse_smtp_url(f"smtp://127.0.0.1:{port}"))
    delivery.run_once()  # nothing listens: refused
    assert all(r.state == "pending" and r.attempts == 1 for r in outbox_rows(db_url))
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        for _ in range(60):
            clock.advance(1)
            delivery.run_once()
        assert sorted(m["X-Lorawatch-Idempotency-Key"] for _, m in mailbox.messages) == keys
        assert all(r.state == "sent" and r.attempts == 2 for r in outbox_rows(db_url))
    finally:
        controller.stop()


def test_simulated_email_is_never_sent(db_url: str, plain_smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = plain_smtp
    clock = Clock()
    enqueue(db_url, 2, channel="email", target="duty@council.example", alert={"simulated": True}, now=clock())
    _delivery(db_url, clock, parse_smtp_url(f"smtp://127.0.0.1:{port}")).run_once()
    assert mailbox.messages == []
    assert [(r.state, r.last_error) for r in outbox_rows(db_url)] == [("sent", outbox.SUPPRESSED)] * 2
    assert [a for _, a, _ in audit(db_url)] == ["notification_suppressed"] * 2


def test_no_smtp_server_configured_is_dead_with_a_reason(db_url: str) -> None:
    clock = Clock()
    enqueue(db_url, 1, channel="email", target="duty@council.example", now=clock())
    _delivery(db_url, clock, None).run_once()
    (row,) = outbox_rows(db_url)
    assert row.state == "dead" and "no SMTP server configured" in (row.last_error or "")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://x", "must start with smtp://"),
        ("smtp://", "no host"),
        ("smtp://u:secret@host", "clear text"),
        ("smtps://h:99999", "invalid port"),
    ],
)
def test_bad_smtp_urls_are_clear_errors_that_never_echo_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_smtp_url(url)
    assert "secret" not in str(info.value)


def test_smtp_url_defaults() -> None:
    assert parse_smtp_url("smtp://relay") == SmtpServer("relay", 25, "plain")
    s = parse_smtp_url("smtp+starttls://a%40b:p%2Fw@mail.example")
    assert (s.port, s.security, s.username, s.password) == (587, "starttls", "a@b", "p/w")
    assert parse_smtp_url("smtps://mail.example").port == 465
    assert "p/w" not in repr(s)
