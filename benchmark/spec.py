"""RunSpec: one cell of a grid — frozen, validated on construction, serialisable, fingerprinted.

A leaf of the package: it imports only the store's canonical JSON and the errors. What a
spec *means* (its parent run, its family's protocol) is resolved by the layers above it.
It is over 400 lines because every key's validation sits next to the fingerprint that key
feeds (training, measurement, evaluation, bookkeeping): splitting them would let the two
drift apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from benchmark.errors import ConfigError
from benchmark.store import canonical_json

# Bump when a change alters the numbers a run produces (training, evaluation, data):
# it is part of every fingerprint, so finished runs are only recomputed when it changes.
# 5: detectron2's box-head initialisation, no weight decay on norms, CPU-independent data
# (4 was taken by a commit that was reverted: a record made then must never match this code)
RESULTS_VERSION = 5

# What each schedule key changes (the rest of the schedule defines the training itself):
#: keys that change what is *measured* at the start of a training (RGN, importance maps), so
#: they name the training and the record — but never the random draws of the training
MEASUREMENT_KEYS = ("rgn_batches", "importance_batches")
#: keys that change the evaluation (the test size; the batch, whose padding moves predictions
#: on splits of mixed image sizes): they name the record and the evaluation, not the training
EVALUATION_KEYS = ("test_size", "eval_batch_size", "eval_backend")
#: keys that change the arithmetic of the training but none of its draws: they name the
#: training and the record, never the seed, so an AMP run takes the batches, flips and
#: samples of its fp32 twin
NUMERICS_KEYS = ("amp",)
#: keys that only control saving: in no fingerprint and no seed
BOOKKEEPING_KEYS = ("checkpoint_every",)
#: schedule keys left out of the canonical JSON (and so of every fingerprint) at these
#: defaults: adding them moved no existing fingerprint (as ``corruption.channel_order``)
SCHEDULE_OMITTED_DEFAULTS = {"amp": "off", "eval_backend": "pycocotools", "augment": "none"}
#: mixed precision of the training step (``torch.autocast``): off (fp32), fp16 (with a
#: gradient scaler), bf16
AMP_MODES = ("off", "fp16", "bf16")
#: training-image augmentation after the flip: none, or the transfer study's Swin crop policy
#: (benchmark.data.loader.study_crop)
AUGMENTS = ("none", "study_crop")
#: COCO evaluation backends (``benchmark.evaluation.coco.BACKENDS``; spelled here because
#: the spec is a leaf and validates on construction)
EVAL_BACKENDS = ("pycocotools", "faster_coco_eval")
#: learning-rate policies (benchmark.training.schedule.lr_factor)
POLICIES = ("onecycle", "step")



#: the array a corruption is applied to: RGB (imagecorruptions' convention) or BGR (what
#: mmdetection's robustness pipeline passes it: the array ``LoadImageFromFile`` returns)
CHANNEL_ORDERS = ("rgb", "bgr")
_TAGS = {"rgb": "-C.", "bgr": "-Cbgr."}


def corrupted_split_name(base: str, corruption: str, severity: int,
                         channel_order: str = "rgb") -> str:
    """The name of split ``base`` under ``corruption`` at ``severity``: ``<base>-C.<c>.<s>``,
    or ``<base>-Cbgr.<c>.<s>`` for a corruption applied to the BGR array."""
    return f"{base}{_TAGS[channel_order]}{corruption}.{severity}"


def corrupted_split_channel_order(name: str) -> str:
    """The channel order a corrupted split's name says ("rgb" unless ``-Cbgr.``)."""
    return "bgr" if "-Cbgr." in name else "rgb"


def parse_corrupted_split_name(name: str) -> tuple[str, str, int] | None:
    """``"demo_test-C.fog.3"`` → ``("demo_test", "fog", 3)`` (``-Cbgr.`` alike; see
    :func:`corrupted_split_channel_order`); ``None`` for a plain split."""
    base, sep, rest = name.rpartition(_TAGS[corrupted_split_channel_order(name)])
    if not sep:
        return None
    corruption, _, severity = rest.rpartition(".")
    if not corruption or not severity.isdigit():
        return None
    return base, corruption, int(severity)


