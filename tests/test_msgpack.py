"""igcore.msgpack as a drop-in for msgpack-python: the API, each option, and the bytes, on every backend.

msgpack-python (its C extension) is the oracle: where a test compares with it, igcore must give the same
bytes, the same objects and the same exceptions.
"""

from __future__ import annotations

import datetime
import io
import math
from collections import OrderedDict

import msgpack as oracle
import pytest

import igcore
from igcore import msgpack

HOT_PATH = "msgpack"
UTC = datetime.timezone.utc


def to_oracle(obj):
    """`obj` with igcore's ExtType and Timestamp replaced by msgpack-python's (for its packer)."""
    if isinstance(obj, msgpack.ExtType):
        return oracle.ExtType(obj.code, obj.data)
    if isinstance(obj, msgpack.Timestamp):
        return oracle.Timestamp(obj.seconds, obj.nanoseconds)
    if isinstance(obj, dict):
        return {to_oracle(k): to_oracle(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_oracle(v) for v in obj)
    return obj


def from_oracle(obj):
    """msgpack-python's result with its ExtType and Timestamp replaced by igcore's."""
    if isinstance(obj, (msgpack.ExtType, msgpack.Timestamp)):
        return obj
    if isinstance(obj, oracle.ExtType):
        return msgpack.ExtType(obj.code, obj.data)
    if isinstance(obj, oracle.Timestamp):
        return msgpack.Timestamp(obj.seconds, obj.nanoseconds)
    if isinstance(obj, dict):
        return {from_oracle(k): from_oracle(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_oracle(v) for v in obj)
    return obj


# -- the API -------------------------------------------------------------------------------------------------


def test_the_public_names_are_msgpack_pythons():
    expected = {
        "packb", "unpackb", "pack", "unpack", "dumps", "loads", "dump", "load", "Packer", "Unpacker",
        "ExtType", "Timestamp", "UnpackException", "BufferFull", "OutOfData", "FormatError", "StackError",
        "ExtraData", "UnpackValueError", "PackException", "PackValueError", "PackOverflowError", "version",
    }  # fmt: skip
    assert expected <= set(dir(msgpack))
    assert set(msgpack.__all__) == expected
    assert msgpack.version == oracle.version


def test_the_exception_hierarchy_is_msgpack_pythons():
    for name in ("BufferFull", "OutOfData", "FormatError", "StackError", "ExtraData"):
        ours, theirs = getattr(msgpack, name), getattr(oracle, name)
        assert [c.__name__ for c in ours.__mro__] == [c.__name__ for c in theirs.__mro__], name
    assert issubclass(msgpack.FormatError, ValueError) and issubclass(msgpack.StackError, ValueError)
    assert msgpack.UnpackValueError is ValueError and msgpack.PackOverflowError is OverflowError
    error = msgpack.ExtraData([1], b"\x02")
    assert (error.unpacked, error.extra, str(error)) == ([1], b"\x02", "unpack(b) received extra data.")


def test_the_module_exports_the_same_classes_as_its_submodules():
    from igcore.msgpack import exceptions, ext

    assert msgpack.ExtType is ext.ExtType and msgpack.Timestamp is ext.Timestamp
    assert msgpack.FormatError is exceptions.FormatError


def test_aliases():
    assert msgpack.dumps is msgpack.packb and msgpack.loads is msgpack.unpackb
    assert msgpack.dump is msgpack.pack and msgpack.load is msgpack.unpack


def test_pack_and_unpack_use_streams(backend):
    stream = io.BytesIO()
    msgpack.pack({"a": [1, 2]}, stream)
    msgpack.pack(3, stream, use_single_float=True)
    assert stream.getvalue() == b"\x81\xa1a\x92\x01\x02\x03"
    assert msgpack.unpack(io.BytesIO(b"\x93\x01\x02\xc0")) == [1, 2, None]
    with pytest.raises(msgpack.ExtraData):
        msgpack.unpack(io.BytesIO(b"\x01\x02"))


def test_keyword_arguments_are_msgpack_pythons():
    with pytest.raises(TypeError):
        msgpack.packb(1, use_list=True)  # an unpacking option
    with pytest.raises(TypeError):
        msgpack.unpackb(b"\x01", use_bin_type=True)
    with pytest.raises(TypeError):
        msgpack.unpackb(b"\x01", max_buffer_size=10)  # only the Unpacker takes it
    with pytest.raises(TypeError):
        msgpack.Packer(True)  # keyword-only, as in msgpack-python


# -- packing: the bytes --------------------------------------------------------------------------------------

SAMPLES = [
    None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63),
    0.0, -0.0, 1.5, -2.25, 1e300, float("inf"), float("-inf"), float("nan"),
    "", "a", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "x" * 65535, "x" * 65536, "café ☕ 🌅", "\u0000",
    b"", b"\x00", b"y" * 255, b"y" * 256, b"y" * 65536, bytearray(b"ab"),
    [], [1, [2, [3]]], list(range(15)), list(range(16)), list(range(65536)), (1, 2),
    {}, {"a": 1}, {str(i): i for i in range(16)}, {i: i for i in range(65536)}, {b"k": None, 1: [], 2.5: {}},
]  # fmt: skip


@pytest.mark.parametrize("use_bin_type", [True, False])
@pytest.mark.parametrize("use_single_float", [False, True])
def test_packs_the_bytes_msgpack_python_packs(backend, use_bin_type, use_single_float):
    options = {"use_bin_type": use_bin_type, "use_single_float": use_single_float}
    for value in SAMPLES:
        ours = outcome_of(msgpack.packb, value, **options)
        assert ours == outcome_of(oracle.packb, value, **options), repr(value)[:60]


def test_ext_types_and_timestamps_pack_as_msgpack_python_packs_them(backend):
    values = [msgpack.ExtType(n % 128, b"z" * n) for n in (0, 1, 2, 3, 4, 8, 16, 17, 255, 256, 65536)]
    values += [
        msgpack.Timestamp(s, ns)
        for s, ns in [(0, 0), (2**32 - 1, 0), (2**32, 0), (1, 1), (2**34 - 1, 999_999_999), (2**34, 0)]
    ]
    values += [msgpack.Timestamp(-1, 5), msgpack.Timestamp(-(2**63), 0), msgpack.Timestamp(2**63 - 1, 1)]
    for value in values:
        assert msgpack.packb(value) == oracle.packb(to_oracle(value)), value
        assert msgpack.unpackb(msgpack.packb(value)) == value


def test_dict_order_and_subclasses_follow_iteration_order(backend):
    ordered = OrderedDict([("a", 1), ("b", 2)])
    ordered.move_to_end("a")
    assert msgpack.packb(ordered) == oracle.packb(ordered) == b"\x82\xa1b\x02\xa1a\x01"

    class Pairs(dict):
        def items(self):
            return [("x", 1), ("y", 2)]

    assert msgpack.packb(Pairs(a=1, b=2)) == oracle.packb(Pairs(a=1, b=2)) == b"\x82\xa1x\x01\xa1y\x02"

    class Lying(dict):
        def items(self):
            return [("x", 1)]

    # msgpack-python writes a map header of 2 and one pair (bytes no decoder can read): refuse instead.
    with pytest.raises(RuntimeError, match="changed size"):
        msgpack.packb(Lying(a=1, b=2))


def test_subclasses_pack_as_their_base_unless_strict_types(backend):
    class Int(int):
        pass

    class Text(str):
        pass

    class Items(list):
        pass

    for value in (Int(5), Text("t"), Items([1]), (1, 2), OrderedDict(a=1), msgpack.ExtType(1, b"x")):
        assert msgpack.packb(value) == oracle.packb(to_oracle(value))
    for value in (Int(5), Text("t"), Items([1]), (1, 2), OrderedDict(a=1)):
        with pytest.raises(TypeError, match="can not serialize"):
            msgpack.packb(value, strict_types=True)
        assert msgpack.packb(value, strict_types=True, default=repr) == oracle.packb(
            value, strict_types=True, default=repr
        )
    assert msgpack.packb(True, strict_types=True) == b"\xc3"


def test_default_converts_unknown_types_once(backend):
    calls = []

    def default(obj):
        calls.append(obj)
        if isinstance(obj, set):
            return sorted(obj)
        return str(obj)

    packed = msgpack.packb({"s": {3, 1}, "big": 2**70, "c": 1j}, default=default)
    assert packed == oracle.packb({"s": {3, 1}, "big": 2**70, "c": 1j}, default=default)
    assert len(calls) == 6  # each value once per packer
    with pytest.raises(TypeError, match="can not serialize 'object' object"):
        msgpack.packb(1, default=lambda o: o) and msgpack.packb(object(), default=lambda o: object())
    with pytest.raises(OverflowError, match="Integer value out of range"):
        msgpack.packb(2**64, default=lambda o: o)


def test_ints_outside_64_bits_overflow(backend):
    for value in (2**64, -(2**63) - 1, 10**30):
        with pytest.raises(OverflowError, match="^Integer value out of range$"):
            msgpack.packb(value)


def test_unknown_types_raise_type_error_naming_them(backend):
    with pytest.raises(TypeError, match=r"^can not serialize 'set' object$"):
        msgpack.packb({1})
    with pytest.raises(TypeError, match=r"^can not serialize 'datetime.date' object$"):
        msgpack.packb(datetime.date(2020, 1, 1))


def test_use_single_float_refuses_floats_beyond_float32(backend):
    with pytest.raises(OverflowError, match="float too large to pack with f format"):
        msgpack.packb(1e300, use_single_float=True)
    assert msgpack.packb(3.4028234663852886e38, use_single_float=True) == b"\xca\x7f\x7f\xff\xff"


def test_unicode_errors_on_packing(backend):
    with pytest.raises(UnicodeEncodeError):
        msgpack.packb("\ud800")
    assert msgpack.packb("\ud800", unicode_errors="surrogatepass") == b"\xa3\xed\xa0\x80"
    assert msgpack.packb("a\ud800", unicode_errors="ignore") == b"\xa1a"


def test_memoryviews_pack_as_bin(backend):
    assert msgpack.packb(memoryview(b"abc")) == b"\xc4\x03abc"
    assert msgpack.packb(memoryview(b"abc"), use_bin_type=False) == b"\xa3abc"
    with pytest.raises(BufferError):
        msgpack.packb(memoryview(b"abcd")[::2])


def test_datetime_option(backend):
    moment = datetime.datetime(2024, 2, 29, 12, 30, 5, 123456, tzinfo=UTC)
    packed = msgpack.packb(moment, datetime=True)
    assert packed == oracle.packb(moment, datetime=True)
    assert msgpack.unpackb(packed, timestamp=3) == moment
    before_epoch = datetime.datetime(1900, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    assert msgpack.packb(before_epoch, datetime=True) == oracle.packb(before_epoch, datetime=True)
    naive = datetime.datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="where tzinfo=None"):
        msgpack.packb(naive, datetime=True)
    with pytest.raises(TypeError, match="can not serialize 'datetime.datetime' object"):
        msgpack.packb(moment)
    assert msgpack.packb(naive, datetime=True, default=str) == oracle.packb(naive, datetime=True, default=str)


def test_nesting_limit_when_packing(backend):
    deepest = []
    for _ in range(1024):
        deepest = [deepest]
    assert msgpack.packb(deepest) == oracle.packb(deepest)
    with pytest.raises(ValueError, match="recursion limit exceeded"):
        msgpack.packb([deepest])
    cycle = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="recursion limit exceeded"):
        msgpack.packb(cycle)


