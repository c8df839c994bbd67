"""The Mastodon client API, for the endpoints igcore serves. Each view parses its parameters, calls one
action (``igcore.web.actions``) or reads the online state, and renders entities (``igcore.web.entities``).

Every view first runs ``_prelude``: one Redis round trip that looks up the token, reads the follow events
this worker has not applied (see ``igcore.web.follows``) and, when on, counts the request against the
rate limit.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
from django.http import HttpRequest, HttpResponse

from igcore.timeline import aggregate_activity

from . import actions, auth, entities, keys
from .http import (
    MALFORMED,
    UNEXPECTED,
    ApiError,
    Params,
    link_header,
    not_found,
    path_id,
    render,
    unprocessable,
)
from .models import Account, Application, Favourite, Notification, Status, Token
from .worker import Worker, current

View = Callable[..., Awaitable[HttpResponse]]
NOT_LOGGED_IN = "The access token is invalid"
USER_NEEDED = "This method requires an authenticated user"
VERBS = {Notification.FAVOURITE: 1, Notification.FOLLOW: 2}
VERB_NAMES = {code: name for name, code in VERBS.items()}
GROUP_WINDOW = (86_400 * 1000) << 16  # one day, in snowflake units: notifications group per day
NOTIFICATIONS_READ = 400  # notifications read to build one page of groups


class Caller:
    """Who is calling: an account (a user token), an app (a client-credentials token), or no one."""

    def __init__(self, account_id: int | None, application_id: int | None, token: bool) -> None:
        self.account_id = account_id
        self.application_id = application_id
        self.token = token
        self._mutes: set[int] | None = None

    async def mutes(self, worker: Worker) -> set[int]:
        """The accounts the caller mutes (read once per request)."""
        if self._mutes is None:
            self._mutes = await actions.mutes(worker, self.user)
        return self._mutes

    @property
    def user(self) -> int:
        if self.account_id is None:
            raise ApiError(401, NOT_LOGGED_IN) if not self.token else ApiError(422, USER_NEEDED)
        return self.account_id


def endpoint(*methods: str, who: str = "public") -> Callable[[View], View]:
    """A view of `methods`: ``who`` is "public" (a token is optional), "user" (an account's token) or
    "app" (any valid token)."""

    def wrap(view: View) -> View:
        @functools.wraps(view)
        async def run(request: HttpRequest, **path: str) -> HttpResponse:
            if request.method not in methods:
                raise ApiError(405, f"{request.method} is not allowed here")
            worker = current()
            caller = await _prelude(request, worker)
            if who == "user":
                caller.user  # noqa: B018 - raises 401/422 without an account
            elif who == "app" and not caller.token:
                raise ApiError(401, NOT_LOGGED_IN)
            return await view(request, worker, caller, **path)

        return run

    return wrap


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


async def _prelude(request: HttpRequest, worker: Worker) -> Caller:
    token = _bearer(request)
    token_digest = auth.digest(token) if token else None
    pipe = worker.redis.pipeline(transaction=False)
    if token_digest:
        pipe.get(keys.token(token_digest))
    pipe.xrange(keys.GRAPH_EVENTS, *worker.follows.pending_range(), count=10_000)
    limit = worker.rate_limit
    if limit:
        requests, seconds = limit
        window = int(time.time()) // seconds
        who = token_digest or f"ip:{request.META.get('REMOTE_ADDR', '')}"
        pipe.incr(keys.ratelimit(who, window))
        pipe.expire(keys.ratelimit(who, window), seconds + 1)
    replies = await pipe.execute()
    cached = replies.pop(0) if token_digest else None
    await worker.catch_up(replies[0])
    if limit:
        used = int(replies[1])
        reset = datetime.fromtimestamp((window + 1) * seconds, tz=timezone.utc)
        request.igcore_headers = {
            "X-RateLimit-Limit": str(requests),
            "X-RateLimit-Remaining": str(max(0, requests - used)),
            "X-RateLimit-Reset": entities.iso(reset) or "",
        }
        if used > requests:
            raise ApiError(429, "Too many requests")
    if not token_digest:
        return Caller(None, None, False)
    if cached is None:
        cached = await _lookup_token(worker, token_digest)
    if cached == b"-":
        raise ApiError(401, NOT_LOGGED_IN)
    kind, _, value = cached.decode().partition(":")
    if kind == "app":
        return Caller(None, int(value) if value else None, True)
    return Caller(int(kind), int(value) if value else None, True)


def _token_row(token_digest: str) -> dict[str, Any] | None:
    return (
        Token.objects.filter(digest=token_digest, revoked_at=None)
        .values("account_id", "application_id")
        .first()
    )


async def _lookup_token(worker: Worker, token_digest: str) -> bytes:
    row = await worker.db(_token_row, token_digest)
    if row is None:
        value, ttl = b"-", keys.MISSING_TOKEN_TTL
    else:
        app = "" if row["application_id"] is None else str(row["application_id"])
        owner = "app" if row["account_id"] is None else str(row["account_id"])
        value, ttl = f"{owner}:{app}".encode(), keys.TOKEN_TTL
    await worker.redis.set(keys.token(token_digest), value, ex=ttl)
    return value


# -- rendering many entities at once --------------------------------------------------------------------


def _exists(model: Any, row_id: int) -> bool:
    return bool(model.objects.filter(id=row_id).exists())


def _account_rows(account_ids: list[int]) -> dict[int, entities.AccountRow]:
    found = Account.objects.filter(id__in=account_ids).values_list(*entities.ACCOUNT_FIELDS)
    return {row[0]: entities.AccountRow(*row) for row in found}


def _status_rows(
    status_ids: list[int], viewer: int | None
) -> tuple[dict[int, entities.StatusRow], set[int] | None]:
    """The statuses with their authors, and which of them `viewer` favourited: one trip to the
    database's thread for both queries, tuples rather than model instances (a page's worth of
    instances costs more than its queries)."""
    author_fields = [f"account__{name}" for name in entities.ACCOUNT_FIELDS]
    found = Status.objects.filter(id__in=status_ids).values_list(*entities.STATUS_FIELDS, *author_fields)
    split = len(entities.STATUS_FIELDS)
    rows = {r[0]: entities.StatusRow._make((*r[:split], entities.AccountRow._make(r[split:]))) for r in found}
    if viewer is None:
        return rows, None
    favourites = Favourite.objects.filter(account_id=viewer, status_id__in=list(rows))
    return rows, set(favourites.values_list("status_id", flat=True))


async def _accounts(request: HttpRequest, worker: Worker, account_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Account entities in the order of `account_ids` (unknown ones left out)."""
    rows = await worker.db(_account_rows, list(account_ids)) if account_ids else {}
    ordered = [rows[i] for i in account_ids if i in rows]
    follows = worker.follows
    followers = follows.count([r.id for r in ordered], outgoing=False)
    following = follows.count([r.id for r in ordered], outgoing=True)
    return [entities.account(request, r, followers[n], following[n]) for n, r in enumerate(ordered)]


