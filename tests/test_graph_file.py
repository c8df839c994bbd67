"""Saving and loading follow graphs: one format on every backend, mapped and shared by forked workers,
and hostile files refused with ValueError, never a crash."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest

import igcore
from igcore import _graph_file
from igcore.graph import FollowGraph

from .test_graph import BIG, lists, small_graph, snapshot

HOT_PATH = "graph"


def random_graph(follows: int = 5_000, users: int = 800, timed: bool = False, seed: int = 5) -> FollowGraph:
    rng = np.random.default_rng(seed)
    ids = rng.integers(-(2**62), 2**62, size=users, dtype=np.int64)
    src = ids[rng.integers(0, users, size=follows)]
    dst = ids[np.minimum(rng.zipf(1.5, size=follows), users) - 1]
    times = rng.integers(0, 50, size=follows, dtype=np.int64) if timed else None
    return FollowGraph.from_edges(src, dst, times)


@pytest.mark.parametrize("timed", [False, True])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_and_load_give_back_the_same_graph(backend, tmp_path, timed, mmap):
    graph = random_graph(timed=timed)
    path = tmp_path / "graph.igf"
    graph.save(path)
    loaded = FollowGraph.load(path, mmap=mmap)
    assert loaded.backend == backend and loaded.build_report is None
    probes = lists(graph.user_ids()[:20]) + [7]
    assert snapshot(loaded, probes) == snapshot(graph, probes)


def test_every_backend_writes_the_same_bytes(backend, tmp_path):
    with igcore.use_backend("python"):
        random_graph(timed=True).save(tmp_path / "reference.igf")
    random_graph(timed=True).save(tmp_path / "mine.igf")
    assert (tmp_path / "mine.igf").read_bytes() == (tmp_path / "reference.igf").read_bytes()


def test_pending_updates_are_saved(backend, tmp_path):
    graph = small_graph()
    graph.follow([BIG, 2], [1, 4])
    graph.unfollow([1], [2])
    graph.save(tmp_path / "g.igf")
    loaded = FollowGraph.load(tmp_path / "g.igf")
    assert lists(loaded.user_ids()) == lists(graph.user_ids())
    assert [lists(x) for x in loaded.edges()] == [lists(x) for x in graph.edges()]


def test_a_file_saved_over_stays_readable_by_those_who_mapped_it(backend, tmp_path):
    path = tmp_path / "g.igf"
    small_graph().save(path)
    first = FollowGraph.load(path)
    random_graph().save(path)  # a new file renamed over the old one
    assert lists(first.following(1)) == [2, 3, 4]
    assert FollowGraph.load(path).num_users > 5


def test_load_reads_only_the_header(backend, tmp_path):
    # A body corrupted after the header: load succeeds (it does not read the body), the first query
    # checks the body and refuses it, and so does every query after it.
    path = tmp_path / "g.igf"
    random_graph().save(path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    if backend == "python":
        with pytest.raises(ValueError, match="checksum of section in_sources"):
            FollowGraph.load(path)
        return
    graph = FollowGraph.load(path)
    assert graph.num_users > 0  # read from the header
    for _ in range(2):
        with pytest.raises(ValueError, match="checksum of section in_sources"):
            graph.following(0)
    with pytest.raises(ValueError, match="corrupted"):
        graph.verify()
    with pytest.raises(ValueError, match="checksum"):
        FollowGraph.load(path, mmap=False)


# -- hostile files -------------------------------------------------------------------------------------------


def saved(tmp_path, timed=False) -> bytes:
    path = tmp_path / "good.igf"
    random_graph(follows=300, users=60, timed=timed).save(path)
    return path.read_bytes()


def load_bytes(tmp_path, data: bytes, mmap: bool = True):
    path = tmp_path / "bad.igf"
    path.write_bytes(data)
    graph = FollowGraph.load(path, mmap=mmap)
    graph.verify()
    return graph


def with_header_crc(header: bytearray) -> bytes:
    struct.pack_into("<I", header, 280, zlib.crc32(bytes(header[:280])))
    return bytes(header)


@pytest.mark.parametrize("mmap", [True, False])
def test_truncated_files_are_refused_at_every_length(backend, tmp_path, mmap):
    data = saved(tmp_path)
    for length in sorted({0, 1, 7, 8, 100, 319, 320, 321, 400, len(data) // 2, len(data) - 1}):
        with pytest.raises(ValueError, match="bad.igf: "):
            load_bytes(tmp_path, data[:length], mmap)


def test_foreign_and_future_files_are_refused(backend, tmp_path):
    data = saved(tmp_path)
    with pytest.raises(ValueError, match="no IGFOLLOW magic"):
        load_bytes(tmp_path, b"\x89PNG\r\n\x1a\n" + data[8:])
    with pytest.raises(ValueError, match="no IGFOLLOW magic"):
        load_bytes(tmp_path, b"1 2\n3 4\n")
    header = bytearray(data[:320])
    struct.pack_into("<I", header, 8, 2)
    with pytest.raises(ValueError, match="version 2 is not supported"):
        load_bytes(tmp_path, with_header_crc(header) + data[320:])
    with pytest.raises(ValueError, match="the header's checksum does not match"):
        load_bytes(tmp_path, data[:20] + bytes([data[20] ^ 1]) + data[21:])
    with pytest.raises(ValueError, match="longer than its sections"):
        load_bytes(tmp_path, data + b"\0" * 64)


@pytest.mark.parametrize(
    ("field_at", "value", "message"),
    [
        (16, 2**32, r"users is more than a graph can hold"),  # num_users
        (16, 2**64 - 1, r"users is more than"),
        (24, 2**62, r"section out_targets at offset"),  # num_follows: 4 EiB of follows
        (24, 2**64 - 1, r"section out_targets"),
        (32, 2**63, r"id table of"),  # num_slots
        (40, 2**63, r"section ids at offset 9223372036854775808"),  # a section's offset
        (48, 2**60, r"section ids at offset 320 with 1152921504606846976 bytes"),  # a section's length
        (64, 8, r"section slots at offset 8 with"),  # a section over the header
        (16, 61, r"an id table of 128 slots does not fit 61 users|section"),
    ],
)
def test_headers_that_lie_about_sizes_are_refused_before_anything_is_allocated(
    backend, tmp_path, field_at, value, message
):
    data = saved(tmp_path)
    header = bytearray(data[:320])
    struct.pack_into("<Q", header, field_at, value)
    with pytest.raises(ValueError, match=message):
        load_bytes(tmp_path, with_header_crc(header) + data[320:])


@pytest.mark.parametrize("section", [name for name, _ in _graph_file.SECTIONS])
def test_a_flipped_byte_in_any_section_is_caught(backend, tmp_path, section):
    data = bytearray(saved(tmp_path, timed=True))
    layout = _graph_file.read_header(str(tmp_path / "good.igf"))
    i = [name for name, _ in _graph_file.SECTIONS].index(section)
    data[layout.offsets[i] + layout.lengths[i] // 2] ^= 0x40
    for mmap in (True, False):
        with pytest.raises(ValueError, match=f"checksum of section {section}"):
            load_bytes(tmp_path, bytes(data), mmap)


def reference_sections(timed=False):
    with igcore.use_backend("python"):
        graph = random_graph(follows=300, users=60, timed=timed)
        return graph.num_users, graph.num_follows, graph._graph._sections()


def corrupt_with_valid_checksums(tmp_path, change, timed=False) -> str:
    """A file whose checksums are right but whose arrays were changed by `change(sections)`: what a
    buggy or hostile writer produces."""
    n, m, sections = reference_sections(timed)
    sections = [s.copy() for s in sections]
    change(sections)
    path = tmp_path / "hostile.igf"
    _graph_file.write_file(str(path), n, m, timed, sections)
    return str(path)


HOSTILE = {
    "an index past the last user": lambda s: s[3].__setitem__(0, 2**32 - 2),
    "a follower index past the last user": lambda s: s[5].__setitem__(3, 10**6),
    "offsets that run backwards": lambda s: s[2].__setitem__(5, 2**40),
    "an offset past the end": lambda s: s[4].__setitem__(len(s[4]) - 1, 2**63),
    "ids out of order": lambda s: s.__setitem__(0, s[0][::-1].copy()),
    "an id table that loses a user": lambda s: s[1].__setitem__(
        np.flatnonzero(s[1] != 2**32 - 1)[0], 2**32 - 1
    ),
    "an id table with every slot taken": lambda s: s[1].fill(0),
    "an id table that points past the users": lambda s: s[1].__setitem__(
        np.flatnonzero(s[1] != 2**32 - 1)[0], 10**6
    ),
    "a list out of order": lambda s: s[3].__setitem__(slice(0, 2), s[3][:2][::-1].copy()),
    "followers that do not mirror following": lambda s: s[5].__setitem__(slice(None), np.roll(s[5], 1)),
    "a self-follow": lambda s: s[3].__setitem__(0, 0),  # user 0 follows itself
}


@pytest.mark.parametrize("what", list(HOSTILE))
def test_hostile_arrays_with_valid_checksums_are_refused(backend, tmp_path, what):
    path = corrupt_with_valid_checksums(tmp_path, HOSTILE[what])
    for mmap in (True, False):
        with pytest.raises(ValueError, match="corrupted"):
            graph = FollowGraph.load(path, mmap=mmap)
            graph.following(0)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s[7].__setitem__(slice(None), 0),  # an order by time that is no permutation
        lambda s: s[6].__setitem__(0, s[6][0] + 1000),  # times of following differ from followers'
    ],
)
def test_hostile_time_arrays_are_refused(backend, tmp_path, change):
    path = corrupt_with_valid_checksums(tmp_path, change, timed=True)
    with pytest.raises(ValueError, match="corrupted"):
        FollowGraph.load(path).verify()


# -- shared pages --------------------------------------------------------------------------------------------


def mapping_pages(path: str) -> dict[str, int]:
    """This process's resident, shared and private kB of its mappings of `path` (a page just written is
    dirty in the page cache until written back, so shared pages may count as Shared_Dirty)."""
    totals = {"Shared_Clean": 0, "Shared_Dirty": 0, "Private_Clean": 0, "Private_Dirty": 0, "Rss": 0}
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:  # a mapping's first line
                inside = fields[-1] == path
            elif inside and fields[0].rstrip(":") in totals:
                totals[fields[0].rstrip(":")] += int(fields[1])
    return totals


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads page counts from /proc (Linux)")
def test_forked_workers_share_the_mapped_pages(backend, tmp_path):
    if backend == "python":
        pytest.skip("the reference reads files into its own dicts; it maps nothing")
    path = str(tmp_path / "shared.igf")
    random_graph(follows=400_000, users=50_000, seed=9).save(path)
    size_kb = os.path.getsize(path) // 1024
    graph = FollowGraph.load(path)
    graph.verify()  # in the parent, before forking: the workers never repeat it
    children = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # a worker: read the whole graph, report its page counts of the file
            try:
                os.close(read)
                graph.triangle_count()  # every follow list
                graph.follower_count(graph.user_ids())  # the ids, and the id table
                pages = mapping_pages(path)
                os.write(write, repr(pages).encode())
            finally:
                os._exit(0)
        os.close(write)
        children.append((pid, read))
    reports = []
    for pid, read in children:
        with os.fdopen(read) as pipe:
            reports.append(eval(pipe.read()))  # noqa: S307 - our own child's dict literal
        os.waitpid(pid, 0)
    for pages in reports:
        assert pages["Rss"] >= size_kb * 0.9, pages  # the worker read every page of the file ...
        shared = pages["Shared_Clean"] + pages["Shared_Dirty"]
        assert shared >= size_kb * 0.9, pages  # ... and shares them
        assert pages["Private_Dirty"] == 0, pages  # no copy of its own


def test_nbytes_is_under_16_bytes_per_follow_on_a_power_law_graph(backend):
    if backend == "python":
        pytest.skip("the reference reports the compact layout's size by formula, not what it holds")
    graph = random_graph(follows=200_000, users=20_000)
    assert graph.nbytes / graph.num_follows < 16
