"""msgpack under hostile hooks, hostile headers, small thread stacks and threads sharing an Unpacker:
the right answer or a documented exception, on every backend, never a crash. Cases that could crash
run in a child interpreter (``run_isolated``), so a crash fails the test instead of ending the session.

- A hook that frees what the packer is walking (``default`` clearing the dict or list it came from).
- Headers that each claim as many items as bytes remain, nested 1024 deep: memory stays within a small
  multiple of the reference's, however the headers lie.
- 1024 levels of nesting, packed and unpacked in a thread with a 128 KiB stack (musl's default), with
  hooks at every level.
- Hooks that walk ``gc.get_objects()`` while objects are being built: no container is seen half built.
- An ``Unpacker`` shared by threads: under a lock, every object once and in order; without one, each
  call either works or raises the documented ``RuntimeError``.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import tracemalloc

import pytest

from igcore import msgpack

from .conftest import skip_measuring_under_sanitizer
from .isolated import assert_ran_cleanly, run_isolated

HOT_PATH = "msgpack"

# -- a default that frees what is being packed ---------------------------------------------------------------

FREEING_DEFAULTS = """
import json, igcore.msgpack as m

class Key:
    pass

BIG = 4 << 20  # freed, a buffer this large goes back to the OS: reading it after would fault

def case(make, **options):
    try:
        return ["ok", m.packb(make(), **options).hex()[:64]]
    except Exception as exc:
        return ["raised", type(exc).__name__, str(exc)]

results = {}

def key_clears_dict():
    d = {}
    def default(obj):
        d.clear()
        return 1
    d[Key()] = b"v" * BIG
    return d, default

def value_clears_dict():
    d = {}
    def default(obj):
        d.clear()
        return 1
    d["a"] = Key()
    d["b"] = b"w" * BIG
    return d, default

def item_clears_list():
    items = []
    def default(obj):
        items.clear()
        return 1
    items.extend([Key(), b"x" * BIG, b"y" * BIG])
    return items, default

def item_shrinks_nested_list():
    inner = [Key(), b"x" * BIG]
    outer = [inner, b"z" * BIG]
    def default(obj):
        inner.clear()
        outer.clear()
        return [b"q" * BIG]
    return outer, default

def key_replaces_dict_entries():
    d = {}
    def default(obj):
        d.clear()
        d.update({i: b"r" * 10 for i in range(2)})
        return 1
    d[Key()] = b"v" * BIG
    d["b"] = b"w" * BIG
    return d, default

class Items(dict):
    pass

def subclass_cleared():
    d = Items()
    def default(obj):
        d.clear()
        return 1
    d[Key()] = b"v" * BIG
    d["b"] = 2
    return d, default

for name in ["key_clears_dict", "value_clears_dict", "item_clears_list", "item_shrinks_nested_list",
             "key_replaces_dict_entries", "subclass_cleared"]:
    obj, default = globals()[name]()
    results[name] = case(lambda: obj, default=default)
    # The same through a Packer, and as a value inside pack_map_pairs.
    obj, default = globals()[name]()
    packer = m.Packer(default=default)
    try:
        results[name + " Packer"] = ["ok", packer.pack(obj).hex()[:64]]
    except Exception as exc:
        results[name + " Packer"] = ["raised", type(exc).__name__, str(exc)]
    obj, default = globals()[name]()
    try:
        results[name + " pairs"] = ["ok", m.Packer(default=default).pack_map_pairs([("k", obj)]).hex()[:64]]
    except Exception as exc:
        results[name + " pairs"] = ["raised", type(exc).__name__, str(exc)]
