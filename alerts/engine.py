"""The alert engine: feeds stored readings, events and the clock to the pure evaluators, and applies
their decisions to the alerts table in the same transaction as the rule state and the feed cursor.

Why one transaction per pass: the change feed's cursor, each rule's state, the alerts it opens or
resolves and the notifications those cause (outbox rows) either all commit or none does, so a worker
killed at any point neither misses a reading nor evaluates one twice nor loses a notification.

Time: the engine never reads the wall clock itself. `clock` is passed in: the wall clock live, the
data's own time in replay (`lorawatch score`), a test's hand in tests. Alerts carry data times
(`opened_at` is the time of the reading that opened them).

Notifications are decided at the end of a pass: an alert that opened and resolved within one pass (a
backfilled or re-sent stretch of history whose condition has already ended) is recorded, marked late,
and notifies nobody. Silenced alerts are recorded and notify nobody while the silence lasts; the
clock sends their first notification if they are still firing when it ends. Alerts from simulated
data never reach a real channel (their outbox rows say `simulated`, and delivery drops them).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

import psycopg

from alerts.decisions import Decision, Fire, Late, Note, Open, Reseverity, Resolve, Severity
from alerts.evaluators import (
    anomaly,
    blockage,
    device_alarm,
    flood,
    gateway,
    levels,
    offline,
    sensor_fault,
    silt,
    welfare,
)
from alerts.evaluators.condition import AlertState, ConditionState
from alerts.evaluators.condition import tick as condition_tick
from alerts.evaluators.observations import LevelObs, RoomObs
from alerts.rules import (
    AnomalyRule,
    BatteryRule,
    BlockageRule,
    DeviceAlarmRule,
    FloodRule,
    GatewayOfflineRule,
    OfflineRule,
    Rule,
    RuleSet,
    SensorFaultRule,
    SiltRule,
    ThresholdRule,
    WelfareRule,
)
from alerts.states import DatabaseStates
from store import alerts as db
from store import notices, outbox, queries
from store.feed import ChangeFeed
from store.geometry import fill_pct, gully_fill_pct, water_level_mm
from store.records import Alert, Device, Event, OutboxEntry, Reading

log = logging.getLogger(__name__)

CONSUMER = "alerts"
ACTOR = "engine"
CLOCK = "clock"
Clock = Callable[[], datetime]


@dataclass
class _Pass:
    """What one pass has done, for the notifications decided at its end."""

    opened: dict[int, tuple[Rule, Device | None]] = field(default_factory=dict)
    resolved: dict[int, tuple[Rule, Device | None]] = field(default_factory=dict)
    raised: dict[int, tuple[Rule, Device | None]] = field(default_factory=dict)


class LifecycleError(Exception):
    """A transition the alert's state does not allow (acknowledging a resolved alert, ...)."""


def subject_of(device: Device) -> str:
    return f"device:{device.id}"


def metric_value(metric: str, device: Device, reading: Reading) -> float | None:
    """A rule's metric in this reading; None when the reading does not carry it, or the distance is
    flagged invalid (no echo is a sensor fault, never a flood)."""
    if metric in ("level_mm", "fill_pct"):
        if reading.distance_valid is False:
            return None
        if metric == "level_mm":
            return water_level_mm(reading.distance_mm, device.sensor_height_mm)
        return gully_fill_pct(reading.distance_mm, device.sensor_height_mm, device.outlet_invert_mm)
    value = getattr(reading, metric, None)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value) if isinstance(value, int | float) else None


