"""The testing kit's pytest plugin, loaded through the `pytest11` entry point wherever the
package is installed. Its fixtures start nothing until a test asks for one:

- `in_process_service`: the service in the test's process over a new in-memory store and a
  scripted catalog (`testing.in_process.InProcessService`); async, needs pytest-trio.
  `in_process_actor_settings` (None: the defaults) may be overridden.
- `served_service`: the real server on a free port (a thread of the test process, SQLite in
  a temporary folder, the echo model 1 ms a word, no request rate limit), one for the test
  session, stopped at its end (`testing.server_thread.ServerThread`). Override
  `served_service_settings` (session scope) to change its Settings, e.g.
  `{"models": registry_file(...), "database_url": "postgresql://..."}`.
- `served_org`: a new organisation on that server with an admin token, for one test
  (`ServedOrg`: `base_url`, `org_id`, `token`, `client()`, `async_client()`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conversation_service.adapters.actors.session_actor import ActorSettings
    from conversation_service.testing.in_process import InProcessService
    from conversation_service.testing.server_thread import ServedOrg, ServerThread


@pytest.fixture
def in_process_actor_settings() -> ActorSettings | None:
    """The session actors' settings of `in_process_service` (None: the defaults)."""
    return None


@pytest.fixture
async def in_process_service(
    in_process_actor_settings: ActorSettings | None,
) -> AsyncIterator[InProcessService]:
    """The service in this process over a new in-memory store and a ScriptedCatalog."""
    from conversation_service.testing.in_process import open_in_process_service

    async with open_in_process_service(settings=in_process_actor_settings) as running:
        yield running


@pytest.fixture(scope="session")
def served_service_settings() -> dict[str, Any]:
    """Settings of `served_service` over the kit's (override in a conftest.py)."""
    return {}


@pytest.fixture(scope="session")
def served_service(
    served_service_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """The real server on a free port for the test session, stopped at its end."""
    from conversation_service.entrypoints.settings import Settings
    from conversation_service.testing.server_thread import server_in_thread

    settings = Settings(
        **{
            "port": 0,
            "data_dir": tmp_path_factory.mktemp("served_service") / "data",
            "echo_delay_ms": 1,
            "rate_limit": "1000000/minute",
            "shutdown_grace": 2.0,
            **served_service_settings,
        }
    )
    with server_in_thread(settings) as server:
        yield server


@pytest.fixture
def served_org(served_service: ServerThread) -> ServedOrg:
    """A new organisation on `served_service`, with an admin token."""
    from conversation_service.testing.server_thread import ServedOrg

    org_id, token = served_service.new_org("served_org")
    return ServedOrg(base_url=served_service.base_url, org_id=org_id, token=token)
