"""The rate limit (docs.joinmastodon.org api/rate-limits): a server of its own, on one combination only
(python and SQLite when python is selected), started with ``--rate-limit 5/60``: five requests per token
(per address without one) in a window of 60 seconds. Every response carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (an ISO 8601 time, as Mastodon's); the sixth request
of a token in a window is 429 with Mastodon's error body, whichever worker answers it.

A window may end while a test runs: a test whose window would end within a few seconds waits for the
next one first.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from . import ISO_8601, error, fresh_name, ok, on_both_workers
from .conftest import SELECTED

LIMIT, SECONDS = 5, 60
BACKEND = "python" if "python" in SELECTED else SELECTED[0]
HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@pytest.fixture(scope="module")
def limited(servers):
    server = servers.start(BACKEND, "sqlite", "--rate-limit", f"{LIMIT}/{SECONDS}")
    yield server
    try:
        server.assert_clean_exit()
    finally:
        servers.release(server)


@pytest.fixture(scope="module")
def tokens(limited):
    """Three accounts' tokens, signed up without spending their own requests (the app's and the
    address's requests are spent instead: 2 + 3 of 5)."""
    app = ok(
        limited.api.post(
            "/api/v1/apps", data={"client_name": "limits", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
        )
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
    }
    app_api = limited.api.as_(ok(limited.api.post("/oauth/token", data=form))["access_token"])
    found = []
    for _ in range(3):
        name = fresh_name("limited")
        account = {
            "username": name,
            "email": f"{name}@example.com",
            "password": "long enough",
            "agreement": "1",
        }
        found.append(ok(app_api.post("/api/v1/accounts", data=account))["access_token"])
    return found


def reset_of(response):
    value = response.headers["X-RateLimit-Reset"]
    assert ISO_8601.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def assert_headers(response):
    for name in HEADERS:
        assert name in response.headers, (name, dict(response.headers))
    assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
    remaining = int(response.headers["X-RateLimit-Remaining"])
    assert 0 <= remaining <= LIMIT
    assert time.time() - 2 <= reset_of(response) <= time.time() + SECONDS + 2
    return remaining


def fresh_window(api):
    """Waits, if the current window ends within 10 s, for the next one. Spends one request of `api`."""
    response = api.get("/api/v1/instance")
    left = reset_of(response) - time.time()
    if left < 10:
        time.sleep(max(0.0, left) + 0.5)
        return None
    return response


def test_every_response_carries_the_headers(limited, tokens):
    api = limited.api.as_(tokens[2])
    for response in (
        limited.api.get("/api/v1/instance"),  # by address
        api.get("/api/v1/accounts/verify_credentials"),
        api.get("/api/v1/statuses/1"),  # an error
        limited.api.as_("no-such-token").get("/api/v1/accounts/verify_credentials"),  # refused
    ):
        assert_headers(response)


def test_the_sixth_request_of_a_token_is_429_whichever_worker_answers(limited, tokens):
    api = limited.api.as_(tokens[0])
    first = fresh_window(api)
    spent = 1 if first is not None else 0
    answers = [api.get("/api/v1/accounts/verify_credentials") for _ in range(LIMIT - spent)]
    for response in answers:
        ok(response)
    remaining = [assert_headers(r) for r in answers]
    assert remaining == list(range(LIMIT - spent - 1, -1, -1)), remaining
    # Refused by both workers: the count is shared, not each worker's own.
    refused = on_both_workers(lambda: api.get("/api/v1/accounts/verify_credentials"))
    for response in refused:
        error(response, 429)
        assert assert_headers(response) == 0
        assert reset_of(response) == reset_of(answers[-1])
    # Refused everywhere, public methods too: the limit is the token's.
    error(api.get("/api/v1/instance"), 429)


def test_each_token_has_its_own_budget(limited, tokens):
    spent, other = limited.api.as_(tokens[1]), limited.api.as_(tokens[2])
    fresh_window(spent)
    codes = [spent.get("/api/v1/accounts/verify_credentials").status_code for _ in range(LIMIT)]
    assert codes[-1] == 429, codes
    response = other.get("/api/v1/accounts/verify_credentials")
    assert response.status_code == 200, response.text
    assert assert_headers(response) < LIMIT
