"""Favourites, who favourited, the grouped notifications they make, and trending statuses
(docs.joinmastodon.org methods/statuses#favourite, #favourited_by; methods/grouped_notifications,
Mastodon 4.3; methods/trends#statuses).

Favourites are counted in each worker and written behind to Redis every second: the answer to a
favourite shows it at once; a read on the other worker may lag by up to a flush, so cross-worker reads
are retried for a few seconds, and must then be exact (never more, never less).

Assumptions where the docs leave freedom: favouriting twice and unfavouriting a status not favourited
answer 200 with the Status (Mastodon's behaviour); favourite and follow notifications are grouped per
status and type (``notifications_count`` counts the group, ``sample_account_ids`` are some of the
accounts, the most recent first, each in ``accounts``); trends rank the statuses favourited in the
last hour by how many favourites they got then.
"""

from __future__ import annotations

import pytest

from . import eventually, in_parallel, links, ok, on_both_workers, walk, worker_of

NOTIFICATION_GROUP_KEYS = {
    "group_key", "notifications_count", "type", "most_recent_notification_id", "page_min_id", "page_max_id",
    "latest_page_notification_at", "sample_account_ids",
}  # fmt: skip


def count_of(user, status_id):
    return ok(user.api.get(f"/api/v1/statuses/{status_id}"))


def test_favouriting_twice_counts_once_and_unfavouriting_uncounts(server, new_users):
    """The answer to a favourite or an unfavourite shows its own effect, whichever worker answers (here
    the next ones, on the other worker too, come well within a flush interval of the first)."""
    author, fan = new_users(2)
    status = author.post_status()
    path = f"/api/v1/statuses/{status['id']}"
    for answer in on_both_workers(lambda: fan.api.post(f"{path}/favourite")):
        shown = ok(answer)
        assert (shown["id"], shown["favourited"], shown["favourites_count"]) == (status["id"], True, 1), (
            worker_of(answer),
            shown["favourites_count"],
        )

    def seen_once():
        shown = count_of(fan, status["id"])
        assert (shown["favourited"], shown["favourites_count"]) == (True, 1), shown["favourites_count"]
        assert count_of(author, status["id"])["favourited"] is False

    for _ in range(6):  # on both workers
        eventually(seen_once)
    for answer in on_both_workers(lambda: fan.api.post(f"{path}/unfavourite")):
        shown = ok(answer)
        assert (shown["favourited"], shown["favourites_count"]) == (False, 0), (
            worker_of(answer),
            shown["favourites_count"],
        )

    def seen_none():
        shown = count_of(fan, status["id"])
        assert (shown["favourited"], shown["favourites_count"]) == (False, 0), shown["favourites_count"]

    for _ in range(6):
        eventually(seen_none)
    assert ok(server.api.get(f"{path}/favourited_by")) == []


def test_concurrent_favourites_count_exactly_and_are_listed(server, new_user, crowd):
    fans = crowd[:8]
    # The kernel hands each new connection to whichever worker accepts first: on a busy machine one
    # worker may take a whole round. A round that reaches both workers is the one this test is about.
    for _ in range(5):
        author = new_user()  # one status each: the test lists the author's statuses below
        status = author.post_status()
        answers = in_parallel(
            [
                lambda fan=fan, path=f"/api/v1/statuses/{status['id']}/favourite": fan.api.post(path)
                for fan in fans
            ]
        )
        for answer in answers:
            body = ok(answer)
            assert body["favourited"] is True and 1 <= body["favourites_count"] <= len(fans)
        if len({worker_of(a) for a in answers}) == 2:
            break
    else:
        pytest.fail("in 5 rounds of parallel favourites, each round went to one worker")

    def counted():
        assert count_of(author, status["id"])["favourites_count"] == len(fans)
        (listed,) = ok(server.api.get(f"/api/v1/accounts/{author.id}/statuses"))
        assert listed["favourites_count"] == len(fans)

    for _ in range(4):
        eventually(counted)
    by = ok(server.api.get(f"/api/v1/statuses/{status['id']}/favourited_by"))
    assert sorted(a["id"] for a in by) == sorted(fan.id for fan in fans)
    paged = [
        a["id"]
        for page in walk(server.api, f"/api/v1/statuses/{status['id']}/favourited_by", {"limit": 3})
        for a in page
    ]
    assert sorted(paged) == sorted(fan.id for fan in fans) and len(paged) == len(fans)


