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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from alerts.decisions import Decision, Fire, Late, Note, Open, Reseverity, Resolve
from alerts.evaluators import device_alarm, levels, offline
from alerts.evaluators.condition import ConditionState
from alerts.evaluators.condition import tick as condition_tick
from alerts.rules import BatteryRule, DeviceAlarmRule, OfflineRule, Rule, RuleSet, ThresholdRule
from store import alerts as db
from store import outbox, queries
from store.feed import ChangeFeed
from store.geometry import gully_fill_pct, water_level_mm
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


def metric_value(rule: ThresholdRule, device: Device, reading: Reading) -> float | None:
    """The rule's metric in this reading; None when the reading does not carry it, or the distance is
    flagged invalid (no echo is a sensor fault, never a flood)."""
    if rule.metric in ("level_mm", "fill_pct"):
        if reading.distance_valid is False:
            return None
        if rule.metric == "level_mm":
            return water_level_mm(reading.distance_mm, device.sensor_height_mm)
        return gully_fill_pct(reading.distance_mm, device.sensor_height_mm, device.outlet_invert_mm)
    value = getattr(reading, rule.metric, None)
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
    ) -> None:
        """`notify=False` (replay, `lorawatch score`): notifications are counted on the alert and logged,
        but no outbox row is written: nobody is told anything."""
        self.rules = rules
        self.clock = clock
        self.env = dict(env or {})
        self.consumer = consumer
        self.notify = notify

    # --- the change feed ------------------------------------------------------------------------

    def process(self, conn: psycopg.Connection, limit: int = 100) -> int:
        """Evaluate the changes after this consumer's cursor (at most `limit`); returns how many."""
        with conn.transaction():
            feed = ChangeFeed(conn, self.consumer)
            feed.position()
            row = conn.execute(
                "SELECT position FROM feed_cursors WHERE consumer = %s FOR UPDATE", (self.consumer,)
            ).fetchone()  # two workers take turns: the second reads after the first commits
            position = int(row[0]) if row else 0
            changes = feed.read(position, limit)
            if not changes:
                return 0
            readings = feed.readings(changes)
            events = feed.events(changes)
            seen: dict[int, datetime] = {}
            for change in changes:
                for ref, time in change.seen:
                    if ref not in seen or time > seen[ref]:
                        seen[ref] = time
            work: dict[int, list[tuple[datetime, int, Reading | Event | datetime]]] = defaultdict(list)
            for r in readings:
                work[r.device_ref].append((r.time, 1, r))
            for e in events:
                work[e.device_ref].append((e.time, 0, e))  # an alarm before a reading of the same instant
            for ref, time in seen.items():
                work[ref].append((time, 2, time))
            simulated: dict[int, list[tuple[datetime, int, Reading | Event | datetime]]] = defaultdict(list)
            for r in feed.simulated_readings(changes):
                simulated[r.device_ref].append((r.time, 1, r))
            for e in feed.simulated_events(changes):
                simulated[e.device_ref].append((e.time, 0, e))
            devices = db.devices_by_ref(conn, [*work, *simulated])
            self._evaluate(conn, devices, work)
            if simulated:
                self._evaluate(conn, devices, simulated, simulated=True)
            feed.advance(changes[-1].id)
        return len(changes)

    def _evaluate(
        self,
        conn: psycopg.Connection,
        devices: Mapping[int, Device],
        work: Mapping[int, list[tuple[datetime, int, Reading | Event | datetime]]],
        *,
        simulated: bool = False,
    ) -> None:
        """`simulated`: the observations come from simulated uplinks; they are judged with a state and
        alerts of their own (subject `device:<id>:simulated`), so they never move the real ones, and
        what they raise is marked simulated and notifies nobody."""
        pairs: list[tuple[Device, tuple[Rule, ...]]] = []
        for ref in sorted(work):
            device = devices.get(ref)
            if device is not None:
                rules = self.rules.rules_for(device)
                if simulated:
                    rules = tuple(r for r in rules if r.simulated != "ignore")
                pairs.append((device, rules))
        suffix = ":simulated" if simulated else ""
        keys = [(rule.name, subject_of(d) + suffix) for d, rules in pairs for rule in rules]
        states = db.load_states(conn, keys)
        open_ = db.open_alerts(conn, sorted({subject_of(d) + suffix for d, _ in pairs}))
        done = _Pass()
        new_states: dict[tuple[str, str], dict[str, Any]] = {}
        for device, rules in pairs:
            items = sorted(work[device.id], key=lambda item: (item[0], item[1]))
            subject = subject_of(device) + suffix
            for rule in rules:
                key = (rule.name, subject)
                alert = open_.get(key)
                state = _state(rule, states.get(key), alert)
                for time, _, item in items:
                    state, decisions = _observe(rule, state, device, time, item)
                    for decision in decisions:
                        alert = self._apply(conn, rule, device, subject, alert, decision, done)
                if state is not None:
                    new_states[key] = state.to_json()
        db.save_states(conn, new_states)
        self._notify_pass(conn, done)

    # --- the clock ------------------------------------------------------------------------------

    def tick(self, conn: psycopg.Connection, now: datetime | None = None) -> None:
        """Everything that needs no new data, as of `now` (default: the engine's clock): `for` and
        `keep_firing_for` expiring, devices gone offline, repeats, escalations, silences ending."""
        now = now or self.clock()
        with conn.transaction():
            conn.execute("SELECT position FROM feed_cursors WHERE consumer = %s FOR UPDATE", (self.consumer,))
            devices = queries.devices(conn)  # every registered device: the offline check walks them
            pairs = [(d, self.rules.rules_for(d)) for d in devices]
            timed = {rule.name for _, rules in pairs for rule in rules if not isinstance(rule, DeviceAlarmRule)}
            states = db.all_states(conn, sorted(timed))
            open_ = db.open_alerts(conn)
            done = _Pass()
            new_states: dict[tuple[str, str], dict[str, Any]] = {}
            for device, rules in pairs:
                subject = subject_of(device)
                for rule in rules:
                    if isinstance(rule, DeviceAlarmRule):
                        continue
                    key = (rule.name, subject)
                    stored = states.get(key)
                    if stored is None and not isinstance(rule, OfflineRule):
                        continue
                    alert = open_.get(key)
                    decisions: list[Decision]
                    if isinstance(rule, OfflineRule):
                        off = _state(rule, stored, alert)
                        assert isinstance(off, offline.OfflineState)
                        if off.last_seen is None and device.last_seen is not None:
                            off = offline.OfflineState(device.last_seen, off.open)
                        off, decisions = offline.tick(off, now, rule.silent_after(device.attributes), rule.severity)
                        new: Any = off
                    else:
                        cond = _state(rule, stored, alert)
                        assert isinstance(cond, ConditionState)
                        assert isinstance(rule, ThresholdRule | BatteryRule)
                        new, decisions = condition_tick(cond, now, for_=rule.for_, keep_firing_for=rule.keep_firing_for)
                    for decision in decisions:
                        alert = self._apply(conn, rule, device, subject, alert, decision, done)
                    if decisions or stored is None or new.to_json() != stored:
                        new_states[key] = new.to_json()
            db.save_states(conn, new_states)
            self._notify_pass(conn, done, now)
            if self.notify:  # repeats and escalations tell people things: nothing to do in replay
                self._repeat_and_escalate(conn, now, devices)

    def _repeat_and_escalate(self, conn: psycopg.Connection, now: datetime, devices: list[Device]) -> None:
        by_ref = {d.id: d for d in devices}
        silences = db.active_silences(conn, now)
        for alert in db.open_alerts(conn).values():
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

    def resolve(self, conn: psycopg.Connection, alert_id: int, by: str, note: str | None = None) -> Alert:
        """A person closes it (and the rule starts afresh if the condition still holds)."""
        with conn.transaction():
            alert = db.get_alert(conn, alert_id, lock=True)
            if alert is None:
                raise LifecycleError(f"there is no alert {alert_id}")
            if alert.state == "resolved":
                raise LifecycleError(f"alert {alert_id} is already resolved")
            now = self.clock()
            updated = db.update_alert(conn, alert_id, {"state": "resolved", "resolved_at": now, "resolved_by": by})
            db.log(conn, alert_id, by, "resolved", from_state=alert.state, to_state="resolved", note=note)
            rule = self.rules.by_name.get(alert.rule)
            if rule is not None and alert.notifications > 0 and not alert.simulated:
                device = (
                    db.devices_by_ref(conn, [alert.device_ref]).get(alert.device_ref or -1)
                    if alert.device_ref
                    else None
                )
                if not _silenced(updated, device, db.active_silences(conn, now)):
                    self._notify(conn, updated, rule, device, "resolved", self._resolved_routes(rule, alert), now)
            return updated

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


