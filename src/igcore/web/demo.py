"""The demo network of ``igcore serve --demo``: accounts, follows, statuses, favourites, seeded.

``build`` fills an empty database in one transaction, with Django's ``bulk_create``. The network is the
same for a seed (numpy's ``Generator``); only the times, and so the snowflake ids, move with `now`.

The generated follow graph is heavy-tailed both ways, as real ones are: most accounts follow a few dozen,
a few follow thousands; who is followed is drawn by Zipf popularity, so a handful of accounts have
thousands of followers, above the fan-out limit (their posts are pulled into home feeds at read time).
A SNAP edge list (``edgelist``) gives the follows instead: account id = SNAP id + 1.

Every demo account's password is ``igcore-demo``.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from itertools import islice
from typing import Iterable

import numpy as np
from django.contrib.auth.hashers import make_password
from django.db import models, transaction
from django.utils import timezone
from numpy.typing import NDArray

from igcore.graph import read_edgelist

from .models import Account, Favourite, Follow, Notification, Status

DEMO_PASSWORD = "igcore-demo"
BATCH = 5000  # rows per INSERT, and model objects alive at once

DAY_MS = 24 * 3600 * 1000
ACCOUNTS_SPAN_MS = 365 * DAY_MS  # accounts were made over the last year...
STATUSES_SPAN_MS = 30 * DAY_MS  # ...and posted over the last month
EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)

# Out-degree: a lognormal body (median ~17) with a Pareto tail (exponent 1.4) for some accounts, so
# that a few follow thousands. Popularity: Zipf with exponent 0.8 over a random order of the accounts.
FOLLOWING_MEDIAN, FOLLOWING_SIGMA = 17.0, 0.55
TAIL_SHARE, TAIL_MIN, TAIL_EXPONENT = 0.02, 60.0, 1.4
ZIPF_EXPONENT = 0.8
STATUSES_MEAN = 5.0
FAVOURITES_PER_ROOT_FOLLOWER = 0.15  # favourites per status ~ 0.15 * sqrt(the author's followers)

# What display names and statuses are made of, words apart.
SYLLABLES = "ka ri mo len sa ta vi no el ar is or un be do fi ga hu jo lu ma ne pe ro su te ya zo an ki"
WORDS = (
    "the a of to and in is it that for on with as this at by from we you they our my new just today "
    "tonight morning coffee tea rain sun city train bike garden book film song music band show game team "
    "code bug release deploy server cache graph timeline feed post photo walk trip beach mountain river "
    "dinner lunch bread pizza soup cat dog bird friend family work weekend holiday finally really quite "
    "very still again never always maybe love like hate miss want need try think know see read wrote "
    "made fixed broke found lost started finished shipped learned small big old fresh quiet loud slow "
    "fast early late good bad best great strange lovely"
)


def build(
    accounts: int | None = 20000,
    edgelist: str | None = None,
    seed: int = 0,
    now: datetime | None = None,
) -> dict[str, float]:
    """Seeds the demo network into the (empty) database; returns what it made: ``accounts``,
    ``follows``, ``statuses``, ``favourites`` (each with its notification) and ``seconds``.

    `accounts`: how many to generate (ids 1..N), or, with `edgelist` (a SNAP edge list, plain or gzip),
    ignored: the accounts are the ids the list names, plus one. Times are spread before `now` (default:
    the clock). ``ValueError`` for too few accounts or an edge list that cannot be read or names
    negative ids; ``OSError`` for a file that cannot be opened.
    """
    started = time.perf_counter()
    now = timezone.now() if now is None else now
    if timezone.is_naive(now):
        raise ValueError("now must be an aware datetime")
    now_ms = int((now - EPOCH) / timedelta(milliseconds=1))
    rng = np.random.default_rng(seed)

    if edgelist is None:
        if accounts is None or accounts < 2:
            raise ValueError(f"a demo network needs at least 2 accounts, not {accounts}")
        ids = np.arange(1, accounts + 1, dtype=np.int64)
        src, dst = _generated_follows(rng, accounts)
    else:
        ids, src, dst = _edgelist_follows(edgelist)
    n = len(ids)
    followers = np.bincount(dst, minlength=n)

    # What is made, first; the times after, so that only they depend on `now`.
    liked = 1.0 + np.log1p(followers)  # statuses: heavy-tailed (mean ~5), more for the more followed
    scale = STATUSES_MEAN * 1.5 * liked / liked.mean()  # Lomax(2.5) has mean 2/3
    counts = np.minimum(np.floor(rng.pareto(2.5, n) * scale + 0.5), 2000).astype(np.int64)
    authors = np.repeat(np.arange(n), counts)
    texts = _status_texts(rng, len(authors))
    favourite_status, favouriter = _favourites(rng, authors, src, dst, followers)
    names = _display_names(rng, n)

    # Accounts signed up over the last year, in id order, at least a day before now; a follow comes
    # after both accounts existed, statuses in the last month, a favourite after its status.
    joined = (
        now_ms - ACCOUNTS_SPAN_MS + (np.sort(rng.random(n)) * (ACCOUNTS_SPAN_MS - DAY_MS)).astype(np.int64)
    )
    follow_order, follow_ids = _snowflakes(_between(rng, np.maximum(joined[src], joined[dst]) + 1, now_ms))
    src, dst = src[follow_order], dst[follow_order]
    posted_from = np.maximum(joined[authors], now_ms - STATUSES_SPAN_MS) + 1
    status_order, status_ids = _snowflakes(_between(rng, posted_from, now_ms))
    id_of_status = np.empty_like(status_ids)
    id_of_status[status_order] = status_ids
    posted = id_of_status >> 16
    liked_from = np.maximum(posted[favourite_status], joined[favouriter]) + 1
    favourite_order, favourite_ids = _snowflakes(_between(rng, liked_from, now_ms, skew=3.0))
    favourite_status, favouriter = favourite_status[favourite_order], favouriter[favourite_order]

    statuses_count = np.bincount(authors, minlength=n)
    last_posted = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_posted, authors, posted)
    password = make_password(DEMO_PASSWORD)  # once: one hash costs ~a second, every row shares it

    account_ids = ids.tolist()
    texts = [texts[i] for i in status_order.tolist()]
    status_account = ids[authors[status_order]].tolist()
    with transaction.atomic():
        _insert(
            Account,
            (
                Account(
                    id=account_id,
                    username=f"user{account_id}",
                    email=f"user{account_id}@demo.invalid",
                    password=password,
                    display_name=name,
                    created_at=_time(created),
                    statuses_count=count,
                    last_status_at=_time(last) if last >= 0 else None,
                )
                for account_id, name, created, count, last in zip(
                    account_ids, names, joined.tolist(), statuses_count.tolist(), last_posted.tolist()
                )
            ),
        )
        _insert(
            Status,
            (
                Status(id=status_id, account_id=author, text=text, language="en", created_at=_when(status_id))
                for status_id, author, text in zip(status_ids.tolist(), status_account, texts)
            ),
        )
        _insert(
            Follow,
            (
                Follow(id=follow_id, account_id=a, target_account_id=b, created_at=_when(follow_id))
                for follow_id, a, b in zip(follow_ids.tolist(), ids[src].tolist(), ids[dst].tolist())
            ),
        )
        liked_ids = id_of_status[favourite_status].tolist()
        fans = ids[favouriter].tolist()
        favourite_list = favourite_ids.tolist()
        _insert(
            Favourite,
            (
                Favourite(
                    id=favourite_id, account_id=fan, status_id=status_id, created_at=_when(favourite_id)
                )
                for favourite_id, fan, status_id in zip(favourite_list, fans, liked_ids)
            ),
        )
        # The notification shares its favourite's id: the same moment, and unique as the favourites are.
        _insert(
            Notification,
            (
                Notification(
                    id=favourite_id,
                    account_id=author,
                    from_account_id=fan,
                    type=Notification.FAVOURITE,
                    status_id=status_id,
                    created_at=_when(favourite_id),
                )
                for favourite_id, author, fan, status_id in zip(
                    favourite_list, ids[authors[favourite_status]].tolist(), fans, liked_ids
                )
            ),
        )
    return {
        "accounts": n,
        "follows": len(follow_ids),
        "statuses": len(status_ids),
        "favourites": len(favourite_ids),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _generated_follows(rng: np.random.Generator, n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(src, dst)`` account indices: no self-follows, no repeats."""
    body = rng.lognormal(math.log(FOLLOWING_MEDIAN), FOLLOWING_SIGMA, n)
    tail = TAIL_MIN * rng.random(n) ** (-1.0 / TAIL_EXPONENT)
    wanted = np.where(rng.random(n) < TAIL_SHARE, tail, body)
    wanted = np.minimum(np.floor(wanted), n - 1).astype(np.int64)
    popularity = (rng.permutation(n) + 1.0) ** -ZIPF_EXPONENT
    popularity /= popularity.sum()

    # Most accounts: draws with repeats, a quarter more than wanted, first draws kept. Those who follow
    # a good part of the network: an exact weighted sample without repeats (Gumbel top-k), O(n) each.
    many = wanted > max(n // 16, 1)
    few = np.flatnonzero(~many & (wanted > 0))
    draws = np.ceil(wanted[few] * 1.25).astype(np.int64) + 4
    src = np.repeat(few, draws)
    dst = rng.choice(n, size=len(src), p=popularity)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    _, first = np.unique(src * n + dst, return_index=True)
    first.sort()  # draw order, still grouped by follower
    src, dst = src[first], dst[first]
    starts = np.searchsorted(src, src, side="left")
    keep = np.arange(len(src)) - starts < wanted[src]
    parts_src, parts_dst = [src[keep]], [dst[keep]]

    log_popularity = np.log(popularity)
    for follower in np.flatnonzero(many).tolist():
        keys = log_popularity + rng.gumbel(size=n)
        keys[follower] = -np.inf
        k = int(wanted[follower])
        chosen = np.argpartition(-keys, k - 1)[:k]
        parts_src.append(np.full(k, follower, dtype=np.int64))
        parts_dst.append(chosen.astype(np.int64))
    return np.concatenate(parts_src), np.concatenate(parts_dst)


def _edgelist_follows(path: str) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """The account ids an edge list names (SNAP id + 1, ascending) and its follows as indices into
    them, without self-loops and repeats."""
    src, dst = read_edgelist(path)[:2]
    if len(src) == 0:
        raise ValueError(f"{path}: names no follows")
    if min(int(src.min()), int(dst.min())) < 0:
        raise ValueError(f"{path}: names a negative id; SNAP ids start at 0")
    ids = np.unique(np.concatenate([src, dst]))
    src, dst = np.searchsorted(ids, src), np.searchsorted(ids, dst)
    keep = src != dst
    pairs = np.unique(src[keep] * len(ids) + dst[keep])
    return ids + 1, pairs // len(ids), pairs % len(ids)


def _between(
    rng: np.random.Generator, since: NDArray[np.int64], until: int, skew: float = 1.0
) -> NDArray[np.int64]:
    """A millisecond in [since, until) for each entry (nearer `since` for a `skew` above 1)."""
    span = np.maximum(until - since, 1)
    return since + (rng.random(len(since)) ** skew * span).astype(np.int64)


def _snowflakes(millis: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The order that sorts `millis` and a snowflake per sorted entry (``igcore.web.ids.from_millis``):
    its millisecond, then a sequence in the low 16 bits; strictly increasing, so unique."""
    order = np.argsort(millis, kind="stable")
    wanted = millis[order] << 16
    step = np.arange(len(wanted), dtype=np.int64)
    # Each id is the larger of its own and the previous id + 1: a sequence within a millisecond.
    return order, np.maximum.accumulate(wanted - step) + step


def _favourites(
    rng: np.random.Generator,
    authors: NDArray[np.int64],
    src: NDArray[np.int64],
    dst: NDArray[np.int64],
    followers: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(status index, favouriter)`` pairs, each once: a status's favouriters are its author's
    followers, about 0.15 * sqrt(their number) of them."""
    reach = followers[authors]
    wanted = np.minimum(rng.poisson(FAVOURITES_PER_ROOT_FOLLOWER * np.sqrt(reach)), reach)
    by_target = np.argsort(dst, kind="stable")
    follower_of = src[by_target]
    first_follower = np.concatenate([[0], np.cumsum(followers)])
    status = np.repeat(np.arange(len(authors)), wanted)
    author = authors[status]
    picks = first_follower[author] + (rng.random(len(status)) * followers[author]).astype(np.int64)
    pairs = np.unique(status * len(followers) + follower_of[picks])
    return pairs // len(followers), pairs % len(followers)


def _status_texts(rng: np.random.Generator, count: int) -> list[str]:
    words = WORDS.split()
    lengths = rng.integers(3, 16, count)
    picks = rng.integers(0, len(words), int(lengths.sum())).tolist()
    texts, at = [], 0
    for length in lengths.tolist():
        text = " ".join([words[i] for i in picks[at : at + length]])
        texts.append(text[0].upper() + text[1:] + ".")
        at += length
    return texts


def _display_names(rng: np.random.Generator, count: int) -> list[str]:
    syllables = SYLLABLES.split()
    lengths = rng.integers(2, 4, (count, 2))
    picks = rng.integers(0, len(syllables), (count, 6)).tolist()
    names = []
    for (first, last), chosen in zip(lengths.tolist(), picks):
        given = "".join(syllables[i] for i in chosen[:first])
        family = "".join(syllables[i] for i in chosen[3 : 3 + last])
        names.append(f"{given.capitalize()} {family.capitalize()}")
    return names


def _time(millis: int) -> datetime:
    return EPOCH + timedelta(milliseconds=millis)


def _when(snowflake: int) -> datetime:
    return EPOCH + timedelta(milliseconds=snowflake >> 16)


def _insert(model: type[models.Model], rows: Iterable[models.Model]) -> None:
    """Inserts the rows in batches, never holding more than one batch of model objects."""
    remaining = iter(rows)
    while batch := list(islice(remaining, BATCH)):
        model._default_manager.bulk_create(batch, batch_size=BATCH)
