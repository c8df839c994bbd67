"""The follower graph, defined in plain Python.

A graph is a set of users (int64 ids) and a set of follows "a follows b" between two different users,
each follow with a time when the graph is timed. Here it is two dicts of dicts, user -> {user: time},
one per direction; every user has an entry in both, even one without follows. The compiled backends keep
the compact layout of ``igcore._graph_file`` instead, and must answer exactly as this module does.

Orders, everywhere:
- lists of users are in ascending id order, unless they are lists by time: newest first, ties broken by
  the smaller id;
- rankings (suggestions) are by score, highest first, ties broken by the smaller id;
- a traversal lists users in the order a breadth-first search discovers them, each user's neighbours
  taken in ascending id order.

Unknown users: ``KeyError(id)`` from every query about a user (the first unknown one, in argument order),
except ``is_following`` (an unknown user follows no one and no one follows them) and ``unfollow`` (an
unknown user has nothing to remove). ``follow`` adds users it has not seen.

Kernels receive arguments checked and converted by ``igcore.graph`` (int64 arrays, Python ints in the
int64 range, flags as bools), and return numpy arrays.
"""

from __future__ import annotations

import functools
import math
import threading
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .. import _graph_file, _messages

# Not `from typing import TYPE_CHECKING`: a kernel module exports exactly the names of its stub.
if typing.TYPE_CHECKING:
    from typing import TypeVar

    from numpy.typing import NDArray
    from typing_extensions import Concatenate, ParamSpec

    _P = ParamSpec("_P")
    _R = TypeVar("_R")

# The kernels, as src/igcore/_kernels/graph.pyi states them; the rest of this module is their helpers.
__all__ = ["Graph", "build", "load", "parse_edgelist"]

MASK64 = 2**64 - 1
EMPTY_SLOT = _graph_file.EMPTY_SLOT


def id_hash(user: int) -> int:
    """The hash of igcore's id tables (``id_index.rs``): fold the high half in, then Fibonacci hashing."""
    x = user & MASK64
    return ((x ^ (x >> 32)) * 0x9E3779B97F4A7C15) & MASK64


class SplitMix64:
    """The random numbers of ``random_walk_suggest``: splitmix64 (Steele, Lea and Flood), so a seed gives
    the same walks on every backend."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """A number in 0..n-1: the high 64 bits of next() * n (Lemire's multiply-shift)."""
        return (self.next() * n) >> 64

    def unit(self) -> float:
        """A float in [0, 1): the top 53 bits of next(), scaled."""
        return (self.next() >> 11) * 2.0**-53


def _ids(values: Iterable[int]) -> NDArray[np.int64]:
    return np.array(list(values), dtype=np.int64)


def build(
    src: NDArray[np.int64], dst: NDArray[np.int64], times: NDArray[np.int64] | None
) -> tuple[Graph, int, int, NDArray[np.int64]]:
    """A graph from the follows ``src[i] follows dst[i]``, with ``times[i]`` when given.

    - Every id in `src` or `dst` is a user, even one named only in a self-follow.
    - Self-follows are dropped; so are repeats of a follow already seen (they collapse to one follow,
      whose time is the earliest of its times).
    - Returns ``(graph, duplicates, self_follows, self_followers)``: how many input rows repeated an
      earlier follow, how many rows were self-follows, and the ids of the users who followed
      themselves (ascending, each once). ``num_follows + duplicates + self_follows == len(src)``.
    """
    graph = Graph(times is not None)
    duplicates = self_follows = 0
    self_followers = set()
    time_list = times.tolist() if times is not None else [0] * len(src)
    for a, b, t in zip(src.tolist(), dst.tolist(), time_list):
        graph._add_user(a)
        graph._add_user(b)
        if a == b:
            self_follows += 1
            self_followers.add(a)
        elif b in graph.following[a]:
            duplicates += 1
            if t < graph.following[a][b]:
                graph.following[a][b] = graph.followers[b][a] = t
        else:
            graph.following[a][b] = graph.followers[b][a] = t
    return graph, duplicates, self_follows, _ids(sorted(self_followers))


def parse_edgelist(
    data: bytes,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64] | None]:
    """Edges from the text of an edge-list file, as SNAP ships them.

    - Lines end with LF; one CR before the LF is dropped; the last line needs no LF.
    - Spaces and tabs separate fields and may lead or trail; a blank line, or one whose first field
      starts with ``#``, is skipped.
    - The first edge line has 2 or 3 fields (source, target, and e.g. a time); every edge line has as
      many. A field is an optional sign and decimal digits, in the int64 range.
    - Returns ``(src, dst, third)`` int64 arrays, `third` None for two columns. A malformed line is a
      ``ValueError`` naming it (counted from 1): ``line N: ...``.
    """
    columns: list[list[int]] = [[], [], []]
    width = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        fields = [f for f in line.replace(b"\t", b" ").split(b" ") if f]
        if not fields or fields[0].startswith(b"#"):
            continue
        if width == 0:
            if len(fields) not in (2, 3):
                raise ValueError(_messages.EDGE_LIST_COLUMNS.format(line=number, found=len(fields)))
            width = len(fields)
        elif len(fields) != width:
            raise ValueError(_messages.EDGE_LIST_WIDTH.format(line=number, width=width, found=len(fields)))
        for column, field in enumerate(fields, 1):
            digits = field[1:] if field[:1] in (b"+", b"-") else field
            if not digits or not all(48 <= c <= 57 for c in digits):
                raise ValueError(_messages.EDGE_LIST_NOT_AN_INTEGER.format(line=number, column=column))
            value = int(field)
            if not -(2**63) <= value < 2**63:
                raise ValueError(_messages.EDGE_LIST_OUTSIDE_INT64.format(line=number, column=column))
            columns[column - 1].append(value)
    src, dst = np.array(columns[0], dtype=np.int64), np.array(columns[1], dtype=np.int64)
    return src, dst, (np.array(columns[2], dtype=np.int64) if width == 3 else None)