class Engine:
    """Evaluates one rules file against the store. Not thread-safe: one engine per worker loop."""

    def __init__(
        self,
        rules: RuleSet,
        clock: Clock,
        *,
        env: Mapping[str, str] | None = None,
        consumer: str = CONSUMER,
        notify: bool = True,
        states: DatabaseStates | None = None,
        fixed_registry: bool = False,
    ) -> None:
        """`notify=False` (replay, `lorawatch score`): notifications are counted on the alert and logged,
        but no outbox row is written: nobody is told anything. `states`: where rule states are kept
        between passes (default: the database, in each pass's transaction; alerts/states.py).
        `fixed_registry` (replay): the registry does not change while this engine runs, so each device
        is read, and its rules worked out, once."""
        self.rules = rules
        self.clock = clock
        self.env = dict(env or {})
        self.consumer = consumer
        self.notify = notify
        self.states = states or DatabaseStates()
        self.fixed_registry = fixed_registry
        self._devices: dict[int, Device] = {}
        self._plans: dict[int, _Plan] = {}

    # --- the change feed ------------------------------------------------------------------------

    def process(self, conn: psycopg.Connection, limit: int = 100, *, upto: int | None = None) -> int:
        """Evaluate the changes after this consumer's cursor (at most `limit`, and none after change
        `upto`: replay's clock must judge between two batches); returns how many."""
        with conn.transaction():
            feed = ChangeFeed(conn, self.consumer)
            lock = "SELECT position FROM feed_cursors WHERE consumer = %s FOR UPDATE"
            row = conn.execute(lock, (self.consumer,)).fetchone()  # two workers take turns on it
            if row is None:  # the consumer's first pass: make its cursor row, then lock it
                feed.position()
                row = conn.execute(lock, (self.consumer,)).fetchone()
            position = int(row[0]) if row else 0
            changes = [c for c in feed.read(position, limit, keys=False) if upto is None or c.id <= upto]
            if not changes:
                return 0
            readings = feed.readings(changes)
            events = feed.events(changes)
            work: dict[int, list[tuple[datetime, int, Observation]]] = defaultdict(list)
            for r in readings:
                work[r.device_ref].append((r.time, READINGS, r))
            for e in events:
                work[e.device_ref].append((e.time, EVENTS, e))  # an alarm before a reading of the same instant
            for change in changes:  # each device's newest uplink through each set of gateways
                for (ref, time), via in zip(change.seen, change.seen_gateways, strict=True):
                    work[ref].append((time, SIGHTINGS, Seen(time, via)))
            simulated: dict[int, list[tuple[datetime, int, Observation]]] = defaultdict(list)
            for r in feed.simulated_readings(changes):
                simulated[r.device_ref].append((r.time, READINGS, r))
            for e in feed.simulated_events(changes):
                simulated[e.device_ref].append((e.time, EVENTS, e))
            devices = self._devices_by_ref(conn, [*work, *simulated])
            self._evaluate(conn, devices, work)
            if simulated:
                self._evaluate(conn, devices, simulated, simulated=True)
            feed.advance(changes[-1].id)
        return len(changes)

    def _evaluate(
        self,
        conn: psycopg.Connection,
        devices: Mapping[int, Device],
        work: Mapping[int, list[tuple[datetime, int, Observation]]],
        *,
        simulated: bool = False,
    ) -> None:
        """Feed each rule's subjects their observations in time order. A device's rules judge the
        device; a welfare rule judges the whole flat, so every sensor of the flat feeds one subject.

        `simulated`: the observations come from simulated uplinks; they are judged with a state and
        alerts of their own (subject suffix `:simulated`), so they never move the real ones, and what
        they raise is marked simulated and notifies nobody."""
        tasks: dict[tuple[str, str], tuple[_Step, list[Entry]]] = {}
        merged: set[tuple[str, str]] = set()  # tasks fed by more than one device (a flat): sorted again
        for ref in sorted(work):
            device = devices.get(ref)
            if device is None:
                continue
            plan = self._plan(device)
            by_kind = _entries(ref, device, work[ref], plan)
            for step in plan.steps:
                entries = by_kind[step.reads]
                if not entries or (simulated and step.rule.simulated == "ignore"):
                    continue
                key = step.simulated_key if simulated else step.key
                task = tasks.get(key)
                if task is None:
                    tasks[key] = (step, entries)
                else:
                    tasks[key] = (step, [*task[1], *entries])  # a new list: `entries` is shared by rules
                    merged.add(key)
        states = self.states.load(conn, tasks.keys())
        open_ = db.open_alerts(conn, sorted({subject for _, subject in tasks}))
        done = _Pass()
        new_states: dict[tuple[str, str], tuple[Any, datetime | None]] = {}
        back: dict[str, datetime] = {}
        for key, (step, items) in tasks.items():
            rule, subject, observe = step.rule, key[1], step.observe
            if key in merged:
                items.sort(key=_ORDER_MERGED)
            alert = open_.get(key)
            state = step.restore(states.get(key), alert)
            sightings = step.reads == SIGHTINGS
            for entry in items:
                before = state
                state, decisions = observe(state, entry)
                if sightings and before.inhibited_by and not state.inhibited_by:
                    time = entry[0]
                    back[before.inhibited_by] = min(time, back.get(before.inhibited_by, time))  # its first device back
                for decision in decisions:
                    device = entry[3]
                    named = getattr(decision, "device_id", None)
                    shown = next((e[3] for e in items if e[3].device_id == named), device) if named else device
                    alert = self._apply(conn, rule, shown, subject, alert, decision, done)
            new_states[key] = (state, None if step.due is None else step.due(state, items[-1][3]))
        self.states.save(conn, new_states)
        for gateway_id, time in sorted(back.items()):
            self._gateway_back(conn, gateway_id, time, done)
        self._notify_pass(conn, done)

    def _devices_by_ref(self, conn: psycopg.Connection, refs: list[int]) -> dict[int, Device]:
        if not self.fixed_registry:
            return db.devices_by_ref(conn, refs)
        missing = [ref for ref in refs if ref not in self._devices]
        if missing:
            self._devices |= db.devices_by_ref(conn, missing)
        return {ref: self._devices[ref] for ref in refs if ref in self._devices}

    def _plan(self, device: Device) -> _Plan:
        """The rules that judge a device's observations, the subject each judges, what it reads
        (EVENTS, READINGS or SIGHTINGS: a rule is given only those), and its evaluator and due time
        picked once for its type rather than for every observation."""
        plan = self._plans.get(device.id) if self.fixed_registry else None
        if plan is None:
            steps = tuple(
                _step(r, subject, device) for r in self.rules.rules_for(device) if (subject := subject_for(r, device))
            )
            views = {step.view for step in steps if step.reads == READINGS}
            plan = _Plan(steps, LEVEL_VIEW in views, ROOM_VIEW in views)
            if self.fixed_registry:
                self._plans[device.id] = plan
        return plan

    # --- the clock ------------------------------------------------------------------------------

    def next_due(self, conn: psycopg.Connection) -> datetime | None:
        """The earliest data time at which the clock has something to decide (replay ticks there). In
        a transaction of its own, so an idle connection is left idle (not inside an implicit one)."""
        return self.states.next_due(conn)

    def upcoming(self, conn: psycopg.Connection, limit: int) -> list[datetime]:
        """The earliest `limit` distinct due times, soonest first (replay's ingest process runs ahead
        of the engine up to the next of them it knows)."""
        return self.states.upcoming(conn, limit)

    def tick(self, conn: psycopg.Connection, now: datetime | None = None, *, sweep: bool = False) -> None:
        """Everything that needs no new data, as of `now` (default: the engine's clock): `for` and
        `keep_firing_for` expiring, devices gone offline, gateways down, welfare spells, repeats,
        escalations, silences ending. Only the states due by `now` are read, so the pass costs what is
        happening, not the size of the fleet. `sweep` (at start-up, and now and then) also gives the
        offline rules a state for every registered device the engine has not evaluated yet (heard
        before the engine ran, or never)."""
        now = now or self.clock()
        with conn.transaction():
            conn.execute("SELECT position FROM feed_cursors WHERE consumer = %s FOR UPDATE", (self.consumer,))
            if sweep:
                self._sweep(conn)
            due = self.states.due(conn, now)
            refs = [ref for _, subject in due if (ref := _device_ref(subject)) is not None]
            devices = self._devices_by_ref(conn, refs)
            open_ = db.open_alerts(conn, sorted({subject for _, subject in due}))
            done = _Pass()
            new_states: dict[tuple[str, str], tuple[Any, datetime | None]] = {}
            silent: list[tuple[tuple[str, str], OfflineRule, offline.OfflineState, Device]] = []
            for key, stored in due.items():
                rule, device = self._rule_for(key, devices)
                if rule is None:
                    new_states[key] = (stored, None)  # the rule is gone or no longer applies
                    continue
                alert = open_.get(key)
                state = _state(rule, stored, alert)
                if isinstance(rule, OfflineRule) and device is not None:
                    silent.append((key, rule, state, device))
                    continue
                state, decisions = _tick(rule, state, now, device)
                for decision in decisions:
                    shown = self._device_named(conn, getattr(decision, "device_id", None), key[1]) or device
                    if shown is None and alert is not None and alert.device_ref is not None:
                        shown = db.devices_by_ref(conn, [alert.device_ref]).get(alert.device_ref)  # a flat's alert
                    if shown is not None:
                        alert = self._apply(conn, rule, shown, key[1], alert, decision, done)
                new_states[key] = (state, _due(rule, state, device))
            if silent:
                new_states |= self._silences(conn, now, silent, open_, done)
            self.states.save(conn, new_states)
            self._notify_pass(conn, done, now)
            if self.notify:  # repeats and escalations tell people things: nothing to do in replay
                self._repeat_and_escalate(conn, now)

    def _rule_for(self, key: tuple[str, str], devices: Mapping[int, Device]) -> tuple[Rule | None, Device | None]:
        """The rule of a due state as its subject sees it (a device's overrides applied)."""
        name, subject = key
        ref = _device_ref(subject)
        if ref is None:
            return self.rules.by_name.get(name), None
        device = devices.get(ref)
        if device is None:
            return None, None
        return next((r for r in self.rules.rules_for(device) if r.name == name), None), device

    def _device_named(self, conn: psycopg.Connection, device_id: str | None, subject: str) -> Device | None:
        """The device a flat's decision names (of that flat, where two applications share the name)."""
        if device_id is None:
            return None
        named = queries.devices_named(conn, device_id)
        return next((d for d in named if subject == f"flat:{d.care_group}"), named[0] if named else None)

    def _sweep(self, conn: psycopg.Connection) -> None:
        """A state (and so a due time) for every device an offline rule watches that has none yet."""
        watched = {
            (rule.name, subject_of(d)): (rule, d)
            for d in queries.devices(conn)
            for rule in self.rules.rules_for(d)
            if isinstance(rule, OfflineRule)
        }
        stored = self.states.load(conn, watched)
        fresh: dict[tuple[str, str], tuple[Any, datetime | None]] = {}
        for key, (rule, device) in watched.items():
            if key in stored or device.last_seen is None:
                continue
            state = offline.OfflineState(device.last_seen)
            fresh[key] = (state, offline.due(state, rule.silent_after(device.attributes)))
        self.states.save(conn, fresh)

    def _silences(
        self,
        conn: psycopg.Connection,
        now: datetime,
        silent: list[tuple[tuple[str, str], OfflineRule, offline.OfflineState, Device]],
        open_: Mapping[tuple[str, str], Alert],
        done: _Pass,
    ) -> dict[tuple[str, str], tuple[Any, datetime | None]]:
        """Devices whose silence is due: each is offline on its own, or one of a gateway's devices all
        silent together (one `gateway_offline` alert; their own alerts are held back)."""
        out: dict[tuple[str, str], tuple[Any, datetime | None]] = {}
        fleet: dict[tuple[str, str], tuple[OfflineRule, offline.OfflineState, Device]] | None = None
        for key, rule, state, device in silent:
            gw_rule = next((r for r in self.rules.rules_for(device) if isinstance(r, GatewayOfflineRule)), None)
            if state.inhibited_by is not None and not self._gateway_open(conn, state.inhibited_by):
                # The gateway is back and this device not yet: it gets a full silence from now.
                state = replace(state, inhibited_by=None, counted_from=now)
                out[key] = (state, _due(rule, state, device))
                continue
            sole = state.sole_gateway(gw_rule.recent) if gw_rule is not None else None
            if gw_rule is not None and sole is not None and not state.open:
                if self._gateway_open(conn, sole):
                    state = replace(state, inhibited_by=sole)
                    out[key] = (state, None)
                    continue
                if fleet is None:
                    fleet = self._offline_fleet(conn)
                siblings = {k: v for k, v in fleet.items() if v[1].sole_gateway(gw_rule.recent) == sole}
                siblings[key] = (rule, state, device)
                silences = [(st.last_seen, r.silent_after(d.attributes)) for r, st, d in siblings.values()]
                if gateway.down(gw_rule, now, silences):
                    self._open_gateway(conn, gw_rule, sole, now, len(siblings), done)
                    for k, (_, st, _) in siblings.items():
                        held = replace(st, inhibited_by=sole)
                        out[k] = (held, None)
                    continue
            decisions: list[Decision]
            state, decisions = offline.tick(state, now, rule.silent_after(device.attributes), rule.severity)
            alert = open_.get(key)
            for decision in decisions:
                alert = self._apply(conn, rule, device, key[1], alert, decision, done)
            out[key] = (state, _due(rule, state, device))
        return out

    def _offline_fleet(
        self, conn: psycopg.Connection
    ) -> dict[tuple[str, str], tuple[OfflineRule, offline.OfflineState, Device]]:
        """Every device's offline state (the gateway judgement compares a gateway's devices)."""
        devices = queries.devices(conn)
        pairs = [(d, r) for d in devices for r in self.rules.rules_for(d) if isinstance(r, OfflineRule)]
        stored = self.states.load(conn, [(r.name, subject_of(d)) for d, r in pairs])
        out = {}
        for d, r in pairs:
            key = (r.name, subject_of(d))
            if key in stored:
                out[key] = (r, _parsed(r, stored[key]), d)
        return out

    def _gateway_open(self, conn: psycopg.Connection, gateway_id: str) -> bool:
        return bool(db.open_alerts(conn, [gateway_subject(gateway_id)]))

    def _open_gateway(
        self,
        conn: psycopg.Connection,
        rule: GatewayOfflineRule,
        gateway_id: str,
        at: datetime,
        devices: int,
        done: _Pass,
    ) -> None:
        summary = f"gateway {gateway_id} down: all {devices} devices heard only through it are silent"
        created = db.insert_alert(
            conn,
            {
                "rule": rule.name,
                "category": rule.category,
                "severity": rule.severity,
                "subject": gateway_subject(gateway_id),
                "device_ref": None,
                "device_id": None,
                "application_id": None,
                "kind": "gateway",
                "state": "firing",
                "simulated": False,
                "late": False,
                "opened_at": at,
                "firing_at": at,
                "resolved_at": None,
                "value": float(devices),
                "summary": summary,
                "details": {"devices": devices},
                "gateway_id": gateway_id,
            },
        )
        if created is not None:
            db.log(conn, created.id, ACTOR, "opened", to_state="firing", note=summary, data_time=at)
            done.opened[created.id] = (rule, None)

    def _gateway_back(self, conn: psycopg.Connection, gateway_id: str, at: datetime, done: _Pass) -> None:
        """A device the gateway's outage held back is heard again: the gateway is back."""
        for (name, _), alert in db.open_alerts(conn, [gateway_subject(gateway_id)]).items():
            db.update_alert(conn, alert.id, {"state": "resolved", "resolved_at": at, "resolved_by": ACTOR})
            db.log(conn, alert.id, ACTOR, "resolved", from_state=alert.state, to_state="resolved",
                   note="its devices are heard again", data_time=at)  # fmt: skip
            rule = self.rules.by_name.get(name)
            if rule is not None:
                done.resolved[alert.id] = (rule, None)
        self.states.release_inhibited(conn, gateway_id, at)

    def _repeat_and_escalate(self, conn: psycopg.Connection, now: datetime) -> None:
        alerts = list(db.open_alerts(conn).values())
        by_ref = db.devices_by_ref(conn, sorted({a.device_ref for a in alerts if a.device_ref is not None}))
        silences = db.active_silences(conn, now)
        for alert in alerts:
            if alert.state == "pending" or alert.late or alert.simulated:
                continue
            rule = self.rules.by_name.get(alert.rule)
            if rule is None:
                continue
            device = by_ref.get(alert.device_ref) if alert.device_ref is not None else None
            if _silenced(alert, device, silences):
                continue
            if alert.notifications == 0 and alert.state == "firing":  # its silence ended, or it was held back
                self._notify(conn, alert, rule, device, "opened", rule.route, now)
                continue
            if alert.state != "firing":
                continue  # acknowledged: no repeats, no escalation
            step = alert.escalation_level
            if step < len(rule.escalate) and alert.firing_at is not None:
                escalation = rule.escalate[step]
                if now >= alert.firing_at + escalation.after:
                    db.update_alert(conn, alert.id, {"escalation_level": step + 1})
                    db.log(conn, alert.id, CLOCK, "escalated", note=f"to {', '.join(escalation.route)}")
                    self._notify(conn, alert, rule, device, "escalated", escalation.route, now)
                    continue
            due = rule.repeat_every is not None and alert.notified_at is not None
            if (
                due
                and alert.notified_at is not None
                and rule.repeat_every
                and now >= alert.notified_at + rule.repeat_every
            ):
                self._notify(conn, alert, rule, device, "repeat", rule.route, now)

    # --- decisions ------------------------------------------------------------------------------

    def _apply(
        self,
        conn: psycopg.Connection,
        rule: Rule,
        device: Device,
        subject: str,
        alert: Alert | None,
        decision: Decision,
        done: _Pass,
    ) -> Alert | None:
        """Apply one decision; returns the rule's open alert for the subject afterwards."""
        if isinstance(decision, Open | Late):
            late = isinstance(decision, Late)
            if alert is not None and not late:
                db.log(conn, alert.id, ACTOR, "note", note=f"already open: {decision.summary}", data_time=decision.at)
                return alert
            firing = late or (isinstance(decision, Open) and decision.firing)
            created = db.insert_alert(
                conn,
                {
                    "rule": rule.name,
                    "category": rule.category,
                    "severity": decision.severity,
                    "subject": subject,
                    "device_ref": device.id,
                    "device_id": device.device_id,
                    "application_id": device.application_id,
                    "kind": device.kind,
                    "state": "resolved" if late else ("firing" if firing else "pending"),
                    "simulated": subject.endswith(":simulated"),
                    "late": late,
                    "opened_at": decision.at,
                    "firing_at": decision.at if firing else None,
                    "resolved_at": decision.at if late else None,
                    "value": decision.value,
                    "summary": decision.summary,
                    "details": {},
                    "device_alarm_id": decision.alarm_key,
                },
            )
            if created is None:  # another worker opened it first: that one is the alert
                raced = db.open_alerts(conn, [subject]).get((rule.name, subject))
                if raced is not None:
                    db.log(conn, raced.id, ACTOR, "note", note="opened concurrently: kept one", data_time=decision.at)
                return raced
            db.log(conn, created.id, ACTOR, "recorded late" if late else "opened", to_state=created.state,
                   note=decision.summary, data_time=decision.at)  # fmt: skip
            if late:
                return alert
            if firing and not created.simulated:
                done.opened[created.id] = (rule, device)
            return created
        if alert is None:
            return None  # resolved by a person meanwhile: nothing left to move
        if isinstance(decision, Fire) and alert.state == "acknowledged":  # someone took it while pending
            db.log(conn, alert.id, ACTOR, "firing", note="already acknowledged: nobody is notified",
                   data_time=decision.at)  # fmt: skip
            return db.update_alert(conn, alert.id, {"firing_at": decision.at, "severity": decision.severity,
                                                    "value": decision.value})  # fmt: skip
        if isinstance(decision, Fire):
            updated = db.update_alert(
                conn, alert.id, {"state": "firing", "firing_at": decision.at, "severity": decision.severity,
                                 "value": decision.value}
            )  # fmt: skip
            db.log(conn, alert.id, ACTOR, "firing", from_state=alert.state, to_state="firing", data_time=decision.at)
            if not alert.simulated:
                done.opened[alert.id] = (rule, device)
            return updated
        if isinstance(decision, Reseverity):
            updated = db.update_alert(conn, alert.id, {"severity": decision.severity, "value": decision.value})
            db.log(conn, alert.id, ACTOR, "severity", note=f"{alert.severity} -> {decision.severity}",
                   data_time=decision.at)  # fmt: skip
            if decision.severity == "critical" and alert.state == "firing":
                done.raised[alert.id] = (rule, device)
            return updated
        if isinstance(decision, Resolve):
            db.update_alert(conn, alert.id, {"state": "resolved", "resolved_at": decision.at, "resolved_by": ACTOR})
            db.log(conn, alert.id, ACTOR, "resolved", from_state=alert.state, to_state="resolved",
                   note=decision.reason, data_time=decision.at)  # fmt: skip
            done.resolved[alert.id] = (rule, device)
            return None
        if isinstance(decision, Note):
            details = dict(alert.details)
            if "cleared" in decision.text:
                details["device_cleared_at"] = decision.at.isoformat()
            db.update_alert(conn, alert.id, {"details": details})
            db.log(conn, alert.id, ACTOR, "note", note=decision.text, data_time=decision.at)
            return alert
        raise AssertionError(f"unknown decision {decision!r}")

    # --- people -------------------------------------------------------------------------------------

    def acknowledge(self, conn: psycopg.Connection, alert_id: int, by: str, note: str | None = None) -> Alert:
        """Someone has it: repeats and escalation stop. Raises LifecycleError if it is not open."""
        with conn.transaction():
            alert = db.get_alert(conn, alert_id, lock=True)
            if alert is None:
                raise LifecycleError(f"there is no alert {alert_id}")
            if alert.state not in ("pending", "firing"):
                raise LifecycleError(
                    f"alert {alert_id} is {alert.state}: only a pending or firing alert can be acknowledged"
                )
            now = self.clock()
            updated = db.update_alert(conn, alert_id, {"state": "acknowledged", "acknowledged_at": now,
                                                       "acknowledged_by": by})  # fmt: skip
            db.log(conn, alert_id, by, "acknowledged", from_state=alert.state, to_state="acknowledged", note=note)
            return updated

    def assign(self, conn: psycopg.Connection, alert_id: int, assignee: str, by: str, note: str | None = None) -> Alert:
        """Give an open alert to someone (recorded; it changes no state and stops nothing)."""
        with conn.transaction():
            alert = db.get_alert(conn, alert_id, lock=True)
            if alert is None:
                raise LifecycleError(f"there is no alert {alert_id}")
            if alert.state == "resolved":
                raise LifecycleError(f"alert {alert_id} is resolved: it cannot be assigned")
            updated = db.update_alert(conn, alert_id, {"assignee": assignee})
            db.log(conn, alert_id, by, "assigned", note=f"to {assignee}" + (f": {note}" if note else ""))
            return updated

    def note(self, conn: psycopg.Connection, alert_id: int, by: str, text: str) -> Alert:
        """A note on an alert, open or resolved (what was found, what was done)."""
        with conn.transaction():
            alert = db.get_alert(conn, alert_id, lock=True)
            if alert is None:
                raise LifecycleError(f"there is no alert {alert_id}")
            db.log(conn, alert_id, by, "note", note=text)
            return alert

    def resolve(
        self, conn: psycopg.Connection, alert_id: int, by: str, note: str | None = None, *, hand_over: bool = False
    ) -> Alert:
        """A person closes it (and the rule starts afresh if the condition still holds). Whoever was told
        of it hears it is over: at once, or with `hand_over` (the API, whose database roles cannot write
        the outbox) through a notice the alert worker turns into the same notification (`send_notices`)."""
        with conn.transaction():
            alert = db.get_alert(conn, alert_id, lock=True)
            if alert is None:
                raise LifecycleError(f"there is no alert {alert_id}")
            if alert.state == "resolved":
                raise LifecycleError(f"alert {alert_id} is already resolved")
            now = self.clock()
            updated = db.update_alert(conn, alert_id, {"state": "resolved", "resolved_at": now, "resolved_by": by})
            db.log(conn, alert_id, by, "resolved", from_state=alert.state, to_state="resolved", note=note)
            if alert.notifications > 0 and not alert.simulated:
                if hand_over:
                    notices.hand_over(conn, alert_id, "resolved")
                else:
                    self._resolved_notice(conn, updated, now)
            return updated

    def send_notices(self, conn: psycopg.Connection, batch: int = 100) -> int:
        """Turn the notices people's actions handed over (`alert_notices`) into notifications, each in
        the transaction that removes it from the queue; returns how many were taken. The worker calls
        this when it starts and on every clock pass, so a notice handed over while no worker ran is
        sent when one starts."""
        taken = 0
        while True:
            now = self.clock()
            with conn.transaction():
                notes = notices.take(conn, batch)
                for alert_id, _event in notes:  # 'resolved' is the only event
                    alert = db.get_alert(conn, alert_id, lock=True)
                    if alert is not None and alert.state == "resolved":
                        self._resolved_notice(conn, alert, now)
            taken += len(notes)
            if len(notes) < batch:
                return taken

    def _resolved_notice(self, conn: psycopg.Connection, alert: Alert, now: datetime) -> None:
        """The resolved notice of an alert a person resolved, to everyone who was told of it, unless a
        silence holds it back or it was made already (one notice whichever path asks, however often)."""
        rule = self.rules.by_name.get(alert.rule)
        if rule is None or alert.notifications == 0 or alert.simulated or notices.resolved_sent(conn, alert.id):
            return
        device = db.devices_by_ref(conn, [alert.device_ref]).get(alert.device_ref) if alert.device_ref else None
        if not _silenced(alert, device, db.active_silences(conn, now)):
            self._notify(conn, alert, rule, device, "resolved", self._resolved_routes(rule, alert), now)

    # --- notifications --------------------------------------------------------------------------

    def _notify_pass(self, conn: psycopg.Connection, done: _Pass, now: datetime | None = None) -> None:
        now = now or self.clock()
        silences = db.active_silences(conn, now) if done.opened or done.raised or done.resolved else []
        for alert_id, (rule, device) in done.opened.items():
            alert = db.get_alert(conn, alert_id)
            if alert is None:
                continue
            if alert.state == "resolved":  # opened and over within this pass: old news
                db.update_alert(conn, alert_id, {"late": True})
                db.log(conn, alert_id, ACTOR, "not notified", note="the condition had already ended in this data")
                continue
            if not _silenced(alert, device, silences):
                self._notify(conn, alert, rule, device, "opened", rule.route, now)
        for alert_id, (rule, device) in done.raised.items():
            alert = db.get_alert(conn, alert_id)
            firing = alert is not None and alert.state == "firing" and alert_id not in done.opened
            if firing and alert is not None and not _silenced(alert, device, silences):
                self._notify(conn, alert, rule, device, "severity", rule.route, now)
        for alert_id, (rule, device) in done.resolved.items():
            alert = db.get_alert(conn, alert_id)
            told = alert is not None and alert.notifications > 0 and alert_id not in done.opened
            if told and alert is not None and not _silenced(alert, device, silences):
                self._notify(conn, alert, rule, device, "resolved", self._resolved_routes(rule, alert), now)

    def _resolved_routes(self, rule: Rule, alert: Alert) -> tuple[str, ...]:
        """Everyone who was told of the alert (its routes and the escalation steps reached) and wants
        to hear that it is over."""
        told = [*rule.route, *(r for step in rule.escalate[: alert.escalation_level] for r in step.route)]
        return tuple(r for r in dict.fromkeys(told) if self.rules.route(r).send_resolved)

    def _notify(
        self,
        conn: psycopg.Connection,
        alert: Alert,
        rule: Rule,
        device: Device | None,
        event: str,
        routes: Iterable[str],
        now: datetime | None = None,
    ) -> None:
        now = now or self.clock()
        if not rule.page:  # recorded, scored, shown: never sent (anomaly records)
            return
        number = alert.notifications + 1
        payload = notification_payload(alert, device, event, number)
        rows: list[OutboxEntry] = []
        for route in routes if self.notify else ():
            delivery = self.rules.delivery(route, self.env)
            key = f"alert-{alert.id}-{number}-{route}"
            targets = [("webhook", delivery.webhook_url), ("email", ",".join(delivery.email_to))]
            for channel, target in targets:
                if target:
                    ikey = f"{key}-{channel}"
                    rows.append(
                        OutboxEntry(alert.id, event, channel, route, target, {**payload, "idempotency_key": ikey}, ikey)
                    )
            if delivery.empty:
                log.warning("alert_route_delivers_nowhere", extra={"route": route, "missing": list(delivery.missing)})
        outbox.enqueue(conn, rows, now=now)
        db.update_alert(conn, alert.id, {"notifications": number, "notified_at": now})
        db.log(conn, alert.id, ACTOR, f"notified {event}", note=", ".join(f"{r.channel}:{r.route}" for r in rows))


