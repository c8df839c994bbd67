"""Memory does not grow over many msgpack calls: objects built, errors raised, buffers, key cache and
hooks all release what they take (a reference-counting slip in a compiled backend would show here)."""

from __future__ import annotations

import gc
import io
import os

import pytest

from igcore import msgpack
from igcore.bench.msgpack import feed_page

from .test_memory import rss_bytes

HOT_PATH = "msgpack"

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")

HOSTILE = [
    b"\xdb\xff\xff\xff\xffabc",  # lying lengths
    b"\xdd\xff\xff\xff\xff\x01",
    b"\x91" * 2000,  # too deep
    b"\x92\xa1a\xc1",  # format error mid-array
    b"\x82\xa1a\x01\xa2\xff\xfe\x02",  # invalid UTF-8 key after a good pair
    b"\x81\x91\x01\x02",  # unhashable key
    b"\x93\x01\x02",  # truncated
    b"\x01\x02",  # extra data
]


def churn(rounds: int) -> None:
    page = feed_page(posts=20)
    packed = msgpack.packb(page)
    for _ in range(rounds):
        assert msgpack.unpackb(msgpack.packb(page)) == page
        msgpack.unpackb(packed, use_list=False, raw=True)
        msgpack.unpackb(packed, object_pairs_hook=list, list_hook=tuple)
        msgpack.packb([page, 2**64], default=str)
        for data in HOSTILE:
            for options in ({}, {"strict_map_key": False}):
                with pytest.raises((ValueError, TypeError)):
                    msgpack.unpackb(data, **options)
        with pytest.raises(TypeError):
            msgpack.packb({"a": [1, object()]})
        packer = msgpack.Packer(autoreset=False)
        packer.pack(page)
        packer.pack_map_pairs([("k", b"v" * 100)])
        packer.bytes()
        unpacker = msgpack.Unpacker(io.BytesIO(packed * 3), read_size=999)
        assert len(list(unpacker)) == 3
        unpacker = msgpack.Unpacker(object_hook=dict)
        for start in range(0, len(packed), 4096):
            unpacker.feed(packed[start : start + 4096])
            list(unpacker)
        unpacker.feed(b"\x92\x01\xc1")
        with pytest.raises(msgpack.FormatError):
            unpacker.unpack()


def test_msgpack_does_not_leak(backend):
    rounds = 15 if backend == "python" else 150
    churn(rounds)  # warm up caches and allocator pools
    gc.collect()
    before = rss_bytes()
    churn(rounds)
    gc.collect()
    grown = rss_bytes() - before
    # Each round handles ~1 MB of objects and bytes; leaking any part of them would be 10+ MB here.
    assert grown < 8 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"


def test_a_hook_that_refers_to_its_packer_or_unpacker_is_collected(backend):
    import weakref

    def make_cycles():
        # holder -> unpacker -> its backend object -> the hook -> holder: only the GC can free these.
        holder = {}
        holder["unpacker"] = msgpack.Unpacker(object_hook=lambda obj: (holder, obj))
        holder["packer"] = msgpack.Packer(default=lambda obj: (holder, str(obj)))
        return [weakref.ref(holder["unpacker"]), weakref.ref(holder["packer"])]

    gone = make_cycles()
    gc.collect()
    assert [ref() for ref in gone] == [None, None]
