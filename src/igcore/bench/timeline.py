"""Benchmarks of the timeline hot path: home-feed merging (first and deep pages), TimelineStore.merge,
fan-out on write, Timeline.insert, and a timeline's binary form.

Peers: ``heapq.merge`` over Python tuples (with the conversion from numpy a caller pays, or over
ready-made tuples), ``heapq.nlargest``, numpy (concatenate + lexsort + unique; and "numpy partition",
which sorts only the entries at or above a partitioned score threshold), a dict of lists kept sorted
with ``bisect`` (fan-out), a sorted-list cache (``sortedcontainers.SortedList``), and pickle, zlib and
msgpack for the binary form.
"""

from __future__ import annotations

import bisect
import heapq
import pickle
import zlib
from itertools import count
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from .. import _backend, codec, timeline
from . import Case, register

SEED = 20261124
LIMIT = 50
DEEP = 5_000  # a deep page starts after this global rank
EPOCH_MS = 1_700_000_000_000
MONTH_MS = 30 * 86_400_000
_Ids = TypeVar("_Ids", NDArray[np.int64], np.int64)  # arrays of ids, or one


def snowflake(ms: _Ids, low_bits: _Ids) -> _Ids:
    """Time-ordered 63-bit post ids, as large services hand them out: milliseconds, then 22 low bits."""
    return ((ms - EPOCH_MS + 1) << 22) | (low_bits & ((1 << 22) - 1))


def followee_timelines(followees: int, entries: int, seed: int) -> list:
    """`followees` timelines of `entries` each, in feed order: (timestamp ms, post id, author id).

    Each followee posts over a month; one entry in twenty is a reshare of another followee's post (the
    same post id under the resharer's time and name), so merging has duplicates to drop.
    """
    rng = np.random.default_rng(seed)
    authors = rng.integers(1, 2**40, followees)
    made = []
    for author in authors:
        ms = np.sort(rng.integers(EPOCH_MS, EPOCH_MS + MONTH_MS, entries))[::-1]
        made.append([ms, snowflake(ms, rng.integers(0, 2**22, entries)), np.full(entries, author)])
    pool = np.concatenate([posts for _, posts, _ in made])
    for _, posts, _ in made:
        reshared = rng.random(entries) < 0.05
        posts[reshared] = rng.choice(pool, reshared.sum())
    sources = []
    for ms, posts, authors_ in made:
        _, first = np.unique(posts, return_index=True)  # a post once per timeline
        first.sort()
        ms, posts, authors_ = ms[first], posts[first], authors_[first]
        order = np.lexsort((posts, ms))[::-1]
        sources.append(tuple(np.ascontiguousarray(a[order], dtype=np.int64) for a in (ms, posts, authors_)))
    return sources


# -- the peers' merge, over Python tuples --------------------------------------------------------------------


def _rank(entry):
    return entry[0], entry[1]


def _as_tuples(sources) -> list:
    return [list(zip(s.tolist(), p.tolist(), a.tolist())) for s, p, a in sources]


def heapq_page(tuple_lists, skip: int, limit: int) -> list:
    """heapq.merge of runs in feed order (stable: the earlier run first on ties), each post once."""
    page, seen, rank = [], set(), 0
    for entry in heapq.merge(*tuple_lists, key=_rank, reverse=True):
        if entry[1] in seen:
            continue
        seen.add(entry[1])
        rank += 1
        if rank > skip:
            page.append(entry)
            if len(page) == limit:
                break
    return page


def nlargest_page(tuple_lists, skip: int, limit: int) -> list:
    best: dict[int, Any] = {}
    for entries in tuple_lists:
        for entry in entries:
            standing = best.get(entry[1])
            if standing is None or _rank(entry) > _rank(standing):
                best[entry[1]] = entry
    return heapq.nlargest(skip + limit, best.values(), key=_rank)[skip:]


def numpy_page(sources, skip: int, limit: int):
    scores = np.concatenate([s for s, _, _ in sources])
    posts = np.concatenate([p for _, p, _ in sources])
    authors = np.concatenate([a for _, _, a in sources])
    order = np.lexsort((-posts, -scores))  # feed order; stable, so the earlier source first on ties
    _, first = np.unique(posts[order], return_index=True)  # each post at its greatest key
    taken = order[np.sort(first)][skip : skip + limit]
    return scores[taken], posts[taken], authors[taken]