print(json.dumps(results))
"""


def test_a_default_that_frees_what_is_being_packed_gets_the_references_answer():
    results = {}
    for backend in ("rust", "cython", "python"):
        results[backend] = json.loads(assert_ran_cleanly(run_isolated(FREEING_DEFAULTS, backend)))
    assert results["rust"] == results["python"]
    assert results["cython"] == results["python"]
    # A container changed while packed raises (the header would lie otherwise).
    assert results["python"]["key_clears_dict"][:2] == ["raised", "RuntimeError"]
    assert results["python"]["item_clears_list"][:2] == ["raised", "RuntimeError"]


def test_a_dict_value_stays_alive_while_its_key_is_packed(backend):
    # In-process, the plain answer: the key's default clears the dict; the pair is still packed whole
    # from the references held, then the changed size raises.
    d = {}

    def default(obj):
        d.clear()
        return "k"

    d[object()] = "v" * 100
    with pytest.raises(RuntimeError, match="dictionary changed size during iteration"):
        msgpack.packb(d, default=default)


# -- headers that lie, nested --------------------------------------------------------------------------------


def lying(size: int, kind: str) -> bytes:
    """1024 nested containers whose headers each claim as many items as bytes remain (or half as many
    pairs), then filler: every level can believe its header until the input runs out."""
    out = bytearray()
    for level in range(1024):
        rest = size - len(out) - 5
        what = kind if kind != "mixed" else ("array", "map")[level % 2]
        if what == "array":
            out += b"\xdd" + struct.pack(">I", rest)
        else:
            out += b"\xdf" + struct.pack(">I", rest // 2) + b"\xa1a"
    out += b"\xc0" * (size - len(out))
    return bytes(out)


PEAK = """
import resource, struct, sys, time
from igcore import msgpack as m
from tests.test_msgpack_hardening import lying

data = lying({size}, "{kind}")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    m.unpackb(data, use_list={use_list})
    print("no error")
except ValueError:
    pass
elapsed = time.perf_counter() - started
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, elapsed)
"""


@pytest.mark.parametrize("kind", ["array", "map", "mixed"])
@pytest.mark.parametrize("use_list", [False, True])
def test_nested_lying_headers_allocate_no_more_than_the_reference(kind, use_list):
    code = PEAK.format(size=256 * 1024, kind=kind, use_list=use_list)
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    peaks = {}
    for backend in ("python", "rust", "cython"):
        out = assert_ran_cleanly(run_isolated(code, backend, PYTHONPATH=root))
        before, peak, elapsed = out.split()
        peaks[backend] = (int(before), int(peak), float(elapsed))
    skip_measuring_under_sanitizer("peak RSS and time")
    ref_growth = max(peaks["python"][1] - peaks["python"][0], 4096)  # KiB
    for backend in ("rust", "cython"):
        before, peak, elapsed = peaks[backend]
        # The old compiled backends grew by ~2 GiB here (a table per level at the claimed size).
        assert peak - before <= 4 * ref_growth + 16 * 1024, (backend, peaks)
        assert peak <= 2 * peaks["python"][1], (backend, peaks)
        assert elapsed < 2.0, (backend, peaks)


@pytest.mark.parametrize("kind", ["array", "map", "mixed"])
def test_nested_lying_headers_raise_quickly_with_little_memory(backend, kind):
    data = lying(64 * 1024, kind)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ValueError):
            msgpack.unpackb(data, use_list=False)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    elapsed = time.perf_counter() - started
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MiB for a 64 KiB input"  # Python's own allocations
    skip_measuring_under_sanitizer("time")
    assert elapsed < 2.0


def test_honest_nested_containers_still_round_trip(backend):
    # The budget that bounds presized dicts must not refuse honest documents anything but speed.
    doc = {f"k{i}": {"inner": {str(j): [j, {"x": j}] for j in range(40)}} for i in range(30)}
    assert msgpack.unpackb(msgpack.packb(doc)) == doc
    packed = msgpack.packb([doc] * 3)
    as_tuples = msgpack.unpackb(msgpack.packb(doc), use_list=False)
    assert msgpack.unpackb(packed, use_list=False) == (as_tuples,) * 3


# -- 1024 levels in a small thread stack ---------------------------------------------------------------------

SMALL_STACK = """
import json, sys, threading
import igcore.msgpack as m

STACK = {stack}
threading.stack_size(STACK)
DEPTH = 1024

def nested_list(depth):
    x = None
    for _ in range(depth):
        x = [x]
    return x

def nested_dict(depth):
    x = None
    for _ in range(depth):
        x = {{"k": x}}
    return x

class Box:
    def __init__(self, inner):
        self.inner = inner

