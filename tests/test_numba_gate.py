"""The CI gate for numba options and prints (.ci/numba_gate.py) passes on this tree and fails where it
should: an unlisted fastmath or parallel use, a stale entry, an entry naming a missing test, a print."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("numba_gate", REPO / ".ci" / "numba_gate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["numba_gate"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


ALLOW = """
[[option]]
kernel = "nodes/k.py::fast"
option = "fastmath"
value = ["reassoc"]
why = "exact here"
tests = ["tests/test_k.py::test_fast_matches_reference"]

[[print]]
where = "pipeline/cli.py"
"""

KERNEL = """
import numba

@numba.njit(cache=True, fastmath={"reassoc"})
def fast(x):
    return x

@numba.njit(cache=True, fastmath=False, parallel=False)
def plain(x):
    return x
"""


def tree(tmp_path: Path, kernel: str = KERNEL, allow: str = ALLOW, cli: str = "print('hi')\n") -> Path:
    """A small repository: one kernel file, one CLI, one test file, and the allow-list."""
    for folder in ("pipeline", "nodes", "devices", "recordings", "tests"):
        (tmp_path / folder).mkdir()
    (tmp_path / "nodes" / "k.py").write_text(kernel)
    (tmp_path / "pipeline" / "cli.py").write_text(cli)
    (tmp_path / "tests" / "test_k.py").write_text("def test_fast_matches_reference():\n    assert True\n")
    (tmp_path / "allow.toml").write_text(allow)
    return tmp_path


def test_the_repository_passes_the_gate(gate: ModuleType) -> None:
    assert gate.check() == []


def test_every_listed_test_exists(gate: ModuleType) -> None:
    """A listed test that is renamed or deleted would leave a kernel unchecked: the gate says so."""
    import tomllib

    allow = tomllib.loads(gate.ALLOW_FILE.read_text())
    named = [t for entry in allow["option"] for t in entry["tests"]]
    assert named
    assert all(gate.defines_test(REPO, t) for t in named)


def test_a_small_tree_that_keeps_the_rules_passes(gate: ModuleType, tmp_path: Path) -> None:
    root = tree(tmp_path)
    assert gate.check(root, root / "allow.toml") == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param(
            {"kernel": KERNEL.replace('{"reassoc"}', "True")},
            "fastmath=True on fast differs from what",
            id="wider-fastmath",
        ),
        pytest.param(
            {"kernel": KERNEL.replace("fastmath=False", "fastmath=True")},
            "fastmath=True on plain is not in",
            id="unlisted-fastmath",
        ),
        pytest.param(
            {"kernel": KERNEL.replace("parallel=False", "parallel=True")},
            "parallel=True on plain is not in",
            id="unlisted-parallel",
        ),
        pytest.param(
            {"kernel": KERNEL + "\nopts = {'fastmath': True}\n"}, "'fastmath' in a dict", id="options-in-a-dict"
        ),
        pytest.param(
            {"kernel": KERNEL + "\nopts = dict(cache=True)\n@numba.njit(**opts)\ndef g(x):\n    return x\n"},
            "with **",
            id="options-by-kwargs",
        ),
        pytest.param(
            {"kernel": KERNEL.replace('fastmath={"reassoc"}', "")}, "no such use in the code any more", id="stale-entry"
        ),
        pytest.param(
            {"allow": ALLOW.replace("test_fast_matches_reference", "test_gone")},
            "test_gone' does not exist",
            id="missing-test",
        ),
        pytest.param(
            {"allow": ALLOW.replace('tests = ["tests/test_k.py::test_fast_matches_reference"]', "tests = []")},
            "names no",
            id="no-tests",
        ),
        pytest.param({"allow": ALLOW.replace('why = "exact here"\n', "")}, "needs ['why']", id="no-reason"),
        pytest.param(
            {"kernel": KERNEL + "\ndef report(x):\n    print(x)\n"},
            "nodes/k.py:13: print() in library code",
            id="print-in-library",
        ),
        pytest.param({"cli": "import sys\n"}, "'pipeline/cli.py' prints nothing any more", id="stale-print-entry"),
    ],
)
def test_the_gate_fails_on_each_broken_rule(gate: ModuleType, tmp_path: Path, change: dict, words: str) -> None:
    root = tree(tmp_path, **change)
    errors = gate.check(root, root / "allow.toml")
    assert len(errors) == 1, errors
    assert words in errors[0], errors


def test_a_test_name_is_found_by_its_definition_not_its_text(gate: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text(
        "# def test_in_a_comment(): pass\nclass TestGroup:\n    def test_method(self):\n        pass\n"
        "def helper():\n    pass\n"
    )
    assert gate.defines_test(tmp_path, "tests/test_a.py::TestGroup::test_method")
    assert gate.defines_test(tmp_path, "tests/test_a.py::TestGroup::test_method[param-1]")
    assert not gate.defines_test(tmp_path, "tests/test_a.py::test_in_a_comment")
    assert not gate.defines_test(tmp_path, "tests/test_a.py::helper")
    assert not gate.defines_test(tmp_path, "tests/test_a.py::test_method")
    assert not gate.defines_test(tmp_path, "tests/test_missing.py::test_method")
