"""Gateway outages: when every device recently heard only through one gateway has gone silent
together, that is one gateway down, not N devices gone quiet (Alertmanager calls holding back the N
alerts "inhibition"). Pure: the engine gathers the devices' offline states and asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from alerts.rules import GatewayOfflineRule


def down(rule: GatewayOfflineRule, now: datetime, siblings: Iterable[tuple[datetime | None, timedelta]]) -> bool:
    """True when the gateway looks down at `now`: at least `min_devices` depend on it alone, and every
    one of them (last uplink, its offline silence) has been silent for `silent_fraction` of its
    silence. Devices report at different phases, so when the first of them reaches its silence the
    others have missed most of theirs: one heard recently means the gateway is carrying traffic."""
    listed = list(siblings)
    if len(listed) < rule.min_devices:
        return False
    return all(last is not None and now - last >= silent * rule.silent_fraction for last, silent in listed)


__all__ = ["down"]
