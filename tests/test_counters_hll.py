"""counters.HyperLogLog: the same registers and bytes on every backend, and the same as a real Redis."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import igcore
from igcore.counters import HyperLogLog, _hll_format

from .conftest import outcome, reference

HOT_PATH = "counters"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DENSE_SIZE = 16 + 12288


def sketch_of(items) -> HyperLogLog:
    sketch = HyperLogLog()
    sketch.add(items)
    return sketch


def state(sketch: HyperLogLog):
    return sketch.registers().tolist(), sketch.count(), sketch.to_bytes()


# -- examples ------------------------------------------------------------------------------------------


def test_counts_distinct_elements(backend):
    sketch = HyperLogLog()
    assert sketch.backend == backend
    assert sketch.count() == 0
    assert sketch.add([1, 2, 3, 2, 1]) is True
    assert sketch.add(3) is False  # nothing new: as PFADD answers 0
    assert sketch.count() == 3
    sketch.add(np.arange(100_000, dtype=np.int64))
    assert abs(sketch.count() - 100_000) < 100_000 * 0.02  # 0.81% standard error


def test_an_int_is_its_decimal_string(backend):
    ints = [0, 7, -7, 10**15, INT64_MIN, INT64_MAX, 2**64, -(2**70)]
    as_text = sketch_of([str(i) for i in ints])
    assert state(sketch_of(ints)) == state(as_text)
    assert state(sketch_of(np.array(ints[:6], dtype=np.int64))) == state(
        sketch_of([str(i) for i in ints[:6]])
    )
    assert state(sketch_of([b"42", "42", 42, np.int64(42)])) == state(sketch_of(42))


def test_str_is_utf8_and_bytes_are_themselves(backend):
    assert state(sketch_of("héllo")) == state(sketch_of("héllo".encode()))
    assert state(sketch_of([bytearray(b"\x00\xff"), memoryview(b"ab")])) == state(
        sketch_of([b"\x00\xff", b"ab"])
    )
    empty = sketch_of([b"", ""])
    assert empty.count() == 1


def test_other_integer_arrays_are_converted(backend):
    items = np.array([5, 6, 7], dtype=np.int64)
    for variant in (items.astype(np.int32), items.astype(np.uint8), items[::-1], np.repeat(items, 2)[::2]):
        assert state(sketch_of(variant)) == state(sketch_of(items))


def test_merge_is_the_union(backend):
    a, b = sketch_of(range(0, 6000)), sketch_of(range(3000, 9000))
    a.merge(b)
    assert state(a) == state(sketch_of(range(9000)))
    a.merge(a)
    assert state(a) == state(sketch_of(range(9000)))


def test_bytes_round_trip(backend):
    sketch = sketch_of(range(-5000, 5000))
    data = sketch.to_bytes()
    assert len(data) == DENSE_SIZE and data[:5] == b"HYLL\x00"
    assert int.from_bytes(data[8:16], "little") == sketch.count()  # a valid cached cardinality
    again = HyperLogLog.from_bytes(data)
    assert state(again) == state(sketch)
    assert state(HyperLogLog.from_bytes(bytearray(data))) == state(sketch)
    assert HyperLogLog.from_bytes(HyperLogLog().to_bytes()).count() == 0


def test_registers_hold_redis_values(backend):
    registers = sketch_of(range(50_000)).registers()
    assert registers.dtype == np.uint8 and registers.shape == (16384,)
    assert 1 <= registers.max() <= 51


def test_threads_adding_at_once_lose_nothing(backend):
    sketch = HyperLogLog()
    parts = [np.arange(i * 50_000, (i + 1) * 50_000, dtype=np.int64) for i in range(4)]
    threads = [threading.Thread(target=sketch.add, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state(sketch) == state(sketch_of(np.concatenate(parts)))


# -- bad input ------------------------------------------------------------------------------------------


def corrupt(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + bytes([value]) + data[at + 1 :]


VALID = None


def valid_bytes() -> bytes:
    global VALID
    if VALID is None:
        with igcore.use_backend("python"):
            VALID = sketch_of(range(1000)).to_bytes()
    return VALID


def sparse(*opcodes: int) -> bytes:
    return _hll_format.header(1, None) + bytes(opcodes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"not a Redis HyperLogLog: the string does not start with the magic 'HYLL'"),
        (b"HYLX" + bytes(12300), r"magic 'HYLL'"),
        (b"HYLL\x00", r"magic"),  # shorter than a header
        (lambda: valid_bytes()[:-1], r"a dense string is 12304 bytes, this one is 12303"),
        (lambda: valid_bytes() + b"\x00", r"this one is 12305"),
        (lambda: corrupt(valid_bytes(), 4, 2), r"unknown encoding 2 \(0 is dense, 1 sparse\)"),
        (lambda: corrupt(valid_bytes(), 4, 255), r"unknown encoding 255"),
        (
            lambda: corrupt(valid_bytes(), 16, 0x3F),
            r"register 0 holds 63, above the largest possible value 51",
        ),
        (sparse(0x7F, 0xFF), None),  # XZERO of 16384: valid
        (sparse(0x7F, 0xFF, 0x80), r"sparse runs cover more than 16384 registers"),
        (sparse(0x7F, 0xFE), r"sparse runs cover 16383 registers, not 16384"),
        (sparse(0x7F), r"a sparse string ends inside an opcode"),
        (sparse(), r"sparse runs cover 0 registers"),
        (sparse(0x7F, 0xFE, 0xFC), None),  # one register at 32: valid
    ],
)
def test_corrupted_bytes_raise_value_error(backend, data, message):
    data = data() if callable(data) else data
    if message is None:
        HyperLogLog.from_bytes(data)
        return
    with pytest.raises(ValueError, match=message):
        HyperLogLog.from_bytes(data)


def test_random_garbage_never_crashes(backend):
    rng = np.random.default_rng(11)
    base = valid_bytes()
    for _ in range(200):
        data = bytearray(base[: rng.integers(0, len(base) + 1)])
        for at in rng.integers(0, max(1, len(data)), size=3):
            if data:
                data[at] = rng.integers(0, 256)
        if rng.random() < 0.5 and len(data) > 4:
            data[4] = 1  # read the garbage as sparse opcodes
        result = outcome(HyperLogLog.from_bytes, bytes(data))
        assert result[0] == "ok" or result[1] is ValueError, result


@pytest.mark.parametrize(
    ("items", "error", "message"),
    [
        (1.5, TypeError, r"items must be an int, str or bytes, or a sequence of them, not float"),
        (None, TypeError, r"not NoneType"),
        ([1, 2.5], TypeError, r"an element must be an int, str or bytes, not float"),
        ([True], TypeError, r"a bool is not an element"),
        (True, TypeError, r"a bool is not an element"),
        ([[1]], TypeError, r"not list"),
        (np.array([1.5]), TypeError, r"an array of items must hold integers, got dtype float64"),
        (np.array([[1, 2]]), ValueError, r"items must be 1-D"),
        (np.array([2**64 - 1], dtype=np.uint64), OverflowError, r"outside the int64 range"),
    ],
)
def test_bad_items_raise_clear_errors(backend, items, error, message):
    sketch = HyperLogLog()
    with pytest.raises(error, match=message):
        sketch.add(items)
    assert sketch.count() == 0


def test_bad_merge_and_from_bytes_arguments(backend):
    with pytest.raises(TypeError, match=r"can only merge a HyperLogLog, not int"):
        HyperLogLog().merge(3)
    with pytest.raises(TypeError, match=r"data must be bytes, not str"):
        HyperLogLog.from_bytes("HYLL")
    others = [b for b in igcore.backends() if b != backend]
    if others:
        with igcore.use_backend(others[0]):
            other = HyperLogLog()
        with pytest.raises(TypeError, match=r"convert with HyperLogLog.from_bytes\(x.to_bytes\(\)\)"):
            HyperLogLog().merge(other)


# -- properties: every backend is the reference ---------------------------------------------------------

elements = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(-(2**80), 2**80),
    st.text(max_size=20),
    st.binary(max_size=40),
)


@given(st.lists(elements, max_size=40), st.lists(elements, max_size=40))
def test_sketches_match_the_reference(backend, first, second):
    def run():
        a, b = HyperLogLog(), HyperLogLog()
        changed = (a.add(first), b.add(second))
        a.merge(b)
        return changed, state(a), state(HyperLogLog.from_bytes(b.to_bytes()))

    assert outcome(run) == reference(run)


@given(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=2000))
def test_int_arrays_match_the_reference(backend, items):
    array = np.array(items, dtype=np.int64)
    assert outcome(lambda: state(sketch_of(array))) == reference(lambda: state(sketch_of(array)))


# -- Redis: the same registers, count and bytes as the real server -----------------------------------------


def redis_dense(client, key: str, items) -> bytes:
    """What Redis keeps after PFADD of `items` (dense) and a PFCOUNT (which fills the cached count)."""
    client.config_set("hll-sparse-max-bytes", 0)
    client.delete(key)
    for start in range(0, len(items), 10_000):
        client.pfadd(key, *items[start : start + 10_000])
    client.pfcount(key)
    return client.get(key)


@pytest.mark.parametrize("size", [1, 100, 3_000, 40_000, 250_000])
def test_registers_count_and_bytes_equal_redis(backend, redis_client, size):
    # Sizes cover the estimator's ranges: many registers at zero, few, and none.
    rng = np.random.default_rng(size)
    items = rng.integers(INT64_MIN, INT64_MAX, size=size, dtype=np.int64)
    theirs = redis_dense(redis_client, "h", items.tolist())
    ours = sketch_of(items)
    assert ours.registers().tolist() == HyperLogLog.from_bytes(theirs).registers().tolist()
    assert ours.count() == redis_client.pfcount("h")
    assert ours.to_bytes() == theirs  # byte for byte, cached cardinality included


def test_mixed_elements_equal_redis(backend, redis_client):
    items = ["héllo", b"\x00\xff\x10", "", 42, -42, 2**70, "x" * 1000, b"y" * 17]
    theirs = redis_dense(redis_client, "h", items)
    assert sketch_of(items).to_bytes() == theirs


def test_redis_reads_our_bytes(backend, redis_client):
    ours = sketch_of(range(20_000))
    redis_client.set("ours", ours.to_bytes())
    assert redis_client.pfcount("ours") == ours.count()
    # With the cached count marked stale, Redis recomputes it from our registers: the same answer.
    stale = bytearray(ours.to_bytes())
    stale[15] |= 0x80
    redis_client.set("stale", bytes(stale))
    assert redis_client.pfcount("stale") == ours.count()
    # PFMERGE and PFADD work on our string, and give what we give.
    redis_client.pfadd("theirs", *range(15_000, 30_000))
    redis_client.pfmerge("merged", "ours", "theirs")
    merged = sketch_of(range(20_000))
    merged.merge(sketch_of(range(15_000, 30_000)))
    assert redis_client.pfcount("merged") == merged.count()
    assert HyperLogLog.from_bytes(redis_client.get("merged")).to_bytes() == merged.to_bytes()
    assert redis_client.pfadd("ours", "new element") == int(ours.add("new element"))
    assert redis_client.pfcount("ours") == ours.count()


def test_we_read_redis_sparse_and_dense_strings(backend, redis_client):
    for size in (0, 1, 50, 500, 5000):
        redis_client.delete("s")
        redis_client.pfadd("s", *range(size))
        data = redis_client.get("s")
        sketch = HyperLogLog.from_bytes(data)
        assert sketch.count() == redis_client.pfcount("s")
        assert sketch.registers().tolist() == sketch_of(list(range(size))).registers().tolist()
    assert data[4] == 0  # 5,000 elements are past the sparse limit: dense
    redis_client.delete("s")
    redis_client.pfadd("s", *range(50))
    assert redis_client.get("s")[4] == 1  # a small one is sparse


@settings(max_examples=25)
@given(st.lists(elements, min_size=1, max_size=30))
def test_generated_elements_equal_redis(backend, redis_client, items):
    assert sketch_of(items).to_bytes() == redis_dense(redis_client, "g", items)
