"""The whole path, as deployed: simulator -> Mosquitto -> `lorawatch ingest` -> `lorawatch alerts run`
-> a fall alert at the webhook and by email, acknowledged with the CLI, and its repeats stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller

from lorawatch.cli import main
from lorawatch.services import Mosquitto, free_port
from store import alerts as db
from tests.integration.alerts.notify_helpers import WebhookReceiver

pytestmark = pytest.mark.slow

RULES = """\
version: 1
rules:
  - name: fall
    category: fall
    type: device_alarm
    applies_to: {kind: care}
    event: alarm
    match: {alarm_type: fall}
    repeat_every: 2s
"""


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.content))
        return "250 OK"


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def _process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, "-m", "lorawatch", *args], env=env, stderr=sink, stdout=sink)


def test_a_simulated_fall_is_notified_by_webhook_and_email_and_repeats_stop_once_acknowledged(
    db_url: str, mosquitto: Mosquitto, mailbox: tuple[Mailbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture, fleet, rules = tmp_path / "falls.jsonl", tmp_path / "fleet.csv", tmp_path / "rules.yaml"
    rules.write_text(RULES)
    simulate = ["simulate", "care-falls", "--fleet", "1", "--duration", "7d", "--seed", "3", "--fast"]
    assert main([*simulate, "--out", str(capture), "--devices-out", str(fleet), "--no-progress"]) == 0
    labels = [json.loads(line) for line in Path(f"{capture}.labels.jsonl").read_text().splitlines()]
    assert [label["label"] for label in labels] == ["fall"]
    monkeypatch.setenv("LORAWATCH_DATABASE_URL", db_url)
    assert main(["devices", "import", str(fleet)]) == 0

    hook = WebhookReceiver(secret="e2e-secret").start()
    box, smtp_port = mailbox
    env = {
        **os.environ,
        "LORAWATCH_DATABASE_URL": db_url,
        "LORAWATCH_MQTT_URL": mosquitto.url,
        "LORAWATCH_MQTT_CLIENT_ID": "e2e-ingest",
        "LORAWATCH_MQTT_QOS": "1",
        "LORAWATCH_RULES_FILE": str(rules),
        "LORAWATCH_WEBHOOK_URL": hook.url,
        "LORAWATCH_WEBHOOK_SECRET": "e2e-secret",
        "LORAWATCH_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "LORAWATCH_EMAIL_TO": "care-team@council.example",
        "LORAWATCH_EMAIL_FROM": "lorawatch@council.example",
    }
    log = tmp_path / "services.log"
    procs = [_process(["ingest"], env, log), _process(["alerts", "run", "--tick", "0.5"], env, log)]
    try:
        wait_until(lambda: b"ingest_ready" in log.read_bytes(), 30, "the ingester")
        monkeypatch.setenv("LORAWATCH_MQTT_URL", mosquitto.url)
        assert main(["replay", str(capture), "--fast", "--qos", "1", "--no-progress", "--client-id", "e2e-replay"]) == 0

        def fall_alerts() -> list[Any]:
            with psycopg.connect(db_url) as conn:
                return [a for a in db.list_alerts(conn, open_only=False) if a.category == "fall"]

        wait_until(lambda: len(fall_alerts()) == 1, 60, f"the fall alert ({log.read_text()[-1500:]})")
        (alert,) = fall_alerts()
        assert (alert.state, alert.device_id, alert.device_alarm_id) == ("firing", "care-001-bedroom", "1")

        def posts(event: str | None = None) -> list[dict[str, Any]]:
            bodies = [r.json for r in list(hook.received) if r.signature_ok]
            return [b for b in bodies if event is None or b["event"] == event]

        wait_until(lambda: len(posts("opened")) == 1, 30, "the webhook notification")
        opened = posts("opened")[0]
        assert opened["alert"]["category"] == "fall" and opened["where"]["care_room"] == "bedroom"
        assert "resident-001 bedroom" not in json.dumps(opened)  # the device's name never leaves
        wait_until(lambda: len(box.messages) >= 1, 30, "the email")
        assert b"bedroom" in box.messages[0] and b"resident-001 bedroom" not in box.messages[0]
        wait_until(lambda: len(posts("repeat")) >= 1, 30, "a repeat while nobody acknowledges")

        assert main(["alerts", "ack", str(alert.id), "--by", "carer-on-shift", "--note", "on my way"]) == 0
        settled = len(posts())
        time.sleep(4)  # two repeat intervals and several clock passes
        assert len(posts()) == settled, "notifications went on after the acknowledgement"
        with psycopg.connect(db_url) as conn:
            (acked,) = [a for a in db.list_alerts(conn) if a.id == alert.id]
            actions = [row[2] for row in db.alert_log(conn, alert.id)]
        assert acked.state == "acknowledged" and acked.acknowledged_by == "carer-on-shift"
        assert "acknowledged" in actions and "opened" in actions
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        hook.stop()
