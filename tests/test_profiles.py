"""SLURM profiles: file validation (no cluster) and checks against the live test cluster."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmark.errors import ConfigError
from benchmark.profiles import (
    ClusterInfo,
    available_profiles,
    check_cluster,
    load_profile,
    parse_max_array_size,
    parse_sinfo,
)

pytest_plugins = ["tests.slurm_fixtures"]  # slurm_cluster, slurm_store

GOOD = {"partition": "debug", "time_min": 10, "cpus_per_task": 1, "mem_gb": 1, "gpus_per_task": 0}


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_profiles_load() -> None:
    assert {"local", "example_university"} <= set(available_profiles())
    local = load_profile("local")
    assert local.partition == "debug" and local.gpus_per_task == 0 and not local.wants_gpus
    uni = load_profile("example_university")
    assert uni.wants_gpus and uni.account and uni.setup and uni.extra_sbatch
    params = uni.sbatch_parameters()
    assert params["gpus_per_task"] == 1 and params["mem"] == "49152M"
    assert params["time"] == uni.time_min and params["array_parallelism"] == 16


def test_gpu_default_is_one_per_task(tmp_path: Path) -> None:
    data = {k: v for k, v in GOOD.items() if k != "gpus_per_task"}
    prof = load_profile(str(_write(tmp_path, "p", data)))
    assert prof.gpus_per_task == 1 and prof.sbatch_parameters()["gpus_per_task"] == 1
    gres = load_profile(str(_write(tmp_path, "g", {**data, "gres": "gpu:a100:2"})))
    assert gres.wants_gpus and gres.sbatch_parameters()["gres"] == "gpu:a100:2"
    assert "gpus_per_task" not in gres.sbatch_parameters()


def test_unknown_profile_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"profile='nope': unknown profile .*local"):
        load_profile("nope")
    with pytest.raises(ConfigError, match="profile file not found"):
        load_profile(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"partition": None}, "partition", "required key missing"),
        ({"time_min": "ten"}, "time_min", "expected int, got str"),
        ({"cpus_per_task": True}, "cpus_per_task", "expected int, got bool"),
        ({"mem_gb": -1}, "mem_gb", "must be >= 0.001"),
        ({"array_parallelism": 0}, "array_parallelism", "must be >= 1"),
        ({"partiton": "debug"}, "partiton", "unknown key"),
        ({"setup": "module load cuda"}, "setup", "expected list, got str"),
        ({"setup": ["ok", 3]}, "setup", "each line must be a string"),
        ({"extra_sbatch": {"array": "0-3"}}, "extra_sbatch", "cannot be overridden"),
        ({"gres": "gpu:1"}, "gres", "either gres or gpus_per_task"),
        ({"account": ""}, "account", "must not be empty"),
    ],
)
def test_bad_profile_names_file_field_value(
    tmp_path: Path, change: dict, field: str, problem: str
) -> None:
    data = {**GOOD, **change}
    if change.get("partition", "") is None:
        del data["partition"]
    path = _write(tmp_path, "bad", data)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: {field}=") and problem in msg, msg


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_profile(str(path))


def test_parsers() -> None:
    parts = parse_sinfo("debug|(null)\ngpu|gpu:a100:4(S:0-1)\ngpu|gpu:v100:2\n")
    assert parts == {"debug": (), "gpu": ("gpu:a100:4(S:0-1)", "gpu:v100:2")}
    assert parse_max_array_size("MaxArraySize            = 5\nMaxJobCount = 10\n") == 5
    assert parse_max_array_size("Nothing = here\n") == 1001
    prof = load_profile("local")
    info = ClusterInfo(partitions=parts, max_array_size=1001)
    assert info.array_limit(prof) == 1001
    assert info.array_limit(dataclasses.replace(prof, max_array_size=200)) == 200
    assert ClusterInfo(parts, 5).array_limit(dataclasses.replace(prof, max_array_size=200)) == 5


# ------------------------------------------------------------------- live cluster checks
@pytest.mark.slurm
def test_local_profile_matches_the_cluster(slurm_cluster) -> None:
    info = check_cluster(load_profile("local"))
    assert "debug" in info.partitions
    assert info.max_array_size == slurm_cluster.max_array_size == 5


def _queue_size() -> int:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, timeout=30)
    return len(out.stdout.split())


@pytest.mark.slurm
@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"partition": "gpu-nowhere"}, r"partition='gpu-nowhere': not a partition .*debug"),
        ({"gpus_per_task": 1}, r"gpus_per_task=1: GPUs requested but partition 'debug' has no GPU"),
        ({"gpus_per_task": None, "gres": "gpu:1"}, r"gres='gpu:1': GPUs requested"),
        ({"mem_gb": 100_000}, r"sbatch --test-only rejects this profile"),
    ],
)
def test_cluster_mismatch_fails_before_submission(
    slurm_cluster,
    slurm_store,
    tmp_path: Path,
    change: dict,
    match: str,
) -> None:
    from benchmark.slurm import SlurmExecutor

    data = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = _write(tmp_path, "mismatch", data)
    before = _queue_size()
    with pytest.raises(ConfigError, match=match):
        SlurmExecutor(str(path), grid="t")
    assert _queue_size() == before
    assert not (slurm_store.results / "runs").exists()
