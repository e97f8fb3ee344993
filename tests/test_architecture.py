"""The package's shape, enforced: the layered import contract in ``pyproject.toml`` holds
(no upward imports), no two modules import each other through any path — package faces
(``__init__``) and imports inside functions included — and every module's docstring says
what it is for (a module past ~400 lines is a warning, not a failure)."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

from benchmark.store import REPO_ROOT

MAX_LINES = 400


def test_import_layers_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    import grimp

    g = grimp.build_graph("benchmark", exclude_type_checking_imports=True)
    graph = {m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}
    assert _cycles(graph) == []
    # the check itself: a package face imported back by the module it registers is a cycle
    assert _cycles({"pkg": ["pkg.mod"], "pkg.mod": ["pkg"]}) == [["pkg", "pkg.mod"]]


def test_every_module_opens_with_its_job() -> None:
    """Each module's docstring states what it is for (a sentence, not a bare title)."""
    silent = []
    for path in sorted((REPO_ROOT / "benchmark").rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if len(doc.split()) < 4:
            silent.append(str(path.relative_to(REPO_ROOT)))
    assert not silent, silent


def test_long_modules_are_named() -> None:
    """The line count is an alarm, not the rule: a module past ~400 lines is reported as a
    warning (a room that may hold two jobs), never a failure."""
    for path in sorted((REPO_ROOT / "benchmark").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES:
            warnings.warn(f"{path.relative_to(REPO_ROOT)}: {lines} lines — one job?",
                          stacklevel=1)
