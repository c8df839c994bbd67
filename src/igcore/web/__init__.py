"""igcore in the web tier: a Django ASGI service on uvicorn + uvloop that speaks the Mastodon client API.

Every hot path goes through igcore: home feeds are ``igcore.timeline`` timelines in Redis, merged with
the posts of accounts too big to fan out; the follow graph is an ``igcore.graph.FollowGraph`` file that
every worker maps; favourites and views are counted in ``igcore.counters`` tables and written behind to
Redis; responses are orjson or ``igcore.msgpack``. The database (Django's ORM: SQLite or PostgreSQL) is
the source of truth. ``igcore serve --demo`` runs it on a generated network; see the README.

Modules: ``settings`` (configuration), ``models`` (the source of truth), ``keys`` (every Redis key and
its layout), ``clients`` (one Redis server or a Redis Cluster), ``feeds``, ``follows`` and ``counts``
(the online state; ``sorted_feeds``: home feeds in Mastodon's layout, the benchmark peer chosen by
``IGCORE_WEB_HOME_FEEDS``), ``actions`` (every state change), ``views`` (thin: parse, one call, render),
``entities`` (Mastodon's JSON), ``http`` (parameters, errors, rendering), ``auth`` (tokens), ``worker``
(one process's runtime), ``asgi``, ``demo`` and ``serve``.
"""
