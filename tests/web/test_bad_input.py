"""Bad input: always a 4xx with Mastodon's ``{"error": "..."}`` body, never a 500 and never a traceback,
and the server answers normally afterwards.

- An id in the path that is no record (unknown, or not an id at all: "abc", "-1", "1e3", 10**30) is 404,
  as Mastodon answers ("Record not found").
- Parameters of the wrong type or shape are 422 (Mastodon's "Validation failed"), or 400 for a body
  that cannot be parsed; a body over the service's limit is 413.
- Where Mastodon accepts and coerces (a number as the status text, an unknown id among ``id[]``), a 200
  is accepted as well; what matters there is no server error.
"""

from __future__ import annotations

import pytest

from . import error, fresh_name, ok

PATH_IDS = [
    "999999999999",
    "abc",
    "-1",
    "1e3",
    str(10**30),
    "0",
    "1.5",
    "%20",
    "9" * 19,
    "18446744073709551616",
]
PATH_METHODS = [
    ("GET", "/api/v1/statuses/{}"),
    ("DELETE", "/api/v1/statuses/{}"),
    ("POST", "/api/v1/statuses/{}/favourite"),
    ("POST", "/api/v1/statuses/{}/unfavourite"),
    ("GET", "/api/v1/statuses/{}/favourited_by"),
    ("GET", "/api/v1/accounts/{}"),
    ("GET", "/api/v1/accounts/{}/statuses"),
    ("GET", "/api/v1/accounts/{}/followers"),
    ("GET", "/api/v1/accounts/{}/following"),
    ("POST", "/api/v1/accounts/{}/follow"),
    ("POST", "/api/v1/accounts/{}/unfollow"),
    ("POST", "/api/v1/accounts/{}/mute"),
    ("POST", "/api/v1/accounts/{}/unmute"),
]


@pytest.fixture(scope="module")
def caller(server):
    from . import sign_up

    return sign_up(server.api, server.app_token(), "bad")


def still_serving(server, caller):
    assert ok(caller.api.get("/api/v1/accounts/verify_credentials"))["id"] == caller.id


@pytest.mark.parametrize("method,path", PATH_METHODS, ids=[f"{m} {p}" for m, p in PATH_METHODS])
def test_a_path_id_that_is_no_record_is_404(server, caller, method, path):
    for value in PATH_IDS:
        error(caller.api.request(method, path.format(value)), 404)
    still_serving(server, caller)


def json_body(text: str) -> dict:
    return {"content": text.encode(), "headers": {"Content-Type": "application/json"}}


