"""Paging, as docs.joinmastodon.org (api/guidelines#pagination) describes it: newest first; the ``Link``
header's ``rel="next"`` (``max_id``: older) and ``rel="prev"`` (``min_id``: newer); ``max_id`` and
``since_id`` bound the page from above and below, newest first; ``min_id`` gives the statuses just
above it (the oldest of the newer ones), still newest first; and each list's ``limit`` default and
maximum (a larger ``limit`` gets the maximum).

Assumptions where the docs leave freedom: the last page either has no ``next`` link or its ``next`` link
gives an empty page; a ``limit`` above the maximum is clamped (Mastodon's behaviour), not refused.
"""

from __future__ import annotations

import pytest

from . import error, ids_of, links, ok, walk

pytestmark = pytest.mark.home_feeds

PAGED = 45  # statuses of the author whose timeline is paged: more than the largest page (40)


@pytest.fixture(scope="module")
def paged(server):
    """An author with PAGED statuses and a follower, shared by this module's tests, which only read."""
    from . import sign_up

    author = sign_up(server.api, server.app_token(), "pager")
    follower = sign_up(server.api, server.app_token(), "reader")
    follower.follow(author)
    statuses = [author.post_status(f"number {n}")["id"] for n in range(PAGED)]
    return author, follower, [int(i) for i in reversed(statuses)]  # newest first


def test_ids_are_strings_of_digits_that_grow_with_time(server, paged):
    author, _, newest_first = paged
    assert newest_first == sorted(newest_first, reverse=True) and len(set(newest_first)) == PAGED
    for status in ok(server.api.get(f"/api/v1/accounts/{author.id}/statuses", params={"limit": 40})):
        assert (
            isinstance(status["id"], str)
            and status["id"].isdigit()
            and str(int(status["id"])) == status["id"]
        )
        assert isinstance(status["account"]["id"], str)


@pytest.mark.parametrize("where", ["home", "statuses"])
def test_limit_defaults_to_20_and_is_at_most_40(server, paged, where):
    author, follower, _ = paged
    path = "/api/v1/timelines/home" if where == "home" else f"/api/v1/accounts/{author.id}/statuses"
    assert len(ok(follower.api.get(path))) == 20
    assert len(ok(follower.api.get(path, params={"limit": 40}))) == 40
    assert len(ok(follower.api.get(path, params={"limit": 41}))) == 40
    assert len(ok(follower.api.get(path, params={"limit": 10**6}))) == 40
    assert len(ok(follower.api.get(path, params={"limit": 3}))) == 3


@pytest.mark.parametrize("where", ["home", "statuses"])
def test_link_headers_page_every_status_once_newest_first(server, paged, where):
    author, follower, newest_first = paged
    path = "/api/v1/timelines/home" if where == "home" else f"/api/v1/accounts/{author.id}/statuses"
    response = follower.api.get(path, params={"limit": 10})
    found = links(response)
    assert set(found) == {"next", "prev"}, response.headers.get("link")
    assert f"max_id={ids_of(ok(response))[-1]}" in found["next"] and "limit=10" in found["next"]
    assert f"min_id={ids_of(ok(response))[0]}" in found["prev"]
    pages = [ids_of(page) for page in walk(follower.api, path, {"limit": 10})]
    assert [len(p) for p in pages] == [10, 10, 10, 10, 5]
    assert [i for page in pages for i in page] == newest_first


@pytest.mark.parametrize("where", ["home", "statuses"])
def test_max_since_and_min_id_bound_the_page(server, paged, where):
    author, follower, newest_first = paged
    path = "/api/v1/timelines/home" if where == "home" else f"/api/v1/accounts/{author.id}/statuses"
    oldest_first = newest_first[::-1]
    s = oldest_first  # s[0] the oldest
    page = ids_of(ok(follower.api.get(path, params={"max_id": s[20], "limit": 5})))
    assert page == [s[19], s[18], s[17], s[16], s[15]]
    # since_id: the newest above it; min_id: the ones just above it. Both newest first.
    page = ids_of(ok(follower.api.get(path, params={"since_id": s[10], "limit": 5})))
    assert page == newest_first[:5]
    page = ids_of(ok(follower.api.get(path, params={"min_id": s[10], "limit": 5})))
    assert page == [s[15], s[14], s[13], s[12], s[11]]
    page = ids_of(ok(follower.api.get(path, params={"max_id": s[20], "since_id": s[17]})))
    assert page == [s[19], s[18]]
    page = ids_of(ok(follower.api.get(path, params={"max_id": s[20], "min_id": s[17]})))
    assert page == [s[19], s[18]]
    # Past either end: empty.
    assert ok(follower.api.get(path, params={"max_id": s[0]})) == []
    assert ok(follower.api.get(path, params={"min_id": s[-1]})) == []
    assert ok(follower.api.get(path, params={"since_id": s[-1]})) == []


@pytest.mark.parametrize("where", ["home", "statuses"])
def test_prev_links_page_back_up_to_the_newest(server, paged, where):
    author, follower, newest_first = paged
    path = "/api/v1/timelines/home" if where == "home" else f"/api/v1/accounts/{author.id}/statuses"
    oldest_first = newest_first[::-1]
    response = follower.api.get(path, params={"max_id": oldest_first[5], "limit": 10})
    collected = ids_of(ok(response))
    for _ in range(10):
        previous = links(response).get("prev")
        if previous is None:
            break
        response = follower.api.get(previous)
        page = ids_of(ok(response))
        if not page:
            break
        assert page == sorted(page, reverse=True) and page[-1] > collected[0]
        collected = page + collected
    assert collected == newest_first  # every one, once, in order


