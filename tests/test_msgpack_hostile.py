"""Hostile input: every case raises the right msgpack exception quickly, never crashes, hangs or
allocates what a header claims. Also the regression corpus of inputs kept by fuzzing
(``tests/data/msgpack-fuzz/``), run on every backend."""

from __future__ import annotations

import threading
import time
import tracemalloc
from pathlib import Path

import msgpack as oracle
import pytest

from igcore import msgpack

from .conftest import reference
from .test_msgpack_properties import outcome, shape

HOT_PATH = "msgpack"
CORPUS = Path(__file__).parent / "data" / "msgpack-fuzz"
GIB4 = b"\xff\xff\xff\xff"

LYING_HEADERS = {
    "str32": b"\xdb" + GIB4 + b"abc",
    "bin32": b"\xc6" + GIB4 + b"abc",
    "ext32": b"\xc9" + GIB4 + b"\x01abc",
    "ext32 (one short of 4 GiB)": b"\xc9\xff\xff\xff\xfe\x01abc",
    "array32": b"\xdd" + GIB4 + b"\x01\x02",
    "map32": b"\xdf" + GIB4 + b"\xa1a\x01",
    "nested array32": b"\x91\x91\xdd" + GIB4,
    "array16 of map32": b"\xdc\x00\x02\xdf" + GIB4,
}


def peak_allocation(call) -> int:
    """The peak of Python-tracked memory (PyMem and objects) while `call` runs."""
    tracemalloc.start()
    try:
        call()
    except Exception:  # noqa: BLE001, S110 - only the memory is measured here
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("name", list(LYING_HEADERS))
def test_a_header_claiming_4_gib_raises_without_allocating_it(backend, name):
    data = LYING_HEADERS[name]
    started = time.perf_counter()
    ours = outcome(msgpack.unpackb, data)
    assert ours[0] == "raised" and ours[1] == "ValueError", ours
    assert ours == reference(outcome, msgpack.unpackb, data)[1]
    assert outcome(oracle.unpackb, data)[1] == "ValueError"
    # Even with limits far above the input, only what the input can hold is ever allocated.
    generous = {f"max_{kind}_len": 2**40 for kind in ("str", "bin", "array", "map", "ext")}
    assert outcome(msgpack.unpackb, data, **generous)[1] == "ValueError"
    assert peak_allocation(lambda: msgpack.unpackb(data, **generous)) < 1 << 20
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("name", list(LYING_HEADERS))
def test_a_stream_with_a_lying_header_waits_then_fills_up(backend, name):
    unpacker = msgpack.Unpacker(max_buffer_size=1 << 16, strict_map_key=False)
    unpacker.feed(LYING_HEADERS[name])
    try:
        unpacker.unpack()
    except msgpack.OutOfData:
        pass  # waits for the claimed bytes ...
    except ValueError as error:
        assert "exceeds max_" in str(error)  # ... or refuses the header outright
        return
    with pytest.raises(msgpack.BufferFull):
        for _ in range(100):  # ... and the buffer limit stops it
            unpacker.feed(b"\x00" * 4096)
            list(unpacker)
    assert peak_allocation(lambda: list(unpacker)) < 1 << 20


@pytest.mark.parametrize(
    ("opener", "name"),
    [(b"\x91", "arrays"), (b"\x81\xa1k", "maps"), (b"\xdc\x00\x01", "array16s"), (b"\x81\x90", "keys")],
)
def test_ten_thousand_levels_of_nesting_raise_stack_error(backend, opener, name):
    data = opener * 10_000 + b"\xc0"
    with pytest.raises(msgpack.StackError):
        msgpack.unpackb(data, strict_map_key=False)
    unpacker = msgpack.Unpacker(strict_map_key=False)
    unpacker.feed(data)
    with pytest.raises(msgpack.StackError):
        unpacker.unpack()
    with pytest.raises(msgpack.StackError):
        unpacker.skip()
    with pytest.raises(oracle.StackError):
        oracle.unpackb(data, strict_map_key=False)


def test_nesting_up_to_1024_levels_is_fine(backend):
    deepest = b"\x91" * 1024 + b"\xc0"
    value = msgpack.unpackb(deepest)
    for _ in range(1024):
        value = value[0]
    assert value is None
    with pytest.raises(msgpack.StackError):
        msgpack.unpackb(b"\x91" + deepest)
    with pytest.raises(msgpack.StackError):
        msgpack.unpackb(b"\x91" * 1024 + b"\x90")  # an empty container counts too


def test_packing_ten_thousand_levels_raises_value_error(backend):
    deep = None
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ValueError, match="recursion limit exceeded"):
        msgpack.packb(deep)
    deep = {}
    for _ in range(10_000):
        deep = {"k": deep}
    with pytest.raises(ValueError, match="recursion limit exceeded"):
        msgpack.packb(deep)


