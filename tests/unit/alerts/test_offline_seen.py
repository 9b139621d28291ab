"""The offline state's gateway map after a sighting: the shortcuts for the common sightings (the
newest uplink, through the same gateways as before) give exactly what the general merge gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.evaluators.offline import FORGET_S, OfflineState, _carried, seen

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _general(state: OfflineState, at: datetime, gateways: tuple[str, ...]) -> dict[str, float]:
    newest = max(at, state.last_seen) if state.last_seen else at
    return dict(_carried(state.gateways, gateways, at.timestamp(), newest.timestamp() - FORGET_S))


@pytest.mark.parametrize(
    ("known", "via"),
    [
        ({"gw-a": 0.0}, ("gw-a",)),
        ({"gw-b": 0.0, "gw-a": -60.0}, ("gw-a", "gw-b")),  # the map's own order is kept
        ({"gw-a": 0.0, "gw-b": 0.0, "gw-c": -900.0}, ("gw-a", "gw-b", "gw-c")),
        ({"gw-a": 0.0, "gw-b": 0.0}, ("gw-a",)),  # one of them only: gw-b keeps its time
        ({"gw-a": 0.0, "gw-b": 0.0}, ("gw-a", "gw-c")),  # another gateway
        ({}, ()),
    ],
)
def test_the_newest_sighting_updates_the_map_as_the_general_merge_does(
    known: dict[str, float], via: tuple[str, ...]
) -> None:
    state = OfflineState(T0, gateways={g: T0.timestamp() + t for g, t in known.items()})
    at = T0 + timedelta(minutes=15)
    after, decisions = seen(state, at, via)
    assert decisions == []
    assert after.last_seen == at
    assert dict(after.gateways) == _general(state, at, via)
    assert list(after.gateways) == list(_general(state, at, via))
    assert dict(state.gateways) == {g: T0.timestamp() + t for g, t in known.items()}  # untouched


def test_a_gateway_unused_for_a_week_is_forgotten_and_an_older_uplink_moves_nothing_back() -> None:
    state = OfflineState(T0, gateways={"gw-a": T0.timestamp(), "gw-old": T0.timestamp() - FORGET_S - 1})
    after, _ = seen(state, T0 + timedelta(minutes=15), ("gw-a", "gw-old"))
    assert set(after.gateways) == {"gw-a", "gw-old"}  # it carried this one: remembered again
    after, _ = seen(state, T0 + timedelta(minutes=15), ("gw-a",))
    assert set(after.gateways) == {"gw-a"}
    earlier, _ = seen(state, T0 - timedelta(minutes=15), ("gw-a",))
    assert earlier.last_seen == T0 and earlier.gateways["gw-a"] == T0.timestamp()
