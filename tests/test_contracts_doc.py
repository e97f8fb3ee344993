"""docs/CONTRACTS.md against the code, so it cannot drift: its layer table is pyproject's
import-linter layers, every registry it names is a ``Registry`` in the module it names (and
every registry of the package is named), and the recipe contract's table lists exactly the
public members of :class:`benchmark.recipes.Recipe`."""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "CONTRACTS.md").read_text(encoding="utf-8")
TICKED = re.compile(r"`([^`]+)`")


def _section(heading: str) -> str:
    """The text of the ``## heading…`` section, up to the next ``##``."""
    start = DOC.index(f"## {heading}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start:] if end < 0 else DOC[start:end]


def _table(text: str, header: str) -> list[list[str]]:
    """The rows (cells) of the markdown table whose header row starts with ``header``."""
    lines = text[text.index(header):].splitlines()
    rows = []
    for line in lines[2:]:  # past the header and the |---| row
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _doc_layers() -> list[set[str]]:
    layers = []
    for _, modules in _table(DOC, "| layer | modules |"):
        for layer in modules.split("·"):
            layers.append({"benchmark." + m.rstrip("/") for m in TICKED.findall(layer)})
    return layers


def test_the_layer_table_is_pyprojects() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    expected = [{m.strip() for m in layer.split("|")} for layer in contract["layers"]]
    assert _doc_layers() == expected


def _named_registries() -> dict[str, str]:
    """{registry name: module} as the paragraph on extension points names them."""
    text = DOC[DOC.index("Every extension point"):]
    text = text[:text.index("\n\n")]
    out = {}
    for name, path in re.findall(r"`([A-Z_]+)`\s*\(`([\w/]+\.py)`", text):
        module = "benchmark." + path.removesuffix(".py").replace("/", ".")
        out[name] = module.removesuffix(".__init__")
    return out


def _registries_in_code() -> dict[str, str]:
    """{name: module} of every module-level ``NAME = Registry(...)`` of the package."""
    out = {}
    for path in sorted((REPO / "benchmark").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if not (isinstance(value, ast.Call) and getattr(value.func, "id", "") == "Registry"):
                continue
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            out[target.id] = module.removesuffix(".__init__")  # type: ignore[union-attr]
    return out


def test_every_registry_named_exists_and_every_registry_is_named() -> None:
    from benchmark.registry import Registry

    named = _named_registries()
    assert named, "no registry found in the paragraph on extension points"
    for name, module in named.items():
        obj = getattr(importlib.import_module(module), name, None)
        assert isinstance(obj, Registry), f"docs/CONTRACTS.md: {module}.{name}: no registry"
    assert named == _registries_in_code()


def _recipe_hooks() -> set[str]:
    rows = _table(_section("Recipe contract"), "| member | when | contract |")
    return {span.split("(")[0] for member, *_ in rows for span in TICKED.findall(member)}


def test_the_recipe_table_lists_exactly_the_recipe_members() -> None:
    from benchmark.recipes import Recipe

    hooks = _recipe_hooks()
    missing = sorted(h for h in hooks if not hasattr(Recipe, h))
    assert not missing, f"docs/CONTRACTS.md lists hooks Recipe does not have: {missing}"
    public = {k for k in vars(Recipe) if not k.startswith("_")}
    unlisted = sorted(public - hooks)
    assert not unlisted, f"Recipe members docs/CONTRACTS.md does not list: {unlisted}"


def test_the_checks_see_a_drift() -> None:
    """The parsers find what they check: a layer, a registry and a hook each."""
    assert {"benchmark.pipeline", "benchmark.prepare"} in _doc_layers()
    assert _named_registries()["RECIPES"] == "benchmark.recipes.base"
    assert {"finalize", "trains", "PARAMS"} <= _recipe_hooks()
