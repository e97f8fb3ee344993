"""Robustness formulas from AP values (pure functions, no I/O).

* Corruptions (Michaelis et al.): P = clean AP, mPC = mean AP over corruption × severity,
  rPC = mPC / P (:func:`corruption_summary`, the COCO/Cityscapes form: a ratio of means).
* OOD: mean AP over OOD splits and the ID − OOD gap.
* Effective robustness (Taori et al.): fit a line through (logit ID, logit OOD) of baseline
  models; a model's ER is its OOD AP minus the line's prediction mapped back by the sigmoid.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
LOGIT_EPS = 1e-6


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _conditions(
    ap: Mapping[tuple[str, int], object], corruptions: Sequence[str], severities: Sequence[int]
) -> tuple[list[tuple[str, int]], bool]:
    wanted = [(c, s) for c in corruptions for s in severities]
    present = [k for k in wanted if k in ap]
    return present, len(present) == len(wanted)


def corruption_summary(
    clean_ap: float,
    ap: Mapping[tuple[str, int], float],
    corruptions: Sequence[str],
    severities: Sequence[int] = SEVERITIES,
) -> dict[str, float | int | bool | None]:
    """P, mPC (mean over the available listed corruption × severity conditions), rPC = mPC / P.

    ``complete`` says whether every listed condition was available. mPC is None when none is;
    rPC is None when mPC is None or P == 0.
    """
    present, complete = _conditions(ap, corruptions, severities)
    mpc = _mean([ap[k] for k in present])
    rpc = mpc / clean_ap if mpc is not None and clean_ap != 0 else None
    return {"P": clean_ap, "mPC": mpc, "rPC": rpc, "n_conditions": len(present),
            "complete": complete}


def ood_summary(id_ap: float, ood_ap: Mapping[str, float]) -> dict[str, float | None]:
    """ID AP, the mean over OOD splits and gap = id − ood_mean (None without OOD splits)."""
    ood_mean = _mean(list(ood_ap.values()))
    gap = id_ap - ood_mean if ood_mean is not None else None
    return {"id": id_ap, "ood_mean": ood_mean, "gap": gap}


def logit(p: float, eps: float = LOGIT_EPS) -> float:
    """log(p / (1 − p)) with p clipped to [eps, 1 − eps] so AP 0 or 1 stays finite."""
    p = min(max(p, eps), 1.0 - eps)
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def fit_logit_line(id_aps: Sequence[float], ood_aps: Sequence[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept) of logit(OOD) on logit(ID) over baseline models."""
    if len(id_aps) != len(ood_aps):
        raise ValueError(f"id_aps has {len(id_aps)} values but ood_aps has {len(ood_aps)}")
    if len(id_aps) < 2:
        raise ValueError("need at least 2 baseline models to fit a line")
    xs = [logit(p) for p in id_aps]
    ys = [logit(p) for p in ood_aps]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all baseline ID APs are equal: the line is undefined")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def effective_robustness(id_ap: float, ood_ap: float, fit: tuple[float, float]) -> float:
    """OOD AP above the baseline line: ood − sigmoid(slope · logit(id) + intercept)."""
    slope, intercept = fit
    return ood_ap - sigmoid(slope * logit(id_ap) + intercept)
