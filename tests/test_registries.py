"""Every entry of every registry is built and checked, timm-style: an entry is tested the day
it is registered. Backbones: ``tests/test_backbones.py``; families and summary metrics:
``tests/test_families.py``; here: recipes, engines and dataset preparers, and the declared
names of the engine and backbone registries against what their modules register."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import benchmark.models
from benchmark.data import load_preparers
from benchmark.errors import ConfigError
from benchmark.models import BACKBONES, ENGINES
from benchmark.models.engine import engine_needs_masks
from benchmark.models.registries import OPTIONAL_ENGINES
from benchmark.recipes import RECIPES, get_recipe, parent_of
from benchmark.registry import Registry
from benchmark.spec import BackboneSpec, RecipeSpec, RunSpec, Schedule
from benchmark.store import REPO_ROOT

CELL = RunSpec(
    family="demo",
    engine="frcnn_fpn_small",
    backbone=BackboneSpec("resnet18", "none"),
    recipe=RecipeSpec("ft"),
    train_split="demo_train",
    id_split="demo_test",
    ood_splits=(),
    corruption=None,
    schedule=Schedule(iterations=2, batch_size=2, lr=0.01, train_sizes=(96,), test_size=96,
                      max_size=96),
    seed=0,
)
IMAGE = torch.rand(3, 96, 96)
TARGET = {"boxes": torch.tensor([[10.0, 10.0, 60.0, 70.0]]), "labels": torch.tensor([2])}


@pytest.mark.parametrize("name", ENGINES.names())
def test_engine_meets_the_contract(name: str) -> None:
    """0-based labels in and out, a loss dict that backpropagates into the body, the body's
    state by body-relative names, and decoder probing that stops the body's gradient."""
    check = getattr(ENGINES.get(name), "check_available", None)
    if check is not None:  # an optional engine (detectron2): skipped, saying why, without it
        try:
            check()
        except ConfigError as e:
            pytest.skip(str(e))
    torch.manual_seed(0)
    model = ENGINES.get(name)(replace(CELL, engine=name), 3)
    target = TARGET
    if engine_needs_masks(name):  # Mask R-CNN: the box's pixels as the instance mask
        mask = torch.zeros(1, 96, 96, dtype=torch.uint8)
        mask[0, 10:70, 10:60] = 1
        target = {**TARGET, "masks": mask}
    losses = model.losses([IMAGE], [target])
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert any(p.grad is not None for _, p in model.body_parameters())
    (out,) = model.predict([IMAGE])
    assert {"boxes", "labels", "scores"} <= set(out)
    assert out["labels"].numel() == 0 or 0 <= int(out["labels"].min()) <= 2
    assert set(model.body_state(model.state_dict())) == set(model.body.state_dict())
    body = {id(p) for _, p in model.body_parameters()}
    assert body and not body & {id(p) for _, p in model.decoder_parameters()}
    model.zero_grad(set_to_none=True)
    model.set_detach_body(True)
    sum(model.losses([IMAGE], [target]).values()).backward()
    assert all(p.grad is None for _, p in model.body_parameters())
    assert any(p.grad is not None for _, p in model.decoder_parameters())


@pytest.mark.parametrize("name", RECIPES.names())
def test_recipe_entry(name: str) -> None:
    recipe = get_recipe(RecipeSpec(name))
    assert set(recipe.params) == set(recipe.PARAMS)
    spec = replace(CELL, recipe=RecipeSpec(name))
    try:
        recipe.check(spec)
    except ConfigError:  # a recipe for attention backbones only (relevance): a ViT cell
        spec = replace(spec, backbone=BackboneSpec("vit_base_patch16", "none"))
        recipe.check(spec)
    chain = [spec]
    while (parent := parent_of(chain[-1])) is not None:  # every parent is a registered recipe
        assert parent.recipe.name in RECIPES and len(chain) < 5
        chain.append(parent)
    torch.manual_seed(0)
    model = ENGINES.get(spec.engine)(spec, 3)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    recipe.configure(model, start, None if not recipe.needs_importance else _importance(model))
    groups = recipe.param_groups(model, 0.01)
    params = [p for g in groups for p in g["params"]]
    assert params and all(p.requires_grad for p in params)
    assert len({id(p) for p in params}) == len(params)  # no tensor in two groups