def notification_payload(alert: Alert, device: Device | None, event: str, number: int) -> dict[str, Any]:
    """What a notification says. Minimised: a care alert names its room and flat, never the device's
    name (which a care home may have set to a resident's name), and carries no readings."""
    where: dict[str, Any] = {}
    if device is not None:
        if device.kind == "care":
            where = {"care_room": device.care_room, "care_group": device.care_group}
        else:
            where = {"name": device.name, "latitude": device.latitude, "longitude": device.longitude}
    return {
        "event": event,
        "notification": number,
        "simulated": alert.simulated,
        "alert": {
            "id": alert.id,
            "rule": alert.rule,
            "category": alert.category,
            "severity": alert.severity,
            "state": alert.state,
            "device_id": alert.device_id,
            "application_id": alert.application_id,
            "gateway_id": alert.gateway_id,
            "kind": alert.kind,
            "opened_at": alert.opened_at.isoformat(),
            "firing_at": alert.firing_at.isoformat() if alert.firing_at else None,
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "summary": alert.summary if alert.kind != "care" else alert.category,
            "value": alert.value if alert.kind != "care" else None,
            "simulated": alert.simulated,
        },
        "where": where,
    }


def _silenced(alert: Alert, device: Device | None, silences: list[tuple[int, dict[str, Any]]]) -> bool:
    fields = {
        "rule": alert.rule,
        "category": alert.category,
        "severity": alert.severity,
        "device_id": alert.device_id,
        "application_id": alert.application_id,
        "gateway_id": alert.gateway_id,
        "kind": alert.kind,
        "care_group": device.care_group if device else None,
    }
    return any(matchers and all(fields.get(k) == v for k, v in matchers.items()) for _, matchers in silences)


