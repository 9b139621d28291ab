"""A device's LoRaWAN side: session, frame counter, encoding, radio reception and re-joins.

Scenarios decide *what* a device says and when; the transmitter turns that into an `Uplink` the
network would deliver (or nothing, when no gateway decodes it) and keeps the counters honest: FCnt
increases with every transmission, lost ones included, and drops back to 0 after a join.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import decoders
from simulators import ids, radio
from simulators.model import Device, Join, Rx, Session, Uplink

#: Encoded frames by (model, decoded values): level readings repeat a lot (a dry gully reads the same
#: few millimetres for days), and encoding is a large share of generation time. Bounded by clearing.
_FRAMES: dict[tuple[Any, ...], tuple[int, bytes]] = {}
_FRAMES_MAX = 200_000
#: Confirmed uplinks are retried this many times (the device's NbTrans/retry behaviour) before giving up.
CONFIRMED_RETRIES = 8


@dataclass(frozen=True, slots=True)
class Outage:
    """A gateway that hears nothing from `start` to `end`."""

    gateway_id: str
    start: float
    end: float


_NONE_DOWN: frozenset[str] = frozenset()


class Outages:
    """Which gateways are down at a given time (`items` may be set after construction, before any
    record is generated)."""

    def __init__(self, outages: Iterable[Outage] = ()) -> None:
        self.items = tuple(outages)

    def down(self, t: float) -> frozenset[str]:
        if not self.items:
            return _NONE_DOWN
        return frozenset(o.gateway_id for o in self.items if o.start <= t < o.end)


class Transmitter:
    """Sends one device's frames. `rng` is the device's own generator (determinism per device)."""

    def __init__(self, device: Device, rng: random.Random, *, loss: float, outages: Outages, f_cnt: int = 0) -> None:
        self.device = device
        self.rng = rng
        self.loss = loss
        self.outages = outages
        self.sf = radio.spreading_factor(device.links)
        self.session = self._new_session()
        self.f_cnt = f_cnt

    def _new_session(self) -> Session:
        return Session(dev_addr=ids.hex_id(self.rng, 4, "26"), session_key_id=ids.b64_bytes(self.rng, 16))

    def join(self, t: float) -> Join:
        """A re-join: new session, FCnt back to 0."""
        self.session = self._new_session()
        self.f_cnt = 0
        return Join(t, self.device, self.session)

    def heard(self, t: float) -> bool:
        """Whether any of the device's gateways is up at `t` (an outage silences the device)."""
        down = self.outages.down(t)
        return not down or any(link.gateway.gateway_id not in down for link in self.device.links)

    def send(self, t: float, decoded: dict[str, Any], *, confirmed: bool = False, force: bool = False) -> Uplink | None:
        """Encode and transmit `decoded` at `t`. Returns the delivered uplink, or None if it was lost.

        `confirmed` uplinks are retried a few seconds apart until a gateway hears one; `force` delivers
        the frame whatever the radio says (a fault the scenario must show), unless every gateway is down.
        """
        f_port, payload = _encode(self.device.model, decoded)
        attempts = CONFIRMED_RETRIES if confirmed else 1
        for _ in range(attempts):
            down = self.outages.down(t)
            rx = radio.receive(self.rng, self.device.links, self.sf, self.loss, down)
            if not rx and force:
                rx = radio.receive(self.rng, self.device.links, self.sf, 0.0, down)
            if not rx and force and len(down) < len(self.device.links):
                link = next(link for link in self.device.links if link.gateway.gateway_id not in down)
                rx = [Rx(link.gateway, round(link.rssi), 5.0)]
            f_cnt = self.f_cnt
            self.f_cnt += 1
            if rx:
                return Uplink(
                    time=t,
                    device=self.device,
                    session=self.session,
                    f_cnt=f_cnt,
                    f_port=f_port,
                    payload=payload,
                    decoded=decoded,
                    rx=rx,
                    spreading_factor=self.sf,
                    channel=int(self.rng.random() * len(radio.EU868_CHANNELS)),
                    confirmed=confirmed,
                )
            t += self.rng.uniform(3.0, 12.0)
        return None


def _encode(model: str, decoded: dict[str, Any]) -> tuple[int, bytes]:
    """`decoders.encode`, memoised for flat readings (nested ones, e.g. alarm events, are not hashable)."""
    key = (model, *decoded.values())
    try:
        frame = _FRAMES.get(key)
    except TypeError:
        return decoders.encode(model, decoded)
    if frame is None:
        if len(_FRAMES) >= _FRAMES_MAX:
            _FRAMES.clear()
        frame = _FRAMES[key] = decoders.encode(model, decoded)
    return frame
