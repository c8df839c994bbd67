"""Follows, mutes and what is read from the follow graph: relationships, followers and following,
familiar followers, suggestions (docs.joinmastodon.org methods/accounts, methods/suggestions;
entities/Relationship, FamiliarFollowers, Suggestion).

The service keeps the graph in every worker; a follow answered by one worker must be seen by the
follower's very next request, whichever worker serves it. A client cannot choose the worker: every
request here opens a fresh connection, and the rounds go on until both directions (follow on one
worker, read on the other, each way) have been seen.

Assumptions where the docs leave freedom: a follow that already exists, an unfollow that does not, and
an unmute of an account not muted all answer 200 with the Relationship (Mastodon's behaviour); following
oneself is refused with a 4xx.
"""

from __future__ import annotations

import pytest

from . import error, ids_of, ok, walk, worker_of

RELATIONSHIP_KEYS = {
    "id", "following", "showing_reblogs", "notifying", "followed_by", "blocking", "blocked_by", "muting",
    "muting_notifications", "requested", "domain_blocking", "endorsed", "note",
}  # fmt: skip
ROUNDS = 40  # at most; the rounds stop once both directions have been seen


def relationship(user, other):
    (found,) = ok(user.api.get("/api/v1/accounts/relationships", params={"id[]": other.id}))
    assert set(found) >= RELATIONSHIP_KEYS, RELATIONSHIP_KEYS - set(found)
    assert found["id"] == other.id
    return found


def following_ids(server, user):
    return [
        a["id"]
        for page in walk(server.api, f"/api/v1/accounts/{user.id}/following", {"limit": 80})
        for a in page
    ]


def follower_ids(server, user):
    return [
        a["id"]
        for page in walk(server.api, f"/api/v1/accounts/{user.id}/followers", {"limit": 80})
        for a in page
    ]


def test_follow_answers_the_relationship_and_both_counts_move(server, new_user):
    follower, followee = new_user(), new_user()
    answer = ok(follower.api.post(f"/api/v1/accounts/{followee.id}/follow"))
    assert set(answer) >= RELATIONSHIP_KEYS
    assert answer["id"] == followee.id and answer["following"] is True and answer["followed_by"] is False
    assert relationship(followee, follower)["followed_by"] is True
    assert ok(server.api.get(f"/api/v1/accounts/{followee.id}"))["followers_count"] == 1
    assert ok(follower.api.get("/api/v1/accounts/verify_credentials"))["following_count"] == 1
    again = ok(follower.api.post(f"/api/v1/accounts/{followee.id}/follow"))
    assert again["following"] is True
    assert ok(server.api.get(f"/api/v1/accounts/{followee.id}"))["followers_count"] == 1
    answer = ok(follower.api.post(f"/api/v1/accounts/{followee.id}/unfollow"))
    assert answer["following"] is False
    assert ok(follower.api.post(f"/api/v1/accounts/{followee.id}/unfollow"))["following"] is False
    assert ok(server.api.get(f"/api/v1/accounts/{followee.id}"))["followers_count"] == 0


def test_following_oneself_or_no_one_is_refused(server, new_user):
    user = new_user()
    error(user.api.post(f"/api/v1/accounts/{user.id}/follow"), 400, 403, 422)
    error(user.api.post("/api/v1/accounts/999999999999/follow"), 404)
    error(user.api.post("/api/v1/accounts/999999999999/unfollow"), 404)


@pytest.mark.home_feeds
def test_a_follow_on_one_worker_is_seen_by_the_next_request_on_the_other(server, new_user):
    follower = new_user("follower")
    directions = set()  # (worker that followed, worker that read)
    followees = []
    for _ in range(ROUNDS):
        followee = new_user("followee")
        posts = [followee.post_status(f"{followee.username} {n}")["id"] for n in range(2)][::-1]
        followees.append((followee, posts))
        followed = follower.api.post(f"/api/v1/accounts/{followee.id}/follow")
        assert ok(followed)["following"] is True
        home = follower.api.get("/api/v1/timelines/home", params={"limit": 40})
        assert [s["id"] for s in ok(home) if s["account"]["id"] == followee.id] == posts, (
            "home misses the posts"
        )
        read = follower.api.get("/api/v1/accounts/relationships", params={"id[]": followee.id})
        assert ok(read)[0]["following"] is True
        listed = follower.api.get(f"/api/v1/accounts/{follower.id}/following", params={"limit": 80})
        assert followee.id in [a["id"] for a in ok(listed)]
        back = server.api.get(f"/api/v1/accounts/{followee.id}/followers")
        assert [a["id"] for a in ok(back)] == [follower.id]
        for response in (home, read, listed, back):
            directions.add((worker_of(followed), worker_of(response)))
        crossed = {(a, b) for a, b in directions if a != b}
        if len(crossed) == 2:
            break
    assert len(crossed) == 2, f"in {len(followees)} rounds the reads crossed workers only as {crossed}"
    assert ok(follower.api.get("/api/v1/accounts/verify_credentials"))["following_count"] == len(followees)

    def unfollow(followee, posts):
        unfollowed = follower.api.post(f"/api/v1/accounts/{followee.id}/unfollow")
        assert ok(unfollowed)["following"] is False
        home = follower.api.get("/api/v1/timelines/home", params={"limit": 40})
        assert not set(posts) & {s["id"] for s in ok(home)}, "an unfollowed account's posts stay on home"
        read = follower.api.get("/api/v1/accounts/relationships", params={"id[]": followee.id})
        assert ok(read)[0]["following"] is False
        listed = follower.api.get(f"/api/v1/accounts/{follower.id}/following", params={"limit": 80})
        assert followee.id not in [a["id"] for a in ok(listed)]
        return {(worker_of(unfollowed), worker_of(response)) for response in (home, read, listed)}

    directions = set()
    for followee, posts in followees:
        directions |= unfollow(followee, posts)
    assert ok(follower.api.get("/api/v1/timelines/home")) == []
    assert following_ids(server, follower) == []
    # More rounds on one followee (follow, then unfollow) until the unfollows crossed both ways too.
    followee, posts = followees[0]
    for _ in range(ROUNDS):
        if len({(a, b) for a, b in directions if a != b}) == 2:
            break
        assert ok(follower.api.post(f"/api/v1/accounts/{followee.id}/follow"))["following"] is True
        directions |= unfollow(followee, posts)
    crossed = {(a, b) for a, b in directions if a != b}
    assert len(crossed) == 2, f"the reads after unfollows crossed workers only as {crossed}"


