"""WiSE-FT as a sweep: one DP and one DP-FT training serve every α; α = 0 is DP's weights
and α = 1 DP-FT's, bit for bit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.errors import ConfigError
from benchmark.grid import load_grid
from benchmark.pipeline import train_stage
from benchmark.recipes import parent_of
from benchmark.spec import RecipeSpec
from benchmark.store import TrainingDir
from tests.conftest import TINY_GRID

ALPHAS = [0, 0.25, 0.5, 0.75, 1]


def _grid(tmp_path: Path, recipes: list[dict]) -> Path:
    doc = yaml.safe_load(TINY_GRID.read_text())
    exp = doc["experiments"][0]
    exp["backbones"] = exp["backbones"][:1]  # efficientnet_lite0
    exp["recipes"] = recipes
    exp["schedule"].update(iterations=2, checkpoint_every=2, rgn_batches=1)
    path = tmp_path / "wise.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_alpha_list_expands_to_one_cell_per_alpha_sharing_one_dp_ft(tmp_path: Path):
    grid = load_grid(str(_grid(tmp_path, [{"name": "wise_ft", "dp_lr": 0.02,
                                           "alpha": ALPHAS}])), resolve_data=False)
    cells = grid.runs
    # α = 0 and α = 1 are the DP and DP-FT cells (the mix is exact there): 3 mixes + 2 ends
    assert [c.recipe.name for c in cells] == ["dp", "wise_ft", "wise_ft", "wise_ft", "dp_ft"]
    assert [c.recipe.get("alpha") for c in cells[1:4]] == ALPHAS[1:4]
    dp, dpft = cells[0], cells[-1]
    assert dp.recipe == RecipeSpec.make("dp", lr=0.02)
    assert dpft.recipe.name == "dp_ft" and dpft.recipe.get("dp_lr") == 0.02
    assert {parent_of(c) for c in cells[1:4]} == {dpft} and parent_of(dpft) == dp
    assert len({c.train_fingerprint for c in cells}) == 5
    # a grid listing dp / dp_ft too runs each once
    both = load_grid(str(_grid(tmp_path, [{"name": "dp", "lr": 0.02},
                                          {"name": "wise_ft", "dp_lr": 0.02, "alpha": ALPHAS}])),
                     resolve_data=False)
    assert [c.fingerprint for c in both.runs] == [c.fingerprint for c in cells]


@pytest.mark.parametrize("alpha", [1.5, -0.25])
def test_alpha_outside_unit_interval_is_rejected_naming_file_field_value(tmp_path, alpha):
    path = _grid(tmp_path, [{"name": "wise_ft", "alpha": [0.5, alpha]}])
    with pytest.raises(ConfigError) as e:
        load_grid(str(path))
    msg = str(e.value)
    assert str(path) in msg and "recipes[0]" in msg and f"alpha={alpha}" in msg
    assert ">= 0 and <= 1" in msg


def _weights(spec) -> dict[str, torch.Tensor]:
    path = TrainingDir(spec.train_fingerprint).final
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def test_mix_is_exact_at_both_ends():
    from torch import nn

    from benchmark.recipes import get_recipe
    from benchmark.spec import RecipeSpec

    g = torch.Generator().manual_seed(0)
    net = nn.Linear(7, 5)
    start = {k: torch.randn(v.shape, generator=g) for k, v in net.state_dict().items()}
    final = {k: v.clone() for k, v in net.state_dict().items()}
    for alpha, expected in ((0, start), (1, final)):
        net.load_state_dict(final)
        get_recipe(RecipeSpec.make("wise_ft", alpha=alpha)).finalize(net, start)
        assert all(torch.equal(v, expected[k]) for k, v in net.state_dict().items())


@pytest.mark.slow  # two tiny trainings: about a minute on the shared 2-core machine
def test_sweep_trains_dp_ft_once_and_mixes_exactly(bench_env: Path, tmp_path: Path):
    grid = load_grid(str(_grid(tmp_path, [{"name": "wise_ft", "dp_lr": 0.02,
                                           "alpha": [0, 0.5, 1]}])))
    cells = grid.runs
    assert [c.recipe.name for c in cells] == ["dp", "wise_ft", "dp_ft"]
    mixes = [replace(cells[1], recipe=RecipeSpec.make("wise_ft", dp_lr=0.02, alpha=a))
             for a in (0, 1)]  # the mixing stage run at the ends too, against the cells
    for spec in [*cells, *mixes]:
        train_stage(spec, progress=False)
    train_dirs = list((bench_env.parent / "artifacts" / "train").iterdir())
    trained = [d for d in train_dirs if (d / "train_log.json").is_file()]
    assert len(train_dirs) == 5 and len(trained) == 2  # DP, DP-FT; three mixes
    dpft = parent_of(cells[1])
    dp_w, ft_w = _weights(parent_of(dpft)), _weights(dpft)
    w0, w_half, w1 = _weights(mixes[0]), _weights(cells[1]), _weights(mixes[1])
    assert w0.keys() == dp_w.keys() == w1.keys()
    moved = [k for k in ft_w if ft_w[k].is_floating_point() and not torch.equal(ft_w[k], dp_w[k])]
    assert moved  # DP-FT moved away from DP: the ends are distinguishable
    for k in dp_w:
        assert torch.equal(w0[k], dp_w[k]), k
        assert torch.equal(w1[k], ft_w[k]), k
    for k in moved:
        assert torch.allclose(w_half[k], 0.5 * dp_w[k] + 0.5 * ft_w[k])


def test_report_draws_one_alpha_curve_per_backbone(tmp_path: Path):
    from types import SimpleNamespace

    import pandas as pd

    from benchmark.report.wise_figure import alpha_curves, sweep_curves

    rows = pd.DataFrame({
        "recipe": ["dp_ft", "dp", "wise_ft", "ft", "wise_ft", "dp"],
        "recipe_params": ['{"dp_lr": 0.02}', '{"lr": 0.02}', '{"alpha": 0.5, "dp_lr": 0.02}',
                          "{}", "{}", "{}"],
        "backbone_display": ["A"] * 4 + ["B"] * 2,
        "id|mean": [0.6, 0.4, 0.5, 0.7, 0.3, 0.2],
        "ood|mean": [0.2, 0.25, 0.3, 0.1, 0.2, 0.1],
    })
    fb = SimpleNamespace(fam=SimpleNamespace(er_x="id", er_y="ood"), rows=rows)
    # A: its α = 0.5 row, and as the ends the DP / DP-FT rows with its parameters; B: its
    # α = 0.5 (the default) and its DP (dp_lr unset: plain dp) — but no DP-FT row
    curves = sweep_curves(fb, "wise_ft")
    assert curves == {"A": [(0.0, 0.4, 0.25), (0.5, 0.5, 0.3), (1.0, 0.6, 0.2)],
                      "B": [(0.0, 0.2, 0.1), (0.5, 0.3, 0.2)]}
    png = alpha_curves(tmp_path / "c.png", "t", curves, "ID AP", "OOD AP")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
