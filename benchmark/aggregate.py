"""Run records → pandas frames.

* :func:`load_records` reads ``<results>/runs/*/record.json``; a file that cannot be read or
  does not validate is skipped with a named reason (:class:`Skipped`), never fatal.
* :func:`runs_frame`: one row per run (spec, summary, RGN, provenance; wide per-domain and
  per-corruption columns). :func:`long_frame`: one row per run × evaluated split.
* :func:`assign_variants`: runs of the same configuration made by different code versions or
  on different dataset manifests get different variants, so a table never averages them.
* :func:`aggregate`: mean, sample std and n per (row key, metric); :func:`format_cell`.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.split import parse_corrupted_split_name
from benchmark.evaluate import COCO_KEYS

RECORD = "record.json"
FAILED = "failed.json"
SCHEMA = 1
SUMMARY_KEYS = ("id_ap", "id_ap50", "ood_mean", "ood_mean_ap50", "gap", "P", "mPC", "rPC")
VOC_KEY = "voc"  # optional metrics[split]["voc"] = {"AP", "AP50", "AP75", "protocol"}


class RecordError(ValueError):
    """A record that cannot be used; the message is the reason shown in the report."""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Record:
    path: Path
    sha256: str
    data: dict[str, Any] = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return str(self.data["fingerprint"])


@dataclass
class Loaded:
    records: list[Record]
    skipped: list[Skipped]
    pending: int = 0  # run directories without a record and without failed.json
    failed: int = 0  # run directories with failed.json and no record


# ---- reading and validating -----------------------------------------------------------------
def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_ap(value: Any, where: str) -> None:
    if value is None:
        return
    if not _is_num(value) or math.isnan(value):
        raise RecordError(f"{where}={value!r}: not a number")
    if value != -1 and not (0.0 <= value <= 1.0):
        raise RecordError(f"{where}={value!r}: outside [0, 1] (AP values are fractions)")


def validate_record(d: Any, directory: str | None = None) -> None:
    """Raise :class:`RecordError` naming the first field that makes a record unusable."""
    if not isinstance(d, dict):
        raise RecordError(f"expected a JSON object, got {type(d).__name__}")
    if d.get("schema") != SCHEMA:
        raise RecordError(f"schema={d.get('schema')!r}: unsupported (expected {SCHEMA})")
    for key in ("fingerprint", "spec", "metrics"):
        if key not in d:
            raise RecordError(f"missing key {key!r}")
    if not isinstance(d["fingerprint"], str) or not d["fingerprint"]:
        raise RecordError(f"fingerprint={d['fingerprint']!r}: expected a non-empty string")
    if directory is not None and d["fingerprint"] != directory:
        raise RecordError(
            f"fingerprint={d['fingerprint']!r}: does not match its directory {directory!r}"
        )
    spec = d["spec"]
    if not isinstance(spec, dict):
        raise RecordError(f"spec: expected an object, got {type(spec).__name__}")
    for key in ("benchmark", "id_split"):
        if not isinstance(spec.get(key), str) or not spec.get(key):
            raise RecordError(f"spec.{key}={spec.get(key)!r}: expected a non-empty string")
    for key in ("backbone", "recipe"):
        part = spec.get(key)
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise RecordError(f"spec.{key}={part!r}: expected an object with a name")
    if not isinstance(spec.get("seed"), int) or isinstance(spec.get("seed"), bool):
        raise RecordError(f"spec.seed={spec.get('seed')!r}: expected an int")
    params = spec["recipe"].get("params")
    if params is not None and not isinstance(params, dict):
        raise RecordError(f"spec.recipe.params={params!r}: expected an object")
    ood = spec.get("ood_splits")
    if ood is not None and not (isinstance(ood, list) and all(isinstance(x, str) for x in ood)):
        raise RecordError(f"spec.ood_splits={ood!r}: expected a list of split names")
    corruption = spec.get("corruption")
    if corruption is not None and not (isinstance(corruption, dict)
                                       and isinstance(corruption.get("base"), str)):
        raise RecordError(f"spec.corruption={corruption!r}: expected an object with a base")
    metrics = d["metrics"]
    if not isinstance(metrics, dict):
        raise RecordError(f"metrics: expected an object, got {type(metrics).__name__}")
    for split, m in metrics.items():
        if not isinstance(m, dict):
            raise RecordError(f"metrics.{split}: expected an object, got {type(m).__name__}")
        for k in COCO_KEYS:  # hot loop over every record: the fast path first
            v = m.get(k)
            t = type(v)
            if v is None or ((t is float or t is int) and (0.0 <= v <= 1.0 or v == -1)):
                continue
            _check_ap(v, f"metrics.{split}.{k}")
    summary = d.get("summary")
    if summary is not None:
        if not isinstance(summary, dict):
            raise RecordError(f"summary: expected an object, got {type(summary).__name__}")
        for k in ("id_ap", "id_ap50", "ood_mean", "ood_mean_ap50", "P", "mPC"):
            _check_ap(summary.get(k), f"summary.{k}")
        for k in ("gap", "rPC"):
            v = summary.get(k)
            if v is not None and not _is_num(v):
                raise RecordError(f"summary.{k}={v!r}: not a number")
        for k in ("ood", "corruption"):
            v = summary.get(k)
            if v is not None and not isinstance(v, dict):
                raise RecordError(f"summary.{k}: expected an object or null")
        if summary.get("protocol") not in (None, "coco", "voc"):
            raise RecordError(f"summary.protocol={summary.get('protocol')!r}: expected "
                              "'coco' or 'voc'")
        for split, v in (summary.get("ood") or {}).items():
            _check_ap(v, f"summary.ood.{split}")
        for name, by_sev in (summary.get("corruption") or {}).items():
            if not isinstance(by_sev, dict):
                raise RecordError(f"summary.corruption.{name}: expected an object")
            for sev, v in by_sev.items():
                if not str(sev).isdigit():
                    raise RecordError(f"summary.corruption.{name}: severity {sev!r} is not an int")
                _check_ap(v, f"summary.corruption.{name}.{sev}")
    rgn = d.get("rgn")
    if rgn is not None and not isinstance(rgn, dict):
        raise RecordError(f"rgn: expected an object or null, got {type(rgn).__name__}")
    for key in ("provenance", "artifacts"):
        v = d.get(key)
        if v is not None and not isinstance(v, dict):
            raise RecordError(f"{key}: expected an object or null, got {type(v).__name__}")
    for key, sub in (("provenance", "datasets"), ("artifacts", "predictions")):
        v = (d.get(key) or {}).get(sub)
        if v is not None and not (isinstance(v, dict)
                                  and all(isinstance(x, str) for x in v.values())):
            raise RecordError(f"{key}.{sub}: expected an object of split → string")


def read_record(path: Path) -> Record:
    """Read and validate one record file; raise :class:`RecordError` with the reason."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecordError(f"unreadable: {e.strerror or e}") from None
    if not raw.strip():
        raise RecordError("empty file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RecordError(f"not UTF-8 text: {e}") from None
    except json.JSONDecodeError as e:
        raise RecordError(f"malformed JSON (truncated?): {e}") from None
    validate_record(data, path.parent.name)
    return Record(path, hashlib.sha256(raw).hexdigest(), data)


def load_records(results_dir: Path) -> Loaded:
    """All records under ``results_dir/runs``, sorted by fingerprint; bad ones are skipped."""
    runs = Path(results_dir) / "runs"
    loaded = Loaded([], [])
    if not runs.is_dir():
        return loaded
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()):
        path = run_dir / RECORD
        if not path.exists():
            if (run_dir / FAILED).exists():
                loaded.failed += 1
            else:
                loaded.pending += 1
            continue
        try:
            loaded.records.append(read_record(path))
        except RecordError as e:
            loaded.skipped.append(Skipped(_display_path(path, results_dir), str(e)))
    return loaded


