"""Builders for LNS messages in tests, starting from the reference's own examples (tests/data/lns)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "lns"
LDDS75_FRAME = bytes.fromhex("0D3B0AEF00000001")  # 3.387 V, 2799 mm, no interrupt, no probe, sensor ok
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def example(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return body


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def tts_uplink(
    device: str = "gully-017",
    *,
    f_cnt: int = 1,
    payload: bytes = LDDS75_FRAME,
    f_port: int = 2,
    model: str | None = "dragino/ldds75",
    session: str = "AY8qfDseTWqcC35fIdOkxg==",
    time: datetime | None = None,
    app: str = "gully-net",
) -> dict[str, Any]:
    """A TTS v3 uplink shaped like reference example 5.1, with the given device, counter and payload."""
    body = copy.deepcopy(example("tts_5_1_first_after_join"))
    t = time or (T0 + timedelta(minutes=15 * (f_cnt % 100_000)))
    body["end_device_ids"]["device_id"] = device
    body["end_device_ids"]["application_ids"]["application_id"] = app
    body["received_at"] = rfc3339(t + timedelta(milliseconds=200))
    up = body["uplink_message"]
    up["received_at"] = rfc3339(t)
    up["session_key_id"] = session
    if f_cnt:
        up["f_cnt"] = f_cnt
    up["f_port"] = f_port
    up["frm_payload"] = base64.b64encode(payload).decode()
    if model:
        brand, model_id = model.split("/")
        up["version_ids"] = {"brand_id": brand, "model_id": model_id}
    return body


def topic_for(body: dict[str, Any]) -> str:
    ids = body["end_device_ids"]
    return f"v3/{ids['application_ids']['application_id']}@ttn/devices/{ids['device_id']}/up"


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()