def numpy_partition_page(sources, skip: int, limit: int):
    """The exact page as a numpy user who knows it would get it: only the entries at or above the k-th
    greatest score are sorted (all of them, ties included, so the answer stays exact), k doubled until
    they hold `skip + limit` distinct posts."""
    scores = np.concatenate([s for s, _, _ in sources])
    posts = np.concatenate([p for _, p, _ in sources])
    authors = np.concatenate([a for _, _, a in sources])
    wanted = skip + limit
    k = min(len(scores), wanted + wanted // 4 + 16)  # slack for the posts seen more than once
    while True:
        if k < len(scores):
            threshold = -np.partition(-scores, k - 1)[k - 1]
            candidates = np.flatnonzero(scores >= threshold)  # in source order: ties as numpy_page
        else:
            candidates = np.arange(len(scores))
        order = candidates[np.lexsort((-posts[candidates], -scores[candidates]))]
        _, first = np.unique(posts[order], return_index=True)
        taken = order[np.sort(first)]
        if len(taken) >= wanted or k >= len(scores):
            taken = taken[skip:wanted]
            return scores[taken], posts[taken], authors[taken]
        k = min(len(scores), 2 * k)


def _same_page(result, expected) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(result, expected)) and result[3] == expected[3]


def _same_entries(result, expected) -> bool:
    if isinstance(result, list):
        result = [np.array(c, dtype=np.int64) for c in zip(*result)] or [np.array([])] * 3
    else:
        result = list(result)
    return all(
        np.array_equal(r, e)
        for r, e in zip(result, (expected.scores, expected.post_ids, expected.author_ids))
    )


# -- merge: first and deep pages ---------------------------------------------------------------------------