# -- the Packer ----------------------------------------------------------------------------------------------


def test_packer_autoreset_false_accumulates(backend):
    packer = msgpack.Packer(autoreset=False)
    assert packer.pack(1) is None
    packer.pack("a")
    packer.pack_array_header(2)
    packer.pack_map_header(1)
    packer.pack_map_pairs([("k", 1), ("k", 2)])
    packer.pack_ext_type(5, b"xy")
    expected = b"\x01\xa1a\x92\x81\x82\xa1k\x01\xa1k\x02\xd5\x05xy"
    assert packer.bytes() == expected and bytes(packer.getbuffer()) == expected
    packer.reset()
    assert packer.bytes() == b""


def test_packer_methods_return_bytes_with_autoreset(backend):
    packer = msgpack.Packer()
    theirs = oracle.Packer()
    for method, args in [
        ("pack", ([1, "b"],)),
        ("pack_array_header", (70000,)),
        ("pack_map_header", (15,)),
        ("pack_map_pairs", ([(1, 2), ("a", None)],)),
        ("pack_ext_type", (127, b"z" * 300)),
        ("pack_ext_type", (-1, b"\x00" * 4)),
    ]:
        assert getattr(packer, method)(*args) == getattr(theirs, method)(*args), method
    assert packer.bytes() == b""