def boxed(depth):
    x = None
    for _ in range(depth):
        x = Box(x)
    return x

def depth_of(obj, step):
    # Walked iteratively: comparing or printing 1024 levels would recurse in C on this small stack.
    n = 0
    while obj is not None:
        obj = step(obj)
        n += 1
    return n

results = {{}}

def run():
    lists = nested_list(DEPTH)
    packed_lists = m.packb(lists)
    results["pack lists"] = packed_lists == b"\\x91" * DEPTH + b"\\xc0"
    dicts = nested_dict(DEPTH)
    packed_dicts = m.packb(dicts)
    results["pack dicts"] = packed_dicts == b"\\x81\\xa1k" * DEPTH + b"\\xc0"
    results["pack tuples"] = m.packb(m.unpackb(packed_lists, use_list=False)) == packed_lists
    results["pack default"] = m.packb(boxed(DEPTH), default=lambda box: [box.inner]) == packed_lists
    try:
        m.packb([nested_list(DEPTH)])
        results["pack too deep"] = "no error"
    except ValueError as exc:
        results["pack too deep"] = str(exc)
    results["unpack lists"] = depth_of(m.unpackb(packed_lists), lambda x: x[0])
    results["unpack tuples"] = depth_of(m.unpackb(packed_lists, use_list=False), lambda x: x[0])
    results["unpack dicts"] = depth_of(m.unpackb(packed_dicts), lambda x: x["k"])
    calls = []
    hooked = m.unpackb(packed_lists, list_hook=lambda x: calls.append(1) or x)
    results["list_hook"] = [depth_of(hooked, lambda x: x[0]), len(calls)]
    hooked = m.unpackb(packed_dicts, object_hook=lambda d: Box(d["k"]))
    results["object_hook"] = depth_of(hooked, lambda box: box.inner)
    hooked = m.unpackb(packed_dicts, object_pairs_hook=lambda pairs: Box(pairs[0][1]))
    results["object_pairs_hook"] = depth_of(hooked, lambda box: box.inner)
    unpacker = m.Unpacker(list_hook=tuple)
    unpacker.feed(packed_lists * 2)
    results["Unpacker"] = [depth_of(obj, lambda x: x[0]) for obj in unpacker]
    try:
        m.unpackb(b"\\x91" + packed_lists)
        results["unpack too deep"] = "no error"
    except m.StackError:
        results["unpack too deep"] = "StackError"

def guarded():
    try:
        run()
    except BaseException as exc:
        results["error"] = repr(exc)

thread = threading.Thread(target=guarded)
thread.start()
thread.join()
print(json.dumps(results))
"""


def test_1024_levels_fit_a_128_kib_thread_stack(backend):
    # The reference walks with explicit stacks too; its hooks are Python calls, which need no C stack.
    out = assert_ran_cleanly(run_isolated(SMALL_STACK.format(stack=128 * 1024), backend))
    results = json.loads(out)
    assert results == {
        "pack lists": True,
        "pack dicts": True,
        "pack tuples": True,
        "pack default": True,
        "pack too deep": "recursion limit exceeded.",
        "unpack lists": 1024,
        "unpack tuples": 1024,
        "unpack dicts": 1024,
        "list_hook": [1024, 1024],
        "object_hook": 1024,
        "object_pairs_hook": 1024,
        "Unpacker": [1024, 1024],
        "unpack too deep": "StackError",
    }


# -- hooks that walk the garbage collector's objects ---------------------------------------------------------

GC_WALK = """
import gc, json
import igcore.msgpack as m

seen = [0]

def walk(obj):
    # Touch every slot of every list and tuple the collector tracks: a half-built container would
    # hand out an empty (NULL) slot here.
    if seen[0] < 60:
        for other in gc.get_objects():
            if type(other) in (list, tuple):
                for item in other:
                    pass
        seen[0] += 1
    return obj

