"""A feed through a real Mosquitto: published, recorded, replayed and recorded again, message for
message the original, with the replay's timestamps moved to now."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from lorawatch.cli import main
from lorawatch.settings import parse_mqtt_url
from simulators import capture, feed, publisher, recorder, replay, scenarios
from simulators.mqttclient import MqttParams
from simulators.run import DEFAULT_START, RunConfig
from simulators.timefmt import NS, now_ns, parse_ns


def params(url: str, client_id: str) -> MqttParams:
    target = parse_mqtt_url(url)
    return MqttParams(target.host, target.port, client_id=client_id)


class Recording:
    """A recorder in a thread, ready once its subscriptions are acknowledged."""

    def __init__(self, url: str, path: Path, count: int) -> None:
        self.ready = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

        def run() -> None:
            try:
                with path.open("w") as out:
                    self.count = recorder.record(
                        params(url, f"rec-{path.stem}"),
                        out,
                        ["v3/#", "application/#"],
                        count=count,
                        duration=120,
                        on_ready=self.ready.set,
                    )
            except BaseException as exc:
                self.error = exc
                self.ready.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self.ready.wait(10)

    def wait(self) -> None:
        self.thread.join(130)
        assert self.error is None


def original_feed() -> list[capture.Message]:
    """TTS gully uplinks and ChirpStack care events, merged in time order."""
    config = RunConfig(fleet=6, seed=5, start=DEFAULT_START, duration=86400)
    gully = feed.messages(scenarios.get("gully-mixed").build(config), "tts", 5, qos=1)
    care = feed.messages(
        scenarios.get("care-falls").build(RunConfig(fleet=1, seed=5, start=DEFAULT_START, duration=86400)),
        "chirpstack",
        5,
        qos=1,
    )
    return sorted([*gully, *care], key=lambda m: m.time_ns)


def test_published_feed_is_recorded_exactly(mosquitto, tmp_path):
    messages = original_feed()
    rec = Recording(mosquitto.url, tmp_path / "live.jsonl", len(messages))
    stats = publisher.publish(params(mosquitto.url, "pub"), messages, qos=1)
    rec.wait()
    assert stats.messages == rec.count == len(messages)
    recorded = list(capture.read(tmp_path / "live.jsonl"))
    assert [(m.topic, m.payload) for m in recorded] == [(m.topic, m.payload) for m in messages]
    assert all(abs(m.time_ns - now_ns()) < 120 * NS for m in recorded)


def test_recorded_and_replayed_is_the_original_shifted_to_end_now(mosquitto, tmp_path, monkeypatch):
    monkeypatch.setenv("LORAWATCH_MQTT_URL", mosquitto.url)
    original = tmp_path / "sim.jsonl"
    start = "2025-11-03T00:00:00Z"
    args = ["simulate", "gully-mixed", "--fleet", "8", "--duration", "1d", "--seed", "3", "--start", start]
    assert main([*args, "--out", str(original), "--no-progress"]) == 0
    source = list(capture.read(original))
    rec = Recording(mosquitto.url, tmp_path / "replayed.jsonl", len(source))
    started = now_ns()
    assert main(["replay", str(original), "--fast", "--qos", "1", "--no-progress"]) == 0
    rec.wait()
    replayed = list(capture.read(tmp_path / "replayed.jsonl"))
    assert len(replayed) == len(source)
    offset = parse_ns(json.loads(replayed[0].payload)["received_at"]) - parse_ns(
        json.loads(source[0].payload)["received_at"]
    )
    assert offset % NS == 0
    newest = max(m.time_ns for m in source)
    assert abs(newest + offset - started) < 5 * NS  # --fast: the capture ends about now (nothing in the future)
    for before, after in zip(source, replayed, strict=True):
        assert after.topic == before.topic
        assert isinstance(before.payload, str)
        assert after.payload == replay.shift_payload(before.payload, offset)
        old, new = json.loads(before.payload), json.loads(after.payload)
        assert parse_ns(new["uplink_message"]["received_at"]) - parse_ns(old["uplink_message"]["received_at"]) == offset
        assert new["uplink_message"]["frm_payload"] == old["uplink_message"]["frm_payload"]
        assert new["correlation_ids"] == old["correlation_ids"]

    # A recording replays too: the second trip is the first one again, shifted by the few seconds since.
    rec2 = Recording(mosquitto.url, tmp_path / "again.jsonl", len(replayed))
    monkeypatch.setenv("LORAWATCH_MQTT_URL", mosquitto.url)
    assert main(["replay", str(tmp_path / "replayed.jsonl"), "--fast", "--qos", "1", "--no-progress"]) == 0
    rec2.wait()
    again = list(capture.read(tmp_path / "again.jsonl"))
    second = parse_ns(json.loads(again[0].payload)["received_at"]) - parse_ns(
        json.loads(replayed[0].payload)["received_at"]
    )
    assert 0 <= second <= 10 * NS
    assert [m.payload for m in again] == [replay.shift_payload(str(m.payload), second) for m in replayed]


def test_paced_publishing_follows_the_message_times(mosquitto):
    base = now_ns()
    messages = [capture.Message("pace/test", str(i), base + i * 200_000_000) for i in range(6)]
    stats = publisher.publish(params(mosquitto.url, "pacer"), messages, speed=2.0)
    assert stats.messages == 6
    assert stats.seconds == pytest.approx(0.5, abs=0.3)  # 1 s of message time at 2x
