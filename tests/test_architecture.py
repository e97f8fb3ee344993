"""The package's shape, enforced: the layered import contract in ``pyproject.toml`` holds
(no cycles, no upward imports), and no module grows past ~400 lines without saying why."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from benchmark.store import REPO_ROOT

MAX_LINES = 400
WHY = "over 400 lines because"


def test_import_layers_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--no-cache"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_long_modules_say_why() -> None:
    unexplained = []
    for path in sorted((REPO_ROOT / "benchmark").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        doc = " ".join((ast.get_docstring(ast.parse(text)) or "").split())
        if text.count("\n") > MAX_LINES and WHY not in doc:
            unexplained.append(f"{path.relative_to(REPO_ROOT)} ({text.count(chr(10))} lines)")
    assert not unexplained, unexplained
