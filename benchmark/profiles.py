"""SLURM cluster profiles (``slurm/<name>.yaml``): loading, validation, live checks.

A profile says where and how grid cells run on one cluster: partition, account, QoS,
GPUs (or a raw gres string), CPUs, memory, time limit, array parallelism, extra sbatch
options and environment setup lines. ``load_profile`` checks the file on its own;
``check_cluster`` checks it against the live cluster (``sinfo`` + ``scontrol show config``
+ ``sbatch --test-only``) so that a bad profile fails before anything is submitted.
Errors are ``ConfigError("<file>: <field>=<value>: <problem>")``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import ConfigError, field_error
from benchmark.store import REPO_ROOT

PROFILES_DIR = REPO_ROOT / "slurm"
REQUIRED = ("partition", "time_min", "cpus_per_task", "mem_gb")
# key: (accepted types, default, check, what the check means)
_NUM = (int, float)
OPTIONAL: dict[str, tuple[tuple[type, ...], Any]] = {
    "description": ((str,), ""),
    "account": ((str,), None),
    "qos": ((str,), None),
    "gpus_per_task": ((int,), 1),
    "tasks_per_run": ((int,), 1),
    "gres": ((str,), None),
    "array_parallelism": ((int,), 64),
    "max_array_size": ((int,), None),
    "max_requeues": ((int,), 10),
    "signal_delay_s": ((int,), 120),
    "extra_sbatch": ((dict,), {}),
    "setup": ((list,), []),
    "python": ((str,), None),
}
_TYPES: dict[str, tuple[type, ...]] = {
    "partition": (str,),
    "time_min": (int,),
    "cpus_per_task": (int,),
    "mem_gb": _NUM,
    **{k: v[0] for k, v in OPTIONAL.items()},
}
_MIN = {  # smallest allowed value of numeric keys
    "time_min": 1,
    "cpus_per_task": 1,
    "mem_gb": 0.001,
    "gpus_per_task": 0,
    "tasks_per_run": 1,
    "array_parallelism": 1,
    "max_array_size": 1,
    "max_requeues": 0,
    "signal_delay_s": 0,
}
QUERY_TIMEOUT_S = 60


@dataclass(frozen=True)
class Profile:
    """One validated cluster profile."""

    name: str
    source: Path
    partition: str
    time_min: int
    cpus_per_task: int
    mem_gb: float
    description: str = ""
    account: str | None = None
    qos: str | None = None
    gpus_per_task: int = 1
    tasks_per_run: int = 1  # processes per cell (one GPU each): DDP across them when > 1
    gres: str | None = None
    array_parallelism: int = 64
    max_array_size: int | None = None
    max_requeues: int = 10
    signal_delay_s: int = 120
    extra_sbatch: dict[str, Any] = field(default_factory=dict)
    setup: tuple[str, ...] = ()
    python: str | None = None

    @property
    def wants_gpus(self) -> bool:
        if self.gres is not None:
            return "gpu" in self.gres.lower()
        return self.gpus_per_task > 0

    def error(self, key: str, problem: str) -> ConfigError:
        return field_error(ConfigError, self.source, key, getattr(self, key), problem)  # type: ignore[return-value]

    def sbatch_parameters(self) -> dict[str, Any]:
        """Keyword arguments for ``submitit.SlurmExecutor.update_parameters``."""
        params: dict[str, Any] = {
            "partition": self.partition,
            "time": self.time_min,
            "cpus_per_task": self.cpus_per_task,
            "mem": f"{max(1, round(self.mem_gb * 1024))}M",
            "signal_delay_s": self.signal_delay_s,
            "array_parallelism": self.array_parallelism,
            "setup": list(self.setup),
            "additional_parameters": dict(self.extra_sbatch),
        }
        if self.tasks_per_run > 1:  # one node, N processes: training runs DDP across them
            params["nodes"] = 1
            params["ntasks_per_node"] = self.tasks_per_run
        if self.gres is not None:
            params["gres"] = self.gres
        elif self.gpus_per_task > 0:
            params["gpus_per_task"] = self.gpus_per_task
        if self.account is not None:
            params["account"] = self.account
        if self.qos is not None:
            params["qos"] = self.qos
        return params


def available_profiles(profiles_dir: Path | None = None) -> list[str]:
    d = profiles_dir or PROFILES_DIR
    return sorted(p.stem for p in d.glob("*.yaml"))


def profile_path(name_or_path: str, profiles_dir: Path | None = None) -> Path:
    """``NAME`` → ``slurm/NAME.yaml``; a path to a YAML file is taken as is."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: profile file not found")
        return candidate
    d = profiles_dir or PROFILES_DIR
    path = d / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(available_profiles(d)) or "none"
        raise ConfigError(
            f"{path}: profile={name_or_path!r}: unknown profile (known in {d}: {known})"
        )
    return path


