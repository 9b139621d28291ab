"""`lorawatch devices import FILE` and `lorawatch devices export`: the device registry as CSV.

The handlers only move bytes between files and `store.registry`, which parses, checks and applies
(docs/devices.md describes the format and the rules).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

from lorawatch.cli import UsageError, database_url
from lorawatch.settings import Settings
from store import registry
from store.registry_csv import EXPORT_HEADER

_IMPORT_HELP = f"""\
The header names device_id and any of the other columns, in any order:
  {",".join(EXPORT_HEADER)}
A column the file lacks keeps each device's stored value; an empty cell clears it (kind excepted:
gully, care or unassigned). Rows without application_id find their device by name (one in two
applications needs it). A device not registered yet is created. All or nothing: any bad row is
reported as FILE:LINE: column COLUMN: why, with every other problem found, and nothing is applied.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `devices import` and `devices export` to the `lorawatch` command line."""
    p = sub.add_parser(
        "devices",
        help="device registry: import and export CSV",
        description="The device registry (kind, model, name, location, gully geometry, care room) as CSV.",
    )
    actions = p.add_subparsers(dest="devices_command", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import",
        help="create or update devices from a registry CSV (all or nothing)",
        description="Create or update devices from a registry CSV, in one transaction.",
        epilog=_IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("file", metavar="FILE", help="registry CSV, UTF-8 with or without a BOM ('-' reads stdin)")
    imp.add_argument("--dry-run", action="store_true", help="check against the database and report; change nothing")
    imp.set_defaults(handler=import_)
    exp = actions.add_parser(
        "export",
        help="write every registered device as CSV (imports back unchanged)",
        description="Write the registry as CSV with the header " + ",".join(EXPORT_HEADER) + ".",
    )
    exp.add_argument("--out", type=Path, metavar="FILE", help="write to FILE (default: standard output)")
    exp.set_defaults(handler=export)


def import_(args: argparse.Namespace, settings: Settings) -> int:
    source = "<stdin>" if args.file == "-" else args.file
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            print(f"lorawatch: {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    with _connect(settings) as conn:
        result = registry.import_devices(conn, data, dry_run=args.dry_run)
    if result.errors:
        for error in result.errors:
            print(error.format(source), file=sys.stderr)
        count = len(result.errors)
        print(f"{source}: {count} error{'s' if count != 1 else ''}: nothing applied", file=sys.stderr)
        return 1
    counts = f"created {result.created}, updated {result.updated}, unchanged {result.unchanged}"
    if args.dry_run:
        print(f"{source}: dry run, nothing applied: would have {counts}")
    else:
        print(f"{source}: {counts}")
    return 0


def export(args: argparse.Namespace, settings: Settings) -> int:
    with _connect(settings) as conn:
        if args.out is None:
            registry.export_devices(conn, sys.stdout)
            return 0
        with args.out.open("w", encoding="utf-8", newline="") as out:
            n = registry.export_devices(conn, out)
    print(f"wrote {n} devices to {args.out}", file=sys.stderr)
    return 0


def _connect(settings: Settings) -> psycopg.Connection[TupleRow]:
    """A connection to a migrated database (a UsageError saying so otherwise)."""
    conn = psycopg.connect(database_url(settings))
    try:
        conn.execute("SELECT 1 FROM devices LIMIT 0")
    except psycopg.errors.UndefinedTable:
        conn.close()
        msg = "the database has no device registry yet: run `lorawatch db migrate` first"
        raise UsageError(msg) from None
    conn.rollback()
    return conn
