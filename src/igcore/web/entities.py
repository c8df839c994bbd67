"""Mastodon's entities (docs.joinmastodon.org/entities) as dicts, ready for orjson or msgpack.

Ids are strings, times ISO 8601 in UTC with milliseconds, as Mastodon writes them. Counts come from the
online state: followers and following from the follow graph, favourites and views from the counters.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any, NamedTuple

from django.http import HttpRequest

import igcore

MASTODON_API = "4.3.0"
VERSION = f"{MASTODON_API} (compatible; igcore {igcore.__version__})"
MAX_CHARACTERS = 500
DESCRIPTION = "A Mastodon-compatible service whose hot paths run on igcore."


class AccountRow(NamedTuple):
    """What an Account entity shows of its row (the views read these fields, not model instances)."""

    id: int
    username: str
    display_name: str
    note: str
    created_at: datetime
    statuses_count: int
    last_status_at: datetime | None


class StatusRow(NamedTuple):
    """What a Status entity shows of its row, with its author's."""

    id: int
    account_id: int
    text: str
    spoiler_text: str
    sensitive: bool
    visibility: str
    language: str | None
    created_at: datetime
    account: AccountRow


ACCOUNT_FIELDS = AccountRow._fields
STATUS_FIELDS = StatusRow._fields[:-1]


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT00:00:00.000Z")  # Mastodon shows the day an account was made


def origin(request: HttpRequest) -> str:
    """The scheme and host of the request, worked out once per request (get_host validates the host)."""
    found: str | None = getattr(request, "igcore_origin", None)
    if found is None:
        found = request.igcore_origin = f"{request.scheme}://{request.get_host()}"
    return found


def account(request: HttpRequest, row: AccountRow, followers: int, following: int) -> dict[str, Any]:
    site = origin(request)
    url = f"{site}/@{row.username}"
    avatar = f"{site}/avatars/original/missing.png"
    header = f"{site}/headers/original/missing.png"
    return {
        "id": str(row.id),
        "username": row.username,
        "acct": row.username,
        "display_name": row.display_name,
        "locked": False,
        "bot": False,
        "discoverable": True,
        "indexable": False,
        "group": False,
        "created_at": day(row.created_at),
        "note": f"<p>{html.escape(row.note)}</p>" if row.note else "",
        "url": url,
        "uri": f"{site}/users/{row.username}",
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": int(followers),
        "following_count": int(following),
        "statuses_count": row.statuses_count,
        "last_status_at": row.last_status_at.strftime("%Y-%m-%d") if row.last_status_at else None,
        "hide_collections": False,
        "noindex": False,
        "emojis": [],
        "roles": [],
        "fields": [],
    }


def credential_account(
    request: HttpRequest, row: AccountRow, followers: int, following: int
) -> dict[str, Any]:
    entity = account(request, row, followers, following)
    entity["source"] = {
        "privacy": "public",
        "sensitive": False,
        "language": None,
        "note": row.note,
        "fields": [],
        "follow_requests_count": 0,
        "hide_collections": False,
        "discoverable": True,
        "indexable": False,
    }
    entity["role"] = {"id": "-99", "name": "", "permissions": "0", "color": "", "highlighted": False}
    return entity


def content(text: str) -> str:
    paragraphs = [html.escape(p).replace("\n", "<br />") for p in text.split("\n\n")]
    return "".join(f"<p>{p}</p>" for p in paragraphs)


def status(
    request: HttpRequest,
    row: StatusRow,
    author: dict[str, Any],
    favourites: int,
    views: int,
    unique_viewers: int | None,
    favourited: bool | None,
    muted: bool | None,
) -> dict[str, Any]:
    site = origin(request)
    url = f"{site}/@{row.account.username}/{row.id}"
    entity: dict[str, Any] = {
        "id": str(row.id),
        "created_at": iso(row.created_at),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": row.sensitive,
        "spoiler_text": row.spoiler_text,
        "visibility": row.visibility,
        "language": row.language,
        "uri": f"{site}/users/{row.account.username}/statuses/{row.id}",
        "url": url,
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": int(favourites),
        "edited_at": None,
        "content": content(row.text),
        "reblog": None,
        "application": None,
        "account": author,
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": None,
        "poll": None,
        "filtered": [],
        # Not in Mastodon's entity (clients ignore what they do not know): what igcore counts.
        "igcore": {"views_count": int(views), "unique_viewers_count": unique_viewers},
    }
    if favourited is not None:  # viewer-dependent fields, only with a user token
        entity.update(
            favourited=favourited, reblogged=False, muted=bool(muted), bookmarked=False, pinned=False
        )
    return entity


def relationship(target: int, following: bool, followed_by: bool, muting: bool) -> dict[str, Any]:
    return {
        "id": str(target),
        "following": following,
        "showing_reblogs": following,
        "notifying": False,
        "languages": None,
        "followed_by": followed_by,
        "blocking": False,
        "blocked_by": False,
        "muting": muting,
        "muting_notifications": muting,
        "requested": False,
        "requested_by": False,
        "domain_blocking": False,
        "endorsed": False,
        "note": "",
    }


def application(app: Any, secret: str | None = None) -> dict[str, Any]:
    entity = {
        "id": str(app.id),
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes.split(),
        "redirect_uri": app.redirect_uri,
        "redirect_uris": app.redirect_uri.split(),
        "client_id": app.client_id,
        "vapid_key": "",
    }
    if secret is not None:
        entity["client_secret"] = secret
        entity["client_secret_expires_at"] = 0
    return entity


def instance_v1(request: HttpRequest, users: int, statuses: int) -> dict[str, Any]:
    host = request.get_host()
    return {
        "uri": host,
        "title": "igcore",
        "short_description": "The igcore reference web service",
        "description": DESCRIPTION,
        "email": f"admin@{host.split(':')[0]}",
        "version": VERSION,
        "urls": {"streaming_api": f"wss://{host}"},
        "stats": {"user_count": users, "status_count": statuses, "domain_count": 0},
        "thumbnail": None,
        "languages": ["en"],
        "registrations": True,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": configuration(),
        "contact_account": None,
        "rules": [],
    }


def instance_v2(request: HttpRequest, active_month: int) -> dict[str, Any]:
    host = request.get_host()
    return {
        "domain": host,
        "title": "igcore",
        "version": VERSION,
        "source_url": f"{origin(request)}/",
        "description": DESCRIPTION,
        "usage": {"users": {"active_month": active_month}},
        "thumbnail": {"url": f"{origin(request)}/packs/media/images/preview.png"},
        "languages": ["en"],
        "configuration": {**configuration(), "urls": {"streaming": f"wss://{host}", "status": None}},
        "registrations": {"enabled": True, "approval_required": False, "message": None, "url": None},
        "api_versions": {"mastodon": 2},
        "contact": {"email": f"admin@{host.split(':')[0]}", "account": None},
        "rules": [],
    }


def configuration() -> dict[str, Any]:
    return {
        "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
        "statuses": {
            "max_characters": MAX_CHARACTERS,
            "max_media_attachments": 0,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {"supported_mime_types": [], "image_size_limit": 0, "video_size_limit": 0},
        "polls": {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0},
        "translation": {"enabled": False},
    }