def load_profile(name_or_path: str, profiles_dir: Path | None = None) -> Profile:
    """Read and validate one profile file (no cluster access)."""
    path = profile_path(name_or_path, profiles_dir)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: a profile is a mapping of keys to values, got {type(raw).__name__}"
        )
    return validate_profile(raw, path)


def validate_profile(raw: dict[str, Any], source: Path) -> Profile:
    def bad(key: str, problem: str) -> ConfigError:
        return field_error(ConfigError, source, key, raw.get(key), problem)  # type: ignore[return-value]

    unknown = sorted(set(raw) - set(_TYPES))
    if unknown:
        raise bad(unknown[0], f"unknown key (known: {', '.join(sorted(_TYPES))})")
    for key in REQUIRED:
        if raw.get(key) is None:
            raise bad(key, "required key missing")
    values: dict[str, Any] = {}
    for key, types in _TYPES.items():
        value = raw.get(key)
        if value is None:
            values[key] = OPTIONAL[key][1] if key in OPTIONAL else None
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise bad(key, f"expected {names}, got {type(value).__name__}")
        if key in _MIN and value < _MIN[key]:
            raise bad(key, f"must be >= {_MIN[key]}")
        if isinstance(value, str) and not value.strip() and key != "description":
            raise bad(key, "must not be empty")
        values[key] = value
    for item in values["setup"]:
        if not isinstance(item, str):
            raise bad("setup", f"each line must be a string, got {type(item).__name__} {item!r}")
    for opt, val in values["extra_sbatch"].items():
        if not isinstance(opt, str) or not isinstance(val, str | int | float | bool):
            raise bad("extra_sbatch", f"option {opt!r}: value {val!r} is not a string/number/bool")
        if opt.replace("_", "-") in ("array", "output", "error", "dependency", "wrap"):
            raise bad(
                "extra_sbatch", f"option {opt!r} is set by the benchmark and cannot be overridden"
            )
    if values["gres"] is not None and raw.get("gpus_per_task") is not None:
        raise bad("gres", "set either gres or gpus_per_task, not both")
    values["setup"] = tuple(values["setup"])
    values["extra_sbatch"] = dict(values["extra_sbatch"])
    return Profile(name=source.stem, source=source, **values)


# --------------------------------------------------------------------------- live cluster
@dataclass(frozen=True)
class ClusterInfo:
    """What the live cluster says about itself (from one sinfo and one scontrol call)."""

    partitions: dict[str, tuple[str, ...]]  # partition → gres strings of its nodes
    max_array_size: int  # scontrol show config: array indices are 0 .. MaxArraySize-1

    def array_limit(self, profile: Profile) -> int:
        """Most tasks one sbatch array may hold for this profile."""
        cap = profile.max_array_size or self.max_array_size
        return max(1, min(cap, self.max_array_size))


