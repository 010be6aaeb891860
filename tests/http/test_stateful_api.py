"""The HTTP API driven as clients drive it, by the testing kit's state machine (the one
`conversation-service verify` runs), against its plain model.

Each Hypothesis example gets three new organisations, so the model knows everything in them:
each sees exactly its own conversations, in order; messages page exactly; replies streamed,
left and re-attached, cancelled, and second messages while one runs (enqueue, reject,
interrupt) are what the model says and are stored in turn; another organisation's ids are
404 and another org_id 403; bodies with one thing wrong are 400 naming it.

The machine is synchronous; the server runs in a thread of its own with its own trio loop,
started once for the module. Echo words 3 ms apart: replies long enough to be cancelled,
left or interrupted while they run, and often enough over first.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conversation_service.domain.model import AccessRole
from conversation_service.testing.server_thread import ServerThread, server_in_thread
from conversation_service.testing.verify import Tenant, connect, verify
from tests.http.conftest import settings_for


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config = settings_for(
        tmp_path_factory.mktemp("stateful"), echo_delay_ms=3, rate_limit="1000000/minute"
    )
    with server_in_thread(config) as running:
        yield running


def test_the_api_agrees_with_a_plain_model(server: ServerThread) -> None:
    def new_tenants() -> list[Tenant]:
        return [Tenant(*server.new_org(f"org-{n}", AccessRole.MEMBER)) for n in range(3)]

    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        target = connect(http, new_tenants(), fresh_tenants=new_tenants)
        outcome = verify(target, examples=25, steps=20)
    assert outcome.passed, outcome.report()