def _state(rule: Rule, stored: Any, alert: Alert | None) -> Any:
    """The rule's state for a subject (`stored`: its JSON, its object, or None for a fresh one),
    corrected by the alerts table: an alert a person resolved is no longer open, whatever the state
    remembered."""
    learned_as_kept = type(rule) in _DETECTORS and stored is not None and not isinstance(stored, dict)
    if learned_as_kept and stored.open == (alert is not None):  # a detector's state as the alerts have it
        return stored
    if isinstance(rule, GatewayOfflineRule):
        return None
    stored = _parsed(rule, stored)
    if isinstance(rule, DeviceAlarmRule):
        alarm: device_alarm.AlarmState = stored
        if alert is None and alarm.open:
            return device_alarm.AlarmState(alarm.seen, None, False, alarm.last)
        return alarm
    if isinstance(rule, OfflineRule):
        off: offline.OfflineState = stored
        resolved_by_hand = off.open and alert is None
        if off.open == (alert is not None) and not resolved_by_hand:
            return off
        return replace(off, open=alert is not None, rearm=off.rearm or resolved_by_hand)
    if isinstance(rule, ThresholdRule | BatteryRule):
        cond: ConditionState = stored
        if alert is None and cond.alert is not None:
            return ConditionState(last=cond.last, value=cond.value)  # a person resolved it: start afresh
        if alert is not None and cond.alert is None:  # opened by another path (a restart mid-pass cannot: one tx)
            state: AlertState = "pending" if alert.state == "pending" else "firing"
            severity = cast(Severity, alert.severity)
            return ConditionState(cond.level, cond.since, state, severity, cond.clear_since, cond.last, cond.value)
        return cond
    learned = stored
    if learned.open != (alert is not None):  # a person resolved it, or it was opened elsewhere
        learned = replace(learned, open=alert is not None)
    return learned


