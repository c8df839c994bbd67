"""igcore's version. Its one source is the workspace version in Cargo.toml, which the Rust extension is
built with too. A checkout reads it from there; a built package holds a copy of this module with the
version written in (setup.py's build_py), since it has no Cargo.toml."""

from __future__ import annotations

import os
import re


def cargo_version(manifest: str) -> str:
    """The ``version`` of the ``[workspace.package]`` table in the Cargo manifest at `manifest`."""
    with open(manifest, encoding="utf-8") as source:
        text = source.read()
    # A regular expression, not tomllib: Python 3.10 has no TOML parser, and the table is ours.
    table = re.search(r"^\[workspace\.package\][ \t]*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = re.search(r'^version\s*=\s*"([^"]+)"', table.group(1), re.M) if table else None
    if found is None:
        raise RuntimeError(f"{manifest} states no version in its [workspace.package] table")
    return found.group(1)


__version__ = cargo_version(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "Cargo.toml"))
