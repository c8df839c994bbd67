"""Benchmarks of the compact id codec: a home timeline's 800 post ids and a 100,000-id follower list,
encoded and decoded, beside what a user would otherwise pick: pickle of the array, numpy ``tobytes`` +
zlib, and msgpack of a list."""

from __future__ import annotations

import pickle
import zlib
from typing import Any, Callable

import numpy as np

from .. import codec
from . import Case, register
from .timeline import EPOCH_MS, MONTH_MS, SEED, snowflake


def _post_ids(n: int) -> np.ndarray:
    """A timeline's post ids: time-ordered 63-bit ids, newest first."""
    rng = np.random.default_rng(SEED)
    ms = np.sort(rng.integers(EPOCH_MS, EPOCH_MS + MONTH_MS, n))[::-1]
    return snowflake(ms, rng.integers(0, 2**22, n)).astype(np.int64)


def _follower_ids(n: int) -> np.ndarray:
    """A follower list: distinct user ids below 2**40, ascending."""
    rng = np.random.default_rng(SEED + 1)
    return np.unique(rng.integers(1, 2**40, n + n // 50 + 8))[:n].astype(np.int64)


def _msgpack_pack(ids: np.ndarray) -> bytes:
    import msgpack

    return msgpack.packb(ids.tolist())


def _msgpack_unpack(data: bytes):
    import msgpack

    return msgpack.unpackb(data)


def _zlib_pack(ids: np.ndarray) -> bytes:
    return zlib.compress(ids.tobytes())


def _zlib_unpack(data: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(data), dtype=np.int64)


PEERS: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any]]] = {  # label: (encode, decode)
    "pickle": (pickle.dumps, pickle.loads),
    "numpy tobytes + zlib": (_zlib_pack, _zlib_unpack),
    "msgpack (list)": (_msgpack_pack, _msgpack_unpack),
}


def _inputs(make_ids, n: int):
    def make(scale: float) -> dict:
        ids = make_ids(max(1, int(n * scale)) if n > 1_000 else n)
        return {
            "ids": ids,
            "bytes": codec.encode_ids(ids),
            **{label: encode(ids) for label, (encode, _) in PEERS.items()},
        }

    return make


def _encoded_with(encode, decode):
    """A peer's encoder; it returns its bytes with the decoder that reads them, for the answer check."""
    return lambda inputs: (encode(inputs["ids"]), decode)


def _equal(result, expected) -> bool:
    return bool(result == expected)


def _equal_arrays(result, expected) -> bool:
    return np.array_equal(np.asarray(result), expected)


def _peer_decodes_to_the_ids(result, expected) -> bool:
    data, decode = result
    return np.array_equal(np.asarray(decode(data)), codec.decode_ids(expected))


for _what, _make_ids, _n in (
    ("800 post ids", _post_ids, 800),
    ("100000 follower ids", _follower_ids, 100_000),
):

    def _title(verb, what=_what, n=_n):
        return lambda scale: (
            f"{verb}: {what.replace(str(n), f'{max(1, int(n * scale)) if n > 1_000 else n:,}')}"
        )

    encode_peers = {label: _encoded_with(encode, decode) for label, (encode, decode) in PEERS.items()}
    decode_peers = {
        label: (lambda i, label=label, decode=decode: decode(i[label]))
        for label, (_, decode) in PEERS.items()
    }
    for kernel, run, peers, same, same_as_peer in (
        ("encode_ids", lambda i: codec.encode_ids(i["ids"]), encode_peers, _equal, _peer_decodes_to_the_ids),
        ("decode_ids", lambda i: codec.decode_ids(i["bytes"]), decode_peers, np.array_equal, _equal_arrays),
    ):
        register(
            Case(
                name=f"codec.{kernel}/{_n}",
                hot_path="codec",
                title=_title(kernel),
                make_inputs=_inputs(_make_ids, _n),
                run=run,
                peers=peers,
                same=same,
                same_as_peer=same_as_peer,
            )
        )