async def _account(request: HttpRequest, worker: Worker, account_id: int) -> dict[str, Any]:
    found = await _accounts(request, worker, [account_id])
    if not found:
        raise not_found()
    return found[0]


async def _statuses(
    request: HttpRequest, worker: Worker, caller: Caller, status_ids: Sequence[int]
) -> list[dict[str, Any]]:
    """Status entities in the order of `status_ids` (deleted ones left out)."""
    if not status_ids:
        return []
    rows, favourited = await worker.db(_status_rows, list(status_ids), caller.account_id)
    ordered = [rows[i] for i in status_ids if i in rows]
    if not ordered:
        return []
    ids = [r.id for r in ordered]
    authors = list(dict.fromkeys(r.account_id for r in ordered))
    follows = worker.follows
    followers = dict(zip(authors, follows.count(authors, outgoing=False).tolist()))
    following = dict(zip(authors, follows.count(authors, outgoing=True).tolist()))
    totals, viewers = await worker.counts.read(ids)
    muted = await caller.mutes(worker) if caller.account_id is not None else set()
    result = []
    for n, row in enumerate(ordered):
        author = entities.account(request, row.account, followers[row.account_id], following[row.account_id])
        result.append(
            entities.status(
                request,
                row,
                author,
                totals["favourites"][n],
                totals["views"][n],
                viewers[n],
                None if favourited is None else row.id in favourited,
                None if favourited is None else row.account_id in muted,
            )
        )
    return result


