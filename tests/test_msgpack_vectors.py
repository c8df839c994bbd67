"""The msgpack test suite's vectors (kawanet/msgpack-test-suite, in the shared data folder): every
backend decodes every listed encoding of each value, and packs each value to one of its encodings."""

from __future__ import annotations

import json
import math

import pytest

from igcore import msgpack

from .conftest import shared_data

HOT_PATH = "msgpack"
VALUE_KEYS = ("nil", "bool", "binary", "number", "bignum", "string", "array", "map", "timestamp", "ext")


def load_cases() -> list[tuple[str, str, object, list[bytes]]]:
    with open(shared_data("msgpack-test-suite/msgpack-test-suite.json")) as source:
        groups = json.load(source)
    cases = []
    for group, entries in groups.items():
        for number, entry in enumerate(entries):
            # One value key per case, but a bignum comes with its approximate `number` too.
            kind = "bignum" if "bignum" in entry else next(key for key in VALUE_KEYS if key in entry)
            encodings = [bytes.fromhex(hex_bytes.replace("-", "")) for hex_bytes in entry["msgpack"]]
            cases.append((f"{group}#{number}", kind, value_of(kind, entry[kind]), encodings))
    return cases


def value_of(kind: str, raw):
    if kind == "binary":
        return bytes.fromhex(raw.replace("-", ""))
    if kind == "bignum":
        return int(raw)
    if kind == "timestamp":
        return msgpack.Timestamp(*raw)
    if kind == "ext":
        return msgpack.ExtType(raw[0], bytes.fromhex(raw[1].replace("-", "")))
    return raw  # nil, bool, number, string, array, map: JSON gives the Python value


@pytest.fixture(scope="module")
def cases():
    found = load_cases()
    assert len(found) == 85 and sum(len(c[3]) for c in found) == 233, "the suite has 85 cases, 233 encodings"
    return found


def same(decoded, expected) -> bool:
    """Equal as the suite means it (an int case may be decoded from a float encoding: 1 == 1.0)."""
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(decoded, float) and math.isnan(decoded)
    return decoded == expected


def test_every_encoding_decodes_to_its_value(backend, cases):
    failures = []
    for name, _, value, encodings in cases:
        for encoded in encodings:
            decoded = msgpack.unpackb(encoded)
            if not same(decoded, value):
                failures.append((name, encoded.hex("-"), decoded, value))
    assert not failures, failures


def test_every_value_packs_to_one_of_its_encodings(backend, cases):
    failures = []
    for name, _, value, encodings in cases:
        packed = msgpack.packb(value)
        if packed not in encodings:
            failures.append((name, value, packed.hex("-"), [e.hex("-") for e in encodings]))
    assert not failures, failures


def test_ints_and_strings_pack_to_the_shortest_encoding(backend, cases):
    # msgpack-python packs every int, str, bin, array and map in its shortest form (the first listed is
    # a shortest one; for 2**63-1 it is int64 where msgpack-python takes uint64, as long).
    for name, kind, value, encodings in cases:
        if kind in ("bignum", "string", "binary", "array", "map", "nil", "bool") or (
            kind == "number" and isinstance(value, int)
        ):
            assert len(msgpack.packb(value)) == len(encodings[0]), name


def test_every_encoding_streams_byte_by_byte(backend, cases):
    unpacker = msgpack.Unpacker()
    for name, _, value, encodings in cases:
        for encoded in encodings:
            objects = []
            for byte in encoded:
                unpacker.feed(bytes([byte]))
                objects.extend(unpacker)
            # The object arrives with its last byte, not before.
            assert len(objects) == 1 and same(objects[0], value), (name, encoded.hex("-"), objects)
