"""`lorawatch rules check [FILE]`: load an alert rules file the way the alert worker will, and say
what is wrong with it (every problem, `FILE:LINE: key: message`) or that it is fine.

Meant for CI and for the person editing the file: exit 0 and one `ok:` line when the file loads,
exit 1 and the problems on stderr when it does not. Without FILE it checks what the worker would
use: `LORAWATCH_RULES_FILE`, or the defaults shipped in the package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alerts.rules import DEFAULT_RULES_FILE, RulesError, describe, load_rules
from lorawatch.settings import Settings


def rules_path(settings: Settings) -> Path:
    """The rules file in force: `LORAWATCH_RULES_FILE`, else the packaged defaults."""
    return settings.rules_file if settings.rules_file is not None else DEFAULT_RULES_FILE


def _check(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file if args.file is not None else rules_path(settings)
    try:
        ruleset = load_rules(path)
    except RulesError as exc:
        for message in exc.messages:
            print(message, file=sys.stderr)
        count = len(exc.messages)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    if args.verbose:
        for rule in ruleset.rules:
            print(f"  {describe(rule)}")
    print(f"ok: {len(ruleset.rules)} rules, {len(ruleset.routes)} routes in {path}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rules check` to the `lorawatch` command line."""
    rules = sub.add_parser("rules", help="alert rules files: check")
    actions = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    p = actions.add_parser(
        "check",
        help="validate a rules file (exit 1 listing every problem)",
        description="Load a rules file strictly, as the alert worker does. Routes count `default`, which "
        "always exists (the channels configured in the environment unless the file defines it).",
    )
    p.add_argument(
        "file",
        type=Path,
        nargs="?",
        metavar="FILE",
        help="rules YAML (default: LORAWATCH_RULES_FILE, else the rules shipped with lorawatch)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="also print one line per rule")
    p.set_defaults(handler=_check)
