"""Running test code on several threads at once, under the backend of the test."""

from __future__ import annotations

import threading

import igcore
from igcore import _backend


def run_threads(targets, hot_path: str, timeout: float = 120) -> None:
    """Runs each target on a thread of its own, all released at once, under the backend that serves
    `hot_path` in the calling thread (a backend is chosen per thread, so a new thread would otherwise
    get the default one). Re-raises the first failure of any thread; fails on a thread that hangs."""
    failures: list[BaseException] = []
    start = threading.Barrier(len(targets))
    backend = _backend.current(hot_path)

    def guarded(target):
        try:
            start.wait()
            with igcore.use_backend(backend):
                target()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
        assert not thread.is_alive(), f"a thread did not finish within {timeout} s: a deadlock?"
    if failures:
        raise failures[0]
