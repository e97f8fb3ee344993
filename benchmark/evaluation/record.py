"""The run record's owner: its schema version, its construction from a cell's results
(:func:`make_record`, what the pipeline writes) and its validation (:func:`validate_record`,
what the report reads). Its checksum is computed and checked by the store, which writes
and reads the file (:func:`benchmark.store.record_checksum`,
:func:`benchmark.store.checksum_problem`); the layout is ``docs/CONTRACTS.md`` "Run record".
"""

from __future__ import annotations

import math
from typing import Any

from benchmark.evaluation.coco import COCO_KEYS
from benchmark.evaluation.summary_metrics import metric_entries
from benchmark.spec import RunSpec
from benchmark.store.cells import checksum_problem

#: the record layout's version: a reader refuses any other
SCHEMA = 1


class RecordError(ValueError):
    """A record that cannot be used; the message is the reason shown in the report."""


def make_record(
    spec: RunSpec,
    *,
    grid: str,
    protocol: dict[str, Any],
    metrics: dict[str, dict],
    summary: dict[str, Any],
    rgn: dict[str, Any] | None,
    provenance: dict[str, Any],
    checkpoint: str,
    predictions: dict[str, str],
    smoke: bool = False,
) -> dict[str, Any]:
    """The record of one cell, keys in their written order (a record's bytes, and so its
    checksum, depend on it); ``checksum`` is added by the store when it writes the file.
    ``protocol``: the card the cell ran with (:func:`benchmark.protocol_card.card_of`);
    ``checkpoint`` and ``predictions``: paths relative to the artifacts root. ``smoke`` is
    written only when true, so every other record keeps its bytes."""
    record = {
        "schema": SCHEMA,
        "fingerprint": spec.fingerprint,
        "train_fingerprint": spec.train_fingerprint,
        "grid": grid,
        "spec": spec.to_json(),
        "protocol": protocol,
        "metrics": metrics,
        "summary": summary,
        "rgn": rgn,
        "provenance": provenance,
        "artifacts": {"checkpoint": checkpoint, "predictions": predictions},
    }
    if smoke:
        record["smoke"] = True
    return record


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check_ap(value: Any, where: str) -> None:
    if value is None:
        return
    if not is_number(value) or math.isnan(value):
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
    if "checksum" in d:  # one written without (by hand, by a test) is read unchecked
        problem = checksum_problem(d)
        if problem:
            raise RecordError(problem)
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
        _validate_summary(summary)
    rgn = d.get("rgn")
    if rgn is not None and not isinstance(rgn, dict):
        raise RecordError(f"rgn: expected an object or null, got {type(rgn).__name__}")
    for key in ("provenance", "artifacts", "protocol"):
        v = d.get(key)
        if v is not None and not isinstance(v, dict):
            raise RecordError(f"{key}: expected an object or null, got {type(v).__name__}")
    for key, sub in (("provenance", "datasets"), ("artifacts", "predictions")):
        v = (d.get(key) or {}).get(sub)
        if v is not None and not (isinstance(v, dict)
                                  and all(isinstance(x, str) for x in v.values())):
            raise RecordError(f"{key}.{sub}: expected an object of split → string")


def _validate_summary(summary: Any) -> None:
    """The summary's values, by the unit and shape the metric table declares for each key."""
    if not isinstance(summary, dict):
        raise RecordError(f"summary: expected an object, got {type(summary).__name__}")
    for m in metric_entries("summary", scalar=True):
        v = summary.get(m.key)
        if m.unit == "ap":
            _check_ap(v, f"summary.{m.key}")
        elif v is not None and not is_number(v):
            raise RecordError(f"summary.{m.key}={v!r}: not a number")
    for m in metric_entries("summary", scalar=False):
        v = summary.get(m.key)
        if v is not None and not isinstance(v, dict):
            raise RecordError(f"summary.{m.key}: expected an object or null")
    if summary.get("protocol") not in (None, "coco", "voc"):
        raise RecordError(f"summary.protocol={summary.get('protocol')!r}: expected "
                          "'coco' or 'voc'")
    for m in metric_entries("summary", scalar=False):
        for name, v in (summary.get(m.key) or {}).items():
            if m.per == "domain":
                _check_ap(v, f"summary.{m.key}.{name}")
                continue
            if not isinstance(v, dict):
                raise RecordError(f"summary.{m.key}.{name}: expected an object")
            for sev, x in v.items():
                if not str(sev).isdigit():
                    raise RecordError(f"summary.{m.key}.{name}: severity {sev!r} is not an int")
                _check_ap(x, f"summary.{m.key}.{name}.{sev}")