doc = [[1, "a", {"k": [2, 3, {"deep": [4, 5]}], "j": None}, [6, {"x": 7}], 8] for _ in range(4)]
packed = m.packb(doc)
results = {}
results["object_hook"] = m.unpackb(packed, object_hook=walk) == doc
seen[0] = 0
as_tuples = m.unpackb(packed, use_list=False)
results["list_hook tuples"] = m.unpackb(packed, use_list=False, list_hook=walk) == as_tuples
seen[0] = 0
results["object_pairs_hook"] = m.unpackb(packed, object_pairs_hook=lambda p: walk(dict(p))) == doc
seen[0] = 0
results["ext_hook"] = m.unpackb(m.packb([1, m.ExtType(5, b"x"), [2, m.ExtType(6, b"y")]]),
                                ext_hook=lambda code, data: walk(code)) == [1, 5, [2, 6]]
seen[0] = 0
unpacker = m.Unpacker(object_hook=walk)
unpacker.feed(packed * 2)
results["Unpacker"] = list(unpacker) == [doc, doc]
print(json.dumps(results))
"""


def test_hooks_walking_gc_objects_never_meet_a_half_built_container(backend):
    results = json.loads(assert_ran_cleanly(run_isolated(GC_WALK, backend)))
    assert results == dict.fromkeys(
        ["object_hook", "list_hook tuples", "object_pairs_hook", "ext_hook", "Unpacker"], True
    )


# -- an Unpacker shared by threads ---------------------------------------------------------------------------

BUSY = "Unpacker cannot be called while another call on it is in progress"


def stream_of(n: int) -> tuple[list, bytes]:
    objects = [{"seq": i, "text": "x" * (i % 50), "items": list(range(i % 7))} for i in range(n)]
    return objects, b"".join(msgpack.packb(obj) for obj in objects)


def test_threads_sharing_an_unpacker_under_a_lock_get_every_object_once_in_order(backend):
    objects, data = stream_of(3000)
    unpacker = msgpack.Unpacker()
    lock = threading.Lock()
    got = []
    fed = threading.Event()
    errors = []

    def feeder():
        try:
            for start in range(0, len(data), 997):
                with lock:
                    unpacker.feed(data[start : start + 997])
                time.sleep(0)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        fed.set()

    def reader():
        try:
            while True:
                with lock:
                    try:
                        got.append(unpacker.unpack())
                        continue
                    except msgpack.OutOfData:
                        if fed.is_set() and len(got) == len(objects):
                            return
                time.sleep(0)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=feeder)] + [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert got == objects  # each unpack under the lock takes the next object: one order for all


STRESS = """
import io, json, sys, threading, time
import igcore.msgpack as m

sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
BUSY = {busy!r}
N = 2000
objects = [{{"seq": i, "text": "y" * (i % 40), "items": [i] * (i % 5)}} for i in range(N)]
data = b"".join(m.packb(obj) for obj in objects)
refused = {{"n": 0}}
results = {{}}

def hook(obj):
    sum(range(20))  # Python code: room for a switch while the call is in progress
    return obj

def run(unpacker, feed):
    got = [[] for _ in range(3)]
    errors = []
    done = threading.Event()

    def feeder():
        for start in range(0, len(data), 613):
            while True:
                try:
                    unpacker.feed(data[start : start + 613])
                    break
                except RuntimeError as exc:
                    if str(exc) != BUSY:
                        errors.append(repr(exc))
                        return
                    refused["n"] += 1
        done.set()

    def reader(mine):
        while not (done.is_set() and sum(map(len, got)) == N):
            try:
                mine.append(unpacker.unpack()["seq"])
            except m.OutOfData:
                if not feed and sum(map(len, got)) < N:
                    continue
                time.sleep(0)
            except RuntimeError as exc:
                if str(exc) != BUSY:
                    errors.append(repr(exc))
                    return
                refused["n"] += 1
            except Exception as exc:
                errors.append(repr(exc))
                return

    threads = [threading.Thread(target=reader, args=(mine,)) for mine in got]
    if feed:
        threads.append(threading.Thread(target=feeder))
    else:
        done.set()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    merged = sorted(seq for mine in got for seq in mine)
    return {{
        "errors": errors,
        "exactly once": merged == list(range(N)),
        "in order per thread": all(mine == sorted(mine) for mine in got),
    }}

