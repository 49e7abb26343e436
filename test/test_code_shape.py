"""The code's shape, checked by reading it (ast, no imports): functions short enough to read, and
every test asserting something."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 80
# folders whose functions must stay under MAX_LINES (hirqa_ros/ to follow)
SHORT_FUNCTION_DIRS = ("training",)
# calls that check something: pytest.raises / warns / fail, np.testing.assert_*, x.assert_*()
CHECK_CALLS = ("raises", "warns", "fail")


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def long_functions(folder: Path, limit: int = MAX_LINES) -> list[str]:
    """``path:line name (N lines)`` of every function (nested ones too) longer than ``limit`` lines,
    counted from its ``def`` (decorators excluded) to its last line."""
    out = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for fn in _functions(tree):
            n = fn.end_lineno - fn.lineno + 1
            if n > limit:
                out.append(f"{path.relative_to(folder.parent)}:{fn.lineno} {fn.name} ({n} lines)")
    return out


def _checks_directly(fn: ast.AST) -> bool:
    """An ``assert``, or a call named like a check (``pytest.raises``, ``np.testing.assert_allclose``,
    ``mock.assert_called``), anywhere in ``fn``."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in CHECK_CALLS or name.startswith("assert"):
                return True
    return False


def _called_names(fn: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


def _checking_helpers(test_dir: Path) -> set[str]:
    """Names of the functions of test/ (test modules, helpers_*.py, conftest.py) that check something,
    directly or through another such function (a fixed point over the call graph, by name)."""
    defs: dict[str, list[ast.AST]] = {}
    for path in sorted(test_dir.glob("*.py")):
        for fn in _functions(ast.parse(path.read_text(), str(path))):
            defs.setdefault(fn.name, []).append(fn)
    checking = {n for n, fns in defs.items() if any(_checks_directly(f) for f in fns)}
    while True:
        more = {n for n, fns in defs.items() if n not in checking
                and any(_called_names(f) & checking for f in fns)}
        if not more:
            return checking
        checking |= more


def unchecked_tests(test_dir: Path) -> list[str]:
    """``file::test`` of every test function that neither asserts nor calls a function that does."""
    helpers = _checking_helpers(test_dir)
    out = []
    for path in sorted(test_dir.glob("test_*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for fn in _functions(tree):
            if fn.name.startswith("test_") and not (_checks_directly(fn) or _called_names(fn) & helpers):
                out.append(f"{path.name}::{fn.name}")
    return out


def test_no_function_over_80_lines():
    long = [f for d in SHORT_FUNCTION_DIRS for f in long_functions(ROOT / d)]
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_the_length_rule_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    found = long_functions(tmp_path, MAX_LINES)
    assert len(found) == 1 and " long (81 lines)" in found[0]


def test_every_test_checks_something():
    missing = unchecked_tests(ROOT / "test")
    assert not missing, "tests that assert nothing:\n" + "\n".join(missing)


def test_the_check_rule_sees_a_test_without_one(tmp_path):
    (tmp_path / "helpers_x.py").write_text("def verify(v):\n    assert v\n\n\ndef relay(v):\n    verify(v)\n")
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n\n"
        "def test_asserts():\n    assert 1\n\n\n"
        "def test_raises():\n    with pytest.raises(ValueError):\n        int('x')\n\n\n"
        "def test_through_helpers():\n    relay(1)\n\n\n"
        "def test_numpy():\n    np.testing.assert_allclose(1, 1)\n\n\n"
        "def test_prints_only():\n    print(1)\n"
    )
    assert unchecked_tests(tmp_path) == ["test_x.py::test_prints_only"]
