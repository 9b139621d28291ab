"""From a scenario run to MQTT messages in TTS or ChirpStack form: what `simulate` publishes or writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from simulators.capture import Message
from simulators.chirpstack import ChirpStackBuilder
from simulators.model import Device
from simulators.simulation import Simulation
from simulators.tts import TtsBuilder

Format = Literal["tts", "chirpstack"]
FORMATS: tuple[Format, ...] = ("tts", "chirpstack")


def builder(
    fmt: Format, seed: int | str, *, decoded: bool = True, simulated: bool = False
) -> TtsBuilder | ChirpStackBuilder:
    """The message builder for `fmt` (`simulated` is the TTS Console form; ChirpStack has none)."""
    if fmt == "tts":
        return TtsBuilder(seed, decoded=decoded, simulated=simulated)
    if simulated:
        msg = "the simulated-uplink form exists only in The Things Stack (format tts)"
        raise ValueError(msg)
    return ChirpStackBuilder(seed, decoded=decoded)


def messages(
    sim: Simulation, fmt: Format, seed: int, *, qos: int = 0, decoded: bool = True, simulated: bool = False
) -> Iterator[Message]:
    """Every record of the run as a message, stamped with the record's time (for pacing and capture)."""
    build = builder(fmt, seed, decoded=decoded, simulated=simulated).build
    for record in sim.records():
        topic, payload = build(record)
        yield Message(topic, payload, int(record.time * 1_000_000) * 1000, qos)


def identity(device: Device, fmt: Format) -> tuple[str, str]:
    """(application_id, device_id) as a network server in `fmt` names the device: TTS by the ids in
    its topics, ChirpStack by the application's UUID and the DevEUI in lowercase hex."""
    if fmt == "chirpstack":
        return device.app.cs_application_id, device.dev_eui.lower()
    return device.app.application_id, device.device_id


def registry_rows(sim: Simulation, fmt: Format) -> list[dict[str, str | float | None]]:
    """The run's devices as device registry rows (DESIGN.md's registry columns plus `application_id`),
    named as they will arrive in `fmt`: what `lorawatch simulate --devices-out` writes."""
    rows: list[dict[str, str | float | None]] = []
    for p in sim.placements:
        application_id, device_id = identity(p.device, fmt)
        rows.append(
            {
                "device_id": device_id,
                "application_id": application_id,
                "kind": p.kind,
                "brand_id": p.device.brand_id,
                "model_id": p.device.model_id,
                "name": p.name,
                "latitude": p.latitude,
                "longitude": p.longitude,
                "sensor_height_mm": p.sensor_height_mm,
                "outlet_invert_mm": p.outlet_invert_mm,
                "care_room": p.care_room,
                "care_group": p.care_group,
            }
        )
    return rows