def test_followers_and_following_are_newest_first_and_page_by_link(server, new_users):
    star, *fans = new_users(7)
    for fan in fans:
        fan.follow(star)
        star.follow(fan)
    newest_first = [fan.id for fan in reversed(fans)]
    assert follower_ids(server, star) == newest_first
    assert following_ids(server, star) == newest_first
    pages = list(walk(server.api, f"/api/v1/accounts/{star.id}/followers", {"limit": 2}))
    assert [len(p) for p in pages] == [2, 2, 2]
    assert [a["id"] for p in pages for a in p] == newest_first
    for page in pages:
        for account in page:
            assert account["followers_count"] == 1 and account["following_count"] == 1


def test_relationships_take_several_ids_and_unknown_ones(server, new_users):
    me, followed, follower, stranger = new_users(4)
    me.follow(followed)
    follower.follow(me)
    found = ok(
        me.api.get("/api/v1/accounts/relationships", params={"id[]": [followed.id, follower.id, stranger.id]})
    )
    by_id = {r["id"]: r for r in found}
    assert set(by_id) == {followed.id, follower.id, stranger.id}
    assert (by_id[followed.id]["following"], by_id[followed.id]["followed_by"]) == (True, False)
    assert (by_id[follower.id]["following"], by_id[follower.id]["followed_by"]) == (False, True)
    assert (by_id[stranger.id]["following"], by_id[stranger.id]["followed_by"]) == (False, False)
    assert ok(me.api.get("/api/v1/accounts/relationships")) == []


def test_familiar_followers_are_the_followers_i_follow(server, new_users):
    me, target, friend_a, friend_b, stranger = new_users(5)
    for friend in (friend_a, friend_b):
        me.follow(friend)
        friend.follow(target)
    stranger.follow(target)
    other = new_users(1)[0]
    found = ok(me.api.get("/api/v1/accounts/familiar_followers", params={"id[]": [target.id, other.id]}))
    assert [entry["id"] for entry in found] == [target.id, other.id]
    assert {a["id"] for a in found[0]["accounts"]} == {friend_a.id, friend_b.id}
    assert found[1]["accounts"] == []
    for account in found[0]["accounts"]:
        assert account["username"] in (friend_a.username, friend_b.username)


def test_suggestions_are_friends_of_friends_never_followed_nor_me(server, new_users):
    me, friend, suggested, followed = new_users(4)
    me.follow(friend)
    me.follow(followed)
    friend.follow(suggested)
    friend.follow(followed)
    found = ok(me.api.get("/api/v2/suggestions"))
    for entry in found:
        assert set(entry) >= {"sources", "account"} and isinstance(entry["sources"], list)
        assert entry["account"]["id"] not in (me.id, friend.id, followed.id)
    assert suggested.id in [entry["account"]["id"] for entry in found]


def test_demo_suggestions_leave_out_the_accounts_followed(server):
    for token in server.demo_tokens.values():
        api = server.api.as_(token)
        me = ok(api.get("/api/v1/accounts/verify_credentials"))
        followed = set(
            ids_of(
                [
                    a
                    for page in walk(server.api, f"/api/v1/accounts/{me['id']}/following", {"limit": 80})
                    for a in page
                ]
            )
        )
        suggested = [
            int(entry["account"]["id"]) for entry in ok(api.get("/api/v2/suggestions", params={"limit": 80}))
        ]
        assert len(suggested) == len(set(suggested))
        assert not set(suggested) & followed and int(me["id"]) not in suggested


def test_mute_and_unmute_answer_the_relationship(server, new_users):
    me, other = new_users(2)
    muted = ok(me.api.post(f"/api/v1/accounts/{other.id}/mute"))
    assert set(muted) >= RELATIONSHIP_KEYS and muted["muting"] is True
    assert relationship(me, other)["muting"] is True
    assert relationship(other, me)["muting"] is False
    assert ok(me.api.post(f"/api/v1/accounts/{other.id}/unmute"))["muting"] is False
    assert relationship(me, other)["muting"] is False
    assert ok(me.api.post(f"/api/v1/accounts/{other.id}/unmute"))["muting"] is False
    error(me.api.post("/api/v1/accounts/999999999999/mute"), 404)


def test_a_muted_account_is_left_out_of_suggestions(server, new_users):
    me, friend, suggested = new_users(3)
    me.follow(friend)
    friend.follow(suggested)
    assert suggested.id in [e["account"]["id"] for e in ok(me.api.get("/api/v2/suggestions"))]
    ok(me.api.post(f"/api/v1/accounts/{suggested.id}/mute"))
    assert suggested.id not in [e["account"]["id"] for e in ok(me.api.get("/api/v2/suggestions"))]