POST_STATUS_CASES = {
    "status a list": (json_body('{"status": ["a", "b"]}'), (422,)),
    "status an object": (json_body('{"status": {"a": 1}}'), (422,)),
    "status null": (json_body('{"status": null}'), (422,)),
    "status true": (json_body('{"status": true}'), (422,)),
    "status a number": (json_body('{"status": 5}'), (200, 422)),
    "status a huge number": (json_body('{"status": 1e400}'), (200, 400, 422)),
    "body a list": (json_body('["status", "x"]'), (400, 422)),
    "body a string": (json_body('"status"'), (400, 422)),
    "invalid JSON": (json_body('{"status": '), (400, 422)),
    "a lone surrogate": (json_body('{"status": "\\ud800"}'), (400, 422)),
    "deeply nested": (json_body('{"status": ' + "[" * 5000 + "]" * 5000 + "}"), (400, 422)),
    "JSON declared, form sent": (
        {"content": b"status=hello", "headers": {"Content-Type": "application/json"}},
        (400, 422),
    ),
    "visibility unknown": ({"data": {"status": "x", "visibility": "everyone"}}, (422,)),
    "sensitive not a boolean": ({"data": {"status": "x", "sensitive": "perhaps"}}, (422,)),
    "spoiler text too long": ({"data": {"status": "x", "spoiler_text": "s" * 1000}}, (422,)),
    "not UTF-8": (
        {"content": b"status=\xff\xfe\xfd", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        (200, 400, 422),
    ),
    "a NUL character": ({"data": {"status": "before\x00after"}}, (200, 422)),
    "broken multipart": (
        {"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
        (400, 422),
    ),
    "too many fields": ({"content": "&".join(f"f{n}=1" for n in range(3000)).encode(), "headers": {
        "Content-Type": "application/x-www-form-urlencoded"}}, (400, 413, 422)),
    "form body too large": ({"data": {"status": "x", "padding": "p" * 200_000}}, (413,)),
    "JSON body too large": (json_body('{"status": "x", "padding": "' + "p" * 200_000 + '"}'), (413,)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(POST_STATUS_CASES))
def test_a_bad_status_body_is_refused(server, caller, case):
    options, statuses = POST_STATUS_CASES[case]
    response = caller.api.post("/api/v1/statuses", **options)
    if response.status_code == 200:
        assert 200 in statuses, response.text
        assert caller.api.delete(f"/api/v1/statuses/{response.json()['id']}").status_code == 200
    else:
        error(response, *[s for s in statuses if s != 200])
    still_serving(server, caller)


QUERY_CASES = {
    "relationships of no id": ("/api/v1/accounts/relationships", {"id[]": "abc"}, (200, 404, 422)),
    "relationships of a huge id": ("/api/v1/accounts/relationships", {"id[]": str(10**30)}, (200, 404, 422)),
    "relationships of 500 ids": (
        "/api/v1/accounts/relationships", {"id[]": [str(n) for n in range(500)]}, (200, 422)),
    "familiar followers of no id": ("/api/v1/accounts/familiar_followers", {"id[]": "-1"}, (200, 404, 422)),
    "familiar followers of 500 ids": (
        "/api/v1/accounts/familiar_followers", {"id[]": [str(n) for n in range(500)]}, (200, 422)),
    "notifications of 1000 types": ("/api/v2/notifications", {"types[]": ["x"] * 1000}, (200, 422)),
    "notifications of an odd type": ("/api/v2/notifications", {"types[]": "\u0000"}, (200, 422)),
    "trends at offset -1": ("/api/v1/trends/statuses", {"offset": "-1"}, (200, 422)),
    "trends at a huge offset": ("/api/v1/trends/statuses", {"offset": str(10**30)}, (200, 422)),
    "suggestions limit 1e3": ("/api/v2/suggestions", {"limit": "1e3"}, (200, 422)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(QUERY_CASES))
def test_a_bad_query_is_refused_or_answered_never_a_server_error(server, caller, case):
    path, params, statuses = QUERY_CASES[case]
    response = caller.api.get(path, params=params)
    if response.status_code != 200 or 200 not in statuses:
        error(response, *[s for s in statuses if s != 200])
    still_serving(server, caller)


def test_unknown_paths_and_methods_answer_a_json_error(server, caller):
    error(caller.api.get("/api/v1/no_such_thing"), 404)
    error(caller.api.get("/"), 404)
    error(caller.api.get("/api/v1/statuses"), 404, 405)
    error(caller.api.request("PUT", "/api/v1/statuses/1"), 404, 405)
    error(caller.api.request("PATCH", "/api/v1/accounts/verify_credentials"), 404, 405)
    error(caller.api.get("/api/v1/statuses/1/favourite"), 404, 405)
    still_serving(server, caller)


def test_bad_apps_sign_ups_and_logins_are_refused(server, caller):
    api = server.api
    error(api.post("/api/v1/apps", data={"redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}), 422)
    error(api.post("/api/v1/apps", data={"client_name": "x"}), 422)
    error(api.post("/api/v1/apps", data={"client_name": "x" * 10_000, "redirect_uris": "y"}), 422)
    error(api.post("/api/v1/apps", **json_body('{"client_name": ["x"], "redirect_uris": "y"}')), 422)
    app_api = api.as_(server.app_token())
    for change in (
        {"username": ""},
        {"username": "x" * 31},
        {"username": "not/allowed"},
        {"username": "\u00e9l\u00e8ve"},
        {"email": ""},
        {"email": "not-an-email"},
        {"password": ""},
        {"agreement": "false"},
    ):
        name = fresh_name("su")  # each attempt its own name: one wrongly accepted cannot hide the others
        base = {"username": name, "email": f"{name}@example.com", "password": "long enough", "agreement": "1"}
        error(app_api.post("/api/v1/accounts", data={**base, **change}), 422)
    error(api.post("/oauth/token", **json_body("{not json")), 400, 422)
    error(api.post("/oauth/token", data={"grant_type": ["password", "x"]}), 400, 401)
    error(api.post("/oauth/revoke", data={}), 400, 401, 403)
    still_serving(server, caller)


def test_a_request_the_http_layer_refuses_does_not_hurt_the_server(server, caller):
    """A long request line and an oversized header: answered, refused (a 4xx) or the connection closed,
    never a server error; the server goes on serving."""
    import httpx

    for request in (
        lambda: caller.api.get("/api/v1/timelines/home", params={"x": "y" * 60_000}),
        lambda: caller.api.get("/api/v1/instance", headers={"X-Big": "z" * 100_000}),
    ):
        try:
            response = request()
        except httpx.TransportError:
            continue
        assert response.status_code < 500, (response.status_code, response.text[:300])
        assert "Traceback" not in response.text
    still_serving(server, caller)
