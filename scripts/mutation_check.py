#!/usr/bin/env python3
"""Mutation check: would the test suite notice a broken recipe, metric or verdict?

Each mutation below is one meaningful, deliberate bug (a textual replacement in one source
file: a sign flipped, a constant dropped, a detach removed). The script copies the repository
into a temporary folder (never touching the working tree others edit), applies the mutations
one at a time there, runs the tests mapped to each (``pytest -x -q``) against the mutated
copy, and prints a table: which test caught it, or SURVIVED.

    .venv/bin/python scripts/mutation_check.py               # the working tree (tracked and
                                                             # untracked, not ignored, files)
    .venv/bin/python scripts/mutation_check.py --rev HEAD    # a committed revision (git archive)
    .venv/bin/python scripts/mutation_check.py --only relevance-sign cf_kd-shift-0
    .venv/bin/python scripts/mutation_check.py --list

A mutation's ``old`` may list alternatives (the first found is applied), so one list serves a
revision before and after a refactoring. A mutation whose snippet is in no alternative is
reported as NOT APPLIED (the list has fallen behind the code: fix the list). Mapped test files
that do not exist in the copy are left out and named in the table. Before the mutations, the
union of the mapped test files runs once unmutated (``--no-baseline`` skips it): a failing
baseline would make every "caught" meaningless, so it stops the check.

Exit status: 0 when every mutation was applied and caught, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    old: tuple[str, ...]  # alternatives: the first one present in the file is replaced
    new: tuple[str, ...]  # the replacement of each alternative (same length as ``old``)
    description: str
    tests: tuple[str, ...]  # test files (or node ids) that should catch it


def M(name: str, file: str, old: str | tuple[str, ...], new: str | tuple[str, ...],
      description: str, tests: tuple[str, ...] | list[str]) -> Mutation:
    olds = (old,) if isinstance(old, str) else tuple(old)
    news = (new,) * len(olds) if isinstance(new, str) else tuple(new)
    assert len(olds) == len(news), name
    return Mutation(name, file, olds, news, description, tuple(tests))


REL = ("tests/test_recipes_relevance.py",)
KD = ("tests/test_recipes_distill.py",)
REG = ("tests/test_recipes.py",)
SE = ("tests/test_recipes_se.py",)
FIXED = ("tests/test_recipes_fixed.py",)
PRIME = ("tests/test_prime.py",)
RGN = ("tests/test_rgn.py",)
D2 = ("tests/test_engine_detectron2_body.py", "tests/test_engine_detectron2.py")

MUTATIONS: list[Mutation] = [
    # ---- relevance (RobustViT) ----------------------------------------------------------------
    M("relevance-sign", "benchmark/recipes/relevance.py",
      "score = -sum(losses.values())", "score = sum(losses.values())",
      "the explained score is the detection loss, not minus it", REL),
    M("relevance-lambda-scale", "benchmark/recipes/relevance.py",
      'float(p["lambda_seg"]) / float(p["lambda_acc"]) * seg', "seg",
      "the λ_seg / λ_acc = 4 scale of the relevance term dropped", REL),
    M("relevance-rule5-clamp", "benchmark/recipes/relevance.py",
      "(g * a).clamp(min=0).mean(dim=1)", "(g * a).mean(dim=1)",
      "rule 5 without the clamp at 0", REL),
    M("relevance-bg-fg-weights", "benchmark/recipes/relevance.py",
      "return (w_bg * F.mse_loss(rel * bg, torch.zeros_like(rel))\n            + w_fg *",
      "return (w_fg * F.mse_loss(rel * bg, torch.zeros_like(rel))\n            + w_bg *",
      "λ_bg and λ_fg swapped", REL),
    M("relevance-no-minmax", "benchmark/recipes/relevance.py",
      "rel = (rel - low) / (high - low).clamp_min(1e-12)", "rel = rel / high",
      "relevance divided by its max instead of min-max normalised", REL),
    # ---- cf_kd / ft_kd (Masked images are counterfactual samples) -----------------------------
    M("cf_kd-shift-0", "benchmark/recipes/distill.py",
      "shift = int(torch.randint(1, n, ()))", "shift = 0",
      "the counterfactual filled from the image itself (cf_kd = ft_kd)", KD),
    M("cf_kd-relative-dropped", "benchmark/recipes/distill.py",
      "F.mse_loss(s, reference[k]) / reference[k].pow(2).mean()", "F.mse_loss(s, reference[k])",
      "the relative normalisation of the distillation MSE dropped", KD),
    M("cf_kd-context-not-inverted", "benchmark/recipes/distill.py",
      "return ~chosen if context else chosen", "return chosen",
      "context masking refills the object patches", KD),
    M("cf_kd-fill-with-zero", "benchmark/recipes/distill.py",
      "fill = torch.zeros_like(x) if source is None else x[source]", "fill = torch.zeros_like(x)",
      "the chosen patches masked to 0 instead of refilled from another image", KD),
    M("kd-weight-dropped", "benchmark/recipes/distill.py",
      'return {"loss_distill": float(self.params["weight"]) * mse}',
      'return {"loss_distill": mse}', "the distillation weight 30 dropped", KD),
    M("kd-teacher-not-start", "benchmark/recipes/distill.py",
      "teacher.load_state_dict(model.body_state(start_state))  # θ0, also when resuming",
      "pass", "the teacher is the current body, not θ0 (wrong after a resume)", KD),
    # ---- reg_ft / SE (Mind the Backbone) ------------------------------------------------------
    M("reg-sign", "benchmark/recipes/reg_ft.py",
      "torch._foreach_add_([self.params_[i].grad for i in idx], diffs)",
      "torch._foreach_sub_([self.params_[i].grad for i in idx], diffs)",
      "the regulariser pushes away from θ0", REG),
    M("reg-no-clip", "benchmark/recipes/reg_ft.py",
      "torch._foreach_clamp_max_(coefs, 1.0 / lr)", "pass",
      "the importance-weighted pull not clipped at 1/lr", REG),
    M("wise-alpha", "benchmark/recipes/wise_ft.py",
      "(1 - alpha) * start_state[k].to(v.device) + alpha * v",
      "alpha * start_state[k].to(v.device) + (1 - alpha) * v",
      "WiSE-FT's α applied to the start weights", REG),
    M("se-reduction", "benchmark/recipes/se_adapters.py",
      "REDUCTIONS = (4, 8, 16, 32)", "REDUCTIONS = (16, 16, 16, 16)",
      "SE reduction 16 at every level", SE),
    M("se-dp-trains-body", "benchmark/recipes/se_adapters.py",
      "p.requires_grad_(id(p) in se)", "p.requires_grad_(True)",
      "se_dp trains the whole backbone", SE),
    M("se-not-anchored-excluded", "benchmark/recipes/se_adapters.py",
      'if not n.startswith("se_adapters.")]', "]",
      "the SE blocks anchored by the RGN pull", SE),
    M("fixed-norms-train", "benchmark/recipes/fixed_features.py",
      'norms = norm_affine_ids(body) if float(self.params["norm_lr_mult"]) > 0 else set()',
      "norms = norm_affine_ids(body)",
      "fixed features trains the norms by default", FIXED),
    M("fixed-keys-decay", "benchmark/recipes/fixed_features.py",
      '"weight_decay": 0.0,\n                           "name": "backbone_keys"',
      '"name": "backbone_keys"', "Swin's keyed tensors decayed (mmcv: decay_mult 0)", FIXED),
    # ---- PRIME --------------------------------------------------------------------------------
    M("prime-mix", "benchmark/data/prime.py",
      "return (1 - m) * image + m * mixed", "return m * image + (1 - m) * mixed",
      "PRIME's mix weight m on the clean image", PRIME),
    M("prime-t2", "benchmark/data/prime.py",
      "4 / (math.pi**3 * (cut + 1e-6) ** 2 * log)", "4 / (math.pi**2 * (cut + 1e-6) ** 2 * log)",
      "T2 with π² instead of π³", PRIME),
    M("prime-study-depth", "benchmark/data/prime.py",
      'depth = _randint(gen, 1, max_depth) if variant == "imagenet" else 1',
      "depth = _randint(gen, 1, max_depth)", "the study's chains of 1–3 primitives", PRIME),
    M("prime-kernel-off-centre", "benchmark/data/prime.py",
      "kernel[size // 2, size // 2] += 1.0", "kernel[size // 2, size // 2 + 1] += 1.0",
      "the spectral kernel's δ off centre (shifts the image against its boxes)", PRIME),
    M("prime-dirichlet", "benchmark/data/prime.py",
      "return e / e.sum()", "return e",
      "chain weights not normalised", PRIME),
    # ---- RGN ----------------------------------------------------------------------------------
    M("rgn-elementwise", "benchmark/rgn.py",
      "ratio = _abs_reduced(g) / (_abs_reduced(w) + EPS)",
      "ratio = g.detach().abs().double() / (w.detach().abs().double() + EPS)",
      "the code definition without the spatial sums (mean of element-wise ratios)", RGN),
    M("rgn-l2-not-averaged", "benchmark/rgn.py",
      '"rgn_l2": self.l2[name] / n}', '"rgn_l2": self.l2[name]}',
      "the L2 definition summed, not averaged, over batches", RGN),
    M("rgn-ewc-not-averaged", "benchmark/rgn.py",
      '"ewc": {k: (v / n).float()', '"ewc": {k: v.float()',
      "the EWC importance summed, not averaged, over batches", RGN),
    M("rgn-se-kept", "benchmark/rgn.py",
      'STUDY_EXCLUDED = ("se_module", "se.")', 'STUDY_EXCLUDED = ("se_module",)',
      "RGN keeps the SE tensors the study leaves out", RGN),
    # ---- evaluation, engines, records, verdicts -----------------------------------------------
    M("voc-rounding", "benchmark/evaluation/voc.py",
      'rounded = np.asarray([[float(f"{v:.1f}")', 'rounded = np.asarray([[float(f"{v:.2f}")',
      "VOC corners rounded to .2f instead of detectron2's .1f",
      ("tests/evaluation/test_voc_detectron2.py", "tests/evaluation/test_voc.py")),
    M("voc-07-points", "benchmark/evaluation/voc.py",
      "total += (above.max() if above.size else 0.0) / 11.0",
      "total += (above.max() if above.size else 0.0) / 10.0",
      "11-point AP divided by 10", ("tests/evaluation/test_voc.py",)),
    M("coco-recall-points", "benchmark/evaluation/matching.py",
      "RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)",
      "RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 11)",
      "COCO AP at 11 recall points (the bootstrap's matcher)",
      ("tests/evaluation/test_matching.py",)),
    M("p6-anchor-stride", "benchmark/models/geometry.py",
      "strides = (4, 8, 16, 32, 64) if geometry.p2 else (8, 16, 32, 64)",
      "strides = (4, 8, 16, 32, 61) if geometry.p2 else (8, 16, 32, 61)",
      "P6 anchors stepped by torchvision's image // grid (61) instead of 64",
      ("tests/test_engine_geometry.py",)),
    M("dp-detach-torchvision", "benchmark/models/torchvision_frcnn.py",
      "feats = OrderedDict((k, v.detach()) for k, v in feats.items())",
      "feats = OrderedDict((k, v) for k, v in feats.items())",
      "DP's detach removed (torchvision engine)", ("tests/test_registries.py",)),
    M("dp-detach-detectron2", "benchmark/models/detectron2_engine.py",
      ("return {n: (feats[n].detach() if self.detach_body else feats[n]) for n in levels}",
       "return {n: (feats[n].detach() if detach else feats[n]) for n in levels}"),
      ("return {n: feats[n] for n in levels}", "return {n: feats[n] for n in levels}"),
      "DP's detach removed (detectron2 engine)", D2),
    M("record-checksum", "benchmark/store/cells.py",
      'if record["checksum"] != record_checksum(record):', "if False:",
      "a record's checksum never checked", ("tests/test_integrity.py",)),
    M("verdict-within", "benchmark/compare/verdict.py",
      "return abs(self.delta) <= self.noise", "return abs(self.delta) <= 2 * self.noise",
      "a Δ within test-set noise at twice the half-width (Delta.within)",
      ("tests/report/test_verdict_noise.py", "tests/test_compare.py")),
    M("verdict-classify", "benchmark/compare/seed_noise.py",
      "if delta == 0 or (test is not None and abs(delta) <= test):",
      "if delta == 0 or (test is not None and abs(delta) <= 2 * test):",
      "seed_noise.classify: 'test' at twice the half-width",
      ("tests/report/test_verdict_noise.py", "tests/test_compare.py")),
]


def _copy_tree(dest: Path, rev: str | None) -> None:
    """The repository's files into ``dest``: a revision through ``git archive``, or the
    working tree's tracked and untracked-not-ignored files."""
    if rev is not None:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file():  # deleted in the working tree, not yet committed
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(copy)  # the copy's benchmark/ before the editable install's
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _pytest(python: str, copy: Path, targets: list[str], timeout: float,
            deselect: list[str]) -> tuple[int, str, float]:
    cmd = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           *(f"--deselect={d}" for d in deselect), *targets]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=_env(copy), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return -1, out, time.monotonic() - start
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def _first_failure(output: str) -> str:
    m = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    if m:
        return m.group(1)
    return "(failed: " + (output.strip().splitlines() or ["no output"])[-1][:80] + ")"


