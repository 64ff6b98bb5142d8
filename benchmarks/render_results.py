"""Render ``benchmarks/results.csv`` into the results tables of ``benchmarks/RESULTS.md`` and ``README.md``.

The csv is the one place a current figure is written down; the tables are generated from it, between the
markers ``<!-- results:begin -->`` and ``<!-- results:end -->``, so they cannot drift apart (a test
compares them). RESULTS.md gets every row with its machine, commit and date; the README only the rows
marked ``readme = yes``.

    python benchmarks/render_results.py            # rewrite both tables
    python benchmarks/render_results.py --check    # exit 1 if a table is not what the csv renders
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CSV_PATH = REPO / "benchmarks" / "results.csv"
RESULTS_PATH = REPO / "benchmarks" / "RESULTS.md"
README_PATH = REPO / "README.md"
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"
COLUMNS = ("id", "what", "figure", "unit", "command", "machine", "commit", "date", "readme", "details")
REQUIRED = ("id", "what", "figure", "unit", "command", "machine", "commit", "date")


@dataclass(frozen=True, kw_only=True)
class Row:
    """One current figure: what was measured, the figure and its unit, and how and where it was measured.

    ``commit`` is the commit that recorded the figure (its code is what ran), ``details`` the page that
    tells how the figure came about."""

    id: str
    what: str
    figure: str
    unit: str
    command: str
    machine: str
    commit: str
    date: str
    readme: bool
    details: str


def load_rows(path: Path = CSV_PATH) -> list[Row]:
    """The rows of the csv, checked: every required column filled, ids unique, dates and commits well
    formed, ``details`` an existing file. A bad row is a ``ValueError`` naming it."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            msg = f"{path}: columns must be {', '.join(COLUMNS)}, got {reader.fieldnames}"
            raise ValueError(msg)
        raw = list(reader)
    rows: list[Row] = []
    seen: set[str] = set()
    for number, rec in enumerate(raw, start=2):
        where = f"{path.name} line {number} ({rec.get('id') or 'no id'})"
        for column in REQUIRED:
            if not (rec.get(column) or "").strip():
                msg = f"{where}: '{column}' is empty; every figure names its {column}"
                raise ValueError(msg)
        if rec["id"] in seen:
            msg = f"{where}: id {rec['id']!r} is used twice"
            raise ValueError(msg)
        seen.add(rec["id"])
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", rec["date"]):
            msg = f"{where}: date must be YYYY-MM-DD, got {rec['date']!r}"
            raise ValueError(msg)
        if not re.fullmatch(r"[0-9a-f]{7,40}|n/a", rec["commit"]):
            msg = f"{where}: commit must be a hash (7-40 hex digits) or 'n/a', got {rec['commit']!r}"
            raise ValueError(msg)
        if rec["readme"] not in ("yes", ""):
            msg = f"{where}: readme must be 'yes' or empty, got {rec['readme']!r}"
            raise ValueError(msg)
        if rec["details"] and not (path.parent.parent / rec["details"]).is_file():
            msg = f"{where}: details page {rec['details']} does not exist"
            raise ValueError(msg)
        text = {c: rec[c].strip() for c in COLUMNS if c != "readme"}
        rows.append(Row(**text, readme=rec["readme"] == "yes"))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _figure(row: Row) -> str:
    return f"{row.figure} {row.unit}"


def results_table(rows: list[Row], page: Path = RESULTS_PATH) -> str:
    """The full table for RESULTS.md: every row with machine, commit, date and a link to its details."""
    lines = [
        "| what | figure | command | machine | commit | date | details |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        link = ""
        if r.details:
            target = os.path.relpath(REPO / r.details, page.parent)
            link = f"[{Path(r.details).stem}]({target})"
        lines.append(
            f"| {_cell(r.what)} | {_cell(_figure(r))} | `{_cell(r.command)}` | {_cell(r.machine)} "
            f"| {r.commit} | {r.date} | {link} |"
        )
    return "\n".join(lines)


def readme_table(rows: list[Row]) -> str:
    """The short table for the README: one figure and one command per row."""
    lines = ["| what | figure | command |", "|---|---|---|"]
    lines += [f"| {_cell(r.what)} | **{_cell(_figure(r))}** | `{_cell(r.command)}` |" for r in rows if r.readme]
    return "\n".join(lines)


def splice(text: str, table: str, where: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        msg = f"{where}: needs the markers {BEGIN} and {END}, in this order"
        raise ValueError(msg)
    return f"{text[: start + len(BEGIN)]}\n{table}\n{text[end:]}"


def rendered(rows: list[Row]) -> dict[Path, str]:
    """What RESULTS.md and README.md should hold, as rendered from ``rows``."""
    return {
        RESULTS_PATH: splice(RESULTS_PATH.read_text(encoding="utf-8"), results_table(rows), str(RESULTS_PATH)),
        README_PATH: splice(README_PATH.read_text(encoding="utf-8"), readme_table(rows), str(README_PATH)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if a table is out of date")
    args = ap.parse_args(argv)
    rows = load_rows()
    stale = []
    for path, text in rendered(rows).items():
        if path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(REPO)) for p in stale)
        sys.stderr.write(
            f"out of date with benchmarks/results.csv: {names} (run python benchmarks/render_results.py)\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