results["fed"] = run(m.Unpacker(object_hook=hook), feed=True)
results["file"] = run(m.Unpacker(io.BytesIO(data), read_size=301, object_hook=hook), feed=False)

# A hook, or a file's read(), that calls back into its own unpacker is refused the same way.
unpacker = m.Unpacker()
def reentrant(obj):
    try:
        unpacker.tell()
    except RuntimeError as exc:
        return str(exc)
    return "allowed"
unpacker = m.Unpacker(object_hook=reentrant)
unpacker.feed(m.packb({{"a": 1}}))
results["hook"] = unpacker.unpack()
class File:
    def read(self, n):
        try:
            reading.read_bytes(1)
        except RuntimeError as exc:
            results["file read"] = str(exc)
        return b""
reading = m.Unpacker(File())
results["file end"] = list(reading)
results["refused"] = refused["n"]
print(json.dumps(results))
"""


def test_threads_sharing_an_unpacker_without_a_lock_get_answers_or_the_documented_error(backend):
    results = json.loads(assert_ran_cleanly(run_isolated(STRESS.format(busy=BUSY), backend, timeout=300)))
    for mode in ("fed", "file"):
        assert results[mode] == {"errors": [], "exactly once": True, "in order per thread": True}, mode
    assert results["hook"] == BUSY
    assert results["file read"] == BUSY
    assert results["file end"] == []


def test_a_hook_cannot_use_its_own_unpacker(backend):
    unpacker = msgpack.Unpacker()

    def hook(obj):
        for call in (unpacker.unpack, unpacker.skip, unpacker.read_array_header, unpacker.tell):
            with pytest.raises(RuntimeError, match=BUSY):
                call()
        with pytest.raises(RuntimeError, match=BUSY):
            unpacker.feed(b"\x01")
        with pytest.raises(RuntimeError, match=BUSY):
            unpacker.read_bytes(1)
        return obj

    unpacker = msgpack.Unpacker(object_hook=hook)
    unpacker.feed(msgpack.packb({"a": 1}) + b"\x02")
    assert unpacker.unpack() == {"a": 1}
    assert unpacker.unpack() == 2  # the refused calls changed nothing
    assert unpacker.tell() == 5


def test_a_default_cannot_use_its_own_packer(backend):
    busy = "Packer cannot be called while another call on it is in progress"

    def default(obj):
        for call in (lambda: packer.pack(1), packer.bytes, packer.reset, lambda: packer.pack_array_header(1)):
            with pytest.raises(RuntimeError, match=busy):
                call()
        return str(obj)

    packer = msgpack.Packer(default=default)
    assert msgpack.unpackb(packer.pack([1, 2.5])) == [1, 2.5]
    assert msgpack.unpackb(packer.pack([1, {"a": 3j}])) == [1, {"a": "3j"}]
    assert packer.pack(7) == b"\x07"  # the refused calls changed nothing


PACKER_THREADS = """
import json, sys, threading
import igcore.msgpack as m

sys.setswitchinterval(1e-6)
BUSY = "Packer cannot be called while another call on it is in progress"

class Item:
    def __init__(self, n):
        self.n = n

def default(item):
    sum(range(20))  # Python code: room for a switch while the call is in progress
    return {"n": item.n}

packer = m.Packer(default=default)
errors, refused, done = [], [0], []

def work(k):
    for i in range(500):
        obj = [k, i, Item(i), {"x": Item(k)}]
        while True:
            try:
                packed = packer.pack(obj)
                break
            except RuntimeError as exc:
                if str(exc) != BUSY:
                    errors.append(repr(exc))
                    return
                refused[0] += 1
        if m.unpackb(packed) != [k, i, {"n": i}, {"x": {"n": k}}]:
            errors.append(f"wrong bytes for {k} {i}")
    done.append(k)

threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"errors": errors, "done": sorted(done)}))
"""


def test_threads_sharing_a_packer_get_right_bytes_or_the_documented_error(backend):
    results = json.loads(assert_ran_cleanly(run_isolated(PACKER_THREADS, backend, timeout=300)))
    assert results == {"errors": [], "done": [0, 1, 2, 3]}
