"""Every Redis key of the service, its layout and the scripts that change it: the whole online state in
one place (as Mastodon's FeedManager owns its feed keys). Redis holds nothing that the database cannot
rebuild: a lost key is refilled from the database on the next read.

On a Redis Cluster (``igcore.web.clients``) every script and transaction names keys of one hash slot:
the part of a key in braces, its tag, picks the slot, and keys that go together share their tag.

Home feeds (``igcore.web.feeds``), for account ``<a>`` of home shard ``<h>`` = a mod HOME_SHARDS:

    igcore:home:{h<h>}:<a>      string  the feed: ``igcore.timeline.Timeline.to_bytes()`` (at most
                                        FEED_LEN entries, score = post id = status id); "" while it is
                                        being rebuilt
    igcore:home:{h<h>}:<a>:new  list    entries fanned out since the feed was last written, one ENTRY
                                        each, appended atomically (RPUSH): two posts fanned out at once
                                        both land
    igcore:home:{h<h>}:<a>:gen  int     the feed's generation: every write of the feed checks and bumps
                                        it, so a write based on an older read is refused (compare-and-set)

    The reader folds ``new`` into the feed (``Timeline.insert_many``) and, once FOLD_AT entries wait,
    writes the feed back and trims exactly the entries it folded, if the generation still matches. The
    tag is the shard, not the account, so that a fan-out on a cluster is one script call per shard
    among the followers (at most HOME_SHARDS), not one per follower.

Home feeds of the benchmark peer (``igcore.web.sorted_feeds``, ``IGCORE_WEB_HOME_FEEDS=sorted-set``),
for account ``<a>``:

    igcore:feed:<a>        zset    the feed as Mastodon's FeedManager keeps it: score = member = status id,
                                   the newest FEED_LEN; every post is added to the author's and to every
                                   follower's (no fan-out limit, no pull), read with ZREVRANGEBYSCORE
    igcore:feed:<a>:built  string  "1" once the feed was rebuilt from the database; a feed without it is
                                   rebuilt on read (posts added before stay: the rebuild is a union)

    This is Mastodon's own layout, so serving the same API from it measures what igcore's hybrid
    (Timeline bytes, inbox, pull of big authors) changes against the design Mastodon runs.

Authors' recent posts, for the accounts whose followers read them at read time (more followers than the
fan-out limit) and for backfill on follow:

    igcore:posts:<a>       list    the author's newest posts, one ENTRY each, newest last, at most
                                   FEED_LEN; an empty element marks a list filled from the database

The follow graph (``igcore.web.follows``):

    igcore:graph:events    stream  follows and unfollows as they are committed (op f|u, src, dst, id) and
                                   authors that became too big to fan out (op c, src); every worker
                                   applies them to its mapped graph before it answers a request

Counters (``igcore.web.counts``):

    igcore:counts:{<shard>}:favourites, ...:views   hashes of ``igcore.counters.redis.WriteBehind``
                                   (field: status id, value: its total; shard = id mod SHARDS)
    igcore:viewers:{<status>}      string  the status's unique viewers: a HyperLogLog in Redis's own
                                   format (PFCOUNT answers on it); a worker merges its sketch in through
                                   ``igcore:viewers:{<status>}:<worker>`` (MERGE_SKETCH)
    igcore:trending:<worker>       hash    one worker's favourites of the last hour per status (its top
                                   TRENDING_PER_WORKER), replaced every flush, expiring if it stops

Sessions and limits (``igcore.web.auth``, ``igcore.web.http``):

    igcore:token:<sha256>  string  "<account id>" or "app" for a client-credentials token; "-" for no
                                   such token (cached for a minute, so guessing costs a database read
                                   per guess per minute at most)
    igcore:mutes:<a>       set     the accounts <a> mutes, and "-" (the set was filled from the database);
                                   dropped on every mute and unmute, refilled on read, kept an hour
    igcore:ratelimit:<who>:<window>  int  requests in the window
    igcore:worker:slot     int     hands each starting worker its id slot
"""

from __future__ import annotations

import struct