def _query(cmd: list[str], source: Path) -> str:
    if shutil.which(cmd[0]) is None:
        raise ConfigError(
            f"{source}: executor='slurm': {cmd[0]} not found on PATH (run on a SLURM login node)"
        )
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise ConfigError(f"{source}: {' '.join(cmd)}: no answer in {QUERY_TIMEOUT_S} s") from e
    if proc.returncode != 0:
        raise ConfigError(f"{source}: {' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc.stdout


def parse_sinfo(text: str) -> dict[str, tuple[str, ...]]:
    """``sinfo -h -o '%R|%G'`` → {partition: (gres, ...)}; ``(null)`` means no gres."""
    parts: dict[str, list[str]] = {}
    for line in text.splitlines():
        name, _, gres = line.strip().partition("|")
        if not name:
            continue
        gres = gres.strip()
        parts.setdefault(name, [])
        if gres and gres != "(null)":
            parts[name].append(gres)
    return {k: tuple(v) for k, v in parts.items()}


def parse_max_array_size(text: str) -> int:
    """``MaxArraySize`` from ``scontrol show config`` (SLURM's default is 1001)."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize":
            return int(value.strip())
    return 1001


def check_cluster(profile: Profile, test_submit: bool = True) -> ClusterInfo:
    """Validate ``profile`` against the live cluster; raise ``ConfigError`` on a mismatch.

    Checks: the partition is listed by ``sinfo``; GPUs are asked only where the partition's
    nodes have GPU gres; ``sbatch --test-only`` accepts the resources (account, QoS, time
    limit, memory). Returns the partitions and ``MaxArraySize``.
    """
    partitions = parse_sinfo(_query(["sinfo", "-h", "-o", "%R|%G"], profile.source))
    if profile.partition not in partitions:
        known = ", ".join(sorted(partitions)) or "none"
        raise profile.error("partition", f"not a partition of this cluster (sinfo lists: {known})")
    gres = partitions[profile.partition]
    if profile.wants_gpus and not any("gpu" in g.lower() for g in gres):
        key = "gres" if profile.gres is not None else "gpus_per_task"
        raise profile.error(
            key,
            f"GPUs requested but partition {profile.partition!r} has no GPU gres "
            f"(sinfo %G: {', '.join(gres) or '(null)'}); use gpus_per_task: 0 or a GPU partition",
        )
    info = ClusterInfo(
        partitions=partitions,
        max_array_size=parse_max_array_size(_query(["scontrol", "show", "config"], profile.source)),
    )
    if test_submit:
        _test_submit(profile)
    return info


def _test_submit(profile: Profile) -> None:
    """``sbatch --test-only``: SLURM checks the resources without queueing a job."""
    from submitit.slurm.slurm import _make_sbatch_string

    params = profile.sbatch_parameters()
    params.pop("array_parallelism")
    script = _make_sbatch_string(command="true", folder="/tmp", use_srun=False, **params)
    cmd = ["sbatch", "--test-only", "--job-name=bench-profile-check"]
    try:
        proc = subprocess.run(
            cmd, input=script, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as e:
        raise ConfigError(
            f"{profile.source}: sbatch --test-only: no answer in {QUERY_TIMEOUT_S} s"
        ) from e
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().replace("\n", " ")
        raise ConfigError(f"{profile.source}: sbatch --test-only rejects this profile: {msg}")


# ------------------------------------------------------------------------ before any work
def profile_problems(name: str | None, *, cluster: bool | None = None) -> list[str]:
    """Everything wrong with ``run --executor slurm --profile NAME``, found before any work
    (data preparation, image hashing): no profile named, a profile file that does not exist
    (the known ones named) or does not validate, and — with ``cluster`` (None: where
    ``sinfo`` is on PATH) — a partition or GPU request the live cluster does not have. An
    empty list: nothing found."""
    if not name:
        known = ", ".join(available_profiles()) or "none"
        return [f"--executor slurm needs --profile NAME (profiles in {PROFILES_DIR}: {known})"]
    try:
        profile = load_profile(name)
        if cluster or (cluster is None and shutil.which("sinfo") is not None):
            check_cluster(profile, test_submit=False)
    except ConfigError as e:
        return [" ".join(str(e).split())]
    return []
