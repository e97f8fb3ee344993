"""Benchmark: what a regularised recipe adds to a training step, in the same run.

    python perf/bench_regularisers.py [--steps 8]

On the demo model (torchvision Faster R-CNN, EfficientNet-Lite0, batch of 2 demo images,
one torch thread) it times, per weighting (``distance``, ``ewc``, ``rgn``):

* a plain FT step (forward, backward, SGD step);
* the same step plus ``reg_ft``'s gradient edit as the suite runs it (fused
  ``torch._foreach_*`` calls);
* the same step plus the per-tensor Python loop the suite used before (reference);

and prints medians and the overhead of each over FT. The target is ≤ 5 % over FT
on the CPU. Then, in the same run, the distilling recipes' steps against FT (interleaved):
``ft_kd`` (a student and a frozen teacher body pass on the batch) and ``cf_kd`` (the same on
the counterfactual batch, plus building it); reported as measured. On a GPU each step ends
with a device synchronisation. ``--json PATH`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _demo_step import demo_step  # noqa: E402
from _throughput import sync, write_json  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--json", default="", metavar="PATH", help="also write the results here")
    args = ap.parse_args()
    import torch

    from benchmark.recipes import get_recipe
    from benchmark.spec import RecipeSpec

    d = demo_step()
    model, opt, images, targets = d.model, d.optimizer, d.images, d.targets
    start = {k: v.clone() for k, v in model.state_dict().items()}
    body = model.body_parameters()
    maps = {n: torch.rand(p.shape[:2]) if p.dim() == 4 else torch.rand(p.shape)
            for n, p in body}

    def loop_reference(recipe, lr: float) -> None:  # the pre-fusion per-tensor loop
        with torch.no_grad():
            for (_, p), a, s in zip(body, recipe.anchors, recipe.scales, strict=True):
                if p.grad is None:
                    continue
                coef = min(max(s, 0.0), 1 / lr) if isinstance(s, float) else s.clamp(0, 1 / lr)
                p.grad.add_((p - a) * coef)

    def step(edit) -> float:
        t0 = time.perf_counter()
        losses = model.losses(images, targets)
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        edit()
        opt.step()
        sync()
        return time.perf_counter() - t0

    def interleaved(*edits) -> list[float]:
        """Median step time of each edit, the steps interleaved (A B C A B C …) so that drift
        of the machine's speed hits all of them alike."""
        for edit in edits:
            step(edit)  # warm-up
        times: list[list[float]] = [[] for _ in edits]
        for _ in range(args.steps):
            for t, edit in zip(times, edits, strict=True):
                t.append(step(edit))
        return [statistics.median(t) for t in times]

    print(f"{'weighting':<10} {'FT s/step':>10} {'fused':>16} {'loop (before)':>18}")
    spec = d.trainer.spec
    results: dict = {"model": f"{spec.engine} {spec.backbone.label}", "batch": len(images),
                     "size": spec.schedule.train_sizes[0], "steps": args.steps,
                     "device": str(next(model.parameters()).device), "reg_ft": {},
                     "distill": {}}
    for weighting in ("distance", "ewc", "rgn"):
        recipe = get_recipe(RecipeSpec.make("reg_ft", weighting=weighting))
        ewc = {n: torch.rand(p.shape) for n, p in body}
        recipe.configure(model, start, {"rgn": maps, "ewc": ewc})
        ft, fused, loop = interleaved(lambda: None,
                                      lambda r=recipe: r.after_backward(model, 0.01),
                                      lambda r=recipe: loop_reference(r, 0.01))
        print(f"{weighting:<10} {ft:>10.3f} {fused:>8.3f} ({100 * (fused / ft - 1):+5.1f}%) "
              f"{loop:>8.3f} ({100 * (loop / ft - 1):+5.1f}%)")
        results["reg_ft"][weighting] = {
            "ft_s": ft, "fused_s": fused, "fused_overhead_pct": 100 * (fused / ft - 1),
            "loop_s": loop, "loop_overhead_pct": 100 * (loop / ft - 1)}
        if args.json:  # after every weighting: a step killed later keeps these
            write_json(args.json, results)

    recipes = {name: get_recipe(RecipeSpec.make(name)) for name in ("ft_kd", "cf_kd")}
    for recipe in recipes.values():
        recipe.configure(model, start, None)

    def distill_step(recipe) -> float:
        t0 = time.perf_counter()
        losses = model.losses(images, targets)
        if recipe is not None:
            losses.update(recipe.extra_losses(model, images, targets))
        opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        opt.step()
        sync()
        return time.perf_counter() - t0

    for r in (None, *recipes.values()):
        distill_step(r)  # warm-up
    times: dict[str | None, list[float]] = {None: [], **{n: [] for n in recipes}}
    for _ in range(args.steps):
        for name in times:
            times[name].append(distill_step(recipes.get(name) if name else None))
    ft = statistics.median(times[None])
    print(f"\n{'recipe':<10} {'s/step':>10} {'over FT':>8}\n{'ft':<10} {ft:>10.3f}")
    results["distill"]["ft_s"] = ft
    for name in recipes:
        t = statistics.median(times[name])
        print(f"{name:<10} {t:>10.3f} {100 * (t / ft - 1):>+7.1f}%")
        results["distill"][name] = {"s": t, "overhead_pct": 100 * (t / ft - 1)}
    if args.json:
        write_json(args.json, results)
    for recipe in recipes.values():
        recipe.finalize(model, start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
