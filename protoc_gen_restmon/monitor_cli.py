"""`restmon keys …` and `restmon admin …`: API keys and admin credentials in a monitor store.

Secrets (API keys, admin tokens) are printed once, on stdout, when created; the store keeps
only their hashes, and nothing here logs them.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from protoc_gen_restmon.runtime.admin.auth import create_admin_token
from protoc_gen_restmon.runtime.admin.schemas import encode_key, encode_time
from protoc_gen_restmon.runtime.monitor.keys import create_api_key, hash_password
from protoc_gen_restmon.runtime.monitor.model import KeyType, Store, StoreError
from protoc_gen_restmon.runtime.monitor.stores import open_store

__all__ = ["main", "register"]

DEFAULT_DB = "sqlite:///restmon.db"
Command = Callable[[Store, argparse.Namespace], int]


class CommandError(Exception):
    """A user error: printed as `restmon: <message>`, exit status 1."""


def default_db() -> str:
    return os.environ.get("RESTMON_DB") or DEFAULT_DB


def register(subparsers: Any) -> None:
    """Add `keys` and `admin` to an argparse subparsers object (`parser.add_subparsers()`).

    Each command sets `run` (called as `args.run(args)`, returning the exit status), as the
    other `restmon` commands do."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=None,
        help=f"store URL (default: $RESTMON_DB, else {DEFAULT_DB})",
    )
    _register_keys(subparsers.add_parser("keys", help="manage API keys"), common)
    _register_admin(subparsers.add_parser("admin", help="manage admin credentials"), common)


