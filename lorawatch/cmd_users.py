"""`lorawatch users add|list|disable|enable|passwd|token create|list|revoke`: the API's users and
their API tokens, managed on the owner's connection (LORAWATCH_DATABASE_URL).

Passwords are never arguments (they would sit in shell history and in `ps`): they are read from the
terminal without echo, or with `--password-stdin` as one line of standard input, for scripts. A new
API token is printed once, on standard output alone; only its hash is stored. Every change is in the
audit log, by `cli:<os user>`.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
from collections.abc import Iterator
from typing import Any

import psycopg

from dashboard.auth import normalise_username, username_problem
from dashboard.passwords import Passwords, password_problem
from dashboard.tokens import new_api_token
from lorawatch.cli import UsageError, database_url
from lorawatch.settings import Settings
from store import audit, users
from store.records import ApiToken, User


@contextlib.contextmanager
def _db(settings: Settings) -> Iterator[psycopg.Connection]:
    """The owner's connection in one transaction: a change and its audit entry commit together."""
    with psycopg.connect(database_url(settings)) as conn, conn.transaction():
        yield conn


def actor() -> str:
    """Who runs the command, for the audit log."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return f"cli:{name}"


def _username(raw: str) -> str:
    name = normalise_username(raw)
    problem = username_problem(name)
    if problem:
        raise UsageError(f"username {raw!r}: {problem}")
    return name


def read_password(args: argparse.Namespace, prompt: str) -> str:
    """The new password: one line of stdin with --password-stdin, else typed twice without echo."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(prompt)
        if getpass.getpass("again: ") != password:
            raise UsageError("the two passwords differ")
    else:
        raise UsageError("no terminal to read the password from: pass --password-stdin and write it to stdin")
    problem = password_problem(password)
    if problem:
        raise UsageError(f"password: {problem}")
    return password


