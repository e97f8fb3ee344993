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
validated before anything runs; errors name the file, the field and the value.
"""

from __future__ import annotations

import itertools
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


def _construct(cls: Any, doc: dict[str, Any], field: str) -> Any:
    """``cls(**doc)`` with an unknown key named beside its nearest known one."""
    from dataclasses import fields

    known = {f.name for f in fields(cls) if f.init}
    for key in doc:
        if key not in known:
            raise ConfigError(f"{field}.{key}: unknown key ({_nearest(str(key), known)}known: "
                              f"{', '.join(sorted(known))})")
    try:
        return cls(**doc)
    except TypeError as e:
        raise ConfigError(f"{field}={doc!r}: {e}") from None


def _lookup(registry: Any, name: Any, field: str) -> None:
    try:
        registry.get(name)
    except ConfigError as e:
        raise ConfigError(f"{field}={name!r}: {e}") from None


def _expand(exp: dict[str, Any]) -> list[RunSpec]:
    from benchmark.data.corrupt import corruption_names
    from benchmark.families import FAMILIES
    from benchmark.models import BACKBONES, ENGINES
    from benchmark.recipes import RECIPES, get_recipe

    unknown = sorted(set(exp) - EXPERIMENT_KEYS)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key ({_nearest(unknown[0], EXPERIMENT_KEYS)}"
                          f"known: {', '.join(sorted(EXPERIMENT_KEYS))})")
    for key in REQUIRED:
        if key not in exp:
            raise ConfigError(f"{key}: missing required key")
    _lookup(FAMILIES, exp["family"], "family")
    roles = FAMILIES.get(exp["family"]).split_roles
    for key, role in (("ood_splits", "ood"), ("corruption", "corruption")):
        if exp.get(key) and role not in roles:
            raise ConfigError(
                f"{key}={exp[key]!r}: family {exp['family']!r} has no {role} splits "
                f"(its split roles: {', '.join(roles)})"
            )
    _lookup(ENGINES, exp["engine"], "engine")
    check_engine = getattr(ENGINES.get(exp["engine"]), "check_available", None)
    if check_engine is not None:  # an optional engine (detectron2): installed?
        try:
            check_engine()
        except ConfigError as e:
            raise ConfigError(f"engine={exp['engine']!r}: {e}") from None
    schedule = _construct(Schedule, _mapping(exp["schedule"], "schedule"), "schedule")
    corruption = None
    if exp.get("corruption") is not None:
        c = _mapping(exp["corruption"], "corruption")
        names = c.get("names", "benchmark")
        names = corruption_names(names if isinstance(names, str) else ",".join(names))
        corruption = CorruptionSpec(
            c.get("base", exp["id_split"]),
            tuple(names),
            tuple(_as_list(c.get("severities", [1, 2, 3, 4, 5]), "corruption.severities")),
            c.get("channel_order", "rgb"),
        )
    study_compat = exp.get("study_compat", False)
    if not isinstance(study_compat, bool):
        raise ConfigError(f"study_compat={study_compat!r}: must be true or false")
    backbones = []
    for i, b in enumerate(_as_list(exp["backbones"], "backbones")):
        b = _mapping(b, f"backbones[{i}]")
        if study_compat:
            b = {**b, "study_compat": True}
        spec = _construct(BackboneSpec, b, f"backbones[{i}]")
        _lookup(BACKBONES, spec.name, f"backbones[{i}].name")
        _check_catalogue_pairing(spec, f"backbones[{i}]")
        backbones.append(spec)
    recipes, origin = [], []  # origin: the recipes[i] entry each recipe comes from
    for i, r in enumerate(_as_list(exp["recipes"], "recipes")):
        r = dict(_mapping(r, f"recipes[{i}]"))
        if "name" not in r:
            raise ConfigError(f"recipes[{i}].name: missing")
        name = r.pop("name")
        _lookup(RECIPES, name, f"recipes[{i}].name")
        # a list-valued parameter is a sweep: one recipe per value (per combination)
        swept = [k for k, v in r.items() if isinstance(v, list)]
        for values in itertools.product(*(r[k] for k in swept)):
            spec_r = RecipeSpec(name, tuple({**r, **dict(zip(swept, values, strict=True))}.items()))
            try:
                spec_r = get_recipe(spec_r).canonical()  # validates parameters
            except ConfigError as e:
                raise ConfigError(f"recipes[{i}]: {e}") from None
            if spec_r not in recipes:  # e.g. wise_ft at α = 0 next to the dp it is
                recipes.append(spec_r)
                origin.append(i)
    seeds = _as_list(exp.get("seeds", [0]), "seeds")
    runs = [
        RunSpec(
            family=exp["family"],
            engine=exp["engine"],
            backbone=b,
            recipe=r,
            train_split=exp["train_split"],
            id_split=exp["id_split"],
            ood_splits=tuple(_as_list(exp.get("ood_splits", []), "ood_splits")),
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
            raise ConfigError(f"recipes[{i}] on backbone {run.backbone.name!r}: {e}") from None
    return runs


def _check_catalogue_pairing(spec: BackboneSpec, field: str) -> None:
    """A catalogue name is known and names a checkpoint of this backbone's architecture."""
    from benchmark.models.weights import catalogue

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
    backbone (checked before anything runs, ``--dry-run`` included). A catalogue file whose
    published hash matches is trusted; any other file is loaded once into its backbone with
    strict key matching (missing and unexpected keys named)."""
    from benchmark.errors import MissingFileError
    from benchmark.models.backbones import build_body, file_sha256, weights_path
    from benchmark.models.weights import catalogue

    for backbone in sorted({r.backbone for r in runs}, key=lambda b: (b.name, b.weights)):
        path = weights_path(backbone.weights)
        if path is None:
            continue
        entry = catalogue.lookup(backbone.weights)
        if not path.is_file():
            expected = f"backbone.weights={backbone.weights!r} for {backbone.name}" + (
                f" (catalogue file {entry.file}; `python -m benchmark.weights check`)" if entry
                else " (a state dict of that architecture; relative paths are under "
                "$BENCH_WEIGHTS)")
            raise MissingFileError(path, expected, entry.url if entry else "")
        if entry is not None and catalogue.hash_matches(entry, file_sha256(path)):
            continue
        key = (backbone.name, backbone.strict, str(path), file_sha256(path))
        if key in _WEIGHTS_FIT:
            continue
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


def load_grid(
    name_or_path: str,
    *,
    resolve_data: bool = True,
    data_root: Path | None = None,
    check_weights: bool = True,
) -> Grid:
    """Parse, validate and expand a grid. With ``resolve_data`` every split is loaded and
    validated, and its content fingerprint becomes part of each run's fingerprint; with
    ``check_weights`` every weights file must exist and match the catalogue."""
    path = grid_path(name_or_path)
    doc = _read_yaml(path)
    defaults = {k: v for k, v in doc.items()
                if k not in ("name", "description", "experiments", *RUN_KEYS)}
    reproducible_cpu = doc.get("reproducible_cpu", False)
    if not isinstance(reproducible_cpu, bool):
        raise ConfigError(f"{path}: reproducible_cpu={reproducible_cpu!r}: must be true or false")
    experiments = _as_list(doc.get("experiments", [{}]), f"{path}: experiments")
    runs: list[RunSpec] = []
    prepare: list[str] = []
    for i, exp in enumerate(experiments):
        exp = {**defaults, **_mapping(exp, f"{path}: experiments[{i}]")}
        try:
            runs.extend(_expand(exp))
        except BenchmarkError as e:
            raise ConfigError(f"{path}: experiments[{i}].{e}") from None
        if exp.get("prepare"):
            prepare.append(str(exp["prepare"]))
    if not runs:
        raise ConfigError(f"{path}: the grid expands to no runs")
    runs = list(dict.fromkeys(runs))  # a cell two experiments share (a sweep's end point) once
    if check_weights:
        _check_weights(runs)
    if resolve_data:
        fps = _check_categories(runs, data_root)
        runs = [replace(r, data=tuple((s, fps[s]) for s in r.all_splits)) for r in runs]
    return Grid(str(doc.get("name", path.stem)), path, runs, tuple(dict.fromkeys(prepare)),
                reproducible_cpu)
