"""Benchmarks of the msgpack hot path: a realistic feed page, 100,000 ints, a 1 MiB blob and a 10,000-entry
str -> int dict, each packed and unpacked by every backend beside msgpack-python (C), ormsgpack, msgspec
(untyped) and pickle. Peers that are not installed are left out of the table."""

from __future__ import annotations

import importlib
import pickle
import random
from typing import Any, Callable

from .. import msgpack
from . import Case, register

SEED = 20261124
POSTS = 50  # a feed page is one page at every scale


def _peer(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


oracle = _peer("msgpack")
ormsgpack = _peer("ormsgpack")
msgspec = _peer("msgspec")

WORDS = [
    "sunset", "coffee", "weekend", "beach", "friends", "travel", "city", "night", "summer", "brunch",
    "café", "straße", "São", "Zürich", "привет", "東京", "नमस्ते", "mañana", "ça", "día",
]  # fmt: skip
EMOJI = ["🌅", "☕", "❤️", "🔥", "😂", "🎉", "🙌", "✨", "🌊", "👀"]
NAMES = ["Ana María", "Zoë Brontë", "Jürgen Groß", "李小龙", "Ólafur Arnalds", "Sam Lee", "Priya Nair"]
PLACES = [
    ("São Paulo", -23.55, -46.63),
    ("Zürich", 47.37, 8.54),
    ("Kraków", 50.06, 19.94),
    ("Lagos", 6.52, 3.38),
]


def feed_page(seed: int = SEED, posts: int = POSTS) -> dict:
    """A home-feed page as a web tier caches it: `posts` posts with ids, an author sub-dict, a caption
    with non-ASCII text and emoji, counts, a media list, tags and an optional location."""
    rng = random.Random(seed)
    items = []
    for _ in range(posts):
        author_id = rng.getrandbits(62)
        location = None
        if rng.random() < 0.4:
            name, lat, lng = rng.choice(PLACES)
            location = {"id": rng.getrandbits(40), "name": name, "lat": lat, "lng": lng}
        caption = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 25)))
        items.append(
            {
                "id": rng.getrandbits(63),
                "code": "".join(
                    rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
                    for _ in range(11)
                ),
                "taken_at": 1_700_000_000 + rng.randrange(10_000_000),
                "media_type": rng.choice([1, 2, 8]),
                "author": {
                    "id": author_id,
                    "username": f"user_{author_id % 100_000}",
                    "full_name": rng.choice(NAMES),
                    "is_verified": rng.random() < 0.1,
                    "profile_pic_url": f"https://cdn.example.com/p/{author_id}.jpg",
                },
                "caption": caption + " " + "".join(rng.choice(EMOJI) for _ in range(3)),
                "like_count": rng.randrange(1_000_000),
                "comment_count": rng.randrange(10_000),
                "view_count": rng.randrange(10**7) if rng.random() < 0.3 else None,
                "has_liked": rng.random() < 0.2,
                "media": [
                    {
                        "url": f"https://cdn.example.com/m/{rng.getrandbits(48)}.jpg",
                        "width": 1080,
                        "height": rng.choice([1080, 1350, 1920]),
                        "type": "image",
                    }
                    for _ in range(rng.randrange(1, 5))
                ],
                "tags": ["#" + rng.choice(WORDS) for _ in range(rng.randrange(0, 6))],
                "location": location,
            }
        )
    return {
        "items": items,
        "num_results": posts,
        "more_available": True,
        "next_max_id": "QVFE" + "".join(rng.choice("0123456789abcdef") for _ in range(40)),
        "auto_load_more_enabled": True,
    }


def _ints(scale: float) -> list[int]:
    rng = random.Random(SEED)
    n = max(1, int(100_000 * scale))
    # Ids, counts and small flags: every int width msgpack has.
    return [
        rng.choice((rng.randrange(128), rng.randrange(2**16), rng.getrandbits(40), -rng.randrange(2**31)))
        for _ in range(n)
    ]


def _blob(scale: float) -> bytes:
    return random.Random(SEED).randbytes(max(1, int((1 << 20) * scale)))


def _counts(scale: float) -> dict[str, int]:
    rng = random.Random(SEED)
    return {
        f"user_{rng.getrandbits(40):x}": rng.randrange(1_000_000) for _ in range(max(1, int(10_000 * scale)))
    }


