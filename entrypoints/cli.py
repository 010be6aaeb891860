"""The `conversation-service` command: serve, manage organisations and tokens, and chat."""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from uuid import UUID

import trio
import trio_asyncio

from conversation_service.adapters.access import AccessAdmin
from conversation_service.adapters.system import RandomIds, SystemClock
from conversation_service.domain.errors import DomainError
from conversation_service.domain.model import AccessRole
from conversation_service.entrypoints import chat_arguments
from conversation_service.entrypoints.bootstrap import open_store
from conversation_service.entrypoints.settings import (
    LOG_FORMATS,
    Settings,
    SettingsError,
    load_settings,
)


def _storage_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="directory of the SQLite file (./data)")
    parser.add_argument("--database-url", help="a databases URL; overrides --data-dir")


# Commands of the service itself; any other is looked for among the plugged ones.
BUILT_IN = frozenset({"serve", "org", "token", "chat"})


def build_parser(*, plugged: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conversation-service",
        description="Conversations with language models, streamed over Server-Sent Events.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (8000; 0 picks a free one)")
    _storage_flags(serve)
    serve.add_argument("--models", type=Path, help="model registry TOML (the bundled one)")
    serve.add_argument("--echo-delay-ms", type=int, help="delay between words of the echo model")
    serve.add_argument("--rate-limit", help='requests per token, e.g. "600/minute"')
    serve.add_argument("--max-streams-per-org", type=int, help="concurrent streams per org (32)")
    serve.add_argument("--shutdown-grace", type=float, help="seconds replies get to finish (10)")
    serve.add_argument(
        "--max-connections", type=int, help="client connections served at once (512)"
    )
    serve.add_argument(
        "--lease-timeout",
        type=float,
        help="PostgreSQL: seconds before a silent instance is gone (15)",
    )
    serve.add_argument(
        "--flush-interval", type=float, help="seconds between stores of a streaming reply's text"
    )
    serve.add_argument(
        "--gather-ms",
        type=int,
        help="most a busy server lets a stream's pieces gather before one write (50; 0: none)",
    )
    serve.add_argument(
        "--log-format", choices=LOG_FORMATS, help="text (the default) or json: one object a line"
    )
    serve.add_argument(
        "--metrics-token",
        help="GET /metrics asks for this bearer token (open when unset); the environment "
        "variable keeps it out of the process list",
    )

    org = commands.add_parser("org", help="manage organisations").add_subparsers(
        dest="action", required=True
    )
    org_create = org.add_parser("create", help="create an organisation; prints its id")
    org_create.add_argument("name")
    _storage_flags(org_create)

    token = commands.add_parser("token", help="manage tokens").add_subparsers(
        dest="action", required=True
    )
    token_create = token.add_parser("create", help="create a token; prints it, once")
    token_create.add_argument("--org", required=True, type=UUID, help="organisation id")
    token_create.add_argument(
        "--role", choices=[r.value for r in AccessRole], default=AccessRole.MEMBER.value
    )
    token_create.add_argument(
        "--expires-in", type=parse_duration, help="lifetime such as 90m, 12h or 30d (none)"
    )
    _storage_flags(token_create)
    token_list = token.add_parser("list", help="list an organisation's tokens (never the tokens)")
    token_list.add_argument("--org", required=True, type=UUID, help="organisation id")
    _storage_flags(token_list)
    token_revoke = token.add_parser("revoke", help="revoke a token by its id; effective at once")
    token_revoke.add_argument("token_id", type=UUID)
    _storage_flags(token_revoke)

    chat_arguments.add_arguments(
        commands.add_parser("chat", help="chat with a model from the terminal (a client)")
    )
    if plugged:  # loading them imports them (verify: the testing kit, 16 MiB): not for serve
        _plugged_commands(commands)
    return parser


# Where the rest of the installation adds subcommands (the testing kit: `verify`). Each entry
# is a module with HELP, add_arguments(parser) and run(args) -> exit status; it is found by
# its entry point, so that nothing here imports it.
COMMANDS_GROUP = "conversation_service.commands"