def _parsed(rule: Rule, stored: Any) -> Any:
    """A stored state as the rule's state object (JSON is parsed; an object is taken as it is)."""
    if stored is not None and not isinstance(stored, dict):
        return stored
    data = stored or {}
    if isinstance(rule, DeviceAlarmRule):
        return device_alarm.AlarmState.from_json(data)
    if isinstance(rule, OfflineRule):
        return offline.OfflineState.from_json(data)
    if isinstance(rule, ThresholdRule | BatteryRule):
        return ConditionState.from_json(data)
    return _DETECTORS[type(rule)][0].from_json(data)


#: One observation as the evaluators are given it: (data time, kind (EVENTS, READINGS or SIGHTINGS),
#: device ref, device, the Reading, Event or Seen, the reading as a gully level (LevelObs, or None),
#: the reading as evidence in a care room (RoomObs, or None)). A tuple: there is one per rule and
#: observation, and the engine's inner loop only indexes it (so the last three are Any to mypy; each
#: rule's observer reads what `_reads` and `_view` say it is given).
Entry = tuple[datetime, int, int, Device, Any, Any, Any]
Observer = Callable[[Any, Entry], tuple[Any, list[Decision]]]
DueOf = Callable[[Any, Device | None], datetime | None]
Restore = Callable[[Any, Alert | None], Any]