def _size(scale: float, full: int, unit: str) -> str:
    return f"{max(1, int(full * scale)):,} {unit}"


DATA: dict[str, tuple[Callable[[float], Any], Callable[[float], str]]] = {
    "feed-page": (lambda scale: feed_page(), lambda scale: f"a feed page of {POSTS} posts (~33 KB packed)"),
    "ints": (_ints, lambda scale: _size(scale, 100_000, "ints of every width")),
    "blob": (_blob, lambda scale: f"a {_size(scale, 1 << 20, 'byte')} blob"),
    "dict": (_counts, lambda scale: f"a {_size(scale, 10_000, 'entry')} str -> int dict"),
}


def _inputs(name: str, scale: float) -> dict:
    obj = DATA[name][0](scale)
    packed = msgpack.packb(obj)
    return {"obj": obj, "packed": packed, "pickled": pickle.dumps(obj, protocol=5)}


def _peer_codecs() -> dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any], str]]:
    """Each peer installed here: its pack, its unpack, and which input holds its bytes."""
    codecs: dict[str, tuple[Callable[[Any], bytes], Callable[[bytes], Any], str]] = {}
    if oracle is not None:
        codecs["msgpack-python"] = (oracle.packb, oracle.unpackb, "packed")
    if ormsgpack is not None:
        codecs["ormsgpack"] = (ormsgpack.packb, ormsgpack.unpackb, "packed")
    if msgspec is not None:
        codecs["msgspec"] = (msgspec.msgpack.Encoder().encode, msgspec.msgpack.Decoder().decode, "packed")
    codecs["pickle"] = (lambda obj: pickle.dumps(obj, protocol=5), pickle.loads, "pickled")
    return codecs


def _on(function: Callable[[Any], Any], key: str) -> Callable[[dict], Any]:
    return lambda inputs: function(inputs[key])


def _both(pack: Callable[[Any], bytes], unpack: Callable[[bytes], Any]) -> Callable[[dict], Any]:
    return lambda inputs: unpack(pack(inputs["obj"]))


def _pack_peers() -> dict[str, Callable[[dict], Any]]:
    return {label: _on(pack, "obj") for label, (pack, _, _) in _peer_codecs().items()}


def _unpack_peers() -> dict[str, Callable[[dict], Any]]:
    return {label: _on(unpack, key) for label, (_, unpack, key) in _peer_codecs().items()}


def _roundtrip_peers() -> dict[str, Callable[[dict], Any]]:
    return {label: _both(pack, unpack) for label, (pack, unpack, _) in _peer_codecs().items()}


def _decodes_to(packed, expected_packed) -> bool:
    """A peer's bytes may differ from msgpack-python's yet hold the same object (pickle's always do)."""
    if packed == expected_packed:
        return True
    try:
        return pickle.loads(packed) == msgpack.unpackb(expected_packed)
    except Exception:  # noqa: BLE001 - not pickle: compare as msgpack
        return msgpack.unpackb(packed) == msgpack.unpackb(expected_packed)


def _equal(result: Any, expected: Any) -> bool:
    return bool(result == expected)


def _register(name: str) -> None:
    """Three cases per document: packb then unpackb, packb alone, unpackb alone."""
    title = DATA[name][1]
    kinds = (
        # name suffix, what it times, the run, its peers, how a peer's answer is compared, slow peers
        (
            "pack+unpack",
            "packb then unpackb",
            lambda i: msgpack.unpackb(msgpack.packb(i["obj"])),
            _roundtrip_peers(),
            _equal,
            ("pickle",) if name == "blob" else (),
        ),
        ("pack", "packb", lambda i: msgpack.packb(i["obj"]), _pack_peers(), _decodes_to, ()),
        ("unpack", "unpackb", lambda i: msgpack.unpackb(i["packed"]), _unpack_peers(), _equal, ()),
    )
    for suffix, verb, run, peers, same_as_peer, slow in kinds:
        register(
            Case(
                name=f"msgpack.{name}/{suffix}",
                hot_path="msgpack",
                title=lambda scale, verb=verb: f"{verb} of {title(scale)}",
                make_inputs=lambda scale: _inputs(name, scale),
                run=run,
                peers=peers,
                same=_equal,
                same_as_peer=same_as_peer,
                slow_peers=slow,
            )
        )


for _name in DATA:
    _register(_name)