def _plugged_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            command = entry.load()
        except (ImportError, AttributeError) as error:  # a broken one must not stop `serve`
            # Said when it is asked for, not at every start (`verify` needs the `testing`
            # extra, which a plain install leaves out).
            missing = commands.add_parser(entry.name, help=f"(not available: {error})")
            missing.add_argument("arguments", nargs=argparse.REMAINDER)
            missing.set_defaults(plugged=functools.partial(_not_available, entry.name, error))
            continue
        parser = commands.add_parser(entry.name, help=command.HELP)
        command.add_arguments(parser)
        parser.set_defaults(plugged=command.run)


def _not_available(name: str, error: Exception, _args: argparse.Namespace) -> int:
    print(
        f"conversation-service {name}: not available here ({error}); install the `testing` "
        "extra: pip install 'conversation-service[testing]'",
        file=sys.stderr,
    )
    return 2


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90m`, `12h`, `30d` or a number of seconds."""
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90m, 12h or 30d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2) or "s"])


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _flags(args: argparse.Namespace) -> dict[str, object]:
    return {k: v for k, v in vars(args).items() if k not in ("command", "action")}


def _with_admin(settings: Settings, job: Callable[[AccessAdmin], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with trio_asyncio.open_loop(), open_store(settings) as store:
            admin = AccessAdmin(store=store, clock=SystemClock(), ids=RandomIds())
            try:
                return await job(admin)
            except (DomainError, ValueError) as error:
                # Returned, not raised: raised inside the store's nursery it would come out
                # wrapped in an ExceptionGroup.
                return error

    result = trio.run(main)
    if isinstance(result, DomainError | ValueError):
        raise result
    return result


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for error in group.exceptions:
        leaves.extend(_leaves(error) if isinstance(error, BaseExceptionGroup) else [error])
    return leaves


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    # The top level takes no option with a value: its first other word is the command.
    chosen = next((word for word in arguments if not word.startswith("-")), None)
    args = build_parser(plugged=chosen not in BUILT_IN).parse_args(arguments)
    if args.command == "chat":  # a client of a running service: none of the server's settings
        from conversation_service.entrypoints import chat  # its client: not in a server

        return chat.run(args)
    if getattr(args, "plugged", None) is not None:
        return int(args.plugged(args))
    try:
        settings = load_settings(_flags(args))
        if args.command == "serve":
            from conversation_service.entrypoints.server import configure_logging, run

            configure_logging(settings.log_format)
            return run(settings)
        if args.command == "org":
            org = _with_admin(settings, lambda admin: admin.create_org(args.name))
            print(org.id)
            return 0
        if args.command == "token" and args.action == "create":
            role = AccessRole(args.role)
            issued = _with_admin(
                settings,
                lambda admin: admin.create_token(args.org, role, expires_in=args.expires_in),
            )
            print(issued.token)
            return 0
        if args.command == "token" and args.action == "list":
            tokens = _with_admin(settings, lambda admin: admin.list_tokens(args.org))
            print("id\trole\tcreated_at\texpires_at\trevoked_at")
            for t in tokens:
                print(
                    f"{t.id}\t{t.role.value}\t{_when(t.created_at)}\t{_when(t.expires_at)}"
                    f"\t{_when(t.revoked_at)}"
                )
            return 0
        if args.command == "token" and args.action == "revoke":
            revoked = _with_admin(settings, lambda admin: admin.revoke_token(args.token_id))
            print(f"revoked {revoked.id} at {_when(revoked.revoked_at)}")
            return 0
    except (SettingsError, DomainError, ValueError, OSError) as error:
        print(f"conversation-service: {error}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:
        # Raised inside the service's nurseries: report a configuration or storage problem
        # plainly, anything else as it is.
        expected, unexpected = group.split((DomainError, ValueError, OSError))
        if unexpected is not None or expected is None:
            raise
        for leaf in _leaves(expected):
            print(f"conversation-service: {leaf}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