PREFIX = "igcore"
FEED_LEN = 400  # entries a home feed keeps, as Mastodon's
FOLD_AT = 16  # fold the fanned-out entries into the stored feed once this many wait
INBOX_LIMIT = 4 * FEED_LEN  # a feed whose inbox grows beyond this is not being read: dropped, rebuilt on read
FEED_TTL = 14 * 86_400  # a feed not read for two weeks goes (Mastodon: active users are those of 2 weeks)
TOKEN_TTL = 3600
MUTES_TTL = 3600
MISSING_TOKEN_TTL = 60
SHARDS = 64
HOME_SHARDS = 256
TRENDING_PER_WORKER = 500
TRENDING_TTL = 30

ENTRY = struct.Struct("<qqq")  # (score, post id, author id): one fanned-out entry


def home_shard(account: int) -> int:
    return account % HOME_SHARDS


def home(account: int) -> str:
    return f"{PREFIX}:home:{{h{home_shard(account)}}}:{account}"


def home_new(account: int) -> str:
    return f"{home(account)}:new"


def home_gen(account: int) -> str:
    return f"{home(account)}:gen"


def feed(account: int) -> str:
    return f"{PREFIX}:feed:{account}"


def feed_built(account: int) -> str:
    return f"{PREFIX}:feed:{account}:built"


def posts(account: int) -> str:
    return f"{PREFIX}:posts:{account}"


GRAPH_EVENTS = f"{PREFIX}:graph:events"
COUNTS_PREFIX = f"{PREFIX}:counts"
WORKER_SLOT = f"{PREFIX}:worker:slot"


def viewers(status: int) -> str:
    return f"{PREFIX}:viewers:{{{status}}}"


def viewers_scratch(status: int, worker: str) -> str:
    return f"{viewers(status)}:{worker}"


def trending(worker: str) -> str:
    return f"{PREFIX}:trending:{worker}"


def token(digest: str) -> str:
    return f"{PREFIX}:token:{digest}"


def mutes(account: int) -> str:
    return f"{PREFIX}:mutes:{account}"


def ratelimit(who: str, window: int) -> str:
    return f"{PREFIX}:ratelimit:{who}:{window}"


# Fan-out on write. KEYS: (feed, new, gen) of each follower; ARGV[1]: the ENTRY, ARGV[2]: INBOX_LIMIT,
# ARGV[3]: FEED_TTL. Appends to the followers that have a feed (the others have theirs built when they
# read). An inbox beyond the limit belongs to a feed no one reads: it is dropped, and its generation
# bumped so that no write based on it can land. Returns how many feeds took the entry.
FANOUT = """
local taken = 0
for i = 1, #KEYS, 3 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local waiting = redis.call('RPUSH', KEYS[i + 1], ARGV[1])
    if waiting > tonumber(ARGV[2]) then
      redis.call('DEL', KEYS[i], KEYS[i + 1])
      redis.call('INCR', KEYS[i + 2])
    else
      redis.call('EXPIRE', KEYS[i + 1], ARGV[3])
      taken = taken + 1
    end
  end
end
return taken
"""

# Writes a feed back. KEYS: feed, new, gen; ARGV: the generation read, the feed's bytes, how many
# entries of `new` it folded in (from the head), FEED_TTL. Refused (0) when the generation moved.
WRITE_FEED = """
local gen = redis.call('GET', KEYS[3]) or '0'
if gen ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4])
if tonumber(ARGV[3]) > 0 then redis.call('LTRIM', KEYS[2], ARGV[3], -1) end
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
"""

# Marks an author's list as being filled from the database: an empty element first, so that posts made
# meanwhile (RPUSHX) land in it. Returns 1 if this call is the one to fill it.
START_POSTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('RPUSH', KEYS[1], '')
return 1
"""

TRENDING_WORKERS = f"{PREFIX}:trending:workers"  # zset: worker name -> when it last published

# Merges a worker's sketch of a status's viewers into Redis's. KEYS: the status's sketch, the worker's
# scratch key (same tag); ARGV[1]: the worker's sketch in Redis's format. Merging is idempotent, so a
# retried call never counts a viewer twice.
MERGE_SKETCH = """
redis.call('SET', KEYS[2], ARGV[1])
redis.call('PFMERGE', KEYS[1], KEYS[2])
redis.call('DEL', KEYS[2])
return 1
"""

# Replaces a worker's trending list at once (a reader never sees it empty midway). KEYS: the list;
# ARGV[1]: TRENDING_TTL, then status id and count pairs.
REPLACE_TRENDING = """
redis.call('DEL', KEYS[1])
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 1
"""
