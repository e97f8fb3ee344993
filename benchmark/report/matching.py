"""How two runs of two results roots are paired (``compare``, the demo's verdict): the
configuration a run is matched by when fingerprints differ, and what differs between a pair
besides its numbers."""

from __future__ import annotations

from collections.abc import Sequence

from benchmark.report.aggregation import backbone_label, canonical, recipe_label
from benchmark.report.records import Record

BOOKKEEPING = ("checkpoint_every",)  # schedule keys that change no number

#: spec keys a comparison may match across (``compare --across engine``: the same cell on
#: the torchvision and the detectron2 engine)
ACROSS_KEYS = ("engine",)


def configuration(record: Record, across: Sequence[str] = ()) -> str:
    """The run's configuration: its spec without dataset content and bookkeeping keys (and
    without the ``across`` keys)."""
    spec = {k: v for k, v in record.data["spec"].items() if k != "data" and k not in across}
    schedule = {k: v for k, v in (spec.get("schedule") or {}).items() if k not in BOOKKEEPING}
    return canonical({**spec, "schedule": schedule})


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
    return out
