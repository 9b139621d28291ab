"""The simulated fleets as device registry rows (what `simulate --devices-out` writes)."""

from __future__ import annotations

import io
import json

import pytest

from simulators import feed, scenarios
from simulators.run import DEFAULT_START, RunConfig
from store import registry_csv


def build(name: str, fleet: int):
    return scenarios.get(name).build(RunConfig(fleet=fleet, start=DEFAULT_START, duration=6 * 3600))


@pytest.mark.parametrize("fmt", feed.FORMATS)
@pytest.mark.parametrize(("scenario", "fleet"), [("gully-mixed", 6), ("care-routine", 2)])
def test_rows_name_devices_as_their_messages_do(scenario: str, fleet: int, fmt: feed.Format) -> None:
    sim = build(scenario, fleet)
    rows = feed.registry_rows(sim, fmt)
    assert len(rows) == len(sim.devices)
    seen = set()
    for message in feed.messages(build(scenario, fleet), fmt, 1):
        body = json.loads(message.payload)
        if fmt == "tts":
            ids = body["end_device_ids"]
            seen.add((ids["application_ids"]["application_id"], ids["device_id"]))
        else:
            seen.add((body["deviceInfo"]["applicationId"], body["deviceInfo"]["devEui"]))
    assert seen == {(r["application_id"], r["device_id"]) for r in rows}


def test_gully_rows_carry_each_pot_geometry_and_care_rows_their_room_and_flat() -> None:
    gully = build("gully-storms", 5)
    for row, placement in zip(feed.registry_rows(gully, "tts"), gully.placements, strict=True):
        assert row["kind"] == "gully" and row["care_room"] is None
        height, invert = row["sensor_height_mm"], row["outlet_invert_mm"]
        assert isinstance(height, float) and isinstance(invert, float) and 0 < invert < height
        assert f"{row['brand_id']}/{row['model_id']}" == placement.device.model
    care = feed.registry_rows(build("care-routine", 2), "tts")
    assert {(r["care_group"], r["care_room"]) for r in care} == {
        (f"resident-00{n}", room) for n in (1, 2) for room in ("bedroom", "bathroom", "hall", "kitchen", "living")
    }
    assert all(r["kind"] == "care" and r["sensor_height_mm"] is None for r in care)


def test_the_rows_are_a_valid_registry_file() -> None:
    out = io.StringIO()
    rows = feed.registry_rows(build("gully-mixed", 8), "tts") + feed.registry_rows(build("care-mixed", 2), "tts")
    registry_csv.write_rows(rows, out)
    parsed = registry_csv.parse(out.getvalue())
    plan = registry_csv.plan(parsed, [])
    assert parsed.errors == [] and plan.errors == [] and len(plan.creates) == 18
