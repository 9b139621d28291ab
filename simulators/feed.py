"""From a scenario run to MQTT messages in TTS or ChirpStack form: what `simulate` publishes or writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from simulators.capture import Message
from simulators.chirpstack import ChirpStackBuilder
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
