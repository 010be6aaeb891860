"""The retry policy's arithmetic: backoff with jitter within bounds, Retry-After read right."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conversation_service.adapters.llm.retries import Retries, retry_after

NOW = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("retry", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (9, 8.0)])
def test_backoff_doubles_up_to_the_cap_with_half_of_it_random(retry, ceiling):
    waits = [Retries().backoff(retry) for _ in range(200)]

    assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
    assert len(set(waits)) > 1


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 0 "}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": "Thu, 26 Nov 2026 06:00:30 GMT"}, 30.0),
        ({"Retry-After": "Thu, 26 Nov 2026 05:59:00 GMT"}, 0.0),  # already past: at once
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "2", "retry-after-ms": "250"}, 0.25),
        ({}, None),
    ],
)
def test_retry_after_is_delta_seconds_or_an_http_date(headers, seconds):
    lowercase = {name.lower(): value for name, value in headers.items()}  # as Response has them
    assert retry_after(lowercase, now=NOW) == seconds


@pytest.mark.parametrize(
    "settings",
    [{"max_retries": -1}, {"max_wait": -1}, {"base": 2, "cap": 1}, {"cap": float("inf")}],
)
def test_nonsense_settings_are_refused(settings):
    with pytest.raises(ValueError):
        Retries(**settings)