def _register_keys(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", parents=[common], help="create a key (secret shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--type", required=True, choices=[t.value for t in KeyType])
    create.add_argument("--user-id", type=int)
    create.add_argument("--username", default="")
    create.add_argument("--email", default="")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", type=float, metavar="DAYS")
    expiry.add_argument("--expires-at", metavar="ISO8601")
    create.add_argument("--created-by", default=getpass.getuser() if _has_user() else "")
    create.set_defaults(run=run, monitor_command=cmd_keys_create)

    listing = sub.add_parser("list", parents=[common], help="list keys (masked)")
    active = listing.add_mutually_exclusive_group()
    active.add_argument("--active", dest="is_active", action="store_const", const=True)
    active.add_argument("--inactive", dest="is_active", action="store_const", const=False)
    listing.add_argument("--type", choices=[t.value for t in KeyType])
    listing.add_argument("--user-id", type=int)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run, monitor_command=cmd_keys_list)

    for action, function, text in (
        ("revoke", cmd_keys_revoke, "deactivate a key"),
        ("expire", cmd_keys_expire, "make a key expire now"),
    ):
        one = sub.add_parser(action, parents=[common], help=text)
        one.add_argument("id", type=int)
        one.set_defaults(run=run, monitor_command=function)


def _register_admin(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    password = sub.add_parser("set-password", parents=[common], help="set an admin's password")
    password.add_argument("user")
    password.add_argument("--password-stdin", action="store_true")
    password.set_defaults(run=run, monitor_command=cmd_admin_set_password)

    token = sub.add_parser("create-token", parents=[common], help="create a bearer token")
    token.add_argument("name")
    token.set_defaults(run=run, monitor_command=cmd_admin_create_token)

    tokens = sub.add_parser("tokens", parents=[common], help="list admin tokens")
    tokens.set_defaults(run=run, monitor_command=cmd_admin_tokens)

    revoke = sub.add_parser("revoke-token", parents=[common], help="revoke an admin token")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(run=run, monitor_command=cmd_admin_revoke_token)


def _has_user() -> bool:
    try:
        getpass.getuser()
    except (KeyError, OSError):
        return False
    return True


# --- keys ---


def cmd_keys_create(store: Store, args: argparse.Namespace) -> int:
    key, secret = create_api_key(
        store,
        args.name,
        KeyType(args.type),
        user_id=args.user_id,
        username=args.username,
        user_email=args.email,
        expires_at=_expiry(args.expires_in, args.expires_at),
        created_by=args.created_by,
    )
    print("API key created. The secret is shown only this once:")
    print(f"  {secret}")
    print(f"id: {key.id}  masked: {key.masked_key}  type: {key.key_type.value}")
    print(f"expires: {encode_time(key.expires_at) or 'never'}")
    return 0


def _expiry(days: float | None, at: str | None) -> datetime | None:
    now = datetime.now(timezone.utc)
    if days is not None:
        if days <= 0:
            raise CommandError(f"--expires-in: expected a positive number of days, got {days}")
        return now + timedelta(days=days)
    if at is None:
        return None
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--expires-at: {at!r} is not an ISO 8601 date or time") from None
    if when.tzinfo is None:
        raise CommandError(f"--expires-at: {at!r} has no time zone (add Z or +HH:MM)")
    return when.astimezone(timezone.utc)


def cmd_keys_list(store: Store, args: argparse.Namespace) -> int:
    key_type = KeyType(args.type) if args.type else None
    keys = store.keys(args.is_active, key_type, args.user_id)
    now = datetime.now(timezone.utc)
    rows = [encode_key(key, now) for key in keys]
    if args.json:
        print(json.dumps({"results": rows, "count": len(rows)}, indent=2))
        return 0
    print(f"{'ID':>5}  {'NAME':<24} {'TYPE':<12} {'KEY':<12} {'VALID':<6} {'REQUESTS':>8}  EXPIRES")
    for row in rows:
        print(
            f"{row['id']:>5}  {row['name'][:24]:<24} {row['key_type']:<12} "
            f"{row['masked_key']:<12} {'yes' if row['is_valid'] else 'no':<6} "
            f"{row['request_count']:>8}  {row['expires_at'] or 'never'}"
        )
    return 0


def cmd_keys_revoke(store: Store, args: argparse.Namespace) -> int:
    if not store.revoke_key(args.id):
        raise CommandError(f"no API key with id {args.id}")
    print(f"API key {args.id} revoked")
    return 0


def cmd_keys_expire(store: Store, args: argparse.Namespace) -> int:
    if not store.expire_key(args.id, datetime.now(timezone.utc)):
        raise CommandError(f"no API key with id {args.id}")
    print(f"API key {args.id} expired")
    return 0


# --- admin ---


def cmd_admin_set_password(store: Store, args: argparse.Namespace) -> int:
    password = _read_password(args.password_stdin)
    store.set_admin_password(args.user, hash_password(password))
    print(f"password set for admin {args.user!r}")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New admin password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise CommandError("the two passwords differ")
    if not password:
        raise CommandError("empty password")
    return password


def cmd_admin_create_token(store: Store, args: argparse.Namespace) -> int:
    token, secret = create_admin_token(store, args.name)
    print("Admin token created. It is shown only this once:")
    print(f"  {secret}")
    print(f"id: {token.id}  name: {token.name}")
    return 0


def cmd_admin_tokens(store: Store, args: argparse.Namespace) -> int:
    print(f"{'ID':>5}  {'NAME':<24} {'ACTIVE':<6}  CREATED")
    for token in store.admin_tokens():
        active = "yes" if token.is_active else "no"
        print(f"{token.id:>5}  {token.name[:24]:<24} {active:<6}  {encode_time(token.created_at)}")
    return 0


def cmd_admin_revoke_token(store: Store, args: argparse.Namespace) -> int:
    if not store.revoke_admin_token(args.id):
        raise CommandError(f"no admin token with id {args.id}")
    print(f"admin token {args.id} revoked")
    return 0


# --- entry points ---


def run(args: argparse.Namespace) -> int:
    """Open the store named by `--db`, run the chosen command, report user errors."""
    command: Command = args.monitor_command
    try:
        store = open_store(args.db or default_db())
    except StoreError as error:
        print(f"restmon: {error}", file=sys.stderr)
        return 1
    try:
        return command(store, args)
    except (CommandError, StoreError) as error:
        print(f"restmon: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="restmon", description=__doc__)
    register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
