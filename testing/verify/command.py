"""`conversation-service verify URL --token T --org O`: the API's state machine against a
running deployment. Added to the CLI through the `conversation_service.commands` entry
point group; it imports Hypothesis only when it runs (the `testing` extra)."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "check a running deployment against the API's model (needs the `testing` extra)"

DESCRIPTION = """\
Runs the API's rule-based state machine against a deployment: conversations, sessions,
replies streamed, left and re-attached (every event exactly once), cancelled, and second
messages while one runs (enqueue, reject, interrupt); lists and pages (order, has_more);
other organisations' ids; requests that must be refused. Every answer is checked against a
plain model; the first disagreement is printed with the steps that lead to it (--shrink:
the fewest), and the command exits 1. It writes conversations into the organisation: use
one kept for it. Sessions use the built-in echo model unless --model names another (then
reply texts are checked against what was stored, not predicted).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("url", help="the deployment's base URL, e.g. https://chat.example.com")
    parser.add_argument("--token", help="a member's or admin's token ($CONVERSATION_SERVICE_TOKEN)")
    parser.add_argument("--org", help="its organisation's id ($CONVERSATION_SERVICE_ORG)")
    parser.add_argument(
        "--other",
        action="append",
        default=[],
        metavar="ORG:TOKEN",
        help="another organisation and its token, to check that none sees another's objects",
    )
    parser.add_argument("--examples", type=int, default=10, help="sequences to run (10)")
    parser.add_argument("--steps", type=int, default=20, help="rules per sequence at most (20)")
    parser.add_argument("--model", default="echo", help="the model sessions use, name or id")
    parser.add_argument(
        "--shrink",
        action="store_true",
        help="shrink a disagreement's steps to the fewest that show it (replays them: many "
        "more requests); without, they are reported as found",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request (60)")


def run(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get("CONVERSATION_SERVICE_TOKEN")
    org = args.org or os.environ.get("CONVERSATION_SERVICE_ORG")
    if not token or not org:
        print("conversation-service verify: --token and --org are needed", file=sys.stderr)
        return 2
    try:
        import httpx

        from conversation_service.testing.verify.api import Tenant
        from conversation_service.testing.verify.run import verify
        from conversation_service.testing.verify.target import TargetError, connect
    except ImportError as missing:
        print(
            f"conversation-service verify: {missing.name} is missing; install the testing "
            "extra: pip install 'conversation-service[testing]'",
            file=sys.stderr,
        )
        return 2
    tenants = [Tenant(org_id=org, token=token)]
    for other in args.other:
        other_org, _, other_token = other.partition(":")
        tenants.append(Tenant(org_id=other_org, token=other_token))
    with httpx.Client(base_url=args.url, timeout=args.timeout) as http:
        try:
            target = connect(http, tenants, model=args.model)
        except TargetError as error:
            print(f"conversation-service verify: {error}", file=sys.stderr)
            return 2
        print(
            f"Verifying {args.url} (organisation {org}, model {target.model.name}): "
            f"{args.examples} examples of up to {args.steps} steps.",
            flush=True,
        )
        outcome = verify(target, examples=args.examples, steps=args.steps, shrink=args.shrink)
    print(outcome.report())
    return 0 if outcome.passed else 1
