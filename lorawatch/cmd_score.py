"""`lorawatch score CAPTURE --devices DEVICES.csv [--rules FILE] [--labels LABELS.jsonl]
[--alerts-out ALERTS.jsonl] [--report REPORT.html]`: replay a capture through the live ingest and
alert code in the data's own time, and say what it raised and, given labels, how right it was.

It never touches a real database or channel: it starts a private, throw-away PostgreSQL + TimescaleDB
in a temporary directory, imports the registry file, replays (lorawatch/scoring.py), writes every
alert as one JSON line, prints a table of alerts by rule and category, and removes the cluster. With
the simulator's labels (`simulate --out FILE` writes FILE.labels.jsonl) it prints true and false
positives, misses, duplicates and lead time per category and per rule (lorawatch/scorecard.py), and
`--report` writes the same as a self-contained HTML page with plotly charts.

Exit codes: 0 scored; 1 a file could not be read or the registry was refused (the errors are
printed); 2 bad arguments or rules.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from tqdm import tqdm

from alerts.rules import FloodRule, RulesError, RuleSet, load_rules
from lorawatch import score_report, scorecard
from lorawatch.cli import UsageError
from lorawatch.cmd_rules import rules_path
from lorawatch.scoring import replay
from lorawatch.services import Postgres
from lorawatch.settings import Settings
from simulators import capture
from store import migrate, registry
from store.records import Alert


def _score(args: argparse.Namespace, settings: Settings) -> int:
    for path, what in ((args.capture, "capture"), (args.devices, "device registry"), (args.labels, "labels")):
        if path is not None and not path.is_file():
            print(f"lorawatch: no such {what} file: {path}", file=sys.stderr)
            return 1
    labels: list[dict[str, Any]] | None = None
    if args.labels is not None:
        try:
            labels = scorecard.load_jsonl(args.labels)
        except ValueError as exc:
            print(f"lorawatch: {exc}", file=sys.stderr)
            return 1
    rules_file = args.rules or rules_path(settings)
    try:
        rules = load_rules(rules_file)
    except RulesError as exc:
        raise UsageError(f"{rules_file}: the rules have problems:\n" + "\n".join(exc.messages)) from None
    with args.capture.open("rb") as handle:
        total = sum(1 for line in handle if line.strip())
    with tempfile.TemporaryDirectory(prefix="lorawatch-score-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)
        pg = Postgres(root / "pg", durable=False).start()
        try:
            migrate.migrate(pg.url)
            with psycopg.connect(pg.url) as conn:
                imported = registry.import_devices(conn, args.devices.read_bytes())
                if not imported.applied:
                    for error in imported.errors:
                        print(error.format(str(args.devices)), file=sys.stderr)
                    return 1
                bar = tqdm(total=total, unit="msg", desc="scoring", disable=args.no_progress or None, file=sys.stderr)
                try:
                    run = replay(conn, capture.read(args.capture), rules, progress=_advance(bar))
                except ValueError as exc:  # a malformed capture line, with its number
                    print(f"lorawatch: {exc}", file=sys.stderr)
                    return 1
                finally:
                    bar.close()
        finally:
            pg.destroy()
    rows = [alert_json(alert) for alert in run.alerts]
    if args.alerts_out is not None:
        with args.alerts_out.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, sort_keys=True) + "\n")
    rate = run.messages / run.seconds if run.seconds else 0.0
    span = f"{run.first:%Y-%m-%d %H:%M} to {run.last:%Y-%m-%d %H:%M}" if run.first and run.last else "nothing"
    print(f"scored {run.messages} messages ({span}) in {run.seconds:.1f} s ({rate:.0f} msg/s): "
          f"{run.stored} uplinks stored, {run.dead_lettered} dead-lettered, {run.skipped} skipped")  # fmt: skip
    if run.straddled:  # a bug in the replay's ordering, never expected: the results may differ from live
        print(f"lorawatch: warning: {run.straddled} batches spanned a clock pass; please report this",
              file=sys.stderr)  # fmt: skip
    counts = Counter((a.rule, a.category, a.late) for a in run.alerts)
    print(f"{'rule':<24} {'category':<16} {'alerts':>7} {'late':>5}")
    for rule, category in sorted({(r, c) for r, c, _ in counts}):
        on_time, late = counts[(rule, category, False)], counts[(rule, category, True)]
        print(f"{rule:<24} {category:<16} {on_time + late:>7} {late:>5}")
    if args.alerts_out is not None:
        print(f"{len(run.alerts)} alerts written to {args.alerts_out}")
    if labels is not None and run.first is not None and run.last is not None:
        devices = scorecard.devices_from_csv(args.devices.read_text(encoding="utf-8"))
        card = scorecard.score(rows, labels, devices, run.first, run.last, flood_fill_pct=_flood_level(rules))
        print()
        print(scorecard.format_table(card))
        if args.report is not None:
            score_report.write_report(args.report, card, rows, labels)
            print(f"report written to {args.report}")
    elif args.report is not None:
        print("lorawatch: --report needs --labels (there is nothing to score against)", file=sys.stderr)
    return 0


def alert_json(alert: Alert) -> dict[str, Any]:
    """One line of ALERTS.jsonl: the alert as the API shows it, plus the care flat it is about."""
    row = alert.as_json()
    kind, _, rest = alert.subject.partition(":")
    row["care_group"] = rest if kind == "flat" else None
    return row


def _flood_level(rules: RuleSet) -> float:
    """The warning level of the first flood rule (what a storm must reach to expect a flood alert)."""
    for rule in rules.rules:
        if isinstance(rule, FloodRule) and rule.levels():
            return rule.levels()[0][1]
    return 60.0


def _advance(bar: tqdm) -> Callable[[int], None]:  # type: ignore[type-arg]
    def advance(n: int) -> None:
        bar.update(n)

    return advance


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "score",
        help="replay a capture through ingest and the alert rules in the data's own time",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("capture", type=Path, metavar="CAPTURE", help="capture file (simulate --out, record)")
    p.add_argument("--devices", type=Path, required=True, metavar="DEVICES.csv",
                   help="device registry CSV (simulate --devices-out, devices export)")  # fmt: skip
    p.add_argument("--rules", type=Path, metavar="FILE", help="rules YAML (default: LORAWATCH_RULES_FILE or shipped)")
    p.add_argument("--labels", type=Path, metavar="LABELS.jsonl",
                   help="ground truth (simulate --out F writes F.labels.jsonl) to score against")  # fmt: skip
    p.add_argument("--alerts-out", type=Path, metavar="ALERTS.jsonl", help="every alert raised, one JSON per line")
    p.add_argument("--report", type=Path, metavar="REPORT.html", help="with --labels: an HTML report with charts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=_score)
