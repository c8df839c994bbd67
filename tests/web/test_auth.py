"""Who may call what (docs.joinmastodon.org: each method's "OAuth" line and its 401/403/422 answers).

- A user method without a token, or with a token that is no token (never issued, revoked), answers 401
  ``{"error": "The access token is invalid"}``; a public method with such a token answers 401 too.
- A user method with an app's token (client credentials, no account): Mastodon answers 422 "This method
  requires an authenticated user"; 401 and 403 are accepted as well, always with an error body.
- Deleting someone else's status: Mastodon looks the status up among the caller's own, so it answers
  404; 403 is accepted too. Either way the status stays.
"""

from __future__ import annotations

import pytest

from . import error, ok

USER_METHODS = [
    ("GET", "/api/v1/accounts/verify_credentials"),
    ("GET", "/api/v1/timelines/home"),
    ("POST", "/api/v1/statuses"),
    ("DELETE", "/api/v1/statuses/{status}"),
    ("POST", "/api/v1/statuses/{status}/favourite"),
    ("POST", "/api/v1/statuses/{status}/unfavourite"),
    ("POST", "/api/v1/accounts/{account}/follow"),
    ("POST", "/api/v1/accounts/{account}/unfollow"),
    ("POST", "/api/v1/accounts/{account}/mute"),
    ("POST", "/api/v1/accounts/{account}/unmute"),
    ("GET", "/api/v1/accounts/relationships?id[]={account}"),
    ("GET", "/api/v1/accounts/familiar_followers?id[]={account}"),
    ("GET", "/api/v2/suggestions"),
    ("GET", "/api/v2/notifications"),
]
PUBLIC_METHODS = [
    "/api/v1/instance",
    "/api/v2/instance",
    "/api/v1/accounts/{account}",
    "/api/v1/accounts/{account}/statuses",
    "/api/v1/accounts/{account}/followers",
    "/api/v1/accounts/{account}/following",
    "/api/v1/statuses/{status}",
    "/api/v1/statuses/{status}/favourited_by",
    "/api/v1/trends/statuses",
]


@pytest.fixture
def target(new_user):
    """An account and one of its statuses, which every refused call must leave as they were."""
    owner = new_user("owner")
    status = owner.post_status("must survive")
    yield {"account": owner.id, "status": status["id"]}
    assert ok(owner.api.get(f"/api/v1/statuses/{status['id']}"))["favourites_count"] == 0
    assert ok(owner.api.get(f"/api/v1/accounts/{owner.id}"))["followers_count"] == 0


def call(api, method, path, target):
    form = {"status": "should not be posted"} if method == "POST" else None
    return api.request(method, path.format(**target), data=form)


@pytest.mark.parametrize("method,path", USER_METHODS, ids=[f"{m} {p}" for m, p in USER_METHODS])
def test_no_token_is_401(server, target, method, path):
    error(call(server.api, method, path, target), 401)


@pytest.mark.parametrize("method,path", USER_METHODS, ids=[f"{m} {p}" for m, p in USER_METHODS])
def test_a_wrong_token_is_401(server, target, method, path):
    error(call(server.api.as_("not-a-token-at-all"), method, path, target), 401)


@pytest.mark.parametrize("method,path", USER_METHODS, ids=[f"{m} {p}" for m, p in USER_METHODS])
def test_an_app_token_is_refused_where_a_user_is_needed(server, target, method, path):
    error(call(server.api.as_(server.app_token()), method, path, target), 401, 403, 422)


@pytest.mark.parametrize("path", PUBLIC_METHODS)
def test_public_methods_need_no_token_but_refuse_a_wrong_one(server, target, path):
    ok(server.api.get(path.format(**target)))
    ok(server.api.as_(server.app_token()).get(path.format(**target)))
    error(server.api.as_("not-a-token-at-all").get(path.format(**target)), 401)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "bearer x y z",
        "Bearer " + "A" * 5000,
        "Bearer \u00e9t\u00e9",
    ],
    ids=["empty", "basic", "spaces", "huge", "latin-1"],
)
def test_a_malformed_authorization_header_is_401_never_500(server, header):
    response = server.api.request(
        "GET", "/api/v1/accounts/verify_credentials", headers={"Authorization": header.encode("latin-1")}
    )
    error(response, 400, 401)


def test_deleting_someone_elses_status_is_refused_and_it_stays(server, new_users):
    author, other = new_users(2)
    status = author.post_status("mine")
    error(other.api.delete(f"/api/v1/statuses/{status['id']}"), 403, 404)
    assert ok(server.api.get(f"/api/v1/statuses/{status['id']}"))["id"] == status["id"]
    assert ok(server.api.get(f"/api/v1/accounts/{author.id}"))["statuses_count"] == 1


def test_a_token_of_one_account_acts_for_it_only(server, new_users):
    first, second = new_users(2)
    posted = first.post_status("by the first")
    assert posted["account"]["id"] == first.id
    assert ok(second.api.get("/api/v1/accounts/verify_credentials"))["id"] == second.id


def test_wrong_passwords_and_clients_are_refused_as_oauth_says(server, new_user):
    user = new_user()
    app = ok(
        server.api.post(
            "/api/v1/apps", data={"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
        )
    )
    login = {
        "grant_type": "password",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "username": user.username,
        "password": "not the password",
    }
    response = server.api.post("/oauth/token", data=login)
    assert error(response, 400, 401) == "invalid_grant"
    response = server.api.post("/oauth/token", data={**login, "username": "no_such_user_here"})
    assert error(response, 400, 401) == "invalid_grant"
    response = server.api.post("/oauth/token", data={**login, "client_secret": "wrong", "password": "x"})
    assert error(response, 400, 401) == "invalid_client"
    response = server.api.post("/oauth/token", data={**login, "grant_type": "authorization_code_of_sorts"})
    assert error(response, 400) == "unsupported_grant_type"
    response = server.api.post("/oauth/token", data={"client_id": app["client_id"]})
    assert error(response, 400, 401) in ("unsupported_grant_type", "invalid_request", "invalid_client")


def test_revoking_needs_the_client_credentials(server, new_user):
    user = new_user()
    app = ok(
        server.api.post(
            "/api/v1/apps", data={"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
        )
    )
    response = server.api.post("/oauth/revoke", data={"token": user.token, "client_id": app["client_id"]})
    error(response, 400, 401, 403)
    assert ok(user.api.get("/api/v1/accounts/verify_credentials"))["id"] == user.id


def test_an_app_cannot_revoke_a_token_issued_to_another(server, new_user):
    """RFC 7009 (which Mastodon's Doorkeeper follows): the token is revoked only for the client it was
    issued to; another client's request leaves it working (Doorkeeper answers 403)."""
    user = new_user()  # its token was issued through the tests' own app
    other = ok(
        server.api.post(
            "/api/v1/apps", data={"client_name": "y", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
        )
    )
    form = {"token": user.token, "client_id": other["client_id"], "client_secret": other["client_secret"]}
    response = server.api.post("/oauth/revoke", data=form)
    assert response.status_code in (200, 403), response.text
    assert ok(user.api.get("/api/v1/accounts/verify_credentials"))["id"] == user.id
