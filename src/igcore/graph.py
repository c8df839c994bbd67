"""The follower graph: who follows whom, over real 64-bit user ids.

``FollowGraph`` answers the questions a web tier asks millions of times a second (who does u follow, who
follows u, does a follow b, whom do we have in common, who should u follow next), walks the graph, takes
follows and unfollows, saves itself to a file that forked workers map and share, and runs the
whole-graph analytics of data pipelines. ``read_edgelist`` reads edge lists as SNAP ships them.

A graph holds one backend object, chosen when it is built or loaded (``FollowGraph.backend``); the
contract of every method is in ``igcore._reference.graph`` and the file format in
``igcore._graph_file``.
"""

from __future__ import annotations

import contextlib
import gzip
import operator
import os
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import numpy as np

from . import _arrow, _backend, _graph_file, _messages
from ._arrays import count, int64, int64_array, optional_count

if TYPE_CHECKING:
    from types import ModuleType
    from typing import SupportsIndex

    from _typeshed import StrPath
    from numpy.typing import NDArray

    from ._typing import IntArrayLike, IntLike

# The most steps one random_walk_suggest call may take: a bound on its time, whatever it is asked.
MAX_WALK_STEPS = 2**30


class BuildReport(NamedTuple):
    """What ``from_edges`` dropped: repeated follows, self-follows, and who followed themselves."""

    duplicates: int
    self_follows: int
    self_followers: NDArray[np.int64]  # ids, ascending, each once


class FollowedBy(NamedTuple):
    """ "Followed by x, y and 12 others": the first ids (ascending) and how many there are in all."""

    ids: NDArray[np.int64]
    total: int


class Suggestions(NamedTuple):
    """Suggested accounts, best first, with their scores (float64)."""

    ids: NDArray[np.int64]
    scores: NDArray[np.float64]


class Reached(NamedTuple):
    """Users a traversal reached, in order of discovery, with their depths (hops from the start)."""

    ids: NDArray[np.int64]
    depths: NDArray[np.int64]


def _direction(direction: str) -> bool:
    if direction not in ("following", "followers"):
        raise ValueError(f"direction must be 'following' or 'followers', not {direction!r}")
    return direction == "following"


