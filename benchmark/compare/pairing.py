"""Compare's run pairing (runs ↔ runs): which run of one results root is paired with which
of another (``compare``, the demo's verdict) — by fingerprint, else by the configuration a
run is matched by when fingerprints differ — and what differs between a pair besides its
numbers (versions, device, threads, CPU)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.report.aggregation import backbone_label, canonical, recipe_label
from benchmark.report.records import Record
from benchmark.spec import BOOKKEEPING_KEYS

#: spec keys a comparison may match across (``compare --across engine``: the same cell on
#: the torchvision and the detectron2 engine)
ACROSS_KEYS = ("engine",)

#: how :func:`differences` begins the entry for two runs' CPUs
CPU_DIFFERS = "CPU differs: "


def configuration(record: Record, across: Sequence[str] = ()) -> str:
    """The run's configuration: its spec without dataset content and bookkeeping keys (and
    without the ``across`` keys)."""
    spec = {k: v for k, v in record.data["spec"].items() if k != "data" and k not in across}
    schedule = {k: v for k, v in (spec.get("schedule") or {}).items() if k not in BOOKKEEPING_KEYS}
    return canonical({**spec, "schedule": schedule})


def pair(reference: Sequence[Record], candidate: Sequence[Record], across: Sequence[str] = ()
         ) -> tuple[list[tuple[Record, Record, str]], list[Record], list[Record]]:
    """((reference, candidate, "fingerprint" | "configuration") pairs, reference only,
    candidate only): by fingerprint, then by configuration without the ``across`` keys
    (several records of one configuration pair up in fingerprint order)."""
    by_fp = {r.fingerprint: r for r in candidate}
    pairs, rest_a = [], []
    for a in sorted(reference, key=lambda r: r.fingerprint):
        b = by_fp.pop(a.fingerprint, None)
        if b is None:
            rest_a.append(a)
        else:
            pairs.append((a, b, "fingerprint"))
    by_config: dict[str, list[Record]] = {}
    for b in sorted(by_fp.values(), key=lambda r: r.fingerprint):
        by_config.setdefault(configuration(b, across), []).append(b)
    only_a = []
    for a in rest_a:
        pool = by_config.get(configuration(a, across))
        if pool:
            pairs.append((a, pool.pop(0), "configuration"))
        else:
            only_a.append(a)
    only_b = sorted((b for pool in by_config.values() for b in pool), key=lambda r: r.fingerprint)
    return pairs, only_a, only_b


def run_label(record: Record) -> str:
    spec = record.data["spec"]
    return (f"{backbone_label(spec['backbone'])} × {recipe_label(spec['recipe'])} · seed "
            f"{spec['seed']} ({spec['benchmark']})")


def datasets_of(record: Record) -> dict[str, str]:
    ds = (record.data.get("provenance") or {}).get("datasets") or record.data["spec"].get(
        "data") or {}
    return {str(k): str(v) for k, v in ds.items()}


def differences(a: Record, b: Record) -> list[str]:
    """What differs between two matched records besides their numbers."""
    out = [f"{k} {a.data['spec'].get(k)} → {b.data['spec'].get(k)}" for k in ACROSS_KEYS
           if a.data["spec"].get(k) != b.data["spec"].get(k)]
    da, db = datasets_of(a), datasets_of(b)
    changed = sorted(s for s in set(da) & set(db) if da[s] != db[s])
    if changed:
        shown = ", ".join(f"`{s}`" for s in changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        out.append(f"dataset content of {shown}{more}")
    pa, pb = a.data.get("provenance") or {}, b.data.get("provenance") or {}
    for key, what in (("results_version", "results version"), ("code_version", "code version"),
                      ("torch", "torch"), ("device", "device"), ("num_threads", "threads")):
        if pa.get(key) != pb.get(key) and (pa.get(key) is not None or pb.get(key) is not None):
            out.append(f"{what} {pa.get(key)} → {pb.get(key)}")
    cpu = cpu_difference(pa.get("cpu"), pb.get("cpu"))
    if cpu:
        out.append(cpu)
    return out


def _flat(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"isa": {"aten": "avx2"}}`` → ``{"isa.aten": "avx2"}`` (non-strings as JSON)."""
    out: dict[str, str] = {}
    for k, v in mapping.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return out


def cpu_difference(a: Any, b: Any) -> str | None:
    """``"CPU differs: isa.aten avx512≠avx2, model …"`` for two records' ``provenance.cpu``
    (an opaque mapping: model, instruction sets, pinning), or None where they agree or neither
    records one. A record without it (older ones) differs from one with it."""
    ca = _flat(a) if isinstance(a, Mapping) else {}
    cb = _flat(b) if isinstance(b, Mapping) else {}
    if ca == cb:
        return None
    if not ca or not cb:
        def name(c: dict[str, str]) -> str:
            return c.get("model") or ", ".join(f"{k} {v}" for k, v in sorted(c.items()))

        return f"{CPU_DIFFERS}{name(ca) or 'not recorded'} ≠ {name(cb) or 'not recorded'}"
    keys = sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))
    return CPU_DIFFERS + ", ".join(f"{k} {ca.get(k, '—')}≠{cb.get(k, '—')}" for k in keys)