def test_packer_header_sizes_are_checked(backend):
    packer = msgpack.Packer(autoreset=False)
    packer.pack("kept")
    for method in ("pack_array_header", "pack_map_header"):
        with pytest.raises(ValueError, match="size must be non-negative"):
            getattr(packer, method)(-1)
        with pytest.raises(ValueError, match="too large"):
            getattr(packer, method)(2**32)
    assert packer.bytes() == b"\xa4kept"
    with pytest.raises(OverflowError):
        packer.pack_ext_type(128, b"")
    with pytest.raises(TypeError):
        packer.pack_ext_type("1", b"")


def test_packer_empties_its_buffer_after_an_error(backend):
    packer = msgpack.Packer(autoreset=False)
    packer.pack(1)
    with pytest.raises(TypeError):
        packer.pack([2, object()])
    assert packer.bytes() == b""
    packer.pack(3)
    assert packer.bytes() == b"\x03"


def test_packer_checks_default_is_callable():
    with pytest.raises(TypeError, match="default must be a callable"):
        msgpack.Packer(default=1)


def test_packer_keeps_the_backend_it_was_made_with(backend):
    packer = msgpack.Packer()
    other = "python" if backend != "python" else igcore.backends()[0]
    with igcore.use_backend(other):
        assert packer.pack([1]) == b"\x91\x01"
        assert type(packer._packer).__module__.startswith("igcore._reference") == (backend == "python")