def _user_json(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def _token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "username": token.username,
        "name": token.name,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


def _add(args: argparse.Namespace, settings: Settings) -> int:
    name = _username(args.username)
    password = read_password(args, f"password for {name}: ")
    hashed = Passwords(settings.password_profile).hash(password)
    with _db(settings) as conn:
        try:
            user = users.create_user(conn, name, args.role, hashed)
        except users.UserExists as exc:
            print(f"lorawatch: {exc}", file=sys.stderr)
            return 1
        audit.record(conn, actor=actor(), action="user_added", target=f"user:{name}", detail={"role": args.role})
    print(f"user {user.username} added with role {user.role}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with _db(settings) as conn:
        found = users.list_users(conn)
    if args.json:
        print(json.dumps([_user_json(u) for u in found], indent=2))
        return 0
    if not found:
        print("no users (add one with `lorawatch users add NAME --role admin`)")
    for u in found:
        last = f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"
        print(f"{u.username:<24} {u.role:<9} {'disabled' if u.disabled else 'active':<9} last login {last}")
    return 0


def _set_disabled(args: argparse.Namespace, settings: Settings, disabled: bool) -> int:
    name = _username(args.username)
    with _db(settings) as conn:
        user = users.set_disabled(conn, name, disabled)
        if user is None:
            print(f"lorawatch: there is no user {name!r}", file=sys.stderr)
            return 1
        action = "user_disabled" if disabled else "user_enabled"
        audit.record(conn, actor=actor(), action=action, target=f"user:{name}")
    print(f"user {name} {'disabled: its sessions ended, its tokens refused' if disabled else 'enabled'}")
    return 0


def _passwd(args: argparse.Namespace, settings: Settings) -> int:
    name = _username(args.username)
    with _db(settings) as conn:
        if users.get_user(conn, name) is None:
            print(f"lorawatch: there is no user {name!r}", file=sys.stderr)
            return 1
    password = read_password(args, f"new password for {name}: ")
    hashed = Passwords(settings.password_profile).hash(password)
    with _db(settings) as conn:
        if users.set_password(conn, name, hashed) is None:
            print(f"lorawatch: there is no user {name!r}", file=sys.stderr)
            return 1
        audit.record(conn, actor=actor(), action="password_changed", target=f"user:{name}")
    print(f"password of {name} changed; its sessions ended")
    return 0


def _token_create(args: argparse.Namespace, settings: Settings) -> int:
    name = _username(args.username)
    label = args.name.strip()
    if not 1 <= len(label) <= 100:
        raise UsageError("--name: 1 to 100 characters saying what the token is for")
    new = new_api_token()
    with _db(settings) as conn:
        try:
            token = users.create_token(conn, name, new.id, new.secret_hash, label)
        except LookupError as exc:
            print(f"lorawatch: {exc}", file=sys.stderr)
            return 1
        detail = {"user": name, "name": label}
        audit.record(conn, actor=actor(), action="token_created", target=f"token:{token.id}", detail=detail)
    print(f"token {token.id} for {name} ({label}); it is shown only now, store it safely:", file=sys.stderr)
    print(new.token)
    return 0


def _token_list(args: argparse.Namespace, settings: Settings) -> int:
    name = _username(args.username) if args.username else None
    with _db(settings) as conn:
        found = users.list_tokens(conn, name)
    if args.json:
        print(json.dumps([_token_json(t) for t in found], indent=2))
        return 0
    if not found:
        print("no tokens")
    for t in found:
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        print(f"{t.id}  {t.username:<24} {state:<24} last used {used:<16}  {t.name}")
    return 0


def _token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    token_id = args.id.strip().lower()
    if token_id.startswith("lw_"):  # the whole token pasted: its id is the second part
        token_id = token_id.split("_")[1] if token_id.count("_") >= 2 else token_id
    with _db(settings) as conn:
        token = users.revoke_token(conn, token_id)
        if token is None:
            print(f"lorawatch: there is no active token {token_id!r}", file=sys.stderr)
            return 1
        detail = {"user": token.username}
        audit.record(conn, actor=actor(), action="token_revoked", target=f"token:{token.id}", detail=detail)
    print(f"token {token.id} of {token.username} revoked")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `users ...` to the `lorawatch` command line."""
    p = sub.add_parser(
        "users",
        help="API users (admin, highways, care) and their API tokens",
        description="Users of the API and the dashboard, and their API tokens. Every change is audited.",
    )
    actions = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    def with_password(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password as one line of standard input"
        )

    a = actions.add_parser("add", help="add a user (the password is asked for, never an argument)")
    a.add_argument("username", metavar="NAME")
    a.add_argument("--role", required=True, choices=users.ROLES, help="what the user may see and do")
    with_password(a)
    a.set_defaults(handler=_add)

    a = actions.add_parser("list", help="list users")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(handler=_list)

    a = actions.add_parser("disable", help="disable a user: its sessions end, its tokens are refused")
    a.add_argument("username", metavar="NAME")
    a.set_defaults(handler=lambda args, settings: _set_disabled(args, settings, True))

    a = actions.add_parser("enable", help="enable a disabled user again")
    a.add_argument("username", metavar="NAME")
    a.set_defaults(handler=lambda args, settings: _set_disabled(args, settings, False))

    a = actions.add_parser("passwd", help="set a user's password (its sessions end)")
    a.add_argument("username", metavar="NAME")
    with_password(a)
    a.set_defaults(handler=_passwd)

    t = actions.add_parser("token", help="API tokens: create, list, revoke")
    tokens = t.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    a = tokens.add_parser("create", help="make an API token for a user; printed once on stdout")
    a.add_argument("username", metavar="NAME")
    a.add_argument("--name", required=True, metavar="LABEL", help="what the token is for, e.g. 'flood-map script'")
    a.set_defaults(handler=_token_create)
    a = tokens.add_parser("list", help="list API tokens (never their secrets)")
    a.add_argument("username", metavar="NAME", nargs="?", help="only this user's")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(handler=_token_list)
    a = tokens.add_parser("revoke", help="revoke an API token at once")
    a.add_argument("id", metavar="ID", help="the token's id (the 8 hex digits after lw_)")
    a.set_defaults(handler=_token_revoke)
