"""The follow-graph file: built from the ``Follow`` table, mapped by every worker.

The file holds the follows as of a point in the follow-event stream (``igcore.web.keys.GRAPH_EVENTS``);
the stream id is written beside it (``<path>.events``). A worker maps the file, then applies the
events after that id, so it serves the database's follows without reading the table.
"""

from __future__ import annotations

import os

import numpy as np

from igcore.graph import FollowGraph

from .models import Follow


def events_path(graph_path: str) -> str:
    return graph_path + ".events"


def write_graph_file(graph_path: str, stream_id: str = "0-0") -> int:
    """Builds the graph of every follow in the database and saves it at `graph_path` (a rename, so
    workers that map the old file keep reading it). `stream_id`: the last follow event the database
    held when it was read (read it before reading the table: events applied twice are harmless).
    Returns the number of follows."""
    rows = np.array(list(Follow.objects.values_list("account_id", "target_account_id", "id")), dtype=np.int64)
    rows = rows.reshape(-1, 3)
    graph = FollowGraph.from_edges(rows[:, 0], rows[:, 1], timestamps=rows[:, 2])
    graph.save(graph_path)
    partial = events_path(graph_path) + ".partial"
    with open(partial, "w") as out:
        out.write(stream_id + "\n")
    os.replace(partial, events_path(graph_path))
    return graph.num_follows


def read_stream_id(graph_path: str) -> str:
    try:
        with open(events_path(graph_path)) as source:
            return source.read().strip() or "0-0"
    except FileNotFoundError:
        return "0-0"