# -- unpacking -----------------------------------------------------------------------------------------------


def test_unpacks_what_msgpack_python_unpacks(backend):
    for value in SAMPLES:
        packed = oracle.packb(value)
        for options in ({}, {"use_list": False}, {"raw": True}, {"strict_map_key": False}):
            ours = outcome_of(msgpack.unpackb, packed, **options)
            theirs = outcome_of(oracle.unpackb, packed, **options)
            assert comparable(ours) == comparable(theirs), (repr(value)[:60], options)


def outcome_of(call, *args, **kwargs):
    try:
        return ("ok", from_oracle(call(*args, **kwargs)))
    except Exception as exc:  # noqa: BLE001 - compared by type name and message
        return ("raised", type(exc).__name__, str(exc))


def comparable(result):
    """NaN-proof, type-exact form of a result: floats by their bits, containers by their type."""
    if result[0] != "ok":
        return result
    return ("ok", shape(result[1]))


def shape(obj):
    if isinstance(obj, float):
        return ("float", obj.hex() if not math.isnan(obj) else "nan")
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [shape(v) for v in obj])
    if isinstance(obj, dict):
        return ("dict", [(shape(k), shape(v)) for k, v in obj.items()])
    return (type(obj).__name__, obj)


def test_raw_and_use_list(backend):
    packed = msgpack.packb({"k": ["v", b"b"]})
    assert msgpack.unpackb(packed) == {"k": ["v", b"b"]}
    assert msgpack.unpackb(packed, raw=True) == {b"k": [b"v", b"b"]}
    assert msgpack.unpackb(packed, use_list=False) == {"k": ("v", b"b")}