#: What an observation's view needs (`_Step.view`): nothing, its level, its room.
NO_VIEW, LEVEL_VIEW, ROOM_VIEW = 0, 1, 2


def _observer(rule: Rule) -> Observer:
    """The rule's evaluator for one observation (of the kind it reads: `_reads`)."""
    if isinstance(rule, ThresholdRule):
        metric = rule.metric
        return lambda st, e: levels.threshold(rule, st, e[0], metric_value(metric, e[3], e[4]))
    if isinstance(rule, BatteryRule):
        return lambda st, e: levels.battery(rule, st, e[0], e[4].battery_v, e[4].battery_pct)
    if isinstance(rule, DeviceAlarmRule):
        return lambda st, e: device_alarm.evaluate(rule, st, e[0], e[4].kind, e[4].attrs)
    if isinstance(rule, OfflineRule):
        return lambda st, e: offline.seen(st, e[4].at, e[4].gateways)
    if isinstance(rule, GatewayOfflineRule):  # judged on the clock, across devices
        return lambda st, e: (st, [])
    if isinstance(rule, WelfareRule):
        return lambda st, e: welfare.observe(rule, st, e[6])
    if isinstance(rule, AnomalyRule):
        metric = rule.metric
        if metric == "level_mm":  # the level view holds it, worked out as metric_value would
            return lambda st, e: anomaly.observe(rule, st, e[0], e[5].level_mm)
        if metric == "fill_pct":
            return lambda st, e: anomaly.observe(rule, st, e[0], e[5].fill_pct)
        return lambda st, e: anomaly.observe(rule, st, e[0], metric_value(metric, e[3], e[4]))
    detector: Callable[[Any, Any, LevelObs], tuple[Any, list[Decision]]] = _LEVEL_DETECTORS[type(rule)]
    return lambda st, e: detector(rule, st, e[5])


