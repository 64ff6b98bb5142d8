"""benchmarks/results.csv is the one place a current figure is written: RESULTS.md's and the README's tables
must be what it renders, and every row must say how and where its figure was measured."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_results", REPO / "benchmarks" / "render_results.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_results"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


render = _renderer()


def test_the_results_tables_are_what_the_csv_renders() -> None:
    rows = render.load_rows()
    for path, text in render.rendered(rows).items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path.relative_to(REPO)} is out of date with benchmarks/results.csv: "
            "run python benchmarks/render_results.py"
        )


def test_every_current_figure_names_its_machine_command_and_commit() -> None:
    rows = render.load_rows()
    assert len(rows) >= 20
    for row in rows:
        assert row.machine.strip(), row.id
        assert row.command.startswith(("spikestream ", "python benchmarks/")), row.id
        assert row.commit, row.id
    assert any(row.readme for row in rows)


def test_the_readme_table_has_one_line_per_marked_row() -> None:
    rows = render.load_rows()
    table = render.readme_table(rows).splitlines()
    assert len(table) == 2 + sum(row.readme for row in rows)


@pytest.mark.parametrize("column", ["machine", "command"])
def test_a_row_without_its_machine_or_command_is_refused(tmp_path: Path, column: str) -> None:
    lines = (REPO / "benchmarks" / "results.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    record = next(iter(csv.DictReader(lines[:2])))
    record[column] = ""
    bad = tmp_path / "benchmarks" / "results.csv"
    bad.parent.mkdir()
    (tmp_path / record["details"]).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / record["details"]).write_text("details\n", encoding="utf-8")
    with bad.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerow(record)
    with pytest.raises(ValueError, match=f"'{column}' is empty"):
        render.load_rows(bad)
