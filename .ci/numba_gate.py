"""The numba rules of STYLE.md (rule 13) as a CI gate, in the manner of stumpy's ``test.sh``.

Fails, naming file and line, when the library code (pipeline/ nodes/ devices/ recordings/):

* passes ``fastmath`` (to anything) or ``parallel`` (to ``@njit``, ``@jit``, ``@vectorize`` ...) without an
  entry in ``numba-allow.toml`` for that function, option and value; both options can change a kernel's
  results, so each entry names the tests that compare the kernel with its reference;
* has an allow-list entry that no longer matches a use, or names a test that does not exist;
* calls ``print`` outside the command-line front ends listed in the same file.

The check reads the source (``ast``), imports nothing, and needs only the standard library:
``python .ci/numba_gate.py`` from anywhere (``bash .ci/numba-gate`` in CI).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ALLOW_FILE = Path(__file__).resolve().parent / "numba-allow.toml"
LIBRARY = ("pipeline", "nodes", "devices", "recordings")
NUMBA_DECORATORS = ("njit", "jit", "vectorize", "guvectorize", "cfunc", "stencil", "jitclass", "overload")
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True, kw_only=True)
class OptionUse:
    """One ``fastmath=``/``parallel=`` keyword: where, on which function, and its literal value."""

    path: str  # relative to the repository, with forward slashes
    line: int
    owner: str  # the function it decorates or sits in, "<module>" at top level
    option: str
    value: Any  # normalised literal (see ``normalise``), or the source text when it is not a literal

    @property
    def key(self) -> str:
        return f"{self.path}::{self.owner}"


def normalise(value: Any) -> Any:
    """Compare option values by meaning: flag collections as sorted tuples, ``True`` as itself."""
    if isinstance(value, set | frozenset | list | tuple):
        return tuple(sorted(str(v) for v in value))
    if isinstance(value, dict):
        return tuple(sorted((str(k), normalise(v)) for k, v in value.items()))
    return value


def _literal(node: ast.expr) -> Any:
    try:
        return normalise(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError):
        return ast.unparse(node)


def _is_off(value: Any) -> bool:
    return value is False or value is None or value == ()


def library_files(root: Path) -> Iterator[Path]:
    for package in LIBRARY:
        yield from sorted((root / package).rglob("*.py"))


def _owners(tree: ast.Module) -> dict[int, str]:
    """The innermost function or class around each node (by id), ``<module>`` at top level. A decorator
    belongs to the function it decorates."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            owner[id(child)] = name
            visit(child, child.name if isinstance(child, DEFINITIONS) else name)

    visit(tree, "<module>")
    return owner


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def option_uses(root: Path, files: Iterable[Path]) -> tuple[list[OptionUse], list[str]]:
    """Every risky numba option in ``files``, and the problems that make a use uncheckable."""
    uses: list[OptionUse] = []
    problems: list[str] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(), filename=rel)
        owner = _owners(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg is None and _called_name(node) in NUMBA_DECORATORS:
                        problems.append(
                            f"{rel}:{node.lineno}: numba options passed with ** cannot be checked: "
                            "write them as keywords"
                        )
                    elif kw.arg == "fastmath" or (kw.arg == "parallel" and _called_name(node) in NUMBA_DECORATORS):
                        value = _literal(kw.value)
                        if not _is_off(value):
                            name = owner.get(id(node), "<module>")
                            uses.append(OptionUse(path=rel, line=node.lineno, owner=name, option=kw.arg, value=value))
            elif isinstance(node, ast.Dict):
                for key in node.keys:
                    if isinstance(key, ast.Constant) and key.value == "fastmath":
                        problems.append(
                            f"{rel}:{node.lineno}: 'fastmath' in a dict: numba options must be written as "
                            "keywords on the decorator, where this gate can check them"
                        )
    return uses, problems


def defines_test(root: Path, test: str) -> bool:
    """Whether ``tests/test_x.py::test_name`` (or ``::Class::test_name``, any ``[params]`` dropped) is
    defined in that file."""
    file, _, name = test.partition("::")
    path = root / file
    if not name or not path.is_file():
        return False
    parts = name.split("[")[0].split("::")
    scope: list[ast.stmt] = ast.parse(path.read_text()).body
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef) if last else (ast.ClassDef,)
        found = next((n for n in scope if isinstance(n, kinds) and n.name == part), None)
        if found is None or (last and not part.startswith("test")):
            return False
        scope = found.body
    return True


def check_options(root: Path, allow: dict[str, Any]) -> list[str]:
    uses, errors = option_uses(root, library_files(root))
    entries = allow.get("option", [])
    matched: set[int] = set()
    for use in uses:
        same = [i for i, e in enumerate(entries) if e.get("kernel") == use.key and e.get("option") == use.option]
        matched.update(same)
        listed = [normalise(entries[i].get("value")) for i in same]
        where = f"{use.path}:{use.line}: {use.option}={use.value!r} on {use.owner}"
        if not same:
            errors.append(
                f"{where} is not in {ALLOW_FILE.name}: remove it, or add an entry naming the tests that "
                "compare this kernel with its reference"
            )
        elif use.value not in listed:
            errors.append(
                f"{where} differs from what {ALLOW_FILE.name} allows ({', '.join(map(repr, listed))}): "
                "rerun the reference tests and update the entry, or go back to the listed value"
            )
    for i, e in enumerate(entries):
        label = f"{ALLOW_FILE.name}: [[option]] {e.get('kernel')!r} ({e.get('option')})"
        missing = [k for k in ("kernel", "option", "value", "tests", "why") if k not in e]
        if missing:
            errors.append(f"{label}: needs {missing}")
            continue
        if i not in matched:
            errors.append(f"{label}: no such use in the code any more: remove the entry")
        if not e["tests"]:
            errors.append(f"{label}: names no reference test")
        errors += [f"{label}: test {t!r} does not exist" for t in e["tests"] if not defines_test(root, t)]
    return errors


def print_calls(root: Path, files: Iterable[Path]) -> Iterator[tuple[str, int, str]]:
    """``(path, line, top-level function or class)`` of every ``print(...)`` call."""
    for path in files:
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(), filename=rel)
        for top in tree.body:
            name = top.name if isinstance(top, DEFINITIONS) else "<module>"
            for node in ast.walk(top):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                    yield rel, node.lineno, name


def check_prints(root: Path, allow: dict[str, Any]) -> list[str]:
    allowed = {entry["where"] for entry in allow.get("print", [])}
    used: set[str] = set()
    errors = []
    for rel, line, name in print_calls(root, library_files(root)):
        where = next((w for w in (rel, f"{rel}::{name}") if w in allowed), None)
        if where is None:
            errors.append(
                f"{rel}:{line}: print() in library code: log it (logging) or return it to the command that prints"
            )
        else:
            used.add(where)
    errors += [
        f"{ALLOW_FILE.name}: [[print]] {w!r} prints nothing any more: remove the entry" for w in sorted(allowed - used)
    ]
    return errors


def check(root: Path = REPO, allow_file: Path = ALLOW_FILE) -> list[str]:
    """Every violation under ``root``, as one line each (empty: the gate passes)."""
    allow = tomllib.loads(allow_file.read_text())
    return check_options(root, allow) + check_prints(root, allow)


def main() -> int:
    errors = check()
    for line in errors:
        print(f"numba-gate: {line}", file=sys.stderr)
    if not errors:
        print("numba-gate: fastmath/parallel only where listed with reference tests; no print in library code")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
