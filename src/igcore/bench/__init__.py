"""The benchmark registry behind ``igcore bench`` and the pytest-benchmark files in ``bench/``.

A hot path registers ``Case`` objects: seeded inputs, the igcore call (timed once per backend) and the
peers a user would otherwise pick. Every runner's answer is checked against the pure-Python reference
before it is timed, so a table never shows the speed of a wrong answer.
"""

from __future__ import annotations

import importlib
import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .. import _backend

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

# Hot paths with benchmarks; each names a module igcore.bench.<name> that calls register().
BENCH_MODULES = ("counters", "timeline", "codec", "graph", "msgpack")


@dataclass
class Runner:
    """One timed line of a case: an igcore backend or a peer library."""

    label: str
    call: Callable[[Any], Any]
    backend: str | None = None  # set for igcore runners: the backend it runs under
    slow: bool = False  # pure-Python loops over millions of items: fewer rounds

    def context(self) -> AbstractContextManager[object]:
        return _backend.use_backend(self.backend) if self.backend else nullcontext()


@dataclass
class Case:
    """A benchmark: what is measured, on which inputs, against which peers."""

    name: str  # e.g. "counters.aggregate/counts"
    hot_path: str
    # title(scale) and make_inputs(scale), and each peer(inputs), typed `...`: the cases bind loop
    # variables as default arguments of lambdas, which mypy cannot match against one parameter.
    title: Callable[..., str]  # a one-line description, given the scale
    make_inputs: Callable[..., Any]  # seeded; sizes are multiplied by the scale (1.0: full size)
    run: Callable[[Any], Any]  # the igcore call
    peers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    slow_peers: tuple[str, ...] = ()
    # same(igcore_result, other_result) -> bool; for peers, given the peer's result
    same: Callable[[Any, Any], bool] | None = None
    same_as_peer: Callable[[Any, Any], bool] | None = None
    # answer(result, inputs) -> a short text shown in an "answer" column (e.g. an estimate's error)
    answer: Callable[[Any, Any], str] | None = None

    def runners(self) -> list[Runner]:
        found = [
            Runner(f"igcore {b}" + (" (reference)" if b == "python" else ""), self.run, b, slow=b == "python")
            for b in _backend.available(self.hot_path)
        ]
        found += [Runner(label, call, slow=label in self.slow_peers) for label, call in self.peers.items()]
        return found


_cases: dict[str, Case] = {}


def register(case: Case) -> Case:
    _cases[case.name] = case
    return case


def all_cases() -> list[Case]:
    for module in BENCH_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return list(_cases.values())


