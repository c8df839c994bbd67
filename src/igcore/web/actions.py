"""Every state change of the service, one function each: the database first (the source of truth), then
the online state (feeds, graph events, counters). Views call these; nothing else writes.
"""

from __future__ import annotations

from datetime import datetime, timezone

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from django.db.models import F

from . import auth, ids, keys
from .http import ApiError, not_found, unprocessable
from .models import Account, Application, Favourite, Follow, Mute, Notification, Status, Token
from .worker import Worker

USERNAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _moment(snowflake: int) -> datetime:
    return datetime.fromtimestamp(ids.to_seconds(snowflake), tz=timezone.utc)


# -- statuses -------------------------------------------------------------------------------------------


def _create_status(
    status_id: int,
    account_id: int,
    text: str,
    spoiler: str,
    sensitive: bool,
    visibility: str,
    language: str | None,
) -> Status:
    with transaction.atomic():
        moment = _moment(status_id)
        row = Status.objects.create(
            id=status_id,
            account_id=account_id,
            text=text,
            spoiler_text=spoiler,
            sensitive=sensitive,
            visibility=visibility,
            language=language,
            created_at=moment,
        )
        Account.objects.filter(id=account_id).update(
            statuses_count=F("statuses_count") + 1, last_status_at=moment
        )
    return row


async def post_status(
    worker: Worker,
    account_id: int,
    text: str,
    spoiler: str,
    sensitive: bool,
    visibility: str,
    language: str | None,
) -> Status:
    row = await worker.db(
        _create_status, worker.ids.next_id(), account_id, text, spoiler, sensitive, visibility, language
    )
    await worker.feeds.post(row.id, account_id)
    return row


def _delete_status(account_id: int, status_id: int) -> Status:
    with transaction.atomic():
        row = Status.objects.select_related("account").filter(id=status_id).first()
        if row is None:
            raise not_found()
        if row.account_id != account_id:
            raise ApiError(403, "This action is not allowed")
        row.delete()
        row.id = status_id  # delete() clears it
        Account.objects.filter(id=account_id).update(statuses_count=F("statuses_count") - 1)
    return row


async def delete_status(worker: Worker, account_id: int, status_id: int) -> Status:
    row = await worker.db(_delete_status, account_id, status_id)
    await worker.feeds.delete(status_id, account_id)
    return row


# -- favourites -----------------------------------------------------------------------------------------


def _favourite(favourite_id: int, account_id: int, status_id: int) -> bool:
    status = Status.objects.filter(id=status_id).values_list("account_id", flat=True).first()
    if status is None:
        raise not_found()
    try:
        with transaction.atomic():
            Favourite.objects.create(
                id=favourite_id, account_id=account_id, status_id=status_id, created_at=_moment(favourite_id)
            )
            if status != account_id:
                Notification.objects.create(
                    id=favourite_id,
                    account_id=status,
                    from_account_id=account_id,
                    type=Notification.FAVOURITE,
                    status_id=status_id,
                    created_at=_moment(favourite_id),
                )
    except IntegrityError:  # favourited already (or the status went meanwhile): the row decides
        if not Status.objects.filter(id=status_id).exists():
            raise not_found() from None
        return False
    return True


async def favourite(worker: Worker, account_id: int, status_id: int) -> None:
    if await worker.db(_favourite, worker.ids.next_id(), account_id, status_id):
        worker.counts.favourite(status_id, +1)
        await worker.commit()


def _unfavourite(account_id: int, status_id: int) -> bool:
    if not Status.objects.filter(id=status_id).exists():
        raise not_found()
    deleted, _ = Favourite.objects.filter(account_id=account_id, status_id=status_id).delete()
    return deleted > 0


async def unfavourite(worker: Worker, account_id: int, status_id: int) -> None:
    if await worker.db(_unfavourite, account_id, status_id):
        worker.counts.favourite(status_id, -1)
        await worker.commit()


# -- follows and mutes ----------------------------------------------------------------------------------


def _follow(follow_id: int, account_id: int, target_id: int) -> bool:
    if not Account.objects.filter(id=target_id).exists():
        raise not_found()
    try:
        with transaction.atomic():
            Follow.objects.create(
                id=follow_id,
                account_id=account_id,
                target_account_id=target_id,
                created_at=_moment(follow_id),
            )
            Notification.objects.create(
                id=follow_id,
                account_id=target_id,
                from_account_id=account_id,
                type=Notification.FOLLOW,
                created_at=_moment(follow_id),
            )
    except IntegrityError:
        return False  # followed already
    return True


