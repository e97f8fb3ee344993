"""The docs name only things that exist — the way ``report --check`` guards BENCHMARKS.md:

- every ``python -m benchmark.X`` command names an importable module;
- every backticked dotted name ``benchmark.x.y`` (with ``.attr`` or ``()``) resolves to a
  module and its attributes;
- every backticked repository path (``benchmark/...py``, ``slurm/local.yaml``, a path
  relative to ``benchmark/`` or to the doc's own folder) and every relative link exists;
- nothing points outside the repository (``../`` beyond its root, notes that are not in it).

Paths that runs create (``results/runs/<fp>/``, ``artifacts/``, ``datasets/data/``) and
paths inside other projects' repositories (cited with their owner/repo) are not files of
this one and are left out.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = sorted({REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("datasets/*.md"),
               REPO / "slurm" / "README.md", *REPO.glob("perf/*.md")})
#: first path components of this repository (and of ``benchmark/``) that a span may start with
TOP = {p.name for p in REPO.iterdir() if not p.name.startswith(".")} | {
    p.name for p in (REPO / "benchmark").iterdir() if not p.name.startswith("_")}
#: made by runs, never committed: named by the docs, not checked
RUNTIME = ("results/runs", "artifacts", "datasets/data", "runs/", "weights/",
           "results/leaderboard", "results/plots", "results/.slurm")
SPAN = re.compile(r"`([^`\n]+)`")
COMMAND = re.compile(r"python3? -m (benchmark(?:\.\w+)*)")
DOTTED = re.compile(r"^(benchmark(?:\.\w+)+)(?:\(.*\))?$")
#: ``store.record_checksum``, ``runtime.checkpoint_now()``: a name relative to ``benchmark``
RELATIVE = re.compile(r"^([a-z_]+(?:\.\w+)+)(?:\(.*\))?$")
MODULES = {p.stem for p in (REPO / "benchmark").iterdir()
           if p.suffix == ".py" or (p / "__init__.py").exists()} - {"__init__"}
FILE_SUFFIXES = {"json", "py", "yaml", "yml", "md", "pt", "png", "csv", "parquet", "html",
                 "lock", "tmp", "txt", "toml", "sh", "log", "jpg", "npz", "damaged"}
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*(\.\w+)?$")  # benchmark/recipes/NAME.py
PATH = re.compile(r"^[\w.-]+(?:/[\w.-]+)*/?$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
EXTERNAL = re.compile(r"\b[\w.-]+/[\w.-]+@|github\.com|gitlab\.com|\bupstream\b|\boriginal\b",
                      re.IGNORECASE)


def _rel(doc: Path) -> str:
    return str(doc.relative_to(REPO))


def _spans(doc: Path) -> list[tuple[int, str, str]]:
    """(line number, span, line) of every backticked span (code blocks: their commands)."""
    out, fenced = [], False
    for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            out += [(n, m.group(0), line) for m in COMMAND.finditer(line)]
        else:
            out += [(n, m.group(1).strip(), line) for m in SPAN.finditer(line)]
    return out


def _resolves(dotted: str) -> str | None:
    """Why ``benchmark.a.b.c`` does not resolve (None: it does): the longest importable
    module prefix, then attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ModuleNotFoundError:
            continue
        obj = importlib.import_module(name)
        for attr in parts[i:]:
            if attr in getattr(obj, "__dataclass_fields__", {}):
                obj = None  # a dataclass field (no class attribute without a default)
                continue
            if not hasattr(obj, attr):
                return f"{name} has no {'.'.join(parts[i:])}"
            obj = getattr(obj, attr)
        return None
    return "no such module"


def _path_exists(doc: Path, path: str) -> bool:
    path = path.rstrip("/")
    return any((base / path).exists() for base in (REPO, REPO / "benchmark", doc.parent,
                                                   REPO / "benchmark" / "grids"))


def _relative(span: str) -> str | None:
    """``benchmark.`` + ``span`` where it names code of one of the package's modules: a
    call (``recipes.parent_of(spec)``), a class (``protocol.DetectorCard``) or a submodule
    path (``report.published.X``) — not a file (``spec.json``) nor a record field
    (``provenance.cpu``, ``spec.benchmark``)."""
    m = RELATIVE.match(span)
    if not m or m.group(1).split(".", 1)[0] not in MODULES:
        return None
    parts = m.group(1).split(".")
    if parts[-1] in FILE_SUFFIXES:
        return None
    code = span.endswith(")") or any(p[:1].isupper() for p in parts) or len(parts) > 2
    return f"benchmark.{m.group(1)}" if code else None


def _is_repo_path(span: str) -> bool:
    if not PATH.match(span) or span.startswith(RUNTIME) or "/" not in span.rstrip("/"):
        return False
    if any(PLACEHOLDER.match(part) for part in span.rstrip("/").split("/")):
        return False
    return span.split("/", 1)[0] in TOP


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_module_function_command_and_file_the_docs_name_exists(doc: Path) -> None:
    wrong = []
    for n, span, line in _spans(doc):
        where = f"{_rel(doc)}:{n}: `{span}`"
        for m in COMMAND.finditer(span):
            if importlib.util.find_spec(m.group(1)) is None:
                wrong.append(f"{where}: no module {m.group(1)}")
        dotted = DOTTED.match(span) or _relative(span)
        if dotted and not COMMAND.search(span):
            why = _resolves(dotted.group(1) if isinstance(dotted, re.Match) else dotted)
            if why:
                wrong.append(f"{where}: {why}")
        elif _is_repo_path(span) and not EXTERNAL.search(line):
            if not _path_exists(doc, span):
                wrong.append(f"{where}: no such file in the repository")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_links_stay_in_the_repository_and_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    wrong: list[str] = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor
        path = (doc.parent / target.split("#", 1)[0]).resolve()
        if REPO not in path.parents and path != REPO:
            wrong.append(f"{_rel(doc)}: link {target} points outside the repository")
        elif not path.exists() and not str(path.relative_to(REPO)).startswith(RUNTIME):
            wrong.append(f"{_rel(doc)}: link {target} does not exist")
    for m in re.finditer(r"(?<![\w.])\.\./[\w./-]+", text):
        if REPO not in (doc.parent / m.group(0)).resolve().parents:
            wrong.append(f"{_rel(doc)}: {m.group(0)} is outside the repository")
    assert not wrong, "\n".join(wrong)


def test_the_checker_catches_what_it_should(tmp_path: Path) -> None:
    assert _resolves("benchmark.runtime.checkpoint_now") is None
    assert _resolves("benchmark.train.checkpoint_now") is not None
    assert _relative("store.record_checksum()") == "benchmark.store.record_checksum"
    assert _relative("provenance.cpu") is None  # a record field
    assert _relative("spec.json") is None and _relative("os.replace") is None
    assert _resolves("benchmark.slurm.checkpoint_hook") == "benchmark.slurm has no checkpoint_hook"
    assert _is_repo_path("benchmark/models/backbones.py")
    assert not _path_exists(REPO / "docs" / "CONTRACTS.md", "benchmark/models/backbones.py")
    assert _path_exists(REPO / "docs" / "CONTRACTS.md", "models/backbones/_base.py")
    assert not _is_repo_path("results/runs/x/record.json")
