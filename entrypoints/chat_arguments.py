"""`conversation-service chat`'s options, apart from the chat itself: the CLI builds its parser
at every start, and the chat's client (httpx) is for `chat` alone, not in a server's memory."""

from __future__ import annotations

import argparse

ENV_URL, ENV_TOKEN, ENV_ORG = (
    "CONVERSATION_SERVICE_URL",
    "CONVERSATION_SERVICE_TOKEN",
    "CONVERSATION_SERVICE_ORG",
)
DEFAULT_URL = "http://127.0.0.1:8000"


def add_arguments(chat: argparse.ArgumentParser) -> None:
    chat.add_argument("--url", help=f"the service's base URL (${ENV_URL}, else {DEFAULT_URL})")
    chat.add_argument("--token", help=f"a bearer token (${ENV_TOKEN})")
    chat.add_argument("--org", help=f"the organisation id (${ENV_ORG})")
    chat.add_argument("--model", help="a model's name or id to start with (echo, else the first)")
    chat.add_argument("--conversation", help="the id of a conversation to continue")
