"""Every gully label matches what the readings show: storms rise and recede, blockages recede slowly,
silt creeps, faults carry the fault, outages silence their devices, batteries run low."""

from __future__ import annotations

import statistics
from collections import defaultdict
from itertools import pairwise

import pytest

from simulators import hydrology, payloads
from simulators.hydrology import DAY, HOUR
from simulators.model import Join, Uplink
from simulators.timefmt import parse_ns

from .conftest import Run

Points = list[tuple[float, float | None, Uplink]]


def series(run: Run) -> dict[str, Points]:
    """Per device: (time, distance mm or None for no echo, uplink)."""
    out: dict[str, Points] = defaultdict(list)
    for up in run.uplinks():
        out[up.device.device_id].append((up.time, payloads.level_distance(up.device.model, up.decoded), up))
    return out


def window(points: Points, start: float, end: float) -> list[float]:
    return [d for t, d, _ in points if start <= t <= end and d is not None]


def at(points: Points, t: float) -> float:
    """The reading closest to `t`."""
    return min((abs(pt - t), d) for pt, d, _ in points if d is not None)[1]


def iso_s(text: str) -> float:
    return parse_ns(text) / 1e9


def test_storms_rise_and_recede(storms: Run):
    data = series(storms)
    checked = 0
    for label in storms.labelled("storm"):
        if storms.other_labels(label):
            continue
        points = data[label.device_id]
        before = window(points, label.start - 2 * HOUR, label.start)
        if len(before) < 4:
            continue
        baseline = statistics.median(before)
        during = [(t, d) for t, d, _ in points if label.start <= t <= label.end and d is not None]
        peak_t, peak = min(during, key=lambda p: p[1])
        assert baseline - peak >= 0.5 * label.extra["peak_mm"], label.to_dict()
        assert label.start < peak_t < label.end
        after = window(points, label.end, label.end + HOUR)
        assert abs(statistics.median(after) - baseline) <= hydrology.RECOVERED_MM + 6, label.to_dict()
        checked += 1
    assert checked >= 20


def test_a_blocked_gully_recedes_slowly(blockage: Run):
    data = series(blockage)
    checked = 0
    for block in blockage.labelled("blockage"):
        factor = block.extra["drain_time_factor"]
        for storm in blockage.labelled("storm"):
            if storm.device_id != block.device_id or storm.start < block.start:
                continue
            points = data[storm.device_id]
            base_tau = storm.extra["drain_time_s"] / factor
            rain_end = iso_s(storm.extra["rain_end"])
            baseline = statistics.median(window(points, storm.start - 2 * HOUR, storm.start))
            excess_end = baseline - at(points, rain_end)
            if excess_end < 50:
                continue
            # A clear outlet would be down to e^-3 = 5 % three drain times after the rain stops.
            assert baseline - at(points, rain_end + 3 * base_tau) >= 0.4 * excess_end
            assert storm.end - rain_end >= 5 * base_tau
            checked += 1
    assert checked >= 3


def test_silt_creeps_up(silt: Run):
    data = series(silt)
    checked = 0
    for label in silt.labelled("silt"):
        storms = [s for s in silt.labelled("storm") if s.device_id == label.device_id]
        points = [
            (t, d)
            for t, d, _ in data[label.device_id]
            if label.start + DAY <= t <= label.start + 7 * DAY
            and d is not None
            and not any(s.start - HOUR <= t <= s.end + HOUR for s in storms)
        ]
        days = [t / DAY for t, _ in points]
        slope = statistics.linear_regression(days, [d for _, d in points]).slope
        assert slope == pytest.approx(-label.extra["mm_per_day"], rel=0.25)
        checked += 1
    assert checked >= 3


def test_faults_carry_the_fault(faults: Run):
    data = series(faults)
    kinds: set[str] = set()
    for label in faults.labels:
        points = data[label.device_id]
        inside = [(t, d, up) for t, d, up in points if label.start <= t <= label.end]
        if label.label == "spike":
            i = next(i for i, (t, _, _) in enumerate(points) if t == label.start)
            spike = points[i][1]
            assert spike is not None
            for j in (i - 1, i + 1):
                neighbour = points[j][1] if 0 <= j < len(points) else None
                if neighbour is not None:
                    assert abs(spike - neighbour) > 250
        elif label.label == "stuck":
            assert len(inside) >= 2 and len({d for _, d, _ in inside}) == 1
        elif label.label == "no_echo":
            assert inside and all(d is None for _, d, _ in inside)
            assert points[0][2].device.model in payloads.NO_ECHO_MODELS
        elif label.label == "parked_vehicle":
            values = [d for _, d, _ in inside if d is not None]
            assert len(values) == len(inside) >= 2 and max(values) - min(values) <= 6
            before = window(points, label.start - 3 * HOUR, label.start)
            if before:
                assert statistics.median(values) < statistics.median(before) - 100
        elif label.label == "tilt":
            flags = [up.decoded.get("tilt", up.decoded.get("position")) for _, _, up in inside]
            assert flags and set(flags) == {"tilt"}
        else:
            continue
        kinds.add(label.label)
    assert kinds == {"spike", "stuck", "no_echo", "parked_vehicle", "tilt"}


