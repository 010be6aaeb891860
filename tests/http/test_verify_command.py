"""`conversation-service verify` against a served instance: it passes; against one with a
planted fault (a test-only store wrapper that lists a conversation's last two messages the
wrong way round, as if a reply had been stored before its question) it reports the
disagreement and the steps to it, and exits 1. Another fault (a reply stored without its
last character) is found through the verifier's Python API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest

from conversation_service.domain.model import Page
from conversation_service.testing.server_thread import ServerThread, server_in_thread
from conversation_service.testing.verify import Tenant, connect
from conversation_service.testing.verify import verify as run_verification
from tests.http.conftest import settings_for

pytestmark = pytest.mark.backends("sqlite")

VERIFY = [sys.executable, "-m", "conversation_service.entrypoints.cli", "verify"]


class LastTwoSwapped:
    """The store, except that a page of messages shows its last two the other way round."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def list_messages(self, *args: Any, **kwargs: Any) -> Page[Any]:
        return _swapped(await self.inner.list_messages(*args, **kwargs))

    async def list_branch(self, *args: Any, **kwargs: Any) -> Page[Any]:
        return _swapped(await self.inner.list_branch(*args, **kwargs))  # what `messages` lists


def _swapped(page: Page[Any]) -> Page[Any]:
    items = page.items
    if len(items) >= 2:
        items = (*items[:-2], items[-1], items[-2])
    return Page(items=items, limit=page.limit, offset=page.offset, has_more=page.has_more)


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config = settings_for(
        tmp_path_factory.mktemp("verified"), echo_delay_ms=3, rate_limit="1000000/minute"
    )
    with server_in_thread(config) as running:
        yield running


def verify(server: ServerThread, *extra: str) -> subprocess.CompletedProcess[str]:
    org_id, token = server.new_org("verified")
    return subprocess.run(
        [*VERIFY, server.base_url, "--token", token, "--org", org_id, *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_verify_passes_against_a_served_instance(server: ServerThread) -> None:
    other_org, other_token = server.new_org("other")
    done = verify(server, "--examples", "4", "--other", f"{other_org}:{other_token}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: no disagreement with the model" in done.stdout


def test_verify_reports_a_reply_stored_out_of_order(server: ServerThread) -> None:
    service = server.server.services.service

    async def plant() -> None:
        service.store = LastTwoSwapped(service.store)

    server.run(plant)
    done = verify(server, "--examples", "5")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DISAGREEMENT (ordering): messages of conversation" in done.stdout
    steps = done.stdout.split("the steps that lead to it:")[1]
    assert "state = DeploymentMachine()" in steps and "state.teardown()" in steps
    assert "cs_" not in done.stdout  # no token shown


def test_verify_reports_a_reply_stored_without_its_last_character(server: ServerThread) -> None:
    store = server.server.services.store  # the one the session actors write through
    end_reply = store.end_reply

    async def cut_short(reply: Any, session: Any) -> None:
        await end_reply(attrs.evolve(reply, content=reply.content[:-1]), session)

    async def plant() -> None:
        store.end_reply = cut_short

    server.run(plant)
    org_id, token = server.new_org("verified")
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        outcome = run_verification(connect(http, [Tenant(org_id, token)]), examples=5, shrink=False)
    assert outcome.disagreement is not None, outcome.report()
    # Seen in the stored messages, or in a finished reply replayed from storage.
    assert outcome.disagreement.kind in ("stored", "reattach"), outcome.report()


def test_verify_says_what_it_cannot_do(server: ServerThread) -> None:
    org_id, token = server.new_org("verified")
    refused = subprocess.run(
        [*VERIFY, server.base_url, "--token", "cs_nonsense", "--org", org_id],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "token was refused" in refused.stderr
    no_model = verify(server, "--model", "gpt-none")
    assert no_model.returncode == 2 and "no model 'gpt-none'" in no_model.stderr
    assert token  # (made for the first call's organisation)


def test_a_plugged_command_that_cannot_load_is_named_only_when_asked_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plain `pip install .` has no Hypothesis: `serve` must start without a word about
    # `verify`, and `verify` must say what to install.
    from importlib.metadata import EntryPoint

    from conversation_service.entrypoints import cli

    broken = EntryPoint("verify", "no_such_module_here:COMMAND", cli.COMMANDS_GROUP)
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken])
    cli.build_parser()
    assert capsys.readouterr().err == ""
    assert cli.main(["verify", "http://127.0.0.1:9"]) == 2
    said = capsys.readouterr().err
    assert "not available here" in said and "conversation-service[testing]" in said


def test_the_service_own_commands_load_no_plugged_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Loading `verify` imports the testing kit (Hypothesis): 16 MiB that a server must not
    # carry. Only a command that is not the service's own looks among the plugged ones.
    from conversation_service.entrypoints import cli

    class Tripwire:
        name = "verify"

        def load(self) -> object:
            raise AssertionError("a plugged command was loaded")

    monkeypatch.setattr(cli, "entry_points", lambda group: [Tripwire()])
    monkeypatch.delenv("CONVERSATION_SERVICE_TOKEN", raising=False)
    assert cli.main(["chat", "--url", "http://127.0.0.1:9"]) == 2  # no token: says so
    assert "--token" in capsys.readouterr().err
    with pytest.raises(AssertionError, match="plugged command was loaded"):
        cli.main(["verify", "http://127.0.0.1:9"])
