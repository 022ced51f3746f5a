"""Rules of the code base that a test enforces, so they hold without anyone remembering them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSER_ONLY = frozenset({"js", "pyodide", "pyodide_js"})


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_browser_adapters_import_js_or_pyodide() -> None:
    """The core runs on CPython too: every js/pyodide import lives in pyapp/browser/ (the adapters)."""
    offenders = []
    for path in sorted((ROOT / "pyapp").rglob("*.py")):
        if (ROOT / "pyapp" / "browser") in path.parents:
            continue
        found = _imported_roots(path) & BROWSER_ONLY
        if found:
            offenders.append(f"{path.relative_to(ROOT)}: {sorted(found)}")
    assert offenders == []


def test_the_rule_sees_imports_anywhere_in_a_module(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    if True:\n        from pyodide.ffi import to_js\n    import js as j\n")
    assert _imported_roots(sample) >= {"pyodide", "js"}
