"""The `lorawatch` console script: one parser, a subcommand per job.

Settings are built here once and handed to each handler; handlers return the process exit code.
Expected failures (bad settings, unreachable servers) print one clear line, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from lorawatch import __version__
from lorawatch import logging as lw_logging
from lorawatch.settings import Settings

log = logging.getLogger("lorawatch")

Handler = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def database_url(settings: Settings) -> str:
    """The configured database URL, or a UsageError saying how to get one."""
    if settings.database_url is None:
        msg = "LORAWATCH_DATABASE_URL is not set (or run `lorawatch demo`, which starts its own database)"
        raise UsageError(msg)
    return settings.database_url.get_secret_value()


def _db_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from store import migrate

    applied = migrate.migrate(database_url(settings))
    for mig in applied:
        print(f"applied {mig.version:04d}_{mig.name}")
    if not applied:
        print("database is up to date: nothing to apply")
    feats = migrate.features(database_url(settings))
    print(f"timescaledb {feats.version} ({feats.license} edition)")
    return 0


def _db_status(args: argparse.Namespace, settings: Settings) -> int:
    from store import migrate

    rows = migrate.status(database_url(settings))
    for row in rows:
        when = row.applied_at.isoformat() if row.applied_at else "pending"
        print(f"{row.version:04d}_{row.name:<30} {when}")
    pending = sum(1 for r in rows if r.applied_at is None)
    print(f"{len(rows) - pending} applied, {pending} pending")
    return 1 if pending else 0


def _db_api_password(args: argparse.Namespace, settings: Settings) -> int:
    """Give the API's login role a password (for servers that do not trust loopback), read like the
    users' passwords: without echo, or one line of stdin with --password-stdin."""
    import psycopg

    from lorawatch.cmd_users import read_password
    from store import access

    password = read_password(args, f"password for {access.API_ROLE}: ")
    with psycopg.connect(database_url(settings)) as conn:
        access.set_api_password(conn, password)
    print(f"{access.API_ROLE} has a new password: put it in LORAWATCH_API_DATABASE_URL for `lorawatch serve`")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from store import status

    data = status.counts(database_url(settings))
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        for key, value in data.items():
            print(f"{key:<14} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lorawatch",
        description="LoRaWAN gully-level and care-sensor telemetry: ingest, store, alert, dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"lorawatch {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="read LORAWATCH_* settings from this file (KEY=value lines); the environment wins over it",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    db = sub.add_parser("db", help="database schema: migrate, status")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = db_sub.add_parser("migrate", help="apply pending schema migrations (idempotent)")
    p.set_defaults(handler=_db_migrate)
    p = db_sub.add_parser("status", help="list migrations and whether each is applied (exit 1 if any pending)")
    p.set_defaults(handler=_db_status)
    p = db_sub.add_parser(
        "api-password",
        help="set the password of the lorawatch_api role (the API's login)",
        description="Set lorawatch_api's password (hashed here with SCRAM; the server never sees it in plain).",
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line of standard input")
    p.set_defaults(handler=_db_api_password)

    p = sub.add_parser("status", help="counts of devices, uplinks, readings, events, dead letters, alerts")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_status)

    for register in _command_modules():
        register(sub)
    return parser


def _command_modules() -> list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]]:
    """Subcommands that live in their own modules (each exposes `register(subparsers)`). Imported here,
    not at the top, because those modules import this one for `UsageError` and `database_url`."""
    from lorawatch import (
        cmd_alerts,
        cmd_audit,
        cmd_demo,
        cmd_devices,
        cmd_gullies,
        cmd_ingest,
        cmd_rules,
        cmd_score,
        cmd_serve,
        cmd_simulate,
        cmd_users,
    )

    return [
        cmd_ingest.register,
        cmd_simulate.register,
        cmd_demo.register,
        cmd_devices.register,
        cmd_rules.register,
        cmd_alerts.register,
        cmd_score.register,
        cmd_gullies.register,
        cmd_serve.register,
        cmd_users.register,
        cmd_audit.register,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is not None and not args.config.is_file():
        print(f"lorawatch: --config {args.config}: no such file", file=sys.stderr)
        return 2
    try:
        settings = Settings(_env_file=args.config)  # type: ignore[call-arg]
    except ValidationError as exc:
        print(f"lorawatch: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    lw_logging.configure(settings.log_level, settings.log_format)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except UsageError as exc:
        print(f"lorawatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: one line for known failure kinds, traceback otherwise
        from lorawatch.services import ServiceError

        known: tuple[type[BaseException], ...] = (ServiceError, ConnectionError, OSError)
        try:
            import psycopg

            known = (*known, psycopg.OperationalError)
            from store.migrate import MigrationError

            known = (*known, MigrationError)
        except ImportError:  # pragma: no cover
            pass
        if isinstance(exc, known):
            print(f"lorawatch: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