async def _status(request: HttpRequest, worker: Worker, caller: Caller, status_id: int) -> dict[str, Any]:
    found = await _statuses(request, worker, caller, [status_id])
    if not found:
        raise not_found()
    return found[0]


async def _in_window(
    worker: Worker, query: Any, params: Params, limit: int, *fields: str
) -> list[tuple[Any, ...]]:
    """`fields` of the rows of `query` in the request's paging window (Mastodon's): newest first,
    below ``max_id``, above ``since_id``; with ``min_id``, the `limit` rows just above it."""
    max_id, since_id, min_id = params.window()
    if max_id is not None:
        query = query.filter(id__lt=max_id)
    if since_id is not None:
        query = query.filter(id__gt=since_id)
    if min_id is not None:
        query = query.filter(id__gt=min_id).order_by("id").values_list(*fields)[:limit]
        return (await worker.db(list, query))[::-1]
    return await worker.db(list, query.order_by("-id").values_list(*fields)[:limit])


def _paged(
    request: HttpRequest, items: list[dict[str, Any]], ids: Sequence[int] | None = None
) -> dict[str, str]:
    """The Link header of a page whose paging ids are `ids` (by default the items' ids)."""
    if ids is None:
        ids = [int(item["id"]) for item in items]
    if not ids:
        return {}
    return link_header(request, ids[-1], ids[0])


# -- instance and accounts ------------------------------------------------------------------------------


_instance_counts: tuple[float, int, int] = (0.0, 0, 0)


def _count_rows() -> tuple[int, int]:
    return Account.objects.count(), Status.objects.count()


async def _counts(worker: Worker) -> tuple[int, int]:
    global _instance_counts
    if time.monotonic() - _instance_counts[0] > 60:  # a minute old at most: clients call this a lot
        _instance_counts = (time.monotonic(), *(await worker.db(_count_rows)))
    return _instance_counts[1], _instance_counts[2]


