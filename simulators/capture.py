"""The capture format shared by `simulate --out`, `record` and `replay`: JSON Lines, one message a line.

    {"topic": "...", "payload": "<body as text>", "received_at": "<RFC 3339>", "qos": 0, "retain": false}

`received_at` is when the message was (or, for a simulated feed, would have been) received; replay paces
itself by it. Payloads that are not UTF-8 text are kept as `payload_base64` instead of `payload`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson

from simulators.timefmt import parse_ns, tts_time


@dataclass(slots=True)
class Message:
    """One MQTT message with the time it belongs to (nanoseconds since the epoch, UTC)."""

    topic: str
    payload: str | bytes
    time_ns: int
    qos: int = 0
    retain: bool = False

    def to_line(self) -> str:
        line: dict[str, Any] = {"topic": self.topic}
        if isinstance(self.payload, bytes):
            try:
                line["payload"] = self.payload.decode("utf-8")
            except UnicodeDecodeError:
                line["payload_base64"] = base64.b64encode(self.payload).decode("ascii")
        else:
            line["payload"] = self.payload
        line["received_at"] = tts_time(self.time_ns)
        line["qos"] = self.qos
        line["retain"] = self.retain
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_line(cls, text: str) -> Message:
        try:
            line = orjson.loads(text)  # a third of json's time: score reads every line of a month's capture
            payload: str | bytes = (
                line["payload"] if "payload" in line else base64.b64decode(line["payload_base64"], validate=True)
            )
            return cls(
                topic=str(line["topic"]),
                payload=payload,
                time_ns=parse_ns(line["received_at"]),
                qos=int(line.get("qos", 0)),
                retain=bool(line.get("retain", False)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"not a capture line ({exc}): {text[:120]!r}"
            raise ValueError(msg) from None


def write(messages: Iterable[Message], out: TextIO) -> int:
    """Write messages as capture lines; returns the count."""
    n = 0
    for message in messages:
        out.write(message.to_line())
        out.write("\n")
        n += 1
    return n


def read(path: Path) -> Iterator[Message]:
    """Messages from a capture file, with the line number in any error."""
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                yield Message.from_line(text)
            except ValueError as exc:
                msg = f"{path}:{number}: {exc}"
                raise ValueError(msg) from None