def test_strict_map_key(backend):
    packed = msgpack.packb({1: "a", None: "b"})
    with pytest.raises(ValueError, match="^int is not allowed for map key when strict_map_key=True$"):
        msgpack.unpackb(packed)
    assert msgpack.unpackb(packed, strict_map_key=False) == {1: "a", None: "b"}
    assert msgpack.unpackb(b"\x81\xc4\x01k\x01") == {b"k": 1}  # bytes keys are allowed


def test_unhashable_keys_raise_type_error(backend):
    for packed in (b"\x81\x91\x01\x02", b"\x81\x80\x02"):
        with pytest.raises(TypeError, match="unhashable type"):
            msgpack.unpackb(packed, strict_map_key=False)
    assert msgpack.unpackb(b"\x81\x91\x01\x02", strict_map_key=False, use_list=False) == {(1,): 2}


def test_duplicate_keys_keep_the_last_value(backend):
    assert msgpack.unpackb(b"\x82\xa1a\x01\xa1a\x02") == {"a": 2}


def test_hooks(backend):
    packed = msgpack.packb({"a": [1, {"b": 2}], "c": []})
    seen = []

    def object_hook(obj):
        seen.append(dict(obj))
        return ("obj", sorted(obj))

    assert msgpack.unpackb(packed, object_hook=object_hook) == ("obj", ["a", "c"])
    assert seen == [{"b": 2}, {"a": [1, ("obj", ["b"])], "c": []}]
    assert msgpack.unpackb(packed, object_pairs_hook=list) == [("a", [1, [("b", 2)]]), ("c", [])]
    assert msgpack.unpackb(packed, list_hook=len) == {"a": 2, "c": 0}
    assert msgpack.unpackb(packed, list_hook=type, use_list=False) == {"a": tuple, "c": tuple}
    for kwargs in ({"object_hook": dict}, {"object_pairs_hook": list}, {"list_hook": tuple}):
        assert outcome_of(msgpack.unpackb, packed, **kwargs) == outcome_of(oracle.unpackb, packed, **kwargs)


def test_a_hook_that_raises_passes_its_exception_through(backend):
    def hook(obj):
        raise KeyError("from the hook")

    with pytest.raises(KeyError, match="from the hook"):
        msgpack.unpackb(b"\x81\xa1a\x01", object_hook=hook)
    with pytest.raises(KeyError):
        msgpack.unpackb(b"\x91\x01", list_hook=hook)


def test_hook_arguments_are_checked():
    with pytest.raises(TypeError, match="mutually exclusive"):
        msgpack.unpackb(b"\x80", object_hook=dict, object_pairs_hook=list)
    for name in ("object_hook", "object_pairs_hook", "list_hook", "ext_hook"):
        with pytest.raises(TypeError, match=f"{name} must be a callable"):
            msgpack.unpackb(b"\x80", **{name: 1})
    with pytest.raises(ValueError, match="timestamp must be 0..3"):
        msgpack.unpackb(b"\x80", timestamp=4)


def test_ext_hook_and_ext_types(backend):
    packed = msgpack.packb([msgpack.ExtType(5, b"ab"), msgpack.ExtType(0, b"")])
    assert msgpack.unpackb(packed) == [msgpack.ExtType(5, b"ab"), msgpack.ExtType(0, b"")]
    assert msgpack.unpackb(packed, ext_hook=lambda code, data: (code, data)) == [(5, b"ab"), (0, b"")]
    negative = b"\xd4\xfb\x01"  # ext type -5: msgpack-python's ExtType refuses it
    with pytest.raises(ValueError, match="code must be 0~127"):
        msgpack.unpackb(negative)
    assert msgpack.unpackb(negative, ext_hook=lambda c, d: c) == -5


