"""Run records → pandas frames: one row per run, and one row per run × evaluated split.

The runs frame has the spec labels, the summary metrics (every scalar entry of the metric
table, in its order), RGN, provenance, and wide per-domain / per-condition columns
(``ood/<split>``, ``corr/<name>/<severity>``, plus ``voc_ood/`` and ``coco_ood/`` where
VOC-style AP is recorded). The run × split frame is the leaderboard export.

It is just over 400 lines because both frames come from one pass over the records.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.evaluation.coco import COCO_KEYS
from benchmark.evaluation.summary_metrics import metric_entries
from benchmark.report.aggregation import backbone_label, canonical, config_key, recipe_label
from benchmark.report.records import (
    Record,
    RecordError,
    Skipped,
    display_path,
    is_number,
    read_record,
    scan,
)
from benchmark.spec import parse_corrupted_split_name

VOC_KEY = "voc"  # optional metrics[split]["voc"] = {"AP", "AP50", "AP75", "protocol"}


def _num(v: Any) -> float:
    """A value for a frame: numbers as float, -1 (pycocotools' "no ground truth") and
    anything else as NaN."""
    if is_number(v) and v != -1 and math.isfinite(v):
        return float(v)
    return float("nan")


def split_role(spec: Mapping[str, Any], split: str) -> tuple[str, str | None, int | None]:
    """(role, corruption, severity): role is id / ood / clean / corrupted / other."""
    if split == spec.get("id_split"):
        return "id", None, None
    if split in (spec.get("ood_splits") or []):
        return "ood", None, None
    parsed = parse_corrupted_split_name(split)
    if parsed is not None:
        return "corrupted", parsed[1], parsed[2]
    corruption = spec.get("corruption") or {}
    if split == corruption.get("base"):
        return "clean", None, None
    return "other", None, None


def _run_base(rec: Record) -> dict[str, Any]:
    d = rec.data
    spec = d["spec"]
    prov = d.get("provenance") or {}
    return {
        "fingerprint": d["fingerprint"],
        "record_path": str(rec.path),
        "record_sha256": rec.sha256,
        "grid": d.get("grid") or "",
        "family": spec["benchmark"],
        "engine": spec.get("engine") or "",
        "backbone": spec["backbone"]["name"],
        "weights": str(spec["backbone"].get("weights") or ""),
        "backbone_label": backbone_label(spec["backbone"]),
        "recipe": spec["recipe"]["name"],
        "recipe_params": canonical(spec["recipe"].get("params") or {}),
        "recipe_label": recipe_label(spec["recipe"]),
        "seed": int(spec["seed"]),
        "config_key": config_key(spec),
        "train_split": spec.get("train_split") or "",
        "id_split": spec["id_split"],
        "ood_splits": canonical(list(spec.get("ood_splits") or [])),
        "code_version": str(prov.get("code_version") or "unknown"),
        "results_version": str(prov.get("results_version") or ""),
        "git_commit": str(prov.get("git_commit") or ""),
        "git_dirty": prov.get("git_dirty"),
        "python": str(prov.get("python") or ""),
        "torch": str(prov.get("torch") or ""),
        "cuda": str(prov.get("cuda") or ""),
        "device": str(prov.get("device") or ""),
        "hostname": str(prov.get("hostname") or ""),
        "started": str(prov.get("started") or ""),
        "finished": str(prov.get("finished") or ""),
        "wall_time_s": _num(prov.get("wall_time_s")),
        "gpu_hours": _num(prov.get("gpu_hours")),
        "datasets": _datasets(d),  # dict: split → content fingerprint
        "corruption_base": str((spec.get("corruption") or {}).get("base") or ""),
        "corruption_channel_order": str((spec.get("corruption") or {}).get("channel_order")
                                        or "rgb"),
        "predictions": dict(((d.get("artifacts") or {}).get("predictions")) or {}),
        # the protocol card it ran with (canonical JSON; "" for records older than cards)
        "card": canonical(d["protocol"]) if isinstance(d.get("protocol"), dict) else "",
    }


def _datasets(d: Mapping[str, Any]) -> dict[str, str]:
    prov = d.get("provenance") or {}
    ds = prov.get("datasets")
    if not isinstance(ds, dict) or not ds:
        ds = (d.get("spec") or {}).get("data") or {}
    return {str(k): str(v) for k, v in ds.items()} if isinstance(ds, dict) else {}


def _summary_values(d: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's numbers (in its protocol: ``summary.protocol``, "coco" when absent), the
    RGN numbers, and both protocols' ID AP and OOD mean recomputed from ``metrics``
    (``coco_*``, ``voc_*``)."""
    s = d.get("summary") or {}
    out: dict[str, Any] = {}
    for m in metric_entries("summary", scalar=True):
        v = s.get(m.key)
        # an AP of -1 means "no ground truth"; other units keep any number (gap < 0 is fine)
        out[m.key] = float(v) if m.unit != "ap" and is_number(v) else _num(v)
    out["protocol"] = str(s.get("protocol") or "coco")
    rgn = d.get("rgn") or {}
    for m in metric_entries("rgn"):
        out[m.key] = _num(rgn.get(m.key))
    metrics = d.get("metrics") or {}
    spec = d["spec"]
    idm = metrics.get(spec["id_split"]) or {}
    out["id_ap75"] = _num(idm.get("AP75"))
    ood = spec.get("ood_splits") or []
    for proto in ("coco", "voc"):
        out[f"{proto}_id_ap"] = _protocol_ap(idm, proto)
        values = [_protocol_ap(metrics.get(split) or {}, proto) for split in ood]
        ok = bool(values) and all(math.isfinite(v) for v in values)
        out[f"{proto}_ood_mean"] = sum(values) / len(values) if ok else float("nan")
    return out


def _protocol_ap(m: Mapping[str, Any], protocol: str) -> float:
    if protocol == "coco":
        return _num(m.get("AP"))
    voc = m.get(VOC_KEY)
    return _num(voc.get("AP")) if isinstance(voc, dict) else float("nan")


RUN_COLUMNS = (
    "fingerprint", "grid", "family", "engine", "backbone", "weights", "backbone_label",
    "recipe", "recipe_params", "recipe_label", "seed", "config_key", "train_split", "id_split",
)
PROVENANCE_COLUMNS = (
    "code_version", "results_version", "git_commit", "git_dirty", "python", "torch", "cuda",
    "device", "hostname", "started", "finished", "wall_time_s", "gpu_hours", "record_sha256",
)
_OBJECT_COLUMNS = frozenset({"datasets", "predictions", "git_dirty"})
_SPLIT_TEXT = ("split", "role", "corruption", "dataset_fingerprint", "predictions")


class _Flattener:
    """Records → flat columns: the runs frame (one row per run) and the split-level part of
    the long frame (one row per run × split). Runs in-process or per chunk in a worker
    process; :meth:`frames` turns the lists into DataFrames, which pickle as buffers."""

    def __init__(self, splits: bool = True) -> None:
        self.with_splits = splits
        self.runs: list[dict[str, Any]] = []
        self.wide: list[dict[str, float]] = []
        self.split_fp: list[str] = []
        self.text: dict[str, list[str]] = {k: [] for k in _SPLIT_TEXT}
        self.severity: list[float] = []
        self.values: list[Any] = []
        self.voc: list[Any] = []
        self.voc_protocol: list[str] = []
        self._roles: dict[tuple[Any, ...], tuple[str, str, float]] = {}
        self._get_all = operator.itemgetter(*COCO_KEYS)

    def add(self, rec: Record) -> None:
        d = rec.data
        row = _run_base(rec)
        row.update(_summary_values(d))
        row["rgn_at"] = str((d.get("rgn") or {}).get("at") or "")
        self.runs.append(row)
        wide: dict[str, float] = {}
        s = d.get("summary") or {}
        for m in metric_entries("summary", scalar=False):
            for column, value in m.columns(s.get(m.key)).items():
                wide[column] = _num(value)
        metrics = d["metrics"]
        for split in d["spec"].get("ood_splits") or ():
            voc = (metrics.get(split) or {}).get(VOC_KEY)
            if isinstance(voc, dict):
                wide[f"voc_ood/{split}"] = _num(voc.get("AP"))
            if split in metrics:
                wide[f"coco_ood/{split}"] = _num(metrics[split].get("AP"))
        self.wide.append(wide)
        if self.with_splits:
            self._add_splits(d, row)

    def _add_splits(self, d: Mapping[str, Any], row: Mapping[str, Any]) -> None:
        spec = d["spec"]
        metrics = d["metrics"]
        spec_key = (spec.get("id_split"), tuple(spec.get("ood_splits") or ()),
                    (spec.get("corruption") or {}).get("base"))
        splits = sorted(metrics)
        nan = float("nan")
        info = []
        for split in splits:
            key = (split, *spec_key)
            if key not in self._roles:
                role, corruption, severity = split_role(spec, split)
                self._roles[key] = (role, corruption or "", nan if severity is None else severity)
            info.append(self._roles[key])
        ds, preds = row["datasets"], row["predictions"]
        self.split_fp.extend([row["fingerprint"]] * len(splits))
        self.text["split"].extend(splits)
        self.text["role"].extend(x[0] for x in info)
        self.text["corruption"].extend(x[1] for x in info)
        self.severity.extend(x[2] for x in info)
        self.text["dataset_fingerprint"].extend(ds.get(split, "") for split in splits)
        self.text["predictions"].extend(str(preds.get(split) or "") for split in splits)
        ms = [metrics[split] for split in splits]
        try:
            self.values.extend(map(self._get_all, ms))
        except KeyError:
            self.values.extend(tuple(m.get(k) for k in COCO_KEYS) for m in ms)
        for m in ms:
            voc = m.get(VOC_KEY)
            if isinstance(voc, dict):
                self.voc.append((voc.get("AP"), voc.get("AP50"), voc.get("AP75")))
                self.voc_protocol.append(str(voc.get("protocol") or ""))
            else:
                self.voc.append((None, None, None))
                self.voc_protocol.append("")

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """(runs part, split part or None)."""
        runs = self._runs_frame()
        if not self.with_splits:
            return runs, None
        cols: dict[str, Any] = {"fingerprint": pd.array(self.split_fp, dtype="str")}
        for k in _SPLIT_TEXT:
            cols[k] = pd.array(self.text[k], dtype="str")
        cols["severity"] = pd.array(np.asarray(self.severity, dtype=float),
                                    dtype="Float64").astype("Int64")
        values = _ap_array(self.values, len(COCO_KEYS))
        for i, k in enumerate(COCO_KEYS):
            cols[k] = values[:, i]
        voc = _ap_array(self.voc, 3)
        for i, k in enumerate(("voc_AP", "voc_AP50", "voc_AP75")):
            cols[k] = voc[:, i]
        cols["voc_protocol"] = pd.array(self.voc_protocol, dtype="str")
        return runs, pd.DataFrame(cols)

    def _runs_frame(self) -> pd.DataFrame:
        if not self.runs:
            return pd.DataFrame()
        n = len(self.runs)
        cols: dict[str, Any] = {}
        for key in self.runs[0]:
            values = [row[key] for row in self.runs]
            if key in _OBJECT_COLUMNS:
                arr = np.empty(n, dtype=object)
                arr[:] = values
                cols[key] = arr
            else:
                cols[key] = values
        for key in sorted({k for w in self.wide for k in w}):
            cols[key] = np.array([w.get(key, np.nan) for w in self.wide], dtype=float)
        return pd.DataFrame(cols)


def _combine_runs(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate run chunks (their wide columns may differ), sorted by family, fingerprint."""
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame()
    runs = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    fixed = [c for c in parts[0].columns if "/" not in c]
    wide = sorted(c for c in runs.columns if "/" in c)
    runs = runs[fixed + wide]
    return runs.sort_values(["family", "fingerprint"], kind="mergesort").reset_index(drop=True)


def _combine_long(parts: Sequence[pd.DataFrame], runs: pd.DataFrame) -> pd.DataFrame:
    """Split-level chunks + the run-level columns of each row's run."""
    if runs.empty:
        return pd.DataFrame(columns=long_columns())
    split = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    pos = pd.Series(np.arange(len(runs)), index=runs["fingerprint"].to_numpy())
    run_idx = pos.loc[split["fingerprint"].to_numpy()].to_numpy()
    base_cols = [c for c in (*RUN_COLUMNS, *_run_metric_columns(), *PROVENANCE_COLUMNS)
                 if c in runs.columns]
    out = _take_rows(runs[base_cols], run_idx)
    split = split.drop(columns=["fingerprint"])
    for k in ("split", "role", "corruption"):
        split[k] = split[k].astype("category")
    head = out[list(RUN_COLUMNS)]
    tail = out.drop(columns=list(RUN_COLUMNS))
    df = pd.concat([head, split, tail], axis=1)
    # runs are sorted by (family, fingerprint) and each run's splits by name: a stable sort
    # on the run's position gives the (family, fingerprint, split) order
    return df.iloc[np.argsort(run_idx, kind="stable")].reset_index(drop=True)


def _run_metric_columns() -> tuple[str, ...]:
    """The run-level metric columns of the long frame: summary numbers, protocol, RGN."""
    return (*(m.key for m in metric_entries("summary", scalar=True)), "protocol",
            *(m.key for m in metric_entries("rgn")))


def long_columns() -> list[str]:
    """The columns of the run × split frame (also when there are no runs)."""
    return [*RUN_COLUMNS, "split", "role", "corruption", "dataset_fingerprint", "predictions",
            "severity", *COCO_KEYS, "voc_AP", "voc_AP50", "voc_AP75", "voc_protocol",
            *_run_metric_columns(), *PROVENANCE_COLUMNS]


@dataclass
class Frames:
    """What the report needs from the records, without the records themselves."""

    runs: pd.DataFrame
    long: pd.DataFrame | None  # None when not requested
    skipped: list[Skipped]
    pending: int = 0
    failed: int = 0

    @property
    def n_records(self) -> int:
        return len(self.runs)


Chunk = tuple[pd.DataFrame, "pd.DataFrame | None", list[Skipped]]


def _load_chunk(paths: Sequence[Path], results_dir: Path, splits: bool) -> Chunk:
    flat = _Flattener(splits)
    skipped = []
    for path in paths:
        try:
            flat.add(read_record(path))
        except RecordError as e:
            skipped.append(Skipped(display_path(path, results_dir), str(e)))
    runs, split = flat.frames()
    return runs, split, skipped


PARALLEL_MIN_RECORDS = 400


def load_frames(results_dir: Path, workers: int | None = None, *, long: bool = True) -> Frames:
    """Read, validate and flatten every record under ``results_dir/runs``.

    With many records the JSON parsing and flattening is split over forked worker processes
    (``workers``, default: the CPU count, at most 4); each sends back DataFrames. ``long``:
    also build the long (run × split) frame.
    """
    paths, pending, failed = scan(results_dir)
    n_workers = min(4, os.cpu_count() or 1) if workers is None else workers
    results: list[Chunk]
    if n_workers > 1 and len(paths) >= PARALLEL_MIN_RECORDS and _can_fork():
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        size = -(-len(paths) // n_workers)
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
        with ProcessPoolExecutor(len(chunks), mp_context=mp.get_context("fork")) as pool:
            results = list(pool.map(_load_chunk, chunks, [results_dir] * len(chunks),
                                    [long] * len(chunks)))
    else:
        results = [_load_chunk(paths, results_dir, long)]
    skipped = [s for r in results for s in r[2]]
    runs = _combine_runs([r[0] for r in results])
    long_df = None
    if long:
        long_df = _combine_long([r[1] for r in results if r[1] is not None], runs)
    return Frames(runs, long_df, skipped, pending, failed)


def _can_fork() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()


def _take_rows(frame: pd.DataFrame, idx: np.ndarray) -> pd.DataFrame:
    """frame.iloc[idx], with text columns as categoricals (one category per distinct value):
    a long frame repeats each run's text for every split, which this keeps cheap."""
    cols: dict[str, Any] = {}
    for c in frame.columns:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            cols[c] = col.to_numpy()[idx]
        else:
            codes, uniques = pd.factorize(col, use_na_sentinel=True)
            cols[c] = pd.Categorical.from_codes(codes[idx], categories=uniques)
    return pd.DataFrame(cols)


def _ap_array(rows: list[Any], width: int) -> np.ndarray:
    """Rows of AP values (None allowed) → (n, width) float array, None and -1 as NaN."""
    arr = np.array(rows, dtype=float).reshape(-1, width)
    arr[arr == -1] = np.nan
    return arr
