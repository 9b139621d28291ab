"""Dashboard server time: the flood-risk overview and a gully's charts on a year of a 1,000-gully fleet.

    python -m benchmarks.dashboard [--gullies 1000] [--days 365] [--repeat 30] [--quick] [--cache DIR]

Loads (once; see "Cache" below) 1,000 gullies registered with geometry, each with a year of 15-minute
readings (about 35 M rows), generated in SQL: mostly dry (the water at rest at the outlet invert, a
few mm of echo noise), about one storm in ten days over the whole town with each gully answering in
its own measure (a few storms take some gullies past the flood levels), a few gullies that drain
slowly (blocked) or silt up over the year, a few that went silent two days ago (offline) and a few
registered but never heard; a dozen care sensors with a year of their own readings (which highways
must not see, so row-level security has something to filter); the last 35 days of uplinks (the gully
page charts signal strength from them); a year of resolved alerts and some open ones of every gully
category.

Then it starts the real app (`dashboard.app.create_app` under uvicorn on loopback, connected as
lorawatch_api, so every page runs under row-level security as in production), logs in as a highways
user and times, after a warm-up, `--repeat` requests of each of:

- baseline `GET /api/v1/auth/me`: the same server's cost of a request that only authenticates;
- `GET /overview`: every gully's state, newest reading, trend and alerts;
- `GET /gullies/{id}?range=1y`: a one-year level chart (bucketed per day in the database);
- `GET /gullies/{id}?range=24h`: a 24-hour chart of raw readings;

with the gully pages rotating over ten gullies. The figure is SERVER time: the app's own
`Server-Timing: app;dur=<ms>` (dashboard/metrics.py), request received to response headers, which
includes the request's transaction and its commit; the client's wall time is printed beside it.
Targets (DESIGN.md): overview < 100 ms and one-year chart < 150 ms (median; p95 is printed too), with
the ratios to the baseline, which travel better between machines than milliseconds do.

Cache: the loaded cluster is kept in `--cache` (default `.bench-cache/`), in a directory named by the
fleet's size and DATA_VERSION, with a `meta.json` written only when the load finished. A rerun starts
that cluster and only tops the data up to now (the same generator, from where it stopped), so charts
ending "now" are always full. A full load takes several minutes and about 6 GB.

`--database-url URL` loads into an existing migrated database as its owner instead (every time, no
cache: for the smoke test, tests/integration/test_dashboard_benchmark.py, and throwaway databases).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import uvicorn

from dashboard.app import create_app
from dashboard.config import ApiSettings
from dashboard.passwords import Passwords
from lorawatch.services import Postgres, free_port
from store import access, migrate, registry, users
from store.overview import gully_overview

#: Bump when the generated data changes: a cached cluster of another version is loaded anew.
DATA_VERSION = "1"
APPLICATION = "bench-town"
USER = "bench-highways"
PASSWORD = "bench password, loopback only"  # a throwaway cluster's user
INTERVAL = timedelta(minutes=15)
#: Gullies that went silent this long before the first load's end (they have open offline alerts).
OFFLINE_FOR = timedelta(days=2)
#: Uplinks (radio metadata for the signal chart) are loaded for this much of the end of the data.
UPLINK_DAYS = 35
CARE_DEVICES = 12
TARGETS_MS = {"overview": 100.0, "chart_1y": 150.0}
WARMUP = 3
#: Centre of the made-up town (lat, lon).
TOWN = (52.6309, 1.2974)


# --- the data --------------------------------------------------------------------------------------

#: Per-gully parameters, deterministic from the device_id (so a top-up continues the same gully):
#: u1, u3 uniform in [0, 1) and ranks by other hashes. Offline: 1 % of the fleet (at least one);
#: blocked (5x slower recession): 2 %; silting (0.25 mm a day of dry-weather creep): 3 %.
_PARAMS = """
CREATE TEMP TABLE IF NOT EXISTS bench_gully AS
SELECT d.id, d.sensor_height_mm AS h, d.outlet_invert_mm AS inv,
       (abs(hashtext(d.device_id)) %% 900) AS off_s,
       0.4 + 1.2 * (hashtext(d.device_id || ':1') & 65535) / 65536.0 AS factor,
       CASE WHEN d.blocked_rank <= ceil(0.02 * d.n) THEN 5 ELSE 1 END
           * (30 + 30 * (hashtext(d.device_id || ':3') & 65535) / 65536.0) * 60 AS tau_s,
       CASE WHEN d.silt_rank <= ceil(0.03 * d.n) THEN 0.25 ELSE 0 END AS silt_mm_per_day,
       d.offline_rank <= ceil(0.01 * d.n) AS offline
