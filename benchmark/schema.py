"""The file formats of grids and SLURM profiles, declared once with pydantic.

The loaders (:mod:`benchmark.grid`, :mod:`benchmark.profiles`) check a file's structure —
its keys and the type of every value — against these models (:func:`problems`), and
``schemas/grid.schema.json`` and ``schemas/profile.schema.json`` are exported from them
(``python -m benchmark.describe --schema DIR``), so that editors complete and check the
files. The keys of a schedule and a backbone are the fields of
:class:`~benchmark.spec.Schedule` and :class:`~benchmark.spec.BackboneSpec` (:func:`model_of`);
what a value means beyond its type (ranges, registry names, recipe parameters, splits) is
checked by the specs and the loaders. Documents are validated as JSON, strictly (no
conversions): a key or a value's type passes the loaders' check where it passes the exported
JSON Schema.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

from benchmark.spec import BackboneSpec, CorruptionSpec, Schedule
from benchmark.store import REPO_ROOT

SCHEMAS_DIR = REPO_ROOT / "schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_STRICT = ConfigDict(extra="forbid", strict=True)


def _field(cls: type, name: str) -> FieldInfo:
    """Dataclass ``cls``'s field ``name`` as a pydantic field: its default and its metadata
    (keyword arguments of ``pydantic.Field``)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return Field(default_factory=f.default_factory, **f.metadata)
    return Field(... if f.default is dataclasses.MISSING else f.default, **f.metadata)


def model_of(cls: type, doc: str) -> type[BaseModel]:
    """A model of dataclass ``cls``'s keys (types, defaults, metadata) that checks a mapping's
    structure without constructing ``cls`` (its ``__post_init__`` checks the values)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: (hints[f.name], _field(cls, f.name))
              for f in dataclasses.fields(cls) if f.init}
    return create_model(cls.__name__, __config__=_STRICT, __doc__=doc, **fields)  # type: ignore[call-overload]


def _without_default(schema: dict[str, Any]) -> None:
    """For a key whose default is another key's value: no ``default`` in the JSON Schema."""
    schema.pop("default", None)


# ---- grid files ---------------------------------------------------------------------------
ScheduleKeys = model_of(Schedule, "The training schedule of a cell (benchmark.spec.Schedule).")
BackboneKeys = model_of(BackboneSpec, "A backbone and its weights (benchmark.spec.BackboneSpec).")
#: a recipe parameter's value, or one of a sweep's (a float may be written as an integer)
Scalar = float | str | bool


class Corruption(BaseModel):
    """Corrupted copies of one test split, evaluated beside it: every name at every
    severity."""

    model_config = _STRICT
    base: str = Field(None, description="the split corrupted (default: id_split)",  # type: ignore[assignment]
                      json_schema_extra=_without_default)
    names: str | list[str] = Field(
        "benchmark", description="corruption names, or one comma-separated string: 'benchmark' "
        "(the 15 benchmark corruptions), 'all' or names (benchmark.data.corrupt)")
    severities: list[int] = Field([1, 2, 3, 4, 5], description="severities, each in 1..5")
    channel_order: str = _field(CorruptionSpec, "channel_order")


class Recipe(BaseModel):
    """A recipe and its parameters (benchmark.recipes): a list-valued parameter is a sweep,
    one recipe per value (per combination of values)."""

    model_config = ConfigDict(extra="allow", strict=True)
    __pydantic_extra__: dict[str, Scalar | list[Scalar]] = Field(init=False)  # type: ignore[assignment]
    name: str = Field(description="the recipe (benchmark.recipes.RECIPES)")


class Experiment(BaseModel):
    """One experiment of a grid, the top-level defaults merged in: its runs are backbones ×
    recipes × seeds."""

    model_config = _STRICT
    family: str = Field(description="benchmark family (benchmark.families.FAMILIES)")
    prepare: str | None = Field(None, description="a generated dataset built when missing "
                                "(python -m benchmark.prepare NAME)")
    engine: str = Field(description="detector engine (benchmark.models.ENGINES)")
    train_split: str = Field(description="the split trained on")
    id_split: str = Field(description="the in-distribution test split")
    ood_splits: list[str] = Field([], description="out-of-distribution test splits")
    corruption: Corruption | None = Field(None, description="corrupted copies of a test split")
    schedule: ScheduleKeys = Field(description="the training schedule")  # type: ignore[valid-type]
    backbones: list[BackboneKeys] = Field(description="backbones: one run each per recipe and "  # type: ignore[valid-type]
                                          "seed")
    recipes: list[Recipe] = Field(description="recipes: one run each per backbone and seed")
    seeds: list[int] = Field([0], description="training seeds (ints >= 0)")
    study_compat: bool = Field(False, description="true: feed the bodies as the study's code "
                               "did, its documented input defects included "
                               "(benchmark.models.study_input)")


