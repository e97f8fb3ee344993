"""Protocol cards: what a run's numbers were measured under, in one comparable object.

A card states the **detector** (architecture, FPN, anchors, RPN, RoI pooler, box head, head
initialisation, losses, samplers, test-time filtering: what defines it, not the name of the
engine that built it — the detectron2 engine and the torchvision engine with detectron2's
geometry give the same detector fields), the **input pipeline** (the channel order the body
receives relative to its weights', the pixel statistics, BatchNorm statistics handling, the
resize implementation), the input sizes, the training schedule, the evaluator (the AP
protocol of each split role and of the summary) and the corruption sweep (channel order,
severities). :func:`card_of` derives it from a :class:`~benchmark.spec.RunSpec`: the engine
states its detector and input fields (the ``card`` attribute of its registered builder,
:mod:`benchmark.models.engine`), the family its evaluator (:mod:`benchmark.families`). The
pipeline writes it into every record (``record["protocol"]``). A publication's card is
stated in the family table next to its rows (``PublishedRow.card``), in the JSON form of
:meth:`ProtocolCard.to_json`, so the families module stays a leaf.

A published number is comparable with a reproduced one only when every field the
publication's card states equals the run's (:func:`compare_cards`); a field the publication
leaves out (Saito et al. report no corruptions) is not compared, and every differing field is
named. Records written before cards existed have none: "card unknown", never comparable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.families import FAMILIES

if TYPE_CHECKING:
    from benchmark.spec import RunSpec

#: split roles of a card's evaluator, in display order (as the report's frames name them)
ROLES = ("id", "ood", "clean", "corrupted")
UNKNOWN = "not comparable: card unknown (record written before protocol cards)"


@dataclass(frozen=True)
class DetectorCard:
    """What defines the detector; each value a short statement of the numbers."""

    architecture: str  # "faster_rcnn_fpn" | "mask_rcnn_fpn"
    fpn: str  # levels and channels
    anchors: str  # sizes per level, ratios, placement
    rpn: str  # proposals kept before / after NMS, NMS threshold
    roi_pooler: str  # operator, resolution, sampling, levels
    box_head: str  # layers, box parametrisation
    head_init: str  # initialisation of the box head
    losses: str  # box and classification losses and their normalisation
    sampler: str  # anchors / RoIs sampled per image and positive fraction
    test: str  # score threshold, NMS, detections per image


@dataclass(frozen=True)
class InputCard:
    """What the body is fed: ``channel_order`` "weights" (the order its weights were trained
    with) or "reversed"; ``pixel_stats`` "weights" (normalised with the statistics the
    weights were trained with, in the weights' channel order); ``bn`` how BatchNorm
    statistics are handled; ``resize`` the resize implementation."""

    channel_order: str
    pixel_stats: str
    bn: str
    resize: str


@dataclass(frozen=True)
class ScheduleCard:
    iterations: int
    batch_size: int
    lr: float
    policy: str
    steps: tuple[int, ...]
    warmup_iters: int


@dataclass(frozen=True)
class EvaluatorCard:
    ap: tuple[tuple[str, str], ...]  # (split role, AP protocol), roles in ROLES order
    summary: str  # the summary's protocol: "coco" | "voc"


@dataclass(frozen=True)
class CorruptionCard:
    channel_order: str  # "rgb" | "bgr"
    severities: tuple[int, ...]


@dataclass(frozen=True)
class ProtocolCard:
    detector: DetectorCard
    input: InputCard
    train_sizes: tuple[int, ...]
    max_size: int
    test_size: int
    schedule: ScheduleCard
    evaluator: EvaluatorCard
    corruption: CorruptionCard | None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (lists for tuples): what records carry and publications state."""
        s, e, c = self.schedule, self.evaluator, self.corruption
        return {
            "detector": asdict(self.detector),
            "input": asdict(self.input),
            "train_sizes": list(self.train_sizes),
            "max_size": self.max_size,
            "test_size": self.test_size,
            "schedule": {"iterations": s.iterations, "batch_size": s.batch_size, "lr": s.lr,
                         "policy": s.policy, "steps": list(s.steps),
                         "warmup_iters": s.warmup_iters},
            "evaluator": {"ap": dict(e.ap), "summary": e.summary},
            "corruption": None if c is None else {"channel_order": c.channel_order,
                                                  "severities": list(c.severities)},
        }


def split_protocols(spec: RunSpec) -> dict[str, str]:
    """{eval split: its AP protocol}: the family's VOC-style protocol where it scores one
    (next to COCO's numbers, which every split records), else "coco"."""
    fam = FAMILIES.get(spec.family)
    return {split: fam.ap_protocol(split) or "coco" for split in spec.eval_splits}


def card_of(spec: RunSpec) -> ProtocolCard:
    """The card ``spec`` runs with: its engine's detector and input fields, sizes, schedule
    and corruption sweep, and its family's evaluator for the split roles it evaluates."""
    from benchmark.models.engine import engine_card  # torch: only where a card is made

    stated = engine_card(spec)
    if stated is None:  # never equal to a publication's card
        unstated = f"not stated by engine {spec.engine}"
        stated = ({f.name: unstated for f in fields(DetectorCard)},
                  {f.name: unstated for f in fields(InputCard)})
    detector, inputs = stated
    fam = FAMILIES.get(spec.family)
    roles: dict[str, list[str]] = {"id": [spec.id_split], "ood": list(spec.ood_splits)}
    if spec.corruption is not None:
        roles["clean"] = [spec.corruption.base]
        roles["corrupted"] = [name for name, _, _ in spec.corrupted_splits]
    ap = tuple((role, "+".join(sorted({fam.ap_protocol(x) or "coco" for x in splits})))
               for role, splits in roles.items() if splits)
    s = spec.schedule
    # the lr the training uses: a recipe's own ``lr`` overrides the schedule's
    # (benchmark.recipes.Recipe.lr: ``params["lr"] or schedule_lr``)
    lr = float(spec.recipe.get("lr") or s.lr)
    c = spec.corruption
    return ProtocolCard(
        detector=DetectorCard(**detector),
        input=InputCard(**inputs),
        train_sizes=tuple(s.train_sizes),
        max_size=s.max_size,
        test_size=s.test_size,
        schedule=ScheduleCard(s.iterations, s.batch_size, lr, s.policy, tuple(s.steps),
                              s.warmup_iters),
        evaluator=EvaluatorCard(ap, fam.summary_protocol),
        corruption=None if c is None else CorruptionCard(c.channel_order, tuple(c.severities)),
    )


# ---- comparing cards (in their JSON form: records and publications store that) --------------
def flatten(card: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted field → value (``schedule.iterations``, ``evaluator.ap.id``, …); ``corruption``
    is one field when the card has none."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = list(value) if isinstance(value, tuple) else value

    walk("", card)
    return out


#: every field a complete card has (a corruption sweep included), in display order
CARD_FIELDS: tuple[str, ...] = (
    *(f"detector.{f.name}" for f in fields(DetectorCard)),
    *(f"input.{f.name}" for f in fields(InputCard)), "train_sizes", "max_size", "test_size",
    *(f"schedule.{f.name}" for f in fields(ScheduleCard)),
    *(f"evaluator.ap.{role}" for role in ROLES), "evaluator.summary",
    "corruption", *(f"corruption.{f.name}" for f in fields(CorruptionCard)),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        if len(value) > 4:
            return f"{_fmt(value[0])}…{_fmt(value[-1])} ({len(value)} values)"
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def differences(run: Mapping[str, Any], published: Mapping[str, Any]) -> list[str]:
    """``"field run≠published"`` for every field the publication states that the run's card
    does not equal; a field the run lacks reads "none"."""
    ours = flatten(run)
    out = []
    for key, value in flatten(published).items():
        mine = ours.get(key)
        if key == "corruption" and any(k.startswith("corruption.") for k in ours):
            mine = "a sweep"
        if not _equal(mine, value):
            out.append(f"{key} {_fmt(mine)}≠{_fmt(value)}")
    return out


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def compare_cards(run: Mapping[str, Any] | None, published: Mapping[str, Any]
                  ) -> tuple[bool, str]:
    """(comparable, text): ``"comparable: cards equal"``, or ``"not comparable: …"`` naming
    the differing fields, or :data:`UNKNOWN` for a record without a card."""
    if not isinstance(run, Mapping) or not run:
        return False, UNKNOWN
    diff = differences(run, published)
    if not diff:
        return True, "comparable: cards equal"
    return False, "not comparable: " + "; ".join(diff)


def check_published_card(card: Mapping[str, Any], where: str) -> None:
    """A publication's card names only fields a card has (typos would silently compare
    nothing)."""
    unknown = sorted(set(flatten(card)) - set(CARD_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: card field {unknown[0]!r} unknown (known: "
                          f"{', '.join(CARD_FIELDS)})")


def describe_card(card: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(field, value) rows for display, in :data:`CARD_FIELDS` order."""
    if not isinstance(card, Mapping):
        return []
    rank = {k: i for i, k in enumerate(CARD_FIELDS)}
    flat = sorted(flatten(card).items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    return [(k, _fmt(v)) for k, v in flat]

