"""Home timelines (docs.joinmastodon.org methods/timelines#home) across the service's two ways of
delivering posts: fanned out on write for authors with at most the fan-out limit of followers (5 in
these tests), pulled at read time for bigger ones. A follower sees both the same way; concurrent posts
all arrive; a muted account's posts are left out (methods/mutes: "statuses from muted accounts will
not appear in the home timeline").
"""

from __future__ import annotations

import threading

import pytest

from . import ids_of, in_parallel, ok, walk
from .conftest import FANOUT_LIMIT

pytestmark = pytest.mark.home_feeds


def home_ids(user):
    return [i for page in walk(user.api, "/api/v1/timelines/home", {"limit": 40}) for i in ids_of(page)]


def test_posts_of_small_and_big_authors_both_reach_the_home_timeline(server, new_users, crowd):
    small, big, follower = new_users(3)
    follower.follow(small)
    follower.follow(big)
    for fan in crowd[:FANOUT_LIMIT]:
        fan.follow(big)
    assert ok(server.api.get(f"/api/v1/accounts/{big.id}"))["followers_count"] == FANOUT_LIMIT + 1
    posted = [small.post_status("small 1"), big.post_status("big 1"), small.post_status("small 2")]
    posted.append(big.post_status("big 2"))
    expected = sorted((int(s["id"]) for s in posted), reverse=True)
    assert home_ids(follower) == expected
    for fan in crowd[:FANOUT_LIMIT]:  # the big author's other followers see its posts too
        assert {s["id"] for s in fan.home(limit=40)} >= {posted[1]["id"], posted[3]["id"]}


def test_an_author_who_outgrows_the_limit_keeps_every_post_on_home(server, new_users, crowd):
    author, follower = new_users(2)
    follower.follow(author)
    before = [author.post_status(f"before {n}")["id"] for n in range(3)]
    for fan in crowd[5 : 5 + FANOUT_LIMIT + 2]:
        fan.follow(author)
    after = [author.post_status(f"after {n}")["id"] for n in range(3)]
    expected = sorted((int(i) for i in before + after), reverse=True)
    assert home_ids(follower) == expected
    # And back under the limit: still every post, once.
    for fan in crowd[5 : 5 + FANOUT_LIMIT + 2]:
        ok(fan.api.post(f"/api/v1/accounts/{author.id}/unfollow"))
    later = [author.post_status(f"later {n}")["id"] for n in range(2)]
    assert home_ids(follower) == sorted((int(i) for i in before + after + later), reverse=True)


def test_concurrent_posts_by_several_authors_all_reach_a_common_follower(server, new_users, crowd):
    first, second, big, follower = new_users(4)
    for author in (first, second, big):
        follower.follow(author)
    for fan in crowd[12 : 12 + FANOUT_LIMIT]:
        fan.follow(big)
    lock, posted = threading.Lock(), []

    def posting(author):
        def run():
            for n in range(5):
                status = author.post_status(f"{author.username} at once {n}")
                with lock:
                    posted.append(int(status["id"]))

        return run

    in_parallel([posting(first), posting(second), posting(big)])
    assert len(posted) == len(set(posted)) == 15
    assert home_ids(follower) == sorted(posted, reverse=True)


def test_two_posts_at_the_same_moment_to_one_follower_both_arrive(server, new_users):
    for _ in range(3):
        first, second, follower = new_users(3)
        follower.follow(first)
        follower.follow(second)
        a, b = in_parallel([first.post_status, second.post_status])
        assert home_ids(follower) == sorted((int(a["id"]), int(b["id"])), reverse=True)


def test_a_muted_account_is_left_out_of_home_and_back_when_unmuted(server, new_users, crowd):
    small, big, follower = new_users(3)
    follower.follow(small)
    follower.follow(big)
    for fan in crowd[20 : 20 + FANOUT_LIMIT]:
        fan.follow(big)
    early = [small.post_status("early small")["id"], big.post_status("early big")["id"]]
    for author in (small, big):
        assert ok(follower.api.post(f"/api/v1/accounts/{author.id}/mute"))["muting"] is True
    late = [small.post_status("late small")["id"], big.post_status("late big")["id"]]
    assert home_ids(follower) == []
    ok(follower.api.post(f"/api/v1/accounts/{small.id}/unmute"))
    assert home_ids(follower) == sorted((int(early[0]), int(late[0])), reverse=True)
    ok(follower.api.post(f"/api/v1/accounts/{big.id}/unmute"))
    assert home_ids(follower) == sorted((int(i) for i in early + late), reverse=True)
    # Muting does not unfollow.
    relationships = ok(
        follower.api.get("/api/v1/accounts/relationships", params={"id[]": [small.id, big.id]})
    )
    assert all(r["following"] and not r["muting"] for r in relationships)


def test_home_holds_only_followed_accounts_and_my_own_posts(server, new_users):
    me, followed, stranger = new_users(3)
    me.follow(followed)
    mine = me.post_status("mine")["id"]
    theirs = followed.post_status("theirs")["id"]
    stranger.post_status("not for me")
    assert home_ids(me) == sorted((int(mine), int(theirs)), reverse=True)