def test_every_truncation_of_a_valid_message_is_incomplete_input(backend):
    packed = msgpack.packb(
        {"id": 2**63, "caption": "café 🌅", "media": [{"w": 1080, "r": 1.5}], "b": b"\x00" * 300},
        datetime=True,
    )
    for end in range(len(packed)):
        # Incomplete input, or, for the first few bytes, a map longer than their length allows.
        with pytest.raises(ValueError, match="^(Unpack failed: incomplete input|4 exceeds max_map_len.*)$"):
            msgpack.unpackb(packed[:end])
        assert outcome(msgpack.unpackb, packed[:end]) == outcome(oracle.unpackb, packed[:end])
        unpacker = msgpack.Unpacker()
        unpacker.feed(packed[:end])
        with pytest.raises(msgpack.OutOfData):
            unpacker.unpack()


@pytest.mark.parametrize(
    "data",
    [
        b"\xa2\xc3\x28",
        b"\xa1\xff",
        b"\xa3\xed\xa0\x80",
        b"\xa2\xc0\x80",
        b"\xa4\xf4\x90\x80\x80",
        b"\xd9\x01\xe2",
    ],
)
def test_invalid_utf8_raises_unicode_decode_error(backend, data):
    with pytest.raises(UnicodeDecodeError):
        msgpack.unpackb(data)
    with pytest.raises(UnicodeDecodeError):
        msgpack.unpackb(b"\x81" + data + b"\x01")  # as a map key
    assert outcome(msgpack.unpackb, data, unicode_errors="replace") == outcome(
        oracle.unpackb, data, unicode_errors="replace"
    )


def test_the_reserved_byte_is_a_format_error(backend):
    for data in (b"\xc1", b"\x92\x01\xc1", b"\x81\xc1\x01", b"\x81\xa1a\xc1"):
        with pytest.raises(msgpack.FormatError):
            msgpack.unpackb(data)
        assert isinstance(msgpack.FormatError(), ValueError)


def test_huge_ints_overflow_on_packing_and_64_bit_ones_round_trip(backend):
    for value in (2**64, -(2**63) - 1, 2**1000):
        with pytest.raises(OverflowError):
            msgpack.packb(value)
    for value in (2**64 - 1, -(2**63)):
        assert msgpack.unpackb(msgpack.packb(value)) == value


def test_unhashable_and_disallowed_keys(backend):
    with pytest.raises(ValueError, match="is not allowed for map key"):
        msgpack.unpackb(b"\x81\x91\x01\x02")
    with pytest.raises(TypeError, match="unhashable"):
        msgpack.unpackb(b"\x81\x91\x01\x02", strict_map_key=False)
    with pytest.raises(TypeError, match="unhashable"):
        msgpack.unpackb(b"\x81\x81\x01\x02\x03", strict_map_key=False)


def test_many_threads_and_reentrant_hooks_get_the_right_objects(backend):
    # Unpacking from several threads at once, and from inside a hook, shares the key cache safely.
    inner = msgpack.packb({"inner": [1, 2]})
    page = msgpack.packb([{"key": i, "other": str(i), "more": {"k" * 20: i}} for i in range(200)])
    expected = msgpack.unpackb(page)

    def hook(obj):
        assert msgpack.unpackb(inner) == {"inner": [1, 2]}
        return obj

    errors = []

    def work():
        try:
            for _ in range(20):
                assert msgpack.unpackb(page) == expected
                assert msgpack.unpackb(page, object_hook=hook) == expected
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_a_hook_cannot_reenter_its_own_unpacker(backend):
    unpacker = msgpack.Unpacker()

    def hook(obj):
        unpacker.feed(b"\x01")
        return obj

    unpacker = msgpack.Unpacker(object_hook=hook)
    unpacker.feed(b"\x81\xa1a\x01")
    with pytest.raises(RuntimeError):
        unpacker.unpack()


# -- the regression corpus -----------------------------------------------------------------------------------


def corpus(name: str) -> list[bytes]:
    lines = (CORPUS / name).read_text().splitlines()
    return [bytes.fromhex(line) for line in lines if line.strip() and not line.startswith("#")]


def test_the_corpus_is_there():
    assert len(corpus("corpus.hex")) >= 100


def test_fuzzing_corpus_inputs_behave_as_the_reference(backend):
    for data in corpus("corpus.hex") + corpus("crashers.hex"):
        for options in ({}, {"strict_map_key": False, "raw": True}):
            ours = outcome(msgpack.unpackb, data, **options)
            assert ours == reference(outcome, msgpack.unpackb, data, **options)[1], data.hex()

        def stream(data=data):
            unpacker = msgpack.Unpacker(strict_map_key=False, max_buffer_size=1 << 16)
            events = []
            for start in range(0, len(data), 7):
                unpacker.feed(data[start : start + 7])
                try:
                    events.extend(shape(obj) for obj in unpacker)
                except Exception as exc:  # noqa: BLE001 - the exception is the event compared
                    events.append((type(exc).__name__, str(exc)))
                    break
            return events

        assert stream() == reference(stream)[1], data.hex()
