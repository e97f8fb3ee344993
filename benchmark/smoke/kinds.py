"""Cell kinds: the cells of a grid that exercise the same code at the same geometry.

A kind is (family, engine, backbone, recipe, schedule shape). The recipe part keeps the
recipe's name and its categorical parameters (``weighting``, ``variant``, ``optimizer``…):
they choose code paths; numeric ones (learning rates, α, λ) and the seed do not. The
schedule shape is what sets memory and time per iteration: batch, input sizes, precision,
augmentation. One cell stands for its kind in a smoke test; the kind's other cells share
its cost per iteration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmark.spec import RunSpec

#: schedule keys that make up a kind's schedule shape
SHAPE_KEYS = ("batch_size", "train_sizes", "max_size", "test_size", "eval_batch_size", "amp",
              "augment")


@dataclass(frozen=True)
class Kind:
    family: str
    engine: str
    backbone: str  # name[weights] plus non-default options
    recipe: str  # name(categorical parameters)
    shape: str

    @property
    def label(self) -> str:
        return f"{self.family}/{self.engine}/{self.backbone}/{self.recipe}/{self.shape}"


def _shape(spec: RunSpec) -> str:
    s = spec.schedule
    sizes = (f"{s.train_sizes[0]}" if len(s.train_sizes) == 1
             else f"{min(s.train_sizes)}-{max(s.train_sizes)}")
    extra = "".join(f",{k}={getattr(s, k)}" for k in ("amp", "augment")
                    if getattr(s, k) not in ("off", "none"))
    return f"b{s.batch_size}@{sizes}/{s.test_size}<={s.max_size}{extra}"


def _backbone(spec: RunSpec) -> str:
    b = spec.backbone
    opts = [f"{k}={getattr(b, k)}" for k, default in
            (("norm", "frozen"), ("strict", True), ("study_compat", False), ("freeze_at", None))
            if getattr(b, k) != default]
    if b.drop_path:
        opts.append("drop_path")  # a rate, not a code path: only whether it is on
    return b.label + (f"({','.join(opts)})" if opts else "")


def _recipe(spec: RunSpec) -> str:
    shown = [f"{k}={v}" for k, v in spec.recipe.params
             if isinstance(v, str | bool) or v is None]
    return f"{spec.recipe.name}({','.join(shown)})" if shown else spec.recipe.name


def kind_of(spec: RunSpec) -> Kind:
    return Kind(spec.family, spec.engine, _backbone(spec), _recipe(spec), _shape(spec))


@dataclass
class KindGroup:
    """A kind, the cell that stands for it and every cell of the grid it covers."""

    kind: Kind
    cells: list[RunSpec] = field(default_factory=list)

    @property
    def representative(self) -> RunSpec:
        return self.cells[0]


def group_kinds(cells: list[RunSpec]) -> list[KindGroup]:
    """The kinds of ``cells`` in first-seen order (a grid's cells list parents first)."""
    groups: dict[Kind, KindGroup] = {}
    for spec in cells:
        kind = kind_of(spec)
        groups.setdefault(kind, KindGroup(kind)).cells.append(spec)
    return list(groups.values())
