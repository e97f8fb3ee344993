"""SLURM cluster profiles (``slurm/<name>.yaml``): loading, validation, live checks.

A profile says where and how grid cells run on one cluster: partition, account, QoS,
GPUs (or a raw gres string), CPUs, memory, time limit, array parallelism, extra sbatch
options and environment setup lines. ``load_profile`` checks the file on its own;
``check_cluster`` checks it against the live cluster (``sinfo`` + ``scontrol show config``
+ ``sbatch --test-only``) so that a bad profile fails before anything is submitted.
Errors are ``ConfigError("<file>: <field>=<value>: <problem>")``. The keys, their types,
defaults and limits are declared once, in :class:`benchmark.schema.ProfileKeys` (exported as
``schemas/profile.schema.json`` for editors).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import ConfigError, field_error
from benchmark.schema import ProfileFile, ProfileKeys, problems, union_members
from benchmark.store import REPO_ROOT

PROFILES_DIR = REPO_ROOT / "slurm"
#: sbatch options the benchmark sets itself (not in extra_sbatch)
RESERVED_SBATCH = ("array", "output", "error", "dependency", "wrap")
QUERY_TIMEOUT_S = 60


@dataclass(frozen=True)
class Profile(ProfileKeys):
    """One validated cluster profile: a profile file's keys, its name and the file."""

    name: str = field(kw_only=True)
    source: Path = field(kw_only=True)

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
    """A profile from a file's mapping: its first problem is the error (a key set to null
    takes its default)."""

    def bad(key: str, problem: str) -> ConfigError:
        return field_error(ConfigError, source, key, raw.get(key), problem)  # type: ignore[return-value]

    known = ProfileFile.model_fields
    unknown = sorted(map(str, set(raw) - set(known)))
    if unknown:
        raise bad(unknown[0], f"unknown key (known: {', '.join(sorted(known))})")
    values = {k: v for k, v in raw.items() if v is not None}
    found = sorted(problems(ProfileFile, values), key=lambda p: p.kind != "missing")
    if found:
        p, key = found[0], str(found[0].path[0])
        if p.kind == "missing":
            raise bad(key, "required key missing")
        if key == "setup" and len(p.path) > 1:
            raise bad(key, f"each line must be a string, got {type(p.value).__name__} "
                           f"{p.value!r}")
        if key == "extra_sbatch" and len(p.path) > 1:
            raise bad(key, f"option {p.path[1]!r}: value {p.value!r} is not a string/number/bool")
        if p.kind == "type":
            raise bad(key, f"expected {_type_names(known[key].annotation)}, got "
                           f"{type(p.value).__name__}")
        if p.kind == "greater_than_equal":
            raise bad(key, f"must be >= {p.ctx['ge']}")
        raise bad(key, "must not be empty" if p.kind == "string_pattern_mismatch" else p.message)
    for opt in values.get("extra_sbatch", {}):
        if not isinstance(opt, str):
            raise bad("extra_sbatch", f"option {opt!r}: not a string")
        if opt.replace("_", "-") in RESERVED_SBATCH:
            raise bad(
                "extra_sbatch", f"option {opt!r} is set by the benchmark and cannot be overridden"
            )
    if "gres" in values and "gpus_per_task" in values:
        raise bad("gres", "set either gres or gpus_per_task, not both")
    if "setup" in values:
        values["setup"] = tuple(values["setup"])
    if "extra_sbatch" in values:
        values["extra_sbatch"] = dict(values["extra_sbatch"])
    return Profile(name=source.stem, source=source, **values)


def _type_names(annotation: Any) -> str:
    """The YAML value types a key accepts, as an error names them: ``int | None`` → "int",
    ``float`` → "int or float" (``mem_gb: 2`` is a number), ``tuple[str, ...]`` → "list"."""
    names = []
    for t in union_members(annotation):
        t = typing.get_origin(t) or t
        if t is not type(None):
            names += ["int", "float"] if t is float else ["list" if t is tuple else t.__name__]
    return " or ".join(names)


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
