"""Offline state's gateway memory and the gateway-down judgement: one gateway down is one alert, its
devices' own offline alerts held back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.decisions import Open, Resolve
from alerts.evaluators import gateway
from alerts.evaluators.offline import OfflineState, due, seen, tick
from alerts.rules import GatewayOfflineRule, OfflineRule

T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
SILENT = timedelta(minutes=45)  # 3 missed 15-minute reports
DAY = timedelta(days=1)


def gw_rule(**overrides: Any) -> GatewayOfflineRule:
    data: dict[str, Any] = {"name": "gw", "category": "gateway_offline", "type": "gateway_offline"}
    data.update(overrides)
    return GatewayOfflineRule.model_validate(data)


def off_rule() -> OfflineRule:
    return OfflineRule.model_validate(
        {"name": "off", "category": "offline", "type": "offline", "expected_interval": "15m", "missed": 3}
    )


def heard(*uplinks: tuple[datetime, tuple[str, ...]], state: OfflineState | None = None) -> OfflineState:
    state = state or OfflineState()
    for when, via in uplinks:
        state, _ = seen(state, when, via)
    return state


# --- sole_gateway --------------------------------------------------------------------------------


def test_sole_gateway_is_the_one_gateway_that_carried_the_device() -> None:
    state = heard(*[(T0 + i * timedelta(minutes=15), ("gw-a",)) for i in range(8)])
    assert state.sole_gateway(DAY) == "gw-a"


def test_sole_gateway_is_none_when_two_gateways_carried_it_recently() -> None:
    state = heard((T0, ("gw-a", "gw-b")), (T0 + timedelta(minutes=15), ("gw-a",)))
    assert state.sole_gateway(DAY) is None
    state = heard((T0, ("gw-a",)), (T0 + timedelta(minutes=15), ("gw-b",)))
    assert state.sole_gateway(DAY) is None


def test_sole_gateway_forgets_a_second_gateway_outside_the_recent_window() -> None:
    # gw-b carried it two days ago; only gw-a since: within `recent` of its last uplink, gw-a alone
    state = heard((T0, ("gw-b",)), (T0 + 2 * DAY, ("gw-a",)), (T0 + 2 * DAY + timedelta(minutes=15), ("gw-a",)))
    assert state.sole_gateway(DAY) == "gw-a"
    assert state.sole_gateway(3 * DAY) is None  # a wider window still counts gw-b
    assert state.sole_gateway(2 * DAY) == "gw-a"  # gw-b is 2 days and 15 minutes before the last uplink


def test_sole_gateway_window_is_measured_from_the_last_uplink_not_the_clock() -> None:
    state = heard((T0, ("gw-a",)))
    assert state.sole_gateway(timedelta(minutes=1)) == "gw-a"  # however long it has been silent since


def test_sole_gateway_is_none_for_a_device_never_heard() -> None:
    assert OfflineState().sole_gateway(DAY) is None
    assert heard((T0, ())).sole_gateway(DAY) is None  # heard, but no gateway reported


# --- seen ----------------------------------------------------------------------------------------


def test_seen_records_when_each_gateway_last_carried_the_device() -> None:
    state = heard((T0, ("gw-a", "gw-b")), (T0 + timedelta(minutes=15), ("gw-a",)))
    assert state.last_seen == T0 + timedelta(minutes=15)
    assert state.gateways == {
        "gw-a": (T0 + timedelta(minutes=15)).timestamp(),
        "gw-b": T0.timestamp(),
    }


def test_seen_clears_inhibited_by() -> None:
    held = OfflineState(last_seen=T0, gateways={"gw-a": T0.timestamp()}, inhibited_by="gw-a")
    state, decisions = seen(held, T0 + timedelta(hours=5), ("gw-a",))
    assert decisions == []
    assert state.inhibited_by is None
    assert state.last_seen == T0 + timedelta(hours=5)
    assert state.gateways["gw-a"] == (T0 + timedelta(hours=5)).timestamp()
    assert due(state, SILENT) == T0 + timedelta(hours=5) + SILENT  # the device is judged on its own again


def test_seen_resolves_an_open_offline_alert_and_keeps_the_gateways() -> None:
    state = heard((T0, ("gw-a",)))
    state, decisions = tick(state, T0 + timedelta(hours=1), SILENT, "warning")
    assert [type(d) for d in decisions] == [Open]
    state, decisions = seen(state, T0 + timedelta(hours=2), ("gw-b",))
    assert [type(d) for d in decisions] == [Resolve]
    assert not state.open
    assert state.inhibited_by is None
    assert set(state.gateways) == {"gw-a", "gw-b"}
    assert state.sole_gateway(DAY) is None


def test_a_backfilled_uplink_records_its_gateway_but_does_not_move_last_seen_back() -> None:
    state = heard((T0 + timedelta(hours=1), ("gw-a",)))
    state, decisions = seen(state, T0, ("gw-b",))
    assert decisions == []
    assert state.last_seen == T0 + timedelta(hours=1)
    assert state.gateways["gw-a"] == (T0 + timedelta(hours=1)).timestamp()
    assert state.gateways["gw-b"] == T0.timestamp()
    # and it never moves a gateway's own time back
    state, _ = seen(state, T0 - timedelta(hours=1), ("gw-a",))
    assert state.gateways["gw-a"] == (T0 + timedelta(hours=1)).timestamp()


def test_gateways_unused_for_a_week_are_forgotten() -> None:
    state = heard((T0, ("gw-old",)), (T0 + timedelta(days=8), ("gw-a",)))
    assert set(state.gateways) == {"gw-a"}
    assert state.sole_gateway(timedelta(days=30)) == "gw-a"


def test_state_with_gateways_round_trips_through_json() -> None:
    state = heard((T0, ("gw-a", "gw-b")), (T0 + timedelta(minutes=15), ("gw-a",)))
    held = OfflineState(state.last_seen, False, False, state.gateways, "gw-a")
    for s in (state, held):
        again = OfflineState.from_json(json.loads(json.dumps(s.to_json())))
        assert again == s
        assert again.sole_gateway(DAY) == s.sole_gateway(DAY)
        assert again.inhibited_by == s.inhibited_by


# --- due / tick while held back --------------------------------------------------------------------


def test_due_is_none_while_open() -> None:
    state = heard((T0, ("gw-a",)))
    assert due(state, SILENT) == T0 + SILENT
    state, decisions = tick(state, T0 + SILENT, SILENT, "warning")
    assert [type(d) for d in decisions] == [Open]
    assert decisions[0].at == T0 + SILENT
    assert due(state, SILENT) is None


def test_due_is_none_and_tick_opens_nothing_while_inhibited() -> None:
    state = OfflineState(last_seen=T0, gateways={"gw-a": T0.timestamp()}, inhibited_by="gw-a")
    assert due(state, SILENT) is None
    again, decisions = tick(state, T0 + 10 * SILENT, SILENT, "warning")
    assert decisions == []
    assert not again.open
    assert again.inhibited_by == "gw-a"


def test_due_is_none_for_a_device_never_heard() -> None:
    assert due(OfflineState(), SILENT) is None


def test_offline_rule_silence_feeds_the_gateway_judgement() -> None:
    rule = off_rule()
    assert rule.silent_after({}) == SILENT
    assert rule.silent_after({"uplink_interval": "1h"}) == timedelta(hours=3)


# --- down ----------------------------------------------------------------------------------------


def test_down_when_every_sibling_has_been_silent_long_enough() -> None:
    rule = gw_rule()  # min_devices 2, silent_fraction 0.6
    now = T0 + timedelta(hours=1)
    siblings = [(T0, SILENT), (T0 + timedelta(minutes=5), SILENT), (T0 + timedelta(minutes=10), SILENT)]
    assert gateway.down(rule, now, siblings)  # the newest went quiet 50 minutes ago (> 0.6 x 45)


def test_not_down_when_one_sibling_was_heard_recently() -> None:
    rule = gw_rule()
    now = T0 + timedelta(hours=1)
    siblings = [(T0, SILENT), (T0, SILENT), (now - timedelta(minutes=5), SILENT)]
    assert not gateway.down(rule, now, siblings)


def test_down_measures_each_sibling_against_its_own_silence() -> None:
    rule = gw_rule(silent_fraction=0.5)
    now = T0 + timedelta(hours=2)
    slow = timedelta(hours=3)  # a device reporting hourly: half its silence is 90 minutes
    assert not gateway.down(rule, now, [(T0, SILENT), (T0 + timedelta(hours=1), slow)])
    assert gateway.down(rule, now, [(T0, SILENT), (T0 + timedelta(minutes=30), slow)])


def test_down_at_exactly_the_silent_fraction() -> None:
    rule = gw_rule(silent_fraction=0.6)
    now = T0 + SILENT * 0.6
    assert gateway.down(rule, now, [(T0, SILENT), (T0, SILENT)])
    assert not gateway.down(rule, now - timedelta(seconds=1), [(T0, SILENT), (T0, SILENT)])


def test_not_down_below_min_devices() -> None:
    now = T0 + timedelta(hours=5)
    assert not gateway.down(gw_rule(), now, [(T0, SILENT)])  # one device silent: that device is offline
    assert not gateway.down(gw_rule(min_devices=3), now, [(T0, SILENT), (T0, SILENT)])
    assert gateway.down(gw_rule(min_devices=3), now, [(T0, SILENT), (T0, SILENT), (T0, SILENT)])
    assert not gateway.down(gw_rule(), now, [])


def test_down_accepts_any_iterable_of_siblings() -> None:
    now = T0 + timedelta(hours=5)
    assert gateway.down(gw_rule(), now, ((T0, SILENT) for _ in range(2)))


def test_a_gateways_devices_judged_from_their_offline_states() -> None:
    """The engine's use: devices whose sole gateway is gw-a, silent together, are one gateway down."""
    rule = gw_rule()
    phases = [timedelta(minutes=m) for m in (0, 4, 9, 13)]
    fleet = {
        f"dev-{i}": heard(*[(T0 + p + k * timedelta(minutes=15), ("gw-a",)) for k in range(20)])
        for i, p in enumerate(phases)
    }
    fleet["elsewhere"] = heard(*[(T0 + k * timedelta(minutes=15), ("gw-a", "gw-b")) for k in range(30)])
    siblings = [(s.last_seen, SILENT) for s in fleet.values() if s.sole_gateway(rule.recent) == "gw-a"]
    assert len(siblings) == 4  # "elsewhere" is heard by gw-b too
    dues = [due(s, SILENT) for s in fleet.values() if s.sole_gateway(rule.recent) == "gw-a"]
    first_due = min(d for d in dues if d is not None)
    assert not gateway.down(rule, first_due - timedelta(minutes=30), siblings)
    assert gateway.down(rule, first_due + timedelta(minutes=15), siblings)