async def follow(worker: Worker, account_id: int, target_id: int) -> None:
    if account_id == target_id:
        raise unprocessable("You cannot follow yourself")
    follow_id = worker.ids.next_id()
    if await worker.db(_follow, follow_id, account_id, target_id):
        await worker.publish_event(worker.follows.follow_event(account_id, target_id, follow_id))
        await worker.feeds.follow(account_id, target_id)


def _unfollow(account_id: int, target_id: int) -> bool:
    if not Account.objects.filter(id=target_id).exists():
        raise not_found()
    deleted, _ = Follow.objects.filter(account_id=account_id, target_account_id=target_id).delete()
    return deleted > 0


async def unfollow(worker: Worker, account_id: int, target_id: int) -> None:
    if await worker.db(_unfollow, account_id, target_id):
        await worker.publish_event(worker.follows.unfollow_event(account_id, target_id))
        await worker.feeds.unfollow(account_id, target_id)


def muted_ids(account_id: int) -> set[int]:
    return set(Mute.objects.filter(account_id=account_id).values_list("target_account_id", flat=True))


async def mutes(worker: Worker, account_id: int) -> set[int]:
    """The accounts `account_id` mutes (Redis's copy, filled from the database when absent)."""
    members = await worker.redis.smembers(keys.mutes(account_id))
    if not members:
        found = await worker.db(muted_ids, account_id)
        pipe = worker.redis.pipeline(transaction=True)
        pipe.sadd(keys.mutes(account_id), "-", *found)
        pipe.expire(keys.mutes(account_id), keys.MUTES_TTL)
        await pipe.execute()
        return found
    return {int(m) for m in members if m != b"-"}


def _mute(mute_id: int, account_id: int, target_id: int, on: bool) -> None:
    if not Account.objects.filter(id=target_id).exists():
        raise not_found()
    if on:
        Mute.objects.get_or_create(
            account_id=account_id,
            target_account_id=target_id,
            defaults={"id": mute_id, "created_at": _moment(mute_id)},
        )
    else:
        Mute.objects.filter(account_id=account_id, target_account_id=target_id).delete()


async def mute(worker: Worker, account_id: int, target_id: int, on: bool) -> None:
    if account_id == target_id:
        raise unprocessable("You cannot mute yourself")
    await worker.db(_mute, worker.ids.next_id(), account_id, target_id, on)
    # The copy in Redis is dropped and refilled from the database on the next read.
    await worker.redis.delete(keys.mutes(account_id))


# -- accounts, apps and tokens --------------------------------------------------------------------------


def _sign_up(account_id: int, username: str, email: str, password: str, application_id: int | None) -> str:
    if not 1 <= len(username) <= 30 or not set(username) <= USERNAME_CHARACTERS:
        raise unprocessable("Username must contain only letters, numbers and underscores (at most 30)")
    if "@" not in email or len(email) > 254:
        raise unprocessable("Email is invalid")
    if not 8 <= len(password) <= 72:
        raise unprocessable("Password must be 8 to 72 characters long")
    hashed = make_password(password)
    try:
        with transaction.atomic():
            Account.objects.create(
                id=account_id, username=username, email=email, password=hashed, created_at=_moment(account_id)
            )
    except IntegrityError:
        raise unprocessable("Username or email has already been taken") from None
    application = Application.objects.filter(id=application_id).first() if application_id else None
    return auth.issue_token(account_id, application)


async def sign_up(
    worker: Worker, username: str, email: str, password: str, application_id: int | None
) -> str:
    return await worker.db(_sign_up, worker.ids.next_id(), username, email, password, application_id)


def _password_grant(application: Application, username: str, password: str, scopes: str) -> str:
    row = Account.objects.filter(email=username).first() or Account.objects.filter(username=username).first()
    if row is None or not check_password(password, row.password):
        raise ApiError(400, "invalid_grant", error_description="The provided authorization grant is invalid")
    return auth.issue_token(row.id, application, scopes)


async def password_grant(
    worker: Worker, application: Application, username: str, password: str, scopes: str
) -> str:
    return await worker.db(_password_grant, application, username, password, scopes)


def _revoke(application: Application, token: str) -> None:
    # Only a token issued to this client (RFC 7009); another's is left alone, and the answer is the same.
    Token.objects.filter(digest=auth.digest(token), application=application, revoked_at=None).update(
        revoked_at=datetime.now(timezone.utc)
    )


async def revoke(worker: Worker, application: Application, token: str) -> None:
    await worker.db(_revoke, application, token)
    await worker.redis.delete(keys.token(auth.digest(token)))