def test_the_same_account_favouriting_at_once_counts_once(server, new_users):
    author, fan = new_users(2)
    status = author.post_status()
    answers = in_parallel([lambda: fan.api.post(f"/api/v1/statuses/{status['id']}/favourite")] * 4)
    assert all(ok(a)["favourited"] for a in answers)
    eventually(lambda: _assert_equal(count_of(author, status["id"])["favourites_count"], 1))
    assert [a["id"] for a in ok(server.api.get(f"/api/v1/statuses/{status['id']}/favourited_by"))] == [fan.id]


def _assert_equal(found, expected):
    assert found == expected, (found, expected)


def test_favourited_by_is_newest_first_40_by_default_up_to_80(server, new_user, crowd):
    author = new_user()
    status = author.post_status()
    for fan in crowd:  # one by one: the order is known
        ok(fan.api.post(f"/api/v1/statuses/{status['id']}/favourite"))
    newest_first = [fan.id for fan in reversed(crowd)]
    path = f"/api/v1/statuses/{status['id']}/favourited_by"
    response = server.api.get(path)
    assert [a["id"] for a in ok(response)] == newest_first[:40]
    assert "next" in links(response)
    assert [a["id"] for a in ok(server.api.get(path, params={"limit": 1000}))] == newest_first[:80]
    assert [a["id"] for page in walk(server.api, path, {"limit": 7}) for a in page] == newest_first


def test_favourites_notify_the_author_as_one_group(server, new_users, crowd):
    author, other = new_users(2)
    status = author.post_status("notify me")
    fans = crowd[30:36]
    for fan in fans:
        ok(fan.api.post(f"/api/v1/statuses/{status['id']}/favourite"))
    ok(other.api.post(f"/api/v1/accounts/{author.id}/follow"))
    body = ok(author.api.get("/api/v2/notifications"))
    assert set(body) >= {"accounts", "statuses", "notification_groups"}, set(body)
    groups = body["notification_groups"]
    for group in groups:
        assert set(group) >= NOTIFICATION_GROUP_KEYS, NOTIFICATION_GROUP_KEYS - set(group)
        for key in ("most_recent_notification_id", "page_min_id", "page_max_id"):
            assert isinstance(group[key], str) and group[key].isdigit(), (key, group[key])
        assert (
            int(group["page_min_id"])
            <= int(group["page_max_id"])
            == int(group["most_recent_notification_id"])
        )
    favourites = [g for g in groups if g["type"] == "favourite"]
    follows = [g for g in groups if g["type"] == "follow"]
    assert len(favourites) == 1 and len(follows) == 1, groups
    (group,) = favourites
    assert group["notifications_count"] == len(fans) and group["status_id"] == status["id"]
    sample = group["sample_account_ids"]
    assert sample and set(sample) <= {fan.id for fan in fans} and len(set(sample)) == len(sample)
    assert sample[0] == fans[-1].id  # the most recent first
    assert follows[0]["notifications_count"] == 1 and follows[0]["sample_account_ids"] == [other.id]
    shown = {a["id"] for a in body["accounts"]}
    assert set(sample) | {other.id} <= shown
    assert [s["id"] for s in body["statuses"]] == [status["id"]]
    assert groups.index(follows[0]) < groups.index(group)  # the follow came last: newest group first
    # limit counts groups; the next page holds the rest.
    response = author.api.get("/api/v2/notifications", params={"limit": 1})
    first = ok(response)["notification_groups"]
    assert [g["type"] for g in first] == ["follow"]
    rest = ok(author.api.get(links(response)["next"]))["notification_groups"]
    assert [(g["type"], g["notifications_count"]) for g in rest] == [("favourite", len(fans))]