def load(path: str, layout: _graph_file.Layout, mmap: bool) -> Graph:
    """A graph from a file whose header `layout` describes. The reference reads the whole file (`mmap` is
    ignored) and checks all of it at once, as ``verify()`` does."""
    with open(path, "rb") as file:
        data = file.read()
    if data[: _graph_file.HEADER_SIZE] != layout.header:
        raise ValueError(_messages.GRAPH_FILE_REPLACED)
    sections = []
    for i in layout.present():
        name, itemsize = _graph_file.SECTIONS[i]
        dtype = {8: "<i8", 4: "<u4"}[itemsize] if name != "out_offsets" and name != "in_offsets" else "<u8"
        sections.append(np.frombuffer(data, dtype, layout.lengths[i] // itemsize, layout.offsets[i]))
    _graph_file.check_crcs(layout, sections)
    return Graph._from_sections(layout.num_users, layout.timed, sections)


def _locked(method: Callable[Concatenate[Graph, _P], _R]) -> Callable[Concatenate[Graph, _P], _R]:
    """Runs a method under the graph's lock: threads that share a graph never see one half-updated.
    The compiled backends let queries run at once (a read-write lock); one lock is enough here."""

    @functools.wraps(method)
    def locked(self: Graph, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


class Graph:
    def __init__(self, timed: bool) -> None:
        self._lock = threading.RLock()
        self.timed = timed
        self.following: dict[int, dict[int, int]] = {}  # user -> {followee: time (0 when untimed)}
        self.followers: dict[int, dict[int, int]] = {}  # user -> {follower: time}

    def _add_user(self, user: int) -> None:
        if user not in self.following:
            self.following[user] = {}
            self.followers[user] = {}

    def _adjacency(self, out: bool) -> dict[int, dict[int, int]]:
        return self.following if out else self.followers

    def _known(self, *users: int) -> None:
        for user in users:
            if user not in self.following:
                raise KeyError(user)

    # -- sizes -------------------------------------------------------------------------------------------

    @_locked
    def num_users(self) -> int:
        return len(self.following)

    @_locked
    def num_follows(self) -> int:
        return sum(len(out) for out in self.following.values())

    @_locked
    def nbytes(self) -> int:
        """The size of the compact layout this graph stands for (the arrays a compiled backend holds)."""
        n, m = self.num_users(), self.num_follows()
        return (
            n * 8
            + _graph_file.num_slots_for(n) * 4
            + 2 * (n + 1) * 8
            + 2 * m * 4
            + (24 * m if self.timed else 0)
        )

    @_locked
    def verify(self) -> None:
        """Nothing to do: the reference checks a file entirely when it loads it."""

    @_locked
    def user_ids(self) -> NDArray[np.int64]:
        return _ids(sorted(self.following))

    @_locked
    def contains(self, user: int) -> bool:
        return user in self.following

    # -- queries -----------------------------------------------------------------------------------------

    @_locked
    def neighbours(
        self, user: int, out: bool, since: int | None, until: int | None, offset: int, limit: int | None
    ) -> tuple[NDArray[np.int64], NDArray[np.int64] | None]:
        """Whom `user` follows (`out`) or who follows `user`: ``(ids, times)``, times None when untimed.

        Untimed: ascending id. Timed: newest first, ties by the smaller id, only follows with
        ``since <= time < until`` (either bound may be None). Then `offset` entries are skipped and at
        most `limit` (None: all) are returned.
        """
        self._known(user)
        entries = self._adjacency(out)[user]
        if self.timed:
            listed = sorted(entries.items(), key=lambda e: (-e[1], e[0]))
            listed = [
                (v, t) for v, t in listed if (since is None or t >= since) and (until is None or t < until)
            ]
        else:
            listed = [(v, 0) for v in sorted(entries)]
        page = listed[offset:] if limit is None else listed[offset : offset + limit]
        ids = _ids(v for v, _ in page)
        return ids, (_ids(t for _, t in page) if self.timed else None)

    @_locked
    def degree(self, user: int, out: bool) -> int:
        """How many users `user` follows (`out`) or is followed by."""
        self._known(user)
        return len(self._adjacency(out)[user])

    @_locked
    def counts(self, users: NDArray[np.int64], out: bool) -> NDArray[np.int64]:
        """How many users each of `users` follows (`out`) or is followed by."""
        adjacency = self._adjacency(out)
        self._known(*users.tolist())
        return _ids(len(adjacency[u]) for u in users.tolist())

    @_locked
    def is_following(self, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.bool_]:
        """For each pair, whether a[i] follows b[i] (False for unknown users)."""
        return np.array([v in self.following.get(u, ()) for u, v in zip(a.tolist(), b.tolist())], dtype=bool)

    @_locked
    def mutual_follows(self, user: int) -> NDArray[np.int64]:
        """Users that `user` follows and that follow `user` back, ascending."""
        self._known(user)
        return _ids(sorted(v for v in self.following[user] if v in self.followers[user]))

    @_locked
    def common(self, a: int, b: int, out: bool) -> NDArray[np.int64]:
        """Users both `a` and `b` follow (`out`), or users who follow both; ascending."""
        self._known(a, b)
        adjacency = self._adjacency(out)
        return _ids(sorted(adjacency[a].keys() & adjacency[b].keys()))

    @_locked
    def followed_by(self, viewer: int, target: int, limit: int) -> tuple[NDArray[np.int64], int]:
        """Accounts `viewer` follows that follow `target`: the first `limit` by ascending id, and how
        many there are in all."""
        self._known(viewer, target)
        both = sorted(v for v in self.following[viewer] if v in self.followers[target])
        return _ids(both[:limit]), len(both)

    # -- suggestions -------------------------------------------------------------------------------------

    def _ranked(self, scores: dict[int, float], limit: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return _ids(c for c, _ in ranked), np.array([s for _, s in ranked], dtype=np.float64)

    @_locked
    def suggest(
        self, user: int, limit: int, adamic_adar: bool, exclude: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Friends of friends: users followed by the accounts `user` follows.

        - A candidate's score sums, over each account f that `user` follows and that follows the
          candidate, 1 (common neighbours) or 1 / ln(deg f) (Adamic-Adar), where deg f counts f's follows
          in both directions (a mutual pair counts twice; deg f >= 2, as f is followed by `user` and
          follows the candidate). The terms are added in ascending id order of f, as float64.
        - Never `user`, an account `user` follows, or one in `exclude` (unknown ids there are ignored).
        - Returns ``(ids, scores)``: the `limit` best, by score, ties broken by the smaller id.
        """
        self._known(user)
        followed = self.following[user]
        skip = set(followed) | {user} | set(exclude.tolist())
        scores: dict[int, float] = {}
        for f in sorted(followed):
            if not self.following[f]:
                continue
            weight = 1.0 / math.log(len(self.following[f]) + len(self.followers[f])) if adamic_adar else 1.0
            for candidate in self.following[f]:
                if candidate not in skip:
                    scores[candidate] = scores.get(candidate, 0.0) + weight
        return self._ranked(scores, limit)

    @_locked
    def random_walk_suggest(
        self,
        user: int,
        walks: int,
        walk_length: int,
        restart_prob: float,
        seed: int,
        limit: int,
        exclude: NDArray[np.int64],
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Personalised random walks with restart from `user` (as Pixie does), ranked by visits.

        With ``rng = SplitMix64(seed)``, `walks` walks each start at `user` and take `walk_length` steps.
        A step: if the current user follows no one, the walk first goes back to `user`; then it moves to
        ``following[rng.below(len(following))]`` of the current user (its followees in ascending id
        order) and counts a visit there, unless that is `user`, an account `user` follows or one in
        `exclude`; then, if ``rng.unit() < restart_prob``, it goes back to `user`. A user who follows no
        one gets no suggestions (and draws nothing), nor do walks of no steps. Returns ``(ids, visits)``
        (visits as float64): the `limit` most visited, ties broken by the smaller id.
        """
        self._known(user)
        start = sorted(self.following[user])
        if not start or not walks or not walk_length:
            return self._ranked({}, limit)
        skip = set(start) | {user} | set(exclude.tolist())
        rng = SplitMix64(seed)
        ordered: dict[int, list[int]] = {user: start}
        visits: dict[int, float] = {}
        for _ in range(walks):
            current = user
            for _ in range(walk_length):
                if current not in ordered:
                    ordered[current] = sorted(self.following[current])
                followees = ordered[current]
                if not followees:
                    current, followees = user, start
                current = followees[rng.below(len(followees))]
                if current not in skip:
                    visits[current] = visits.get(current, 0.0) + 1.0
                if rng.unit() < restart_prob:
                    current = user
        return self._ranked(visits, limit)

    # -- traversal ---------------------------------------------------------------------------------------

    @_locked
    def bfs(
        self, user: int, max_depth: int, max_nodes: int | None, out: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Breadth-first from `user` along follows (`out`) or against them, to `max_depth` hops.

        Returns ``(ids, depths)`` in order of discovery: `user` first (depth 0), then each level in turn,
        the neighbours of each user in ascending id order. At most `max_nodes` users (None: all).
        """
        self._known(user)
        adjacency = self._adjacency(out)
        depth = {user: 0}
        frontier = [user]
        if max_nodes is not None and max_nodes < 1:
            return _ids([]), _ids([])
        level = 0
        while frontier and level < max_depth:  # nothing new is reached once a level adds no one
            level += 1
            reached = []
            for current in frontier:
                for neighbour in sorted(adjacency[current]):
                    if neighbour not in depth:
                        if max_nodes is not None and len(depth) == max_nodes:
                            return _ids(depth), _ids(depth.values())
                        depth[neighbour] = level
                        reached.append(neighbour)
            frontier = reached
        return _ids(depth), _ids(depth.values())

    # -- updates -----------------------------------------------------------------------------------------

    @_locked
    def follow(self, src: NDArray[np.int64], dst: NDArray[np.int64], times: NDArray[np.int64] | None) -> int:
        """Adds the follows in order; returns how many were new. Unseen ids become users (a self-follow
        too, which is then ignored); a follow that exists already keeps its time."""
        added = 0
        time_list = times.tolist() if times is not None else [0] * len(src)
        for a, b, t in zip(src.tolist(), dst.tolist(), time_list):
            self._add_user(a)
            self._add_user(b)
            if a != b and b not in self.following[a]:
                self.following[a][b] = self.followers[b][a] = t
                added += 1
        return added

    @_locked
    def unfollow(self, src: NDArray[np.int64], dst: NDArray[np.int64]) -> int:
        """Removes the follows; returns how many there were. Users stay, even without follows."""
        removed = 0
        for a, b in zip(src.tolist(), dst.tolist()):
            if b in self.following.get(a, ()):
                del self.following[a][b]
                del self.followers[b][a]
                removed += 1
        return removed

    @_locked
    def compact(self) -> None:
        """Nothing to fold: the reference has no separate layer of updates."""

    # -- whole graph -------------------------------------------------------------------------------------

    @_locked
    def edges(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64] | None]:
        """Every follow as ``(src, dst, times)``, ordered by source id, then target id."""
        pairs = sorted((a, b, t) for a, out in self.following.items() for b, t in out.items())
        return (
            _ids(p[0] for p in pairs),
            _ids(p[1] for p in pairs),
            (_ids(p[2] for p in pairs) if self.timed else None),
        )

    @_locked
    def components(self, strong: bool) -> NDArray[np.int64]:
        """A component label per user, aligned with ``user_ids()``: components are numbered 0, 1, ... in
        the order of their smallest user id. Weak: follows taken in either direction. Strong: users who
        reach each other along follows."""
        users = sorted(self.following)
        members = self._strong_components(users) if strong else self._weak_components(users)
        label: dict[int, int] = {}
        for user in users:
            if members[user] not in label:
                label[members[user]] = len(label)
        return _ids(label[members[u]] for u in users)

    def _weak_components(self, users: list[int]) -> dict[int, int]:
        parent = {u: u for u in users}

        def root(u: int) -> int:
            while parent[u] != u:
                parent[u] = parent[parent[u]]
                u = parent[u]
            return u

        for a, out in self.following.items():
            for b in out:
                ra, rb = root(a), root(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
        return {u: root(u) for u in users}

    def _strong_components(self, users: list[int]) -> dict[int, int]:
        # Kosaraju: order users by when a depth-first search along follows finishes them, then search
        # against follows from the last finished; each search collects one strong component.
        finished: list[int] = []
        seen: set[int] = set()
        for start in users:
            if start in seen:
                continue
            seen.add(start)
            stack = [(start, iter(sorted(self.following[start])))]
            while stack:
                user, followees = stack[-1]
                for v in followees:
                    if v not in seen:
                        seen.add(v)
                        stack.append((v, iter(sorted(self.following[v]))))
                        break
                else:
                    stack.pop()
                    finished.append(user)
        component: dict[int, int] = {}
        for start in reversed(finished):
            if start in component:
                continue
            component[start] = start
            todo = [start]
            while todo:
                user = todo.pop()
                for v in self.followers[user]:
                    if v not in component:
                        component[v] = start
                        todo.append(v)
        return component

    @_locked
    def triangle_count(self) -> int:
        """Triangles of the undirected simple graph: direction dropped, each pair of users joined by a
        follow either way is one edge."""
        later = {
            u: {v for v in (self.following[u].keys() | self.followers[u].keys()) if v > u}
            for u in self.following
        }
        return sum(len(later[u] & later[v]) for u in later for v in later[u])

    @_locked
    def degree_histogram(self, out: bool) -> NDArray[np.int64]:
        """``h[k]``: how many users follow (`out`) or are followed by exactly k users; up to the largest
        degree (empty for a graph without users)."""
        degrees = [len(x) for x in self._adjacency(out).values()]
        histogram = [0] * (max(degrees) + 1 if degrees else 0)
        for d in degrees:
            histogram[d] += 1
        return _ids(histogram)

    # -- persistence -------------------------------------------------------------------------------------

    @_locked
    def _sections(self) -> list[NDArray[Any]]:
        """The arrays of the compact layout, in the file's order (see ``igcore._graph_file``)."""
        users = sorted(self.following)
        index = {u: i for i, u in enumerate(users)}
        slots = [EMPTY_SLOT] * _graph_file.num_slots_for(len(users))
        shift = 64 - (len(slots).bit_length() - 1)
        for i, user in enumerate(users):
            position = id_hash(user) >> shift
            while slots[position] != EMPTY_SLOT:
                position = (position + 1) % len(slots)
            slots[position] = i
        sections = [np.array(users, dtype="<i8"), np.array(slots, dtype="<u4")]
        times = []
        for adjacency in (self.following, self.followers):
            offsets, targets, list_times, by_time = [0], [], [], []
            for user in users:
                listed = sorted((index[v], t) for v, t in adjacency[user].items())
                targets += [v for v, _ in listed]
                list_times += [t for _, t in listed]
                by_time += sorted(range(len(listed)), key=lambda k: (-listed[k][1], listed[k][0]))
                offsets.append(len(targets))
            sections += [np.array(offsets, dtype="<u8"), np.array(targets, dtype="<u4")]
            times += [np.array(list_times, dtype="<i8"), np.array(by_time, dtype="<u4")]
        return sections + times if self.timed else sections

    @_locked
    def save(self, path: str) -> None:
        _graph_file.write_file(path, self.num_users(), self.num_follows(), self.timed, self._sections())

    @classmethod
    def _from_sections(cls, num_users: int, timed: bool, sections: Sequence[NDArray[Any]]) -> Graph:
        """A graph from the arrays of a file, after checking their structure: ``ValueError`` for any
        inconsistency (what ``verify()`` checks in the compiled backends)."""
        ids = sections[0].tolist()
        if any(a >= b for a, b in zip(ids, ids[1:])):
            raise ValueError(_messages.CORRUPT_IDS_NOT_ASCENDING)
        slots = sections[1].tolist()
        filled = [s for s in slots if s != EMPTY_SLOT]
        if sorted(filled) != list(range(num_users)):
            raise ValueError(_messages.CORRUPT_ID_TABLE_NOT_ONCE)
        shift = 64 - (len(slots).bit_length() - 1)
        for i, user in enumerate(ids):
            position = id_hash(user) >> shift
            while slots[position] != i:
                if slots[position] == EMPTY_SLOT:
                    raise ValueError(_messages.CORRUPT_ID_TABLE_MISSES_USER)
                position = (position + 1) % len(slots)
        graph = cls(timed)
        for user in ids:
            graph._add_user(user)
        lists = []
        for direction in range(2):
            offsets = sections[2 + 2 * direction].tolist()
            targets = sections[3 + 2 * direction].tolist()
            if (
                offsets[0] != 0
                or offsets[-1] != len(targets)
                or any(a > b for a, b in zip(offsets, offsets[1:]))
            ):
                raise ValueError(_messages.CORRUPT_OFFSETS)
            if timed:
                times = sections[6 + 2 * direction].tolist()
                by_time = sections[7 + 2 * direction].tolist()
            listed = {}
            for u in range(num_users):
                start, end = offsets[u], offsets[u + 1]
                row = targets[start:end]
                if any(v >= num_users for v in row) or any(a >= b for a, b in zip(row, row[1:])) or u in row:
                    raise ValueError(_messages.CORRUPT_FOLLOW_LIST)
                row_times = times[start:end] if timed else [0] * len(row)
                if timed:
                    order = by_time[start:end]
                    want = sorted(range(len(row)), key=lambda k: (-row_times[k], row[k]))
                    if order != want:
                        raise ValueError(_messages.CORRUPT_TIME_ORDER)
                listed[u] = dict(zip(row, row_times))
            lists.append(listed)
        for u, row in lists[0].items():
            for v, t in row.items():
                graph.following[ids[u]][ids[v]] = t
        pairs = {(u, v, t) for u, row in lists[0].items() for v, t in row.items()}
        reverse = {(u, v, t) for v, row in lists[1].items() for u, t in row.items()}
        if pairs != reverse:
            raise ValueError(_messages.CORRUPT_NOT_MIRRORED)
        for u, row in lists[0].items():
            for v, t in row.items():
                graph.followers[ids[v]][ids[u]] = t
        return graph
