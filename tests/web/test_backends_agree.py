"""Every backend answers the same: on copies of one seeded database, the servers of rust, cython and
python (and one on a Redis Cluster) give the demo accounts byte-identical answers (home timeline pages,
accounts, statuses, followers and following pages, suggestions, familiar followers, relationships,
notifications, trends).

The answers are taken as each server of the suite starts, before any test changes its data (see
``demo_answers``); this test runs last and compares them, starting a server only for a backend whose
answers the run did not take (a run of a single module, say). Nothing is ignored but the server's own
address inside URLs, which differs because each server listens on its own port.
"""

from __future__ import annotations

import difflib

import pytest

from . import demo_answers
from .conftest import DATABASES, DEMO_ANSWERS, ON_CLUSTER, SELECTED, _server_id, require_database


def answers_of(servers, backend, database):
    if (database, backend) not in DEMO_ANSWERS:
        try:
            server = servers.start(backend, database, "--rate-limit", "off")
        except pytest.skip.Exception:
            return None
        try:
            DEMO_ANSWERS[(database, backend)] = demo_answers(server)
            server.assert_clean_exit()
        finally:
            servers.release(server)
    return DEMO_ANSWERS[(database, backend)]


@pytest.mark.parametrize("database", DATABASES)
def test_every_backend_answers_the_demo_the_same(servers, database):
    require_database(database)
    if len(SELECTED) < 2:
        pytest.skip(f"only {SELECTED[0]} is selected (IGCORE_BACKEND): nothing to compare it with")
    answers = {b: a for b in SELECTED if (a := answers_of(servers, b, database)) is not None}
    if len(answers) < 2:
        pytest.skip(f"only {', '.join(answers) or 'no backend'} could serve: nothing to compare")
    assert_same(answers, "python" if "python" in answers else next(iter(answers)))


def test_a_redis_cluster_answers_the_demo_as_one_server_does(servers, web_redis_cluster):
    """The same backend and database, the online state on a Redis Cluster instead of one server."""
    backend, database, _ = ON_CLUSTER
    name = _server_id(ON_CLUSTER)
    if (database, name) not in DEMO_ANSWERS:
        server = servers.start_on_cluster(backend, web_redis_cluster)
        try:
            DEMO_ANSWERS[(database, name)] = demo_answers(server)
            server.assert_clean_exit()
        finally:
            servers.release(server)
    one_server = answers_of(servers, backend, database)
    assert one_server is not None, f"{backend} on {database} could not serve"
    assert_same({backend: one_server, name: DEMO_ANSWERS[(database, name)]}, backend)


def assert_same(answers, reference_name):
    """Every server answered every demo request, and as `reference_name` did."""
    for backend, taken in answers.items():
        assert "failure" not in taken, f"{backend}: the demo answers could not be taken: {taken['failure']}"
        refused = {name: status for name, (status, _, _) in taken.items() if status != 200}
        assert not refused, f"{backend} refused demo requests: {refused}"
        homes = [name for name, (_, body, _) in taken.items() if " home page" in name and body != "[]"]
        assert homes, f"{backend}: no demo account has a home timeline"
    reference = answers[reference_name]
    for backend, taken in answers.items():
        assert sorted(taken) == sorted(reference), (backend, set(taken) ^ set(reference))
        differing = [name for name in reference if taken[name] != reference[name]]
        if differing:
            name = differing[0]
            diff = "\n".join(
                difflib.unified_diff(
                    reference[name][1].replace("},", "},\n").splitlines(),
                    taken[name][1].replace("},", "},\n").splitlines(),
                    reference_name,
                    backend,
                    lineterm="",
                    n=1,
                )
            )
            pytest.fail(
                f"{backend} and {reference_name} differ on {len(differing)} of {len(reference)} answers, "
                f"first {name!r} (Link {taken[name][2]!r} vs {reference[name][2]!r}):\n{diff[:6000]}"
            )