def test_notifications_filter_by_type_and_need_none_to_be_empty(server, new_users):
    author, fan = new_users(2)
    assert ok(author.api.get("/api/v2/notifications")) == {
        "accounts": [],
        "statuses": [],
        "notification_groups": [],
    }
    status = author.post_status()
    ok(fan.api.post(f"/api/v1/statuses/{status['id']}/favourite"))
    fan.follow(author)
    only = ok(author.api.get("/api/v2/notifications", params={"types[]": "follow"}))["notification_groups"]
    assert [g["type"] for g in only] == ["follow"]
    without = ok(author.api.get("/api/v2/notifications", params={"exclude_types[]": "follow"}))
    assert [g["type"] for g in without["notification_groups"]] == ["favourite"]


def test_statuses_favourited_now_trend_ranked_by_favourites(server, new_user, crowd):
    author = new_user("trendy")
    statuses = [author.post_status(f"trend {n}")["id"] for n in range(3)]
    shares = (14, 9, 4)  # favourites of each, by distinct accounts, spread across both workers
    workers = set()
    calls = []
    for status_id, share in zip(statuses, shares):
        for fan in crowd[-share:]:
            calls.append(
                lambda fan=fan, status_id=status_id: fan.api.post(f"/api/v1/statuses/{status_id}/favourite")
            )
    for start in range(0, len(calls), 8):
        for answer in in_parallel(calls[start : start + 8]):
            ok(answer)
            workers.add(worker_of(answer))
    assert len(workers) == 2, "every favourite went to one worker"

    def ranked():
        trending = [s["id"] for s in ok(server.api.get("/api/v1/trends/statuses", params={"limit": 40}))]
        assert set(statuses) <= set(trending), (statuses, trending)
        assert sorted(statuses, key=trending.index) == statuses, [trending.index(s) for s in statuses]
        assert len(trending) == len(set(trending))
        return trending

    eventually(ranked, seconds=8)

    def counted():
        found = ok(server.api.get("/api/v1/trends/statuses", params={"limit": 40}))
        shown = {entity["id"]: entity["favourites_count"] for entity in found if entity["id"] in statuses}
        assert shown == dict(zip(statuses, shares)), shown

    eventually(counted)

    def offset_pages_the_ranking():  # other tests' statuses may still move while their counts arrive
        trending = [s["id"] for s in ok(server.api.get("/api/v1/trends/statuses", params={"limit": 40}))]
        position = trending.index(statuses[1])
        moved = ok(server.api.get("/api/v1/trends/statuses", params={"limit": 1, "offset": position}))
        assert [s["id"] for s in moved] == [statuses[1]]

    eventually(offset_pages_the_ranking)


def test_notification_groups_are_40_by_default_up_to_80_and_trends_20_up_to_40(server, new_users):
    author, fan = new_users(2)
    statuses = [author.post_status(f"one of many {n}")["id"] for n in range(41)]
    for status_id in statuses:  # a group per status
        ok(fan.api.post(f"/api/v1/statuses/{status_id}/favourite"))
    response = author.api.get("/api/v2/notifications")
    groups = ok(response)["notification_groups"]
    assert [g["status_id"] for g in groups] == statuses[::-1][:40]
    assert all(g["notifications_count"] == 1 and g["sample_account_ids"] == [fan.id] for g in groups)
    rest = ok(author.api.get(links(response)["next"]))["notification_groups"]
    assert [g["status_id"] for g in rest] == [statuses[0]]
    every = ok(author.api.get("/api/v2/notifications", params={"limit": 1000}))["notification_groups"]
    assert [g["status_id"] for g in every] == statuses[::-1]  # 41: all of them, at most 80

    def trends_are_paged():
        assert len(ok(server.api.get("/api/v1/trends/statuses"))) == 20
        assert len(ok(server.api.get("/api/v1/trends/statuses", params={"limit": 1000}))) == 40

    eventually(trends_are_paged)  # 41 statuses favourited now: more than 40 trend
