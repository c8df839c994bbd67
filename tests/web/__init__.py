"""The HTTP tests of igcore.web: a real ``igcore serve`` (two workers, its own Redis, SQLite or
PostgreSQL) per backend and database, spoken to as a Mastodon client would (see conftest.py).

This module holds what the test modules share: a client whose every request opens a fresh connection
(so that either worker may answer it, as for a client behind a load balancer), signing up accounts, and
reading Mastodon's ``Link`` headers.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

WORKER_HEADER = "X-Igcore-Worker"
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
LINK = re.compile(r'<([^>]*)>;\s*rel="([a-z]+)"')
ID = re.compile(r"^[0-9]+$")
PASSWORD = "correct horse battery staple"

# A request opens its own connection and closes it after the answer: no keep-alive, so the kernel hands
# each connection to whichever worker accepts it first.
_client = httpx.Client(
    limits=httpx.Limits(max_keepalive_connections=0, max_connections=64), timeout=httpx.Timeout(30.0)
)
_names = itertools.count(1)
_names_lock = threading.Lock()


class Api:
    """Requests to one server, as one caller (a bearer token, or none)."""

    def __init__(self, base_url: str, token: str | None = None, accept: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.accept = accept

    def as_(self, token: str | None) -> Api:
        return Api(self.base_url, token, self.accept)

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **options: Any):
        sent = {"Connection": "close"}
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        if self.accept is not None:
            sent["Accept"] = self.accept
        sent.update(headers or {})
        return _client.request(method, self.url(path), headers=sent, **options)

    def get(self, path: str, **options: Any) -> httpx.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self.request("POST", path, **options)

    def delete(self, path: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", path, **options)


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that must have `status`; the body is shown when it has not."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} answered {response.status_code}, "
        f"not {status}: {response.text[:2000]}"
    )
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    return response.json()


def error(response: httpx.Response, *statuses: int) -> str:
    """The message of an error answer, which must have one of `statuses` and Mastodon's error body
    ``{"error": "..."}``, and never a traceback. Returns the message."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url} answered {response.status_code}, "
        f"not one of {statuses}: {response.text[:2000]}"
    )
    assert "Traceback" not in response.text, response.text
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.headers,
        response.text[:500],
    )
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], body
    return body["error"]


def worker_of(response: httpx.Response) -> str:
    pid = response.headers.get(WORKER_HEADER)
    assert pid, f"no {WORKER_HEADER} header: {dict(response.headers)}"
    return pid


def on_both_workers(call: Callable[[], httpx.Response], seconds: float = 5.0) -> list[httpx.Response]:
    """`call()` (an idempotent request) until both workers have answered it: their answers. Each call
    is a fresh connection, which the kernel gives to whichever worker accepts first; a worker busy
    for a moment misses a run of them, so this goes on for up to `seconds`, not for a count."""
    answers: list[httpx.Response] = []
    workers: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answers.append(call())
        workers.add(worker_of(answers[-1]))
        if len(workers) == 2:
            return answers
    raise AssertionError(f"{len(answers)} fresh connections in {seconds:g} s reached only {workers}")


def links(response: httpx.Response) -> dict[str, str]:
    """The ``Link`` header as {rel: url}, checked for Mastodon's form
    ``<url?max_id=..>; rel="next", <url?min_id=..>; rel="prev"``."""
    header = response.headers.get("link")
    if not header:
        return {}
    found = {rel: url for url, rel in LINK.findall(header)}
    parts = [part.strip() for part in header.split(",")]
    assert len(found) == len(parts), f"malformed Link header: {header!r}"
    if "next" in found:
        assert "max_id=" in found["next"], header
    if "prev" in found:
        assert "min_id=" in found["prev"], header
    return found


def ids_of(items: list[dict[str, Any]]) -> list[int]:
    return [int(item["id"]) for item in items]


def eventually(check: Callable[[], Any], seconds: float = 6.0, every: float = 0.1) -> Any:
    """`check()` once it returns without an AssertionError, retried for `seconds` (for what the service
    writes behind, at most a flush interval late); the last failure when it never does."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(every)


def in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs the calls at once, each in its own thread; their results in order (or the first error)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(run, call) for call in calls]]


@dataclass
class User:
    """A signed-up account: its id, username and a bearer token; `api` speaks as it."""

    id: str
    username: str
    email: str
    token: str
    api: Api

    def post_status(self, text: str | None = None) -> dict[str, Any]:
        return ok(self.api.post("/api/v1/statuses", data={"status": text or f"a post by {self.username}"}))

    def follow(self, other: User) -> dict[str, Any]:
        return ok(self.api.post(f"/api/v1/accounts/{other.id}/follow"))

    def home(self, **params: Any) -> list[dict[str, Any]]:
        return ok(self.api.get("/api/v1/timelines/home", params=params))


def fresh_name(prefix: str = "t") -> str:
    """A username no other test uses: Mastodon's letters, digits and underscores, at most 30."""
    with _names_lock:
        number = next(_names)
    return f"{prefix}{number}_{secrets.token_hex(4)}"[:30]