def _apply(copy: Path, m: Mutation) -> str | None:
    """Apply ``m`` in the copy; the original text (None: no alternative found)."""
    path = copy / m.file
    if not path.is_file():
        return None
    text = path.read_text()
    for old, new in zip(m.old, m.new, strict=True):
        if text.count(old) == 1:
            path.write_text(text.replace(old, new))
            return text
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", help="check a committed revision (git archive) instead of the "
                    "working tree")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="these mutations only")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the unmutated run of the mapped tests")
    ap.add_argument("--python", default=sys.executable, help="the interpreter to run pytest "
                    "with (default: this one)")
    ap.add_argument("--timeout", type=float, default=1200.0,
                    help="seconds per pytest run (default 1200)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    ap.add_argument("--deselect", action="append", default=[], metavar="NODEID",
                    help="leave this test out of every run (one failing for a reason of its "
                    "own); repeatable")
    args = ap.parse_args(argv)

    chosen = MUTATIONS
    if args.only:
        unknown = sorted(set(args.only) - {m.name for m in MUTATIONS})
        if unknown:
            print(f"unknown mutation(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [m for m in MUTATIONS if m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:28} {m.file}: {m.description}  [{', '.join(m.tests)}]")
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="mutation-check-"))
    copy = tmp / "repo"
    copy.mkdir()
    try:
        _copy_tree(copy, args.rev)
        probe = subprocess.run([args.python, "-c", "import benchmark; print(benchmark.__file__)"],
                               cwd=copy, env=_env(copy), capture_output=True, text=True)
        if not probe.stdout.strip().startswith(str(copy)):
            print(f"the copy's benchmark package is not the one imported: {probe.stdout}"
                  f"{probe.stderr}", file=sys.stderr)
            return 2
        source = f"revision {args.rev}" if args.rev else "the working tree"
        print(f"mutation check of {source}, in {copy}"
              + (f" (deselected: {', '.join(args.deselect)})" if args.deselect else ""),
              flush=True)

        def existing(tests: tuple[str, ...]) -> tuple[list[str], list[str]]:
            have = [t for t in tests if (copy / t.split("::")[0]).exists()]
            return have, [t for t in tests if t not in have]

        if not args.no_baseline:
            union = sorted({t for m in chosen for t in existing(m.tests)[0]})
            rc, out, secs = _pytest(args.python, copy, union, args.timeout * 2,
                                     args.deselect)
            print(f"baseline (unmutated, {len(union)} test files): "
                  f"{'pass' if rc == 0 else 'FAIL'} in {secs:.0f} s", flush=True)
            if rc != 0:
                print(out[-3000:], file=sys.stderr)
                print("the unmutated tests fail: fix them first", file=sys.stderr)
                return 1

        rows: list[tuple[str, str, str, str]] = []
        for m in chosen:
            tests, missing = existing(m.tests)
            original = _apply(copy, m)
            if original is None:
                rows.append((m.name, "NOT APPLIED (snippet not found)", "-", m.description))
                print(f"{m.name}: NOT APPLIED", flush=True)
                continue
            try:
                if not tests:
                    rc, out, secs = 0, "", 0.0
                else:
                    rc, out, secs = _pytest(args.python, copy, tests, args.timeout,
                                         args.deselect)
            finally:
                (copy / m.file).write_text(original)
            if rc == 0:
                caught, survived = "-", "SURVIVED"
            elif rc == -1:
                caught, survived = f"(timeout after {secs:.0f} s)", "?"
            elif rc == 1:
                caught, survived = _first_failure(out), "no"
            else:  # 2-5: interrupted, internal error, usage error, nothing collected
                caught, survived = f"(pytest exit {rc}: {_first_failure(out)})", "?"
            note = m.description + (f" (not in this tree: {', '.join(missing)})"
                                    if missing else "")
            rows.append((m.name, caught, survived, note))
            print(f"{m.name}: {survived if survived != 'no' else 'caught by ' + caught} "
                  f"({secs:.0f} s)", flush=True)
    finally:
        if args.keep:
            print(f"kept {copy}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("| mutation | caught by | survived | what it breaks |")
    print("|---|---|---|---|")
    for name, caught, survived, note in rows:
        print(f"| {name} | {caught} | {survived} | {note} |")
    bad = [r for r in rows if r[2] != "no"]
    print(f"\n{len(rows) - len(bad)} of {len(rows)} mutations caught"
          + (f"; not caught: {', '.join(r[0] for r in bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