@dataclass
class Timing:
    runner: str
    backend: str | None
    times: list[float]
    error: str | None = None
    answer: str | None = None

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        ordered = sorted(self.times)
        return ordered[len(ordered) // 2]


ROUND_TIME = 1e-3  # a round of a fast call repeats it for at least this long
MAX_ROUNDS = 1_000


def measure(call: Callable[[Any], Any], inputs: Any, min_time: float, max_rounds: int) -> list[float]:
    """Seconds per call of `call(inputs)`, one figure per round: at least 3 rounds and `min_time`
    seconds, unless one round alone takes longer than `min_time`, then at most 3 rounds and 5 x
    `min_time`, and never more than `max_rounds`.

    A call faster than ROUND_TIME is repeated within each round (as timeit does), so that the rounds of
    a microsecond call still span `min_time`: a stall of a few milliseconds on a small, shared machine
    then spoils a few rounds, not the best of all of them."""
    loops = 1
    while min_time > 0 and loops < 1 << 20:
        begin = time.perf_counter()
        for _ in range(loops):
            call(inputs)
        if time.perf_counter() - begin >= ROUND_TIME:
            break
        loops *= 4
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < max_rounds:
        begin = time.perf_counter()
        for _ in range(loops):
            call(inputs)
        times.append((time.perf_counter() - begin) / loops)
        spent = time.perf_counter() - started
        if len(times) >= 3 and spent >= min_time:
            break
        if times[0] > min_time and (len(times) >= 3 or spent >= 5 * min_time):
            break
    return times


FULL, QUICK = 1.0, 0.1  # scales of `igcore bench` and `igcore bench --quick`


def run_case(case: Case, scale: float, progress: Callable[[str], None] = lambda _: None) -> list[Timing]:
    """Times every runner of `case`, after checking each one's answer against the reference's."""
    inputs = case.make_inputs(scale)
    with _backend.use_backend("python"):
        expected = case.run(inputs)
    min_time = 1.0 if scale >= FULL else 0.3
    timings = []
    for runner in case.runners():
        with runner.context():
            result = runner.call(inputs)  # warm-up, and the answer to check
            check = case.same if runner.backend else case.same_as_peer
            error = None
            if check is not None and not check(result, expected):
                error = "answer differs from the reference"
            answer = case.answer(result, inputs) if case.answer else None
            rounds = 3 if runner.slow else MAX_ROUNDS
            times = measure(runner.call, inputs, 0 if runner.slow else min_time, rounds)
        timings.append(Timing(runner.label, runner.backend, times, error, answer))
        progress(f"{case.name}: {runner.label} {format_time(min(times))}" + (f" [{error}]" if error else ""))
    return timings


def format_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return (
                f"{seconds / scale:.3g} {unit}" if seconds / scale < 100 else f"{seconds / scale:.0f} {unit}"
            )
    return f"{seconds / 1e-9:.0f} ns"


def format_table(case: Case, scale: float, timings: list[Timing]) -> str:
    """A table of times, with each runner's speed relative to the reference and to each peer
    (above 1x: faster than that one). Ratios use each runner's best time."""
    by_label = {t.runner: t for t in timings}
    reference = next((t for t in timings if t.backend == "python"), None)
    peers = [label for label in case.peers if label in by_label]
    answers = any(t.answer for t in timings)
    header = ["runner", "best", "median", "vs python", *(f"vs {p}" for p in peers)]
    header += ["answer"] if answers else []
    rows = []
    for t in timings:
        row = [t.runner, format_time(t.best), format_time(t.median)]
        row.append(f"{reference.best / t.best:.1f}x" if reference else "-")
        row += [f"{by_label[p].best / t.best:.1f}x" for p in peers]
        row += [t.answer or "-"] if answers else []
        if t.error:
            row[0] += f"  [{t.error}]"
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"{case.name}: {case.title(scale)}"]
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


# -- against an earlier run -----------------------------------------------------------------------------

SLOWER, FASTER = 1.25, 0.8  # changes of best time beyond these are marked: this machine is noisy


def read_baseline(path: str, scale: float) -> dict[str, Any]:
    """The JSON of an earlier ``igcore bench --json`` run, taken at `scale`; ValueError says what is wrong."""
    try:
        with open(path, encoding="utf-8") as source:
            baseline = json.load(source)
        taken = float(baseline["meta"]["scale"])
        cases = baseline["cases"]
        if not isinstance(cases, list):
            raise TypeError("cases is not a list")
    except OSError as exc:
        raise ValueError(f"--compare {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"--compare {path}: not the JSON of igcore bench --json ({exc})") from None
    if taken != scale:
        raise ValueError(f"--compare {path}: taken at scale {taken:g}, this run at {scale:g} (pass --scale)")
    return dict(baseline)


def format_comparison(baseline: dict[str, Any], cases: list[dict[str, Any]]) -> str:
    """Each runner's best time now beside its time in `baseline` (now / then: above 1 is slower), the
    changes beyond SLOWER and FASTER marked; cases and runners only one of the runs has are listed."""
    then = {
        (case["name"], result["runner"]): result["best_s"]
        for case in baseline["cases"]
        for result in case.get("results", [])
    }
    meta = baseline.get("meta", {})
    lines = [
        f"compared with the run of {meta.get('when', '?')} (igcore {meta.get('igcore', '?')}, "
        f"Python {meta.get('python', '?')}): now / then, best times"
    ]
    rows, seen = [], set()
    for case in cases:
        for result in case.get("results", []):
            key = (case["name"], result["runner"])
            seen.add(key)
            if key not in then:
                rows.append([*key, "-", format_time(result["best_s"]), "-", "new"])
                continue
            change = result["best_s"] / then[key]
            mark = "slower" if change > SLOWER else "faster" if change < FASTER else ""
            rows.append([*key, format_time(then[key]), format_time(result["best_s"]), f"{change:.2f}x", mark])
    ran = {name for name, _ in seen}
    for key in then:
        if key not in seen and key[0] in ran:
            rows.append([*key, format_time(then[key]), "-", "-", "not run now"])
    header = ["case", "runner", "then", "now", "change", ""]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        cells = [c.ljust(w) if i in (0, 1, 5) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines)
