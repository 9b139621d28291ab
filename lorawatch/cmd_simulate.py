"""`lorawatch simulate`, `record` and `replay`: simulated feeds, captures of live feeds, and replays.

The handlers only translate between the command line, `Settings` and `simulators`; everything they do
is in `simulators` (which never sees `Settings`: it gets plain connection values).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lorawatch.settings import Settings, parse_mqtt_url
from simulators import capture, feed, parallel, publisher, recorder, replay, scenarios
from simulators.mqttclient import BrokerError, MqttParams
from simulators.run import RunConfig
from simulators.simulation import Simulation, write_labels
from simulators.timefmt import parse_ns
from store import registry_csv

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m`, `12h`, `7d` or `2w`."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if match is None:
        msg = f"not a duration: {text!r} (use e.g. 90s, 15m, 12h, 7d)"
        raise argparse.ArgumentTypeError(msg)
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _start(text: str) -> float:
    try:
        return parse_ns(text) / 1e9
    except ValueError:
        msg = f"not an RFC 3339 UTC time: {text!r} (e.g. 2025-11-03T00:00:00Z)"
        raise argparse.ArgumentTypeError(msg) from None


def _scenario_help() -> str:
    width = max(len(name) for name in scenarios.SCENARIOS)
    lines = [f"  {s.name:<{width}}  {s.description}" for s in scenarios.SCENARIOS.values()]
    return "scenarios:\n" + "\n".join(lines)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `simulate`, `record` and `replay` to the `lorawatch` command line."""
    p = sub.add_parser(
        "simulate",
        help="publish a simulated sensor feed (or write it to a capture file)",
        description="Generate a scenario's uplinks as TTS or ChirpStack MQTT messages, with labels.",
        epilog=_scenario_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", metavar="SCENARIO", help="scenario name (listed below)")
    p.add_argument("--fleet", type=int, default=20, help="gullies, or care residents (default 20)")
    p.add_argument("--seed", type=int, default=1, help="random seed: same seed and --start, same feed")
    p.add_argument("--format", choices=feed.FORMATS, default="tts", help="network server message format")
    p.add_argument("--duration", type=parse_duration, help="simulated time span, e.g. 12h or 7d (scenario default)")
    p.add_argument(
        "--start",
        type=_start,
        help="simulated start (RFC 3339); default: the feed ends now (--fast) or catches up with the wall clock "
        "as it ends (paced), so no uplink is dated in the future",
    )
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--fast", action="store_true", help="as fast as possible (default)")
    pace.add_argument("--realtime", action="store_true", help="in real time")
    pace.add_argument("--speed", type=float, metavar="FACTOR", help="FACTOR x real time, e.g. 60")
    p.add_argument("--out", type=Path, metavar="FILE", help="write a capture (JSON Lines) instead of publishing")
    p.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="ground-truth labels (default with --out: FILE.labels.jsonl)",
    )
    p.add_argument(
        "--devices-out",
        type=Path,
        metavar="FILE",
        help="also write the simulated fleet as a device registry CSV (for `lorawatch devices import`)",
    )
    p.add_argument("--qos", type=int, choices=(0, 1), default=0, help="publish QoS (default 0, as TTS delivers)")
    p.add_argument("--loss", type=float, default=0.01, help="chance a gateway misses a frame (default 0.01)")
    p.add_argument("--simulated", action="store_true", help='TTS "Simulate uplink" form (simulated: true)')
    p.add_argument("--no-decoded", action="store_true", help="leave out decoded_payload / object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--client-id", default="lorawatch-simulator", help="MQTT client id")
    p.add_argument(
        "--workers", type=int, default=1, help="generate in N processes (faster on several cores; ids differ per N)"
    )
    p.set_defaults(handler=simulate)

    p = sub.add_parser("record", help="capture a live MQTT feed to a JSON Lines file")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="capture file to write")
    p.add_argument("--topic", action="append", metavar="FILTER", help="topic filter (repeatable; default #)")
    p.add_argument("--count", type=int, help="stop after N messages")
    p.add_argument("--duration", type=parse_duration, help="stop after this long, e.g. 10m")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1, help="subscription QoS (default 1)")
    p.add_argument("--client-id", default="lorawatch-recorder", help="MQTT client id")
    p.set_defaults(handler=record)

    p = sub.add_parser("replay", help="replay a capture file with its timestamps shifted to now")
    p.add_argument("file", type=Path, metavar="FILE", help="capture file (from simulate --out or record)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, metavar="X", help="X x real time (default 1)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible")
    p.add_argument("--qos", type=int, choices=(0, 1), help="publish QoS (default: each message's own)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--client-id", default="lorawatch-replay", help="MQTT client id")
    p.set_defaults(handler=replay_)


def _mqtt(settings: Settings, client_id: str) -> MqttParams:
    if settings.mqtt_url is None:
        msg = "LORAWATCH_MQTT_URL is not set: set it to the broker to publish to (or use --out FILE)"
        raise BrokerError(msg)
    target = parse_mqtt_url(settings.mqtt_url.get_secret_value())
    return MqttParams(target.host, target.port, target.username, target.password, target.tls, client_id)


def _fail(message: object) -> int:
    print(f"lorawatch: {message}", file=sys.stderr)
    return 1


def simulate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        scenario = scenarios.get(args.scenario)
    except KeyError as exc:
        print(f"lorawatch: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.fleet < 1 or args.workers < 1 or not 0.0 <= args.loss < 1.0 or (args.speed or 1) <= 0:
        return _fail("--fleet and --workers must be at least 1, --loss in [0, 1) and --speed positive")
    if args.simulated and args.format != "tts":
        return _fail("--simulated is the TTS Console form: use it with --format tts")
    duration = args.duration or scenario.default_days * 86400.0
    speed = 1.0 if args.realtime else args.speed
    now = time.time() // 60 * 60
    # Paced at FACTOR x, a feed that started now would run ahead of the wall clock, and the ingester
    # refuses uplinks dated in the future: start early enough that it catches up exactly as it ends.
    lead = duration if speed is None else duration * (1 - 1 / speed) if speed > 1 else 0.0
    start = args.start if args.start is not None else now - lead
    config = RunConfig(fleet=args.fleet, seed=args.seed, start=start, duration=duration, loss=args.loss)
    try:
        params = None if args.out is not None else _mqtt(settings, args.client_id)
    except BrokerError as exc:
        return _fail(exc)
    sim = scenario.build(config)
    if args.devices_out is not None:
        n = write_devices(sim, args.format, args.devices_out)
        print(f"wrote {n} devices to {args.devices_out}", file=sys.stderr)
    decoded, simulated = not args.no_decoded, args.simulated
    source: parallel.ParallelFeed | Simulation = sim
    stream: Iterator[capture.Message]
    if args.workers > 1:
        job = parallel.Job(args.scenario, config, args.format, args.seed, args.qos, decoded, simulated)
        source = parallel.ParallelFeed(job, args.workers)
        stream = iter(source)
    else:
        stream = feed.messages(sim, args.format, args.seed, qos=args.qos, decoded=decoded, simulated=simulated)
    labels_path = args.labels or (args.out.with_name(args.out.name + ".labels.jsonl") if args.out else None)
    try:
        if params is None:
            with args.out.open("w", encoding="utf-8") as out:
                count = capture.write(_progress(stream, sim.expected_uplinks, not args.no_progress), out)
            print(f"wrote {count} messages to {args.out}", file=sys.stderr)
        else:
            shown = _progress(stream, sim.expected_uplinks, not args.no_progress)
            stats = publisher.publish(params, shown, speed=speed)
            print(
                f"published {stats.messages} messages to {params.url} in {stats.seconds:.1f} s ({stats.rate:.0f}/s)",
                file=sys.stderr,
            )
    except BrokerError as exc:
        return _fail(exc)
    finally:
        if isinstance(source, parallel.ParallelFeed):
            source.close()
    if labels_path is not None:
        with labels_path.open("w", encoding="utf-8") as out:
            n = write_labels(source.sorted_labels(), out)
        print(f"wrote {n} labels to {labels_path}", file=sys.stderr)
    return 0


def write_devices(sim: Simulation, fmt: feed.Format, path: Path) -> int:
    """The run's fleet as a device registry file, named as the devices arrive in `fmt`."""
    with path.open("w", encoding="utf-8", newline="") as out:
        return registry_csv.write_rows(feed.registry_rows(sim, fmt), out)


def _progress(stream: Iterator[capture.Message], total: int, enabled: bool) -> Iterator[capture.Message]:
    """A progress bar on a terminal (never in library code: the simulators only yield messages)."""
    from tqdm import tqdm

    yield from tqdm(stream, total=total or None, unit="msg", disable=not (enabled and sys.stderr.isatty()))


def record(args: argparse.Namespace, settings: Settings) -> int:
    try:
        params = _mqtt(settings, args.client_id)
        with args.out.open("w", encoding="utf-8") as out:
            n = recorder.record(
                params, out, args.topic or ["#"], count=args.count, duration=args.duration, qos=args.qos
            )
    except BrokerError as exc:
        return _fail(exc)
    print(f"recorded {n} messages to {args.out}", file=sys.stderr)
    return 0


def replay_(args: argparse.Namespace, settings: Settings) -> int:
    if not args.file.is_file():
        return _fail(f"no such capture file: {args.file}")
    try:
        params = _mqtt(settings, args.client_id)
        total = _count_lines(args.file)
        speed = None if args.fast else args.speed
        times = [m.time_ns for m in capture.read(args.file)]
        offset = replay.offset_for(min(times), max(times), speed) if times else 0
        stats = publisher.publish(
            params,
            _progress(replay.shifted(capture.read(args.file), offset), total, not args.no_progress),
            qos=args.qos,
            speed=speed,
        )
    except (BrokerError, ValueError) as exc:
        return _fail(exc)
    print(f"replayed {stats.messages} messages to {params.url} in {stats.seconds:.1f} s", file=sys.stderr)
    return 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())
