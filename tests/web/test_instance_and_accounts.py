"""The instance, apps, OAuth, sign-up and accounts, as docs.joinmastodon.org describes them
(methods/instance, methods/apps, methods/oauth, methods/accounts; entities/Instance, V1_Instance,
Application, Token, Account, CredentialAccount).

Assumptions where the docs leave freedom: the Token's ``scope`` is the space-separated scopes asked for
(or the app's); ``POST /api/v1/accounts`` answers 200 with a Token at once (no e-mail confirmation, as a
server without confirmations does).
"""

from __future__ import annotations

import re

import msgpack

import igcore

from . import ID, ISO_8601, PASSWORD, error, ok, worker_of

ACCOUNT_KEYS = {
    "id", "username", "acct", "url", "display_name", "note", "avatar", "avatar_static", "header",
    "header_static", "locked", "fields", "emojis", "bot", "group", "discoverable", "created_at",
    "last_status_at", "statuses_count", "followers_count", "following_count",
}  # fmt: skip
VERSION = re.compile(r"^4\.\d+\.\d+ \(compatible; igcore (\S+)\)$")


def assert_account(entity, username=None):
    assert set(entity) >= ACCOUNT_KEYS, ACCOUNT_KEYS - set(entity)
    assert isinstance(entity["id"], str) and ID.match(entity["id"]), entity["id"]
    assert ISO_8601.match(entity["created_at"]), entity["created_at"]
    for count in ("statuses_count", "followers_count", "following_count"):
        assert isinstance(entity[count], int) and entity[count] >= 0, (count, entity[count])
    assert entity["last_status_at"] is None or re.match(r"^\d{4}-\d{2}-\d{2}$", entity["last_status_at"])
    assert isinstance(entity["fields"], list) and isinstance(entity["emojis"], list)
    if username is not None:
        assert entity["username"] == username and entity["acct"] == username


# -- instance -------------------------------------------------------------------------------------------


def test_instance_v1_names_the_version_and_counts_the_demo_users(server):
    instance = ok(server.api.get("/api/v1/instance"))
    for key in ("uri", "title", "short_description", "description", "email", "version", "urls", "stats"):
        assert key in instance, key
    assert VERSION.match(instance["version"]).group(1) == igcore.__version__, instance["version"]
    assert instance["stats"]["user_count"] >= 400, instance["stats"]
    assert instance["configuration"]["statuses"]["max_characters"] == 500


def test_instance_v2_names_the_version_and_the_limits(server):
    instance = ok(server.api.get("/api/v2/instance"))
    for key in ("domain", "title", "version", "source_url", "description", "usage", "configuration"):
        assert key in instance, key
    assert VERSION.match(instance["version"]).group(1) == igcore.__version__, instance["version"]
    assert instance["configuration"]["statuses"]["max_characters"] == 500
    assert isinstance(instance["registrations"]["enabled"], bool)


def test_paths_take_a_trailing_slash_or_none(server, new_user):
    # (The instance's stats may be cached per worker, so only what never changes is compared.)
    with_slash, without = ok(server.api.get("/api/v1/instance/")), ok(server.api.get("/api/v1/instance"))
    assert (with_slash["uri"], with_slash["version"]) == (without["uri"], without["version"])
    user = new_user()
    posted = ok(user.api.post("/api/v1/statuses/", data={"status": "with a slash"}))
    assert ok(server.api.get(f"/api/v1/statuses/{posted['id']}/"))["id"] == posted["id"]
    assert ok(user.api.get("/api/v1/accounts/verify_credentials/"))["id"] == user.id


def test_every_answer_names_the_worker_that_served_it(server):
    pids = {worker_of(server.api.get("/api/v1/instance")) for _ in range(40)}
    assert len(pids) == 2, f"40 fresh connections reached {pids}: not both workers"


# -- apps and OAuth -------------------------------------------------------------------------------------


def register_app(server, **extra):
    form = {
        "client_name": "a test client",
        "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
        "scopes": "read write follow",
        "website": "https://example.com",
        **extra,
    }
    return ok(server.api.post("/api/v1/apps", data=form))


def test_an_app_registers_and_gets_its_credentials(server):
    app = register_app(server)
    assert app["name"] == "a test client" and app["website"] == "https://example.com"
    assert app["client_id"] and app["client_secret"], app
    assert isinstance(app["id"], str)
    assert set(app["scopes"]) == {"read", "write", "follow"}, app["scopes"]
    assert "urn:ietf:wg:oauth:2.0:oob" in app["redirect_uris"]


def test_client_credentials_give_an_app_token(server):
    app = register_app(server)
    form = {
        "grant_type": "client_credentials",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
    }
    token = ok(server.api.post("/oauth/token", data=form))
    assert token["token_type"] == "Bearer" and token["access_token"], token
    assert isinstance(token["created_at"], int) and isinstance(token["scope"], str), token


def test_the_password_grant_takes_the_email_or_the_username(server, new_user):
    user = new_user()
    app = register_app(server)
    for login in (user.email, user.username):
        form = {
            "grant_type": "password",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "username": login,
            "password": PASSWORD,
            "scope": "read write",
        }
        token = ok(server.api.post("/oauth/token", data=form))
        assert token["token_type"] == "Bearer" and set(token["scope"].split()) == {"read", "write"}, token
        me = ok(server.api.as_(token["access_token"]).get("/api/v1/accounts/verify_credentials"))
        assert me["id"] == user.id


