"""The EU868 radio side of an uplink: channels, spreading factor, RSSI/SNR per gateway, loss, airtime.

Realistic enough for an ingester to see what it sees in the field: integer RSSI that fades around each
link's mean, SNR in the concentrator's 0.25 dB steps that saturates near +10 dB on strong links, a
spreading factor chosen the way ADR would for the best link, and uplinks lost when no gateway decodes
them (below the SF's demodulation floor, or at random).
"""

from __future__ import annotations

import math
import random
from functools import lru_cache

from simulators.model import Link, Rx

#: EU868 uplink channels (Hz), index = TTS `channel_index`.
EU868_CHANNELS: tuple[int, ...] = (
    868_100_000,
    868_300_000,
    868_500_000,
    867_100_000,
    867_300_000,
    867_500_000,
    867_700_000,
    867_900_000,
)
BANDWIDTH = 125_000
NOISE_FLOOR_DBM = -117.0  # 125 kHz, 6 dB noise figure
_SNR_FLOOR = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
_FADING_DB = 4.0


def spreading_factor(links: tuple[Link, ...]) -> int:
    """The SF ADR settles on: the fastest one with about 10 dB margin on the best link."""
    best = max((link.rssi for link in links), default=-130.0)
    margin = best - NOISE_FLOOR_DBM - 10.0
    for sf in range(7, 12):
        if margin >= _SNR_FLOOR[sf]:
            return sf
    return 12


def receive(rng: random.Random, links: tuple[Link, ...], sf: int, loss: float, down: frozenset[str]) -> list[Rx]:
    """Which gateway antennas decode one transmission; empty means the uplink is lost.

    `loss` is the chance that any one reception fails for reasons not modelled (collisions,
    interference); `down` holds the ids of gateways in an outage.
    """
    weakest = NOISE_FLOOR_DBM + _SNR_FLOOR[sf]  # below this RSSI the SF cannot be demodulated
    out: list[Rx] = []
    random_ = rng.random
    for link in links:
        gateway = link.gateway
        if down and gateway.gateway_id in down:
            continue
        rssi = link.rssi + rng.gauss(0.0, _FADING_DB)
        for antenna in range(link.antennas):
            if antenna:
                rssi -= 6.0 + 6.0 * random_()  # the second antenna hears it weaker
            if rssi < weakest or random_() < loss:
                continue
            snr = min(rssi - NOISE_FLOOR_DBM, 9.5 + 1.5 * random_()) + random_() - 0.5
            out.append(Rx(gateway, round(rssi), round(snr * 4.0) / 4.0, antenna))
    return out


@lru_cache(maxsize=1024)
def airtime_ns(sf: int, payload_len: int, bandwidth: int = BANDWIDTH) -> int:
    """LoRa time on air (Semtech AN1200.13) for an uplink with `payload_len` bytes of FRMPayload:
    explicit header, CRC on, coding rate 4/5, 8 preamble symbols, low-data-rate optimisation at SF11+."""
    phy_len = 13 + payload_len  # MHDR 1 + FHDR 7 + FPort 1 + MIC 4
    de = 1 if sf >= 11 else 0
    symbols = 8 + max(math.ceil((8 * phy_len - 4 * sf + 28 + 16) / (4 * (sf - 2 * de))) * 5, 0)
    symbol_ns = (1 << sf) * 1_000_000_000 // bandwidth
    return int((12.25 + symbols) * symbol_ns)
