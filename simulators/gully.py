"""Gully scenarios: a fleet of level sensors under road gully grates, with weather, blockages, silt,
sensor faults, gateway outages, battery decay and re-joins, and the ground truth of all of it.

The plan (storms, outages, per-gully geometry, faults) is drawn first from seeded generators; labels
come from the plan; the readings are then computed from the same plan, uplink by uplink.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from simulators import fleet, hydrology, payloads
from simulators.hydrology import DAY, HOUR, GullyGeometry, Pot, Storm, Window
from simulators.model import Device, Gateway, Label, Placement, Record
from simulators.payloads import LevelState
from simulators.run import RunConfig
from simulators.simulation import Simulation
from simulators.timefmt import iso
from simulators.transmitter import Outage, Outages, Transmitter

#: Level sensor models deployed in gullies, with their share of the fleet.
MODEL_MIX: dict[str, float] = {
    "dragino/ldds75": 0.35,
    "milesight-iot/em310-udl": 0.25,
    "milesight-iot/em410-rdl": 0.15,
    "milesight-iot/em500-udl": 0.15,
    "decentlab/dl-mbx": 0.10,
}
FAULT_KINDS = ("spike", "stuck", "no_echo", "parked_vehicle", "tilt")
#: Battery life fraction below which a battery_low label starts.
BATTERY_LOW = 0.15
#: A device silenced longer than this re-joins when it is heard again (its link checks failed).
REJOIN_AFTER_SILENCE_S = 2 * HOUR
_STREETS = (
    "high-st",
    "church-rd",
    "station-rd",
    "mill-ln",
    "park-ave",
    "london-rd",
    "bridge-st",
    "queens-rd",
)


@dataclass(frozen=True, slots=True)
class PlannedStorm:
    """A storm at a chosen time rather than a random one: what a demo needs to show a flood in its
    first minutes. `after_s` is measured from the run's start."""

    after_s: float
    hours: float
    peak_mm_h: float


@dataclass(frozen=True, slots=True)
class GullyParams:
    """How eventful the run is. Rates are per device per week unless stated."""

    storms_per_week: float = 2.0  # area-wide
    blockages: float = 0.0  # fraction of gullies that block during the run
    silt: float = 0.0  # fraction of gullies silting up
    faults_per_week: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    gateway_outages: int = 0  # in the whole run
    battery_decay: float = 0.0  # fraction of devices whose battery runs low during the run
    rejoins_per_week: float = 0.0
    #: a device goes quiet on its own (power, damage, a lid left over it) for 3 to 36 hours
    silences_per_week: float = 0.0
    interval_s: float = 900.0
    alarm_interval_s: float = 300.0
    alarm_excess_mm: float = 150.0  # water this far over the invert makes devices report faster
    #: storms at set times, besides the random ones (keep them clear of the random ones' slots)
    planned_storms: tuple[PlannedStorm, ...] = ()
    #: gullies (device ids) blocked from the run's start, their drain time `blocked_factor` x longer
    blocked_from_start: tuple[str, ...] = ()
    blocked_factor: float = 25.0
    #: side of the square (km) the gullies and gateways are scattered over; None: grows with the fleet
    spread_km: float | None = None


@dataclass(frozen=True, slots=True)
class Fault:
    """A sensor fault window. `value` is the plateau distance (parked_vehicle) or the tilt factor."""

    kind: str
    start: float
    end: float
    value: float = 0.0


@dataclass
class Site:
    """One gully: the device, its pot, its battery and its planned faults."""

    device: Device
    pot: Pot
    battery0: float
    battery_per_day: float
    temperature_c: float | None  # mean probe temperature; None without a probe
    faults: list[Fault]
    rejoins: list[float]
    f_cnt0: int
    phase: float
    silences: list[Window] = field(default_factory=list)


