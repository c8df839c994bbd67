"""Generated objects, options and bytes: every backend does what the reference does, and what
msgpack-python (the oracle) does: the same bytes, the same objects, the same exceptions."""

from __future__ import annotations

import math

import msgpack as oracle
from hypothesis import given
from hypothesis import strategies as st

from igcore import msgpack

from .conftest import reference
from .test_msgpack import from_oracle, to_oracle

HOT_PATH = "msgpack"

# -- generated objects ---------------------------------------------------------------------------------------

ints = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 127, 128, 255, 256, -32, -33, -128, -129, 2**32, 2**63, -(2**63), 2**64 - 1]),
)
texts = st.one_of(st.text(max_size=40), st.sampled_from(["", "é", "🌅", "ÿĀ", "x" * 32, "東京" * 20]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.floats(allow_nan=True),
    texts,
    st.binary(max_size=40),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=20)),
    st.builds(msgpack.Timestamp, st.integers(-(2**63), 2**63 - 1), st.integers(0, 10**9 - 1)),
)
keys = st.one_of(texts, st.binary(max_size=8), st.integers(-5, 300), st.none())
objects = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=6),
    ),
    max_leaves=25,
)
# Also objects msgpack cannot hold, or only through `default`.
awkward = st.one_of(
    objects,
    st.lists(
        st.one_of(objects, st.integers(2**64, 2**70), st.integers(-(2**70), -(2**63) - 1), st.just({1, 2}))
    ),
)
pack_options = st.fixed_dictionaries(
    {},
    optional={
        "use_bin_type": st.booleans(),
        "use_single_float": st.booleans(),
        "strict_types": st.booleans(),
        "default": st.sampled_from([repr, str]),
    },
)
unpack_options = st.fixed_dictionaries(
    {},
    optional={
        "use_list": st.booleans(),
        "raw": st.booleans(),
        "strict_map_key": st.booleans(),
        "timestamp": st.integers(0, 3),
        "object_pairs_hook": st.just(list),
        "list_hook": st.just(tuple),
        "max_str_len": st.integers(0, 40),
        "max_bin_len": st.integers(0, 40),
        "max_array_len": st.integers(0, 6),
        "max_map_len": st.integers(0, 6),
        "max_ext_len": st.integers(0, 20),
        "unicode_errors": st.sampled_from(["strict", "replace", "surrogateescape"]),
    },
)


def outcome(call, *args, **kwargs):
    """A result made comparable across libraries (floats by bits, exceptions by name and message)."""
    try:
        return ("ok", shape(from_oracle(call(*args, **kwargs))))
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome being compared
        return ("raised", type(exc).__name__, str(exc))


def shape(obj):
    if isinstance(obj, float):
        return ("float", "nan" if math.isnan(obj) else obj.hex())
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [shape(v) for v in obj])
    if isinstance(obj, dict):
        return ("dict", [(shape(k), shape(v)) for k, v in obj.items()])
    return (type(obj).__name__, obj)


def in_reference(call, *args, **kwargs):
    found = reference(lambda: outcome(call, *args, **kwargs))
    assert found[0] == "ok"
    return found[1]


def kind(result):
    """The outcome with exception messages left out (where msgpack-python words them differently)."""
    return result[:2]


def as_oracle_says(result):
    """The outcome with the messages msgpack-python words differently on purpose made equal: its
    FormatError and StackError carry no message, and its max_ext_len message counts the type byte."""
    if result[0] == "raised" and (
        result[1] in ("FormatError", "StackError") or "exceeds max_ext_len" in result[2]
    ):
        return result[:2]
    return result


# -- packing -------------------------------------------------------------------------------------------------


@given(awkward, pack_options)
def test_packb_is_the_reference_and_msgpack_python(backend, obj, options):
    ours = outcome(msgpack.packb, obj, **options)
    assert ours == in_reference(msgpack.packb, obj, **options)
    assert ours == outcome(oracle.packb, to_oracle(obj), **options)


@given(st.lists(objects, max_size=5), st.booleans())
def test_a_packer_without_autoreset_packs_the_concatenation(backend, items, use_bin_type):
    packer = msgpack.Packer(autoreset=False, use_bin_type=use_bin_type)
    for item in items:
        packer.pack(item)
    assert packer.bytes() == b"".join(oracle.packb(to_oracle(i), use_bin_type=use_bin_type) for i in items)


# -- unpacking -----------------------------------------------------------------------------------------------


@given(objects, unpack_options)
def test_unpackb_of_valid_bytes_is_the_reference_and_msgpack_python(backend, obj, options):
    packed = oracle.packb(to_oracle(obj))
    ours = outcome(msgpack.unpackb, packed, **options)
    assert ours == in_reference(msgpack.unpackb, packed, **options)
    assert as_oracle_says(ours) == as_oracle_says(outcome(oracle.unpackb, packed, **options))


