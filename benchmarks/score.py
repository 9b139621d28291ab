"""Scoring throughput: `lorawatch score` on a 1,000-gully x 30-day capture, against `lorawatch ingest`'s
own rate measured in the same run.

    python -m benchmarks.score [--gullies 1000] [--days 30] [--ingest-messages 30000] [--ingest-runs 2]
                               [--cache DIR]

The capture is `lorawatch simulate gully-mixed` (storms, blockages, silt, faults, outages, silences),
written once to `--cache` (default `.bench-cache/`, about 7.5 GB for the full size) and reused. Two
measurements:

- ingest (the baseline): the capture's own first `--ingest-messages` uplinks, preloaded into a private
  Mosquitto and consumed by the real Ingester into a durable TimescaleDB with the capture's registry
  (benchmarks.ingest's `lorawatch` measurement: decode, batch, COPY, acks after commit), in uplinks per
  second, `--ingest-runs` times before the score run and as many after (the machine's speed drifts),
  averaged. The same traffic on both sides, so the ratio is what scoring adds to ingesting it. For
  comparison with older figures the run also measures benchmarks.ingest's synthetic stream (smaller
  messages, one gateway each: about 25 % faster to ingest), and prints the ratio to it;
- score: the whole capture through `lorawatch score`'s replay (the same decoding, writer, change feed
  and alert engine with the shipped rules, clock passes where states are due) into its throw-away
  cluster, in uplinks per second of wall time, capture reading included.

Target (issue 11): score >= 0.5x ingest. Scoring does everything ingest does and then evaluates every
rule on every reading: ingest in one process, the engine in another; ingest alone runs two worker
processes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import psycopg

from alerts.rules import DEFAULT_RULES_FILE, load_rules
from benchmarks.ingest import _database, forget, lorawatch, preload, stream
from lorawatch.cli import main as cli
from lorawatch.scoring import replay
from lorawatch.services import Mosquitto, Postgres
from simulators import capture
from store import migrate, registry


def ensure_capture(cache: Path, gullies: int, days: int, seed: int) -> tuple[Path, Path]:
    """The capture and its registry, simulated once and kept in `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"score-gully-mixed-{gullies}x{days}d-seed{seed}.jsonl"
    devices = path.with_suffix(".csv")
    if not (path.is_file() and devices.is_file()):
        print(f"simulating {gullies} gullies x {days} days into {path} (once) ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".partial")
        code = cli(["simulate", "gully-mixed", "--fleet", str(gullies), "--duration", f"{days}d", "--seed",
                    str(seed), "--out", str(tmp), "--devices-out", str(devices), "--no-progress"])  # fmt: skip
        if code != 0:
            raise SystemExit(code)
        tmp.with_name(tmp.name + ".labels.jsonl").rename(path.with_name(path.name + ".labels.jsonl"))
        tmp.rename(path)
    return path, devices


def capture_uplinks(path: Path, n: int) -> list[tuple[str, bytes]]:
    """The capture's first `n` uplinks (the topics the ingest benchmark subscribes to)."""
    ups = (m for m in capture.read(path) if m.topic.endswith("/up"))
    return [(m.topic, m.payload.encode() if isinstance(m.payload, str) else m.payload) for m in islice(ups, n)]


def ingest_rate(root: Path, messages: list[tuple[str, bytes]], label: str, devices: Path | None = None) -> float:
    """`lorawatch ingest` on `messages` (durable cluster, two workers, `devices` registered): the same
    measurement as `python -m benchmarks.ingest`."""
    pg = Postgres(root / "pg-ingest", durable=True).start()
    broker = Mosquitto(root / "mq").start()
    try:
        url = _database(pg, "bench_score_ingest")
        if devices is not None:
            with psycopg.connect(url) as conn:
                assert registry.import_devices(conn, devices.read_bytes()).applied
        preload(broker, "bench-lorawatch", messages)  # the client id benchmarks.ingest.lorawatch connects with
        rate, counts = lorawatch(broker, url, len(messages), 2)
        forget(broker, "bench-lorawatch")
        lost = counts["published"] - counts["stored"] - counts["duplicates"] - counts["dead_letters"]
        print(f"ingest ({label}): {len(messages)} messages, {rate:.0f} msg/s, lost={lost}", flush=True)
        return rate
    finally:
        broker.stop()
        pg.destroy()


def score_rate(root: Path, path: Path, devices: Path) -> tuple[float, int, int]:
    """The whole capture through `lorawatch score`'s replay; (msg/s, messages, alerts). A batch that
    straddled a clock pass (the replay's batch span was longer than a rule allows) fails the run: the
    rate would be that of a wrong replay."""
    pg = Postgres(root / "pg-score", durable=False).start()
    try:
        migrate.migrate(pg.url)
        with psycopg.connect(pg.url) as conn:
            imported = registry.import_devices(conn, devices.read_bytes())
            assert imported.applied, imported.errors
            started = time.perf_counter()
            run = replay(conn, capture.read(path), load_rules(DEFAULT_RULES_FILE))
            seconds = time.perf_counter() - started
        if run.straddled:
            raise SystemExit(f"{run.straddled} batches straddled a clock pass: the replay's span is wrong")
        return run.messages / seconds, run.messages, len(run.alerts)
    finally:
        pg.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gullies", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ingest-messages", type=int, default=30_000, help="uplinks for the ingest baseline")
    parser.add_argument("--ingest-runs", type=int, default=2, help="ingest runs before the score run, and after")
    parser.add_argument("--cache", type=Path, default=Path(".bench-cache"), help="where the capture is kept")
    args = parser.parse_args(argv)
    path, devices = ensure_capture(args.cache, args.gullies, args.days, args.seed)
    root = Path(tempfile.mkdtemp(prefix="lorawatch-bench-score-"))
    root.chmod(0o711)
    try:
        own, synthetic = capture_uplinks(path, args.ingest_messages), stream(args.ingest_messages)

        def baselines() -> tuple[list[float], list[float]]:
            """`--ingest-runs` of each: a run of 30,000 lasts seconds, and one alone moves by a fifth."""
            mine = [ingest_rate(root, own, "this capture's uplinks", devices) for _ in range(args.ingest_runs)]
            return mine, [ingest_rate(root, synthetic, "synthetic") for _ in range(args.ingest_runs)]

        before = baselines()
        rate, messages, alerts = score_rate(root, path, devices)
        print(f"score : {messages} messages, {rate:.0f} msg/s, {alerts} alerts", flush=True)
        after = baselines()
        ingest = statistics.mean(before[0] + after[0])  # before and after: the machine's speed drifts
        ingest_synthetic = statistics.mean(before[1] + after[1])
        ratio = rate / ingest
        print(f"lorawatch ingest       : {ingest:10.0f} msg/s (this capture's uplinks, mean of "
              f"{2 * args.ingest_runs} runs before and after)")  # fmt: skip
        print(f"lorawatch score        : {rate:10.0f} msg/s")
        print(f"ratio                  : {ratio:10.2f}x   (target >= 0.5x)")
        print(f"ingest, synthetic      : {ingest_synthetic:10.0f} msg/s (benchmarks.ingest's stream; "
              f"ratio {rate / ingest_synthetic:.2f}x)")  # fmt: skip
        print("PASS" if ratio >= 0.5 else "BELOW TARGET")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
