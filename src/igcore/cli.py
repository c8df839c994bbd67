"""The ``igcore`` command: ``igcore info``, ``igcore bench`` and ``igcore serve``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time

import numpy as np

from . import __version__, _backend


def info() -> int:
    details = _backend.backend_info()
    python = f"Python {platform.python_version()} ({platform.machine()})"
    print(f"igcore {__version__} on {python}, numpy {np.__version__}")
    every = ", ".join(_backend.backends())
    print(f"IGCORE_BACKEND={details['requested']}; backends serving every hot path: {every}")
    for backend in _backend.BACKENDS:
        print(f"  {backend:7} {_describe(backend)}")
    print("hot paths:")
    for hot_path, state in details["hot_paths"].items():
        served = state["backend"] or f"none ({state.get('error')})"
        print(f"  {hot_path:10} served by {served}; available: {', '.join(state['available'])}")
        for backend, reason in state["unavailable"].items():
            print(f"  {'':10} {backend}: {reason}")
    return 0


def _describe(backend: str) -> str:
    serves = [h for h in _backend.HOT_PATHS if backend in _backend.available(h)]
    if backend == "rust" and serves:
        from . import _rust

        return f"available (igcore._rust {_rust.__version__}); serves {', '.join(serves)}"
    if serves:
        return f"available; serves {', '.join(serves)}"
    return "unavailable"


def bench(scale: float, json_path: str | None, only: str | None) -> int:
    from . import bench as registry

    cases = [c for c in registry.all_cases() if not only or only in c.name]
    if not cases:
        print(f"no benchmark matches {only!r}", file=sys.stderr)
        return 2
    print(f"igcore {__version__} bench at scale {scale:g}, {os.cpu_count()} CPUs", file=sys.stderr)
    report = []
    failed = False
    for number, case in enumerate(cases, 1):
        print(f"[{number}/{len(cases)}] {case.name}: preparing inputs", file=sys.stderr, flush=True)
        timings = registry.run_case(
            case, scale, progress=lambda line: print("  " + line, file=sys.stderr, flush=True)
        )
        print(registry.format_table(case, scale, timings) + "\n", flush=True)
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
        with open(json_path, "w") as out:
            json.dump({"meta": meta, "cases": report}, out, indent=1)
    return 1 if failed else 0


# What `igcore serve` imports: the web extra (psycopg too, for PostgreSQL; serve checks that one itself).
WEB_EXTRA = ("django", "uvicorn", "uvloop", "httptools", "orjson", "redis")


def serve(argv: list[str]) -> int:
    """``igcore serve``: igcore.web.serve, imported only here, so that info and bench need no Django."""
    missing = [module for module in WEB_EXTRA if importlib.util.find_spec(module) is None]
    if missing:
        print(
            f"igcore serve needs the web extra ({', '.join(missing)} missing): pip install 'igcore[web]'",
            file=sys.stderr,
        )
        return 2
    from .web.serve import main as serve_main

    return serve_main(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["serve"]:  # its options are its own: serve parses them
        return serve(arguments[1:])
    parser = argparse.ArgumentParser(prog="igcore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info", help="backends, versions and what serves each hot path")
    bench_parser = commands.add_parser(
        "bench", help="time every backend beside the reference and peer libraries"
    )
    bench_parser.add_argument(
        "--quick", action="store_true", help="inputs a tenth of full size, fewer rounds"
    )
    bench_parser.add_argument("--scale", type=float, help="inputs at this fraction of full size (1.0: full)")
    bench_parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench_parser.add_argument(
        "-k", dest="only", metavar="TEXT", help="only the cases whose name contains TEXT"
    )
    commands.add_parser(
        "serve",
        help="the web service (Mastodon's client API); --demo on a seeded network (igcore serve --help)",
    )
    args = parser.parse_args(arguments)
    if args.command == "info":
        return info()
    from .bench import FULL, QUICK

    scale = args.scale if args.scale is not None else (QUICK if args.quick else FULL)
    if not 0 < scale <= 10:
        parser.error("--scale must be in (0, 10]")
    return bench(scale, args.json, args.only)


if __name__ == "__main__":
    sys.exit(main())