def mutate(packed: bytes, edits) -> bytes:
    data = bytearray(packed)
    for position, action, byte in edits:
        at = position % (len(data) + 1)
        if action == "set" and at < len(data):
            data[at] = byte
        elif action == "insert":
            data[at:at] = bytes([byte])
        elif action == "delete" and at < len(data):
            del data[at]
        elif action == "truncate":
            del data[at:]
        elif action == "lie":  # a length header that claims about 4 GiB
            data[at:at] = (
                bytes([byte | 0x03, 0xFF, 0xFF, 0xFF, 0xFF]) if byte & 1 else b"\xdb\xff\xff\xff\xff"
            )
    return bytes(data)


edits = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.sampled_from(["set", "insert", "delete", "truncate", "lie"]),
        st.one_of(st.integers(0, 255), st.sampled_from([0xC1, 0xC6, 0xC9, 0xDB, 0xDD, 0xDF, 0x9F, 0x8F])),
    ),
    min_size=1,
    max_size=4,
)


@given(objects, edits, unpack_options)
def test_unpackb_of_damaged_bytes_is_the_reference(backend, obj, changes, options):
    damaged = mutate(oracle.packb(to_oracle(obj)), changes)
    ours = outcome(msgpack.unpackb, damaged, **options)
    assert ours == in_reference(msgpack.unpackb, damaged, **options)
    # msgpack-python raises the same exception types (its FormatError and StackError have no message).
    assert kind(ours) == kind(outcome(oracle.unpackb, damaged, **options))


@given(st.binary(max_size=64), st.booleans())
def test_unpackb_of_random_bytes_is_the_reference(backend, data, strict_map_key):
    ours = outcome(msgpack.unpackb, data, strict_map_key=strict_map_key)
    assert ours == in_reference(msgpack.unpackb, data, strict_map_key=strict_map_key)
    assert kind(ours) == kind(outcome(oracle.unpackb, data, strict_map_key=strict_map_key))


# -- streaming -----------------------------------------------------------------------------------------------


def stream_events(unpacker_class, chunks, **options):
    """What an Unpacker yields as the chunks arrive: objects, and errors (which end the stream)."""
    unpacker = unpacker_class(**options)
    events = []
    for chunk in chunks:
        unpacker.feed(chunk)
        try:
            events.extend(shape(from_oracle(obj)) for obj in unpacker)
        except Exception as exc:  # noqa: BLE001 - the exception is the outcome being compared
            events.append(("raised", type(exc).__name__))
            break
        events.append(("tell", unpacker.tell()))
    return events


def split(data: bytes, cuts) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@given(st.lists(objects, max_size=6), st.lists(st.integers(0, 10_000), max_size=8))
def test_a_stream_fed_in_pieces_gives_each_object_once(backend, items, cuts):
    stream = b"".join(oracle.packb(to_oracle(i)) for i in items)
    chunks = split(stream, cuts)
    ours = stream_events(msgpack.Unpacker, chunks, strict_map_key=False)
    assert ours == reference(stream_events, msgpack.Unpacker, chunks, strict_map_key=False)[1]
    objects_only = [e for e in ours if e[0] != "tell"]
    whole = [oracle.unpackb(oracle.packb(to_oracle(i)), strict_map_key=False) for i in items]
    assert objects_only == [shape(from_oracle(obj)) for obj in whole]
    assert ours[-1] == ("tell", len(stream))


@given(st.lists(objects, min_size=1, max_size=4), edits, st.lists(st.integers(0, 10_000), max_size=6))
def test_a_damaged_stream_is_the_reference(backend, items, changes, cuts):
    stream = mutate(b"".join(oracle.packb(to_oracle(i)) for i in items), changes)
    chunks = split(stream, cuts)
    options = {"max_buffer_size": 1 << 16, "strict_map_key": False}
    ours = stream_events(msgpack.Unpacker, chunks, **options)
    assert ours == reference(stream_events, msgpack.Unpacker, chunks, **options)[1]


@given(
    st.lists(objects, max_size=6),
    st.lists(st.sampled_from(["unpack", "skip", "bytes", "header"]), max_size=10),
)
def test_unpacker_methods_interleave_as_in_the_reference(backend, items, calls):
    stream = b"".join(oracle.packb(to_oracle(i)) for i in items)

    def run():
        unpacker = msgpack.Unpacker(strict_map_key=False)
        unpacker.feed(stream)
        seen = []
        for call in calls:
            seen.append(
                outcome(
                    {
                        "unpack": unpacker.unpack,
                        "skip": unpacker.skip,
                        "bytes": lambda: unpacker.read_bytes(3),
                        "header": unpacker.read_array_header,
                    }[call]
                )
            )
            seen.append(unpacker.tell())
        return seen

    assert run() == reference(run)[1]
