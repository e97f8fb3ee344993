"""Labels of runs and rows, variants, and mean ± std per row.

* labels: :func:`backbone_label`, :func:`recipe_label`, :func:`config_key`;
* :func:`assign_variants`: runs of the same configuration made by different code versions or
  on different dataset manifests get different variants, so a table never averages them;
* :func:`aggregate`: mean, sample std and n per (row key, metric); :func:`format_cell`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd


# ---- labels -------------------------------------------------------------------------------
def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 8) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:n]


def backbone_label(backbone: Mapping[str, Any]) -> str:
    weights = backbone.get("weights")
    name = str(backbone["name"])
    if weights in (None, ""):
        return name
    w = str(weights)
    if "/" in w or len(w) > 24:  # a file path: keep its name only
        w = Path(w).name
    return f"{name}[{w}]"


def recipe_label(recipe: Mapping[str, Any]) -> str:
    params = recipe.get("params") or {}
    if not params:
        return str(recipe["name"])
    inner = ",".join(f"{k}={_fmt_param(v)}" for k, v in sorted(params.items()))
    return f"{recipe['name']}({inner})"


def _fmt_param(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def config_key(spec: Mapping[str, Any]) -> str:
    """Everything that defines a configuration except the seed and the data hashes."""
    return short_hash({k: v for k, v in spec.items() if k not in ("seed", "data")}, 12)


# ---- variants: never average across code versions or dataset manifests ---------------------
def code_key(row: Mapping[str, Any]) -> str:
    """Code version / results version, plus the summary's AP protocol when it is not COCO's:
    runs that differ in any of these are never averaged together."""
    rv = row.get("results_version") or ""
    protocol = row.get("protocol") or "coco"
    return (f"{row.get('code_version') or 'unknown'}" + (f"/r{rv}" if rv else "")
            + (f"/{protocol}" if protocol != "coco" else ""))


def assign_variants(runs: pd.DataFrame) -> pd.Series:
    """Per run, a variant id: runs share one when they have the same configuration, the same
    code version and agree on the content fingerprint of every split they both read.

    Clusters are formed greedily in fingerprint order, so the assignment is deterministic.
    """
    variant = pd.Series(0, index=runs.index, dtype=int)
    if runs.empty:
        return variant
    cols = runs[["family", "config_key", "fingerprint", "code_version", "results_version",
                 "protocol", "datasets"]]
    order = cols.sort_values(["family", "config_key", "fingerprint"], kind="mergesort")
    clusters: dict[tuple[str, str], list[tuple[str, dict[str, str]]]] = {}
    out: dict[Any, int] = {}
    for idx, row in zip(order.index, order.to_dict("records"), strict=True):
        group = clusters.setdefault((row["family"], row["config_key"]), [])
        ck = code_key(row)
        ds = row["datasets"]
        for i, (cck, cds) in enumerate(group):
            if cck == ck and all(cds.get(k, v) == v for k, v in ds.items()):
                cds.update(ds)
                out[idx] = i
                break
        else:
            group.append((ck, dict(ds)))
            out[idx] = len(group) - 1
    variant.loc[list(out)] = list(out.values())
    return variant


# ---- aggregation --------------------------------------------------------------------------
def aggregate(runs: pd.DataFrame, keys: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Per group of ``keys``: ``<v>|mean``, ``<v>|std`` (sample, ddof=1) and ``<v>|n``
    (non-missing count) for every value column, plus ``n_runs`` and the sorted ``seeds``."""
    values = [v for v in values if v in runs.columns]
    if runs.empty:
        return pd.DataFrame(columns=[*keys, "n_runs", "seeds"])
    g = runs.groupby(list(keys), sort=True, dropna=False)
    frames = [g.size().rename("n_runs")]
    frames.append(g["seed"].agg(lambda s: tuple(sorted(set(int(x) for x in s)))).rename("seeds"))
    if values:
        num = runs[list(values)].astype(float)
        num[list(keys)] = runs[list(keys)]
        gv = num.groupby(list(keys), sort=True, dropna=False)
        mean = gv.mean().add_suffix("|mean")
        std = gv.std(ddof=1).add_suffix("|std")
        cnt = gv.count().add_suffix("|n")
        frames += [mean, std, cnt]
    return pd.concat(frames, axis=1).reset_index()


def format_cell(
    mean: float, std: float, n: int | float, *, scale: float = 100.0, digits: int = 1,
    signed: bool = False, show_n: bool = True,
) -> str:
    """``"44.6 ± 0.3 (n=3)"``; ``"44.6 (n=1)"`` for one value; ``"—"`` for none."""
    if n is None or (isinstance(n, float) and math.isnan(n)) or int(n) == 0:
        return "—"
    if mean is None or not math.isfinite(float(mean)):
        return "—"
    sign = "+" if signed else ""
    value = float(mean) * scale
    if round(value, digits) == 0:
        value = 0.0  # no "-0.0"
    text = f"{value:{sign}.{digits}f}"
    if int(n) > 1 and std is not None and math.isfinite(float(std)):
        text += f" ± {float(std) * scale:.{digits}f}"
    if show_n:
        text += f" (n={int(n)})"
    return text


def counts(values: Iterable[Any]) -> list[tuple[str, int]]:
    """Distinct values with counts, most common first then by name (deterministic)."""
    c = Counter(str(v) for v in values)
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))