def build(config: RunConfig, params: GullyParams, scenario: str) -> Simulation:
    """Plan and wire a gully run."""
    models = payloads.available([m for m in MODEL_MIX if m in payloads.LEVEL_FORMATS])
    if not models:
        msg = "no level-sensor codec is registered in decoders; gully scenarios need at least one"
        raise RuntimeError(msg)
    rng = config.rng("gully-plan")
    app = fleet.application(rng, "gully-net", "council", "Council Highways")
    spread = params.spread_km or max(2.0, math.sqrt(config.fleet) * 0.4)
    gws = fleet.gateways(rng, max(2, config.fleet // 25 + 1), "highways", spread)
    community = fleet.packet_broker_gateway(rng, "community-gw-centre")
    storms = _storms(config.rng("weather"), config, params)
    outages = Outages()  # filled in once the devices (and so who depends on which gateway) are known
    labels: list[Label] = []
    sim = Simulation(scenario, config.start, config.end, [], [], labels)
    profiles: dict[str, tuple[str, str]] = {}
    weights = [MODEL_MIX[m] for m in models]
    for i in range(config.fleet):
        device_id = f"gully-{i + 1:04d}"
        drng = config.rng("gully", device_id)
        model = drng.choices(models, weights)[0]
        position = fleet.scatter(drng, spread)
        links = fleet.links_for(
            drng,
            position,
            gws,
            extra_loss_db=drng.uniform(6.0, 14.0),
            community=community if drng.random() < 0.1 else None,
        )
        device = fleet.device(
            drng,
            device_id=device_id,
            model=model,
            app=app,
            links=links,
            attributes={"street": drng.choice(_STREETS), "asset": f"GU{100000 + i}"},
            profiles=profiles,
        )
        site = _site(drng, config, params, device, storms, labels)
        site.silences = _silences(config.rng("silence", device_id), config, params, device, labels)
        sim.devices.append(device)
        sim.placements.append(_placement(device, position, site.pot.geometry))
        tx = Transmitter(device, drng, loss=config.loss, outages=outages, f_cnt=site.f_cnt0)
        sim.streams.append(_stream(site, tx, config, params, labels))
    outages.items = tuple(_outages(config.rng("outages"), config, params, gws, sim.devices))
    for device in sim.devices:
        labels.extend(_outage_labels(device, outages))
    sim.expected_uplinks = int(config.fleet * config.duration / params.interval_s)
    return sim


def _placement(device: Device, position: tuple[float, float], geometry: GullyGeometry) -> Placement:
    """The registry's view of a gully: its asset number and street, where it is, its pot's geometry."""
    return Placement(
        device=device,
        kind="gully",
        name=f"{device.attributes['asset']} {device.attributes['street']}",
        latitude=round(position[0], 6),
        longitude=round(position[1], 6),
        sensor_height_mm=round(geometry.sensor_height_mm, 1),
        outlet_invert_mm=round(geometry.outlet_invert_mm, 1),
    )


def _storms(rng: random.Random, config: RunConfig, params: GullyParams) -> list[Storm]:
    """Storms spread over the run, one per slot, so they never overlap; then the planned ones."""
    count = round(params.storms_per_week * config.duration / (7 * DAY))
    if params.storms_per_week > 0:
        count = max(count, 1)
    storms = []
    slot = config.duration / max(count, 1)
    for k in range(count):
        hours = rng.uniform(1.0, min(5.0, slot / HOUR / 4))
        start = config.start + k * slot + rng.uniform(0.05, 0.5) * slot
        storms.append(hydrology.make_storm(rng, k + 1, start, hours, rng.uniform(4.0, 25.0)))
    for k, planned in enumerate(params.planned_storms, start=len(storms) + 1):
        # Its own generator: the random storms are the same with or without planned ones.
        srng = config.rng("planned-storm", k)
        storms.append(hydrology.make_storm(srng, k, config.start + planned.after_s, planned.hours, planned.peak_mm_h))
    return storms


def _outages(
    rng: random.Random, config: RunConfig, params: GullyParams, gws: list[Gateway], devices: list[Device]
) -> list[Outage]:
    """Outages of the gateways that are the only one hearing the most devices (an outage nobody
    notices shows nothing), each lasting 3 to 10 hours."""
    sole = {g.gateway_id: 0 for g in gws}
    for device in devices:
        ids = {link.gateway.gateway_id for link in device.links}
        if len(ids) == 1 and (only := next(iter(ids))) in sole:
            sole[only] += 1
    ranked = sorted(gws, key=lambda g: -sole[g.gateway_id])
    outages = []
    for k in range(params.gateway_outages):
        gateway = ranked[k % len(ranked)]
        start = config.start + rng.uniform(0.1, 0.7) * config.duration
        outages.append(Outage(gateway.gateway_id, start, start + rng.uniform(3.0, 10.0) * HOUR))
    return outages


def _geometry(rng: random.Random) -> GullyGeometry:
    height = rng.uniform(900.0, 1300.0)
    return GullyGeometry(
        sensor_height_mm=height,
        outlet_invert_mm=rng.uniform(350.0, 600.0),
        drain_time_s=rng.uniform(10.0, 60.0) * 60.0,
        catchment=rng.uniform(15.0, 40.0),
        max_level_mm=height - 320.0,
    )


def _site(
    rng: random.Random,
    config: RunConfig,
    params: GullyParams,
    device: Device,
    storms: list[Storm],
    labels: list[Label],
) -> Site:
    """Draw one gully's geometry, condition and faults, and label what the plan makes happen."""
    geometry = _geometry(rng)
    rain_factor = rng.uniform(0.7, 1.3)
    start, end = config.start, config.end
    blockages: list[Window] = []
    if rng.random() < params.blockages:
        latest = max((s.start for s in storms), default=end) - HOUR
        b_start = rng.uniform(start, max(start, latest))
        blockages.append(Window(b_start, end, rng.uniform(15.0, 40.0)))
        labels.append(
            Label(
                "blockage",
                device.device_id,
                b_start,
                end,
                {"drain_time_factor": round(blockages[0].factor, 1)},
            )
        )
    if device.device_id in params.blocked_from_start and not blockages:
        blockages.append(Window(start, end, params.blocked_factor))
        labels.append(Label("blockage", device.device_id, start, end, {"drain_time_factor": params.blocked_factor}))
    silt = None
    if rng.random() < params.silt:
        silt = (rng.uniform(start, start + 0.2 * config.duration), rng.uniform(4.0, 10.0))
        labels.append(Label("silt", device.device_id, silt[0], end, {"mm_per_day": round(silt[1], 1)}))
    pot = Pot(geometry, storms, rain_factor, blockages, silt)
    for storm in storms:
        peak, peak_t, recovered = hydrology.storm_response(geometry, storm, rain_factor, pot.drain_time(storm.start))
        if peak >= 2 * hydrology.RECOVERED_MM:
            labels.append(
                Label(
                    "storm",
                    device.device_id,
                    storm.start,
                    min(recovered, end),
                    {
                        "storm_id": storm.storm_id,
                        "rain_end": iso(storm.end),
                        "peak_mm": round(peak, 1),
                        "peak_at": iso(peak_t),
                        "drain_time_s": round(pot.drain_time(storm.start)),
                    },
                )
            )
    battery0, per_day = rng.uniform(0.5, 1.0), 1.0 / (3 * 365)
    if rng.random() < params.battery_decay:
        battery0 = rng.uniform(0.3, 0.5)
        crossing = start + rng.uniform(0.2, 0.8) * config.duration
        per_day = (battery0 - BATTERY_LOW) / ((crossing - start) / DAY)
        labels.append(Label("battery_low", device.device_id, crossing, end, {"battery_fraction": BATTERY_LOW}))
    faults = _faults(rng, config, params, device, geometry)
    for fault in faults:
        if fault.kind != "spike":
            extra = {"tilt_factor": round(fault.value, 2)} if fault.kind == "tilt" else {}
            labels.append(Label(fault.kind, device.device_id, fault.start, fault.end, extra))
    weeks = config.duration / (7 * DAY)
    rejoins = sorted(rng.uniform(start, end) for _ in range(_poisson(rng, params.rejoins_per_week * weeks)))
    return Site(
        device=device,
        pot=pot,
        battery0=battery0,
        battery_per_day=per_day,
        # The LDDS75's DS18B20 probe is an optional extra that most gully installations leave off.
        temperature_c=rng.uniform(8.0, 13.0) if device.model != "dragino/ldds75" or rng.random() < 0.3 else None,
        faults=faults,
        rejoins=rejoins,
        f_cnt0=rng.randrange(100, 40000),
        phase=rng.uniform(0.0, params.interval_s),
    )


def _faults(
    rng: random.Random, config: RunConfig, params: GullyParams, device: Device, g: GullyGeometry
) -> list[Fault]:
    """Non-overlapping fault windows of the kinds this model can show."""
    kinds = [
        k
        for k in params.fault_kinds
        if (k != "no_echo" or device.model in payloads.NO_ECHO_MODELS)
        and (k != "tilt" or device.model in payloads.TILT_MODELS)
    ]
    count = _poisson(rng, params.faults_per_week * config.duration / (7 * DAY)) if kinds else 0
    faults: list[Fault] = []
    for _ in range(count):
        kind = rng.choice(kinds)
        lasting = {"spike": 0.0, "stuck": rng.uniform(6, 48), "no_echo": rng.uniform(2, 24)}
        lasting |= {"parked_vehicle": rng.uniform(1, 10), "tilt": rng.uniform(24, 96)}
        start = rng.uniform(config.start + HOUR, config.end - 2 * HOUR)
        end = min(start + lasting[kind] * HOUR, config.end)
        if any(start < f.end + HOUR and f.start < end + HOUR for f in faults):
            continue
        baseline = g.sensor_height_mm - g.outlet_invert_mm
        value = {
            "parked_vehicle": max(320.0, baseline - rng.uniform(150.0, 300.0)),
            "tilt": rng.uniform(1.15, 1.4),
        }
        faults.append(Fault(kind, start, end, value.get(kind, 0.0)))
    return sorted(faults, key=lambda f: f.start)


def _silences(
    rng: random.Random, config: RunConfig, params: GullyParams, device: Device, labels: list[Label]
) -> list[Window]:
    """Windows in which the device itself sends nothing (its own generator: the rest of the plan is the
    same with or without them). Labelled `offline`."""
    out: list[Window] = []
    for _ in range(_poisson(rng, params.silences_per_week * config.duration / (7 * DAY))):
        start = rng.uniform(config.start + 6 * HOUR, config.end - 6 * HOUR)
        end = min(start + rng.uniform(3.0, 36.0) * HOUR, config.end)
        if any(start < w.end + HOUR and w.start < end + HOUR for w in out):
            continue
        out.append(Window(start, end))
        labels.append(Label("offline", device.device_id, start, end))
    return sorted(out, key=lambda w: w.start)


def _outage_labels(device: Device, outages: Outages) -> list[Label]:
    """An outage silences a device when every gateway that hears it is down."""
    ids = {link.gateway.gateway_id for link in device.links}
    return [
        Label("gateway_outage", device.device_id, o.start, o.end, {"gateway_id": o.gateway_id})
        for o in outages.items
        if ids == {o.gateway_id}
    ]


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the small means used here."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _stream(
    site: Site, tx: Transmitter, config: RunConfig, params: GullyParams, labels: list[Label]
) -> Iterator[Record]:
    """One gully's uplinks (and joins) in time order."""
    rng = tx.rng
    fmt = payloads.LEVEL_FORMATS[site.device.model]
    pot = site.pot
    faults = list(site.faults)
    rejoins = list(site.rejoins)
    stuck_value: dict[float, float | None] = {}
    silent_since: float | None = None
    t = config.start + site.phase
    device_id = site.device.device_id
    silences = list(site.silences)
    while t < config.end:
        while silences and silences[0].end <= t:
            silences.pop(0)
        if silences and silences[0].start <= t:
            silent_since = t if silent_since is None else silent_since
            t += params.interval_s + rng.uniform(-15.0, 15.0)
            continue
        if not tx.heard(t):
            silent_since = t if silent_since is None else silent_since
        elif silent_since is not None:
            if t - silent_since > REJOIN_AFTER_SILENCE_S:
                rejoins.insert(0, t)
            silent_since = None
        if rejoins and rejoins[0] <= t and tx.heard(t):
            rejoins.pop(0)
            yield tx.join(t)
            labels.append(Label("rejoin", device_id, t, t))
            t += rng.uniform(4.0, 8.0)
        excess = pot.excess(t)
        true_distance = pot.distance(t, excess) + rng.gauss(0.0, 1.0)  # echo jitter of a still surface
        while faults and faults[0].end < t and faults[0].kind != "spike":
            faults.pop(0)
        distance: float | None = true_distance
        tilted, force = False, False
        fault = faults[0] if faults and faults[0].start <= t else None
        if fault is not None:
            if fault.kind == "spike":
                distance = true_distance + rng.uniform(400.0, 1500.0)
                force = True
            elif fault.kind == "stuck":
                distance = stuck_value.setdefault(fault.start, true_distance)
            elif fault.kind == "no_echo":
                distance = None
            elif fault.kind == "parked_vehicle":
                distance = fault.value + rng.gauss(0.0, 0.6)
            elif fault.kind == "tilt":
                distance, tilted = true_distance * fault.value, True
        battery = site.battery0 - site.battery_per_day * (t - config.start) / DAY
        temperature = (
            None if site.temperature_c is None else site.temperature_c + 1.5 * math.sin(2 * math.pi * (t / DAY - 0.375))
        )
        alarm = excess > params.alarm_excess_mm
        decoded = fmt(LevelState(distance, battery, temperature, tilted, alarm))
        uplink = tx.send(t, decoded, force=force)
        if uplink is not None:
            if force:
                faults.pop(0)
                labels.append(Label("spike", device_id, uplink.time, uplink.time))
            yield uplink
        step = params.alarm_interval_s if alarm else params.interval_s
        t += step + rng.uniform(-15.0, 15.0)