@pytest.mark.parametrize("timestamp", [0, 1, 2, 3])
def test_timestamp_option_matches_msgpack_python(backend, timestamp):
    for seconds, nanoseconds in [(0, 0), (1, 500), (2**32, 0), (2**34, 1), (-1, 999_999_999), (-86401, 5)]:
        packed = oracle.packb(oracle.Timestamp(seconds, nanoseconds))
        ours = outcome_of(msgpack.unpackb, packed, timestamp=timestamp)
        assert comparable(ours) == comparable(outcome_of(oracle.unpackb, packed, timestamp=timestamp))


def test_bad_timestamps(backend):
    with pytest.raises(ValueError, match=r"invalid timestamp data \(length 2\)"):
        msgpack.unpackb(b"\xd5\xff\x00\x01")
    with pytest.raises(ValueError, match="nanoseconds must be a non-negative integer not greater than"):
        msgpack.unpackb(b"\xd7\xff" + ((10**9) << 34).to_bytes(8, "big"))
    far = b"\xc7\x0c\xff" + b"\x00" * 4 + (2**62).to_bytes(8, "big")
    with pytest.raises(OverflowError):
        msgpack.unpackb(far, timestamp=3)
    assert msgpack.unpackb(far, timestamp=2) == 2**62 * 10**9


def test_unicode_errors_on_unpacking(backend):
    with pytest.raises(UnicodeDecodeError):
        msgpack.unpackb(b"\xa2a\xff")
    assert msgpack.unpackb(b"\xa2a\xff", unicode_errors="replace") == "a\ufffd"
    assert msgpack.unpackb(b"\xa3\xed\xa0\x80", unicode_errors="surrogatepass") == "\ud800"
    assert msgpack.unpackb(b"\xa2a\xff", raw=True) == b"a\xff"
    with pytest.raises(UnicodeDecodeError):  # a cached key never hides an error
        msgpack.unpackb(b"\x81\xa2a\xff\x01")


def test_strings_of_every_width_come_back_equal_and_hash_equal(backend):
    texts = ["ascii", "é", "café", "ÿ", "Ā", "привет", "東京", "\uffff", "🌅", "a🌅é", "x" * 100 + "é"]
    for text in texts:
        decoded = msgpack.unpackb(msgpack.packb(text))
        assert decoded == text and hash(decoded) == hash(text) and len(decoded) == len(text)
        assert msgpack.unpackb(msgpack.packb({text: 1})) == {text: 1}


def test_unpacks_from_any_bytes_like_object(backend):
    packed = msgpack.packb([1, "a"])
    for source in (packed, bytearray(packed), memoryview(packed), memoryview(b"\x00" + packed)[1:]):
        assert msgpack.unpackb(source) == [1, "a"]
    assert msgpack.unpackb(memoryview(b"\x01x")[::2]) == 1  # not contiguous: copied
    with pytest.raises(TypeError, match="a bytes-like object is required"):
        msgpack.unpackb("text")
    import array

    with pytest.raises(BufferError, match="cannot unpack from multi-byte object"):
        msgpack.unpackb(array.array("i", [1]))


def test_extra_data(backend):
    with pytest.raises(msgpack.ExtraData) as raised:
        msgpack.unpackb(b"\x01\x02\x03")
    assert raised.value.unpacked == 1 and raised.value.extra == b"\x02\x03"


# -- the Unpacker --------------------------------------------------------------------------------------------


def test_unpacker_streams_fed_pieces(backend):
    stream = b"".join(msgpack.packb(v) for v in [1, "two", [3, {"four": 4}], b"5"])
    unpacker = msgpack.Unpacker()
    received = []
    for start in range(0, len(stream), 3):
        unpacker.feed(stream[start : start + 3])
        received.extend(unpacker)
    assert received == [1, "two", [3, {"four": 4}], b"5"]
    assert unpacker.tell() == len(stream)
    with pytest.raises(msgpack.OutOfData):
        unpacker.unpack()


