"""`conversation-service chat` driven through a pseudo-terminal as a person would: typing,
watching the reply stream, Ctrl-C (sent by the terminal, as SIGINT) mid-reply, the commands,
and leaving, against a real served instance whose echo model writes a word every 200 ms."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pexpect
import pytest

from conversation_service.client import Client, MessageStatus, Role
from conversation_service.testing.served import Served

PROMPT = "you> "
LONG = " ".join(f"alpha{i}" for i in range(40))  # 41 words: about 8 s of reply


@pytest.fixture
def chat(served: Served) -> Iterator[pexpect.spawn]:
    assert served.token and served.org_id
    env = {
        **os.environ,
        "CONVERSATION_SERVICE_TOKEN": served.token,
        "CONVERSATION_SERVICE_ORG": served.org_id,
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "conversation_service.entrypoints.cli", "chat", "--url", served.base_url],
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(50, 400),
    )
    try:
        child.expect("Model: echo")
        child.expect_exact(PROMPT)
        yield child
    finally:
        child.close(force=True)


def client_of(served: Served) -> Client:
    assert served.token and served.org_id
    return Client(served.base_url, token=served.token, org_id=served.org_id)


def test_a_chat_streams_replies_stops_one_on_ctrl_c_and_keeps_the_commands(
    chat: pexpect.spawn, served: Served
) -> None:
    chat.sendline("hello there")
    chat.expect_exact("echo> Echo: hello there")
    chat.expect_exact(PROMPT)

    chat.sendline(LONG)
    chat.expect_exact("echo> Echo: alpha0 alpha1 ")  # the reply is streaming
    chat.sendintr()  # Ctrl-C, as the terminal sends it: SIGINT to the chat
    chat.expect_exact("[stopped: the reply is kept as cancelled]")
    chat.expect_exact(PROMPT)
    assert chat.isalive()  # Ctrl-C stopped the reply, not the program

    with client_of(served) as client:
        first = next(c for c in client.list_conversations() if c.title == "hello there")
        messages = list(client.list_messages(first.id))
    assert [(m.role, m.status) for m in messages] == [
        (Role.USER, MessageStatus.COMPLETED),
        (Role.ASSISTANT, MessageStatus.COMPLETED),
        (Role.USER, MessageStatus.COMPLETED),
        (Role.ASSISTANT, MessageStatus.CANCELLED),
    ]
    stopped = messages[-1].content
    assert stopped.startswith("Echo: alpha0 alpha1 ") and len(stopped) < len("Echo: " + LONG)

    chat.sendline("/new")
    chat.expect_exact("(a new conversation")
    chat.expect_exact(PROMPT)
    chat.sendline("second chat")
    chat.expect_exact("echo> Echo: second chat")
    chat.expect_exact(PROMPT)

    chat.sendline("/list")
    chat.expect(r"1\. second chat .*\(current\)")
    chat.expect(r"2\. hello there ")
    chat.expect_exact(PROMPT)

    chat.sendline("/model")
    chat.expect_exact("1. echo [echo] (current)")
    chat.expect_exact(PROMPT)
    chat.sendline("/model nonesuch")
    chat.expect_exact("no model 'nonesuch'")
    chat.expect_exact(PROMPT)

    chat.sendline("/open 2")  # back to the first conversation, from /list
    chat.expect_exact("(conversation: hello there)")
    chat.expect_exact(PROMPT)
    chat.sendline("once more")
    chat.expect_exact("echo> Echo: once more")
    chat.expect_exact(PROMPT)

    chat.sendline("/help")
    chat.expect_exact("/quit")
    chat.expect_exact(PROMPT)
    chat.sendline("/quit")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0

    with client_of(served) as client:
        contents = [m.content for m in client.list_messages(first.id)]
    assert contents[-2:] == ["once more", "Echo: once more"]


def test_ctrl_c_twice_at_the_prompt_leaves_and_once_does_not(chat: pexpect.spawn) -> None:
    chat.sendintr()
    chat.expect_exact("(Ctrl-C again, /quit or Ctrl-D to leave)")
    chat.expect_exact(PROMPT)
    assert chat.isalive()
    chat.sendintr()
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0


def test_end_of_input_leaves(chat: pexpect.spawn) -> None:
    chat.sendeof()
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0


def test_the_chat_says_what_it_needs_to_start(served: Served) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVERSATION_SERVICE_")}
    command = [sys.executable, "-m", "conversation_service.entrypoints.cli", "chat"]
    missing = subprocess.run(
        [*command, "--url", served.base_url], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode == 2 and "--token and --org" in missing.stderr
    refused = subprocess.run(
        [*command, "--url", served.base_url, "--token", "cs_wrong", "--org", str(served.org_id)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode == 2 and "401 unauthenticated" in refused.stderr
