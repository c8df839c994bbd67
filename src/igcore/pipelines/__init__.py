"""Offline pipelines on Dask: the nightly jobs that feed the online state, with igcore inside the tasks.

- ``rollup(events)``: per-kind totals of an event log (``key``, ``kind``, optional ``delta``).
- ``build_graph(edges, out_path)``: a follow-graph file from a table of follows (``src``, ``dst``,
  optional ``ts``).
- ``suggest_all(graph_path, out_path)``: "suggested for you" for every account of a graph file.

Each reads and writes Parquet (pyarrow), runs on the ``dask.distributed.Client`` it is given (or on a
local cluster of worker processes when given none), and answers what the single-process igcore call
answers on the same data. Inputs are a Parquet file, a folder of them (read recursively, in sorted path
order) or a glob; the unit of work is one row group of one file. Install with ``pip install
'igcore[pipelines]'``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from _typeshed import StrPath

    from ..counters import Totals
    from ..graph import BuildReport

__all__ = ["Piece", "Progress", "rollup", "build_graph", "suggest_all", "pieces"]

PIPELINES_MISSING = (
    "igcore.pipelines needs the pipelines extra (dask, pyarrow): pip install 'igcore[pipelines]'"
)
# How many users one suggest_all task takes: a few seconds of work, so that a lost worker costs little.
USERS_PER_TASK = 20_000


class Piece(NamedTuple):
    """One unit of work: a row group of a Parquet file."""

    path: str
    row_group: int


# -- reading and writing Parquet -------------------------------------------------------------------------


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(PIPELINES_MISSING) from None
    return pq


def pieces(dataset: StrPath) -> list[Piece]:
    """The row groups of a Parquet dataset (a file, a folder of files, or a glob), in order."""
    pq = _pyarrow()
    where = os.fspath(dataset)
    if os.path.isdir(where):
        paths = sorted(
            os.path.join(folder, name)
            for folder, _, names in os.walk(where)
            for name in names
            if name.endswith(".parquet") and not name.startswith((".", "_"))
        )
    elif os.path.isfile(where):
        paths = [where]
    else:
        paths = sorted(p for p in glob.glob(where, recursive=True) if os.path.isfile(p))
    if not paths:
        raise FileNotFoundError(f"no Parquet files at {where!r}")
    return [Piece(p, g) for p in paths for g in range(pq.ParquetFile(p).metadata.num_row_groups)]


def _columns(piece: Piece, required: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    """The named columns of one piece as numpy arrays: int64 (see ``igcore._arrow``), or a string column
    as ``(indices, values)`` of its dictionary encoding. ValueError for a missing column, nulls or a
    column of another type."""
    import pyarrow as pa

    from .._arrow import int64_column

    pq = _pyarrow()
    file = pq.ParquetFile(piece.path)
    present = set(file.schema_arrow.names)
    wanted = [*required, *(c for c in optional if c in present)]
    missing = [c for c in required if c not in present]
    table = file.read_row_group(piece.row_group, columns=[c for c in wanted if c not in missing])
    columns: dict[str, Any] = {}
    for name in wanted:
        kind = table.schema.field(name).type if name in present else None
        if kind is not None and (
            pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_dictionary(kind)
        ):
            encoded = table.column(name).combine_chunks()
            if encoded.null_count:
                raise ValueError(f"{piece.path}: column {name!r} has {encoded.null_count} nulls")
            if not pa.types.is_dictionary(encoded.type):
                encoded = encoded.dictionary_encode()
            columns[name] = (encoded.indices.to_numpy(), encoded.dictionary.to_pylist())
        else:
            columns[name] = int64_column(table, name, piece.path)
    return columns


def _write_table(columns: dict[str, Any], path: str) -> None:
    """Writes one Parquet file under a name of its own, then renames it to `path`: a task that is run
    again (Dask retries the tasks of a lost worker) replaces the file whole, and no reader meets half
    of one."""
    import pyarrow as pa

    pq = _pyarrow()
    # A dot name: Parquet readers (pyarrow, Spark, DuckDB) skip it, should a killed task leave it behind.
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}.partial-{uuid.uuid4().hex}")
    try:
        pq.write_table(pa.table(columns), partial)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise


@contextlib.contextmanager
def _new_folder(out: str, overwrite: bool) -> Iterator[str]:
    """A folder to write a dataset into, that becomes `out` only when the dataset is whole."""
    if os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} exists (overwrite=True, or --overwrite, replaces it)")
    partial = f"{out.rstrip(os.sep)}.partial-{uuid.uuid4().hex}"
    os.makedirs(partial)
    try:
        yield partial
        for name in os.listdir(partial):  # what killed tasks left half written
            if name.startswith("."):
                os.remove(os.path.join(partial, name))
        if os.path.exists(out):
            old = f"{out.rstrip(os.sep)}.old-{uuid.uuid4().hex}"
            os.replace(out, old)
            os.replace(partial, out)
            shutil.rmtree(old) if os.path.isdir(old) else os.remove(old)
        else:
            os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


# -- the client ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client(client: Any) -> Iterator[Any]:
    """`client`, or a local cluster of worker processes (one per core) for the length of one call."""
    if client is not None:
        yield client
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(PIPELINES_MISSING) from None
    with (
        LocalCluster(processes=True, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as local,
    ):
        yield local


Progress = Callable[[int, int], None]  # (tasks done, tasks in all)


def _wait(futures: list[Any], progress: Progress | None) -> None:
    """Waits for `futures`, telling `progress` as each one ends (an error is raised when its result is
    asked for)."""
    if progress is None:
        return
    from dask.distributed import as_completed

    progress(0, len(futures))
    for done, _ in enumerate(as_completed(futures), 1):
        progress(done, len(futures))


def _tree(client: Any, merge: Callable[[Any, Any], Any], futures: list[Any]) -> Any:
    """Merges `futures` pairwise, neighbours with neighbours, until one is left: the merges run on the
    workers that hold the parts, and the order of the parts is kept."""
    while len(futures) > 1:
        merged = [client.submit(merge, a, b, pure=False) for a, b in zip(futures[::2], futures[1::2])]
        futures = merged + ([futures[-1]] if len(futures) % 2 else [])
    return futures[0]


# -- rollup ----------------------------------------------------------------------------------------------


def _rollup_piece(piece: Piece) -> dict[str, Totals]:
    import numpy as np

    from ..counters import aggregate

    columns = _columns(piece, ("key", "kind"), ("delta",))
    keys = columns["key"]
    indices, names = columns["kind"]
    deltas = columns.get("delta")
    # Kinds in order of first appearance, each with its events in their order.
    present, first_rows = np.unique(indices, return_index=True)
    totals = {}
    for number in present[np.argsort(first_rows)]:
        rows = np.flatnonzero(indices == number)
        totals[names[number]] = aggregate(keys[rows], None if deltas is None else deltas[rows])
    return totals


def _merge_totals(first: dict[str, Totals], then: dict[str, Totals]) -> dict[str, Totals]:
    """The totals of two neighbouring parts, `first` before `then`: keys stay in order of first
    appearance, kinds too."""
    import numpy as np

    from ..counters import aggregate

    merged = dict(first)
    for kind, later in then.items():
        earlier = merged.get(kind)
        if earlier is None:
            merged[kind] = later
        else:
            keys = np.concatenate([earlier.keys, later.keys])
            merged[kind] = aggregate(keys, np.concatenate([earlier.sums, later.sums]))
    return merged


def _write_totals(totals: dict[str, Totals], folder: str) -> int:
    import numpy as np

    kinds = [kind for kind, t in totals.items() for _ in range(len(t.keys))]
    keys = [t.keys for t in totals.values()]
    sums = [t.sums for t in totals.values()]
    empty = np.empty(0, np.int64)
    _write_table(
        {
            "kind": kinds,
            "key": np.concatenate(keys) if keys else empty,
            "total": np.concatenate(sums) if sums else empty,
        },
        os.path.join(folder, "part-00000.parquet"),
    )
    return len(kinds)


def rollup(
    events: StrPath,
    client: Any = None,
    out: StrPath | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Totals]:
    """Per-kind totals of an event log: a Parquet dataset with columns ``key`` (integers), ``kind``
    (strings) and optionally ``delta`` (integers; 1 per event without it).

    Returns ``{kind: Totals}``, kinds in order of first appearance: for each kind, what
    ``igcore.counters.aggregate`` answers on that kind's events in dataset order. Each row group is
    aggregated by igcore on a worker, and the partial totals are merged pairwise on the workers (a
    tree), so no worker ever holds the events of another. With `out`, the totals are also written as a
    Parquet dataset (columns ``kind``, ``key``, ``total``) in a new folder `out` (an existing one is
    replaced only with `overwrite`). A partial total outside int64 raises ``OverflowError``, as a whole
    one does. `progress(done, total)`, when given, is called as the row groups are aggregated.
    """
    work = pieces(events)
    with _client(client) as dask:
        parts = dask.map(_rollup_piece, work, pure=False)
        final = _tree(dask, _merge_totals, parts)
        _wait(parts, progress)
        if out is not None:
            with _new_folder(os.fspath(out), overwrite) as folder:
                dask.submit(_write_totals, final, folder, pure=False).result()
        result: dict[str, Totals] = final.result()
    return result


# -- build_graph -----------------------------------------------------------------------------------------


def _dedupe_piece(piece: Piece) -> tuple[Any, Any, Any, int]:
    """One piece's follows with the repeats inside it dropped (the earliest time kept): ``(src, dst,
    ts or None, repeats dropped)``. Self-follows stay, each row: the build counts them."""
    import numpy as np

    columns = _columns(piece, ("src", "dst"), ("ts",))
    src, dst, ts = columns["src"], columns["dst"], columns.get("ts")
    selfish = src == dst
    keep_src, keep_dst = src[~selfish], dst[~selfish]
    order = np.lexsort((keep_dst, keep_src) if ts is None else (ts[~selfish], keep_dst, keep_src))
    keep_src, keep_dst = keep_src[order], keep_dst[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (keep_src[1:] != keep_src[:-1]) | (keep_dst[1:] != keep_dst[:-1])
    repeats = int(len(order) - first.sum())
    out_src = np.concatenate([keep_src[first], src[selfish]])
    out_dst = np.concatenate([keep_dst[first], dst[selfish]])
    out_ts = None if ts is None else np.concatenate([ts[~selfish][order][first], ts[selfish]])
    return out_src, out_dst, out_ts, repeats


def _build_and_save(out_path: str, *parts: tuple[Any, Any, Any, int]) -> BuildReport:
    import numpy as np

    from ..graph import BuildReport, FollowGraph

    src = np.concatenate([p[0] for p in parts])
    dst = np.concatenate([p[1] for p in parts])
    timed = {p[2] is not None for p in parts}
    if len(timed) > 1:
        raise ValueError("some files of the dataset have a ts column and some do not")
    ts = np.concatenate([p[2] for p in parts]) if timed == {True} else None
    graph = FollowGraph.from_edges(src, dst, ts)
    graph.save(out_path)
    report = graph.build_report
    assert report is not None  # from_edges always sets it
    return BuildReport(
        report.duplicates + sum(p[3] for p in parts), report.self_follows, report.self_followers
    )


def build_graph(
    edges: StrPath, out_path: StrPath, client: Any = None, progress: Progress | None = None
) -> BuildReport:
    """An igcore follow-graph file at `out_path` from a Parquet dataset of follows: ``src`` follows
    ``dst`` (integers), with an optional time ``ts`` (integers) per follow.

    The same graph, and the same ``BuildReport``, as ``FollowGraph.from_edges`` on all the rows: each row
    group drops its own repeats on a worker (keeping the earliest time), and one worker builds the
    graph from what is left and writes the file, once (``FollowGraph.save``: a new file renamed over
    the old). `progress(done, total)`, when given, is called as the row groups are deduplicated."""
    work = pieces(edges)
    with _client(client) as dask:
        parts = dask.map(_dedupe_piece, work, pure=False)
        _wait(parts, progress)
        report: BuildReport = dask.submit(_build_and_save, os.fspath(out_path), *parts, pure=False).result()
    return report


# -- suggest_all -----------------------------------------------------------------------------------------

# The graph each worker process has mapped, by path and file identity: the tasks of one run map it once.
_mapped: dict[tuple[str, int, int, int], Any] = {}


def _graph(path: str) -> Any:
    from ..graph import FollowGraph

    stat = os.stat(path)
    key = (path, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    graph = _mapped.get(key)
    if graph is None:
        _mapped.clear()
        graph = _mapped[key] = FollowGraph.load(path, mmap=True)
    return graph


def _suggest_range(graph_path: str, start: int, stop: int, limit: int, method: str, part: str) -> int:
    import numpy as np

    graph = _graph(graph_path)
    users = graph.user_ids()[start:stop]
    found = [graph.suggest(int(user), limit, method) for user in users]
    counts = np.array([len(s.ids) for s in found], dtype=np.int64)
    empty_ids, empty_scores = np.empty(0, np.int64), np.empty(0, np.float64)
    _write_table(
        {
            "user": np.repeat(users, counts),
            "rank": np.concatenate([np.arange(1, n + 1, dtype=np.int64) for n in counts] or [empty_ids]),
            "suggestion": np.concatenate([s.ids for s in found] or [empty_ids]),
            "score": np.concatenate([s.scores for s in found] or [empty_scores]),
        },
        part,
    )
    return int(counts.sum())


def suggest_all(
    graph_path: StrPath,
    out_path: StrPath,
    limit: int = 20,
    method: str = "common",
    client: Any = None,
    overwrite: bool = False,
    users_per_task: int = USERS_PER_TASK,
    progress: Progress | None = None,
) -> int:
    """ "Suggested for you" for every account of a graph file: a Parquet dataset in the new folder
    `out_path` with columns ``user``, ``rank`` (1 is the best), ``suggestion`` and ``score``, the rows of
    each user in rank order; an account with nothing to suggest has no rows. Returns the number of rows.

    The same as ``FollowGraph.suggest(user, limit, method)`` for each user of ``user_ids()``. Each task
    takes `users_per_task` users in a row and maps the graph file itself (only its path travels), and
    writes one part file under a name of its own before renaming it: a task that Dask runs again after
    losing its worker replaces its part whole. The folder becomes `out_path` only when every part is
    written (an existing one is replaced only with `overwrite`). `progress(done, total)`, when given,
    is called as the tasks end."""
    from .. import _messages
    from .._arrays import count
    from ..graph import FollowGraph

    if method not in ("common", "adamic_adar"):
        raise ValueError(_messages.SUGGEST_METHOD.format(method=method))
    limit = count(limit, "limit")
    users_per_task = count(users_per_task, "users_per_task", smallest=1)
    graph_file = os.path.abspath(os.fspath(graph_path))
    users = FollowGraph.load(graph_file, mmap=True).num_users  # the header alone: nothing is read
    ranges = [(start, min(start + users_per_task, users)) for start in range(0, users, users_per_task)]
    with _client(client) as dask, _new_folder(os.fspath(out_path), overwrite) as folder:
        futures = [
            dask.submit(
                _suggest_range,
                graph_file,
                start,
                stop,
                limit,
                method,
                os.path.join(folder, f"part-{number:05d}.parquet"),
                pure=False,
            )
            for number, (start, stop) in enumerate(ranges)
        ]
        _wait(futures, progress)
        rows = sum(dask.gather(futures))
    return int(rows)