def _doc(description: str, choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """A grid key's field metadata: keyword arguments of ``pydantic.Field``, from which
    :mod:`benchmark.schema` declares the grid file (the description an editor shows, the
    accepted values where they are few). Validation stays in ``__post_init__``."""
    return {"description": description,
            **({"json_schema_extra": {"enum": list(choices)}} if choices else {})}


def _check(cond: bool, field_name: str, value: object, problem: str) -> None:
    if not cond:
        raise ConfigError(f"{field_name}={value!r}: {problem}")


#: a body's BatchNorm layers: "frozen" (statistics and affine fixed: detectron2's FrozenBN)
#: or "eval_affine" (statistics fixed, affine trained: mmdetection's ``norm_eval=True`` with
#: ``norm_cfg=dict(type='BN', requires_grad=True)``)
NORM_MODES = ("frozen", "eval_affine")


@dataclass(frozen=True)
class BackboneSpec:
    name: str = field(metadata=_doc("backbone architecture (benchmark.models.BACKBONES)"))
    weights: str = field(default="imagenet", metadata=_doc(
        "'imagenet' (the package's checkpoint), 'none' (random), a weights-catalogue name "
        "(python -m benchmark.weights) or a file path (relative: under $BENCH_WEIGHTS)"))
    freeze_at: int | None = field(default=None, metadata=_doc(
        "how many stages, the stem first, stay frozen (null: the backbone's default)"))
    strict: bool = field(default=True, metadata=_doc(
        "false: a checkpoint covering part of the body is accepted"))
    drop_path: float = field(default=0.0, metadata=_doc(
        "stochastic depth during fine-tuning, in [0, 1) (the studies use 0)"))
    norm: str = field(default="frozen", metadata=_doc(
        "BatchNorm handling: frozen (statistics and affine fixed: detectron2's FrozenBN) or "
        "eval_affine (statistics fixed, affine trained: mmdetection's norm_eval)", NORM_MODES))
    study_compat: bool = field(default=False, metadata=_doc(
        "true: feed the body as the study's code did, documented input defects included "
        "(benchmark.models.study_input; an experiment's study_compat: true sets it)"))

    def __post_init__(self) -> None:
        _check(
            isinstance(self.name, str) and bool(self.name),
            "backbone.name",
            self.name,
            "must be a non-empty string",
        )
        _check(isinstance(self.weights, str), "backbone.weights", self.weights, "must be a string")
        _check(
            self.freeze_at is None or (isinstance(self.freeze_at, int) and self.freeze_at >= 0),
            "backbone.freeze_at",
            self.freeze_at,
            "must be a non-negative int",
        )
        _check(isinstance(self.strict, bool), "backbone.strict", self.strict, "must be a bool")
        _check(
            isinstance(self.drop_path, int | float) and 0 <= self.drop_path < 1,
            "backbone.drop_path",
            self.drop_path,
            "must be a number in [0, 1)",
        )
        _check(self.norm in NORM_MODES, "backbone.norm", self.norm,
               f"must be one of {', '.join(NORM_MODES)}")
        _check(isinstance(self.study_compat, bool), "backbone.study_compat", self.study_compat,
               "must be a bool")

    @property
    def label(self) -> str:
        return f"{self.name}[{self.weights}]"


@dataclass(frozen=True)
class RecipeSpec:
    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        _check(
            isinstance(self.name, str) and bool(self.name),
            "recipe.name",
            self.name,
            "must be a non-empty string",
        )
        object.__setattr__(self, "params", tuple(sorted(dict(self.params).items())))

    @classmethod
    def make(cls, name: str, **params: Any) -> RecipeSpec:
        return cls(name, tuple(params.items()))

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    @property
    def label(self) -> str:
        """``reg_ft(weighting=ewc)``: the name and the parameters that tell cells apart
        (learning rates left out: one per recipe in a grid)."""
        shown = [f"{k}={v}" for k, v in self.params if not k.endswith("lr")]
        return f"{self.name}({', '.join(shown)})" if shown else self.name


@dataclass(frozen=True)
class Schedule:
    """The schedule of a cell. Its keys fall in four groups (see :data:`MEASUREMENT_KEYS`,
    :data:`EVALUATION_KEYS`, :data:`BOOKKEEPING_KEYS`; the rest define the training): only
    the training keys seed the random draws, so a checkpoint interval, an evaluation batch
    or an RGN batch count never changes what a training learns."""

    iterations: int = field(metadata=_doc("training iterations, one batch each"))
    batch_size: int = field(metadata=_doc("training images per iteration"))
    lr: float = field(metadata=_doc("base learning rate (a recipe's lr replaces it)"))
    momentum: float = field(default=0.9, metadata=_doc("SGD momentum"))
    weight_decay: float = field(default=1e-4, metadata=_doc("weight decay"))
    # detectron2's SOLVER.WEIGHT_DECAY_NORM = 0.0 (facebookresearch/detectron2@02b5c4e2
    # detectron2/config/defaults.py:541) is the suite's default: both engines are detectron2's
    weight_decay_norm: float | None = field(default=0.0, metadata=_doc(
        "weight decay of normalisation layers' affine tensors (null: weight_decay)"))
    warmup_iters: int = field(default=0, metadata=_doc(
        "linear warm-up iterations (onecycle: at least 20% of the iterations)"))
    policy: str = field(default="onecycle", metadata=_doc(
        "onecycle (warm-up, then cosine decay to 0) or step (warm-up from 0.001, then "
        "lr × 0.1 at each of steps)", POLICIES))
    steps: tuple[int, ...] = field(default=(), metadata=_doc(
        "iterations at which lr *= 0.1 (policy step)"))
    train_sizes: tuple[int, ...] = field(default=(800,), metadata=_doc(
        "training short side in pixels, one drawn per batch"))
    max_size: int = field(default=1333, metadata=_doc("longest side in pixels, at most"))
    test_size: int = field(default=800, metadata=_doc("evaluation short side in pixels"))
    hflip: bool = field(default=True, metadata=_doc("random horizontal flips in training"))
    checkpoint_every: int = field(default=100, metadata=_doc(
        "iterations between checkpoints (in no fingerprint)"))
    rgn_batches: int = field(default=100, metadata=_doc(
        "RGN over min(this, |train| / batch) batches"))
    # mind_back's ITER_GRAD_COMP = 5000 (VisionLearningGroup/mind_back@5e6694f,
    # src/engine/config.py:20)
    importance_batches: int = field(default=5000, metadata=_doc(
        "a regulariser's importance maps over min(this, |train| / batch) batches"))
    eval_batch_size: int = field(default=8, metadata=_doc("images per evaluation batch"))
    amp: str = field(default="off", metadata=_doc(
        "mixed precision of the training step: off (fp32), fp16 (with a gradient scaler) or "
        "bf16", AMP_MODES))
    augment: str = field(default="none", metadata=_doc(
        "training-image augmentation after the flip: none, or the transfer study's Swin crop "
        "policy (benchmark.data.loader.study_crop)", AUGMENTS))
    eval_backend: str = field(default="pycocotools", metadata=_doc(
        "COCO evaluation backend", EVAL_BACKENDS))

    def __post_init__(self) -> None:
        _check(self.augment in AUGMENTS, "schedule.augment", self.augment,
               f"must be one of {', '.join(AUGMENTS)}")
        _check(self.amp in AMP_MODES, "schedule.amp", self.amp,
               f"must be one of {', '.join(AMP_MODES)}")
        _check(self.eval_backend in EVAL_BACKENDS, "schedule.eval_backend", self.eval_backend,
               f"must be one of {', '.join(EVAL_BACKENDS)}")
        object.__setattr__(self, "train_sizes", tuple(self.train_sizes))
        _check(
            bool(self.train_sizes) and all(isinstance(v, int) and v > 0 for v in self.train_sizes),
            "schedule.train_sizes",
            self.train_sizes,
            "must be a non-empty list of positive ints",
        )
        for name in (
            "iterations",
            "batch_size",
            "max_size",
            "test_size",
            "checkpoint_every",
            "eval_batch_size",
        ):
            v = getattr(self, name)
            _check(isinstance(v, int) and v > 0, f"schedule.{name}", v, "must be a positive int")
        for name in ("warmup_iters", "rgn_batches", "importance_batches"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 0, f"schedule.{name}", v, "must be an int >= 0")
        _check(
            isinstance(self.lr, int | float) and self.lr > 0,
            "schedule.lr",
            self.lr,
            "must be a positive number",
        )
        _check(
            self.policy in POLICIES,
            "schedule.policy",
            self.policy,
            "must be 'onecycle' or 'step'",
        )
        object.__setattr__(self, "steps", tuple(self.steps))


@dataclass(frozen=True)
class CorruptionSpec:
    base: str
    names: tuple[str, ...]
    severities: tuple[int, ...]
    channel_order: str = field(default="rgb", metadata=_doc(
        "the array a corruption is applied to: rgb (imagecorruptions' convention) or bgr (as "
        "mmdetection's robustness pipeline, Michaelis et al.)", CHANNEL_ORDERS))

    def __post_init__(self) -> None:
        _check(self.channel_order in CHANNEL_ORDERS, "corruption.channel_order",
               self.channel_order, f"must be one of {', '.join(CHANNEL_ORDERS)}")
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "severities", tuple(self.severities))
        for s in self.severities:
            _check(
                isinstance(s, int) and 1 <= s <= 5,
                "corruption.severities",
                s,
                "severities are ints in 1..5",
            )