def sign_up(api: Api, app_token: str, prefix: str = "t") -> User:
    """A new account, signed up through ``POST /api/v1/accounts`` with the app's token."""
    username = fresh_name(prefix)
    email = f"{username}@example.com"
    form = {"username": username, "email": email, "password": PASSWORD, "agreement": "true", "locale": "en"}
    token = ok(api.as_(app_token).post("/api/v1/accounts", data=form))
    assert token["token_type"] == "Bearer" and token["access_token"], token
    mine = api.as_(token["access_token"])
    me = ok(mine.get("/api/v1/accounts/verify_credentials"))
    assert me["username"] == username, me
    return User(me["id"], username, email, token["access_token"], mine)


def sign_up_many(api: Api, app_token: str, count: int, prefix: str = "t") -> list[User]:
    with ThreadPoolExecutor(min(count, 8)) as pool:
        return list(pool.map(lambda _: sign_up(api, app_token, prefix), range(count)))


def walk(api: Api, path: str, params: dict[str, Any] | None = None, most: int = 100) -> Iterator[list[Any]]:
    """The pages of a list, from `path` on through each page's ``rel="next"`` link, until a page is empty
    or has no next link (`most` pages at most)."""
    response = api.get(path, params=params)
    for _ in range(most):
        page = ok(response)
        if not page:
            return
        yield page
        following = links(response).get("next")
        if following is None:
            return
        response = api.get(following)
    raise AssertionError(f"{path}: more than {most} pages")


def demo_answers(server: Any) -> dict[str, Any]:
    """What the demo accounts' tokens get from a server that no test has touched: their home timelines
    (five pages), accounts, statuses, followers and following (three pages each), suggestions, familiar
    followers and relationships with the other demo accounts and their first follows, notifications, and
    trends. Each answer is kept as (status, body, Link header); the server's own address (its port
    differs from server to server) is replaced by a placeholder, the only thing that may differ."""
    answers: dict[str, Any] = {}
    origin = server.base_url.split("//", 1)[1]

    def record(name: str, api: Api, path: str, params: Any = None) -> Any:
        response = api.get(path, params=params)
        text = response.text.replace(origin, "ORIGIN")
        link = response.headers.get("link", "").replace(origin, "ORIGIN")
        answers[name] = (response.status_code, text, link)
        return response

    def pages(name: str, api: Api, path: str, params: dict[str, Any], most: int) -> list[Any]:
        items: list[Any] = []
        response = record(f"{name} page 1", api, path, params)
        for number in range(2, most + 1):
            if response.status_code != 200 or not response.json():
                break
            items += response.json()
            following = links(response).get("next")
            if following is None:
                break
            response = record(f"{name} page {number}", api, following)
        return items

    try:
        public = server.api
        me_ids = {}
        for username, token in sorted(server.demo_tokens.items()):
            api = public.as_(token)
            me = record(f"{username} verify_credentials", api, "/api/v1/accounts/verify_credentials").json()
            me_ids[username] = me["id"]
        for username, token in sorted(server.demo_tokens.items()):
            api, me = public.as_(token), me_ids[username]
            record(f"{username} account", public, f"/api/v1/accounts/{me}")
            pages(f"{username} home", api, "/api/v1/timelines/home", {"limit": 40}, 5)
            pages(f"{username} statuses", public, f"/api/v1/accounts/{me}/statuses", {"limit": 40}, 2)
            followers = pages(
                f"{username} followers", public, f"/api/v1/accounts/{me}/followers", {"limit": 80}, 3
            )
            following = pages(
                f"{username} following", public, f"/api/v1/accounts/{me}/following", {"limit": 80}, 3
            )
            record(f"{username} suggestions", api, "/api/v2/suggestions", {"limit": 80})
            others = [i for name, i in sorted(me_ids.items()) if name != username]
            others += [a["id"] for a in following[:20]] + [a["id"] for a in followers[:20]]
            others = list(dict.fromkeys(others))
            record(f"{username} relationships", api, "/api/v1/accounts/relationships", {"id[]": others})
            record(
                f"{username} familiar_followers", api, "/api/v1/accounts/familiar_followers", {"id[]": others}
            )
            record(f"{username} notifications", api, "/api/v2/notifications", {"limit": 80})
        record("trends", public, "/api/v1/trends/statuses", {"limit": 40})
    except Exception as exc:  # noqa: BLE001 - kept as the answer: the comparison shows it
        answers["failure"] = repr(exc)
    return answers
