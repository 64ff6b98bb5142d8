"""The results document of a run: totals, every node's report, and the nodes' results merged at the top."""

from __future__ import annotations

from typing import Any

from .config import GraphConfig


def summarize(
    graph: GraphConfig, reports: dict[str, Any], wall_s: float, stopped_by: str | None = None
) -> dict[str, Any]:
    """The results document: totals, every node's counters, and node results merged at the top;
    ``stopped_by`` names the signal that stopped the run (``SIGINT``, ``SIGTERM``), if one did."""
    sources = [r for r in reports.values() if r.get("source")]
    if sources:
        events_in = sum(r.get("counters", {}).get("events_out", 0) for r in sources)
    else:  # a node run alone (spikestream node) that is not a source: what it received
        events_in = max((r.get("counters", {}).get("events_in", 0) for r in reports.values()), default=0)
    reports = {n: _with_link_warnings(reports[n]) for n in graph.nodes if n in reports}
    out: dict[str, Any] = {
        "graph": graph.name,
        "transport": graph.transport,
        "events_in": events_in,
        "wall_s": round(wall_s, 6),
        "events_per_s": round(events_in / wall_s, 1) if wall_s > 0 else 0.0,
        "nodes": reports,
        "errors": {n: r["error"] for n, r in reports.items() if r.get("error")},
        # nodes that stopped (signal, failure upstream) before the end of their stream: the figures
        # above cover a part of it only
        "interrupted": [n for n, r in reports.items() if r.get("interrupted")],
        "stopped_by": stopped_by,
    }
    for r in reports.values():
        for key, value in (r.get("results") or {}).items():
            if key not in ("warnings", "summary"):  # those stay with their node
                out.setdefault(key, value)
    return out


def _with_link_warnings(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` with a warning (printed with the summary) for each kind of message its links refused as
    not belonging to the stream: they are rare and say that a peer is confused or hostile."""
    c = report.get("counters") or {}
    said = []
    if c.get("duplicates"):
        said.append(f"duplicate messages dropped: {c['duplicates']:,} (a peer sent a sequence number twice)")
    if c.get("jumps"):
        said.append(f"messages dropped for a far sequence jump: {c['jumps']:,} (not counted as lost)")
    if not said:
        return report
    results = dict(report.get("results") or {})
    results["warnings"] = [*results.get("warnings", ()), *said]
    return report | {"results": results}