def _pairs(
    src: object, dst: object, names: tuple[str, str] = ("src", "dst")
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    src, dst = int64_array(src, names[0]), int64_array(dst, names[1])
    if len(src) != len(dst):
        raise ValueError(
            _messages.LENGTHS_DIFFER.format(
                first=names[0], second=names[1], first_length=len(src), second_length=len(dst)
            )
        )
    return src, dst


def _times(times: object, length: int) -> NDArray[np.int64]:
    times = int64_array(times, "timestamps")
    if len(times) != length:
        raise ValueError(
            _messages.LENGTHS_DIFFER.format(
                first="timestamps", second="src", first_length=len(times), second_length=length
            )
        )
    return times


def read_edgelist(path: StrPath) -> tuple[NDArray[np.int64], ...]:
    """``(src, dst)`` int64 arrays from an edge-list text file, or ``(src, dst, third)`` when its lines
    have a third column (such as a time).

    Reads SNAP's files as shipped: plain or gzip-compressed (recognised by its magic bytes, whatever the
    name), ``#`` comment lines, fields separated by tabs or spaces, LF or CRLF line ends, with or without
    a final newline. A malformed line raises ``ValueError`` naming the file and the line number.
    """
    with open(path, "rb") as file:
        data = file.read()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{os.fspath(path)}: not a readable gzip file ({exc})") from None
    try:
        src, dst, third = _backend.kernels("graph").parse_edgelist(data)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from None
    return (src, dst) if third is None else (src, dst, third)


class FollowGraph:
    """A follow graph over int64 user ids: "a follows b", optionally with the time of each follow.

    Build one with ``FollowGraph.from_edges`` or ``FollowGraph.load``. The compiled backends keep it in a
    compact layout: each direction as compressed sparse rows of 32-bit internal indices, one id table,
    under 16 bytes per follow for both directions together (``nbytes``).

    Threads may share one graph. Each graph has a read-write lock: queries, ``save`` and ``verify``
    share it (they run at once, without the GIL on the compiled backends); ``follow``, ``unfollow``
    and ``compact`` hold it alone. So a query never fails, nor sees part of an update, because another
    thread changed the graph: it sees the graph as it was before the update, or after it. Waiting for
    the lock releases the GIL.
    """

    __slots__ = ("_graph", "_backend", "build_report")
    _graph: Any  # the backend's graph object (see igcore._reference.graph.Graph)
    _backend: str
    build_report: BuildReport | None

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        raise TypeError("use FollowGraph.from_edges(...) or FollowGraph.load(...)")

    @classmethod
    def _wrap(cls, graph: Any, module: ModuleType, report: BuildReport | None) -> FollowGraph:
        self = object.__new__(cls)
        self._graph = graph
        self._backend = _backend.backend_name(module)
        self.build_report = report
        return self

    # -- building and loading ----------------------------------------------------------------------------

    @classmethod
    def from_edges(
        cls, src: IntArrayLike, dst: IntArrayLike, timestamps: IntArrayLike | None = None
    ) -> FollowGraph:
        """A graph of the follows ``src[i] follows dst[i]`` (int64 ids, any values), with a time per
        follow when `timestamps` is given.

        Every id named is a user, even one named only in a self-follow. Repeated follows collapse to
        one (keeping the earliest time); self-follows are dropped. ``build_report`` says how many of
        each were dropped, and who followed themselves: SNAP's edge counts, which keep self-loops, are
        ``num_follows + len(build_report.self_followers)``.
        """
        src, dst = _pairs(src, dst)
        times = None if timestamps is None else _times(timestamps, len(src))
        module = _backend.kernels("graph")
        graph, duplicates, self_follows, self_followers = module.build(src, dst, times)
        return cls._wrap(graph, module, BuildReport(int(duplicates), int(self_follows), self_followers))

    @classmethod
    def load(cls, path: StrPath, mmap: bool = True) -> FollowGraph:
        """A graph saved by ``save``.

        With ``mmap=True`` the compiled backends map the file instead of reading it: loading takes the
        same time for any size, and processes that load the same file (or fork after loading it) share
        its pages. Only the header is checked here; the rest is checked by ``verify()``, which the
        first query runs (call it before forking web workers, so that none of them repeats it). With
        ``mmap=False`` the file is read into memory and checked at once. A truncated, corrupted or
        foreign file raises ``ValueError``; one too big for memory (``mmap=False``), ``MemoryError``.

        A mapped file must not be changed in place while it is mapped: replace it by writing a new
        file beside it and renaming that over it, as ``save`` does. A file overwritten in place gives
        wrong answers (never a read outside its sections); one truncated in place ends the process
        with SIGBUS on the next read of a lost page, as with any mapped file.
        """
        path = os.fspath(path)
        module = _backend.kernels("graph")
        for attempt in range(3):
            try:
                layout = _graph_file.read_header(path)
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
            try:
                graph = module.load(path, layout, bool(mmap))
                if not mmap:
                    graph.verify()
                break
            except ValueError as exc:
                if str(exc) == _messages.GRAPH_FILE_REPLACED and attempt < 2:
                    continue  # a save renamed a new file over this one: read the new one
                raise ValueError(f"{path}: {exc}") from None
            except MemoryError:
                raise MemoryError(
                    f"{path}: not enough memory to read {layout.file_size:,} bytes (load it with mmap=True)"
                ) from None
        return cls._wrap(graph, module, None)

    def save(self, path: StrPath) -> None:
        """Writes the graph to `path` in igcore's versioned format (see ``igcore._graph_file``),
        pending updates included. It writes a new file beside `path` (a name of its own, so that saves
        to one path at once do not share it), flushes it to disk and renames it over `path`: a process
        that has the old file mapped keeps reading the old graph, and a reader never meets a
        half-written one."""
        path = os.fspath(path)
        partial = _graph_file.new_partial(path)
        try:
            self._graph.save(partial)
            _graph_file.sync(partial)
            os.replace(partial, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise
        _graph_file.sync_folder(path)

    def to_arrow(self) -> Any:
        """The follows as a ``pyarrow.Table``: columns ``src`` and ``dst`` (and ``ts`` with timestamps),
        as ``edges()`` gives them; the table holds those arrays without another copy."""
        src, dst, *times = self.edges()
        return _arrow.table({"src": src, "dst": dst, "ts": times[0] if times else None})

    @classmethod
    def from_arrow(cls, table: Any) -> FollowGraph:
        """``from_edges`` on an Arrow table's ``src``, ``dst`` and optional ``ts`` columns, read without a
        copy when each is int64 in one chunk."""
        timestamps = _arrow.int64_column(table, "ts") if "ts" in table.column_names else None
        return cls.from_edges(
            _arrow.int64_column(table, "src"), _arrow.int64_column(table, "dst"), timestamps
        )

    def verify(self) -> None:
        """Checks a loaded graph's body: every section's checksum and structure. ``ValueError`` when the
        file is corrupted. Runs once (queries run it before they first read the body)."""
        self._graph.verify()

    # -- sizes -------------------------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """The backend that holds this graph: 'rust', 'cython' or 'python'."""
        return self._backend

    @property
    def num_users(self) -> int:
        return int(self._graph.num_users())

    @property
    def num_follows(self) -> int:
        return int(self._graph.num_follows())

    @property
    def has_timestamps(self) -> bool:
        return bool(self._graph.timed)

    @property
    def nbytes(self) -> int:
        """Bytes the graph's arrays take (mapped file pages included); the python backend reports the
        size of the compact layout it stands for."""
        return int(self._graph.nbytes())

    def __len__(self) -> int:
        return self.num_users

    def __contains__(self, user: object) -> bool:
        try:
            user = int64(user, "user")
        except (TypeError, OverflowError):
            return False
        return bool(self._graph.contains(user))

    def __repr__(self) -> str:
        timed = ", timed" if self.has_timestamps else ""
        return (
            f"<FollowGraph {self.num_users:,} users, {self.num_follows:,} follows{timed} ({self._backend})>"
        )

    def user_ids(self) -> NDArray[np.int64]:
        """Every user's id, ascending (the order of ``components`` labels)."""
        return self._graph.user_ids()

    # -- queries -----------------------------------------------------------------------------------------

    def _listing(
        self,
        out: bool,
        user: IntLike,
        since: IntLike | None,
        until: IntLike | None,
        offset: SupportsIndex,
        limit: SupportsIndex | None,
        return_times: bool,
    ) -> NDArray[np.int64] | tuple[NDArray[np.int64], NDArray[np.int64]]:
        user = int64(user, "user")
        if (since is not None or until is not None) and not self.has_timestamps:
            raise ValueError("since and until need a graph with timestamps")
        since = None if since is None else int64(since, "since")
        until = None if until is None else int64(until, "until")
        offset = count(offset, "offset")
        limit = optional_count(limit, "limit")
        if return_times and not self.has_timestamps:
            raise ValueError("return_times needs a graph with timestamps")
        ids, times = self._graph.neighbours(user, out, since, until, offset, limit)
        return (ids, times) if return_times else ids

    def following(
        self,
        user: IntLike,
        since: IntLike | None = None,
        until: IntLike | None = None,
        offset: SupportsIndex = 0,
        limit: SupportsIndex | None = None,
        return_times: bool = False,
    ) -> NDArray[np.int64] | tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The accounts `user` follows: ascending ids, or, on a timed graph, newest first (ties by the
        smaller id) with ``since <= time < until`` (either bound optional). `offset` and `limit` page
        through the list. ``return_times=True`` gives ``(ids, times)``. ``KeyError`` for an unknown user.
        """
        return self._listing(True, user, since, until, offset, limit, return_times)

    def followers(
        self,
        user: IntLike,
        since: IntLike | None = None,
        until: IntLike | None = None,
        offset: SupportsIndex = 0,
        limit: SupportsIndex | None = None,
        return_times: bool = False,
    ) -> NDArray[np.int64] | tuple[NDArray[np.int64], NDArray[np.int64]]:
        """The accounts that follow `user`, in the order and with the options of ``following``."""
        return self._listing(False, user, since, until, offset, limit, return_times)

    def _counts(self, users: IntLike | IntArrayLike, out: bool) -> int | NDArray[np.int64]:
        if isinstance(users, (int, np.integer)) and not isinstance(users, (bool, np.bool_)):
            return int(self._graph.degree(int64(users, "user"), out))
        return self._graph.counts(int64_array(users, "users"), out)

    @overload
    def following_count(self, users: IntLike) -> int: ...
    @overload
    def following_count(self, users: IntArrayLike) -> NDArray[np.int64]: ...
    def following_count(self, users: IntLike | IntArrayLike) -> int | NDArray[np.int64]:
        """How many accounts `users` follows: an int for one id, an int64 array for an array of ids.
        ``KeyError`` for the first unknown user."""
        return self._counts(users, True)

    @overload
    def follower_count(self, users: IntLike) -> int: ...
    @overload
    def follower_count(self, users: IntArrayLike) -> NDArray[np.int64]: ...
    def follower_count(self, users: IntLike | IntArrayLike) -> int | NDArray[np.int64]:
        """How many accounts follow `users` (as ``following_count``)."""
        return self._counts(users, False)

    @overload
    def is_following(self, a: IntLike, b: IntLike) -> bool: ...
    @overload
    def is_following(self, a: IntArrayLike, b: IntArrayLike) -> NDArray[np.bool_]: ...
    def is_following(self, a: IntLike | IntArrayLike, b: IntLike | IntArrayLike) -> bool | NDArray[np.bool_]:
        """Whether `a` follows `b`: a bool for two ids, a bool array for two arrays of ids (pairwise).
        An unknown user follows no one and has no followers (no error)."""
        if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
            pair = np.array([int64(a, "a")], np.int64), np.array([int64(b, "b")], np.int64)
            return bool(self._graph.is_following(*pair)[0])
        a, b = _pairs(a, b, ("a", "b"))
        return self._graph.is_following(a, b)

    def mutual_follows(self, user: IntLike) -> NDArray[np.int64]:
        """Accounts `user` follows that follow `user` back, ascending. ``KeyError`` for an unknown user."""
        return self._graph.mutual_follows(int64(user, "user"))

    def common_following(self, a: IntLike, b: IntLike) -> NDArray[np.int64]:
        """Accounts both `a` and `b` follow, ascending. ``KeyError`` for an unknown user."""
        return self._graph.common(int64(a, "a"), int64(b, "b"), True)

    def common_followers(self, a: IntLike, b: IntLike) -> NDArray[np.int64]:
        """Accounts that follow both `a` and `b`, ascending. ``KeyError`` for an unknown user."""
        return self._graph.common(int64(a, "a"), int64(b, "b"), False)

    def followed_by(self, viewer: IntLike, target: IntLike, limit: int = 3) -> FollowedBy:
        """Which accounts `viewer` follows that also follow `target` ("Followed by x, y and 12 others"):
        the first `limit` by ascending id, and the total. ``KeyError`` for an unknown user."""
        ids, total = self._graph.followed_by(
            int64(viewer, "viewer"), int64(target, "target"), count(limit, "limit")
        )
        return FollowedBy(ids, int(total))

    # -- suggestions -------------------------------------------------------------------------------------

    def suggest(
        self, user: IntLike, limit: int = 20, method: str = "common", exclude: IntArrayLike | None = None
    ) -> Suggestions:
        """ "Suggested for you": friends of friends of `user`, scored by how many of the accounts `user`
        follows follow them (``method="common"``) or by Adamic-Adar (``"adamic_adar"``: each such
        account counts 1 / ln(its follows and followers)). Never `user`, an account `user` follows, or
        one in `exclude` (e.g. blocks). The `limit` best, ties broken by the smaller id."""
        if method not in ("common", "adamic_adar"):
            raise ValueError(_messages.SUGGEST_METHOD.format(method=method))
        exclude = np.empty(0, np.int64) if exclude is None else int64_array(exclude, "exclude")
        ids, scores = self._graph.suggest(
            int64(user, "user"), count(limit, "limit"), method == "adamic_adar", exclude
        )
        return Suggestions(ids, scores)

    def random_walk_suggest(
        self,
        user: IntLike,
        walks: int = 100,
        walk_length: int = 20,
        restart_prob: float = 0.3,
        seed: int = 0,
        limit: int = 20,
        exclude: IntArrayLike | None = None,
    ) -> Suggestions:
        """Suggestions from personalised random walks with restart (as Pinterest's Pixie): accounts
        visited most often by `walks` walks of `walk_length` steps along follows from `user`, each step
        going back to `user` with probability `restart_prob`. The same seed gives the same answer on every
        backend (splitmix64; see the reference). Scores are visit counts."""
        restart = float(restart_prob)
        if not 0.0 <= restart <= 1.0:
            raise ValueError(f"restart_prob must be within [0, 1], got {restart_prob!r}")
        exclude = np.empty(0, np.int64) if exclude is None else int64_array(exclude, "exclude")
        seed = operator.index(seed) & (2**64 - 1)
        walks, walk_length = count(walks, "walks"), count(walk_length, "walk_length")
        for value, name in ((walks, "walks"), (walk_length, "walk_length")):
            if value > MAX_WALK_STEPS:
                raise ValueError(f"{name} must be at most {MAX_WALK_STEPS:,}")
        if walks * walk_length > MAX_WALK_STEPS:
            raise ValueError(f"walks * walk_length must be at most {MAX_WALK_STEPS:,}")
        ids, scores = self._graph.random_walk_suggest(
            int64(user, "user"),
            walks,
            walk_length,
            restart,
            seed,
            count(limit, "limit"),
            exclude,
        )
        return Suggestions(ids, scores)

    # -- traversal and updates ---------------------------------------------------------------------------

    def bfs(
        self, user: IntLike, max_depth: int, max_nodes: int | None = None, direction: str = "following"
    ) -> Reached:
        """Breadth-first search from `user` along follows (``direction="following"``) or against them
        (``"followers"``), to `max_depth` hops: the users reached in order of discovery (`user` first, at
        depth 0; each user's neighbours in ascending id order), at most `max_nodes` of them."""
        out = _direction(direction)
        ids, depths = self._graph.bfs(
            int64(user, "user"), count(max_depth, "max_depth"), optional_count(max_nodes, "max_nodes", 1), out
        )
        return Reached(ids, depths)

    def follow(self, src: IntArrayLike, dst: IntArrayLike, timestamps: IntArrayLike | None = None) -> int:
        """Adds the follows ``src[i] follows dst[i]``, in order; returns how many were new. New ids become
        users; self-follows are ignored; a follow that exists keeps its time. A timed graph needs
        `timestamps`, an untimed one takes none. Queries see the follows at once.

        Threads may share a graph (see ``FollowGraph``): an update waits for the queries running
        on it to end, and queries that start meanwhile wait for the update."""
        src, dst = _pairs(src, dst)
        if self.has_timestamps and timestamps is None:
            raise ValueError("this graph has timestamps: follow() needs them")
        if not self.has_timestamps and timestamps is not None:
            raise ValueError("this graph has no timestamps: follow() takes none")
        times = None if timestamps is None else _times(timestamps, len(src))
        return int(self._graph.follow(src, dst, times))

    def unfollow(self, src: IntArrayLike, dst: IntArrayLike) -> int:
        """Removes the follows ``src[i] follows dst[i]``; returns how many existed. Users stay."""
        src, dst = _pairs(src, dst)
        return int(self._graph.unfollow(src, dst))

    def compact(self) -> None:
        """Folds follows and unfollows made since the last build into the compact layout (the compiled
        backends keep them in a small side layer until then, and fold them in by themselves when that
        layer grows as large as the graph)."""
        self._graph.compact()

    # -- whole graph -------------------------------------------------------------------------------------

    def edges(self) -> tuple[NDArray[np.int64], ...]:
        """Every follow as ``(src, dst)`` int64 arrays (``(src, dst, times)`` on a timed graph), ordered by
        source id, then target id."""
        src, dst, times = self._graph.edges()
        return (src, dst) if times is None else (src, dst, times)

    def components(self, kind: str = "weak") -> NDArray[np.int64]:
        """A component label per user, aligned with ``user_ids()``; components are numbered 0, 1, ... in
        the order of their smallest user id. ``"weak"``: follows taken either way; ``"strong"``: users
        that reach each other along follows."""
        if kind not in ("weak", "strong"):
            raise ValueError(f"kind must be 'weak' or 'strong', not {kind!r}")
        return self._graph.components(kind == "strong")

    def triangle_count(self) -> int:
        """Triangles of the undirected simple graph (direction dropped; SNAP's and networkx's count)."""
        return int(self._graph.triangle_count())

    def degree_histogram(self, direction: str = "following") -> NDArray[np.int64]:
        """``h[k]``: how many users follow (``"following"``) or have (``"followers"``) exactly k accounts,
        for k up to the largest degree."""
        return self._graph.degree_histogram(_direction(direction))
