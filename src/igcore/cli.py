"""The ``igcore`` command: ``igcore info``, ``igcore bench``, ``igcore serve``, ``igcore loadtest`` and
``igcore pipeline``."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import sys
import time
from typing import Any

import numpy as np

from . import __version__, _backend


def info(as_json: bool = False) -> int:
    details = _backend.backend_info()
    unserved = {h: state["error"] for h, state in details["hot_paths"].items() if state["backend"] is None}
    if as_json:
        environment = {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "machine": platform.machine(),
            "numpy": np.__version__,
            "backends": _backend.backends(),
        }
        print(json.dumps({**details, **environment}, indent=1))
    else:
        python = f"Python {platform.python_version()} ({platform.machine()})"
        print(f"igcore {__version__} on {python}, numpy {np.__version__}")
        every = ", ".join(_backend.backends())
        print(f"IGCORE_BACKEND={details['requested']}; backends serving every hot path: {every}")
        for backend in _backend.BACKENDS:
            print(f"  {backend:7} {_describe(backend)}")
        print("hot paths:")
        for hot_path, state in details["hot_paths"].items():
            served = state["backend"] or "none"
            print(f"  {hot_path:10} served by {served}; available: {', '.join(state['available'])}")
            for backend, reason in state["unavailable"].items():
                print(f"  {'':10} {backend}: {reason}")
    # A backend asked for by name that cannot serve every hot path is an error a script must see.
    for error in unserved.values():
        print(f"igcore: {error}", file=sys.stderr)
    return 1 if unserved else 0


def _describe(backend: str) -> str:
    serves = [h for h in _backend.HOT_PATHS if backend in _backend.available(h)]
    if backend == "rust" and serves:
        from . import _rust

        return f"available (igcore._rust {_rust.__version__}); serves {', '.join(serves)}"
    if serves:
        return f"available; serves {', '.join(serves)}"
    return "unavailable"


# `igcore loadtest` as a case of bench: a load run of the web service, not a call timed per backend.
WEB_CASE = "web.loadtest"
WEB_TITLE = "the web service under wrk, per backend"


def bench(
    scale: float, json_path: str | None, only: str | None, baseline: dict[str, Any] | None = None
) -> int:
    from . import bench as registry

    tables = sys.stderr if json_path == "-" else sys.stdout  # with the JSON on stdout, stdout is only JSON

    cases = [c for c in registry.all_cases() if not only or only in c.name]
    web = not only or only in WEB_CASE
    skipped = None
    if web:
        # Its quick run (a 2,000-account demo) is its smallest: below bench's quick scale it stays out.
        skipped = _loadtest_missing() or (
            f"it runs at bench's quick scale ({registry.QUICK:g}) or above"
            if scale < registry.QUICK
            else None
        )
        if skipped:
            print(f"{WEB_CASE} left out: {skipped}", file=sys.stderr)
            web = False
    if not cases and not web:
        if not skipped:
            print(f"no benchmark matches {only!r}", file=sys.stderr)
        return 2
    print(f"igcore {__version__} bench at scale {scale:g}, {os.cpu_count()} CPUs", file=sys.stderr)
    report: list[dict[str, Any]] = []
    failed = False
    total = len(cases) + web
    for number, case in enumerate(cases, 1):
        print(f"[{number}/{total}] {case.name}: preparing inputs", file=sys.stderr, flush=True)
        timings = registry.run_case(
            case, scale, progress=lambda line: print("  " + line, file=sys.stderr, flush=True)
        )
        print(registry.format_table(case, scale, timings) + "\n", file=tables, flush=True)
        failed = failed or any(t.error for t in timings)
        report.append(
            {
                "name": case.name,
                "title": case.title(scale),
                "results": [
                    {
                        "runner": t.runner,
                        "backend": t.backend,
                        "best_s": t.best,
                        "median_s": t.median,
                        "times_s": t.times,
                        "error": t.error,
                        "answer": t.answer,
                    }
                    for t in timings
                ],
            }
        )
    if baseline is not None:
        print(registry.format_comparison(baseline, report), file=tables, flush=True)
    if web:
        print(f"[{total}/{total}] {WEB_CASE}: igcore loadtest", file=sys.stderr, flush=True)
        case_report = _bench_loadtest(quick=scale < registry.FULL, tables=tables)
        failed = failed or case_report is None or bool(case_report["loadtest"]["errors"])
        if case_report is not None:
            report.append(case_report)
    if json_path:
        meta = {
            "igcore": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "scale": scale,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if json_path == "-":
            json.dump({"meta": meta, "cases": report}, sys.stdout, indent=1)
            print()
        else:
            with open(json_path, "w") as out:
                json.dump({"meta": meta, "cases": report}, out, indent=1)
    return 1 if failed else 0


def _bench_loadtest(quick: bool, tables: Any) -> dict[str, Any] | None:
    """The load run of ``igcore loadtest`` (``--quick`` at bench's quick scale): its table printed, its
    figures returned as a case of the bench JSON; None when it could not run (said on stderr)."""
    from .web.loadtest import LoadtestError, format_report, parse, run

    options = parse(["--quick"] if quick else [])
    try:
        figures = run(options, progress=lambda line: print("  " + line, file=sys.stderr, flush=True))
    except LoadtestError as exc:
        print(f"  {WEB_CASE}: {exc}", file=sys.stderr)
        return None
    print(f"{WEB_CASE}: {WEB_TITLE}\n{format_report(figures)}\n", file=tables, flush=True)
    return {"name": WEB_CASE, "title": WEB_TITLE, "loadtest": figures}


# What `igcore serve` imports: the web extra (psycopg too, for PostgreSQL; serve checks that one itself).
WEB_EXTRA = ("django", "uvicorn", "uvloop", "httptools", "orjson", "redis")


def _web_missing(command: str) -> str | None:
    """Why `igcore <command>` cannot run here (the web extra is missing), or None."""
    missing = [module for module in WEB_EXTRA if importlib.util.find_spec(module) is None]
    if missing:
        return (
            f"igcore {command} needs the web extra ({', '.join(missing)} missing): pip install 'igcore[web]'"
        )
    return None


def serve(argv: list[str]) -> int:
    """``igcore serve``: igcore.web.serve, imported only here, so that info and bench need no Django."""
    problem = _web_missing("serve")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from .web.serve import main as serve_main

    return serve_main(argv)


def _loadtest_missing() -> str | None:
    """Why `igcore loadtest` cannot run here (the web extra, or wrk, is missing), or None."""
    problem = _web_missing("loadtest")
    if problem:
        return problem
    from .web.loadtest import WRK_MISSING

    return WRK_MISSING if shutil.which("wrk") is None else None


def loadtest(argv: list[str]) -> int:
    """``igcore loadtest``: igcore.web.loadtest, wrk against ``igcore serve --demo``, per backend."""
    problem = _loadtest_missing()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from .web.loadtest import main as loadtest_main

    return loadtest_main(argv)


def pipeline(argv: list[str]) -> int:
    """``igcore pipeline``: the offline jobs of igcore.pipelines on a Dask cluster."""
    parser = argparse.ArgumentParser(
        prog="igcore pipeline",
        description="The offline jobs on Dask (igcore.pipelines), reading and writing Parquet.",
    )
    parser.add_argument(
        "--scheduler", metavar="ADDRESS", help="a running Dask scheduler (default: a local cluster)"
    )
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes of the local cluster (default: one a core)"
    )
    jobs = parser.add_subparsers(dest="job", required=True)
    dataset = "a Parquet file, a folder of them or a glob"
    rollup = jobs.add_parser("rollup", help="per-kind totals of an event log (key, kind[, delta])")
    rollup.add_argument("events", help=dataset)
    rollup.add_argument("--out", metavar="FOLDER", help="also write the totals there (kind, key, total)")
    graph = jobs.add_parser("build-graph", help="a follow-graph file from follows (src, dst[, ts])")
    graph.add_argument("edges", help=dataset)
    graph.add_argument("out", help="the graph file to write")
    suggest = jobs.add_parser("suggest-all", help="suggestions for every account of a graph file")
    suggest.add_argument("graph", help="a graph file (igcore pipeline build-graph, FollowGraph.save)")
    suggest.add_argument("out", help="the folder to write (user, rank, suggestion, score)")
    suggest.add_argument("--limit", type=int, default=20, help="suggestions per account (default 20)")
    suggest.add_argument("--method", choices=("common", "adamic_adar"), default="common")
    for job in (rollup, suggest):
        job.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    args = parser.parse_args(argv)
    if args.workers is not None and (args.workers < 1 or args.scheduler):
        parser.error("--workers takes a number of at least 1, for the local cluster (not with --scheduler)")
    from . import pipelines

    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print(pipelines.PIPELINES_MISSING, file=sys.stderr)
        return 2

    def progress(done: int, total: int) -> None:
        filled = 30 * done // max(total, 1)
        end = "\n" if done == total else ""
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} tasks", end=end, file=sys.stderr)

    with contextlib.ExitStack() as stack:
        if args.scheduler:
            client = stack.enter_context(Client(args.scheduler))
        else:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
            stack.enter_context(cluster)
            client = stack.enter_context(Client(cluster))
        try:
            if args.job == "rollup":
                totals = pipelines.rollup(args.events, client, args.out, args.overwrite, progress)
                for kind, found in totals.items():
                    print(f"{kind}: {len(found.keys):,} keys, {int(found.sums.sum()):,} in all")
            elif args.job == "build-graph":
                report = pipelines.build_graph(args.edges, args.out, client, progress)
                print(
                    f"{args.out}: {report.duplicates:,} repeated follows and {report.self_follows:,} "
                    "self-follows dropped"
                )
            else:
                rows = pipelines.suggest_all(
                    args.graph, args.out, args.limit, args.method, client, args.overwrite, progress=progress
                )
                print(f"{args.out}: {rows:,} suggestions")
        except (OSError, ValueError, OverflowError) as exc:
            print(f"igcore pipeline {args.job}: {exc}", file=sys.stderr)
            return 1
    return 0


EXIT_CODES = """exit codes:
  0    done
  1    failed: a backend that IGCORE_BACKEND names cannot serve every hot path (info), a benchmark
       runner gave a wrong answer (bench), the load run saw errors (bench, loadtest), a pipeline's
       input or output was refused (pipeline)
  2    cannot run: a usage error, no benchmark matches -k, a missing extra or tool (the web or
       pipelines extra, wrk), or the service or the load run could not start (serve, loadtest)
  130  interrupted by Ctrl-C or SIGTERM (serve, loadtest)

Progress goes to stderr; tables and JSON go to stdout."""


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["serve"]:  # its options are its own: serve parses them
        return serve(arguments[1:])
    if arguments[:1] == ["loadtest"]:  # likewise
        return loadtest(arguments[1:])
    if arguments[:1] == ["pipeline"]:  # likewise
        return pipeline(arguments[1:])
    parser = argparse.ArgumentParser(
        prog="igcore",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"igcore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    info_parser = commands.add_parser("info", help="backends, versions and what serves each hot path")
    info_parser.add_argument("--json", action="store_true", help="the same as JSON, on stdout")
    bench_parser = commands.add_parser(
        "bench", help="time every backend beside the reference and peer libraries"
    )
    bench_parser.add_argument(
        "--quick", action="store_true", help="inputs a tenth of full size, fewer rounds"
    )
    bench_parser.add_argument("--scale", type=float, help="inputs at this fraction of full size (1.0: full)")
    bench_parser.add_argument(
        "--json", metavar="FILE", help="also write the results as JSON (-: to stdout, the tables to stderr)"
    )
    bench_parser.add_argument(
        "-k", dest="only", metavar="TEXT", help="only the cases whose name contains TEXT"
    )
    bench_parser.add_argument(
        "--compare",
        metavar="FILE",
        help="then each runner's best time beside that of an earlier --json run (e.g. bench/baseline.json)",
    )
    commands.add_parser(
        "serve",
        help="the web service (Mastodon's client API); --demo on a seeded network (igcore serve --help)",
    )
    commands.add_parser(
        "pipeline",
        help="the offline jobs on Dask: rollup, build-graph, suggest-all (igcore pipeline --help)",
    )
    commands.add_parser(
        "loadtest",
        help="wrk against the demo service, per backend and beside its peer (igcore loadtest --help)",
    )
    args = parser.parse_args(arguments)
    if args.command == "info":
        return info(as_json=args.json)
    from .bench import FULL, QUICK

    scale = args.scale if args.scale is not None else (QUICK if args.quick else FULL)
    if not 0 < scale <= 10:
        parser.error("--scale must be in (0, 10]")
    baseline = None
    if args.compare is not None:
        from .bench import read_baseline

        try:
            baseline = read_baseline(args.compare, scale)
        except ValueError as exc:
            parser.error(str(exc))
    return bench(scale, args.json, args.only, baseline)


if __name__ == "__main__":
    sys.exit(main())
