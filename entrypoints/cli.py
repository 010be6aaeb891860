"""The `conversation-service` command: serve, and manage organisations and tokens."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import trio
import trio_asyncio

from adapters.access import AccessAdmin
from adapters.system import RandomIds, SystemClock
from domain.errors import DomainError
from domain.model import AccessRole
from entrypoints.bootstrap import open_store
from entrypoints.settings import Settings, SettingsError, load_settings


def _storage_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="directory of the SQLite file (./data)")
    parser.add_argument("--database-url", help="a databases URL; overrides --data-dir")


def build_parser() -> argparse.ArgumentParser:
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
    _storage_flags(token_create)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(_flags(args))
        if args.command == "serve":
            from entrypoints.server import configure_logging, run

            configure_logging()
            return run(settings)
        if args.command == "org":
            org = _with_admin(settings, lambda admin: admin.create_org(args.name))
            print(org.id)
            return 0
        if args.command == "token":
            role = AccessRole(args.role)
            issued = _with_admin(settings, lambda admin: admin.create_token(args.org, role))
            print(issued.token)
            return 0
    except (SettingsError, DomainError, ValueError) as error:
        print(f"conversation-service: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
