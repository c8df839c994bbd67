"""Running test code on several threads at once, under the backend of the test."""

from __future__ import annotations

import contextvars
import sys
import threading

TIMEOUT = 120  # seconds for all the threads of a test: far beyond what they need; a hang fails


def run_threads(workers, watchers=(), timeout=TIMEOUT):
    """Runs `workers` and `watchers` (callables taking the `done` event) at once; `done` is set when the
    workers have returned. Raises the first exception of any thread; fails if one is still running at
    the deadline (a deadlock)."""
    done = threading.Event()
    errors = []
    everyone = threading.Barrier(len(workers) + len(watchers))

    def guarded(call):
        def run():
            try:
                everyone.wait(timeout)  # all start together
                call(done)
            except BaseException as exc:  # noqa: BLE001 - handed to the test below
                errors.append(exc)
                done.set()
                everyone.abort()

        # In a copy of this thread's context, so that what a thread makes is of the backend under test.
        return threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)

    working = [guarded(call) for call in workers]
    watching = [guarded(call) for call in watchers]
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads holding the GIL take turns far more often: more interleavings
    try:
        for thread in working + watching:
            thread.start()
        for thread in working:
            thread.join(timeout)
        done.set()
        for thread in watching:
            thread.join(timeout)
    finally:
        sys.setswitchinterval(switching)
    stuck = [t for t in working + watching if t.is_alive()]
    if errors:
        raise errors[0]
    assert not stuck, f"{len(stuck)} threads still running after {timeout} s: a deadlock?"
