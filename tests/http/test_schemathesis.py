"""Schemathesis against the real `conversation-service serve` process, every check switched on.

Schemathesis runs as its command line does (`schemathesis run`): each operation gets its
examples, the coverage phase (boundaries, each kind of invalid input, undeclared methods,
missing and wrong auth) and fuzzing; then the stateful phase follows the document's links
(create a conversation, a session in it on echo, stream to it, cancel, complete, ...).
Stream bodies are checked too: schemathesis reads the events and validates each one, and
each event's JSON `data`, against the document. The token and org_id are the ones the server
prints on its first start. The run is deterministic, so repeatable; SCHEMATHESIS_SEED=<n>
makes it random from that seed instead, to look further.

(The command line rather than `schemathesis.pytest.from_fixture`: schemathesis 4.32's pytest
plugin reads `request.node._nodeid`, which pytest 9.2 no longer has.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from conversation_service.testing.served import Served, serve
from tests.http.conftest import DATABASE_URL

SEED = os.environ.get("SCHEMATHESIS_SEED")
MAX_EXAMPLES = 40
ROOT = Path(__file__).resolve().parents[2]
PHASES = ("examples", "coverage", "fuzzing", "stateful")


CROSS_FIELD_RULES = (
    "POST /api/conversation/create_session",
    "POST /api/models",
    # Feedback rates assistant replies: a user message's id (a listing's first message) is a
    # 400 naming message_id, as every input the server refuses is; no schema says which id
    # names a reply.
    "POST /api/conversation/feedback",
    # An import's body is a JSON Lines file whose rules (a header first, each line's own
    # schema, references between lines, an end line) no schema of a string states.
    "POST /api/conversation/import",
)

# An import's JSON Lines file is sent as the text it is.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

# A search query's rules beyond its schema's (a word in it, at most 16 words, a prefix of two
# characters at least): a JSON Schema pattern cannot say which characters are letters.
QUERY_RULES = ("GET /api/conversation/search",)

# Models schemathesis registers point here, on this machine (nothing listens on the discard
# port): the server must not resolve or call the hosts a generator makes up.
MODEL_URL = "http://127.0.0.1:9/v1"


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """A fresh Idempotency-Key for each request that sends a valid one (this module is the
    run's hooks file).

    Generated keys repeat ("0", "a", ...), and a key reused with another request is a 400 by
    design, which schemathesis would report as a valid request refused. Clients send a new key
    per new request; tests/http/test_idempotency_and_limits.py covers reusing one.
    """
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and 0 < len(key) <= 255 and key.isascii() and key.isprintable():
        case.headers["Idempotency-Key"] = str(uuid.uuid4())
    # The stateful phase infers links from response fields to parameters, and sends a null it
    # finds there (a user message's model_id) in a path as the text "None", which it then
    # counts as schema-valid; the server rightly answers 400. Such a value stands for no
    # object: it is sent as an id that exists nowhere instead.
    for name, value in (case.path_parameters or {}).items():
        if value in (None, "None"):
            case.path_parameters[name] = str(uuid.uuid4())


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    postgres = request.getfixturevalue("postgres") if backend == "postgres" else None
    database = postgres.create_database() if postgres else None  # the module's, as the server
    # Thousands of requests from one token; echo without its word delay keeps streams short.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CONVERSATION_SERVICE_ALLOW_PRIVATE_MODEL_URLS", "true")
        env.delenv(DATABASE_URL, raising=False)
        if database:
            env.setenv(DATABASE_URL, database)
        server = serve(data_dir, "--rate-limit", "100000/minute", "--echo-delay-ms", "0")
    assert server.org_id and server.token, "".join(server.output)
    try:
        yield server
    finally:
        assert server.stop() == 0
        if postgres and database:
            postgres.drop_database(database)


def config_file(served: Served, folder: Path) -> Path:
    """schemathesis.toml: the token, its org_id on every request, all checks on."""
    assert served.token and served.org_id
    path = folder / "schemathesis.toml"
    path.write_text(
        "\n".join(
            [
                'hooks = "tests.http.test_schemathesis"',
                f"generation.deterministic = {json.dumps(SEED is None)}",
                "[auth.openapi.bearerAuth]",
                f"bearer = {json.dumps(served.token)}",
                "[parameters]",
                # Positive cases act in the token's own organisation; the coverage phase
                # still sends a missing and a malformed org_id.
                f'"query.org_id" = {json.dumps(served.org_id)}',
                f'"body.base_url" = {json.dumps(MODEL_URL)}',
                # Nothing listens there: a reply on such a model fails at once, unless the
                # model was registered with a generated retry budget (thousands of retries)
                # that keeps the reply, and the stream asking for it, going for minutes.
                '"body.max_retries" = 0',
                "[checks]",
                "enabled = true",
                # These operations have rules across fields, or against the chosen model or
                # message, that no schema can state: params.max_tokens is checked against the
                # model's own max_output_tokens, a model entry's max_output_tokens must fit its
                # context_window (default_max_tokens too), feedback names a reply, an import's
                # lines refer to each other. Their 400s for such schema-valid bodies are right
                # (and tested: test_models_and_usage_api.py, test_org_models_api.py,
                # test_keeping_api.py, test_transfer_api.py); every other check stays on for
                # them. So for a search's `q` (QUERY_RULES; test_search_api.py).
                *[
                    line
                    for operation in (*CROSS_FIELD_RULES, *QUERY_RULES)
                    for line in (
                        "[[operations]]",
                        f"include-name = {json.dumps(operation)}",
                        "checks.positive_data_acceptance.expected-statuses = "
                        '["2xx", "400", "401", "403", "404", "409", "429"]',
                    )
                ],
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


def test_schemathesis_finds_nothing(served: Served, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config_file(served, tmp_path)),
        "run",
        f"{served.base_url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        ",".join(PHASES),
        "--max-examples",
        str(MAX_EXAMPLES),
        *(["--seed", SEED] if SEED else []),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "reports"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=240, check=False, cwd=ROOT
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-30_000:]
    operations = re.search(r"Tested: (\d+)", report)
    assert operations and int(operations.group(1)) >= 21, report[-5_000:]
    for phase in PHASES:
        assert re.search(rf"✅ +{phase}", report, re.IGNORECASE), f"{phase} did not pass"
