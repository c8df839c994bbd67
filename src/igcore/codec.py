"""Compact id codecs: id lists and timeline entries as small, versioned, checksummed bytes.

For caches (Redis, memcached) and queues that hold follower lists, post id lists and timelines:
delta + zigzag + varint, so sorted ids and timestamps take one to three bytes each instead of eight.
Every backend writes identical bytes and reads any backend's bytes. Truncated, corrupted or hostile
input raises ``ValueError`` (a count that claims more values than the bytes can hold is refused before
anything is allocated). The wire format is specified in ``igcore._reference.codec``.

    data = igcore.codec.encode_ids(follower_ids)
    follower_ids = igcore.codec.decode_ids(data)
    data = igcore.codec.encode_entries(scores, post_ids, author_ids)
    scores, post_ids, author_ids = igcore.codec.decode_entries(data)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Union

import numpy as np

from . import _backend, _messages
from ._arrays import byte_string, int64_array, score_array

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from typing_extensions import Buffer

    from ._typing import IntArrayLike, ScoreArray, ScoreArrayLike


class Entries(NamedTuple):
    """Feed entries as three arrays of one length: scores (int64 or float64), post ids, author ids."""

    scores: Union[NDArray[np.int64], NDArray[np.float64]]
    post_ids: NDArray[np.int64]
    author_ids: NDArray[np.int64]


def encode_ids(ids: IntArrayLike) -> bytes:
    """An id list as bytes. `ids`: a 1-D integer array or sequence of ints, in any order."""
    return _backend.kernels("codec").encode_ids(int64_array(ids, "ids"))


def decode_ids(data: Buffer) -> NDArray[np.int64]:
    """The int64 array that `encode_ids` encoded. Raises ``ValueError`` on anything else."""
    return _backend.kernels("codec").decode_ids(byte_string(data, "data"))


def encode_entries(scores: ScoreArrayLike, post_ids: IntArrayLike, author_ids: IntArrayLike) -> bytes:
    """Entries as bytes, in the order given. `scores`: integers (kept as int64) or floats (float64)."""
    scores, post_ids, author_ids = entry_arrays(scores, post_ids, author_ids)
    return _backend.kernels("codec").encode_entries(scores, post_ids, author_ids)


def decode_entries(data: Buffer) -> Entries:
    """The entries that `encode_entries` encoded (scores keep their dtype, floats bit for bit)."""
    return Entries(*_backend.kernels("codec").decode_entries(byte_string(data, "data")))


def entry_arrays(
    scores: ScoreArrayLike, post_ids: IntArrayLike, author_ids: IntArrayLike
) -> tuple[ScoreArray, NDArray[np.int64], NDArray[np.int64]]:
    """The three arrays of entries, checked and converted: scores int64 or float64, ids int64, one length."""
    scores = score_array(scores, "scores")
    post_ids = int64_array(post_ids, "post_ids")
    author_ids = int64_array(author_ids, "author_ids")
    if not len(scores) == len(post_ids) == len(author_ids):
        raise ValueError(
            _messages.ENTRY_LENGTHS_DIFFER.format(
                scores=len(scores), post_ids=len(post_ids), author_ids=len(author_ids)
            )
        )
    return scores, post_ids, author_ids