def test_a_demo_account_logs_in_with_the_demo_password(server):
    username = sorted(server.demo_tokens)[0]
    app = register_app(server)
    form = {
        "grant_type": "password",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "username": username,
        "password": "igcore-demo",
    }
    token = ok(server.api.post("/oauth/token", data=form))
    assert (
        ok(server.api.as_(token["access_token"]).get("/api/v1/accounts/verify_credentials"))["username"]
        == username
    )


def test_the_token_endpoint_takes_a_json_body(server):
    app = register_app(server)
    body = {
        "grant_type": "client_credentials",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
    }
    assert ok(server.api.post("/oauth/token", json=body))["access_token"]


def test_a_revoked_token_is_refused_at_once_by_every_worker(server, new_user):
    user = new_user()
    app = register_app(server)
    login = {
        "grant_type": "password",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "username": user.username,
        "password": PASSWORD,
    }
    token = ok(server.api.post("/oauth/token", data=login))["access_token"]
    caller = server.api.as_(token)
    seen = {worker_of(caller.get("/api/v1/accounts/verify_credentials")) for _ in range(10)}  # cached now
    revoke = {"token": token, "client_id": app["client_id"], "client_secret": app["client_secret"]}
    assert ok(server.api.post("/oauth/revoke", data=revoke)) == {}
    for _ in range(10):
        response = caller.get("/api/v1/accounts/verify_credentials")
        error(response, 401)
        seen.add(worker_of(response))
    assert len(seen) == 2, seen
    # The account's other tokens still work.
    assert ok(user.api.get("/api/v1/accounts/verify_credentials"))["id"] == user.id


# -- sign-up and accounts -------------------------------------------------------------------------------


def test_sign_up_gives_a_token_of_the_new_account(server, new_user):
    user = new_user()
    me = ok(user.api.get("/api/v1/accounts/verify_credentials"))
    assert_account(me, user.username)
    assert me["statuses_count"] == me["followers_count"] == me["following_count"] == 0
    assert "source" in me and "privacy" in me["source"], me  # a CredentialAccount


def test_sign_up_refuses_a_taken_username_and_a_missing_agreement(server, new_user):
    user = new_user()
    app_api = server.api.as_(server.app_token())
    form = {"username": user.username, "email": "x" + user.email, "password": PASSWORD, "agreement": "true"}
    error(app_api.post("/api/v1/accounts", data=form), 422)
    form = {"username": "u" + user.username[:28], "email": "y" + user.email, "password": PASSWORD}
    error(app_api.post("/api/v1/accounts", data=form), 422)
    form = {"username": "has space", "email": "z" + user.email, "password": PASSWORD, "agreement": "true"}
    error(app_api.post("/api/v1/accounts", data=form), 422)


def test_sign_up_needs_an_app_token(server):
    form = {
        "username": "nobody_at_all",
        "email": "nobody@example.com",
        "password": PASSWORD,
        "agreement": "true",
    }
    error(server.api.post("/api/v1/accounts", data=form), 401)


def test_an_account_is_public_and_counts_its_statuses(server, new_user):
    user = new_user()
    user.post_status("one")
    user.post_status("two")
    account = ok(server.api.get(f"/api/v1/accounts/{user.id}"))
    assert_account(account, user.username)
    assert account["statuses_count"] == 2
    assert account["last_status_at"] is not None
    assert "source" not in account  # only verify_credentials shows the source


def test_a_demo_account_is_served_with_its_follow_counts(server):
    for username, token in sorted(server.demo_tokens.items()):
        me = ok(server.api.as_(token).get("/api/v1/accounts/verify_credentials"))
        assert_account(me, username)
        account = ok(server.api.get(f"/api/v1/accounts/{me['id']}"))
        assert account["followers_count"] == me["followers_count"]
        assert account["following_count"] == me["following_count"]


# -- formats --------------------------------------------------------------------------------------------


def test_msgpack_is_served_when_asked_for_with_the_same_content(server, new_user):
    user = new_user()
    status = user.post_status("packed")
    packed = server.api.as_(user.token)
    packed.accept = "application/msgpack"
    for path in (
        f"/api/v1/accounts/{user.id}",
        f"/api/v1/accounts/{user.id}/statuses",
        f"/api/v1/accounts/relationships?id[]={user.id}",
    ):
        as_json = ok(user.api.get(path))
        response = packed.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/msgpack"), response.headers
        assert msgpack.unpackb(response.content) == as_json, path
    # Errors too.
    response = packed.get("/api/v1/statuses/1")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/msgpack")
    assert isinstance(msgpack.unpackb(response.content)["error"], str)
    assert status["id"]


def test_parameters_come_as_a_form_json_or_the_query_string(server, new_user):
    user = new_user()
    by_form = ok(user.api.post("/api/v1/statuses", data={"status": "by form"}))
    by_json = ok(user.api.post("/api/v1/statuses", json={"status": "by json"}))
    by_query = ok(user.api.post("/api/v1/statuses", params={"status": "by query"}))
    assert [s["content"] for s in (by_form, by_json, by_query)] == [
        "<p>by form</p>",
        "<p>by json</p>",
        "<p>by query</p>",
    ]
    other = new_user()
    as_query = ok(user.api.get(f"/api/v1/accounts/relationships?id[]={other.id}&id[]={user.id}"))
    assert {r["id"] for r in as_query} == {other.id, user.id}
