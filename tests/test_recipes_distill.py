"""Counterfactual feature distillation (cf_kd), its FT + KD baseline and the LP-FT alias."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from benchmark.data.split import load_split
from benchmark.errors import ConfigError
from benchmark.grid import load_grid
from benchmark.recipes import RECIPES, get_recipe, parent_of
from benchmark.recipes.distill import chosen_patches, counterfactual
from benchmark.report.names import recipe_display
from benchmark.spec import RecipeSpec
from benchmark.store import TrainingDir
from benchmark.training import Trainer
from tests.conftest import TESTS


def one_cell_grid(tmp_path: Path, recipe: dict[str, Any], backbone: dict[str, Any] | None = None,
                  **schedule: Any) -> Path:
    """tests/grids/resume.yaml with one recipe (and backbone, schedule keys) replaced."""
    doc = yaml.safe_load((TESTS / "grids" / "resume.yaml").read_text())
    exp = doc["experiments"][0]
    exp["recipes"] = [recipe]
    if backbone is not None:
        exp["backbones"] = [backbone]
    exp["schedule"].update(schedule)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_counterfactual_replaces_exactly_the_chosen_patches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 5, 6, generator=g)  # H = 5: the last patch row is partial
    chosen = torch.zeros(3, 3, 3, dtype=torch.bool)  # 2-px patches: a 3 × 3 grid
    chosen[0, 0, 0] = chosen[0, 2, 2] = chosen[2, 1, 0] = True
    source = torch.tensor([1, 2, 0])
    out = counterfactual(x, chosen, 2, source)
    for i in range(3):
        for r in range(5):
            for c in range(6):
                expected = x[source[i], :, r, c] if chosen[i, r // 2, c // 2] else x[i, :, r, c]
                assert torch.equal(out[i, :, r, c], expected), (i, r, c)
    assert int((out != x).any(1).sum()) == 4 + 2 + 4  # pixels of (0,0), (2,2) partial, (1,0)
    zero = counterfactual(x, chosen, 2, None)  # a batch of one: filled with the pixel mean
    assert zero[0, :, :2, :2].abs().sum() == 0 and torch.equal(zero[1], x[1])


def test_object_and_context_patches_from_box_coverage():
    # 4 × 6 tensor, 2-px patches; the box covers patch (0, 0) whole and half of patch (0, 1)
    boxes = [torch.tensor([[0.0, 0.0, 3.0, 2.0]]), torch.zeros(0, 4)]
    obj = chosen_patches(boxes, 4, 6, 2, 0.3, context=False)
    assert obj[0].tolist() == [[True, True, False], [False, False, False]]
    assert not obj[1].any()  # no box, no object patch (as rf's all-zero CAM)
    strict = chosen_patches(boxes, 4, 6, 2, 0.6, context=False)  # coverage 0.5 ≤ 0.6
    assert strict[0].tolist() == [[True, False, False], [False, False, False]]
    ctx = chosen_patches(boxes, 4, 6, 2, 0.3, context=True)
    assert torch.equal(ctx, ~obj)


def test_lp_ft_is_dp_ft_under_its_classification_name(tmp_path):
    assert RECIPES.get("lp_ft") is RECIPES.get("dp_ft")
    lp = get_recipe(RecipeSpec.make("lp_ft", dp_lr=0.02))
    assert lp.parent_recipe() == RecipeSpec.make("dp", lr=0.02)
    assert recipe_display("lp_ft") == "LP-FT"
    spec = load_grid(str(one_cell_grid(tmp_path, {"name": "lp_ft"})), resolve_data=False).runs[0]
    assert parent_of(spec).recipe == RecipeSpec("dp")
    # one cell under either name: the same fingerprint, so one training
    dp_ft = load_grid(str(one_cell_grid(tmp_path, {"name": "dp_ft"})), resolve_data=False).runs[0]
    assert spec.recipe.name == "dp_ft" and spec.fingerprint == dp_ft.fingerprint


@pytest.mark.parametrize(("params", "match"), [
    ({"weight": -1}, "weight=-1: must be a number >= 0"),
    ({"threshold": 1.5}, "threshold=1.5: must be a number >= 0 and <= 1"),
    ({"patch": 16.5}, "patch=16.5: must be a whole number"),
    ({"masking": "random"}, "masking='random'"),
])
def test_bad_cf_kd_parameters_are_named(params, match):
    with pytest.raises(ConfigError, match=match):
        get_recipe(RecipeSpec.make("cf_kd", **params))


def _trainer(tmp_path: Path, recipe: dict[str, Any], **schedule: Any) -> Trainer:
    spec = load_grid(str(one_cell_grid(tmp_path, recipe, **schedule))).runs[0]
    return Trainer(spec, load_split(spec.train_split), TrainingDir("t", tmp_path / "out"))


def test_ft_kd_is_zero_at_the_start_and_positive_after_a_weight_change(bench_env, tmp_path):
    trainer = _trainer(tmp_path, {"name": "ft_kd"})
    model = trainer.build(None)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    recipe = trainer.recipe
    recipe.configure(model, start, None)
    images, targets = trainer.batch(0)
    model.losses(images, targets)
    assert recipe.extra_losses(model, images, targets)["loss_distill"].item() == 0.0
    name, p = model.body_parameters()[-1]
    with torch.no_grad():
        p.add_(0.05)
    model.losses(images, targets)
    kd = recipe.extra_losses(model, images, targets)["loss_distill"]
    assert kd.item() > 0 and kd.requires_grad
    kd.backward()
    assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.state_dict().keys() == start.keys()  # the teacher is not a submodule


def test_cf_kd_trains_a_few_iterations_and_distils_after_the_first(bench_env, tmp_path):
    trainer = _trainer(tmp_path, {"name": "cf_kd", "lr": 0.002}, iterations=3,
                       checkpoint_every=100, train_sizes=[160])
    trainer.run(progress=False)
    log = trainer.log
    assert [e["iter"] for e in log] == [0, 2]
    assert log[0]["loss_distill"] == 0.0  # student == teacher at step 0
    assert 0 < log[-1]["loss_distill"] < 30 and all(torch.isfinite(torch.tensor(e["loss"]))
                                                    for e in log)
    assert trainer.recipe.capture is None  # hooks removed by finalize


# ---- known answers on a stub detector ---------------------------------------------------------
class _Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.s = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s * x


class _Body(nn.Module):
    """Two levels of the scaled input: ``a`` = s·x, ``b`` = s·x + 1."""

    channel_order = "RGB"

    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.ModuleList([_Scale()])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.stages[0](x)
        return {"a": y, "b": y + 1}


class _StubDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _Body()

    def losses(self, images, targets):
        return {"loss": self.body(torch.stack(images))["a"].sum()}

    def body_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k.removeprefix("body."): v for k, v in state.items() if k.startswith("body.")}


# two 1 × 2 × 4 images, 2-px patches (a 1 × 2 grid): image 0 all 1 with a box on its left
# patch, image 1 all 2 with no box (no object patch: rf's all-zero CAM)
IMAGES = [torch.ones(1, 2, 4), torch.full((1, 2, 4), 2.0)]
TARGETS = [{"boxes": torch.tensor([[0.0, 0.0, 2.0, 2.0]]), "labels": torch.tensor([0])},
           {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]


def _stub_recipe(name: str, **params: Any):
    """The recipe configured at θ0 (s = 1), the student moved to s = 2 (as after training or
    on a resume: the teacher must be θ0 from ``start_state``, not the body it is given)."""
    model = _StubDetector()
    recipe = get_recipe(RecipeSpec.make(name, **params))
    with torch.no_grad():
        model.body.stages[0].s.fill_(2.0)
    recipe.configure(model, {"body.stages.0.s": torch.tensor(1.0)}, None)
    model.losses(IMAGES, TARGETS)  # the step's forward: the recipe captures the batch
    return recipe, model


def test_cf_kd_fills_the_object_patches_from_the_other_image():
    """rf masking.py:169-170 (``images * ~mask + images[idx] * mask``, idx another image):
    image 0's left patch comes from image 1 (value 2), the rest of image 0 and all of image 1
    (no box, no patch chosen) unchanged. With a batch of 2 the other image is image 1 on
    every draw."""
    recipe = get_recipe(RecipeSpec.make("cf_kd", patch=2))
    x = torch.stack(IMAGES)
    boxes = [t["boxes"] for t in TARGETS]
    for seed in range(5):
        torch.manual_seed(seed)
        out = recipe.input_for(x, boxes)
        assert out[0, 0].tolist() == [[2.0, 2.0, 1.0, 1.0]] * 2
        assert torch.equal(out[1], x[1])


def test_cf_kd_never_fills_an_image_from_itself():
    """Three images, every patch chosen (one box over each image): every image becomes one of
    the two others, never itself, and both others are drawn (the non-zero cyclic shift)."""
    recipe = get_recipe(RecipeSpec.make("cf_kd", patch=2))
    x = torch.stack([torch.full((1, 2, 4), float(i)) for i in range(3)])
    boxes = [torch.tensor([[0.0, 0.0, 4.0, 2.0]])] * 3
    sources = set()
    for seed in range(20):
        torch.manual_seed(seed)
        out = recipe.input_for(x, boxes)
        got = [int(out[i].unique().item()) for i in range(3)]
        assert all(g != i for i, g in enumerate(got)), got
        sources.add(tuple(got))
    assert sources == {(1, 2, 0), (2, 0, 1)}


def test_cf_kd_loss_by_hand():
    """rf: ``w_distill · MSE(student(masked), teacher(masked))`` (trainers/distill_trainer.py:
    76-84, 111; weight 30, main_distill.py:47) per level, the level MSEs averaged; with
    ``relative`` (default) each divided by the mean square of the teacher's level.

    The counterfactual x' (above) has 12 pixels of 2 and 4 of 1. Student s = 2, teacher
    s = 1: level a: 2x' vs x', MSE = mean(x'²) = (12·4 + 4·1)/16 = 3.25, the teacher's mean
    square 3.25: ratio 1. Level b: 2x' + 1 vs x' + 1, MSE 3.25, teacher's mean square
    (12·9 + 4·4)/16 = 7.75: ratio 13/31. Relative: 30 · (1 + 13/31)/2 = 660/31; plain:
    30 · 3.25 = 97.5. The gradient on s: 30 · (s − 1) · (1 + 13/31) = 1320/31 > 0 (back
    towards the teacher)."""
    recipe, model = _stub_recipe("cf_kd", patch=2)
    loss = recipe.extra_losses(model, IMAGES, TARGETS)["loss_distill"]
    assert loss.item() == pytest.approx(660 / 31, rel=1e-6)
    loss.backward()
    assert model.body.stages[0].s.grad.item() == pytest.approx(1320 / 31, rel=1e-6)
    recipe, model = _stub_recipe("cf_kd", patch=2, relative=False)
    assert recipe.extra_losses(model, IMAGES, TARGETS)["loss_distill"].item() == \
        pytest.approx(97.5, rel=1e-6)


def test_ft_kd_loss_by_hand():
    """rf's FT + FD (``fd``, distill_trainer.py:71-75): the same on the unmodified batch,
    8 pixels of 1 and 8 of 2. Level a: mean(x²) = 2.5, ratio 1; level b: teacher's mean
    square (8·4 + 8·9)/16 = 6.5, ratio 5/13. Relative: 30 · (1 + 5/13)/2 = 270/13; plain
    30 · 2.5 = 75."""
    recipe, model = _stub_recipe("ft_kd")
    assert recipe.extra_losses(model, IMAGES, TARGETS)["loss_distill"].item() == \
        pytest.approx(270 / 13, rel=1e-6)
    recipe, model = _stub_recipe("ft_kd", relative=False)
    assert recipe.extra_losses(model, IMAGES, TARGETS)["loss_distill"].item() == \
        pytest.approx(75.0, rel=1e-6)