def _view(rule: Rule) -> int:
    """Which view of a reading the rule's evaluator reads (`_observer`)."""
    if type(rule) in _LEVEL_DETECTORS or (isinstance(rule, AnomalyRule) and rule.metric in ("level_mm", "fill_pct")):
        return LEVEL_VIEW
    return ROOM_VIEW if isinstance(rule, WelfareRule) else NO_VIEW


def _restorer(rule: Rule) -> Restore:
    """`_state` for this rule, with its commonest case (the state kept as its object, and the alerts
    table agreeing with it) answered without the type tests."""
    if isinstance(rule, GatewayOfflineRule | DeviceAlarmRule):
        return lambda stored, alert: _state(rule, stored, alert)
    if isinstance(rule, ThresholdRule | BatteryRule):

        def condition(stored: Any, alert: Alert | None) -> Any:
            if type(stored) is ConditionState and (stored.alert is None) == (alert is None):
                return stored
            return _state(rule, stored, alert)

        return condition
    kept = offline.OfflineState if isinstance(rule, OfflineRule) else _DETECTORS[type(rule)][0]

    def learned(stored: Any, alert: Alert | None) -> Any:
        if type(stored) is kept and stored.open == (alert is not None):
            return stored
        return _state(rule, stored, alert)

    return learned


#: The detectors that reason in a gully's level (LevelObs), by rule model.
_LEVEL_DETECTORS: dict[type, Callable[..., tuple[Any, list[Decision]]]] = {
    FloodRule: flood.observe,
    SensorFaultRule: sensor_fault.observe,
    BlockageRule: blockage.observe,
    SiltRule: silt.observe,
}


@dataclass(frozen=True, slots=True)
class _Step:
    """One rule of a device's plan: the rule, the subject it judges (and its keys in rule state, live
    and simulated), what it reads, which view of a reading, how it reads it, how its stored state is
    taken, and when its state is next due (None: never, only data changes it)."""

    rule: Rule
    subject: str
    key: tuple[str, str]
    simulated_key: tuple[str, str]
    reads: int
    view: int
    observe: Observer
    restore: Restore
    due: DueOf | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """A device's steps, and which views of its readings they read (`_entries` works out only those)."""

    steps: tuple[_Step, ...]
    level: bool
    room: bool


def _step(rule: Rule, subject: str, device: Device) -> _Step:
    """The step of `rule` in `device`'s plan, judging `subject`."""
    never = isinstance(rule, DeviceAlarmRule | GatewayOfflineRule) or (
        type(rule) in _DETECTORS and _DETECTORS[type(rule)][2] is None
    )
    due = None if never else _due_of(rule)
    if isinstance(rule, OfflineRule):  # its subject is the device: the silence it allows, worked out once
        silent_after = rule.silent_after(device.attributes)
        due = lambda st, dev: offline.due(st, silent_after)  # noqa: E731
    return _Step(
        rule,
        subject,
        (rule.name, subject),
        (rule.name, subject + ":simulated"),
        _reads(rule),
        _view(rule),
        _observer(rule),
        _restorer(rule),
        due,
    )


