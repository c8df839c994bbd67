"""Every backend answers the same: on copies of one seeded database, the servers of rust, cython and
python give the demo accounts byte-identical answers (home timeline pages, accounts, statuses,
followers and following pages, suggestions, familiar followers, relationships, notifications, trends).

The answers are taken as each server of the suite starts, before any test changes its data (see
``demo_answers``); this test runs last and compares them, starting a server only for a backend whose
answers the run did not take (a run of a single module, say). Nothing is ignored but the server's own
address inside URLs, which differs because each server listens on its own port.
"""

from __future__ import annotations

import difflib

import pytest

from . import demo_answers
from .conftest import DATABASES, DEMO_ANSWERS, SELECTED, require_database


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
    for backend, taken in answers.items():
        assert "failure" not in taken, f"{backend}: the demo answers could not be taken: {taken['failure']}"
        refused = {name: status for name, (status, _, _) in taken.items() if status != 200}
        assert not refused, f"{backend} refused demo requests: {refused}"
        homes = [name for name, (_, body, _) in taken.items() if " home page" in name and body != "[]"]
        assert homes, f"{backend}: no demo account has a home timeline"
    reference_name = "python" if "python" in answers else next(iter(answers))
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