def _merge_inputs(followees: int, entries: int, deep: bool):
    def make(scale: float):
        sources = followee_timelines(max(2, int(followees * scale)), entries, SEED)
        skip = min(DEEP, sum(len(s[0]) for s in sources) // 2) if deep else 0
        cursor = None
        if skip:
            with _backend.use_backend("python"):
                cursor = timeline.merge_page(sources, limit=skip).next_cursor
        return {"sources": sources, "skip": skip, "cursor": cursor}

    return make


def _merge_title(followees: int, entries: int, deep: bool):
    def title(scale: float) -> str:
        where = f"a deep page (after global rank {DEEP:,})" if deep else "the first page"
        return (
            f"merge_page: {where} of {LIMIT} from {max(2, int(followees * scale)):,} followee timelines of "
            f"{entries} as numpy arrays (conversion included)"
        )

    return title


for _followees, _entries in ((500, 200), (2_000, 20)):
    for _deep in (False, True):
        register(
            Case(
                name=f"timeline.merge_page/{'deep' if _deep else 'first'}-page-{_followees}x{_entries}",
                hot_path="timeline",
                title=_merge_title(_followees, _entries, _deep),
                make_inputs=_merge_inputs(_followees, _entries, _deep),
                run=lambda i: timeline.merge_page(i["sources"], LIMIT, i["cursor"]),
                peers={
                    "heapq.merge": lambda i: heapq_page(_as_tuples(i["sources"]), i["skip"], LIMIT),
                    "heapq.nlargest": lambda i: nlargest_page(_as_tuples(i["sources"]), i["skip"], LIMIT),
                    "numpy": lambda i: numpy_page(i["sources"], i["skip"], LIMIT),
                    "numpy partition": lambda i: numpy_partition_page(i["sources"], i["skip"], LIMIT),
                },
                same=lambda r, e: (
                    _same_entries((r.scores, r.post_ids, r.author_ids), e) and r.next_cursor == e.next_cursor
                ),
                same_as_peer=_same_entries,
            )
        )


# -- TimelineStore.merge_page: fan-out on read over stored timelines -----------------------------------


def _built_for_backend(inputs: dict, build):
    """The object `build()` makes for the backend serving now, made once (one backend's at a time)."""
    backend = _backend.current("timeline")
    if inputs.get("built_for") != backend:
        inputs["built"] = None  # free the previous backend's first
        inputs["built"] = build()
        inputs["built_for"] = backend
    return inputs["built"]


def _store_inputs(scale: float) -> dict:
    sources = followee_timelines(max(2, int(500 * scale)), 200, SEED)
    user_ids = np.random.default_rng(SEED).permutation(len(sources)).astype(np.int64) * 7_919 + 10**9
    return {"sources": sources, "user_ids": user_ids, "ready": _as_tuples(sources)}


def _make_store(inputs: dict):
    store = timeline.TimelineStore(max_len=800)
    for user_id, (scores, posts, authors) in zip(inputs["user_ids"].tolist(), inputs["sources"]):
        followee = timeline.Timeline(max_len=800)
        followee.insert_many(scores, posts, authors)
        store[user_id] = followee
    return store


register(
    Case(
        name="timeline.store-merge_page/first-page-500x200",
        hot_path="timeline",
        title=lambda scale: (
            f"TimelineStore.merge_page: the first page of {LIMIT} from {max(2, int(500 * scale)):,} stored "
            "timelines of 200 (peer: heapq.merge over ready-made tuples, conversion excluded)"
        ),
        make_inputs=_store_inputs,
        run=lambda i: _built_for_backend(i, lambda: _make_store(i)).merge_page(i["user_ids"], LIMIT),
        peers={"heapq.merge (ready-made tuples)": lambda i: heapq_page(i["ready"], 0, LIMIT)},
        same=lambda r, e: (
            _same_entries((r.scores, r.post_ids, r.author_ids), e) and r.next_cursor == e.next_cursor
        ),
        same_as_peer=_same_entries,
    )
)


# -- fan-out on write --------------------------------------------------------------------------------


FANOUT_MAX_LEN = 20  # the cached top of each follower's feed; memory, not speed, bounds it here


def _fanout_inputs(scale: float) -> dict:
    followers = max(1, int(1_000_000 * scale))
    rng = np.random.default_rng(SEED)
    return {
        "followers": np.sort(rng.choice(2**40, followers, replace=False)).astype(np.int64),
        "next_post": count(1),
    }


def _make_follower_store(inputs: dict):
    store = timeline.TimelineStore(max_len=FANOUT_MAX_LEN)
    timeline.fanout(store, EPOCH_MS, 0, 1, inputs["followers"], create_missing=True)
    return store


def _fanout_one_post(inputs: dict):
    store = _built_for_backend(inputs, lambda: _make_follower_store(inputs))
    n = next(inputs["next_post"])  # each call a new post, later and with a larger id than the last
    ms = EPOCH_MS + 1_000 * n
    return timeline.fanout(store, ms, int(snowflake(np.int64(ms), np.int64(n))), 7, inputs["followers"])


def _lists_fanout(inputs: dict) -> int:
    """The peer: a dict of Python lists, one per follower, each kept newest first with bisect and cut
    to FANOUT_MAX_LEN; one entry tuple shared by every list. Built on the first call, as igcore's store."""
    if "lists" not in inputs:
        first = (-EPOCH_MS, 0, 1)
        inputs["lists"] = {follower: [first] for follower in inputs["followers"].tolist()}
        inputs["lists_next_post"] = count(1)
    n = next(inputs["lists_next_post"])
    ms = EPOCH_MS + 1_000 * n
    entry = (-ms, -int(snowflake(np.int64(ms), np.int64(n))), 7)  # ascending keys = newest first
    stood = 0
    lists = inputs["lists"]
    for follower in inputs["followers"].tolist():
        timeline_ = lists.get(follower)
        if timeline_ is not None:
            bisect.insort(timeline_, entry)
            if len(timeline_) > FANOUT_MAX_LEN:
                timeline_.pop()
            stood += 1
    return stood


register(
    Case(
        name="timeline.fanout/1M-followers",
        hot_path="timeline",
        title=lambda scale: (
            f"fanout: one new post into the timelines of {max(1, int(1_000_000 * scale)):,} followers "
            f"(each holding up to {FANOUT_MAX_LEN} entries; peer: a dict of lists kept sorted with bisect)"
        ),
        make_inputs=_fanout_inputs,
        run=_fanout_one_post,
        peers={"dict of bisect lists": _lists_fanout},
        slow_peers=("dict of bisect lists",),
        same=lambda r, e: r == e,
        same_as_peer=lambda r, e: r == e,
    )
)


# -- Timeline.insert ---------------------------------------------------------------------------------


def _insert_inputs(scale: float) -> dict:
    n = max(10, int(20_000 * scale))
    rng = np.random.default_rng(SEED)
    # Posts arriving at a home timeline: mostly new (at the top), some late (a few minutes old), and a
    # few reshares of posts already there.
    ms = EPOCH_MS + np.arange(n) * 1_000 - rng.integers(0, 300_000, n) * (rng.random(n) < 0.2)
    posts = snowflake(ms, rng.integers(0, 2**22, n))
    again = rng.random(n) < 0.03
    posts[again] = posts[np.maximum(np.arange(n)[again] - rng.integers(1, 50, again.sum()), 0)]
    authors = rng.integers(1, 200, n) * 2**32
    entries = list(zip(ms.tolist(), posts.tolist(), authors.tolist()))
    return {"entries": entries, "max_len": 800}


def _insert_each(inputs: dict):
    cache = timeline.Timeline(inputs["max_len"])
    insert = cache.insert
    for score, post_id, author_id in inputs["entries"]:
        insert(score, post_id, author_id)
    return cache.entries()


def _sorted_list_cache(inputs: dict):
    """The same bounded cache with sortedcontainers: a SortedList of (-score, -post, author) and a dict."""
    from sortedcontainers import SortedList

    scores: dict[int, Any]  # post id -> its score
    ranks, scores, max_len = SortedList(), {}, inputs["max_len"]
    for score, post_id, author_id in inputs["entries"]:
        present = scores.get(post_id)
        if present is not None:
            if present[0] >= score:
                continue
            ranks.remove(present[1])
        rank = (-score, -post_id, author_id)
        ranks.add(rank)
        scores[post_id] = (score, rank)
        if len(ranks) > max_len:
            trimmed = ranks.pop()
            del scores[-trimmed[1]]
    return [(-s, -p, a) for s, p, a in ranks]


register(
    Case(
        name="timeline.insert/20000-into-800",
        hot_path="timeline",
        title=lambda scale: (
            f"Timeline.insert: {max(10, int(20_000 * scale)):,} arriving posts, one call each, into a "
            "timeline of max_len 800"
        ),
        make_inputs=_insert_inputs,
        run=_insert_each,
        peers={"sortedcontainers.SortedList": _sorted_list_cache},
        same=lambda r, e: all(np.array_equal(a, b) for a, b in zip(r, e)),
        same_as_peer=lambda r, e: _same_entries(r, codec.Entries(*e)),
    )
)


# -- a timeline's binary form -----------------------------------------------------------------------------


def _bytes_inputs(scale: float) -> dict:
    # a home timeline: the top 800 of 200 followees' posts
    home = followee_timelines(200, 40, SEED)
    with _backend.use_backend("python"):
        page = timeline.merge_page(home, limit=800)
    entries = (page.scores, page.post_ids, page.author_ids)
    return {
        "entries": entries,
        "bytes": codec.encode_entries(*entries),
        "pickled": pickle.dumps(entries),
        "zlibbed": _zlib_pack(entries),
        "msgpacked": _msgpack_pack(entries),
    }


def _zlib_pack(entries) -> bytes:
    return zlib.compress(b"".join(a.tobytes() for a in entries))


def _zlib_unpack(data: bytes):
    return np.frombuffer(zlib.decompress(data), dtype=np.int64).reshape(3, -1)


def _msgpack_pack(entries) -> bytes:
    import msgpack

    return msgpack.packb([a.tolist() for a in entries])


def _msgpack_unpack(data: bytes):
    import msgpack

    return msgpack.unpackb(data)


def _timeline_for_bytes(inputs: dict):
    def build():
        cache = timeline.Timeline(800)
        cache.insert_many(*inputs["entries"])
        return cache

    return _built_for_backend(inputs, build)


def _encoded_with(pack, unpack):
    """A peer's encoder; it returns its bytes with the decoder that reads them, for the answer check."""
    return lambda inputs: (pack(inputs["entries"]), unpack)


def _decodes_to_the_entries(result, expected) -> bool:
    data, unpack = result
    return all(np.array_equal(np.asarray(a), b) for a, b in zip(unpack(data), codec.decode_entries(expected)))


register(
    Case(
        name="timeline.to_bytes/800",
        hot_path="timeline",
        title=lambda scale: "Timeline.to_bytes: an 800-entry home timeline (peers: its three arrays)",
        make_inputs=_bytes_inputs,
        run=lambda i: _timeline_for_bytes(i).to_bytes(),
        peers={
            "pickle": _encoded_with(pickle.dumps, pickle.loads),
            "numpy tobytes + zlib": _encoded_with(_zlib_pack, _zlib_unpack),
            "msgpack (lists)": _encoded_with(_msgpack_pack, _msgpack_unpack),
        },
        same=lambda r, e: r == e,
        same_as_peer=_decodes_to_the_entries,
    )
)

register(
    Case(
        name="timeline.from_bytes/800",
        hot_path="timeline",
        title=lambda scale: "Timeline.from_bytes: an 800-entry home timeline (peers: its three arrays)",
        make_inputs=_bytes_inputs,
        run=lambda i: timeline.Timeline.from_bytes(i["bytes"]).entries(),
        peers={
            "pickle": lambda i: pickle.loads(i["pickled"]),
            "numpy tobytes + zlib": lambda i: _zlib_unpack(i["zlibbed"]),
            "msgpack (lists)": lambda i: _msgpack_unpack(i["msgpacked"]),
        },
        same=lambda r, e: all(np.array_equal(a, b) for a, b in zip(r, e)),
        same_as_peer=lambda r, e: all(np.array_equal(np.asarray(a), b) for a, b in zip(r, e)),
    )
)
