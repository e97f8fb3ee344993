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
the file, the field and the value).

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
from benchmark.spec import BackboneSpec, CorruptionSpec, RecipeSpec, RunSpec, Schedule

GRIDS_DIR = Path(__file__).parent / "grids"
EXPERIMENT_KEYS = {
    "family",
    "prepare",
    "engine",
    "train_split",
    "id_split",
    "ood_splits",
    "corruption",
    "schedule",
    "backbones",
    "recipes",
    "seeds",
    "study_compat",
}
#: top-level keys that configure how the grid runs, not its cells
RUN_KEYS = ("reproducible_cpu",)
#: top-level keys that are not experiment defaults
DOC_KEYS = ("name", "description", "experiments", *RUN_KEYS)
REQUIRED = ("family", "engine", "train_split", "id_split", "schedule", "backbones", "recipes")


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


def _as_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{field}={value!r}: expected a list")
    return value


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{field}={value!r}: expected a mapping")
    return value


def _nearest(name: str, known: Any) -> str:
    import difflib

    near = difflib.get_close_matches(name, sorted(known), n=1)
    return f"did you mean {near[0]!r}? " if near else ""


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


def _construct(cls: Any, doc: dict[str, Any], field: str) -> Any:
    """``cls(**doc)`` with every unknown key named beside its nearest known one."""
    from dataclasses import fields

    known = {f.name for f in fields(cls) if f.init}
    _raise_all([f"{field}.{key}: unknown key ({_nearest(str(key), known)}known: "
                f"{', '.join(sorted(known))})" for key in doc if key not in known])
    try:
        return cls(**doc)
    except TypeError as e:
        raise ConfigError(f"{field}={doc!r}: {e}") from None


def _lookup(registry: Any, name: Any, field: str) -> None:
    try:
        registry.get(name)
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
    from benchmark.models import ENGINES

    _lookup(ENGINES, engine, "engine")
    check_engine = getattr(ENGINES.get(engine), "check_available", None)
    if check_engine is not None:  # an optional engine (detectron2): installed?
        try:
            check_engine()
        except ConfigError as e:
            raise ConfigError(f"engine={engine!r}: {e}") from None


def _corruption(exp: dict[str, Any]) -> CorruptionSpec:
    from benchmark.data.corrupt import corruption_names

    c = _mapping(exp["corruption"], "corruption")
    names = c.get("names", "benchmark")
    names = corruption_names(names if isinstance(names, str) else ",".join(names))
    return CorruptionSpec(
        c.get("base", exp["id_split"]),
        tuple(names),
        tuple(_as_list(c.get("severities", [1, 2, 3, 4, 5]), "corruption.severities")),
        c.get("channel_order", "rgb"),
    )


def _backbone(b: Any, i: int, study_compat: bool) -> BackboneSpec:
    from benchmark.models import BACKBONES

    b = _mapping(b, f"backbones[{i}]")
    if study_compat:
        b = {**b, "study_compat": True}
    spec = _construct(BackboneSpec, b, f"backbones[{i}]")
    _lookup(BACKBONES, spec.name, f"backbones[{i}].name")
    _check_catalogue_pairing(spec, f"backbones[{i}]")
    return spec


def _recipes(r: Any, i: int) -> list[RecipeSpec]:
    """The recipes one ``recipes[i]`` entry stands for: a list-valued parameter is a sweep,
    one recipe per value (per combination)."""
    from benchmark.recipes import RECIPES, get_recipe

    r = dict(_mapping(r, f"recipes[{i}]"))
    if "name" not in r:
        raise ConfigError(f"recipes[{i}].name: missing")
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
    """The runs of one experiment; every problem of it at once (:class:`GridErrors`)."""
    from benchmark.recipes import get_recipe

    p = _Problems()
    p.lines += [f"{key}: unknown key ({_nearest(key, EXPERIMENT_KEYS)}known: "
                f"{', '.join(sorted(EXPERIMENT_KEYS))})"
                for key in sorted(set(exp) - EXPERIMENT_KEYS)]
    p.lines += [f"{key}: missing required key" for key in REQUIRED if key not in exp]
    if "family" in exp:
        p.attempt(_check_family, exp)
    if "engine" in exp:
        p.attempt(_check_engine, exp["engine"])
    schedule = _FAILED
    if "schedule" in exp:
        schedule = p.attempt(lambda: _construct(Schedule, _mapping(exp["schedule"], "schedule"),
                                                "schedule"))
    corruption = None
    if exp.get("corruption") is not None and "id_split" in exp:
        corruption = p.attempt(_corruption, exp)
    study_compat = exp.get("study_compat", False)
    if not isinstance(study_compat, bool):
        p.lines.append(f"study_compat={study_compat!r}: must be true or false")
        study_compat = False
    listed = p.attempt(_as_list, exp["backbones"], "backbones") if "backbones" in exp else []
    backbones = [p.attempt(_backbone, b, i, study_compat)
                 for i, b in enumerate(listed if listed is not _FAILED else [])]
    recipes: list[RecipeSpec] = []
    origin: list[int] = []  # the recipes[i] entry each recipe comes from
    listed = p.attempt(_as_list, exp["recipes"], "recipes") if "recipes" in exp else []
    for i, r in enumerate(listed if listed is not _FAILED else []):
        expanded = p.attempt(_recipes, r, i)
        for spec_r in expanded if expanded is not _FAILED else []:
            if spec_r not in recipes:  # e.g. wise_ft at α = 0 next to the dp it is
                recipes.append(spec_r)
                origin.append(i)
    seeds = p.attempt(_as_list, exp.get("seeds", [0]), "seeds")
    ood = p.attempt(_as_list, exp.get("ood_splits", []), "ood_splits")
    _raise_all(p.lines)
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
    from benchmark.models.backbones import build_body, file_sha256, weights_path
    from benchmark.models.checkpoints import catalogue

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
                    raise _unknown_key(key, parts[2], sorted(EXPERIMENT_KEYS))
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
    path = grid_path(str(name_or_path))
    doc, per_experiment = apply_overrides(_read_yaml(path), overrides, path)
    defaults = {k: v for k, v in doc.items() if k not in DOC_KEYS}
    problems: list[str] = []
    reproducible_cpu = doc.get("reproducible_cpu", False)
    if not isinstance(reproducible_cpu, bool):
        problems.append(f"{path}: reproducible_cpu={reproducible_cpu!r}: must be true or false")
    experiments = _as_list(doc.get("experiments", [{}]), f"{path}: experiments")
    runs: list[RunSpec] = []
    prepare: list[str] = []
    for i, exp in enumerate(experiments):
        try:
            exp = copy.deepcopy({**defaults, **_mapping(exp, f"experiments[{i}]")})
            for parts, value, key in per_experiment:
                _set_path(exp, parts, value, "", key)
            runs.extend(_expand(exp))
        except BenchmarkError as e:
            problems += [f"{path}: {line}" if line.startswith("--set ") else
                         f"{path}: experiments[{i}].{line}".replace(
                             f"experiments[{i}].experiments[{i}]", f"experiments[{i}]")
                         for line in _lines(e)]
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
    return Grid(name, path, runs, tuple(dict.fromkeys(prepare)), reproducible_cpu,
                tuple(overrides), only_text)