def test_unpacker_waits_for_the_rest_of_an_object(backend):
    unpacker = msgpack.Unpacker()
    unpacker.feed(b"\x93\x01")
    with pytest.raises(msgpack.OutOfData):
        unpacker.unpack()
    assert list(unpacker) == []
    assert unpacker.tell() == 0  # nothing consumed until the object is whole
    unpacker.feed(b"\x02\x03\xa1")
    assert unpacker.unpack() == [1, 2, 3]
    assert unpacker.tell() == 4


def test_unpacker_reads_a_file(backend):
    stream = io.BytesIO(b"".join(msgpack.packb([i, "x" * i]) for i in range(50)))
    unpacker = msgpack.Unpacker(stream, read_size=7)
    assert list(unpacker) == [[i, "x" * i] for i in range(50)]
    assert unpacker.tell() == len(stream.getvalue())
    with pytest.raises(AssertionError):
        unpacker.feed(b"\x01")


def test_unpacker_skip_headers_and_read_bytes(backend):
    unpacker = msgpack.Unpacker()
    unpacker.feed(b"\x92\x01\x02\xa3abc\x83\xc4\x01z\x7f\x01")
    assert unpacker.read_array_header() == 2
    assert unpacker.unpack() == 1
    assert unpacker.skip() is None
    assert unpacker.tell() == 3
    with pytest.raises(ValueError, match="Unexpected type header on stream"):
        unpacker.read_map_header()
    assert unpacker.read_bytes(2) == b"\xa3a"
    assert unpacker.read_bytes(2) == b"bc"
    assert unpacker.read_map_header() == 3
    assert unpacker.unpack() == b"z"
    assert unpacker.read_bytes(10) == b"\x7f\x01"
    assert unpacker.tell() == 13


def test_unpacker_read_bytes_from_a_file(backend):
    unpacker = msgpack.Unpacker(io.BytesIO(b"\x01\x02\x03\x04\x05"), read_size=1)
    assert unpacker.unpack() == 1
    assert unpacker.read_bytes(3) == b"\x02\x03\x04"
    assert unpacker.tell() == 4
    assert unpacker.unpack() == 5


def test_unpacker_matches_msgpack_python_on_its_options(backend):
    packed = msgpack.packb([{"a": (1, 2)}, b"x", msgpack.Timestamp(3, 4)])
    for options in ({}, {"use_list": False}, {"raw": True}, {"timestamp": 1}, {"object_pairs_hook": list}):
        ours = msgpack.Unpacker(**options)
        theirs = oracle.Unpacker(**options)
        ours.feed(packed)
        theirs.feed(packed)
        assert comparable(("ok", ours.unpack())) == comparable(("ok", from_oracle(theirs.unpack())))


def test_unpacker_buffer_limit(backend):
    unpacker = msgpack.Unpacker(max_buffer_size=4)
    with pytest.raises(msgpack.BufferFull):
        unpacker.feed(b"12345")
    unpacker.feed(b"\x01\x02\x03")
    assert unpacker.unpack() == 1
    unpacker.feed(b"\x04\x05")  # two consumed bytes make room
    assert list(unpacker) == [2, 3, 4, 5]
    with pytest.raises(ValueError, match="read_size should be less or equal to max_buffer_size"):
        msgpack.Unpacker(read_size=10, max_buffer_size=5)


def test_unpacker_limits_default_to_the_buffer_size(backend):
    unpacker = msgpack.Unpacker(max_buffer_size=10)
    unpacker.feed(b"\xdd\x00\x00\x00\x0b")
    with pytest.raises(ValueError, match=r"^11 exceeds max_array_len\(10\)$"):
        unpacker.unpack()
    unpacker = msgpack.Unpacker(max_buffer_size=10)
    unpacker.feed(b"\x86")
    with pytest.raises(ValueError, match=r"^6 exceeds max_map_len\(5\)$"):
        unpacker.unpack()
    unpacker = msgpack.Unpacker(max_str_len=2)
    unpacker.feed(b"\xa3abc")
    with pytest.raises(ValueError, match=r"^3 exceeds max_str_len\(2\)$"):
        unpacker.unpack()
    unpacker.skip()  # skipping checks no limits