def test_a_gateway_outage_silences_its_devices(outage: Run):
    labels = outage.labelled("gateway_outage")
    assert labels
    for label in labels:
        ups = outage.uplinks(label.device_id)
        assert not [u for u in ups if label.start <= u.time < label.end]
        assert [u for u in ups if u.time < label.start] and [u for u in ups if u.time >= label.end]
        # The device re-joins when it is heard again: FCnt starts from 0 in a new session.
        rejoin = next(r for r in outage.labelled("rejoin") if r.device_id == label.device_id and r.start >= label.end)
        first = next(u for u in ups if u.time >= rejoin.start)
        assert first.f_cnt == 0 and first.session != ups[0].session
    gateways = {label.extra["gateway_id"]: label for label in labels}
    for up in outage.uplinks():
        for rx in up.rx:
            gone = gateways.get(rx.gateway.gateway_id)
            assert gone is None or not gone.start <= up.time < gone.end


def battery_fraction(up: Uplink) -> float:
    d = up.decoded
    if "Bat" in d:
        return (float(d["Bat"]) - 3.0) / 0.65
    if "battery_voltage" in d:
        return (float(d["battery_voltage"]["value"]) - 3.0) / 0.6
    return float(d["battery"]) / 100


def test_battery_low_starts_when_the_battery_crosses_the_threshold(battery: Run):
    labels = battery.labelled("battery_low")
    assert labels
    for label in labels:
        ups = battery.uplinks(label.device_id)
        assert all(battery_fraction(u) >= 0.14 for u in ups if u.time < label.start - HOUR)
        assert all(battery_fraction(u) <= 0.16 for u in ups if u.time > label.start + HOUR)


def test_intervals_alarms_and_loss(storms: Run):
    gaps, sends, delivered, fast = [], 0, 0, 0
    for device_ups in series(storms).values():
        ups = [up for _, _, up in device_ups]
        for a, b in pairwise(ups):
            if a.session == b.session:
                sends += b.f_cnt - a.f_cnt
                delivered += 1
                gaps.append(b.time - a.time)
                fast += abs(b.time - a.time - 300) < 20
    assert statistics.median(gaps) == pytest.approx(900, abs=20)
    assert fast > 0  # storms push gullies into their alarm interval
    assert 0.9 < delivered / sends < 1.0  # some frames are lost, most arrive


def test_every_label_names_a_device_and_a_time_span(mixed: Run):
    devices = {up.device.device_id for up in mixed.uplinks()}
    kinds = {label.label for label in mixed.labels}
    assert {"storm", "rejoin"} <= kinds
    for label in mixed.labels:
        assert label.device_id in devices and label.start <= label.end
        line = label.to_dict()
        assert {"label", "device_id", "start", "end"} <= set(line)
        assert parse_ns(line["start"]) <= parse_ns(line["end"])


def test_joins_precede_fcnt_zero(mixed: Run):
    pending: set[str] = set()
    for record in mixed.records:
        if isinstance(record, Join):
            pending.add(record.device.device_id)
        elif record.device.device_id in pending:
            pending.discard(record.device.device_id)
            assert record.f_cnt == 0


def test_a_device_gone_quiet_sends_nothing_while_its_gateways_carry_its_neighbours() -> None:
    from simulators import gully
    from simulators.run import DEFAULT_START, RunConfig

    params = gully.GullyParams(storms_per_week=1.0, silences_per_week=1.0)
    sim = gully.build(RunConfig(fleet=20, seed=5, start=DEFAULT_START, duration=7 * DAY), params, "quiet")
    records = list(sim.records())
    labels = [label for label in sim.sorted_labels() if label.label == "offline"]
    assert labels
    for label in labels:
        ups = [r for r in records if isinstance(r, Uplink) and r.device.device_id == label.device_id]
        assert not [u for u in ups if label.start <= u.time < label.end]
        assert [u for u in ups if u.time < label.start]
        assert label.end >= sim.end or [u for u in ups if u.time >= label.end]
        others = [r for r in records if isinstance(r, Uplink) and r.device.device_id != label.device_id]
        assert [u for u in others if label.start <= u.time < label.end]  # the network is up meanwhile