class GridHeader(BaseModel):
    """The top-level keys of a grid file that are not experiment defaults."""

    model_config = _STRICT
    name: str = Field(None, description="the grid's name (default: the file's name)",  # type: ignore[assignment]
                      json_schema_extra=_without_default)
    description: str = Field("", description="what the grid measures, in a line")
    reproducible_cpu: bool = Field(False, description="true: every cell runs pinned to one CPU "
                                   "instruction-set level (benchmark.cpu_pinning): bit-identical "
                                   "records on every x86-64 CPU with AVX2")
    experiments: list[dict[str, Any]] = Field(
        default_factory=lambda: [{}], description="the experiments, each a mapping of "
        "experiment keys over the top-level ones (default: one, of the top-level keys)")


#: the keys of an experiment; at the top level of a grid file, defaults of every experiment
EXPERIMENT_KEYS = tuple(Experiment.model_fields)
#: the keys every experiment has (from the top level or its own)
REQUIRED = tuple(k for k, f in Experiment.model_fields.items() if f.is_required())
#: the top-level keys that are not experiment defaults
DOC_KEYS = tuple(GridHeader.model_fields)


# ---- SLURM profile files ------------------------------------------------------------------
_NONBLANK = r"\S"  # a string with a non-space character


@dataclass(frozen=True)
class ProfileKeys:
    """The keys of a SLURM profile (slurm/NAME.yaml): where and how grid cells run on one
    cluster."""

    partition: str = field(metadata={"description": "the partition (sbatch --partition); "
                                     "sinfo must list it", "pattern": _NONBLANK})
    time_min: int = field(metadata={"description": "time limit per task, in minutes; longer "
                                    "cells checkpoint and requeue", "ge": 1})
    cpus_per_task: int = field(metadata={"description": "CPUs per task: data-loader workers "
                                         "and the main process", "ge": 1})
    mem_gb: float = field(metadata={"description": "memory per task, in GB", "ge": 0.001})
    description: str = field(default="", metadata={"description": "what the profile is for"})
    account: str | None = field(default=None, metadata={
        "description": "allocation (sbatch --account); omit if none", "pattern": _NONBLANK})
    qos: str | None = field(default=None, metadata={
        "description": "quality of service (sbatch --qos); omit for the default",
        "pattern": _NONBLANK})
    gpus_per_task: int = field(default=1, metadata={
        "description": "GPUs per task (one training per task); 0 for CPU only", "ge": 0})
    tasks_per_run: int = field(default=1, metadata={
        "description": "processes per cell, one GPU each: training runs DDP across them when "
                       "> 1", "ge": 1})
    gres: str | None = field(default=None, metadata={
        "description": "a gres string passed as --gres verbatim, instead of gpus_per_task",
        "pattern": _NONBLANK})
    array_parallelism: int = field(default=64, metadata={
        "description": "running tasks per array job, at most (the %N throttle)", "ge": 1})
    max_array_size: int | None = field(default=None, metadata={
        "description": "tasks per array job, at most, below the cluster's MaxArraySize",
        "ge": 1})
    max_requeues: int = field(default=10, metadata={
        "description": "preemptions and time limits one cell may survive", "ge": 0})
    signal_delay_s: int = field(default=120, metadata={
        "description": "seconds before the time limit at which USR2 checkpoints and requeues "
                       "the cell", "ge": 0})
    extra_sbatch: dict[str, str | int | float | bool] = field(default_factory=dict, metadata={
        "description": "any other sbatch option, without the leading dashes (not array, "
                       "output, error, dependency or wrap: the benchmark sets them)"})
    setup: tuple[str, ...] = field(default=(), metadata={
        "description": "shell lines run in the job before the cell starts"})
    python: str | None = field(default=None, metadata={
        "description": "the Python command the job runs (default: this interpreter)",
        "pattern": _NONBLANK})


ProfileFile = model_of(ProfileKeys, ProfileKeys.__doc__ or "")


# ---- structural problems ------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One structural problem of a document: where, what, and what the schema accepts."""

    path: tuple[str | int, ...]  # keys and list indices from the document's root
    kind: str  # "unknown" key, "missing" key, "type", or pydantic's error type (a constraint)
    value: Any  # the document's value at path (None for a missing key)
    expected: str  # what the schema accepts at path: "an integer", "a list of strings", ...
    known: tuple[str, ...] = ()  # an unknown key's: the keys its mapping may have
    message: str = ""  # pydantic's
    ctx: dict[str, Any] = field(default_factory=dict)  # a constraint's limits ({"ge": 1})

    @property
    def dotted(self) -> str:
        """``schedule.iterations``, ``backbones[0].name``."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
        return out


def problems(model: type[BaseModel], data: dict[str, Any]) -> list[Problem]:
    """Every structural problem of ``data`` under ``model``, one per place: a value that fits
    none of a union's types is one problem."""
    try:
        model.model_validate_json(json.dumps(data, default=str))
        return []
    except ValidationError as e:
        errors = e.errors(include_url=False)
    found: dict[tuple[str | int, ...], Problem] = {}
    for err in errors:
        path, value = _locate(data, err["loc"])
        kind = {"extra_forbidden": "unknown", "missing": "missing"}.get(err["type"], "")
        if kind == "missing":
            path, value = (*path, err["loc"][len(path)]), None
        if path in found:  # another member of a union: a type problem
            if found[path].kind not in ("unknown", "missing"):
                found[path] = dataclasses.replace(found[path], kind="type")
            continue
        if not kind:
            kind = "type" if err["type"].endswith("_type") else err["type"]
        known = tuple(_known(annotation_at(model, path[:-1]))) if kind == "unknown" else ()
        expected = describe(annotation_at(model, path)) if kind != "unknown" else ""
        found[path] = Problem(path, kind, value, expected, known, err["msg"],
                              dict(err.get("ctx", {})))
    return list(found.values())


