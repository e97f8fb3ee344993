"""Grids: YAML files that expand into RunSpecs (backbones × recipes × seeds per experiment).

```yaml
name: demo
experiments:
  - family: demo               # benchmark family (benchmark.families)
    prepare: demo              # optional: generated data built when missing
    engine: frcnn_fpn_small
    train_split: demo_train
    id_split: demo_test
    ood_splits: [demo_stylized]
    corruption: {base: demo_test, names: benchmark, severities: [3]}
    schedule: {iterations: 300, batch_size: 4, lr: 0.01}
    backbones: [{name: efficientnet_lite0, weights: imagenet}]
    recipes: [{name: ft}, {name: dp, lr: 0.02}, {name: wise_ft, alpha: [0, 0.5, 1]}]
    seeds: [0]
```
A list-valued recipe parameter is a sweep: one recipe per value (``wise_ft`` above is three
cells sharing one DP-FT training).
Top-level keys other than ``name``, ``description``, ``experiments`` and ``reproducible_cpu``
are defaults merged into every experiment. ``study_compat: true`` (per experiment) feeds the
bodies as the study's code did, its documented input defects included
(:mod:`benchmark.models.study_input`); ``reproducible_cpu: true`` (top level) runs every
cell pinned to one CPU instruction-set level (:mod:`benchmark.cpu_pinning`). Everything is
validated before anything runs, every problem of the grid in one pass (one line each, naming
the file, the field and the value): the keys and the type of every value against
:mod:`benchmark.schema` (exported as ``schemas/grid.schema.json`` for editors), then what the
values mean (registered names, recipe parameters, ranges, splits) here and in the specs.

``load_grid(..., overrides=["schedule.iterations=10"])`` changes the document before it is
validated (``--set``): a path whose first key is an experiment key applies to every
experiment; ``experiments.N.…`` to one. ``only="recipe=ft|dp,seed=0"`` keeps the matching
runs (``--only``); their parents still train (:meth:`Grid.cells`).
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import BenchmarkError, ConfigError
from benchmark.registry import Registry
from benchmark.spec import BackboneSpec, CorruptionSpec, RecipeSpec, RunSpec, Schedule

GRIDS_DIR = Path(__file__).parent / "grids"


@dataclass(frozen=True)
class Grid:
    name: str
    path: Path
    runs: list[RunSpec]
    prepare: tuple[str, ...]  # generated datasets this grid builds when missing
    # every cell trains and evaluates in a process pinned to one CPU instruction-set level
    # (benchmark.cpu_pinning): bit-identical records on every x86-64 CPU with AVX2
    reproducible_cpu: bool = False
    overrides: tuple[str, ...] = ()  # --set KEY=VALUE applied to the file
    only: str = ""  # --only filter the runs were selected with

    @property
    def title(self) -> str:
        """The name as printed: overrides and selection shown (it is not the file's grid)."""
        extra = [f"--set {o}" for o in self.overrides] + ([f"--only {self.only}"]
                                                          if self.only else [])
        return f"{self.name} [{' '.join(extra)}]" if extra else self.name

    def cells(self) -> list[RunSpec]:
        """Every run that must train: the grid's runs plus their parents, parents first."""
        from benchmark.recipes import parent_of

        seen: dict[str, RunSpec] = {}

        def add(spec: RunSpec) -> None:
            parent = parent_of(spec)
            if parent is not None:
                add(parent)
            seen.setdefault(spec.fingerprint, spec)

        for spec in self.runs:
            add(spec)
        return list(seen.values())


def grid_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    path = GRIDS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(q.stem for q in GRIDS_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown grid {name_or_path!r} (known: {known}; or give a YAML path)")
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: grid file not found")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(doc).__name__}")
    return doc


def _near(name: str, known: Any) -> str | None:
    import difflib

    near = difflib.get_close_matches(name, sorted(known), n=1)
    return near[0] if near else None


def _nearest(name: str, known: Any) -> str:
    near = _near(name, known)
    return f"did you mean {near!r}? " if near else ""


class GridErrors(ConfigError):
    """Every problem found in one pass over a grid: one line each."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(dict.fromkeys(lines))
        super().__init__("\n".join(self.lines))


def _lines(e: BaseException) -> list[str]:
    return str(e).splitlines() or [type(e).__name__]


def _raise_all(lines: list[str]) -> None:
    if len(lines) == 1:
        raise ConfigError(lines[0])
    if lines:
        raise GridErrors(lines)


_FAILED = object()  # what a check that failed returns (its problem is collected)


class _Problems:
    """Collects the problems of one experiment instead of stopping at the first."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def attempt(self, check: Callable[..., Any], *args: Any) -> Any:
        try:
            return check(*args)
        except BenchmarkError as e:
            self.lines += _lines(e)
            return _FAILED


_Location = tuple[str | int, ...]  # keys and list indices into a document


def _structure(model: Any, doc: dict[str, Any]) -> tuple[list[str], list[_Location]]:
    """The problems of ``doc``'s keys and value types under ``model`` (:mod:`benchmark.schema`),
    one line each, and where they are. An unknown key is named beside its nearest known one;
    a missing key that an unknown key of the same mapping is nearest to is not repeated."""
    from benchmark.schema import problems

    found = problems(model, doc)
    typos = {(p.path[:-1], _near(str(p.path[-1]), p.known)) for p in found if p.kind == "unknown"}
    lines = []
    for p in found:
        if p.kind == "unknown":
            lines.append(f"{p.dotted}: unknown key ({_nearest(str(p.path[-1]), p.known)}known: "
                         f"{', '.join(sorted(p.known))})")
        elif p.kind == "missing":
            if (p.path[:-1], p.path[-1]) not in typos:
                lines.append(f"{p.dotted}: missing required key")
        elif p.kind == "type":
            lines.append(f"{p.dotted}={p.value!r}: expected {p.expected}")
        else:
            lines.append(f"{p.dotted}={p.value!r}: {p.message}")
    return lines, [p.path for p in found]


def _lookup(registry: Registry[Any], name: Any, field: str) -> None:
    """Whether ``name`` is in ``registry``, without importing what registers it."""
    try:
        registry.require(name)
    except ConfigError as e:
        raise ConfigError(f"{field}={name!r}: {e}") from None


def _check_family(exp: dict[str, Any]) -> None:
    from benchmark.families import FAMILIES

    _lookup(FAMILIES, exp["family"], "family")
    roles = FAMILIES.get(exp["family"]).split_roles
    _raise_all([f"{key}={exp[key]!r}: family {exp['family']!r} has no {role} splits "
                f"(its split roles: {', '.join(roles)})"
                for key, role in (("ood_splits", "ood"), ("corruption", "corruption"))
                if exp.get(key) and role not in roles])


def _check_engine(engine: Any) -> None:
    from benchmark.models.registries import ENGINES, OPTIONAL_ENGINES

    _lookup(ENGINES, engine, "engine")
    if engine in ENGINES.declarations() and engine not in OPTIONAL_ENGINES:
        return  # built in, needing only what the suite installs: its module stays unimported
    check_engine = getattr(ENGINES.get(engine), "check_available", None)
    if check_engine is not None:  # an optional engine (detectron2): installed?
        try:
            check_engine()
        except ConfigError as e:
            raise ConfigError(f"engine={engine!r}: {e}") from None


def _corruption(exp: dict[str, Any]) -> CorruptionSpec:
    from benchmark.data.corrupt import corruption_names
    from benchmark.schema import Corruption

    defaults = {k: f.get_default(call_default_factory=True)
                for k, f in Corruption.model_fields.items()}
    c = {**defaults, **exp["corruption"]}
    names = c["names"] if isinstance(c["names"], str) else ",".join(c["names"])
    return CorruptionSpec(
        exp["id_split"] if c["base"] is None else c["base"],
        tuple(corruption_names(names)),
        tuple(c["severities"]),
        c["channel_order"],
    )


def _backbone(b: dict[str, Any], i: int, study_compat: bool) -> BackboneSpec:
    from benchmark.models.registries import BACKBONES

    spec = BackboneSpec(**({**b, "study_compat": True} if study_compat else b))
    _lookup(BACKBONES, spec.name, f"backbones[{i}].name")
    _check_catalogue_pairing(spec, f"backbones[{i}]")
    return spec


def _recipes(r: dict[str, Any], i: int) -> list[RecipeSpec]:
    """The recipes one ``recipes[i]`` entry stands for: a list-valued parameter is a sweep,
    one recipe per value (per combination)."""
    from benchmark.recipes import RECIPES, get_recipe

    r = dict(r)
    name = r.pop("name")
    _lookup(RECIPES, name, f"recipes[{i}].name")
    swept = [k for k, v in r.items() if isinstance(v, list)]
    out = []
    for values in itertools.product(*(r[k] for k in swept)):
        spec_r = RecipeSpec(name, tuple({**r, **dict(zip(swept, values, strict=True))}.items()))
        try:
            out.append(get_recipe(spec_r).canonical())  # validates parameters
        except ConfigError as e:
            raise ConfigError(f"recipes[{i}]: {e}") from None
    return out


def _expand(exp: dict[str, Any]) -> list[RunSpec]:
    """The runs of one experiment; every problem of it at once (:class:`GridErrors`): its
    structure (:mod:`benchmark.schema`), then what the well-formed parts mean."""
    from benchmark.recipes import get_recipe
    from benchmark.schema import Experiment

    p = _Problems()
    p.lines, bad = _structure(Experiment, exp)

    def ok(*path: str | int) -> bool:
        """``exp`` has a well-formed value at ``path`` (one without a problem in or above it)."""
        return path[0] in exp and not any(q[:len(path)] == path or path[:len(q)] == q
                                          for q in bad)

    if ok("family"):
        p.attempt(_check_family, exp)
    if ok("engine"):
        p.attempt(_check_engine, exp["engine"])
    schedule = p.attempt(lambda: Schedule(**exp["schedule"])) if ok("schedule") else _FAILED
    corruption = None
    if ok("corruption") and exp["corruption"] is not None and ok("id_split"):
        corruption = p.attempt(_corruption, exp)
    study_compat = ok("study_compat") and exp["study_compat"]
    backbones = [p.attempt(_backbone, b, i, study_compat)
                 for i, b in enumerate(exp["backbones"] if ok("backbones") else [])
                 if ok("backbones", i)]
    recipes: list[RecipeSpec] = []
    origin: list[int] = []  # the recipes[i] entry each recipe comes from
    for i, r in enumerate(exp["recipes"] if ok("recipes") else []):
        expanded = p.attempt(_recipes, r, i) if ok("recipes", i) else _FAILED
        for spec_r in expanded if expanded is not _FAILED else []:
            if spec_r not in recipes:  # e.g. wise_ft at α = 0 next to the dp it is
                recipes.append(spec_r)
                origin.append(i)
    _raise_all(p.lines)
    seeds, ood = exp.get("seeds", [0]), exp.get("ood_splits", [])
    runs = [
        RunSpec(
            family=exp["family"],
            engine=exp["engine"],
            backbone=b,
            recipe=r,
            train_split=exp["train_split"],
            id_split=exp["id_split"],
            ood_splits=tuple(ood),
            corruption=corruption,
            schedule=schedule,
            seed=s,
        )
        for b in backbones
        for r in recipes
        for s in seeds
    ]
    for run in runs:  # what a recipe cannot serve (relevance maps on a CNN, …)
        try:
            get_recipe(run.recipe).check(run)
        except ConfigError as e:
            i = origin[recipes.index(run.recipe)]
            p.lines.append(f"recipes[{i}] on backbone {run.backbone.name!r}: {e}")
    _raise_all(p.lines)
    return runs


def _check_catalogue_pairing(spec: BackboneSpec, field: str) -> None:
    """A catalogue name is known and names a checkpoint of this backbone's architecture."""
    from benchmark.models.checkpoints import catalogue

    w = spec.weights
    entry = catalogue.lookup(w)
    if entry is None and catalogue.looks_like_name(w):
        raise ConfigError(f"{field}.weights={w!r}: {catalogue.unknown(w)}")
    if entry is not None and entry.architecture != spec.name:
        raise ConfigError(
            f"{field}: backbone {spec.name!r} with weights {w!r}, a checkpoint of "
            f"{entry.architecture!r} (pair them, or pick weights of {spec.name!r})"
        )


_WEIGHTS_FIT: set[tuple[str, bool, str, str]] = set()  # files already loaded and fitting


def _check_weights(runs: list[RunSpec]) -> None:
    """Every weights file a grid names exists, carries the catalogue's hash and fits its
    backbone (checked before anything runs, ``--dry-run`` included); every problem at once.
    A catalogue file whose published hash matches is trusted; any other file is loaded once
    into its backbone with strict key matching (missing and unexpected keys named)."""
    backbones = sorted({r.backbone for r in runs}, key=lambda b: (b.name, b.weights))
    if all(b.weights in ("imagenet", "none") for b in backbones):
        return  # packaged or random: no file (and no torch import) to check
    problems: list[BenchmarkError] = []
    for backbone in backbones:
        try:
            _check_weights_file(backbone)
        except BenchmarkError as e:
            problems.append(e)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise GridErrors([line for e in problems for line in _lines(e)])


def _check_weights_file(backbone: BackboneSpec) -> None:
    from benchmark.errors import MissingFileError
    from benchmark.models.checkpoints import catalogue
    from benchmark.models.checkpoints.catalogue import file_sha256, weights_path

    path = weights_path(backbone.weights)
    if path is None:
        return
    entry = catalogue.lookup(backbone.weights)
    if not path.is_file():
        expected = f"backbone.weights={backbone.weights!r} for {backbone.name}" + (
            f" (catalogue file {entry.file}; `python -m benchmark.weights check`)" if entry
            else " (a state dict of that architecture; relative paths are under "
            "$BENCH_WEIGHTS)")
        raise MissingFileError(path, expected, entry.url if entry else "")
    if entry is not None and catalogue.hash_matches(entry, file_sha256(path)):
        return
    key = (backbone.name, backbone.strict, str(path), file_sha256(path))
    if key in _WEIGHTS_FIT:
        return
    from benchmark.models.backbones import build_body

    try:  # wrong hash, unpublished hash or a plain path: load it (strict keys)
        build_body(backbone.name, backbone.weights, 0, strict=backbone.strict)
    except ConfigError as e:
        raise ConfigError(f"backbone {backbone.name!r}: {e}") from None
    _WEIGHTS_FIT.add(key)


def _check_categories(runs: list[RunSpec], root: Path | None) -> dict[str, str]:
    """Load every split once (validating it); check class lists agree; return fingerprints."""
    from benchmark.data.split import resolve_split

    fps: dict[str, str] = {}
    cats: dict[str, list[tuple[int, str]]] = {}
    for spec in runs:
        for name in spec.all_splits:
            if name not in fps:
                resolved = resolve_split(name, root)
                fps[name] = resolved.fingerprint
                coco = resolved.split.coco
                cats[name] = sorted((c["id"], c["name"]) for c in coco["categories"])
        train = cats[spec.train_split]
        for name in spec.eval_splits:
            if cats[name] != train:
                raise ConfigError(
                    f"eval split {name!r}: categories {cats[name][:4]}... differ from train split "
                    f"{spec.train_split!r} ({train[:4]}...); map both onto the same class list"
                )
    return fps


# ---- --set: overrides of the document ------------------------------------------------------
_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_override(text: str) -> tuple[str, Any]:
    """``"schedule.iterations=10"`` → ``("schedule.iterations", 10)``: VALUE is YAML (``1e-3``
    a number too, as in Python)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, KEY a dotted path into the "
                          "grid (e.g. schedule.iterations=10)")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {key}={value!r}: not a YAML value: "
                          f"{getattr(e, 'problem', e)}") from None
    if isinstance(parsed, str) and _SCIENTIFIC.fullmatch(parsed.strip()):
        parsed = float(parsed)
    return key, parsed


def _set_path(node: Any, parts: list[str], value: Any, where: str, key: str) -> None:
    """``node[parts[0]][parts[1]]... = value``; mappings on the way are made where missing."""
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = ".".join([where, *parts[:depth]]) if where else ".".join(parts[:depth])
        if isinstance(node, list):
            if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                raise ConfigError(f"--set {key}: {here or 'the grid'} is a list of {len(node)}; "
                                  f"{part!r} is not an index of it")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(f"--set {key}: {here}={node!r} holds no {part!r} (not a mapping "
                              "or list)")


def _unknown_key(key: str, first: str, known: Sequence[str]) -> ConfigError:
    return ConfigError(f"--set {key}: unknown key {first!r} ({_nearest(first, known)}known: "
                       f"{', '.join(sorted(known))})")


def apply_overrides(doc: dict[str, Any], overrides: Sequence[str], path: Path
                    ) -> tuple[dict[str, Any], list[tuple[list[str], Any, str]]]:
    """The document with the top-level overrides applied (a copy), and the overrides of
    experiment keys, which apply to every experiment after its defaults are merged."""
    from benchmark.schema import DOC_KEYS, EXPERIMENT_KEYS

    doc = copy.deepcopy(doc)
    per_experiment: list[tuple[list[str], Any, str]] = []
    problems: list[str] = []
    for text in overrides:
        try:
            key, value = parse_override(text)
            parts = key.split(".")
            if parts[0] in EXPERIMENT_KEYS:
                per_experiment.append((parts, value, key))
            elif parts[0] == "experiments" and len(parts) > 2:
                exps = doc.get("experiments")
                if not isinstance(exps, list):
                    raise ConfigError(f"--set {key}: the grid has no experiments list")
                if parts[2] not in EXPERIMENT_KEYS:
                    raise _unknown_key(key, parts[2], EXPERIMENT_KEYS)
                if not parts[1].isdigit() or int(parts[1]) >= len(exps):
                    raise ConfigError(f"--set {key}: the grid has {len(exps)} experiment(s); "
                                      f"{parts[1]!r} is not an index of them")
                exp = exps[int(parts[1])]
                if isinstance(exp, dict) and parts[2] not in exp and parts[2] in doc:
                    exp[parts[2]] = copy.deepcopy(doc[parts[2]])  # change what it inherits
                _set_path(exp, parts[2:], value, f"experiments.{parts[1]}", key)
            elif parts[0] in DOC_KEYS:
                _set_path(doc, parts, value, "", key)
            else:
                raise _unknown_key(key, parts[0], sorted({*EXPERIMENT_KEYS, *DOC_KEYS}))
        except ConfigError as e:
            problems.append(f"{path}: {e}")
    _raise_all(problems)
    return doc, per_experiment


# ---- --only: selection of runs ---------------------------------------------------------------
ONLY_KEYS: dict[str, Callable[[RunSpec], tuple[str, ...]]] = {
    "backbone": lambda s: (s.backbone.name, s.backbone.label),
    "recipe": lambda s: (s.recipe.name, s.recipe.label),
    "seed": lambda s: (str(s.seed),),
    "weights": lambda s: (s.backbone.weights,),
    "family": lambda s: (s.family,),
}


def parse_only(text: str | Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``"backbone=resnet18,recipe=ft|dp"`` → ``{"backbone": ("resnet18",), "recipe":
    ("ft", "dp")}``; several texts (repeated ``--only``) are joined."""
    texts = [text] if isinstance(text, str) else list(text)
    out: dict[str, tuple[str, ...]] = {}
    for item in (i.strip() for t in texts for i in t.split(",")):
        if not item:
            continue
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or key not in ONLY_KEYS:
            raise ConfigError(f"--only {item!r}: expected KEY=VALUE[|VALUE...] with KEY one of "
                              f"{', '.join(ONLY_KEYS)}"
                              + (f" ({_nearest(key, ONLY_KEYS)[:-1]})" if key and
                                 _nearest(key, ONLY_KEYS) else ""))
        out[key] = (*out.get(key, ()), *(v.strip() for v in values.split("|") if v.strip()))
    return out


def select(runs: list[RunSpec], only: str | Sequence[str], grid: str) -> list[RunSpec]:
    """The runs every filter of ``only`` matches; a filter value that matches no run of the
    grid, or filters that together match none, is an error naming what there is."""
    filters = parse_only(only)
    problems = []
    for key, values in filters.items():
        have = {v: None for s in runs for v in ONLY_KEYS[key](s)}
        for value in values:
            if value not in have:
                problems.append(f"--only {key}={value}: no cell of grid {grid!r} has it "
                                f"({_nearest(value, have)}{key} values: {', '.join(have)})")
    _raise_all(problems)
    kept = [s for s in runs
            if all(set(ONLY_KEYS[k](s)) & set(v) for k, v in filters.items())]
    if not kept:
        text = ",".join(f"{k}={'|'.join(v)}" for k, v in filters.items())
        raise ConfigError(f"--only {text}: no cell of grid {grid!r} matches all of it")
    return kept


# ---- loading ----------------------------------------------------------------------------------
def load_grid(
    name_or_path: str,
    *,
    resolve_data: bool = True,
    data_root: Path | None = None,
    check_weights: bool = True,
    overrides: Sequence[str] = (),
    only: str | Sequence[str] = (),
) -> Grid:
    """Parse, validate and expand a grid; every problem of it in one pass (:class:`GridErrors`
    when there are several). ``overrides`` (``KEY=VALUE``) change the document before it is
    validated; ``only`` keeps the runs it matches. With ``resolve_data`` every split is loaded
    and validated, and its content fingerprint becomes part of each run's fingerprint; with
    ``check_weights`` every weights file must exist and match the catalogue."""
    from benchmark.schema import DOC_KEYS, GridHeader

    path = grid_path(str(name_or_path))
    doc, per_experiment = apply_overrides(_read_yaml(path), overrides, path)
    lines, _ = _structure(GridHeader, {k: doc[k] for k in DOC_KEYS if k in doc})
    problems = [f"{path}: {line}" for line in lines]
    experiments = doc.get("experiments", [{}])
    if not isinstance(experiments, list):
        _raise_all(problems)
    defaults = {k: v for k, v in doc.items() if k not in DOC_KEYS}
    runs: list[RunSpec] = []
    prepare: list[str] = []
    for i, exp in enumerate(experiments):
        if not isinstance(exp, dict):
            continue  # a problem of the header
        try:
            exp = copy.deepcopy({**defaults, **exp})
            for parts, value, key in per_experiment:
                _set_path(exp, parts, value, "", key)
            runs.extend(_expand(exp))
        except BenchmarkError as e:
            problems += [f"{path}: {line}" if line.startswith("--set ") else
                         f"{path}: experiments[{i}].{line}" for line in _lines(e)]
            continue
        if exp.get("prepare"):
            prepare.append(str(exp["prepare"]))
    _raise_all(problems)
    if not runs:
        raise ConfigError(f"{path}: the grid expands to no runs")
    runs = list(dict.fromkeys(runs))  # a cell two experiments share (a sweep's end point) once
    name = str(doc.get("name", path.stem))
    only_text = ",".join([only] if isinstance(only, str) else only)
    if only_text:
        try:
            runs = select(runs, only_text, name)
        except GridErrors as e:
            raise GridErrors([f"{path}: {line}" for line in e.lines]) from None
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    if check_weights:
        _check_weights(runs)
    if resolve_data:
        fps = _check_categories(runs, data_root)
        runs = [replace(r, data=tuple((s, fps[s]) for s in r.all_splits)) for r in runs]
    return Grid(name, path, runs, tuple(dict.fromkeys(prepare)),
                doc.get("reproducible_cpu", False), tuple(overrides), only_text)
