"""Statuses: post, view, delete (docs.joinmastodon.org methods/statuses, entities/Status), and what igcore
adds to the entity: ``"igcore": {"views_count", "unique_viewers_count"}``.

Assumptions where the docs leave freedom: the 500 characters are counted as Unicode code points (one
per character here: no URLs, no combining marks); viewer-dependent fields (``favourited``, ``muted``...)
are present with a user token; a view is counted by ``GET /api/v1/statuses/:id`` only (lists count none).
Counts are written behind (each worker flushes every second), so what is read on the other worker may
lag by that much: reads that cross workers are retried for a few seconds, never accepted wrong.
"""

from __future__ import annotations

from . import ID, ISO_8601, error, eventually, ok

STATUS_KEYS = {
    "id", "uri", "created_at", "account", "content", "visibility", "sensitive", "spoiler_text",
    "media_attachments", "mentions", "tags", "emojis", "reblogs_count", "favourites_count",
    "replies_count", "url", "in_reply_to_id", "in_reply_to_account_id", "reblog", "poll", "card",
    "language", "edited_at",
}  # fmt: skip
VIEWER_KEYS = {"favourited", "reblogged", "muted", "bookmarked"}


def assert_status(entity, author=None):
    assert set(entity) >= STATUS_KEYS, STATUS_KEYS - set(entity)
    assert isinstance(entity["id"], str) and ID.match(entity["id"]), entity["id"]
    assert ISO_8601.match(entity["created_at"]), entity["created_at"]
    assert entity["visibility"] in ("public", "unlisted", "private", "direct")
    for count in ("reblogs_count", "favourites_count", "replies_count"):
        assert isinstance(entity[count], int) and entity[count] >= 0
    counted = entity["igcore"]
    assert isinstance(counted["views_count"], int) and isinstance(counted["unique_viewers_count"], int), (
        counted
    )
    if author is not None:
        assert entity["account"]["id"] == author.id and entity["account"]["username"] == author.username


def test_a_posted_status_is_a_status_entity(server, new_user):
    author = new_user()
    posted = ok(author.api.post("/api/v1/statuses", data={"status": "Hello, world"}))
    assert_status(posted, author)
    assert posted["content"] == "<p>Hello, world</p>"
    assert posted["visibility"] == "public" and posted["sensitive"] is False
    assert posted["favourites_count"] == 0 and posted["reblog"] is None
    assert posted["favourited"] is False and set(posted) >= VIEWER_KEYS
    assert posted["igcore"] == {"views_count": 0, "unique_viewers_count": 0}


def test_content_is_escaped_html(server, new_user):
    author = new_user()
    posted = author.post_status('<script>alert("x")</script> & more')
    assert "<script>" not in posted["content"]
    assert "&lt;script&gt;" in posted["content"] and "&amp;" in posted["content"]


def test_a_status_is_public_and_viewer_fields_need_a_token(server, new_user):
    author = new_user()
    posted = author.post_status()
    public = ok(server.api.get(f"/api/v1/statuses/{posted['id']}"))
    assert_status(public, author)
    assert not set(public) & VIEWER_KEYS, set(public) & VIEWER_KEYS  # Mastodon leaves them out
    assert ok(author.api.get(f"/api/v1/statuses/{posted['id']}"))["favourited"] is False


def test_spoiler_text_sensitive_and_language_are_kept(server, new_user):
    author = new_user()
    form = {"status": "spoiled", "spoiler_text": "a warning", "sensitive": "true", "language": "en"}
    posted = ok(author.api.post("/api/v1/statuses", data=form))
    assert (posted["spoiler_text"], posted["sensitive"], posted["language"]) == ("a warning", True, "en")


def test_only_statuses_everyone_may_read_are_taken(server, new_user):
    # Followers-only and direct statuses would need audience checks on every read, which the service
    # does not make: it refuses them rather than show them to everyone.
    author = new_user()
    assert (
        ok(author.api.post("/api/v1/statuses", data={"status": "a", "visibility": "unlisted"}))["visibility"]
        == "unlisted"
    )
    for visibility in ("private", "direct", "everyone"):
        form = {"status": "not for all", "visibility": visibility}
        error(author.api.post("/api/v1/statuses", data=form), 422)
    assert ok(server.api.get(f"/api/v1/accounts/{author.id}"))["statuses_count"] == 1


def test_the_limit_is_500_characters_not_bytes(server, new_user):
    author = new_user()
    for text in ("x" * 500, "é" * 500, "\u732b" * 500):
        assert len(ok(author.api.post("/api/v1/statuses", data={"status": text}))["content"]) > 500
    for text in ("x" * 501, "é" * 501):
        error(author.api.post("/api/v1/statuses", data={"status": text}), 422)


def test_an_empty_status_is_refused(server, new_user):
    author = new_user()
    for form in ({"status": ""}, {"status": "   \n "}, {}):
        error(author.api.post("/api/v1/statuses", data=form), 422)
    assert ok(server.api.get(f"/api/v1/accounts/{author.id}"))["statuses_count"] == 0


def test_delete_answers_the_status_with_its_text_and_it_is_gone(server, new_user):
    author, follower = new_user(), new_user()
    follower.follow(author)
    posted = author.post_status("to be deleted")
    kept = author.post_status("to be kept")
    assert posted["id"] in [s["id"] for s in follower.home()]
    deleted = ok(author.api.delete(f"/api/v1/statuses/{posted['id']}"))
    assert deleted["id"] == posted["id"] and deleted["text"] == "to be deleted"  # for delete-and-redraft
    error(server.api.get(f"/api/v1/statuses/{posted['id']}"), 404)
    error(author.api.delete(f"/api/v1/statuses/{posted['id']}"), 404)
    statuses = ok(server.api.get(f"/api/v1/accounts/{author.id}/statuses"))
    assert [s["id"] for s in statuses] == [kept["id"]]
    assert [s["id"] for s in follower.home()] == [kept["id"]]
    assert ok(server.api.get(f"/api/v1/accounts/{author.id}"))["statuses_count"] == 1


def test_views_and_unique_viewers_are_counted(server, new_users):
    author, *viewers = new_users(4)
    posted = author.post_status()
    for viewer, times in zip(viewers, (3, 2, 1)):
        for _ in range(times):
            seen = ok(viewer.api.get(f"/api/v1/statuses/{posted['id']}"))
            assert seen["igcore"]["views_count"] >= 0

    def counted():
        (listed,) = ok(server.api.get(f"/api/v1/accounts/{author.id}/statuses"))
        assert listed["igcore"] == {"views_count": 6, "unique_viewers_count": 3}, listed["igcore"]

    eventually(counted)


def test_views_shown_are_never_more_than_were_made(server, new_user):
    author, viewer = new_user(), new_user()
    posted = author.post_status()
    shown = []
    for _ in range(8):
        shown.append(ok(viewer.api.get(f"/api/v1/statuses/{posted['id']}"))["igcore"])
    assert all(s["views_count"] <= n for n, s in enumerate(shown, 1)), shown
    assert all(s["unique_viewers_count"] <= 1 for s in shown), shown