def _importance(model) -> dict[str, dict[str, torch.Tensor]]:
    maps = {n: torch.ones_like(p) for n, p in model.body_parameters()}
    return {"rgn": maps, "ewc": maps}


def test_unknown_recipe_parameters_are_rejected() -> None:
    from benchmark.errors import ConfigError

    for name in RECIPES.names():
        with pytest.raises(ConfigError, match="unknown parameter 'nope'"):
            get_recipe(RecipeSpec.make(name, nope=1))


@pytest.mark.parametrize("name", load_preparers().names())
def test_preparer_entry(name: str) -> None:
    """Every dataset has a command line and a card that names its command."""
    from benchmark.prepare import build_parser

    preparer = load_preparers().get(name)
    assert (preparer.__doc__ or "").strip(), "the first docstring line is the command's help"
    build_parser().parse_args([name, "--raw", "/nonexistent"] if name != "demo" else [name])
    cards = "\n".join(p.read_text() for p in (REPO_ROOT / "datasets").glob("*.md"))
    assert re.search(rf"benchmark\.prepare [^`]*\b{name}\b", cards), f"no card names {name}"


def test_dataset_cards_exist_for_every_card_link() -> None:
    index = (REPO_ROOT / "datasets" / "README.md").read_text()
    for link in re.findall(r"\]\(([\w.]+\.md)\)", index):
        assert Path(REPO_ROOT / "datasets" / link).is_file(), link


@pytest.mark.parametrize("registry", [ENGINES, BACKBONES], ids=lambda r: r.kind)
def test_every_built_in_name_is_declared_with_the_module_that_registers_it(
        registry: Registry[object]) -> None:
    """Each declared name is registered by its declared module and by no other, and every
    name a module of ``benchmark.models`` registers is declared: ``names()`` is complete
    before anything is imported, and ``get`` imports the right module."""
    for module in pkgutil.walk_packages(benchmark.models.__path__, "benchmark.models."):
        importlib.import_module(module.name)
    by = {name: registry.registered_by(name) for name in registry.names()}
    assert {n: m for n, m in by.items() if m and m.startswith("benchmark.")} == \
        registry.declarations()


def test_only_optional_engines_check_their_packages() -> None:
    """Grid validation loads only :data:`OPTIONAL_ENGINES` to call ``check_available``."""
    declared = ENGINES.declarations()
    assert set(OPTIONAL_ENGINES) <= set(declared)
    assert {n for n in declared if hasattr(ENGINES.get(n), "check_available")} == \
        set(OPTIONAL_ENGINES)


def test_names_need_no_import_and_get_imports_the_declaring_module() -> None:
    code = """
import sys
from benchmark.models import BACKBONES, ENGINES
assert "frcnn_fpn" in ENGINES and "resnet18" in BACKBONES.names()
BACKBONES.require("vit_base_patch16")
assert "torch" not in sys.modules and "benchmark.models.torchvision_frcnn" not in sys.modules
ENGINES.get("frcnn_fpn")
assert "benchmark.models.torchvision_frcnn" in sys.modules
assert "benchmark.models.detectron2_engine" not in sys.modules
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_declared_name_is_filled_by_its_module(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "probe_things.py").write_text(
        "from benchmark.registry import Registry\n"
        "THINGS = Registry('thing')\n"
        "THINGS.declare('late', 'probe_things_late')\n"
        "THINGS.declare('missing', 'probe_things_late')\n")
    (tmp_path / "probe_things_late.py").write_text(
        "from probe_things import THINGS\nTHINGS.register('late')(42)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        things = importlib.import_module("probe_things").THINGS
        assert things.names() == ["late", "missing"] and "late" in things
        assert things.registered_by("late") is None and "probe_things_late" not in sys.modules
        with pytest.raises(ConfigError, match=r"unknown thing 'no' \(known: late, missing\)"):
            things.require("no")
        assert things.get("late") == 42 and things.registered_by("late") == "probe_things_late"
        with pytest.raises(ValueError, match="already registered"):
            things.register("late")(43)
        with pytest.raises(LookupError, match="registered by probe_things_late, which did not"):
            things.get("missing")
        things.register("missing")(7)
        assert things.get("missing") == 7 and things.in_order() == [42, 7]
    finally:
        for name in ("probe_things", "probe_things_late"):
            sys.modules.pop(name, None)