FROM (SELECT id, device_id, sensor_height_mm, outlet_invert_mm, count(*) OVER () AS n,
             row_number() OVER (ORDER BY hashtext(device_id || ':2'), device_id) AS blocked_rank,
             row_number() OVER (ORDER BY hashtext(device_id || ':4'), device_id) AS silt_rank,
             row_number() OVER (ORDER BY hashtext(device_id || ':5'), device_id) AS offline_rank
      FROM devices
      WHERE kind = 'gully' AND application_id = %(app)s AND device_id LIKE 'gully-%%') d
"""

#: One storm candidate per UTC day k (about one day in ten has one): whether there is one, its start
#: (epoch seconds), rise time (s) and peak (mm above the invert for a gully of factor 1; squared, so
#: most storms are small). The level at a time adds the storms of its day and of the day before (a
#: storm is over well within a day): a linear rise, then an exponential recession of the gully's tau.
_STORM_DAY = """(hashint4({k}) & 1023) < 102 AS on{i},
       {k}::float8 * 86400 + (hashint4({k} # 7919) & 65535) %% 1440 * 60 AS start{i},
       1800.0 + (hashint4({k} # 31) & 65535) %% 3600 AS rise{i},
       ((hashint4({k} # 104729) & 65535) / 65536.0) ^ 2 * 380 AS peak{i}"""
_STORM_MM = """CASE WHEN s.on{i} AND p.e >= s.start{i} THEN s.peak{i} * g.factor * CASE
    WHEN p.e - s.start{i} < s.rise{i} THEN (p.e - s.start{i}) / s.rise{i}
    ELSE exp(-least(60, (p.e - s.start{i} - s.rise{i}) / g.tau_s)) END ELSE 0 END"""

_GULLY_READINGS = """
INSERT INTO readings (device_ref, time, distance_mm, distance_valid, battery_v, battery_pct, temperature_c)
SELECT g.id, x.t,
       CASE WHEN invalid THEN NULL ELSE round(greatest(g.h - g.inv - lvl.mm - (random() - 0.5) * 6, 30)) END,
       NOT invalid,
       round((3.62 - 0.25 * p.age_days / 365 - random() * 0.01)::numeric, 3)::real,
       round(greatest(0, 98 - 20 * p.age_days / 365))::real,
       round((10 + 7 * sin(2 * pi() * (p.e / 86400 - 110) / 365.25) + random())::numeric, 1)::real
FROM bench_gully g
CROSS JOIN LATERAL generate_series(
    to_timestamp(ceil((extract(epoch FROM %(start)s::timestamptz) - g.off_s) / 900) * 900 + g.off_s),
    %(end)s::timestamptz - interval '1 microsecond', %(step)s::interval) AS x(t)
CROSS JOIN LATERAL (SELECT extract(epoch FROM x.t)::float8 AS e, floor(extract(epoch FROM x.t) / 86400)::int AS k,
                           extract(epoch FROM x.t - %(origin)s::timestamptz) / 86400 AS age_days,
                           random() < 0.0005 AS invalid) p
CROSS JOIN LATERAL (SELECT {today}, {yesterday}) s
CROSS JOIN LATERAL (SELECT g.silt_mm_per_day * p.age_days + {mm0} + {mm1} AS mm) lvl
WHERE NOT (g.offline AND x.t >= %(silent_from)s::timestamptz)
""".format(
    today=_STORM_DAY.format(k="p.k", i=0),
    yesterday=_STORM_DAY.format(k="(p.k - 1)", i=1),
    mm0=_STORM_MM.format(i=0),
    mm1=_STORM_MM.format(i=1),
)

_CARE_READINGS = """
INSERT INTO readings (device_ref, time, occupied, motion, motion_count, temperature_c, battery_pct)
SELECT d.id, x.t, random() < 0.4, random() < 0.2, (random() * 5)::int, 20 + random() * 2, 90
FROM devices d
CROSS JOIN LATERAL generate_series(
    to_timestamp(ceil(extract(epoch FROM %(start)s::timestamptz) / 900) * 900),
    %(end)s::timestamptz - interval '1 microsecond', %(step)s::interval) AS x(t)
WHERE d.kind = 'care' AND d.application_id = %(app)s
"""

#: The uplinks of the gully readings in a range: radio metadata as ingest stores it (no payload).
_UPLINKS = """
INSERT INTO uplinks (time, uplink_key, device_id, application_id, source, f_port, f_cnt, session_key_id,
                     rssi_dbm, snr_db, gateway_count, decoder, rx_metadata)
SELECT r.time, 'tts:' || d.application_id || '/' || d.device_id || ':s1:'
                || (extract(epoch FROM r.time)::bigint / 900) || ':' || r.time,
       d.device_id, d.application_id, 'tts', 2, extract(epoch FROM r.time)::bigint / 900 %% 4294967296, 's1',
       -95 - (abs(hashtext(d.device_id)) %% 25) - random() * 6, 7 - random() * 4, 1, 'lorawatch:dragino/ldds75',
       jsonb_build_array(jsonb_build_object('gateway_ids',
           jsonb_build_object('gateway_id', 'gw-' || (abs(hashtext(d.device_id)) %% 12)), 'rssi', -97, 'snr', 6.5))
FROM readings r JOIN devices d ON d.id = r.device_ref
WHERE d.kind = 'gully' AND d.application_id = %(app)s AND r.time >= %(start)s AND r.time < %(end)s
"""

_LAST_SEEN = """
UPDATE devices d SET first_seen = coalesce(d.first_seen, s.first), last_seen = greatest(d.last_seen, s.last)
FROM (SELECT device_ref, min(time) AS first, max(time) AS last FROM readings
      WHERE time >= %(start)s AND time < %(end)s GROUP BY device_ref) s
WHERE s.device_ref = d.id
"""

#: A year of resolved alerts (about 20 a gully), and open ones: a few of each gully category, on
#: gullies that are not offline, plus the offline gullies' own alerts.
_ALERTS = (
    """
INSERT INTO alerts (rule, category, severity, subject, device_ref, device_id, application_id, kind, state,
                    opened_at, firing_at, resolved_at, value, summary)
SELECT 'gully-' || c.category, c.category, c.severity, 'device:' || g.id, g.id, d.device_id, d.application_id,
       'gully', 'resolved', o.at, o.at, o.at + interval '3 hours', 50, c.category || ' (history)'
FROM bench_gully g JOIN devices d ON d.id = g.id
CROSS JOIN generate_series(1, 20) AS n
CROSS JOIN LATERAL (SELECT %(origin)s::timestamptz
                           + (hashint4(g.id * 31 + n) & 65535) / 65536.0 * (%(first_end)s::timestamptz
                                                                           - %(origin)s::timestamptz - interval '1 day')
                           AS at) o
CROSS JOIN LATERAL (SELECT (ARRAY['flood', 'flood', 'blockage', 'silt', 'sensor_fault', 'offline'])[1 + n %% 6]
                           AS category,
                           CASE WHEN n %% 12 = 0 THEN 'critical' ELSE 'warning' END AS severity) c""",
    """
INSERT INTO alerts (rule, category, severity, subject, device_ref, device_id, application_id, kind, state,
                    opened_at, firing_at, acknowledged_at, acknowledged_by, value, summary)
SELECT CASE WHEN o.category = 'flood' THEN 'gully-flood' ELSE 'gully-' || o.category END, o.category,
       o.severity, 'device:' || g.id, g.id, d.device_id, d.application_id, 'gully',
       CASE WHEN o.rank %% 3 = 0 THEN 'acknowledged' ELSE 'firing' END,
       %(first_end)s::timestamptz - interval '90 minutes', %(first_end)s::timestamptz - interval '80 minutes',
       CASE WHEN o.rank %% 3 = 0 THEN %(first_end)s::timestamptz - interval '60 minutes' END,
       CASE WHEN o.rank %% 3 = 0 THEN 'crew-2' END, 55, o.category || ' (open)'
FROM (SELECT g.id, row_number() OVER (ORDER BY hashint4(g.id)) AS rank FROM bench_gully g WHERE NOT g.offline) r
JOIN bench_gully g ON g.id = r.id JOIN devices d ON d.id = g.id
CROSS JOIN LATERAL (SELECT r.rank,
    CASE WHEN r.rank <= %(n)s THEN 'flood' WHEN r.rank <= 3 * %(n)s THEN 'flood'
         WHEN r.rank <= 4 * %(n)s THEN 'blockage' WHEN r.rank <= 6 * %(n)s THEN 'silt'
         WHEN r.rank <= 7 * %(n)s THEN 'sensor_fault' END AS category,
    CASE WHEN r.rank <= %(n)s THEN 'critical' ELSE 'warning' END AS severity) o
WHERE o.category IS NOT NULL""",
    """
INSERT INTO alerts (rule, category, severity, subject, device_ref, device_id, application_id, kind, state,
                    opened_at, firing_at, summary)
SELECT 'gully-offline', 'offline', 'warning', 'device:' || g.id, g.id, d.device_id, d.application_id, 'gully',
       'firing', %(silent_from)s::timestamptz + interval '2 hours', %(silent_from)s::timestamptz + interval '2 hours',
       'offline (open)'
FROM bench_gully g JOIN devices d ON d.id = g.id WHERE g.offline""",
)


@dataclass(frozen=True, slots=True)
class Fleet:
    """What to load: `gullies` with data, `days` of it up to `end`."""

    gullies: int
    days: int
    end: datetime

    @property
    def never_heard(self) -> int:
        return max(1, self.gullies // 200)

    @property
    def origin(self) -> datetime:
        return self.end - timedelta(days=self.days)

    @property
    def silent_from(self) -> datetime:
        return self.end - OFFLINE_FOR


def align(t: datetime) -> datetime:
    """`t` down to a whole 15 minutes (UTC)."""
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % int(INTERVAL.total_seconds()), UTC)


def registry_csv(fleet: Fleet) -> str:
    """The fleet as a registry file: gullies on a grid round the town centre, each with its own
    geometry; the never-heard gullies; the care sensors."""
    lines = ["device_id,application_id,kind,brand_id,model_id,name,latitude,longitude,sensor_height_mm,"
             "outlet_invert_mm,care_room,care_group"]  # fmt: skip
    side = max(1, int(fleet.gullies**0.5))
    total = fleet.gullies + fleet.never_heard
    for i in range(total):
        device_id = f"gully-{i + 1:04d}" if i < fleet.gullies else f"new-gully-{i + 1 - fleet.gullies:03d}"
        lat = TOWN[0] + (i // side - side / 2) * 0.0009
        lon = TOWN[1] + (i % side - side / 2) * 0.0014
        height = 900 + (i * 37) % 400  # 900..1299 mm above the pot floor
        invert = 300 + (i * 53) % 200  # 300..499 mm
        lines.append(f"{device_id},{APPLICATION},gully,dragino,ldds75,Gully {i + 1},{lat:.6f},{lon:.6f},"
                     f"{height},{invert},,")  # fmt: skip
    for i in range(CARE_DEVICES):
        lines.append(f"care-{i + 1:02d},{APPLICATION},care,milesight-iot,vs373,,,,,,flat {i + 1},home-1")
    return "\n".join(lines) + "\n"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load(url: str, fleet: Fleet, *, quiet: bool = False) -> None:
    """Register the fleet and load its readings, uplinks and alerts into the owner's database `url`
    (migrated here), then VACUUM ANALYZE, as a production database's autovacuum would have."""
    say = (lambda _m: None) if quiet else _progress
    migrate.migrate(url)
    with psycopg.connect(url) as conn:
        result = registry.import_devices(conn, registry_csv(fleet))
        assert result.applied, result.errors
        conn.execute(
            "UPDATE devices SET location_name = 'Street ' || (id %% 97) || ', Ward ' || (id %% 7) "
            "WHERE application_id = %s AND kind = 'gully'",
            (APPLICATION,),
        )
        conn.commit()
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        t = fleet.origin
        while t < fleet.end:  # a chunk's worth at a time: each INSERT's working set stays small
            stop = min(t + timedelta(days=30), fleet.end)
            generate(conn, fleet, t, stop)
            say(f"  loaded readings to {stop:%Y-%m-%d} ({time.monotonic() - started:.0f} s)")
            t = stop
        for statement in _ALERTS:
            conn.execute(statement, _alert_params(fleet))
        say("  VACUUM ANALYZE ...")
        for table in ("devices", "readings", "uplinks", "alerts"):
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CHECKPOINT")
    say(f"  loaded in {time.monotonic() - started:.0f} s")


def _alert_params(fleet: Fleet) -> dict[str, object]:
    return {
        "origin": fleet.origin,
        "first_end": fleet.end,
        "silent_from": fleet.silent_from,
        "n": max(1, fleet.gullies // 100),
    }


def generate(conn: psycopg.Connection, fleet: Fleet, start: datetime, end: datetime) -> None:
    """The fleet's readings in [start, end), the uplinks of those after `fleet.end` - UPLINK_DAYS, and
    the devices' first/last seen. `fleet.end` is where the first load ended: later top-ups keep it
    (and with it the origin and the offline gullies' silence) and only move `end`."""
    params = {
        "app": APPLICATION,
        "start": start,
        "end": end,
        "step": INTERVAL,
        "origin": fleet.origin,
        "silent_from": fleet.silent_from,
    }
    conn.execute(_PARAMS, {"app": APPLICATION})
    conn.execute(_GULLY_READINGS, params)
    conn.execute(_CARE_READINGS, params)
    uplinks_from = max(start, fleet.end - timedelta(days=UPLINK_DAYS))
    if uplinks_from < end:
        conn.execute(_UPLINKS, {**params, "start": uplinks_from})
    conn.execute(_LAST_SEEN, params)


def top_up(url: str, fleet: Fleet, end: datetime, until: datetime) -> None:
    """Continue the fleet's data from `end` (where it stops) to `until` with the same generator, in one
    transaction (a failed top-up leaves the data as it was, so the next run can retry it)."""
    with psycopg.connect(url) as conn:
        generate(conn, fleet, end, until)
        conn.execute("ANALYZE devices")


def ensure_user(url: str) -> None:
    """The highways user the benchmark logs in as (made once per database)."""
    with psycopg.connect(url) as conn:
        if users.get_user(conn, USER) is None:
            users.create_user(conn, USER, "highways", Passwords().hash(PASSWORD))


# --- the cache -------------------------------------------------------------------------------------


def open_cached(cache: Path, gullies: int, days: int, now: datetime) -> tuple[Postgres, Fleet]:
    """The cluster holding this fleet, loaded now if no finished load is cached; started, with its data
    topped up to `now`. Stop it when done (it is kept)."""
    directory = (cache / f"dashboard-{gullies}g-{days}d-v{DATA_VERSION}").resolve()
    meta_file = directory / "meta.json"
    pg = Postgres(directory / "pg", durable=False)
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        fleet = Fleet(gullies, days, datetime.fromisoformat(meta["first_end"]))
        end = datetime.fromisoformat(meta["end"])
        _progress(f"using the cached cluster in {directory} (loaded to {end:%Y-%m-%d %H:%M} UTC)")
        pg.start()
    else:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        directory.chmod(0o711)
        fleet = Fleet(gullies, days, align(now))
        end = fleet.end
        _progress(f"loading {gullies} gullies x {days} days into {directory} (once; minutes at full size) ...")
        pg.start()
        try:
            load(pg.url, fleet)
        except BaseException:
            pg.destroy()
            raise
    until = align(now)
    if until > end:
        _progress(f"topping up the data from {end:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC ...")
        top_up(pg.url, fleet, end, until)
        end = until
    meta_file.write_text(json.dumps({"first_end": fleet.end.isoformat(), "end": end.isoformat()}))
    return pg, fleet


# --- timing ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(settings: ApiSettings) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port until the block ends; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(), log_level="warning", log_config=None)
    )
    thread = threading.Thread(target=server.run, name="bench-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        msg = "the app did not start (see its log above)"
        raise RuntimeError(msg)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(15)


def server_ms(response: httpx.Response) -> float:
    """The app's own time for a response, from its `Server-Timing: app;dur=<ms>` header."""
    for value in response.headers.get_list("server-timing"):
        for metric in value.split(","):
            name, *params = (p.strip() for p in metric.split(";"))
            if name == "app":
                for p in params:
                    if p.startswith("dur="):
                        return float(p[4:])
    msg = f"{response.request.url.path}: no Server-Timing app;dur in the response"
    raise RuntimeError(msg)


@dataclass(frozen=True, slots=True)
class Timing:
    """One request's repeated timings, milliseconds."""

    name: str
    path: str
    server: tuple[float, ...]
    wall: tuple[float, ...]
    size: int

    @property
    def median(self) -> float:
        return statistics.median(self.server)

    @property
    def p95(self) -> float:
        return percentile(self.server, 95)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)


def percentile(values: tuple[float, ...], pct: float) -> float:
    """The nearest-rank percentile (the value at or below which `pct` % of them lie)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def time_requests(client: httpx.Client, name: str, paths: list[str], repeat: int) -> Timing:
    """`repeat` GETs cycling over `paths` after one warm-up round (WARMUP per path at most)."""
    for path in paths * min(WARMUP, max(1, 10 // len(paths))):
        _get(client, path)
    server: list[float] = []
    wall: list[float] = []
    size = 0
    for i in range(repeat):
        path = paths[i % len(paths)]
        started = time.perf_counter()
        response = _get(client, path)
        wall.append((time.perf_counter() - started) * 1000)
        server.append(server_ms(response))
        size = max(size, len(response.content))
    return Timing(name, paths[0], tuple(server), tuple(wall), size)


def _get(client: httpx.Client, path: str) -> httpx.Response:
    response = client.get(path)
    if response.status_code != 200:
        msg = f"GET {path}: {response.status_code} {response.text[:300]}"
        raise RuntimeError(msg)
    return response


def chart_devices(url: str, n: int = 10) -> list[str]:
    """Gullies to chart: online ones with readings, spread over the fleet."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT device_id FROM devices WHERE application_id = %s AND kind = 'gully' AND last_seen IS NOT NULL "
            "AND last_seen > (SELECT max(last_seen) FROM devices) - interval '1 day' ORDER BY device_id",
            (APPLICATION,),
        ).fetchall()
    names = [r[0] for r in rows]
    step = max(1, len(names) // n)
    return names[::step][:n]


def time_store(owner_url: str, repeat: int) -> Timing:
    """`store.overview.gully_overview` called directly as the highways role (a connection as
    lorawatch_api, as the app's): the overview's database share, beside the page's own time."""
    times: list[float] = []
    with psycopg.connect(access.api_conninfo(owner_url)) as conn:
        access.act_as(conn, "highways")
        for i in range(WARMUP + repeat):
            started = time.perf_counter()
            found = gully_overview(conn)
            if i >= WARMUP:
                times.append((time.perf_counter() - started) * 1000)
    return Timing("store.gully_overview (direct)", "", tuple(times), tuple(times), len(found))


@dataclass(frozen=True, slots=True)
class Report:
    """The run's timings: the baseline, each page's (keys of TARGETS_MS among them) and the store's."""

    baseline: Timing
    timings: dict[str, Timing]
    store: Timing
    rows: int

    def lines(self) -> list[str]:
        out = [
            f"readings rows: {self.rows:,}",
            "",
            f"{'server time':<36}{'median':>9}{'p95':>9}{'x base':>8}{'wall med':>10}{'bytes':>10}",
        ]
        for t in (self.baseline, *self.timings.values()):
            out.append(
                f"{t.name:<36}{t.median:>7.1f}ms{t.p95:>7.1f}ms{t.median / self.baseline.median:>7.1f}x"
                f"{t.wall_median:>8.1f}ms{t.size:>10,}"
            )
        s = self.store
        out.append(f"{s.name:<36}{s.median:>7.1f}ms{s.p95:>7.1f}ms{s.median / self.baseline.median:>7.1f}x"
                   f"{'':>10}{s.size:>7} gullies")  # fmt: skip
        out.append("")
        for key, target in TARGETS_MS.items():
            t = self.timings[key]
            verdict = "PASS" if t.median < target else "FAIL"
            out.append(
                f"{t.name}: median {t.median:.1f} ms (p95 {t.p95:.1f} ms, {t.median / self.baseline.median:.0f}x "
                f"the baseline), target < {target:.0f} ms: {verdict}"
            )
        out.append("PASS" if self.passed else "BELOW TARGET")
        return out

    @property
    def passed(self) -> bool:
        return all(self.timings[k].median < v for k, v in TARGETS_MS.items())


def measure(owner_url: str, repeat: int) -> Report:
    """Serve the app on `owner_url`'s database as lorawatch_api and time the pages."""
    ensure_user(owner_url)
    devices = chart_devices(owner_url)
    with psycopg.connect(owner_url) as conn:
        count = conn.execute("SELECT count(*) FROM readings").fetchone()
    settings = ApiSettings(database_url=access.api_conninfo(owner_url))
    with serving(settings) as base, httpx.Client(base_url=base, timeout=60) as client:
        login = client.post("/api/v1/auth/login", json={"username": USER, "password": PASSWORD})
        if login.status_code != 200:
            msg = f"login failed: {login.status_code} {login.text[:300]}"
            raise RuntimeError(msg)
        baseline = time_requests(client, "GET /api/v1/auth/me (baseline)", ["/api/v1/auth/me"], repeat)
        timings = {
            "overview": time_requests(client, "GET /overview", ["/overview"], repeat),
            "chart_1y": time_requests(
                client, "GET /gullies/{id}?range=1y", [f"/gullies/{d}?range=1y" for d in devices], repeat
            ),
            "chart_24h": time_requests(
                client, "GET /gullies/{id}?range=24h", [f"/gullies/{d}?range=24h" for d in devices], repeat
            ),
        }
    store = time_store(owner_url, repeat)
    return Report(baseline, timings, store, int(count[0]) if count else 0)


def run(argv: list[str] | None = None) -> tuple[str, Report]:
    """Parse the options, load or reuse the data, measure: (the report's heading, the report)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gullies", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests of each page (after a warm-up)")
    parser.add_argument("--quick", action="store_true", help="50 gullies x 30 days, 10 requests: a smoke test")
    parser.add_argument("--cache", type=Path, default=Path(".bench-cache"), help="where the loaded cluster is kept")
    parser.add_argument("--database-url", help="load into this migrated database (as its owner) instead; no cache")
    args = parser.parse_args(argv)
    if args.quick:
        args.gullies, args.days, args.repeat = 50, 30, 10
    now = datetime.now(UTC)
    if args.database_url:
        load(args.database_url, Fleet(args.gullies, args.days, align(now)), quiet=True)
        report = measure(args.database_url, args.repeat)
    else:
        pg, _fleet = open_cached(args.cache, args.gullies, args.days, now)
        try:
            report = measure(pg.url, args.repeat)
        finally:
            pg.stop()
    heading = f"dashboard: {args.gullies} gullies x {args.days} days, {args.repeat} requests each after a warm-up"
    return heading, report


def main(argv: list[str] | None = None) -> int:
    heading, report = run(argv)
    print(heading)
    for line in report.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