def _display_path(path: Path, results_dir: Path) -> str:
    try:
        return str(Path(results_dir).name / path.relative_to(results_dir))
    except ValueError:
        return str(path)


# ---- labels -------------------------------------------------------------------------------
def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 8) -> str:
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:n]


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


# ---- frames -------------------------------------------------------------------------------
def _num(v: Any) -> float:
    """A value for a frame: numbers as float, -1 (pycocotools' "no ground truth") and
    anything else as NaN."""
    if _is_num(v) and v != -1 and math.isfinite(v):
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
        "recipe_params": _canonical(spec["recipe"].get("params") or {}),
        "recipe_label": recipe_label(spec["recipe"]),
        "seed": int(spec["seed"]),
        "config_key": config_key(spec),
        "train_split": spec.get("train_split") or "",
        "id_split": spec["id_split"],
        "ood_splits": _canonical(list(spec.get("ood_splits") or [])),
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
        "predictions": dict(((d.get("artifacts") or {}).get("predictions")) or {}),
    }


def _datasets(d: Mapping[str, Any]) -> dict[str, str]:
    prov = d.get("provenance") or {}
    ds = prov.get("datasets")
    if not isinstance(ds, dict) or not ds:
        ds = (d.get("spec") or {}).get("data") or {}
    return {str(k): str(v) for k, v in ds.items()} if isinstance(ds, dict) else {}