@pytest.mark.parametrize("where", ["home", "statuses"])
def test_new_posts_during_paging_neither_appear_nor_break_it(server, new_user, where):
    author, follower = new_user("live"), new_user("live_reader")
    follower.follow(author)
    before = [int(author.post_status(f"before {n}")["id"]) for n in range(25)][::-1]
    path = "/api/v1/timelines/home" if where == "home" else f"/api/v1/accounts/{author.id}/statuses"
    response = follower.api.get(path, params={"limit": 7})
    first_prev = links(response)["prev"]
    pages, arrived = [ids_of(ok(response))], []
    while True:
        arrived += [int(author.post_status(f"during {len(pages)}.{n}")["id"]) for n in range(3)]
        following = links(response).get("next")
        if following is None:
            break
        response = follower.api.get(following)
        page = ids_of(ok(response))
        if not page:
            break
        pages.append(page)
    seen = [i for page in pages for i in page]
    assert seen == before, (seen, before)
    # The first page's prev link now gives what arrived meanwhile: the 7 just above it, newest first.
    assert ids_of(ok(follower.api.get(first_prev))) == sorted(arrived)[:7][::-1]
    everything = [i for page in walk(follower.api, path, {"limit": 40}) for i in ids_of(page)]
    assert everything == sorted(before + arrived, reverse=True)


def test_followers_and_following_page_40_by_default_up_to_80(server):
    """On the demo's most followed and most following accounts, whose lists are the longest."""
    checked = 0
    for token in server.demo_tokens.values():
        me = ok(server.api.as_(token).get("/api/v1/accounts/verify_credentials"))
        for kind, total in (("followers", me["followers_count"]), ("following", me["following_count"])):
            path = f"/api/v1/accounts/{me['id']}/{kind}"
            assert len(ok(server.api.get(path))) == min(total, 40)
            assert len(ok(server.api.get(path, params={"limit": 1000}))) == min(total, 80)
            everyone = [a["id"] for page in walk(server.api, path, {"limit": 30}) for a in page]
            assert len(everyone) == len(set(everyone)) == total, (kind, len(everyone), total)
            checked += total > 80
    assert checked, "no demo account has more than 80 followers or follows: the maximum is unchecked"


def test_suggestions_are_40_by_default_up_to_80(server):
    def suggested(token):
        return len(ok(server.api.as_(token).get("/api/v2/suggestions", params={"limit": 80})))

    token = max(server.demo_tokens.values(), key=suggested)
    api, most = server.api.as_(token), suggested(token)
    assert most > 40, "no demo account has more than 40 suggestions: the default is unchecked"
    assert len(ok(api.get("/api/v2/suggestions"))) == min(most, 40)
    assert len(ok(api.get("/api/v2/suggestions", params={"limit": 1000}))) == most <= 80
    assert len(ok(api.get("/api/v2/suggestions", params={"limit": 2}))) == min(most, 2)


def test_trends_are_20_by_default_up_to_40(server):
    assert len(ok(server.api.get("/api/v1/trends/statuses"))) <= 20
    assert len(ok(server.api.get("/api/v1/trends/statuses", params={"limit": 1000}))) <= 40


@pytest.mark.parametrize("limit", ["-1", "0", "abc", "1e3", str(10**30), "", "4.5"])
def test_a_bad_limit_is_clamped_or_refused_never_a_server_error(server, paged, limit):
    author, follower, _ = paged
    for api, path, most in (
        (follower.api, "/api/v1/timelines/home", 40),
        (server.api, f"/api/v1/accounts/{author.id}/statuses", 40),
        (server.api, f"/api/v1/accounts/{follower.id}/following", 80),
        (follower.api, "/api/v2/notifications", 80),
        (follower.api, "/api/v2/suggestions", 80),
        (server.api, "/api/v1/trends/statuses", 40),
    ):
        response = api.get(path, params={"limit": limit})
        if response.status_code == 200:
            body = response.json()
            page = body["notification_groups"] if isinstance(body, dict) else body
            assert len(page) <= most
        else:
            error(response, 400, 422)


@pytest.mark.parametrize("bound", ["max_id", "min_id", "since_id"])
@pytest.mark.parametrize("value", ["abc", "-1", "1e3", str(10**30), "0x10", " 5"])
def test_a_malformed_paging_id_is_refused_or_ignored_never_a_server_error(server, paged, bound, value):
    author, follower, _ = paged
    for api, path in (
        (follower.api, "/api/v1/timelines/home"),
        (server.api, f"/api/v1/accounts/{author.id}/statuses"),
        (server.api, f"/api/v1/accounts/{author.id}/followers"),
        (follower.api, "/api/v2/notifications"),
    ):
        response = api.get(path, params={bound: value})
        if response.status_code != 200:
            error(response, 400, 422)


def test_a_page_of_nothing_has_no_link_header(server, new_user):
    user = new_user()
    response = user.api.get("/api/v1/timelines/home")
    assert ok(response) == [] and links(response) == {}
    response = server.api.get(f"/api/v1/accounts/{user.id}/followers")
    assert ok(response) == [] and links(response) == {}