def _tick(rule: Rule, state: Any, now: datetime, device: Device | None) -> tuple[Any, list[Decision]]:
    """The clock's decision for one due state (offline and gateways are judged together elsewhere)."""
    if isinstance(rule, ThresholdRule | BatteryRule):
        return condition_tick(state, now, for_=rule.for_, keep_firing_for=rule.keep_firing_for)
    if isinstance(rule, DeviceAlarmRule | OfflineRule | GatewayOfflineRule):
        return state, []
    decided: tuple[Any, list[Decision]] = _DETECTORS[type(rule)][1](rule, state, now)
    return decided


def _due(rule: Rule, state: Any, device: Device | None) -> datetime | None:
    """When the clock next has something to decide for this state (None: only data can change it)."""
    return _due_of(rule)(state, device)


def _due_of(rule: Rule) -> DueOf:
    """The rule's due time of a state, as a function of the state and its device."""
    if isinstance(rule, ThresholdRule | BatteryRule):
        for_, keep = rule.for_, rule.keep_firing_for

        def condition_due(cond: ConditionState, _: Device | None) -> datetime | None:
            if cond.alert == "pending" and cond.since is not None:
                return cond.since + for_
            if cond.alert == "firing" and cond.clear_since is not None:
                return cond.clear_since + keep
            return None

        return condition_due
    if isinstance(rule, OfflineRule):
        offline_rule = rule
        return lambda st, dev: offline.due(st, offline_rule.silent_after(dev.attributes if dev else {}))
    if isinstance(rule, DeviceAlarmRule | GatewayOfflineRule):
        return lambda st, dev: None
    detector_due = _DETECTORS[type(rule)][2]
    if detector_due is None:
        return lambda st, dev: None
    return lambda st, dev: detector_due(rule, st)


#: The learned detectors' (state class, tick, due), by rule model. `due` is None for the detectors
#: whose states the clock never judges (their `due` is always None: every sign comes with a reading),
#: so the engine does not ask them after every reading.
_DETECTORS: dict[type, tuple[Any, Callable[..., tuple[Any, list[Decision]]], Callable[..., datetime | None] | None]] = {
    FloodRule: (flood.FloodState, flood.tick, flood.due),
    SensorFaultRule: (sensor_fault.FaultState, sensor_fault.tick, None),
    BlockageRule: (blockage.BlockageState, blockage.tick, None),
    SiltRule: (silt.SiltState, silt.tick, silt.due),
    WelfareRule: (welfare.WelfareState, welfare.tick, welfare.due),
    AnomalyRule: (anomaly.AnomalyState, anomaly.tick, None),
}


#: What a rule reads, which is also the order of observations at one instant (an alarm first).
EVENTS, READINGS, SIGHTINGS = 0, 1, 2


def _reads(rule: Rule) -> int:
    if isinstance(rule, OfflineRule):
        return SIGHTINGS
    return EVENTS if isinstance(rule, DeviceAlarmRule) else READINGS


#: Observations in time order; at one instant an alarm, then a reading, then the sighting (`work`'s
#: (time, kind, item) of one device; a stable sort, so otherwise as the feed gave them) ...
_ORDER = itemgetter(0, 1)
#: ... and in a task fed by several devices (a flat), its devices by ref.
_ORDER_MERGED = itemgetter(0, 1, 2)


def _entries(
    ref: int, device: Device, work: list[tuple[datetime, int, Observation]], plan: _Plan
) -> tuple[list[Entry], list[Entry], list[Entry]]:
    """A device's observations of one pass as entries (`Entry`), in time order, by kind (EVENTS,
    READINGS, SIGHTINGS): each reading's views are worked out here, once, for all the rules that read
    them (a gully's reading feeds flood, fault, blockage, silt and anomaly)."""
    by_kind: tuple[list[Entry], list[Entry], list[Entry]] = ([], [], [])
    level, room = plan.level, plan.room
    item: Any
    for time, kind, item in sorted(work, key=_ORDER) if len(work) > 1 else work:
        if kind == READINGS:
            by_kind[kind].append((time, kind, ref, device, item, level_obs(device, item) if level else None,
                                  room_obs(device, item) if room else None))  # fmt: skip
        else:
            by_kind[kind].append((time, kind, ref, device, item, None, None))
    return by_kind


def level_obs(device: Device, reading: Reading) -> LevelObs:
    """A gully reading in the terms the flood physics reason in."""
    valid = reading.distance_valid is not False and reading.distance_mm is not None
    level = water_level_mm(reading.distance_mm, device.sensor_height_mm) if valid else None
    invert = device.outlet_invert_mm
    excess = level - invert if level is not None and invert is not None else None
    pct = fill_pct(level, device.sensor_height_mm, invert)  # gully_fill_pct, its level worked out once
    return LevelObs(reading.time, reading.distance_mm, reading.distance_valid, level, excess, pct, reading.tilted)


def room_obs(device: Device, reading: Reading) -> RoomObs:
    """A care sensor's reading as evidence of where the resident is and whether they move."""
    return RoomObs(
        reading.time,
        device.device_id,
        device.care_room,
        motion=reading.motion,
        motion_count=reading.motion_count,
        occupied=reading.occupied,
        in_bed=reading.in_bed,
        lying_down=reading.lying_down,
    )


def subject_for(rule: Rule, device: Device) -> str | None:
    """What a rule judges for a device's observations: the device, or for welfare its flat (None: the
    rule judges nothing per observation, or the device belongs to no flat)."""
    if isinstance(rule, WelfareRule):
        return f"flat:{device.care_group}" if device.care_group else None
    if isinstance(rule, GatewayOfflineRule):
        return None
    return subject_of(device)


def gateway_subject(gateway_id: str) -> str:
    return f"gateway:{gateway_id}"


def _device_ref(subject: str) -> int | None:
    kind, _, rest = subject.partition(":")
    ref = rest.split(":", 1)[0]
    return int(ref) if kind == "device" and ref.isdigit() else None


@dataclass(frozen=True, slots=True)
class Seen:
    """A device's newest uplink in a batch through one set of gateways (the change feed's sighting)."""

    at: datetime
    gateways: tuple[str, ...] = ()


Observation = Reading | Event | Seen