def _summary_values(d: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's numbers (in its protocol: ``summary.protocol``, "coco" when absent) and
    both protocols' ID AP and OOD mean recomputed from ``metrics`` (``coco_*``, ``voc_*``)."""
    s = d.get("summary") or {}
    out: dict[str, Any] = {k: _num(s.get(k)) for k in SUMMARY_KEYS}
    if s.get("rPC") is not None and _is_num(s.get("rPC")):
        out["rPC"] = float(s["rPC"])
    if s.get("gap") is not None and _is_num(s.get("gap")):
        out["gap"] = float(s["gap"])
    out["protocol"] = str(s.get("protocol") or "coco")
    rgn = d.get("rgn") or {}
    out["rgn"] = _num(rgn.get("rgn"))
    out["rgn_l2"] = _num(rgn.get("rgn_l2"))
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
        for split, ap in (s.get("ood") or {}).items():
            wide[f"ood/{split}"] = _num(ap)
        metrics = d["metrics"]
        for split in d["spec"].get("ood_splits") or ():
            voc = (metrics.get(split) or {}).get(VOC_KEY)
            if isinstance(voc, dict):
                wide[f"voc_ood/{split}"] = _num(voc.get("AP"))
            if split in metrics:
                wide[f"coco_ood/{split}"] = _num(metrics[split].get("AP"))
        for name, by_sev in (s.get("corruption") or {}).items():
            for sev, ap in by_sev.items():
                wide[f"corr/{name}/{int(sev)}"] = _num(ap)
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
        return pd.DataFrame(columns=list(LONG_COLUMNS))
    split = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    pos = pd.Series(np.arange(len(runs)), index=runs["fingerprint"].to_numpy())
    run_idx = pos.loc[split["fingerprint"].to_numpy()].to_numpy()
    base_cols = [c for c in (*RUN_COLUMNS, *SUMMARY_KEYS, "protocol", "rgn", "rgn_l2",
                             *PROVENANCE_COLUMNS)
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


LONG_COLUMNS = (*RUN_COLUMNS, "split", "role", "corruption", "dataset_fingerprint",
                "predictions", "severity", *COCO_KEYS, "voc_AP", "voc_AP50", "voc_AP75",
                "voc_protocol", *SUMMARY_KEYS, "protocol", "rgn", "rgn_l2", *PROVENANCE_COLUMNS)


def runs_frame(records: Sequence[Record]) -> pd.DataFrame:
    """One row per run: spec labels, summary, RGN, provenance. Wide columns: ``ood/<split>``
    (AP per OOD split, from the summary), ``voc_ood/<split>`` (VOC-protocol AP where
    recorded) and ``corr/<name>/<severity>``."""
    flat = _Flattener(splits=False)
    for rec in records:
        flat.add(rec)
    return _combine_runs([flat.frames()[0]])


def long_frame(records: Sequence[Record]) -> pd.DataFrame:
    """One row per run × evaluated split: every COCO metric (and VOC-protocol AP where
    recorded), the split's role, its dataset fingerprint, the run's summary, RGN and
    provenance (the leaderboard export)."""
    flat = _Flattener()
    for rec in records:
        flat.add(rec)
    runs_part, split_part = flat.frames()
    runs = _combine_runs([runs_part])
    return _combine_long([split_part] if split_part is not None else [], runs)


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
            skipped.append(Skipped(_display_path(path, results_dir), str(e)))
    runs, split = flat.frames()
    return runs, split, skipped


PARALLEL_MIN_RECORDS = 400


def load_frames(results_dir: Path, workers: int | None = None, *, long: bool = True) -> Frames:
    """Read, validate and flatten every record under ``results_dir/runs``.

    With many records the JSON parsing and flattening is split over forked worker processes
    (``workers``, default: the CPU count, at most 4); each sends back DataFrames. ``long``:
    also build the long (run × split) frame.
    """
    runs_dir = Path(results_dir) / "runs"
    paths: list[Path] = []
    pending = failed = 0
    if runs_dir.is_dir():
        for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
            path = run_dir / RECORD
            if path.exists():
                paths.append(path)
            elif (run_dir / FAILED).exists():
                failed += 1
            else:
                pending += 1
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


def manifest_id(datasets: Iterable[Mapping[str, str]]) -> str:
    """Short id of the union of (split, fingerprint) pairs of a set of runs."""
    merged: dict[str, set[str]] = {}
    for ds in datasets:
        for k, v in ds.items():
            merged.setdefault(k, set()).add(v)
    if not merged:
        return "none"
    return short_hash({k: sorted(v) for k, v in sorted(merged.items())}, 6)


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


def nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, np.floating):
        return None if np.isnan(x) else float(x)
    return x