def test_unpacker_errors_repeat_at_the_same_object(backend):
    unpacker = msgpack.Unpacker()
    unpacker.feed(b"\x01\x92\x02\xc1")
    assert unpacker.unpack() == 1
    for _ in range(2):
        with pytest.raises(msgpack.FormatError):
            unpacker.unpack()
        assert unpacker.tell() == 1


def test_unpacker_file_read_must_be_callable():
    class NoRead:
        read = 5

    with pytest.raises(TypeError, match="`file_like.read` must be a callable"):
        msgpack.Unpacker(NoRead())


# -- the classes ---------------------------------------------------------------------------------------------


def test_ext_type_checks_its_fields():
    assert msgpack.ExtType(1, b"x") == (1, b"x")
    with pytest.raises(TypeError):
        msgpack.ExtType("1", b"x")
    with pytest.raises(TypeError):
        msgpack.ExtType(1, "x")
    with pytest.raises(ValueError):
        msgpack.ExtType(128, b"x")


def test_timestamp_conversions_match_msgpack_python():
    for seconds, nanoseconds in [(0, 0), (1, 999_999_999), (-1, 1), (2**40, 5)]:
        ours, theirs = msgpack.Timestamp(seconds, nanoseconds), oracle.Timestamp(seconds, nanoseconds)
        assert ours.to_bytes() == theirs.to_bytes()
        assert msgpack.Timestamp.from_bytes(theirs.to_bytes()) == ours
        assert (ours.to_unix(), ours.to_unix_nano()) == (theirs.to_unix(), theirs.to_unix_nano())
        assert repr(ours) == repr(theirs) and hash(ours) == hash(theirs)
        if abs(seconds) < 2**35:
            assert ours.to_datetime() == theirs.to_datetime()
    assert msgpack.Timestamp.from_unix(1.5) == msgpack.Timestamp(1, 500_000_000)
    assert msgpack.Timestamp.from_unix_nano(-1) == msgpack.Timestamp(-1, 999_999_999)
    moment = datetime.datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert msgpack.Timestamp.from_datetime(moment).to_datetime() == moment
    assert msgpack.Timestamp(1, 2) != (1, 2) and msgpack.Timestamp(1, 2) != msgpack.Timestamp(1, 3)
    with pytest.raises(ValueError):
        msgpack.Timestamp(0, 10**9)
    with pytest.raises(TypeError):
        msgpack.Timestamp(1.5)


def test_options_that_change_between_calls_are_each_honoured(backend):
    # The public layer and the backends remember the options of recent calls: changing them must count.
    packed = msgpack.packb([1, {"a": b"x"}, "s" * 40])
    for _ in range(3):
        assert msgpack.unpackb(packed, use_list=False) == (1, {"a": b"x"}, "s" * 40)
        assert msgpack.unpackb(packed) == [1, {"a": b"x"}, "s" * 40]
        assert msgpack.unpackb(packed, list_hook=tuple) == (1, {"a": b"x"}, "s" * 40)
        assert msgpack.unpackb(packed, list_hook=len) == 3
        with pytest.raises(TypeError):
            msgpack.unpackb(packed, timestamp=1.0)  # after timestamp=1 was seen, a float still raises
        assert msgpack.unpackb(packed, timestamp=1) == [1, {"a": b"x"}, "s" * 40]
        with pytest.raises(ValueError, match="exceeds max_str_len"):
            msgpack.unpackb(packed, max_str_len=39)
        assert msgpack.unpackb(packed[:3] + packed[-41:][:0] + packed[3:]) == [1, {"a": b"x"}, "s" * 40]
        assert msgpack.packb(1.5, use_single_float=True) == b"\xca\x3f\xc0\x00\x00"
        assert msgpack.packb(1.5) == b"\xcb\x3f\xf8" + b"\x00" * 6
        assert msgpack.packb("s" * 40, use_bin_type=False)[:1] == b"\xda"
        assert msgpack.packb("s" * 40)[:1] == b"\xd9"
