"""Every refusal is a JSON error with a request id, however hostile the input; none is a
traceback, in the answer or in the log."""

from __future__ import annotations

import logging

import pytest

from tests.http.conftest import Api

ROUTES = ["/api/conversation/create", "/api/conversation/stream_chat", "/api/models"]


@pytest.mark.parametrize("depth", [33, 1_000, 10_000, 200_000])
async def test_deeply_nested_json_is_a_400_naming_the_body(
    api: Api, depth: int, caplog: pytest.LogCaptureFixture
) -> None:
    for opener, closer in (("[", "]"), ('{"a":', "}")):
        body = '{"title": ' + opener * depth + "1" + closer * depth + "}"
        for route in ROUTES:
            response = await api.client.post(
                route,
                content=body,
                headers={**api.a.auth, "Content-Type": "application/json"},
                params=api.a.q,
            )
            assert response.status_code in (400, 413), (route, depth)
            error = response.json()["error"]
            assert error["request_id"] == response.headers["X-Request-Id"]
            if response.status_code == 400:
                assert error["field"] == "body" and "nested more than 32" in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_nesting_up_to_the_limit_is_read(api: Api) -> None:
    for arrays, message in ((31, "title: must be a string"), (32, "nested more than 32")):
        body = '{"title": ' + "[" * arrays + "1" + "]" * arrays + "}"  # the object is one level
        response = await api.client.post(
            "/api/conversation/create",
            content=body,
            headers={**api.a.auth, "Content-Type": "application/json"},
            params=api.a.q,
        )
        # Read, then refused for what it is (a title that is not a string); or too deep.
        assert response.status_code == 400
        assert message in response.json()["error"]["message"]
