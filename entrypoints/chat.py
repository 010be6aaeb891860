"""`conversation-service chat`: talk to a model from a terminal, through the Python client.

Type a message and watch the reply stream. Ctrl-C while a reply streams stops that reply
(it is cancelled on the server and kept as written), not the program; at the prompt a first
Ctrl-C says how to leave and a second leaves, as do /quit and Ctrl-D. A dropped connection
is resumed by the client, so a reply is shown whole and once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from itertools import islice
from typing import TextIO

from conversation_service.client import (
    ChatSession,
    ChatStream,
    Client,
    ContentEvent,
    ContextScope,
    Conversation,
    ConversationServiceError,
    EndEvent,
    Model,
    ModelUnavailableError,
    ReplyFailedError,
    SessionCompletedError,
    SessionStatus,
)
from conversation_service.entrypoints.chat_arguments import (
    DEFAULT_URL,
    ENV_ORG,
    ENV_TOKEN,
    ENV_URL,
)

PROMPT = "you> "
LISTED = 20  # conversations /list shows
HELP = """\
Type a message and press Enter; its reply streams back. Ctrl-C stops a reply.
  /model [NAME|N]  list the models, or switch to one (the conversation carries on)
  /new [TITLE]     start a new conversation
  /list            list recent conversations
  /open N|ID       continue a conversation from /list
  /help            this text
  /quit            leave (or Ctrl-D, or Ctrl-C twice at the prompt)"""


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """The chat, until the user leaves: 0, or 2 when it cannot start."""
    environ = os.environ if environ is None else environ
    url = args.url or environ.get(ENV_URL) or DEFAULT_URL
    token = args.token or environ.get(ENV_TOKEN)
    org = args.org or environ.get(ENV_ORG)
    if not token or not org:
        print(f"chat: give --token and --org (or ${ENV_TOKEN} and ${ENV_ORG})", file=sys.stderr)
        return 2
    try:
        client = Client(url, token=token, org_id=org)
    except ValueError as error:
        print(f"chat: --org: {error}", file=sys.stderr)
        return 2
    with client:
        try:
            chat = Chat(client, sys.stdout)
            chat.start(args.model, args.conversation)
        except (ConversationServiceError, LookupError) as error:
            print(f"chat: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
        if sys.stdin.isatty():
            import readline  # noqa: F401 - line editing and history for input()
        print(f"Connected to {url}. Model: {chat.model.name}. /help for commands.", flush=True)
        return chat.loop(input)


class Chat:
    """The chat's state (model, conversation, session) and what each line the user types does."""

    def __init__(self, client: Client, out: TextIO) -> None:
        self.client = client
        self.out = out
        self.models: list[Model] = []
        self.model: Model
        self.conversation: Conversation | None = None
        self.session: ChatSession | None = None
        self.listed: list[Conversation] = []

    def start(self, model: str | None, conversation: str | None) -> None:
        self.models = self.client.list_models()
        if not self.models:
            raise LookupError("this organisation has no models")
        self.model = self._model(model) if model else self._model("echo", self.models[0])
        if conversation:
            self._open(conversation)

    def loop(self, read: Callable[[str], str]) -> int:
        armed = False  # a Ctrl-C at the prompt arms the next one to leave
        while True:
            try:
                line = read(PROMPT).strip()
            except EOFError:
                self.say("")
                return 0
            except KeyboardInterrupt:
                if armed:
                    self.say("")
                    return 0
                armed = True
                self.say("\n(Ctrl-C again, /quit or Ctrl-D to leave)")
                continue
            armed = False
            try:
                if line in ("/quit", "/exit"):
                    return 0
                if line.startswith("/"):
                    self.command(line)
                elif line:
                    self.send(line)
            except ConversationServiceError as error:
                self.say(f"! {error}")
            except KeyboardInterrupt:
                self.say("\n(interrupted)")

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def command(self, line: str) -> None:
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name == "/help":
            self.say(HELP)
        elif name == "/model":
            self._switch_model(rest)
        elif name == "/new":
            self.conversation, self.session = None, None
            if rest:
                self.conversation = self.client.create_conversation(rest)
            self.say("(a new conversation: it starts with your next message)")
        elif name == "/list":
            self._list()
        elif name == "/open" and rest:
            self._open(rest)
        else:
            self.say(f"(unknown command {line!r}: /help lists them)")

    def send(self, text: str) -> None:
        session = self._session_for(text)
        self.out.write(f"{self.model.name}> ")
        self.out.flush()
        try:
            end = self._follow(session, self.client.stream_chat(session.id, text))
        except KeyboardInterrupt:  # before the server took the message, or while it did
            self.client.cancel(session.id)
            self.say("\n[stopped before the reply began]")
            return
        except ReplyFailedError as failed:
            self.say(f"\n[failed: {failed.code}: {failed.message}]")
            return
        except SessionCompletedError:
            self.session = None  # closed elsewhere: the next message starts another
            raise
        except ModelUnavailableError:
            self.session = None
            self.say(f"\n(model {self.model.name} is gone: pick another with /model)")
            raise
        self.say("")
        if end is None:
            self.say("[stopped following the reply; it was asked to stop]")
        elif end.finish_reason == "cancelled":
            self.say("[stopped: the reply is kept as cancelled]")
        elif end.finish_reason != "stop":
            self.say(f"[ended: {end.finish_reason}]")

    def _follow(self, session: ChatSession, stream: ChatStream) -> EndEvent | None:
        """Show the reply as it streams; Ctrl-C cancels it, and what it wrote still shows.
        Its `end`, or None after a second Ctrl-C."""
        end = None
        with stream:  # sends the message: its errors raise here
            stopping = False
            while True:
                try:
                    for event in stream:  # goes on where it was after an interruption
                        if isinstance(event, ContentEvent):
                            self.out.write(event.text)
                            self.out.flush()
                        elif isinstance(event, EndEvent):
                            end = event
                    return end
                except KeyboardInterrupt:
                    if stopping:  # a second Ctrl-C: stop waiting for the end
                        return None
                    stopping = True
                    try:
                        self.client.cancel(session.id, message_id=stream.message_id)
                    except KeyboardInterrupt:
                        return None

    def _session_for(self, text: str) -> ChatSession:
        if self.conversation is None:
            title = " ".join(text.split())[:60]
            self.conversation = self.client.create_conversation(title)
        if self.session is None:
            # "conversation": a session started on another model, or in a conversation
            # opened again, sees what was said before it.
            self.session = self.client.create_session(
                self.conversation.id, self.model.id, context=ContextScope.CONVERSATION
            )
        return self.session

    def _model(self, wanted: str, default: Model | None = None) -> Model:
        for index, model in enumerate(self.models, start=1):
            if wanted in (model.name, str(model.id), str(index)):
                return model
        if default is not None:
            return default
        raise LookupError(f"no model {wanted!r}: /model lists them")

    def _switch_model(self, wanted: str) -> None:
        if not wanted:
            self.models = self.client.list_models()
            for index, model in enumerate(self.models, start=1):
                mark = " (current)" if model.id == self.model.id else ""
                self.say(f"  {index}. {model.name} [{model.provider}]{mark}")
            return
        try:
            model = self._model(wanted)
        except LookupError as error:
            self.say(f"({error.args[0]})")
            return
        if model.id != self.model.id:
            self.model, self.session = model, None
        self.say(f"(model: {model.name})")

    def _list(self) -> None:
        self.listed = list(islice(self.client.list_conversations(page_size=LISTED), LISTED))
        if not self.listed:
            self.say("(no conversations yet)")
        for index, conversation in enumerate(self.listed, start=1):
            mark = (
                " (current)"
                if self.conversation and conversation.id == self.conversation.id
                else ""
            )
            when = conversation.updated_at.strftime("%Y-%m-%d %H:%M")
            self.say(f"  {index}. {conversation.title}  [{when}]{mark}")

    def _open(self, wanted: str) -> None:
        if wanted.isdigit() and 1 <= int(wanted) <= len(self.listed):
            wanted = str(self.listed[int(wanted) - 1].id)
        found = self.client.get_conversation(wanted)
        self.conversation = Conversation(
            id=found.id,
            title=found.title,
            is_archived=found.is_archived,
            created_at=found.created_at,
            updated_at=found.updated_at,
        )
        # Go on in its latest open session on this model, else a new one at the next message.
        open_here = [
            s
            for s in found.sessions
            if s.model_id == self.model.id and s.status is not SessionStatus.COMPLETED
        ]
        self.session = open_here[-1] if open_here else None
        self.say(f"(conversation: {found.title})")