@endpoint("GET")
async def instance_v1(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    users, statuses = await _counts(worker)
    return render(request, entities.instance_v1(request, users, statuses))


@endpoint("GET")
async def instance_v2(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    users, _ = await _counts(worker)
    return render(request, entities.instance_v2(request, users))


def _credential_row(account_id: int) -> Account:
    return Account.objects.get(id=account_id)


@endpoint("GET", who="user")
async def verify_credentials(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    row = await worker.db(_credential_row, caller.user)
    counts = worker.follows.count([row.id], False)[0], worker.follows.count([row.id], True)[0]
    return render(request, entities.credential_account(request, row, *counts))


@endpoint("GET")
async def account(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    return render(request, await _account(request, worker, path_id(id)))


@endpoint("POST", who="app")
async def sign_up(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    params = Params(request)
    username = params.required("username", 30)
    email = params.required("email", 254)
    password = params.required("password", 72)
    if not params.boolean("agreement"):
        raise unprocessable("Agreement must be accepted")
    token = await actions.sign_up(worker, username, email, password, caller.application_id)
    return render(request, _token_entity(token, auth.DEFAULT_SCOPES))


@endpoint("GET")
async def account_statuses(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    account_id = path_id(id)
    if not await worker.db(_exists, Account, account_id):
        raise not_found()
    params = Params(request)
    limit = params.limit(20, 40)
    found = await _in_window(worker, Status.objects.filter(account_id=account_id), params, limit, "id")
    items = await _statuses(request, worker, caller, [i for (i,) in found])
    return render(request, items, headers=_paged(request, items))


# -- timelines ------------------------------------------------------------------------------------------


@endpoint("GET", who="user")
async def home(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    params = Params(request)
    limit = params.limit(20, 40)
    max_id, since_id, min_id = params.window()
    me = caller.user
    muted = await caller.mutes(worker)
    items: list[dict[str, Any]] = []
    for _ in range(4):  # statuses deleted since they were fanned out leave gaps: read on past them
        ids, more = await worker.feeds.page(me, limit - len(items), max_id, since_id, min_id, muted)
        items += await _statuses(request, worker, caller, ids)
        if len(items) >= limit or not more or not ids or min_id is not None:
            break
        max_id = ids[-1]
    return render(request, items, headers=_paged(request, items))


@endpoint("GET")
async def trends(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    params = Params(request)
    limit = params.limit(20, 40)
    offset_text = params.text("offset") or "0"
    if not offset_text.isascii() or not offset_text.isdigit() or len(offset_text) > 6:
        raise unprocessable("offset must be a non-negative integer")
    items = await _statuses(request, worker, caller, await worker.counts.trends(limit, int(offset_text)))
    return render(request, items)


# -- statuses -------------------------------------------------------------------------------------------


@endpoint("POST", who="user")
async def statuses(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    params = Params(request)
    text = params.required("status", 100_000)
    if len(text) > entities.MAX_CHARACTERS:
        raise unprocessable(f"Text character limit of {entities.MAX_CHARACTERS} exceeded")
    spoiler = params.text("spoiler_text", "", 500) or ""
    visibility = params.text("visibility", "public", 10) or "public"
    if visibility in ("private", "direct"):
        # Followers-only and direct statuses need audience checks on every read; this service has none,
        # so it refuses them rather than show them to everyone.
        raise unprocessable(f"Visibility {visibility} is not supported here (public and unlisted are)")
    if visibility not in ("public", "unlisted"):
        raise unprocessable("Visibility is not included in the list")
    language = params.text("language", None, 8)
    row = await actions.post_status(
        worker, caller.user, text, spoiler, params.boolean("sensitive"), visibility, language
    )
    return render(request, await _status(request, worker, caller, row.id))


@endpoint("GET", "DELETE")
async def status(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    status_id = path_id(id)
    if request.method == "DELETE":
        entity = await _status(request, worker, caller, status_id)  # what it was, as Mastodon answers
        row = await actions.delete_status(worker, caller.user, status_id)
        entity["text"] = row.text
        entity["favourites_count"] = 0
        return render(request, entity)
    entity = await _status(request, worker, caller, status_id)
    worker.counts.view(status_id, caller.account_id)
    return render(request, entity)


@endpoint("POST", who="user")
async def favourite(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    status_id = path_id(id)
    await actions.favourite(worker, caller.user, status_id)
    return render(request, await _status(request, worker, caller, status_id))


@endpoint("POST", who="user")
async def unfavourite(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    status_id = path_id(id)
    await actions.unfavourite(worker, caller.user, status_id)
    return render(request, await _status(request, worker, caller, status_id))


@endpoint("GET")
async def favourited_by(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    status_id = path_id(id)
    if not await worker.db(_exists, Status, status_id):
        raise not_found()
    params = Params(request)
    limit = params.limit(40, 80)
    rows = await _in_window(
        worker, Favourite.objects.filter(status_id=status_id), params, limit, "id", "account_id"
    )
    items = await _accounts(request, worker, [a for _, a in rows])
    return render(request, items, headers=_paged(request, items, [f for f, _ in rows]))


# -- follows --------------------------------------------------------------------------------------------


async def _relationships(worker: Worker, caller: Caller, targets: list[int]) -> list[dict[str, Any]]:
    me = caller.user
    follows = worker.follows
    following = follows.is_following([me] * len(targets), targets)
    followed_by = follows.is_following(targets, [me] * len(targets))
    muted = await caller.mutes(worker)
    return [
        entities.relationship(t, bool(following[n]), bool(followed_by[n]), t in muted)
        for n, t in enumerate(targets)
    ]


async def _change_relationship(
    request: HttpRequest, worker: Worker, caller: Caller, id: str, change: Callable[..., Awaitable[None]]
) -> HttpResponse:
    """Follow, unfollow, mute, unmute: the action, then the Relationship as it now stands."""
    target = path_id(id)
    await change(worker, caller.user, target)
    return render(request, (await _relationships(worker, caller, [target]))[0])


@endpoint("POST", who="user")
async def follow(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    return await _change_relationship(request, worker, caller, id, actions.follow)


@endpoint("POST", who="user")
async def unfollow(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    return await _change_relationship(request, worker, caller, id, actions.unfollow)


@endpoint("POST", who="user")
async def mute(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    return await _change_relationship(request, worker, caller, id, functools.partial(actions.mute, on=True))


@endpoint("POST", who="user")
async def unmute(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    return await _change_relationship(request, worker, caller, id, functools.partial(actions.mute, on=False))


async def _follow_list(request: HttpRequest, worker: Worker, id: str, outgoing: bool) -> HttpResponse:
    account_id = path_id(id)
    if not await worker.db(_exists, Account, account_id):
        raise not_found()
    params = Params(request)
    limit = params.limit(40, 80)
    max_id, since_id, min_id = params.window()
    ids, follow_ids = worker.follows.page(account_id, outgoing, limit, max_id, since_id, min_id)
    items = await _accounts(request, worker, ids.tolist())
    return render(request, items, headers=_paged(request, items, follow_ids.tolist()))


@endpoint("GET")
async def followers(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    return await _follow_list(request, worker, id, outgoing=False)


@endpoint("GET")
async def following(request: HttpRequest, worker: Worker, caller: Caller, id: str) -> HttpResponse:
    return await _follow_list(request, worker, id, outgoing=True)


@endpoint("GET", who="user")
async def relationships(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    targets = Params(request).ids("id")
    return render(request, await _relationships(worker, caller, targets))


FAMILIAR_LIMIT = 40  # familiar followers shown per account


@endpoint("GET", who="user")
async def familiar_followers(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    me = caller.user
    targets = Params(request).ids("id")
    graph = worker.follows.graph
    result = []
    for target in targets:
        try:
            # Off the loop: it intersects two follow lists, which for big accounts are long.
            found = await worker.offload(graph.followed_by, me, target, FAMILIAR_LIMIT)
            ids = found.ids.tolist()
        except KeyError:
            ids = []
        result.append({"id": str(target), "accounts": await _accounts(request, worker, ids)})
    return render(request, result)


@endpoint("GET", who="user")
async def suggestions(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    me = caller.user
    limit = Params(request).limit(40, 80)
    muted = await caller.mutes(worker)
    try:
        # Off the loop: friends of friends reads the follow lists of everyone `me` follows.
        found = await worker.offload(worker.follows.graph.suggest, me, limit, "common", sorted(muted))
        ids = found.ids.tolist()
    except KeyError:
        ids = []
    accounts = await _accounts(request, worker, ids)
    return render(
        request,
        [{"source": "friends_of_friends", "sources": ["friends_of_friends"], "account": a} for a in accounts],
    )


# -- notifications --------------------------------------------------------------------------------------


@endpoint("GET", who="user")
async def notifications(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    me = caller.user
    params = Params(request)
    limit = params.limit(40, 80)
    query = Notification.objects.filter(account_id=me)
    max_id, since_id, min_id = params.window()
    if max_id is not None:
        query = query.filter(id__lt=max_id)
    lower = min_id if min_id is not None else since_id
    if lower is not None:
        query = query.filter(id__gt=lower)
    asked, excluded = params.words("types"), set(params.words("exclude_types"))
    kinds = [k for k in (asked or VERBS) if k in VERBS and k not in excluded]
    query = query.filter(type__in=kinds)
    newest = query.order_by("-id").values_list("id", "from_account_id", "type", "status_id")
    rows: list[tuple[int, int, str, int | None]] = await worker.db(list, newest[:NOTIFICATIONS_READ])
    if not rows:
        return render(request, {"accounts": [], "statuses": [], "notification_groups": []})
    table = np.array([(i, a, VERBS[t], s or 0) for i, a, t, s in rows], np.int64)
    # The notification ids are snowflakes: as "timestamps" they make each group's latest id its newest
    # notification, and a window of GROUP_WINDOW groups a day.
    groups = aggregate_activity(
        table[:, 1], table[:, 2], table[:, 3], table[:, 0], GROUP_WINDOW, max_actors=8
    )
    shown = min(limit, len(groups.verbs))
    oldest: dict[tuple[int, int, int], int] = {}
    for i, _, verb, target in table.tolist():
        key = (verb, target, i // GROUP_WINDOW)
        oldest[key] = min(oldest.get(key, i), i)
    out, account_ids, status_ids = [], [], []
    for g in range(shown):
        verb, target, window = int(groups.verbs[g]), int(groups.target_ids[g]), int(groups.windows[g])
        latest = int(groups.latest_timestamps[g])
        sample = groups.actors_of(g).tolist()
        account_ids += sample
        name = VERB_NAMES[verb]
        entry: dict[str, Any] = {
            "group_key": f"{name}-{target}-{window}" if target else f"{name}-{window}",
            "notifications_count": int(groups.event_counts[g]),
            "type": name,
            "most_recent_notification_id": str(latest),
            "page_min_id": str(oldest[(verb, target, window)]),
            "page_max_id": str(latest),
            "latest_page_notification_at": entities.iso(actions._moment(latest)),
            "sample_account_ids": [str(a) for a in sample],
        }
        if target:
            entry["status_id"] = str(target)
            status_ids.append(target)
        out.append(entry)
    body = {
        "accounts": await _accounts(request, worker, list(dict.fromkeys(account_ids))),
        "statuses": await _statuses(request, worker, caller, list(dict.fromkeys(status_ids))),
        "notification_groups": out,
    }
    page_ids = [int(e["page_min_id"]) for e in out]
    headers = link_header(request, min(page_ids), max(int(e["page_max_id"]) for e in out)) if out else {}
    return render(request, body, headers=headers)


# -- apps and OAuth -------------------------------------------------------------------------------------


def _token_entity(token: str, scopes: str) -> dict[str, Any]:
    return {"access_token": token, "token_type": "Bearer", "scope": scopes, "created_at": int(time.time())}


@endpoint("POST")
async def apps(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    params = Params(request)
    name = params.required("client_name", 100)
    redirect = params.required("redirect_uris", 2000)
    scopes = params.text("scopes", "read", 200) or "read"
    website = params.text("website", None, 500)
    app, secret = await worker.db(auth.create_application, name, redirect, scopes, website)
    return render(request, entities.application(app, secret))


def _application(client_id: str) -> Application | None:
    return Application.objects.filter(client_id=client_id).first()


async def _client(worker: Worker, params: Params) -> Application:
    client_id, secret = params.text("client_id", None, 100), params.text("client_secret", None, 100)
    app = await worker.db(_application, client_id) if client_id else None
    if app is None or secret is None or auth.digest(secret) != app.client_secret_digest:
        raise ApiError(401, "invalid_client", error_description="Client authentication failed")
    return app


@endpoint("POST")
async def oauth_token(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    params = Params(request)
    grant = params.text("grant_type", None, 50)
    if grant not in ("password", "client_credentials"):
        raise ApiError(
            400, "unsupported_grant_type", error_description="The authorization grant type is not supported"
        )
    app = await _client(worker, params)
    scopes = params.text("scope", app.scopes, 200) or app.scopes
    if not set(scopes.split()) <= set(app.scopes.split()) | {"read", "write", "follow"}:
        raise ApiError(400, "invalid_scope", error_description="The requested scope is invalid")
    if grant == "client_credentials":
        token = await worker.db(auth.issue_token, None, app, scopes)
    else:
        username = params.required("username", 254)
        password = params.required("password", 200)
        token = await actions.password_grant(worker, app, username, password, scopes)
    return render(request, _token_entity(token, scopes))


@endpoint("POST")
async def oauth_revoke(request: HttpRequest, worker: Worker, caller: Caller) -> HttpResponse:
    params = Params(request)
    app = await _client(worker, params)
    await actions.revoke(worker, app, params.required("token", 200))
    return render(request, {})


# -- errors outside the views ---------------------------------------------------------------------------


def not_found_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, {"error": "Record not found"}, 404)


def bad_request_page(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, {"error": MALFORMED}, 400)


def server_error_page(request: HttpRequest) -> HttpResponse:
    return render(request, {"error": UNEXPECTED}, 500)
