"""The Redis keys that a script or a transaction names together share a hash slot, as a Redis Cluster
requires (``igcore.web.keys``): the slot is computed as the cluster does, from the tag in braces. The
whole suite also runs on a real cluster (conftest.py), which refuses any command that breaks this."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from igcore.web import keys

key_slot = pytest.importorskip("redis.crc", reason="redis-py computes the cluster's hash slots").key_slot
accounts = st.integers(min_value=1, max_value=2**63 - 1)


def slot(name: str) -> int:
    return key_slot(name.encode())


@given(accounts)
def test_a_home_feed_its_inbox_and_generation_share_a_slot(account):
    names = [keys.home(account), keys.home_new(account), keys.home_gen(account)]
    assert len({slot(name) for name in names}) == 1, names
    assert len(set(names)) == 3


@given(st.integers(min_value=1, max_value=2**40), st.integers(min_value=1, max_value=2**20))
def test_accounts_of_one_home_shard_share_a_slot(account, apart):
    """A fan-out's script call holds the accounts of one home shard."""
    other = account + apart * keys.HOME_SHARDS
    assert keys.home_shard(other) == keys.home_shard(account)
    assert slot(keys.home(other)) == slot(keys.home(account))


def test_home_shards_spread_over_many_slots():
    """256 shards land on 256 distinct slots: a cluster spreads feeds over all its masters."""
    assert len({slot(keys.home(shard)) for shard in range(keys.HOME_SHARDS)}) == keys.HOME_SHARDS


@given(st.integers(min_value=1, max_value=2**63 - 1), st.text(min_size=1, max_size=40))
def test_a_viewers_sketch_and_a_workers_scratch_key_share_a_slot(status, worker):
    assert slot(keys.viewers(status)) == slot(keys.viewers_scratch(status, worker))
    assert keys.viewers(status) != keys.viewers_scratch(status, worker)
