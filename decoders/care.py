"""Table-driven normalisation shared by the care (falls/presence) codecs.

`normalize` must accept both our decode output and whatever The Things Stack put in `decoded_payload`,
which may come from an older or newer codec copy, so every lookup here tolerates missing keys, wrong
types, NaN and unexpected labels by emitting nothing for that key instead of raising. Values outside a
quantity's physical range are dropped here rather than rejected by `decode`: one corrupt byte (say a
battery of 255 %) must not dead-letter the fall alarm that arrived in the same uplink. Each drop is
reported with `decoders.types.reject`, so ingest dead-letters the value itself, never silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from decoders.milesight import PORT, Table, decode_tlv, encode_tlv
from decoders.registry import Codec, FieldDoc, register
from decoders.types import Event, Measurement, Normalized, reject


def number(value: Any) -> float | None:
    """`value` as a finite float when it is a JSON number (not a bool), else None."""
    kind = type(value)  # exact types first: this runs for every value of every uplink
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


@dataclass(frozen=True, slots=True)
class Numeric:
    """A numeric decoded key copied to a vocabulary name, scaled, kept only within `[low, high]`."""

    key: str
    name: str
    low: float
    high: float
    scale: float = 1.0

    def measure(self, decoded: Mapping[str, Any]) -> Measurement | None:
        raw = number(decoded.get(self.key))
        if raw is None:
            return None
        value = raw * self.scale
        if self.low <= value <= self.high:
            return Measurement(self.name, value)
        reject(self.name, value)
        return None


@dataclass(frozen=True, slots=True)
class Label:
    """A decoded string enum mapped to a numeric vocabulary value; unlisted labels emit nothing.

    `unknown` and labels from other codec copies simply are not in `values`, so they never turn into a
    wrong reading.
    """

    key: str
    name: str
    values: Mapping[str, float] = field(default_factory=dict)

    def measure(self, decoded: Mapping[str, Any]) -> Measurement | None:
        label = decoded.get(self.key)
        if not isinstance(label, str) or label not in self.values:
            return None
        return Measurement(self.name, self.values[label])


Rule = Numeric | Label


def measurements(decoded: Mapping[str, Any], rules: Iterable[Rule]) -> list[Measurement]:
    """Apply `rules` in order, skipping those whose key is absent or unusable."""
    if type(decoded) is not dict and not isinstance(decoded, Mapping):  # dict first: an ABC check is slow
        return []
    return [m for rule in rules if (m := rule.measure(decoded)) is not None]


#: Shared rule: Milesight `battery` byte as a percentage.
BATTERY_PCT = Numeric("battery", "battery_pct", 0.0, 100.0)
#: Boolean labels shared by several Milesight presence devices.
OCCUPIED = {"occupied": 1.0, "vacant": 0.0}


def milesight_codec(
    *,
    device: str,
    title: str,
    reference: str,
    table: Table,
    rules: tuple[Rule, ...],
    fields: tuple[FieldDoc, ...],
    events: Callable[[Mapping[str, Any]], list[Event]] | None = None,
) -> Codec:
    """Register a Milesight care device whose codec is a record table plus normalisation rules.

    Milesight codecs ignore fPort, so decode does too (the device sends on 85); `events`, when given,
    extracts discrete events (VS373 alarms) next to the rule-driven measurements.
    """

    def decode(f_port: int, payload: bytes) -> dict[str, Any]:
        del f_port
        return decode_tlv(payload, table)

    def encode(decoded: Mapping[str, Any]) -> tuple[int, bytes]:
        return PORT, encode_tlv(decoded, table)

    def normalize(decoded: Mapping[str, Any]) -> Normalized:
        found = measurements(decoded, rules)
        if events is None or not isinstance(decoded, Mapping):
            return Normalized(found)
        return Normalized(found, events(decoded))

    return register(
        Codec(
            device=device,
            title=title,
            kind="care",
            ports=(PORT,),
            reference=reference,
            decode=decode,
            encode=encode,
            normalize=normalize,
            fields=fields,
        )
    )


#: FieldDoc of the Milesight battery record shared by VS370, WS202 and VS330.
BATTERY_FIELD = FieldDoc(None, "battery", "01 75: battery level, % (uint8)")


def attribute_fields(
    *, sn: str = "FF 16: serial number, 8 bytes as lowercase hex", device_status: str = 'FF 0B: always "on"'
) -> tuple[FieldDoc, ...]:
    """FieldDocs for the FF attribute records (`decoders.milesight.attribute_records`)."""
    return (
        FieldDoc(None, "ipso_version", 'FF 01: IPSO version, "vX.Y" from the two nibbles'),
        FieldDoc(None, "hardware_version", 'FF 09: hardware version, "v<hex b0>.<b1 >> 4>"'),
        FieldDoc(None, "firmware_version", 'FF 0A: firmware version, "v<hex b0>.<hex b1>"'),
        FieldDoc(None, "tsl_version", 'FF FF: TSL version, "v<b0>.<b1>"'),
        FieldDoc(None, "sn", sn),
        FieldDoc(None, "lorawan_class", 'FF 0F: "Class A", "Class B", "Class C" or "Class CtoB"'),
        FieldDoc(None, "reset_event", 'FF FE: always "reset" (sent after a reboot)'),
        FieldDoc(None, "device_status", device_status),
    )