def _locate(data: Any, loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], Any]:
    """The longest prefix of an error's location that is a path into ``data``, and the value
    there (the rest names union members and missing keys)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            key = next((k for k in node if k == part or str(k) == part), _NONE)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            key = part
        else:
            key = _NONE
        if key is _NONE:
            break
        path.append(key)
        node = node[key]
    return tuple(path), node


_NONE = object()


def union_members(annotation: Any) -> tuple[Any, ...]:
    """A union's members (``X | None``: X and None); any other type alone."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _known(annotation: Any) -> list[str]:
    return [k for a in union_members(annotation) if _is_model(a) for k in a.model_fields]


def annotation_at(model: type[BaseModel], path: tuple[str | int, ...]) -> Any:
    """The type the schema gives the value at ``path`` (``Any`` where it gives none)."""
    annotation: Any = model
    for part in path:
        annotation = next((t for t in (_step(a, part) for a in union_members(annotation))
                           if t is not None), Any)
    return annotation


def _step(annotation: Any, part: str | int) -> Any:
    origin = typing.get_origin(annotation)
    if isinstance(part, int):
        return typing.get_args(annotation)[0] if origin in (list, tuple) else None
    if origin is dict:
        return typing.get_args(annotation)[1]
    if _is_model(annotation):
        if part in annotation.model_fields:
            return annotation.model_fields[part].annotation
        if annotation.model_config.get("extra") == "allow":  # typed extra keys
            return typing.get_args(typing.get_type_hints(annotation)["__pydantic_extra__"])[1]
    return None


_WORDS = {int: ("an integer", "integers"), float: ("a number", "numbers"),
          str: ("a string", "strings"), bool: ("true or false", "booleans"),
          type(None): ("null", "nulls")}


def describe(annotation: Any, plural: bool = False) -> str:
    """``list[int] | None`` → "a list of integers or null"."""
    words = []
    for a in union_members(annotation):
        origin = typing.get_origin(a)
        if origin in (list, tuple):
            items = describe(typing.get_args(a)[0], plural=True)
            words.append("lists" if plural else f"a list of {items}")
        elif _is_model(a) or a is dict or origin is dict:
            words.append("mappings" if plural else "a mapping")
        else:
            words.append(_WORDS.get(a, (str(a), str(a)))[plural])
    return " or ".join(words)


# ---- JSON Schema --------------------------------------------------------------------------
class _Generator(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # a key is its own title


def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return _one_line(model.model_json_schema(schema_generator=_Generator))


def _one_line(node: Any) -> Any:
    """``node`` with every description on one line (docstrings are wrapped)."""
    if isinstance(node, dict):
        return {k: " ".join(v.split()) if k == "description" and isinstance(v, str)
                else _one_line(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_one_line(v) for v in node]
    return node


def grid_schema() -> dict[str, Any]:
    """The JSON Schema of a grid file: its header keys and every experiment key as a default
    at the top level; in the experiments every key is optional, but each required key must be
    at the top level or in every experiment."""
    header, experiment = _json_schema(GridHeader), _json_schema(Experiment)
    required = experiment.pop("required")
    defs = experiment.pop("$defs")
    properties = {**header["properties"], **experiment["properties"]}
    properties["experiments"] = {**properties["experiments"], "minItems": 1,
                                 "items": {"$ref": "#/$defs/Experiment"}}
    return {
        "$schema": DRAFT,
        "title": "grid",
        "description": "A grid of benchmark runs (benchmark/grid.py): backbones × recipes × "
                       "seeds per experiment. Top-level experiment keys are defaults of every "
                       "experiment.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "allOf": [{"anyOf": [{"required": [key]}, {
            "required": ["experiments"],
            "properties": {"experiments": {"items": {"required": [key]}}}}]}
            for key in required],
        "$defs": {**defs, "Experiment": experiment},
    }


def profile_schema() -> dict[str, Any]:
    """The JSON Schema of a SLURM profile file."""
    return {"$schema": DRAFT, **_json_schema(ProfileFile), "title": "SLURM profile"}


SCHEMAS = {"grid.schema.json": grid_schema, "profile.schema.json": profile_schema}


def schema_text(name: str) -> str:
    """The text of schema file ``name`` (a key of :data:`SCHEMAS`), as committed."""
    return json.dumps(SCHEMAS[name](), indent=2, ensure_ascii=False) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    """Write every schema file into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in SCHEMAS]
    for path in paths:
        path.write_text(schema_text(path.name), encoding="utf-8")
    return paths