def _state(rule: Rule, stored: dict[str, Any] | None, alert: Alert | None) -> Any:
    """The rule's state for a subject, corrected by the alerts table: an alert a person resolved is
    no longer open, whatever the state remembered."""
    data = stored or {}
    if isinstance(rule, DeviceAlarmRule):
        alarm = device_alarm.AlarmState.from_json(data)
        if alert is None and alarm.open:
            return device_alarm.AlarmState(alarm.seen, None, False, alarm.last)
        return alarm
    if isinstance(rule, OfflineRule):
        off = offline.OfflineState.from_json(data)
        resolved_by_hand = off.open and alert is None
        return offline.OfflineState(off.last_seen, alert is not None, off.rearm or resolved_by_hand)
    cond = ConditionState.from_json(data)
    if alert is None and cond.alert is not None:
        return ConditionState(last=cond.last, value=cond.value)  # a person resolved it: start afresh
    if alert is not None and cond.alert is None:  # opened by another path (a restart mid-pass cannot: one tx)
        state = "pending" if alert.state == "pending" else "firing"
        return ConditionState(cond.level, cond.since, state, alert.severity, cond.clear_since, cond.last, cond.value)  # type: ignore[arg-type]
    return cond


def _observe(
    rule: Rule, state: Any, device: Device, time: datetime, item: Reading | Event | datetime
) -> tuple[Any, list[Decision]]:
    if isinstance(rule, ThresholdRule):
        if isinstance(item, Reading):
            return levels.threshold(rule, state, time, metric_value(rule, device, item))
        return state, []
    if isinstance(rule, BatteryRule):
        if isinstance(item, Reading):
            return levels.battery(rule, state, time, item.battery_v, item.battery_pct)
        return state, []
    if isinstance(rule, DeviceAlarmRule):
        if isinstance(item, Event):
            return device_alarm.evaluate(rule, state, time, item.kind, item.attrs)
        return state, []
    if isinstance(item, datetime):  # OfflineRule: an uplink was seen
        return offline.seen(state, item)
    return state, []