@dataclass(frozen=True)
class RunSpec:
    family: str  # benchmark family (recorded under the JSON key "benchmark")
    engine: str
    backbone: BackboneSpec
    recipe: RecipeSpec
    train_split: str
    id_split: str
    ood_splits: tuple[str, ...]
    corruption: CorruptionSpec | None
    schedule: Schedule
    seed: int
    # (split, content fingerprint) for every split the run reads; filled in by the grid loader
    data: tuple[tuple[str, str], ...] = field(default=(), compare=True)

    def __post_init__(self) -> None:
        _check(
            isinstance(self.family, str) and bool(self.family),
            "family",
            self.family,
            "must be a benchmark family's name (benchmark.families)",
        )
        _check(
            isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed, "must be an int >= 0"
        )
        object.__setattr__(self, "ood_splits", tuple(self.ood_splits))
        object.__setattr__(self, "data", tuple(sorted(self.data)))

    # ---- derived -------------------------------------------------------------------------
    @property
    def corrupted_splits(self) -> list[tuple[str, str, int]]:
        """(split name, corruption, severity) for every corruption condition."""
        if self.corruption is None:
            return []
        c = self.corruption
        return [(corrupted_split_name(c.base, n, s, c.channel_order), n, s)
                for n in c.names for s in c.severities]

    @property
    def eval_splits(self) -> list[str]:
        splits = [self.id_split, *self.ood_splits, *(s for s, _, _ in self.corrupted_splits)]
        if self.corruption is not None and self.corruption.base not in splits:
            splits.insert(1, self.corruption.base)
        return splits

    @property
    def all_splits(self) -> list[str]:
        return [self.train_split, *self.eval_splits]

    @property
    def label(self) -> str:
        return (
            f"{self.backbone.label} × {self.recipe.label} on {self.train_split} (seed {self.seed})"
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists); inverse of :func:`spec_from_json`."""
        return json.loads(self._canonical)

    @cached_property
    def _canonical(self) -> str:
        # shallow field access: dataclasses.asdict deep-copies and dominated grid planning
        def flat(obj: Any) -> dict[str, Any]:
            return {f.name: getattr(obj, f.name) for f in fields(obj)}

        d = flat(self)
        d["benchmark"] = d.pop("family")  # the record key predates the name; fingerprints keep it
        # backbone keys at their defaults are left out, so adding one moves no fingerprint
        backbone = flat(self.backbone)
        for key, default in (("strict", True), ("drop_path", 0.0), ("norm", "frozen"),
                             ("study_compat", False)):
            if backbone[key] == default:
                del backbone[key]
        d.update(
            backbone=backbone,
            recipe={"name": self.recipe.name, "params": dict(self.recipe.params)},
            schedule=_schedule_json(flat(self.schedule)),
            corruption=None if self.corruption is None else self._corruption_json(),
            data=dict(self.data),
        )
        return canonical_json(d)

    def _hash(self, payload: dict[str, Any]) -> str:
        payload = {**payload, "results_version": RESULTS_VERSION}
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]

    def _corruption_json(self) -> dict[str, Any]:
        assert self.corruption is not None
        d = {f.name: getattr(self.corruption, f.name) for f in fields(self.corruption)}
        if d["channel_order"] == "rgb":  # the default is left out: earlier fingerprints hold
            del d["channel_order"]
        return d

    @cached_property
    def fingerprint(self) -> str:
        """Names the run's record: everything that changes its numbers, data content
        included — all of the spec but the bookkeeping keys of the schedule."""
        d = self.to_json()
        d["schedule"] = {k: v for k, v in d["schedule"].items() if k not in BOOKKEEPING_KEYS}
        return self._hash({"spec": d})

    @cached_property
    def seed_fingerprint(self) -> str:
        """What the training's random draws are derived from: the training's definition
        (engine, backbone, recipe, train split and its content, training keys, seed) and
        nothing else."""
        d = self.to_json()
        other = (*MEASUREMENT_KEYS, *EVALUATION_KEYS, *BOOKKEEPING_KEYS, *NUMERICS_KEYS)
        payload = {k: d[k] for k in ("engine", "backbone", "recipe", "train_split", "seed")}
        payload["schedule"] = {k: v for k, v in d["schedule"].items() if k not in other}
        payload["data"] = d["data"].get(self.train_split)
        return self._hash(payload)

    @cached_property
    def train_fingerprint(self) -> str:
        """Names the training (its checkpoints and RGN): runs that differ only in their
        evaluation share one training."""
        measured = {k: getattr(self.schedule, k) for k in MEASUREMENT_KEYS}
        payload: dict[str, Any] = {"seed_fingerprint": self.seed_fingerprint,
                                   "measured": measured}
        numerics = _schedule_json({k: getattr(self.schedule, k) for k in NUMERICS_KEYS})
        if numerics:  # fp32 (the default) is left out: earlier fingerprints hold
            payload["numerics"] = numerics
        return self._hash(payload)

    @cached_property
    def eval_fingerprint(self) -> str:
        """Names the evaluations of the training's final checkpoint (predictions and
        per-split metrics): the training plus the evaluation keys."""
        evaluated = _schedule_json({k: getattr(self.schedule, k) for k in EVALUATION_KEYS})
        return self._hash({"train_fingerprint": self.train_fingerprint, "evaluated": evaluated})


def _schedule_json(keys: dict[str, Any]) -> dict[str, Any]:
    """``keys`` without those at their :data:`SCHEDULE_OMITTED_DEFAULTS`."""
    return {k: v for k, v in keys.items()
            if k not in SCHEDULE_OMITTED_DEFAULTS or v != SCHEDULE_OMITTED_DEFAULTS[k]}


def spec_from_json(d: dict[str, Any]) -> RunSpec:
    """Inverse of :meth:`RunSpec.to_json`."""
    c = d.get("corruption")
    return RunSpec(
        family=d["benchmark"],
        engine=d["engine"],
        backbone=BackboneSpec(**d["backbone"]),
        recipe=RecipeSpec(d["recipe"]["name"], tuple(d["recipe"]["params"].items())),
        train_split=d["train_split"],
        id_split=d["id_split"],
        ood_splits=tuple(d["ood_splits"]),
        corruption=None if c is None else CorruptionSpec(**c),
        schedule=Schedule(**d["schedule"]),
        seed=d["seed"],
        data=tuple(d.get("data", {}).items()),
    )


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any parts (global seed, fingerprint, purpose, ...)."""
    h = hashlib.sha256(canonical_json([str(p) for p in parts]).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF
