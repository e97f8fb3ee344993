"""The grid and profile file formats (benchmark.schema): the committed JSON Schemas are what
the models export, every shipped file passes them under an independent validator
(jsonschema), and they refuse the typos and wrong types the loaders refuse."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
import yaml

from benchmark.describe import main as describe_main
from benchmark.errors import ConfigError
from benchmark.grid import GRIDS_DIR, load_grid
from benchmark.profiles import PROFILES_DIR, load_profile
from benchmark.schema import SCHEMAS, SCHEMAS_DIR, Corruption
from benchmark.spec import CorruptionSpec
from tests.conftest import TINY_GRID

GRIDS = sorted([*GRIDS_DIR.glob("*.yaml"), *TINY_GRID.parent.glob("*.yaml")])
PROFILES = sorted(PROFILES_DIR.glob("*.yaml"))
GOOD_PROFILE = {"partition": "debug", "time_min": 10, "cpus_per_task": 1, "mem_gb": 1}


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(name: str, doc: object) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator(name).iter_errors(doc)]


def test_the_committed_schemas_are_the_models_export(tmp_path: Path, capsys) -> None:
    assert describe_main(["--schema", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SCHEMAS)
    for name in SCHEMAS:
        committed = (SCHEMAS_DIR / name).read_text(encoding="utf-8")
        assert (tmp_path / name).read_text(encoding="utf-8") == committed, (
            f"schemas/{name} is stale: python -m benchmark.describe --schema schemas")


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.name)
def test_every_shipped_grid_passes_the_json_schema(path: Path) -> None:
    assert _errors("grid.schema.json", yaml.safe_load(path.read_text(encoding="utf-8"))) == []
    first = path.read_text(encoding="utf-8").splitlines()[0]
    if "$schema=" in first:  # the editor's pointer to the schema resolves from the grid
        assert (path.parent / first.split("$schema=", 1)[1].strip()).resolve() == (
            SCHEMAS_DIR / "grid.schema.json")


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_shipped_profile_passes_the_json_schema(path: Path) -> None:
    assert _errors("profile.schema.json", yaml.safe_load(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(("old", "new", "where"), [
    ("iterations: 6", "iteratons: 6", "schedule"),  # a typo'd key
    ("batch_size: 2", "batch_size: [2]", "schedule.batch_size"),  # a wrong type
    ("    seeds: [0]", "    seeds: [0]\n    sedes: [1]", "0"),
    ("seeds: [0]", "seeds: 0", "seeds"),
    ("{name: resnet18, weights: none}", "{name: resnet18, wieghts: none}", "backbones.1"),
    ("{name: ft}", "{name: ft, lr: {value: 1}}", "recipes.0.lr"),
    ("{name: ft}", "{lr: 0.01}", "recipes.0"),
    ("severities: [3]", "severities: 3", "corruption"),
    ("    seeds: [0]", "    seeds: [0]\n    study_compat: 1", "study_compat"),
    ("    engine: frcnn_fpn_small\n", "", ""),  # a required key in no experiment
    ("name: tiny", "name: tiny\nreproducible_cpu: 1", "reproducible_cpu"),
])
def test_a_typo_or_a_wrong_type_fails_the_json_schema_as_the_loader(
        tmp_path: Path, old: str, new: str, where: str) -> None:
    text = TINY_GRID.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "grid.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    errors = _errors("grid.schema.json", yaml.safe_load(path.read_text(encoding="utf-8")))
    assert errors and any(where in e for e in errors), errors
    with pytest.raises(ConfigError, match=str(path)):
        load_grid(str(path), resolve_data=False, check_weights=False)


def test_experiment_keys_may_come_from_the_top_level() -> None:
    doc = yaml.safe_load(TINY_GRID.read_text(encoding="utf-8"))
    (experiment,) = doc.pop("experiments")
    engine = experiment.pop("engine")
    assert _errors("grid.schema.json", {**doc, "engine": engine, "experiments": [experiment]}) == []
    assert _errors("grid.schema.json", {**doc, **experiment, "engine": engine}) == []
    assert _errors("grid.schema.json", {**doc, "experiments": [experiment]})  # no engine


@pytest.mark.parametrize("change", [
    {"partiton": "debug"}, {"time_min": "ten"}, {"cpus_per_task": True}, {"mem_gb": -1},
    {"array_parallelism": 0}, {"setup": "module load cuda"}, {"setup": ["ok", 3]},
    {"account": ""}, {"extra_sbatch": {"constraint": ["a100"]}},
])
def test_a_bad_profile_fails_the_json_schema_as_the_loader(tmp_path: Path, change: dict) -> None:
    data = {**GOOD_PROFILE, **change}
    assert _errors("profile.schema.json", data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=str(path)):
        load_profile(str(path))


def test_the_corruption_keys_are_the_specs() -> None:
    assert list(Corruption.model_fields) == [f.name for f in fields(CorruptionSpec)]
